//! The merchant console's users, sessions and audit log (PostgreSQL 0013 / SQLite 0014), written once for both
//! databases. A session is found by the SHA-256 of its cookie token; whether it is still alive (idle and absolute
//! expiry) is decided by the conditional UPDATE that moves `last_seen`, never by a read before it. An audit entry
//! of a change paygate makes itself (a user created, a refund reserved, a sandbox charge paid; a key rolled, the
//! public key or a fee rate set — `transactions.rs`, `pos.rs`) is written by that change's transaction.

use crate::rows::{scoped, with, RowLike, SqlParam};
use crate::sql::{job, Tx};
use crate::transactions::{load_order, reserve_refund_tx, settle_charge_tx};
use crate::{ChargeOutcome, RefundRequest, Result, SettledCharge};
use async_trait::async_trait;
use paygate_domain::events::Event;
use paygate_domain::{objects, Mode, Order, Problem, Refund, Scope};
use serde_json::{json, Value};

/// What a console user may do; the permissions of each role are paygate-core's (`console::Permission`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Support,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Support => "support",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "support" => Some(Role::Support),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub id: String,
    pub app_id: String,
    /// Lower-cased at the edge: unique per app.
    pub email: String,
    pub role: Role,
    /// An argon2id PHC string.
    pub password_hash: String,
    pub disabled: bool,
    pub created: i64,
}

/// A session as stored: the token's hash only.
#[derive(Clone)]
pub struct NewSession {
    pub token_hash: Vec<u8>,
    pub user_id: String,
    pub app_id: String,
    pub csrf_token: String,
    pub created: i64,
}

/// A live session and its (enabled) user.
#[derive(Clone)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    pub csrf_token: String,
    pub created: i64,
    pub last_seen: i64,
}

// `Debug` by hand: the password hash and the session's tokens never reach a log line.
impl std::fmt::Debug for ConsoleUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleUser")
            .field("id", &self.id)
            .field("app_id", &self.app_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("password_hash", &"[REDACTED]")
            .field("disabled", &self.disabled)
            .field("created", &self.created)
            .finish()
    }
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSession").field("user_id", &self.user_id).field("created", &self.created).finish()
    }
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession").field("user", &self.user).field("created", &self.created).finish()
    }
}

/// How long a session lives: `idle` seconds since it was last used, `absolute` since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub idle: i64,
    pub absolute: i64,
}

/// Who did what to which object, and the object before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub app_id: String,
    pub mode: Mode,
    /// `None`: the operator's CLI.
    pub user_id: Option<String>,
    /// The user's email, or `cli`.
    pub actor: String,
    pub action: String,
    pub object_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub created: i64,
}

