//! Profit-sharing SQL shared by both backends. A share reserves its amount on the order with
//! `RESERVE_SHARE`, a conditional update that re-checks every bound `plan_share` checked, so two
//! concurrent shares (or a share and a refund) can never together break them.

use crate::rows::{scoped, with, RowLike, SqlParam};
use crate::sql::{job, vanished, Tx};
use crate::transactions::{emit, load_order};
use crate::Result;
use async_trait::async_trait;
use paygate_domain::shares::{
    plan_return, plan_share, stored_receivers, ProfitShare, Receiver, ShareKind, ShareStatus,
};
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
    format!(
        "SELECT {SHARE_COLUMNS} FROM profit_shares WHERE app_id = $1 AND livemode = $2 AND order_id = $3 \
         ORDER BY seq DESC"
    )
}
/// Inserts nothing when the out_order_no is taken in the scope (see `reserve_share`).
pub fn insert_share_sql() -> String {
    format!(
        "INSERT INTO profit_shares ({SHARE_COLUMNS}) VALUES ({}) \
         ON CONFLICT (app_id, livemode, out_order_no) DO NOTHING",
        crate::rows::placeholders(14)
    )
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
    sharing_finished = CASE WHEN $5 THEN FALSE ELSE sharing_finished END \
    WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const SHARE_SUCCEEDED: &str = "UPDATE profit_shares SET status = 'succeeded', channel_order_no = $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
pub const SHARE_FAILED: &str = "UPDATE profit_shares SET status = 'failed', failure_msg = $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
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

/// A share under its order's lock: the share, its order locked, then the share as it is now.
async fn lock_share(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<ProfitShare> {
    let share = load_share(tx, scope, id).await?.ok_or_else(|| Problem::not_found("profit_sharing", id))?;
    load_order(tx, scope, &share.order_id, true).await?;
    load_share(tx, scope, id).await?.ok_or_else(|| vanished("share"))
}

async fn load_share(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
    tx.query_opt(&select_share_sql(), &scoped(scope, id), share).await
}

#[async_trait]
impl<B: crate::Backend> ShareStore for B {
    async fn reserve_share(&self, scope: &Scope, request: &ShareRequest, max_bps: i64) -> Result<ShareReserved> {
        job!(self, Write, [scope, request], |tx| {
            let req = request;
            let order = load_order(tx, &scope, &req.order_id, true).await?;
            let order = order.ok_or_else(|| Problem::not_found("order", &req.order_id))?;
            let by_number = scoped(&scope, &req.out_order_no);
            if let Some(existing) = tx.query_opt(&share_by_out_order_no_sql(), &by_number, share).await? {
                return if same_request(&existing, &req) {
                    Ok(ShareReserved::Existing(existing))
                } else {
                    Err(reused_out_order_no(&req))
                };
            }
            let channel = tx.query_opt(PAID_CHANNEL, &scoped(&scope, &order.id), |r| r.text(0)).await?;
            plan_share(&order, channel.as_deref(), req.kind, req.amount, max_bps)?;
            let ends = SqlParam::Bool(req.kind == ShareKind::WechatSingle);
            let reserve =
                with(scoped(&scope, &order.id), [SqlParam::Int(req.amount.fen()), SqlParam::Int(max_bps), ends]);
            if tx.exec(RESERVE_SHARE, &reserve).await? != 1 {
                return Err(Problem::internal("share reservation lost under the order lock"));
            }
            let new = pending_share(&scope, &req);
            // The same out_order_no on another order got past the lookup (PostgreSQL, other
            // order's lock): the unique key decides, and this transaction writes nothing.
            if tx.exec(&insert_share_sql(), &share_params(&new)).await? != 1 {
                return Err(reused_out_order_no(&req));
            }
            Ok(ShareReserved::New(new))
        })
    }

    async fn finish_share(
        &self,
        scope: &Scope,
        share_id: &str,
        outcome: &ShareOutcome,
        now: i64,
    ) -> Result<ProfitShare> {
        job!(self, Write, [scope, share_id, outcome], |tx| {
            let id = share_id;
            let share = lock_share(tx, &scope, &id).await?;
            let changed = match &outcome {
                ShareOutcome::Succeeded { channel_order_no } => {
                    let set = [SqlParam::Text(channel_order_no.clone())];
                    tx.exec(SHARE_SUCCEEDED, &with(scoped(&scope, &id), set)).await? == 1
                }
                ShareOutcome::Failed { message } => {
                    let set = [SqlParam::Text(message.clone())];
                    let failed = tx.exec(SHARE_FAILED, &with(scoped(&scope, &id), set)).await? == 1;
                    if failed {
                        let single = SqlParam::Bool(share.kind == ShareKind::WechatSingle);
                        let release =
                            with(scoped(&scope, &share.order_id), [SqlParam::Int(share.amount.fen()), single]);
                        tx.exec(RELEASE_SHARE, &release).await?;
                    }
                    failed
                }
            };
            let done = load_share(tx, &scope, &id).await?.ok_or_else(|| vanished("share"))?;
            if changed {
                emit(tx, &scope, outcome_event(&outcome), done.to_json(), now).await?;
            }
            Ok(done)
        })
    }

    async fn finish_sharing(&self, scope: &Scope, order_id: &str) -> Result<Option<Order>> {
        job!(self, Write, [scope, order_id], |tx| {
            tx.exec(FINISH_SHARING, &scoped(&scope, &order_id)).await?;
            load_order(tx, &scope, &order_id, false).await
        })
    }

    async fn reserve_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Option<Amount>,
    ) -> Result<(ProfitShare, Amount)> {
        job!(self, Write, [scope, share_id], |tx| {
            let share = lock_share(tx, &scope, &share_id).await?;
            let amount = plan_return(&share, amount)?;
            if tx.exec(RESERVE_RETURN, &with(scoped(&scope, &share_id), [SqlParam::Int(amount.fen())])).await? != 1 {
                return Err(Problem::internal("return reservation lost under the order lock"));
            }
            Ok((share, amount))
        })
    }

    async fn finish_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Amount,
        succeeded: bool,
        now: i64,
    ) -> Result<ProfitShare> {
        job!(self, Write, [scope, share_id], |tx| {
            let id = share_id;
            let share = lock_share(tx, &scope, &id).await?;
            let fen = [SqlParam::Int(amount.fen())];
            if succeeded {
                tx.exec(RETURN_SUCCEEDED, &with(scoped(&scope, &id), fen.clone())).await?;
                tx.exec(ORDER_SHARE_RETURNED, &with(scoped(&scope, &share.order_id), fen)).await?;
            } else {
                tx.exec(RETURN_FAILED, &with(scoped(&scope, &id), fen)).await?;
            }
            let done = load_share(tx, &scope, &id).await?.ok_or_else(|| vanished("share"))?;
            if succeeded {
                emit(tx, &scope, paygate_domain::events::PROFIT_SHARING_RETURNED, done.to_json(), now).await?;
            }
            Ok(done)
        })
    }

    async fn share(&self, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
        job!(self, Read, [scope, id], |tx| { load_share(tx, &scope, &id).await })
    }

    async fn shares_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<ProfitShare>> {
        job!(self, Read, [scope, order_id], |tx| {
            tx.query(&shares_of_order_sql(), &scoped(&scope, &order_id), share).await
        })
    }

    async fn set_app_max_share(&self, app_id: &str, bps: i64) -> Result<bool> {
        let params = [SqlParam::Int(bps), SqlParam::Text(app_id.to_string())];
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(SET_MAX_SHARE, &params).await? == 1) })
    }
}
