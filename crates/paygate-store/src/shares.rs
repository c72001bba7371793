//! Profit-sharing SQL shared by both backends. A share reserves its amount on the order with
//! `RESERVE_SHARE`, a conditional update that re-checks every bound `plan_share` checked, so two
//! concurrent shares (or a share and a refund) can never together break them.

use crate::rows::{RowLike, SqlParam};
use crate::Result;
use async_trait::async_trait;
use paygate_domain::shares::{stored_receivers, ProfitShare, Receiver, ShareKind, ShareStatus};
use paygate_domain::Order;
use paygate_domain::{Amount, Mode, Problem, Scope};

#[async_trait]
pub trait ShareStore: Send + Sync {
    /// Under the order lock / single writer: an existing share for the out_order_no, or
    /// `plan_share` + `RESERVE_SHARE` + a pending share row.
    async fn reserve_share(&self, scope: &Scope, request: &ShareRequest, max_share_bps: i64) -> Result<ShareReserved>;
    /// Pending → succeeded, or → failed releasing its reservation.
    /// With its `profit_sharing.succeeded` / `.failed` event, in the same transaction.
    async fn finish_share(
        &self,
        scope: &Scope,
        share_id: &str,
        outcome: &ShareOutcome,
        now: i64,
    ) -> Result<ProfitShare>;
    /// Ends sharing of an order (WeChat 完结分账). `None` if the order does not exist.
    async fn finish_sharing(&self, scope: &Scope, order_id: &str) -> Result<Option<Order>>;
    /// Reserves a return of `amount` (default: all not yet returned) of a succeeded share.
    async fn reserve_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Option<Amount>,
    ) -> Result<(ProfitShare, Amount)>;
    /// Counts the return (the order may then be refunded) or releases it.
    /// With a `profit_sharing.returned` event when it succeeded, in the same transaction.
    async fn finish_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Amount,
        succeeded: bool,
        now: i64,
    ) -> Result<ProfitShare>;
    async fn share(&self, scope: &Scope, id: &str) -> Result<Option<ProfitShare>>;
    async fn shares_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<ProfitShare>>;

    async fn set_app_max_share(&self, app_id: &str, bps: i64) -> Result<bool>;
}

/// What a share request needs from the caller; the bounds are decided in the transaction.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    pub id: String,
    pub order_id: String,
    pub kind: ShareKind,
    pub out_order_no: String,
    pub receivers: Vec<Receiver>,
    pub amount: Amount,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub enum ShareReserved {
    /// A new pending share; the caller asks the channel and then finishes it.
    New(ProfitShare),
    /// The out_order_no was used before for this very request: here is that share.
    Existing(ProfitShare),
}

#[derive(Debug, Clone)]
pub enum ShareOutcome {
    Succeeded { channel_order_no: String },
    Failed { message: String },
}

pub const SHARE_COLUMNS: &str =
    "id, order_id, app_id, livemode, created, kind, out_order_no, status, amount, return_reserved, \
    amount_returned, receivers, channel_order_no, failure_msg";

pub fn share(r: &dyn RowLike) -> Result<ProfitShare> {
    let kind = r.text(5)?;
    let status = r.text(7)?;
    Ok(ProfitShare {
        id: r.text(0)?,
        order_id: r.text(1)?,
        app_id: r.text(2)?,
        mode: Mode::from_live(r.boolean(3)?),
        created: r.int(4)?,
        kind: ShareKind::parse("kind", &kind)?,
        out_order_no: r.text(6)?,
        status: ShareStatus::parse(&status)
            .ok_or_else(|| Problem::internal(format!("stored share has unknown status '{status}'")))?,
        amount: Amount::from_stored(r.int(8)?),
        return_reserved: Amount::from_stored(r.int(9)?),
        amount_returned: Amount::from_stored(r.int(10)?),
        receivers: stored_receivers(&r.text(11)?),
        channel_order_no: r.opt_text(12)?,
        failure_msg: r.opt_text(13)?,
    })
}

pub fn select_share_sql() -> String {
    format!("SELECT {SHARE_COLUMNS} FROM profit_shares WHERE app_id = $1 AND livemode = $2 AND id = $3")
}
pub fn share_by_out_order_no_sql() -> String {
    format!("SELECT {SHARE_COLUMNS} FROM profit_shares WHERE app_id = $1 AND livemode = $2 AND out_order_no = $3")
}
pub fn shares_of_order_sql() -> String {
    format!("SELECT {SHARE_COLUMNS} FROM profit_shares WHERE app_id = $1 AND livemode = $2 AND order_id = $3 ORDER BY seq DESC")
}
pub fn insert_share_sql() -> String {
    format!("INSERT INTO profit_shares ({SHARE_COLUMNS}) VALUES ({})", crate::rows::placeholders(14))
}

