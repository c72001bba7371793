//! The console's webhook delivery log: the deliveries of one app and mode, newest first, optionally of one endpoint
//! and in one status, each with its latest attempt, read by one query. The mode's endpoints are few and each one's
//! deliveries are walked newest first on `deliveries_endpoint_seq` (endpoint_id, seq) only as deep as one page: a
//! correlated subquery finds the seq of the endpoint's `limit`-th newest match, so the merge sorts at most
//! endpoints × page rows however long the history is.

use crate::outbox::Attempt;
use crate::rows::{RowLike, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::Scope;

/// At most this many rows per page of the log.
pub const MAX_LOG_PAGE: i64 = 100;

/// What the delivery log shows a status may be.
pub const DELIVERY_STATUSES: [&str; 3] = ["pending", "delivered", "failed"];

/// One row of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLogRow {
    /// The cursor: the next page is `before = seq` of the last row.
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    pub status: String,
    pub attempts: i64,
    pub created: i64,
    /// The latest attempt, if any was made.
    pub last_attempt: Option<Attempt>,
}

/// Which deliveries: of one endpoint or of all the scope's endpoints, in one status or any, older than `before`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryLogFilter {
    pub endpoint_id: Option<String>,
    pub status: Option<String>,
    pub before: Option<i64>,
}

#[async_trait]
pub trait DeliveryLogStore: Send + Sync {
    /// Up to `limit` (1..=[`MAX_LOG_PAGE`]) deliveries of the scope's endpoints, newest first. An endpoint of
    /// another app or mode matches nothing.
    async fn delivery_log(&self, scope: &Scope, filter: &DeliveryLogFilter, limit: i64) -> Result<Vec<DeliveryLogRow>>;
}

/// The query and its parameters: `$1` app, `$2` livemode, `$3` before seq, `$4` limit, `$5` limit - 1, then the
/// status and the endpoint when filtered.
fn log_query(scope: &Scope, filter: &DeliveryLogFilter, limit: i64) -> (String, Vec<SqlParam>) {
    let mut params = vec![
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Int(filter.before.unwrap_or(i64::MAX)),
        SqlParam::Int(limit),
        SqlParam::Int(limit - 1),
    ];
    let (mut of_status, mut deep_status, mut of_endpoint) = (String::new(), String::new(), String::new());
    if let Some(status) = &filter.status {
        params.push(SqlParam::Text(status.clone()));
        of_status = format!(" AND d.status = ${}", params.len());
        deep_status = format!(" AND x.status = ${}", params.len());
    }
    if let Some(endpoint) = &filter.endpoint_id {
        params.push(SqlParam::Text(endpoint.clone()));
        of_endpoint = format!(" AND w.id = ${}", params.len());
    }
    let sql = format!(
        "SELECT d.seq, d.event_id, e.type, d.endpoint_id, d.status, d.attempts, d.created, \
         a.attempted_at, a.status_code, a.latency_ms, a.error, a.response_snippet \
         FROM webhook_endpoints w \
         JOIN deliveries d ON d.endpoint_id = w.id AND d.seq < $3{of_status} AND d.seq >= COALESCE(( \
             SELECT x.seq FROM deliveries x WHERE x.endpoint_id = w.id AND x.seq < $3{deep_status} \
             ORDER BY x.seq DESC LIMIT 1 OFFSET $5), 0) \
         JOIN events e ON e.id = d.event_id AND e.created = d.event_created \
         LEFT JOIN delivery_attempts a ON a.event_created = d.event_created AND a.seq = ( \
             SELECT MAX(y.seq) FROM delivery_attempts y \
             WHERE y.delivery_seq = d.seq AND y.event_created = d.event_created) \
         WHERE w.app_id = $1 AND w.livemode = $2{of_endpoint} ORDER BY d.seq DESC LIMIT $4"
    );
    (sql, params)
}

fn log_row(r: &dyn RowLike) -> Result<DeliveryLogRow> {
    Ok(DeliveryLogRow {
        seq: r.int(0)?,
        event_id: r.text(1)?,
        event_type: r.text(2)?,
        endpoint_id: r.text(3)?,
        status: r.text(4)?,
        attempts: r.int(5)?,
        created: r.int(6)?,
        last_attempt: match r.opt_int(7)? {
            None => None,
            Some(attempted_at) => Some(Attempt {
                attempted_at,
                status_code: r.opt_int(8)?,
                latency_ms: r.int(9)?,
                error: r.opt_text(10)?,
                response_snippet: r.opt_text(11)?,
            }),
        },
    })
}

#[async_trait]
impl<B: crate::Backend> DeliveryLogStore for B {
    async fn delivery_log(&self, scope: &Scope, filter: &DeliveryLogFilter, limit: i64) -> Result<Vec<DeliveryLogRow>> {
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let (sql, params) = log_query(scope, filter, limit);
        job!(self, Read, [], |tx| { tx.query(&sql, &params, log_row).await })
    }
}
