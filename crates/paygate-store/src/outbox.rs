//! Events, webhook endpoints and deliveries as stored: shared SQL and types. An event row and
//! its deliveries are inserted by the same transaction as the state change they describe.

use crate::rows::{RowLike, SqlParam};
use crate::Result;
use paygate_domain::events::Event;
use paygate_domain::ids::IdKind;
use paygate_domain::{Mode, Problem, Scope};
use serde_json::Value;

pub(crate) mod claim;
pub(crate) mod endpoints;
pub mod history;

#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub id: String,
    pub scope: Scope,
    pub created: i64,
    pub url: String,
    pub secret: String,
    /// `None`: every event type.
    pub types: Option<Vec<String>>,
}

impl NewEndpoint {
    /// The endpoint as it is once created (enabled; the secret is not part of it).
    pub fn view(&self) -> Endpoint {
        Endpoint {
            id: self.id.clone(),
            created: self.created,
            livemode: self.scope.mode.is_live(),
            url: self.url.clone(),
            types: self.types.clone(),
            disabled: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub created: i64,
    pub livemode: bool,
    pub url: String,
    pub types: Option<Vec<String>>,
    /// A disabled endpoint is kept but sent nothing until enabled again.
    pub disabled: bool,
}

impl Endpoint {
    /// `enabled` or `disabled`, as `/v1` shows it (Stripe's `status`).
    pub fn status(&self) -> &'static str {
        if self.disabled {
            "disabled"
        } else {
            "enabled"
        }
    }
}

/// What a worker asks for when it claims deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub now: i64,
    /// The claimer owns what it claims until then; it records each attempt with this value.
    pub lease_until: i64,
    /// At most this many deliveries.
    pub limit: i64,
    /// At most this many deliveries of one endpoint leased at once, counting the leases already
    /// out (on any node): a slow endpoint never holds more of the worker than this.
    pub per_endpoint: i64,
}

/// A delivery a worker has claimed, with everything needed to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub seq: i64,
    pub endpoint_id: String,
    pub url: String,
    pub secret: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The claim's lease: only its holder decides what happens to the delivery next.
    pub lease_until: i64,
    /// Its event; `event.created` is the month the delivery is kept in (`event_created`).
    pub event: Event,
}

/// A finished attempt and what it decided, as the claimer records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub seq: i64,
    /// The delivery's event's `created` ([`DueDelivery::event`]): the month the delivery lives in.
    pub event_created: i64,
    /// The lease the delivery was claimed with ([`DueDelivery::lease_until`]).
    pub lease_until: i64,
    pub attempt: Attempt,
    pub result: AttemptResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptResult {
    Delivered,
    RetryAt(i64),
    GiveUp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub endpoint_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub log: Vec<Attempt>,
}

pub fn new_event(scope: &Scope, kind: &str, object: Value, now: i64) -> Result<Event> {
    let mut random = [0u8; 32];
    getrandom::getrandom(&mut random).map_err(Problem::internal)?;
    Ok(Event {
        id: IdKind::Event.generate(&random),
        app_id: scope.app_id.clone(),
        mode: scope.mode,
        created: now,
        kind: kind.into(),
        object,
        pending_webhooks: 0,
    })
}

/// `object_id` (`$7`): the id of the event's object, so the console finds a payment's events by index.
pub const INSERT_EVENT: &str = "INSERT INTO events (id, app_id, livemode, created, type, data, object_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// One pending delivery per live, enabled endpoint of the event's app and mode that subscribes to it,
/// in the event's month (`event_created` = the event's `created`, `$2`).
pub const FAN_OUT: &str = "INSERT INTO deliveries \
    (event_id, endpoint_id, created, status, attempts, next_attempt_at, event_created) \
    SELECT $1, e.id, $2, 'pending', 0, $2, $2 FROM webhook_endpoints e \
    WHERE e.app_id = $3 AND e.livemode = $4 AND NOT e.deleted AND NOT e.disabled \
    AND (e.all_events OR EXISTS (SELECT 1 FROM webhook_endpoint_events t WHERE t.endpoint_id = e.id AND t.type = $5))";