pub fn share_params(s: &ProfitShare) -> Vec<SqlParam> {
    use SqlParam::*;
    vec![
        Text(s.id.clone()),
        Text(s.order_id.clone()),
        Text(s.app_id.clone()),
        Bool(s.mode.is_live()),
        Int(s.created),
        Text(s.kind.as_str().into()),
        Text(s.out_order_no.clone()),
        Text(s.status.as_str().into()),
        Int(s.amount.fen()),
        Int(s.return_reserved.fen()),
        Int(s.amount_returned.fen()),
        Text(serde_json::Value::Array(s.receivers.iter().map(Receiver::to_json).collect()).to_string()),
        OptText(s.channel_order_no.clone()),
        OptText(s.failure_msg.clone()),
    ]
}

/// `$4` amount, `$5` max basis points, `$6` whether this share ends sharing (WeChat single).
pub const RESERVE_SHARE: &str = "UPDATE orders SET share_reserved = share_reserved + $4, \
    sharing_finished = CASE WHEN $6 THEN TRUE ELSE sharing_finished END \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status IN ('paid', 'refunded') AND NOT sharing_finished \
    AND (share_reserved + $4) * 10000 <= (amount_paid - refund_reserved) * $5";
/// A failed share gives back its reservation (and, if it was a single share, the right to share).
pub const RELEASE_SHARE: &str = "UPDATE orders SET share_reserved = share_reserved - $4, \
    sharing_finished = CASE WHEN $5 THEN FALSE ELSE sharing_finished END WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const SHARE_SUCCEEDED: &str =
    "UPDATE profit_shares SET status = 'succeeded', channel_order_no = $4 WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
pub const SHARE_FAILED: &str =
    "UPDATE profit_shares SET status = 'failed', failure_msg = $4 WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
pub const FINISH_SHARING: &str =
    "UPDATE orders SET sharing_finished = TRUE WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const RESERVE_RETURN: &str = "UPDATE profit_shares SET return_reserved = return_reserved + $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'succeeded' AND amount - return_reserved >= $4";
pub const RETURN_SUCCEEDED: &str =
    "UPDATE profit_shares SET amount_returned = amount_returned + $4 WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const RETURN_FAILED: &str =
    "UPDATE profit_shares SET return_reserved = return_reserved - $4 WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const ORDER_SHARE_RETURNED: &str =
    "UPDATE orders SET share_reserved = share_reserved - $4 WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const SET_MAX_SHARE: &str = "UPDATE apps SET max_share_bps = $1 WHERE id = $2";

/// Whether a stored share is the same request as `req` (same order, kind and receivers).
pub fn same_request(existing: &ProfitShare, req: &ShareRequest) -> bool {
    existing.order_id == req.order_id && existing.kind == req.kind && existing.receivers == req.receivers
}

pub fn reused_out_order_no(req: &ShareRequest) -> Problem {
    Problem::conflict(
        "out_order_no_reused",
        format!("out_order_no '{}' was already used for a different profit-sharing request.", req.out_order_no),
    )
    .with_param("out_order_no")
}

pub fn scope_of(share: &ProfitShare) -> Scope {
    Scope { app_id: share.app_id.clone(), mode: share.mode }
}

/// The pending share a reservation inserts.
pub fn pending_share(scope: &Scope, req: &ShareRequest) -> ProfitShare {
    ProfitShare {
        id: req.id.clone(),
        order_id: req.order_id.clone(),
        app_id: scope.app_id.clone(),
        mode: scope.mode,
        created: req.created,
        kind: req.kind,
        out_order_no: req.out_order_no.clone(),
        status: ShareStatus::Pending,
        amount: req.amount,
        return_reserved: Amount::ZERO,
        amount_returned: Amount::ZERO,
        receivers: req.receivers.clone(),
        channel_order_no: None,
        failure_msg: None,
    }
}

pub const PAID_CHANNEL: &str =
    "SELECT channel FROM charges WHERE app_id = $1 AND livemode = $2 AND order_id = $3 AND status = 'succeeded'";

pub fn outcome_event(outcome: &ShareOutcome) -> &'static str {
    match outcome {
        ShareOutcome::Succeeded { .. } => paygate_domain::events::PROFIT_SHARING_SUCCEEDED,
        ShareOutcome::Failed { .. } => paygate_domain::events::PROFIT_SHARING_FAILED,
    }
}
