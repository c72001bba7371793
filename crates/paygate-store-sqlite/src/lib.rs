//! The SQLite store: embedded, zero set-up. Writes go through one writer thread (see
//! [`conn`]), so every transaction's read-decide-write runs with no other writer in between;
//! the transactions themselves are `paygate-store`'s, shared with PostgreSQL.

mod conn;

use conn::Db;
use paygate_domain::Problem;
use paygate_store::sql::{Access, Backend, PoolStats, Tx, TxFuture};
use paygate_store::Result;

pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &str) -> Result<SqliteStore> {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                return Err(Problem::internal(format!("directory {} does not exist", dir.display())));
            }
        }
        Ok(SqliteStore { db: Db::open(path)? })
    }
}

impl Backend for SqliteStore {
    const NAME: &'static str = "sqlite";
    const MIGRATIONS: &'static [(i64, &'static str)] = &[
        (1, include_str!("../migrations/0001_init.sql")),
        (2, include_str!("../migrations/0002_hserve_and_shares.sql")),
        (3, include_str!("../migrations/0003_pos_fees_wallet.sql")),
        (4, include_str!("../migrations/0004_key_expiry_outbox_index.sql")),
        (5, include_str!("../migrations/0005_charge_api.sql")),
        (6, include_str!("../migrations/0006_sqlite_charge_lookups.sql")),
        (7, include_str!("../migrations/0007_list_indexes.sql")),
        (8, include_str!("../migrations/0008_outbox_months.sql")),
        (9, include_str!("../migrations/0009_channel_accounts.sql")),
        (10, include_str!("../migrations/0010_record_list_order.sql")),
        (11, include_str!("../migrations/0011_channel_polls.sql")),
        (12, include_str!("../migrations/0012_reconciliations.sql")),
        (13, include_str!("../migrations/0013_share_polls.sql")),
        (14, include_str!("../migrations/0014_console.sql")),
        (15, include_str!("../migrations/0015_console_overview.sql")),
        (16, include_str!("../migrations/0016_delivery_log.sql")),
        (17, include_str!("../migrations/0017_late_refunded.sql")),
        (18, include_str!("../migrations/0018_endpoint_disabled.sql")),
        (19, include_str!("../migrations/0019_refunds_covering.sql")),
    ];
    // BEGIN IMMEDIATE takes the database's write lock: other processes wait for it.
    const MIGRATION_LOCK: Option<&'static str> = None;

    /// Reads on a reader connection; writes, autocommitted or not, on the single writer (one
    /// writer means a lone statement gains nothing from skipping the transaction, only from skipping its
    /// savepoint).
    async fn run<T, F>(&self, access: Access, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Tx) -> TxFuture<'a, T> + Send + 'static,
    {
        match access {
            Access::Read => self.db.read(job).await,
            Access::Write => self.db.write(true, job).await,
            Access::Autocommit => self.db.write(false, job).await,
        }
    }

    fn connection_stats(&self) -> PoolStats {
        self.db.stats()
    }
}