/// The statements that record `event` and queue its deliveries, in the caller's transaction.
pub fn event_statements(e: &Event) -> [(&'static str, Vec<SqlParam>); 2] {
    use SqlParam::*;
    [
        (
            INSERT_EVENT,
            vec![
                Text(e.id.clone()),
                Text(e.app_id.clone()),
                Bool(e.mode.is_live()),
                Int(e.created),
                Text(e.kind.clone()),
                Text(e.object.to_string()),
                OptText(e.object.get("id").and_then(serde_json::Value::as_str).map(str::to_string)),
            ],
        ),
        (
            FAN_OUT,
            vec![
                Text(e.id.clone()),
                Int(e.created),
                Text(e.app_id.clone()),
                Bool(e.mode.is_live()),
                Text(e.kind.clone()),
            ],
        ),
    ]
}

/// `pending_webhooks` names the event's month, so PostgreSQL counts in that month's partition only.
pub const EVENT_COLUMNS: &str = "id, app_id, livemode, created, type, data, \
    (SELECT COUNT(*) FROM deliveries d \
    WHERE d.event_id = events.id AND d.event_created = events.created AND d.status = 'pending')";

pub fn event(r: &dyn RowLike) -> Result<Event> {
    Ok(Event {
        id: r.text(0)?,
        app_id: r.text(1)?,
        mode: Mode::from_live(r.boolean(2)?),
        created: r.int(3)?,
        kind: r.text(4)?,
        object: serde_json::from_str(&r.text(5)?).map_err(|e| Problem::internal(format!("stored event JSON: {e}")))?,
        pending_webhooks: r.int(6)?,
    })
}

pub fn select_event_sql() -> String {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE app_id = $1 AND livemode = $2 AND id = $3")
}

pub const EVENT_SEQ: &str = "SELECT seq FROM events WHERE app_id = $1 AND livemode = $2 AND id = $3";

/// Events newest first, filtered by type and `created`, paged by cursor (`cursor_seq` as for orders).
pub fn list_events_query(
    scope: &Scope,
    kind: Option<&str>,
    created: &paygate_domain::paging::CreatedRange,
    limit: i64,
    cursor_seq: Option<i64>,
    ending_before: bool,
) -> (String, Vec<SqlParam>) {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE app_id = $1 AND livemode = $2");
    let mut push = |clause: String, p: SqlParam, sql: &mut String| {
        params.push(p);
        sql.push_str(&format!(" AND {clause} ${}", params.len()));
    };
    if let Some(k) = kind {
        push("type =".into(), SqlParam::Text(k.into()), &mut sql);
    }
    for (op, v) in [(">", created.gt), (">=", created.gte), ("<", created.lt), ("<=", created.lte)] {
        if let Some(v) = v {
            push(format!("created {op}"), SqlParam::Int(v), &mut sql);
        }
    }
    if let Some(seq) = cursor_seq {
        push(format!("seq {}", if ending_before { ">" } else { "<" }), SqlParam::Int(seq), &mut sql);
    }
    params.push(SqlParam::Int(limit + 1));
    sql.push_str(&format!(" ORDER BY seq {} LIMIT ${}", if ending_before { "ASC" } else { "DESC" }, params.len()));
    (sql, params)
}

pub const INSERT_ENDPOINT: &str = "INSERT INTO webhook_endpoints \
    (id, app_id, livemode, created, url, secret, all_events) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const INSERT_ENDPOINT_TYPE: &str = "INSERT INTO webhook_endpoint_events (endpoint_id, type) VALUES ($1, $2)";
pub const ENDPOINT_TYPES: &str = "SELECT type FROM webhook_endpoint_events WHERE endpoint_id = $1 ORDER BY type";
pub const LIST_ENDPOINTS: &str = "SELECT id, created, livemode, url, all_events, disabled FROM webhook_endpoints \
    WHERE app_id = $1 AND livemode = $2 AND NOT deleted ORDER BY seq";
pub const DELETE_ENDPOINT: &str =
    "UPDATE webhook_endpoints SET deleted = TRUE WHERE app_id = $1 AND livemode = $2 AND id = $3 AND NOT deleted";
/// Deliveries still queued for a deleted or disabled endpoint are dropped with it.
pub const DROP_ENDPOINT_DELIVERIES: &str =
    "UPDATE deliveries SET status = 'failed' WHERE endpoint_id = $1 AND status = 'pending'";

pub const INSERT_ATTEMPT: &str = "INSERT INTO delivery_attempts \
    (delivery_seq, attempted_at, status_code, latency_ms, error, response_snippet, event_created) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The attempt's verdict moves the delivery only while its claim still holds (the lease is the
/// one it was claimed with: a node that outlived its lease decides nothing), the delivery is
/// pending, and its endpoint still exists: a deletion during the attempt is never undone.
pub const DELIVERY_DONE: &str = "UPDATE deliveries SET status = $2, attempts = attempts + 1, lease_until = NULL, \
    next_attempt_at = $3 WHERE seq = $1 AND event_created = $5 AND lease_until = $4 AND status = 'pending' \
    AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE NOT deleted)";
/// Otherwise the attempt still counts (the log shows it), and the claim's own lease is let go.
pub const DELIVERY_ATTEMPT_COUNTED: &str = "UPDATE deliveries SET attempts = attempts + 1, \
    lease_until = CASE WHEN lease_until = $2 THEN NULL ELSE lease_until END WHERE seq = $1 AND event_created = $3";
/// A claimed delivery that cannot be sent at all (its stored event or endpoint unreadable) is
/// failed with the reason logged as an attempt, so it neither blocks nor repeats.
pub const DELIVERY_UNSENDABLE: &str =
    "UPDATE deliveries SET status = 'failed', lease_until = NULL WHERE seq = $1 AND event_created = $2";
pub const DELIVERIES_OF_EVENT: &str =
    "SELECT d.seq, d.endpoint_id, d.status, d.attempts, d.next_attempt_at FROM deliveries d \
    JOIN events e ON e.id = d.event_id AND e.created = d.event_created \
    WHERE e.app_id = $1 AND e.livemode = $2 AND e.id = $3 ORDER BY d.seq";
pub const ATTEMPTS_OF_DELIVERY: &str = "SELECT attempted_at, status_code, latency_ms, error, response_snippet \
    FROM delivery_attempts WHERE delivery_seq = $1 ORDER BY seq";
/// A manual resend queues a fresh delivery for every enabled endpoint that would receive the event now,
/// in the event's month. $1 event, $2 now, $3 app, $4 livemode, $5 type.
pub const RESEND: &str = "INSERT INTO deliveries \
    (event_id, endpoint_id, created, status, attempts, next_attempt_at, event_created) \
    SELECT $1, e.id, $2, 'pending', 0, $2, v.created FROM webhook_endpoints e \
    JOIN events v ON v.id = $1 AND v.app_id = $3 AND v.livemode = $4 \
    WHERE e.app_id = $3 AND e.livemode = $4 AND NOT e.deleted AND NOT e.disabled \
    AND (e.all_events OR EXISTS (SELECT 1 FROM webhook_endpoint_events t WHERE t.endpoint_id = e.id AND t.type = $5))";

pub fn attempt_params(seq: i64, event_created: i64, a: &Attempt) -> Vec<SqlParam> {
    use SqlParam::*;
    vec![
        Int(seq),
        Int(a.attempted_at),
        OptInt(a.status_code),
        Int(a.latency_ms),
        OptText(a.error.clone()),
        OptText(a.response_snippet.clone()),
        Int(event_created),
    ]
}

/// The statements that record one attempt: its log row, then the verdict ([`DELIVERY_DONE`]);
/// when that changes no row, [`counted_params`] for [`DELIVERY_ATTEMPT_COUNTED`].
pub fn done_params(r: &AttemptRecord) -> Vec<SqlParam> {
    let (status, next) = match r.result {
        AttemptResult::Delivered => ("delivered", r.attempt.attempted_at),
        AttemptResult::RetryAt(at) => ("pending", at),
        AttemptResult::GiveUp => ("failed", r.attempt.attempted_at),
    };
    use SqlParam::Int;
    vec![Int(r.seq), SqlParam::Text(status.into()), Int(next), Int(r.lease_until), Int(r.event_created)]
}

pub fn counted_params(r: &AttemptRecord) -> Vec<SqlParam> {
    vec![SqlParam::Int(r.seq), SqlParam::Int(r.lease_until), SqlParam::Int(r.event_created)]
}

pub fn attempt(r: &dyn RowLike) -> Result<Attempt> {
    Ok(Attempt {
        attempted_at: r.int(0)?,
        status_code: r.opt_int(1)?,
        latency_ms: r.int(2)?,
        error: r.opt_text(3)?,
        response_snippet: r.opt_text(4)?,
    })
}

pub const EXPIRED_ORDERS: &str = "SELECT app_id, livemode, id FROM orders \
    WHERE status = 'created' AND time_expire <= $1 ORDER BY time_expire LIMIT $2";
pub const CLOSE_ORDER: &str = "UPDATE orders SET status = 'closed' \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'created' AND time_expire <= $4";

pub const LATE_PAYMENTS_TO_REFUND: &str =
    "SELECT o.app_id, o.livemode, o.id FROM orders o JOIN apps a ON a.id = o.app_id \
    WHERE o.status = 'paid_after_close' AND o.refund_reserved < o.amount_paid AND a.late_payment = 'refund' LIMIT $1";

/// How many deliveries are pending and when the oldest of them was queued; reads only the
/// partial index `deliveries_pending_created` (migration 4), not the delivered history.
pub const OUTBOX_STATS: &str = "SELECT COUNT(*), MIN(created) FROM deliveries WHERE status = 'pending'";

/// The outbox as `/metrics` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Deliveries not yet delivered or given up (due now or waiting for a retry).
    pub pending: i64,
    /// Seconds since the oldest pending delivery was queued; 0 when nothing is pending.
    pub oldest_pending_age_seconds: i64,
}
