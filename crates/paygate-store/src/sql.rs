//! The seam between the transactions (written once, in this crate) and a database. A backend
//! implements [`Tx`] — run a statement, read rows, run a script, name its row-lock clause — and
//! [`Backend`] — run a job of [`Tx`] calls as a read, an atomic write or an autocommitted write —
//! and gets every store trait (`Store`, `HserveStore`, `ShareStore`, `PosStore`) from the
//! blanket implementations in this crate. So the two databases cannot drift: they run the same
//! statements in the same order, and differ only in how a transaction is begun and ended.
//!
//! The bodies are async because PostgreSQL's client is. SQLite's [`Tx`] calls return futures
//! that are complete when first polled; its backend drives a body with one poll on the thread
//! that owns the connection (see `paygate-store-sqlite`'s `conn.rs`).

use crate::rows::{RowLike, SqlParam};
use crate::Result;
use async_trait::async_trait;
use paygate_domain::{App, LatePayment, Problem};
use std::future::Future;
use std::pin::Pin;

/// What receives the rows of a query, one at a time (each row lives only for its call).
pub type RowSink<'f> = dyn for<'r> FnMut(&'r (dyn RowLike + 'r)) -> Result<()> + Send + 'f;

/// What a job of store calls returns to its backend.
pub type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// How a backend runs a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Only reads. PostgreSQL: a pooled connection, no transaction; SQLite: a reader connection.
    Read,
    /// One atomic unit. PostgreSQL: `BEGIN … COMMIT` (rolled back on error, the connection
    /// discarded if the job is dropped half-way); SQLite: a savepoint in the single writer's
    /// batch, answered after the batch's COMMIT.
    Write,
    /// Writes that need no atomicity between their statements: at most one write statement (reads around it
    /// are fine), so a failure leaves nothing half done. PostgreSQL autocommits each statement, saving
    /// BEGIN/COMMIT round trips; SQLite runs them in the writer's batch without a savepoint of their own.
    Autocommit,
}

/// A connection inside a job: PostgreSQL's `$N` placeholders everywhere (SQLite rewrites them).
#[async_trait]
pub trait Tx: Send {
    /// Runs one statement; the number of rows it changed.
    async fn exec(&mut self, sql: &str, params: &[SqlParam]) -> Result<u64>;
    /// Runs one statement, handing each row it returns to `row`.
    async fn each_row(&mut self, sql: &str, params: &[SqlParam], row: &mut RowSink<'_>) -> Result<()>;
    /// Runs a script of statements without parameters (migrations).
    async fn batch(&mut self, sql: &str) -> Result<()>;
    /// The clause that locks the rows a SELECT reads until the transaction ends: `FOR UPDATE`
    /// on PostgreSQL; nothing on SQLite, whose single writer already excludes other writers.
    fn for_update(&self) -> &'static str;
    /// The same, skipping rows another transaction holds (`FOR UPDATE SKIP LOCKED`): several
    /// nodes claim disjoint deliveries at once.
    fn for_update_skip_locked(&self) -> &'static str;
}

impl dyn Tx + '_ {
    /// Every row, mapped.
    pub async fn query<T: Send>(
        &mut self,
        sql: &str,
        params: &[SqlParam],
        map: impl Fn(&dyn RowLike) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_row(sql, params, &mut |r| {
            out.push(map(r)?);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// The first row, mapped.
    pub async fn query_opt<T: Send>(
        &mut self,
        sql: &str,
        params: &[SqlParam],
        map: impl Fn(&dyn RowLike) -> Result<T> + Sync,
    ) -> Result<Option<T>> {
        Ok(self.query(sql, params, map).await?.into_iter().next())
    }
}

/// Connection-pool figures for `/metrics`. What they count differs by backend:
/// PostgreSQL — pooled connections (`size` open of `max_size`, `in_use` checked out, `idle`
/// ready, `waiting` requests waiting for one); SQLite — reader connections (`size`, `in_use`,
/// `idle`; `max_size` is how many idle ones are kept) and, as `waiting`, the write jobs queued
/// for the single writer and not yet started (its queue depth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    pub size: i64,
    pub max_size: i64,
    pub in_use: i64,
    pub idle: i64,
    pub waiting: i64,
}

/// A database: how it runs a job of [`Tx`] calls. Every store trait is implemented for every
/// `Backend` in this crate.
pub trait Backend: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    const NAME: &'static str;
    /// `(version, script)`, applied in order, each once.
    const MIGRATIONS: &'static [(i64, &'static str)];
    /// A statement run first in the migration transaction to keep nodes starting at once from
    /// migrating together (PostgreSQL's advisory lock); SQLite's writer lock already does.
    const MIGRATION_LOCK: Option<&'static str>;

    /// Runs `job` on a connection as `access` says; a `Write` job that fails writes nothing.
    /// The job owns what it uses: SQLite runs it on another thread.
    fn run<T, F>(&self, access: Access, job: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Tx) -> TxFuture<'a, T> + Send + 'static;

    /// What [`crate::Store::pool_stats`] reports.
    fn connection_stats(&self) -> PoolStats;

    /// Whether concurrent order creates and retrieves go to the database together: PostgreSQL
    /// pays a statement and a commit per request, so it answers them in batches (one statement
    /// each, [`crate::batches`]); `None`, the default, runs each as its own job — right for
    /// SQLite, whose single writer already commits in groups and whose readers are in-process.
    fn batches(&self) -> Option<&crate::batches::Batches> {
        None
    }
}

