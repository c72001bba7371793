//! Wiring shared by the `paygate` binary and the integration tests: pick the store from a
//! database URL, start the application, serve it.

use paygate_core::{Clock, Paygate, Policy};
use paygate_domain::Problem;
use paygate_store::Store;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://paygate.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// PostgreSQL connections per process unless configured (`--pg-pool`).
pub const DEFAULT_PG_POOL: usize = 16;

/// `sqlite://PATH` (relative, or `sqlite:///absolute`) or `postgres://…`/`postgresql://…`
/// with at most `pg_pool` connections.
pub fn open_store(url: &str, pg_pool: usize) -> Result<Arc<dyn Store>, Problem> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(Problem::invalid("database", "sqlite:// needs a file path, e.g. sqlite://paygate.db"));
        }
        return Ok(Arc::new(paygate_store_sqlite::SqliteStore::open(path)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(paygate_store_postgres::PostgresStore::connect(url, pg_pool)?));
    }
    Err(Problem::invalid(
        "database",
        format!("Unsupported database URL '{}': use sqlite://PATH or postgres://USER@HOST/DB.", redact(url)),
    ))
}

/// Hides a password in a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens the store and starts the application under the default [`Policy`] (private webhook
/// addresses refused).
pub async fn start(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<Paygate>, Problem> {
    start_with(url, clock, Policy::default()).await
}

/// Opens the store and starts the application under the operator's `policy`.
pub async fn start_with(url: &str, clock: Arc<dyn Clock>, policy: Policy) -> Result<Arc<Paygate>, Problem> {
    start_configured(url, DEFAULT_PG_POOL, clock, policy).await
}

/// What the binary calls with its parsed configuration.
pub async fn start_configured(
    url: &str,
    pg_pool: usize,
    clock: Arc<dyn Clock>,
    policy: Policy,
) -> Result<Arc<Paygate>, Problem> {
    Ok(Arc::new(Paygate::start(open_store(url, pg_pool)?, clock, policy).await?))
}

/// A running server; dropping the handle does not stop it, `stop` does.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub app: Arc<Paygate>,
    stop: watch::Sender<bool>,
    grace: std::time::Duration,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and the worker's current sweep finish within
    /// the shutdown grace period, then closes whatever is left.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            // The HTTP server keeps its own deadline; this bounds the worker's last sweep too.
            if tokio::time::timeout(self.grace + std::time::Duration::from_secs(1), &mut task).await.is_err() {
                tracing::warn!("a task did not stop within the grace period; abandoning it");
                task.abort();
            }
        }
    }
}

/// Takes the listening socket: done first, so a port in use fails before anything is written.
pub async fn bind(listen: &str) -> Result<TcpListener, Problem> {
    TcpListener::bind(listen).await.map_err(|e| Problem::invalid("listen", format!("Cannot listen on {listen}: {e}")))
}

/// Serves the HTTP API with the default limits; with `worker`, also runs the background worker.
pub async fn serve(
    listen: &str,
    app: Arc<Paygate>,
    worker: Option<paygate_worker::Settings>,
) -> Result<Running, Problem> {
    serve_on(bind(listen).await?, app, worker, paygate_http::Limits::default())
}

/// Serves the HTTP API on a socket already bound; with `worker`, also runs the worker.
pub fn serve_on(
    listener: TcpListener,
    app: Arc<Paygate>,
    worker: Option<paygate_worker::Settings>,
    limits: paygate_http::Limits,
) -> Result<Running, Problem> {
    // Worker settings that could send a delivery twice are refused before anything starts.
    let worker = worker.map(|settings| paygate_worker::Worker::try_new(app.clone(), settings)).transpose()?;
    let addr = listener.local_addr().map_err(Problem::internal)?;
    let (stop, stopped) = watch::channel(false);
    let grace = limits.shutdown_grace;
    let mut tasks = vec![tokio::spawn(paygate_http::serve(listener, app.clone(), limits, stopped.clone()))];
    if let Some(worker) = worker {
        tasks.push(tokio::spawn(worker.run(stopped)));
    }
    Ok(Running { addr, app, stop, grace, tasks })
}
