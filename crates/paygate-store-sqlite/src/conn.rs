//! The SQLite machinery: one writer thread that batches jobs into one transaction (group
//! commit: one fsync serves every job in the batch, each isolated by a savepoint), and a pool of
//! reader connections. A job's result is delivered only after its batch committed, so whatever a
//! client was told survives kill -9.
//!
//! A job is a shared transaction body (async, over [`Tx`]). Every [`Tx`] call here runs on the
//! calling thread and returns a finished future, so a body never waits: [`run_now`] polls it once
//! on the thread that owns the connection, with no executor and no runtime. A body that did wait
//! on something else (a bug) is refused with an error rather than blocking the writer.

use async_trait::async_trait;
use paygate_domain::Problem;
use paygate_store::rows::{RowLike, SqlParam};
use paygate_store::sql::{PoolStats, RowSink, Tx, TxFuture};
use paygate_store::Result;
use rusqlite::types::ToSqlOutput;
use rusqlite::{Connection, OpenFlags, ToSql};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use tokio::sync::oneshot;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// A job gets `None` when its batch has no transaction (it could not begin, or SQLite rolled it back): it must
/// then not run.
type RunJob = Box<dyn FnOnce(Option<&mut SqliteTx>) -> (bool, Deliver) + Send>;

/// A job for the writer. `atomic` jobs run inside a savepoint, so a failure undoes all they wrote; the others
/// (`Access::Autocommit`: statements that are each safe alone, as PostgreSQL autocommits them) skip it — SQLite
/// undoes a failed statement by itself, and the savepoint's two statements were a measurable part of an order
/// create's time on the writer.
struct Job {
    atomic: bool,
    run: RunJob,
}

/// Jobs committed together at most; bounds the latency one batch adds.
const MAX_BATCH: usize = 256;
/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 8;

pub struct Db {
    path: String,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// Write jobs sent and not yet taken by the writer.
    queued: Arc<AtomicUsize>,
    readers_busy: Arc<AtomicUsize>,
}

/// A busy, full or unreadable database file is `Unavailable` (503, retry later); anything else
/// is an internal error.
#[track_caller]
pub fn sql_err(e: rusqlite::Error) -> Problem {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked | DiskFull | CannotOpen | SystemIoFailure | OutOfMemory) => {
            Problem::unavailable(format!("sqlite: {e}"))
        }
        _ => Problem::internal(format!("sqlite: {e}")),
    }
}

fn open(path: &str, writer: bool) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(sql_err)?;
    // FULL: a commit is on disk before the writer acknowledges it; group commit pays for it.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
    )
    .map_err(sql_err)?;
    if writer {
        conn.execute_batch("PRAGMA wal_autocheckpoint = 4000;").map_err(sql_err)?;
    }
    // Every statement text the store writes once (dynamic filters add a few shapes); LRU beyond.
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Polls a transaction body once: SQLite's [`Tx`] futures are complete when created.
fn run_now<T>(body: TxFuture<'_, T>) -> Result<T> {
    let mut body = body;
    match body.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(Problem::internal("a SQLite transaction body waited on something other than SQLite")),
    }
}

impl Db {
    pub fn open(path: &str) -> Result<Db> {
        let conn = open(path, true)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let taken = queued.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(SqliteTx(conn), rx, &taken))
            .map_err(Problem::internal)?;
        Ok(Db {
            path: path.to_string(),
            writer: Mutex::new(tx),
            readers: Arc::new(Mutex::new(Vec::new())),
            queued,
            readers_busy: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `job` on the single writer inside a transaction (and, when `atomic`, its own savepoint); resolves
    /// after the commit.
    pub async fn write<T, F>(&self, atomic: bool, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Tx) -> TxFuture<'a, T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let run: RunJob = Box::new(move |conn: Option<&mut SqliteTx>| {
            let result = match conn {
                Some(conn) => run_now(job(conn)),
                // BEGIN IMMEDIATE fails when the file is locked past busy_timeout or unwritable.
                None => Err(Problem::unavailable("sqlite: the write batch has no transaction")),
            };
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, deliver)
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        let job = Job { atomic, run };
        let sent = self.writer.lock().map_err(|_| Problem::internal("sqlite writer lock poisoned"))?.send(job);
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(Problem::internal("sqlite writer stopped"));
        }
        rx.await.map_err(|_| Problem::internal("sqlite writer dropped a job"))?
    }

    /// Runs `job` on a pooled reader connection off the async runtime.
    pub async fn read<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&'a mut dyn Tx) -> TxFuture<'a, T> + Send + 'static,
    {
        let (readers, busy, path) = (self.readers.clone(), self.readers_busy.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().map_err(|_| Problem::internal("reader pool poisoned"))?.pop();
            let mut conn = SqliteTx(match idle {
                Some(c) => c,
                None => open(&path, false)?,
            });
            busy.fetch_add(1, Ordering::Relaxed);
            let result = run_now(job(&mut conn));
            busy.fetch_sub(1, Ordering::Relaxed);
            if let Ok(mut pool) = readers.lock() {
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn.0);
                }
            }
            result
        })
        .await
        .map_err(Problem::internal)?
    }

    pub fn stats(&self) -> PoolStats {
        let idle = self.readers.lock().map(|r| r.len()).unwrap_or(0) as i64;
        let in_use = self.readers_busy.load(Ordering::Relaxed) as i64;
        PoolStats {
            size: idle + in_use,
            max_size: MAX_IDLE_READERS as i64,
            in_use,
            idle,
            waiting: self.queued.load(Ordering::Relaxed) as i64,
        }
    }
}