/// Runs `$body` (an async block body over `$tx: &mut dyn Tx`) as one job of `$access`, after
/// turning the listed borrowed arguments into owned values of the same names.
macro_rules! job {
    ($self:ident, $access:ident, [$($arg:ident),*], |$tx:ident| $body:block) => {{
        let here = $crate::sql::here();
        $(let $arg = $arg.to_owned();)*
        $self
            .run($crate::sql::Access::$access, move |$tx| Box::pin(async move $body))
            .await
            .map_err(|p| p.raised_at(here))
    }};
}
pub(crate) use job;

/// A statement text assembled from constants (column lists, placeholders), built on first use
/// and kept: `&'static str`. Formatting it on every call was ~8 % of a retrieve's CPU (perf).
macro_rules! once_sql {
    ($($format:tt)+) => {{
        static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        TEXT.get_or_init(|| format!($($format)+)).as_str()
    }};
}
pub(crate) use once_sql;

/// Where a `job!` was written: a database error is logged with the store method that ran it
/// (`transactions.rs:215`), not the driver glue every query passes through.
#[track_caller]
pub(crate) fn here() -> &'static std::panic::Location<'static> {
    std::panic::Location::caller()
}

/// Applies the migrations not applied yet, in the caller's (one) transaction.
pub(crate) async fn migrate(tx: &mut dyn Tx, migrations: &[(i64, &str)], lock: Option<&str>, now: i64) -> Result<()> {
    if let Some(lock) = lock {
        tx.exec(lock, &[]).await?;
    }
    tx.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
        .await?;
    for (version, script) in migrations {
        let done = tx
            .query_opt("SELECT version FROM schema_migrations WHERE version = $1", &[SqlParam::Int(*version)], |r| {
                r.int(0)
            })
            .await?;
        if done.is_none() {
            tx.batch(script).await?;
            let applied = [SqlParam::Int(*version), SqlParam::Int(now)];
            tx.exec("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)", &applied).await?;
        }
    }
    Ok(())
}

pub const APP_COLUMNS: &str = "a.id, a.name, a.created, a.public_key_pem, a.late_payment, a.max_share_bps";

pub fn app(r: &dyn RowLike) -> Result<App> {
    Ok(App {
        id: r.text(0)?,
        name: r.text(1)?,
        created: r.int(2)?,
        public_key_pem: r.opt_text(3)?,
        late_payment: LatePayment::parse(&r.text(4)?).unwrap_or_default(),
        max_share_bps: r.int(5)?,
    })
}

/// What a job that must find its row says when the row it just wrote or locked is gone.
pub(crate) fn vanished(what: &str) -> Problem {
    Problem::internal(format!("{what} vanished inside its transaction"))
}
