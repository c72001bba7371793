//! A deliberately small connection pool: a semaphore bounds connections, each keeps its own
//! prepared-statement cache, and a connection dropped while inside a transaction (its request
//! future was cancelled) is closed instead of reused, so the server rolls that transaction back.

use paygate_domain::Problem;
use paygate_store::rows::{RowLike, SqlParam};
use paygate_store::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Statement};

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

pub fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

struct Idle {
    client: Client,
    statements: HashMap<String, Statement>,
}

pub struct Pool {
    config: Config,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
}

impl Pool {
    pub fn new(config: Config, size: usize) -> Pool {
        Pool { config, idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(size)) }
    }

    pub async fn get(self: &Arc<Self>) -> Result<Conn> {
        let permit = self.permits.clone().acquire_owned().await.map_err(Problem::internal)?;
        let idle = self.idle.lock().map_err(|_| Problem::internal("pool poisoned"))?.pop();
        let idle = match idle {
            Some(c) if !c.client.is_closed() => c,
            _ => {
                let (client, connection) = self.config.connect(NoTls).await.map_err(pg_err)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Idle { client, statements: HashMap::new() }
            }
        };
        Ok(Conn { inner: Some(idle), pool: self.clone(), in_transaction: false, _permit: permit })
    }
}

pub struct Conn {
    inner: Option<Idle>,
    pool: Arc<Pool>,
    in_transaction: bool,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(idle) = self.inner.take() {
            if !self.in_transaction && !idle.client.is_closed() {
                if let Ok(mut pool) = self.pool.idle.lock() {
                    pool.push(idle);
                }
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
        })
        .collect()
}

impl Conn {
    fn idle(&mut self) -> &mut Idle {
        self.inner.as_mut().expect("connection present until drop")
    }

    pub fn client(&mut self) -> &Client {
        &self.idle().client
    }

    async fn statement(&mut self, sql: &str) -> std::result::Result<Statement, tokio_postgres::Error> {
        let idle = self.idle();
        if let Some(s) = idle.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = idle.client.prepare(sql).await?;
        idle.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub async fn begin(&mut self) -> Result<()> {
        self.in_transaction = true;
        self.idle().client.batch_execute("BEGIN").await.map_err(pg_err)
    }

    pub async fn commit(&mut self) -> Result<()> {
        self.idle().client.batch_execute("COMMIT").await.map_err(pg_err)?;
        self.in_transaction = false;
        Ok(())
    }

    /// Rolls back after a failed step; the original error is what the caller reports.
    pub async fn rollback(&mut self) {
        if self.idle().client.batch_execute("ROLLBACK").await.is_ok() {
            self.in_transaction = false;
        }
    }

    pub async fn exec_raw(
        &mut self,
        sql: &str,
        params: &[SqlParam],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let stmt = self.statement(sql).await?;
        self.idle().client.execute(&stmt, &refs(params)).await
    }

    pub async fn exec(&mut self, sql: &str, params: &[SqlParam]) -> Result<u64> {
        self.exec_raw(sql, params).await.map_err(pg_err)
    }

    pub async fn query<T>(
        &mut self,
        sql: &str,
        params: &[SqlParam],
        map: impl Fn(&dyn RowLike) -> Result<T>,
    ) -> Result<Vec<T>> {
        let stmt = self.statement(sql).await.map_err(pg_err)?;
        let rows = self.idle().client.query(&stmt, &refs(params)).await.map_err(pg_err)?;
        rows.iter().map(|r| map(&Row(r))).collect()
    }

    pub async fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[SqlParam],
        map: impl Fn(&dyn RowLike) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.query(sql, params, map).await?.into_iter().next())
    }
}

pub struct Row<'a>(pub &'a tokio_postgres::Row);

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
}