/// An entry as read back, with its position in the log (newest first; cursors on `seq`).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub seq: i64,
    pub entry: AuditEntry,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// The user and its audit entry in one transaction; a taken email of the app is a `Conflict`.
    async fn create_console_user(&self, user: &ConsoleUser, audit: &AuditEntry) -> Result<()>;
    async fn console_user(&self, app_id: &str, email: &str) -> Result<Option<ConsoleUser>>;
    /// The session and its audit entry in one transaction; the user's expired sessions go with it.
    async fn create_console_session(
        &self,
        session: &NewSession,
        limits: SessionLimits,
        audit: &AuditEntry,
    ) -> Result<()>;
    /// The session if it is alive at `now` and its user is enabled. One used within the last minute is read
    /// (`last_seen` as stored); otherwise its `last_seen` is moved to `now` by the same conditional UPDATE that
    /// decides it is alive, and an expired session is deleted.
    async fn touch_console_session(
        &self,
        token_hash: &[u8],
        now: i64,
        limits: SessionLimits,
    ) -> Result<Option<ConsoleSession>>;
    /// Deletes the session (with its audit entry when it existed); false when there was none.
    async fn end_console_session(&self, token_hash: &[u8], audit: &AuditEntry) -> Result<bool>;
    /// Deletes at most `batch` sessions expired at `now` (idle or absolute), for the worker's housekeeping: a
    /// session nobody comes back to is otherwise kept until its user signs in again. How many went.
    async fn delete_expired_console_sessions(&self, now: i64, limits: SessionLimits, batch: i64) -> Result<u64>;
    /// The app's audit log, newest first, entries before `before_seq` when given.
    async fn console_audit(&self, app_id: &str, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditRecord>>;
    /// [`crate::Store::reserve_refund`] with `audit` written in the same transaction; the entry's `before` and
    /// `after` are the order's money as read under its row lock and the pending refund with the order after.
    async fn reserve_refund_audited(
        &self,
        scope: &Scope,
        request: &RefundRequest,
        audit: &AuditEntry,
    ) -> Result<Refund>;
    /// [`crate::Store::settle_charge`] with `audit` written in the same transaction when the charge settles (not
    /// when it was no longer pending); the entry's `before` is the charge's order and status as read under the
    /// order's row lock, its `after` the settled charge's status and transaction number.
    async fn settle_charge_audited(
        &self,
        scope: &Scope,
        charge_id: &str,
        outcome: &ChargeOutcome,
        audit: &AuditEntry,
    ) -> Result<SettledCharge>;
    /// The id of the order with this merchant order number (the scope's unique key).
    async fn order_id_by_merchant_no(&self, scope: &Scope, merchant_order_no: &str) -> Result<Option<String>>;
    /// The scope's events about any of `object_ids` (an order, its charges and refunds), newest first, at most
    /// `limit` (`events_object` index; at most [`MAX_OBJECTS`] ids).
    async fn events_of_objects(&self, scope: &Scope, object_ids: &[String], limit: i64) -> Result<Vec<Event>>;
}

/// The most object ids one [`ConsoleStore::events_of_objects`] call takes.
pub const MAX_OBJECTS: usize = 100;

const USER_COLUMNS: &str = "u.id, u.app_id, u.email, u.role, u.password_hash, u.disabled, u.created";
const INSERT_USER: &str = "INSERT INTO console_users (id, app_id, email, role, password_hash, disabled, created) \
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, email) DO NOTHING";
const INSERT_AUDIT: &str = "INSERT INTO console_audit \
    (app_id, livemode, user_id, actor, action, object_id, before, after, created) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_SESSION: &str = "INSERT INTO console_sessions (token_hash, app_id, user_id, csrf_token, created, \
    last_seen) VALUES ($1, $2, $3, $4, $5, $5)";
const DROP_EXPIRED: &str = "DELETE FROM console_sessions WHERE user_id = $1 AND (last_seen <= $2 OR created <= $3)";
/// Alive means used within `idle` and made within `absolute`: both bounds are in the WHERE, so a request racing
/// the expiry cannot revive a session.
const TOUCH: &str = "UPDATE console_sessions SET last_seen = $2 WHERE token_hash = $1 AND last_seen > $3 \
    AND created > $4";
const DROP_SESSION: &str = "DELETE FROM console_sessions WHERE token_hash = $1";
/// Expired is the exact negation of [`TOUCH`]'s alive; the subquery bounds one pass (both backends take it).
const SWEEP_EXPIRED: &str = "DELETE FROM console_sessions WHERE token_hash IN (SELECT token_hash FROM \
    console_sessions WHERE last_seen <= $1 OR created <= $2 LIMIT $3)";
const ORDER_BY_NO: &str = "SELECT id FROM orders WHERE app_id = $1 AND livemode = $2 AND merchant_order_no = $3";

fn user_sql(filter: &str) -> String {
    format!("SELECT {USER_COLUMNS} FROM console_users u WHERE {filter}")
}

fn session_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {USER_COLUMNS}, s.csrf_token, s.created, s.last_seen FROM console_sessions s \
         JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND NOT u.disabled"
    )
}

/// [`session_sql`] of a session used since `$2` and made after `$3`: alive, and touched recently enough.
fn fresh_session_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {USER_COLUMNS}, s.csrf_token, s.created, s.last_seen FROM console_sessions s \
         JOIN console_users u ON u.id = s.user_id WHERE s.token_hash = $1 AND NOT u.disabled \
         AND s.last_seen > $2 AND s.created > $3"
    )
}