fn writer_loop(mut conn: SqliteTx, rx: mpsc::Receiver<Job>, queued: &AtomicUsize) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let began = control(&conn, "BEGIN IMMEDIATE");
        let mut delivers = Vec::with_capacity(batch.len());
        for Job { atomic, run } in batch {
            // No transaction (BEGIN failed, or SQLite rolled the whole batch back itself on a full disk or an I/O
            // error): the job must not run, or its writes would commit alone while it is told the batch failed.
            if began.is_err() || conn.0.is_autocommit() {
                delivers.push(run(None).1);
                continue;
            }
            if atomic {
                let _ = control(&conn, "SAVEPOINT job");
            }
            let (ok, deliver) = run(Some(&mut conn));
            if atomic {
                if !ok {
                    let _ = control(&conn, "ROLLBACK TO job");
                }
                let _ = control(&conn, "RELEASE job");
            }
            delivers.push(deliver);
        }
        let committed = began.and_then(|_| control(&conn, "COMMIT"));
        if committed.is_err() {
            let _ = control(&conn, "ROLLBACK");
        }
        for deliver in delivers {
            deliver(committed.clone());
        }
    }
}

/// A transaction-control statement from the connection's statement cache (`execute_batch` parsed it anew each
/// time: several per order create on the writer).
fn control(conn: &SqliteTx, sql: &str) -> Result<()> {
    conn.0.prepare_cached(sql).and_then(|mut s| s.execute([])).map(|_| ()).map_err(sql_err)
}

/// `$N` → `?N`: SQLite's explicitly numbered placeholders bind like PostgreSQL's.
fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

struct Param<'a>(&'a SqlParam);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        match self.0 {
            SqlParam::Text(s) => s.to_sql(),
            SqlParam::Int(i) => i.to_sql(),
            SqlParam::Bool(b) => b.to_sql(),
            SqlParam::OptText(s) => s.to_sql(),
            SqlParam::OptInt(i) => i.to_sql(),
            SqlParam::Bytes(b) => b.to_sql(),
            // Only PostgreSQL's batch statements bind arrays; SQLite never batches.
            SqlParam::Array(_) => {
                Err(rusqlite::Error::ToSqlConversionFailure("array parameters are PostgreSQL-only".into()))
            }
        }
    }
}

fn bind(params: &[SqlParam]) -> impl rusqlite::Params + '_ {
    rusqlite::params_from_iter(params.iter().map(Param))
}

/// A connection lent to a job: the writer's (inside its batch's transaction) or a reader's.
pub struct SqliteTx(Connection);

#[async_trait]
impl Tx for SqliteTx {
    async fn exec(&mut self, sql: &str, params: &[SqlParam]) -> Result<u64> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql)).map_err(sql_err)?;
        Ok(stmt.execute(bind(params)).map_err(sql_err)? as u64)
    }

    async fn each_row(&mut self, sql: &str, params: &[SqlParam], row: &mut RowSink<'_>) -> Result<()> {
        let mut stmt = self.0.prepare_cached(&sqlite_sql(sql)).map_err(sql_err)?;
        let mut rows = stmt.query(bind(params)).map_err(sql_err)?;
        while let Some(r) = rows.next().map_err(sql_err)? {
            row(&Row(r))?;
        }
        Ok(())
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        self.0.execute_batch(sql).map_err(sql_err)
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn for_update_skip_locked(&self) -> &'static str {
        ""
    }
}

struct Row<'a>(&'a rusqlite::Row<'a>);

impl RowLike for Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        self.0.get(i).map_err(sql_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.0.get(i).map_err(sql_err)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.0.get(i).map_err(sql_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.0.get(i).map_err(sql_err)
    }
    fn boolean(&self, i: usize) -> Result<bool> {
        self.0.get(i).map_err(sql_err)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        self.0.get(i).map_err(sql_err)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.0.get(i).map_err(sql_err)
    }
}
