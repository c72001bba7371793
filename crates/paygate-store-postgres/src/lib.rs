//! The PostgreSQL store, for production and for several stateless nodes on one database. The
//! transactions are `paygate-store`'s (shared with SQLite); this crate connects (a deadpool,
//! TLS when the URL asks for it), begins and ends transactions, names the row locks, and turns
//! on `paygate-store`'s batches of concurrent order creates and retrieves (`PoolOptions`).

mod pool;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use paygate_domain::Problem;
use paygate_store::batches::{Batches, MAX_BATCH};
use paygate_store::coalesce::Limits;
use paygate_store::sql::{Access, Backend, PoolStats, Tx, TxFuture};
use paygate_store::Result;
use pool::{pg_err, pool_err, PgTx};
use std::time::Duration;
use tokio_postgres::config::SslMode;

/// How this node connects; [`PostgresStore::connect`] takes the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections this node opens at most.
    pub size: usize,
    /// Opening one connection (TCP, TLS, authentication); the URL's `connect_timeout` wins.
    pub connect_timeout: Duration,
    /// Waiting for a free connection when all are in use; past it the request is a 503.
    pub wait_timeout: Duration,
    /// How concurrent order creates and retrieves are batched (`None`: each runs alone).
    pub batches: Option<Limits>,
}

impl PoolOptions {
    /// Batches of up to [`MAX_BATCH`] calls, two in flight each for creates and for retrieves
    /// (an eighth of the connections on a larger pool; never more than the pool): one batch can
    /// gather the calls that queue while the other is with the database. At 32 clients and 16
    /// connections, two in flight beat four on both rate and CPU per call (fewer, fuller
    /// statements); one leaves the database idle while a batch travels.
    pub fn new(size: usize) -> PoolOptions {
        PoolOptions {
            size,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            batches: Some(Limits { max_batch: MAX_BATCH, in_flight: (size / 8).max(2).min(size.max(1)) }),
        }
    }
}

pub struct PostgresStore {
    pool: Pool,
    batches: Option<Batches>,
}

impl PostgresStore {
    /// `url` is a libpq-style URL; `pool_size` bounds this node's connections. Connects lazily.
    pub fn connect(url: &str, pool_size: usize) -> Result<PostgresStore> {
        PostgresStore::connect_with(url, PoolOptions::new(pool_size))
    }

    /// With `sslmode=require` in the URL the connection is TLS (rustls, verified against the
    /// Mozilla roots, the host name included); otherwise it is plain, as libpq's `prefer` ends
    /// up when the server offers nothing better than what it is told here.
    pub fn connect_with(url: &str, options: PoolOptions) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| Problem::invalid("database", format!("Invalid PostgreSQL URL: {e}")))?;
        // An unreachable server must fail a request (503) instead of holding it forever.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // Every statement paygate sends is a short request's, planned to read a page: a parallel
        // plan spends the server's other cores on one request (a count that found parallel workers
        // cheaper than an ordered index walk was 5-10x slower under load). The URL's own
        // `options=-c max_parallel_workers_per_gather=N` wins.
        let options_given = config.get_options().unwrap_or_default().to_string();
        if !options_given.contains("max_parallel_workers_per_gather") {
            config.options(format!("{options_given} -c max_parallel_workers_per_gather=0").trim_start());
        }
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = if config.get_ssl_mode() == SslMode::Require {
            Manager::from_config(config, tls()?, manager_config)
        } else {
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        };
        let pool = Pool::builder(manager)
            .max_size(options.size.max(1))
            .wait_timeout(Some(options.wait_timeout))
            // A connect that outlives the driver's own timeout (TLS, authentication) still ends.
            .create_timeout(Some(options.connect_timeout + Duration::from_secs(1)))
            .recycle_timeout(Some(options.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(Problem::internal)?;
        let batches = options.batches.map(|limits| {
            Batches::new(std::sync::Arc::new(PostgresStore { pool: pool.clone(), batches: None }), limits)
        });
        Ok(PostgresStore { pool, batches })
    }
}

fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let config = rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .map_err(Problem::internal)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Backend for PostgresStore {
    const NAME: &'static str = "postgres";
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/0001_init.sql")),
        (2, include_str!("../migrations/0002_hserve_and_shares.sql")),
        (3, include_str!("../migrations/0003_pos_fees_wallet.sql")),
        (4, include_str!("../migrations/0004_key_expiry_outbox_index.sql")),
        (5, include_str!("../migrations/0005_charge_api.sql")),
        (6, include_str!("../migrations/0006_list_indexes.sql")),
        (7, include_str!("../migrations/0007_outbox_partitions.sql")),
        (8, include_str!("../migrations/0008_channel_accounts.sql")),
        (9, include_str!("../migrations/0009_record_list_order.sql")),
        (10, include_str!("../migrations/0010_channel_polls.sql")),
        (11, include_str!("../migrations/0011_reconciliations.sql")),
        (12, include_str!("../migrations/0012_share_polls.sql")),
        (13, include_str!("../migrations/0013_console.sql")),
        (14, include_str!("../migrations/0014_console_overview.sql")),
        (15, include_str!("../migrations/0015_delivery_log.sql")),
        (16, include_str!("../migrations/0016_open_orders_created.sql")),
        (17, include_str!("../migrations/0017_endpoint_disabled.sql")),
    ];
    /// Held until the migration transaction ends: nodes starting together migrate one by one
    /// (the key is the one older versions took as a session lock, 0x0070_6179_6761_7465).
    const MIGRATION_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(31632371444970597)");

    /// `Write` jobs run between BEGIN and COMMIT (ROLLBACK when the job fails); the connection
    /// goes back to the pool only after a clean end (see [`PgTx`]). `Read` and `Autocommit` jobs
    /// run their statements as they come.
    async fn run<T, F>(&self, access: Access, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Tx) -> TxFuture<'a, T> + Send + 'static,
    {
        let mut tx = PgTx::new(self.pool.get().await.map_err(pool_err)?);
        if access != Access::Write {
            return job(&mut tx).await;
        }
        tx.open = true;
        tx.client().batch_execute("BEGIN").await.map_err(pg_err)?;
        let result = job(&mut tx).await;
        let end = tx.client().batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
        tx.open = end.is_err();
        match (result, end) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(e)) => Err(pg_err(e)),
            // The job's own error is what the caller reports, rolled back or not.
            (Err(e), _) => Err(e),
        }
    }

    fn batches(&self) -> Option<&Batches> {
        self.batches.as_ref()
    }

    fn connection_stats(&self) -> PoolStats {
        let s = self.pool.status();
        let count = |n: usize| n as i64;
        PoolStats {
            size: count(s.size),
            max_size: count(s.max_size),
            in_use: count(s.size - s.available),
            idle: count(s.available),
            waiting: count(s.waiting),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paygate_domain::ProblemKind;
    use paygate_store::Store;

    fn url(extra: &str) -> String {
        let base = std::env::var("PAYGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        format!("{base}{}{extra}", if base.contains('?') { '&' } else { '?' })
    }

    /// TLS is rustls with the Mozilla roots: a server whose certificate they do not vouch for
    /// (the test server's is self-signed, or it has no TLS) is not reached — a 503, never a 500.
    #[tokio::test]
    async fn sslmode_require_verifies_the_server() {
        let store = PostgresStore::connect(&url("sslmode=require"), 1).unwrap();
        let refused = store.ready().await.unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Unavailable, "{}", refused.message);
        PostgresStore::connect(&url("sslmode=disable"), 1).unwrap().ready().await.unwrap();
    }

    /// No free connection within the checkout timeout is a 503 as well.
    #[tokio::test]
    async fn checkout_timeout_is_unavailable() {
        let options = PoolOptions { wait_timeout: Duration::from_millis(50), ..PoolOptions::new(1) };
        let store = std::sync::Arc::new(PostgresStore::connect_with(&url("sslmode=disable"), options).unwrap());
        let held = store.pool.get().await.unwrap();
        let waited = store.ready().await.unwrap_err();
        assert_eq!(waited.kind, ProblemKind::Unavailable, "{}", waited.message);
        drop(held);
        store.ready().await.unwrap();
        assert_eq!(store.pool_stats().await.unwrap().size, 1);
    }

    /// paygate's connections plan without parallel workers unless the URL says otherwise.
    #[tokio::test]
    async fn parallel_workers_are_off_unless_the_url_sets_them() {
        let setting = |url: String| async move {
            let store = PostgresStore::connect(&url, 1).unwrap();
            let client = store.pool.get().await.unwrap();
            client.query_one("SHOW max_parallel_workers_per_gather", &[]).await.unwrap().get::<_, String>(0)
        };
        assert_eq!(setting(url("sslmode=disable")).await, "0");
        let given = url("sslmode=disable&options=-c%20max_parallel_workers_per_gather%3D3");
        assert_eq!(setting(given).await, "3");
    }
}