/// A session used within the last minute is answered from a read, so most page views write nothing (on
/// PostgreSQL the write's commit was most of a page's time). `last_seen` then lags by at most this much: idle
/// expiry can come up to a minute early, never late, and the absolute bound is exact.
const TOUCH_EVERY: i64 = 60;

fn session_row(r: &dyn RowLike) -> Result<ConsoleSession> {
    Ok(ConsoleSession { user: user_row(r)?, csrf_token: r.text(7)?, created: r.int(8)?, last_seen: r.int(9)? })
}

fn audit_sql(cursor: bool) -> &'static str {
    if cursor {
        crate::sql::once_sql!(
            "SELECT seq, app_id, livemode, user_id, actor, action, object_id, before, after, created \
             FROM console_audit WHERE app_id = $1 AND seq < $3 ORDER BY seq DESC LIMIT $2"
        )
    } else {
        crate::sql::once_sql!(
            "SELECT seq, app_id, livemode, user_id, actor, action, object_id, before, after, created \
             FROM console_audit WHERE app_id = $1 ORDER BY seq DESC LIMIT $2"
        )
    }
}

fn user_row(r: &dyn RowLike) -> Result<ConsoleUser> {
    let role = r.text(3)?;
    Ok(ConsoleUser {
        id: r.text(0)?,
        app_id: r.text(1)?,
        email: r.text(2)?,
        role: Role::parse(&role).ok_or_else(|| Problem::internal(format!("console_users.role '{role}'")))?,
        password_hash: r.text(4)?,
        disabled: r.boolean(5)?,
        created: r.int(6)?,
    })
}

fn json_column(r: &dyn RowLike, i: usize) -> Result<Option<Value>> {
    r.opt_text(i)?
        .map(|t| serde_json::from_str(&t).map_err(|e| Problem::internal(format!("console_audit JSON: {e}"))))
        .transpose()
}

fn audit_row(r: &dyn RowLike) -> Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.int(0)?,
        entry: AuditEntry {
            app_id: r.text(1)?,
            mode: if r.boolean(2)? { Mode::Live } else { Mode::Test },
            user_id: r.opt_text(3)?,
            actor: r.text(4)?,
            action: r.text(5)?,
            object_id: r.text(6)?,
            before: json_column(r, 7)?,
            after: json_column(r, 8)?,
            created: r.int(9)?,
        },
    })
}

pub(crate) async fn insert_audit(tx: &mut dyn Tx, a: &AuditEntry) -> Result<()> {
    let params = [
        SqlParam::Text(a.app_id.clone()),
        SqlParam::Bool(a.mode.is_live()),
        SqlParam::OptText(a.user_id.clone()),
        SqlParam::Text(a.actor.clone()),
        SqlParam::Text(a.action.clone()),
        SqlParam::Text(a.object_id.clone()),
        SqlParam::OptText(a.before.as_ref().map(Value::to_string)),
        SqlParam::OptText(a.after.as_ref().map(Value::to_string)),
        SqlParam::Int(a.created),
    ];
    tx.exec(INSERT_AUDIT, &params).await?;
    Ok(())
}

/// The money of an order an audit entry shows before and after a refund.
fn order_money(order: &Order) -> Value {
    json!({
        "id": order.id,
        "amount_paid": order.amount_paid.fen(),
        "amount_refunded": order.amount_refunded.fen(),
        "refund_reserved": order.refund_reserved.fen(),
    })
}

#[async_trait]
impl<B: crate::Backend> ConsoleStore for B {
    async fn create_console_user(&self, user: &ConsoleUser, audit: &AuditEntry) -> Result<()> {
        let params = vec![
            SqlParam::Text(user.id.clone()),
            SqlParam::Text(user.app_id.clone()),
            SqlParam::Text(user.email.clone()),
            SqlParam::Text(user.role.as_str().into()),
            SqlParam::Text(user.password_hash.clone()),
            SqlParam::Bool(user.disabled),
            SqlParam::Int(user.created),
        ];
        job!(self, Write, [audit], |tx| {
            // The unique key decides a duplicate, not a read before the insert.
            if tx.exec(INSERT_USER, &params).await? != 1 {
                return Err(Problem::conflict("email_taken", "A console user with this email exists in this app.")
                    .with_param("email"));
            }
            insert_audit(tx, &audit).await
        })
    }

