//! The console's webhook delivery log: the deliveries of one app and mode, newest first, optionally of one endpoint
//! and in one status. Read per endpoint (an app has few) and merged, so each query walks one endpoint's deliveries
//! from the cursor down and stops at the page size.

use crate::outbox::{self, Attempt};
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

const SCOPE_ENDPOINTS: &str = "SELECT id FROM webhook_endpoints WHERE app_id = $1 AND livemode = $2 ORDER BY seq";
/// $1 app, $2 livemode, $3 endpoint, $4 before seq, $5 limit, [$6 status].
fn log_sql(with_status: bool) -> &'static str {
    const BASE: &str = "SELECT d.seq, d.event_id, e.type, d.endpoint_id, d.status, d.attempts, d.created \
        FROM deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
        JOIN events e ON e.id = d.event_id AND e.created = d.event_created \
        WHERE w.app_id = $1 AND w.livemode = $2 AND d.endpoint_id = $3 AND d.seq < $4";
    if with_status {
        crate::sql::once_sql!("{BASE} AND d.status = $6 ORDER BY d.seq DESC LIMIT $5")
    } else {
        crate::sql::once_sql!("{BASE} ORDER BY d.seq DESC LIMIT $5")
    }
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
        last_attempt: None,
    })
}

#[async_trait]
impl<B: crate::Backend> DeliveryLogStore for B {
    async fn delivery_log(&self, scope: &Scope, filter: &DeliveryLogFilter, limit: i64) -> Result<Vec<DeliveryLogRow>> {
        let limit = limit.clamp(1, MAX_LOG_PAGE);
        let scope_params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
        let filter = filter.clone();
        job!(self, Read, [], |tx| {
            let endpoints = match &filter.endpoint_id {
                Some(id) => vec![id.clone()],
                None => tx.query(SCOPE_ENDPOINTS, &scope_params, |r| r.text(0)).await?,
            };
            let mut rows = Vec::new();
            for endpoint in endpoints {
                let mut params = scope_params.clone();
                params.push(SqlParam::Text(endpoint));
                params.push(SqlParam::Int(filter.before.unwrap_or(i64::MAX)));
                params.push(SqlParam::Int(limit));
                params.extend(filter.status.clone().map(SqlParam::Text));
                rows.extend(tx.query(log_sql(filter.status.is_some()), &params, log_row).await?);
            }
            rows.sort_by_key(|r| std::cmp::Reverse(r.seq));
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            for row in &mut rows {
                let attempts =
                    tx.query(outbox::ATTEMPTS_OF_DELIVERY, &[SqlParam::Int(row.seq)], outbox::attempt).await?;
                row.last_attempt = attempts.into_iter().last();
            }
            Ok(rows)
        })
    }
}
