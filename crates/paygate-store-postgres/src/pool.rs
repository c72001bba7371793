//! Connections from the deadpool, lent to a job as a [`Tx`]: the error classification, the
//! bounded statement cache, and the rule that a connection dropped inside a transaction is
//! closed, never reused.

use async_trait::async_trait;
use deadpool_postgres::{Object, PoolError};
use paygate_domain::Problem;
use paygate_store::rows::{RowLike, SqlArray, SqlParam};
use paygate_store::sql::{RowSink, Tx};
use paygate_store::Result;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

/// Prepared statements kept per connection. The store's statements are fixed texts plus a few
/// filter shapes (LIMIT/OFFSET are parameters), but 知晓云 `where` filters can take any shape:
/// past this many the connection's cache is emptied (the server deallocates them) and refills
/// with what is in use.
const STATEMENT_CACHE_MAX: usize = 256;

/// The error with its cause chain ("error connecting to server: Connection refused"); the
/// driver's messages never include the password. The database being away (no connection, a
/// connection lost, the server shutting down or full) is `Unavailable` — a 503 with
/// `Retry-After`, not a 500 — and text PostgreSQL cannot store (a NUL that got past the
/// faces) is the client's error, never ours.
#[track_caller]
pub fn pg_err(e: tokio_postgres::Error) -> Problem {
    use tokio_postgres::error::SqlState;
    let mut message = format!("postgres: {e}");
    let mut source = std::error::Error::source(&e);
    let mut io = false;
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        io |= cause.is::<std::io::Error>();
        source = cause.source();
    }
    let code = e.code();
    if code == Some(&SqlState::CHARACTER_NOT_IN_REPERTOIRE) || code == Some(&SqlState::UNTRANSLATABLE_CHARACTER) {
        return Problem::invalid("body", "A text field contains a character that cannot be stored (such as NUL).");
    }
    let away = e.is_closed()
        || (code.is_none() && io)
        || code.is_some_and(|c| {
            c.code().starts_with("08")
                || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(c)
                || c == &SqlState::TOO_MANY_CONNECTIONS
        });
    if away {
        Problem::unavailable(message)
    } else {
        Problem::internal(message)
    }
}

/// No connection within the checkout or connect timeout is the database being away, like a
/// refused connection: 503.
#[track_caller]
pub fn pool_err(e: PoolError) -> Problem {
    match e {
        // Opening a connection failed without an answer from PostgreSQL (refused, TLS refused or
        // not offered, certificate not trusted): the database is out of reach, whatever the cause.
        PoolError::Backend(e) if e.code().is_none() => Problem::unavailable(pg_err(e).message),
        PoolError::Backend(e) => pg_err(e),
        PoolError::Timeout(kind) => Problem::unavailable(format!("postgres: no connection in time ({kind:?})")),
        PoolError::Closed => Problem::unavailable("postgres: the connection pool is closed"),
        other => Problem::internal(format!("postgres pool: {other}")),
    }
}

/// A pooled connection lent to one job. While `open` (between BEGIN and its COMMIT/ROLLBACK
/// answer) dropping it — the job's future was cancelled, or the end failed — takes the
/// connection out of the pool and closes it, so the server rolls the transaction back and no
/// later job can run inside it.
pub struct PgTx {
    conn: Option<Object>,
    pub open: bool,
}

impl Drop for PgTx {
    fn drop(&mut self) {
        if self.open {
            if let Some(conn) = self.conn.take() {
                // Detached from the pool; dropping the client ends its connection task.
                drop(Object::take(conn));
            }
        }
    }
}

fn refs(params: &[SqlParam]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            SqlParam::Text(s) => s as &(dyn ToSql + Sync),
            SqlParam::Int(i) => i,
            SqlParam::Bool(b) => b,
            SqlParam::OptText(o) => o,
            SqlParam::OptInt(o) => o,
            SqlParam::Bytes(b) => b,
            SqlParam::Array(SqlArray::Text(v)) => v,
            SqlParam::Array(SqlArray::Int(v)) => v,
            SqlParam::Array(SqlArray::Bool(v)) => v,
        })
        .collect()
}

impl PgTx {
    pub fn new(conn: Object) -> PgTx {
        PgTx { conn: Some(conn), open: false }
    }

    pub fn client(&self) -> &Object {
        self.conn.as_ref().expect("the connection stays until drop")
    }

    async fn statement(&self, sql: &str) -> Result<Statement> {
        let client = self.client();
        if client.statement_cache.size() >= STATEMENT_CACHE_MAX {
            client.statement_cache.clear();
        }
        client.prepare_cached(sql).await.map_err(pg_err)
    }
}

#[async_trait]
impl Tx for PgTx {
    async fn exec(&mut self, sql: &str, params: &[SqlParam]) -> Result<u64> {
        let statement = self.statement(sql).await?;
        self.client().execute(&statement, &refs(params)).await.map_err(pg_err)
    }

    async fn each_row(&mut self, sql: &str, params: &[SqlParam], row: &mut RowSink<'_>) -> Result<()> {
        let statement = self.statement(sql).await?;
        for r in self.client().query(&statement, &refs(params)).await.map_err(pg_err)? {
            row(&Row(&r))?;
        }
        Ok(())
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        self.client().batch_execute(sql).await.map_err(pg_err)
    }

    fn for_update(&self) -> &'static str {
        "FOR UPDATE"
    }

    fn for_update_skip_locked(&self) -> &'static str {
        "FOR UPDATE SKIP LOCKED"
    }
}

struct Row<'a>(&'a tokio_postgres::Row);

impl RowLike for Row<'_> {
    fn text(&self, i: usize) -> Result<String> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn boolean(&self, i: usize) -> Result<bool> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        self.0.try_get(i).map_err(pg_err)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.0.try_get(i).map_err(pg_err)
    }
}