    async fn console_user(&self, app_id: &str, email: &str) -> Result<Option<ConsoleUser>> {
        let params = vec![SqlParam::Text(app_id.into()), SqlParam::Text(email.into())];
        job!(self, Read, [], |tx| {
            tx.query_opt(&user_sql("u.app_id = $1 AND u.email = $2"), &params, user_row).await
        })
    }

    async fn create_console_session(
        &self,
        session: &NewSession,
        limits: SessionLimits,
        audit: &AuditEntry,
    ) -> Result<()> {
        let now = session.created;
        let expired = vec![
            SqlParam::Text(session.user_id.clone()),
            SqlParam::Int(now.saturating_sub(limits.idle)),
            SqlParam::Int(now.saturating_sub(limits.absolute)),
        ];
        let params = vec![
            SqlParam::Bytes(session.token_hash.clone()),
            SqlParam::Text(session.app_id.clone()),
            SqlParam::Text(session.user_id.clone()),
            SqlParam::Text(session.csrf_token.clone()),
            SqlParam::Int(now),
        ];
        job!(self, Write, [audit], |tx| {
            tx.exec(DROP_EXPIRED, &expired).await?;
            tx.exec(INSERT_SESSION, &params).await?;
            insert_audit(tx, &audit).await
        })
    }

    async fn touch_console_session(
        &self,
        token_hash: &[u8],
        now: i64,
        limits: SessionLimits,
    ) -> Result<Option<ConsoleSession>> {
        let key = vec![SqlParam::Bytes(token_hash.to_vec())];
        let touch = with(
            key.clone(),
            [
                SqlParam::Int(now),
                SqlParam::Int(now.saturating_sub(limits.idle)),
                SqlParam::Int(now.saturating_sub(limits.absolute)),
            ],
        );
        let recent = with(
            key.clone(),
            [
                SqlParam::Int(now.saturating_sub(TOUCH_EVERY.min(limits.idle))),
                SqlParam::Int(now.saturating_sub(limits.absolute)),
            ],
        );
        let fresh = job!(self, Read, [recent], |tx| { tx.query_opt(fresh_session_sql(), &recent, session_row).await })?;
        if fresh.is_some() {
            return Ok(fresh);
        }
        job!(self, Write, [], |tx| {
            if tx.exec(TOUCH, &touch).await? != 1 {
                // Expired (or unknown): an expired row is of no further use to anyone.
                tx.exec(DROP_SESSION, &key).await?;
                return Ok(None);
            }
            tx.query_opt(session_sql(), &key, session_row).await
        })
    }

    async fn delete_expired_console_sessions(&self, now: i64, limits: SessionLimits, batch: i64) -> Result<u64> {
        let params = vec![
            SqlParam::Int(now.saturating_sub(limits.idle)),
            SqlParam::Int(now.saturating_sub(limits.absolute)),
            SqlParam::Int(batch.max(1)),
        ];
        job!(self, Write, [], |tx| { tx.exec(SWEEP_EXPIRED, &params).await })
    }

    async fn end_console_session(&self, token_hash: &[u8], audit: &AuditEntry) -> Result<bool> {
        let key = vec![SqlParam::Bytes(token_hash.to_vec())];
        job!(self, Write, [audit], |tx| {
            let ended = tx.exec(DROP_SESSION, &key).await? == 1;
            if ended {
                insert_audit(tx, &audit).await?;
            }
            Ok(ended)
        })
    }

    async fn console_audit(&self, app_id: &str, before_seq: Option<i64>, limit: i64) -> Result<Vec<AuditRecord>> {
        let mut params = vec![SqlParam::Text(app_id.into()), SqlParam::Int(limit)];
        params.extend(before_seq.map(SqlParam::Int));
        let sql = audit_sql(before_seq.is_some());
        job!(self, Read, [], |tx| { tx.query(sql, &params, audit_row).await })
    }

