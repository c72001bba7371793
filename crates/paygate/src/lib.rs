//! Wiring shared by the `paygate` binary and the integration tests: pick the store from a
//! database URL, start the application, serve it.

use paygate_core::{Clock, Paygate};
use paygate_domain::Problem;
use paygate_store::Store;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://paygate.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// `sqlite://PATH` (relative, or `sqlite:///absolute`) or `postgres://…`/`postgresql://…`.
pub fn open_store(url: &str) -> Result<Arc<dyn Store>, Problem> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(Problem::invalid("database", "sqlite:// needs a file path, e.g. sqlite://paygate.db"));
        }
        return Ok(Arc::new(paygate_store_sqlite::SqliteStore::open(path)?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let pool = std::env::var("PAYGATE_PG_POOL").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
        return Ok(Arc::new(paygate_store_postgres::PostgresStore::connect(url, pool)?));
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

pub async fn start(url: &str, clock: Arc<dyn Clock>) -> Result<Arc<Paygate>, Problem> {
    Ok(Arc::new(Paygate::start(open_store(url)?, clock).await?))
}

/// A running server; dropping the handle does not stop it, `stop` does.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub app: Arc<Paygate>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets in-flight requests and the worker's current sweep finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Serves the HTTP API; with `worker`, also runs the background worker in this process.
pub async fn serve(listen: &str, app: Arc<Paygate>, worker: Option<paygate_worker::Settings>) -> Result<Running, Problem> {
    let listener = TcpListener::bind(listen).await.map_err(|e| Problem::invalid("listen", format!("Cannot listen on {listen}: {e}")))?;
    let addr = listener.local_addr().map_err(Problem::internal)?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(paygate_http::serve(listener, app.clone(), stopped.clone()))];
    if let Some(settings) = worker {
        tasks.push(tokio::spawn(paygate_worker::Worker::new(app.clone(), settings).run(stopped)));
    }
    Ok(Running { addr, app, stop, tasks })
}
