//! The SQLite machinery: one writer thread that batches jobs into one transaction (group
//! commit: one fsync serves every job in the batch, each isolated by a savepoint), and a pool of
//! reader connections. A job's result is delivered only after its batch committed, so whatever a
//! client was told survives kill -9.

use paygate_domain::Problem;
use paygate_store::rows::{RowLike, SqlParam};
use paygate_store::Result;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
/// A job gets `None` when its batch could not begin a transaction: it must then not run.
type Job = Box<dyn FnOnce(Option<&Connection>) -> (bool, Deliver) + Send>;

/// Jobs committed together at most; bounds the latency one batch adds.
const MAX_BATCH: usize = 256;

pub struct Db {
    path: String,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Arc<Mutex<Vec<Connection>>>,
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
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Db {
    pub fn open(path: &str) -> Result<Db> {
        let conn = open(path, true)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(Problem::internal)?;
        Ok(Db { path: path.to_string(), writer: Mutex::new(tx), readers: Arc::new(Mutex::new(Vec::new())) })
    }

    /// Runs `f` on the single writer inside a transaction; resolves after the commit.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: Option<&Connection>| {
            let result = match conn {
                Some(conn) => f(conn),
                // BEGIN IMMEDIATE fails when the file is locked past busy_timeout or unwritable.
                None => Err(Problem::unavailable("sqlite: could not begin a transaction")),
            };
            let ok = result.is_ok();
            let deliver: Deliver = Box::new(move |commit| {
                let _ = tx.send(commit.and(result));
            });
            (ok, deliver)
        });
        self.writer
            .lock()
            .map_err(|_| Problem::internal("sqlite writer lock poisoned"))?
            .send(job)
            .map_err(|_| Problem::internal("sqlite writer stopped"))?;
        rx.await.map_err(|_| Problem::internal("sqlite writer dropped a job"))?
    }

    /// Runs `f` on a pooled reader connection off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match readers.lock().map_err(|_| Problem::internal("reader pool poisoned"))?.pop() {
                Some(c) => c,
                None => open(&path, false)?,
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                if pool.len() < 8 {
                    pool.push(conn);
                }
            }
            result
        })
        .await
        .map_err(Problem::internal)?
    }
}

fn writer_loop(conn: Connection, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let began = conn.execute_batch("BEGIN IMMEDIATE").map_err(sql_err);
        let mut delivers = Vec::with_capacity(batch.len());
        for job in batch {
            if began.is_err() {
                delivers.push(job(None).1);
                continue;
            }
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, deliver) = job(Some(&conn));
            let end = if ok { "RELEASE job" } else { "ROLLBACK TO job; RELEASE job" };
            let _ = conn.execute_batch(end);
            delivers.push(deliver);
        }
        let committed = began.and_then(|_| conn.execute_batch("COMMIT").map_err(sql_err));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for deliver in delivers {
            deliver(committed.clone());
        }
    }
}

/// `$N` → `?N`: SQLite's explicitly numbered placeholders bind like PostgreSQL's.
pub fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

pub fn value(p: &SqlParam) -> SqlValue {
    match p {
        SqlParam::Text(s) => SqlValue::Text(s.clone()),
        SqlParam::Int(i) => SqlValue::Integer(*i),
        SqlParam::Bool(b) => SqlValue::Integer(*b as i64),
        SqlParam::OptText(s) => s.clone().map(SqlValue::Text).unwrap_or(SqlValue::Null),
        SqlParam::OptInt(i) => i.map(SqlValue::Integer).unwrap_or(SqlValue::Null),
    }
}

pub fn exec(conn: &Connection, sql: &str, params: &[SqlParam]) -> Result<usize> {
    let mut stmt = conn.prepare_cached(&sqlite_sql(sql)).map_err(sql_err)?;
    stmt.execute(rusqlite::params_from_iter(params.iter().map(value))).map_err(sql_err)
}

pub fn query<T>(
    conn: &Connection,
    sql: &str,
    params: &[SqlParam],
    map: impl Fn(&dyn RowLike) -> Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare_cached(&sqlite_sql(sql)).map_err(sql_err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(value))).map_err(sql_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err)? {
        out.push(map(&Row(row))?);
    }
    Ok(out)
}

pub fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: &[SqlParam],
    map: impl Fn(&dyn RowLike) -> Result<T>,
) -> Result<Option<T>> {
    Ok(query(conn, sql, params, map)?.into_iter().next())
}

pub struct Row<'a>(&'a rusqlite::Row<'a>);

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
}