    async fn reserve_refund_audited(
        &self,
        scope: &Scope,
        request: &RefundRequest,
        audit: &AuditEntry,
    ) -> Result<Refund> {
        job!(self, Write, [scope, request, audit], |tx| {
            // The order row lock first (the one lock order), so `before` is what the reservation then changes.
            let before = load_order(tx, &scope, &request.order_id, true).await?;
            let before = before.ok_or_else(|| Problem::not_found("order", &request.order_id))?;
            let refund = reserve_refund_tx(tx, &scope, &request).await?;
            let after = load_order(tx, &scope, &refund.order_id, false).await?;
            let after = after.ok_or_else(|| crate::sql::vanished("order"))?;
            let mut audit = audit;
            audit.object_id = refund.id.clone();
            audit.before = Some(json!({ "order": order_money(&before) }));
            audit.after = Some(json!({ "order": order_money(&after), "refund": objects::refund(&refund) }));
            insert_audit(tx, &audit).await?;
            Ok(refund)
        })
    }

    async fn settle_charge_audited(
        &self,
        scope: &Scope,
        charge_id: &str,
        outcome: &ChargeOutcome,
        audit: &AuditEntry,
    ) -> Result<SettledCharge> {
        job!(self, Write, [scope, charge_id, outcome, audit], |tx| {
            let (settled, before) = settle_charge_tx(tx, &scope, &charge_id, &outcome).await?;
            if let SettledCharge::Settled { charge, .. } = &settled {
                let mut audit = audit;
                audit.before = Some(json!({ "order": before.order_id, "status": before.status.as_str() }));
                audit.after =
                    Some(json!({ "status": charge.status.as_str(), "transaction_no": charge.transaction_no }));
                insert_audit(tx, &audit).await?;
            }
            Ok(settled)
        })
    }

    async fn order_id_by_merchant_no(&self, scope: &Scope, merchant_order_no: &str) -> Result<Option<String>> {
        let params = scoped(scope, merchant_order_no);
        job!(self, Read, [], |tx| { tx.query_opt(ORDER_BY_NO, &params, |r| r.text(0)).await })
    }

    async fn events_of_objects(&self, scope: &Scope, object_ids: &[String], limit: i64) -> Result<Vec<Event>> {
        if object_ids.is_empty() {
            return Ok(Vec::new());
        }
        if object_ids.len() > MAX_OBJECTS {
            return Err(Problem::internal("events_of_objects: too many ids"));
        }
        let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
        let mut marks = Vec::with_capacity(object_ids.len());
        for id in object_ids {
            params.push(SqlParam::Text(id.clone()));
            marks.push(format!("${}", params.len()));
        }
        params.push(SqlParam::Int(limit));
        // `app_id || ''` keeps the scope a filter, not an index: SQLite (no statistics) would otherwise walk the
        // app's whole `events_scope_seq` to avoid sorting; a payment's few events are found by `events_object`.
        let sql = format!(
            "SELECT {} FROM events WHERE object_id IN ({}) AND app_id || '' = $1 AND livemode = $2 \
             ORDER BY seq DESC LIMIT ${}",
            crate::outbox::EVENT_COLUMNS,
            marks.join(", "),
            params.len()
        );
        job!(self, Read, [], |tx| { tx.query(&sql, &params, crate::outbox::event).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password_hash_or_session_tokens() {
        let user = ConsoleUser {
            id: "usr_1".into(),
            app_id: "app_1".into(),
            email: "a@b.example".into(),
            role: Role::Admin,
            password_hash: "$argon2id$v=19$secret-hash".into(),
            disabled: false,
            created: 1,
        };
        let session = ConsoleSession { user: user.clone(), csrf_token: "csrf-secret".into(), created: 1, last_seen: 2 };
        let new = NewSession {
            token_hash: vec![7; 32],
            user_id: "usr_1".into(),
            app_id: "app_1".into(),
            csrf_token: "csrf-secret".into(),
            created: 1,
        };
        let shown = format!("{user:?} {session:?} {new:?}");
        assert!(!shown.contains("secret") && !shown.contains("7, 7"), "{shown}");
        assert!(shown.contains("a@b.example"));
    }
}
