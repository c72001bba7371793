//! Profit sharing on PostgreSQL: each method locks the order row first (the one lock order),
//! then applies the conditional updates shared in `paygate_store::shares`.

use crate::pool::{pg_err, Conn};
use crate::{emit, in_transaction, load_order, PostgresStore};
use async_trait::async_trait;
use paygate_domain::events as ev;
use paygate_domain::shares::{plan_return, plan_share, ProfitShare, ShareKind};
use paygate_domain::{Amount, Order, Problem, Scope};
use paygate_store::rows::{scoped, with, SqlParam};
use paygate_store::shares::{self as sh, ShareOutcome, ShareRequest, ShareReserved, ShareStore};
use paygate_store::Result;

async fn load_share(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
    conn.query_opt(&sh::select_share_sql(), &scoped(scope, id), sh::share).await
}

/// Locks the share's order, then reads the share as it is under that lock.
async fn lock_share(conn: &mut Conn, scope: &Scope, id: &str) -> Result<ProfitShare> {
    let share = load_share(conn, scope, id).await?.ok_or_else(|| Problem::not_found("profit_sharing", id))?;
    load_order(conn, scope, &share.order_id, true).await?;
    load_share(conn, scope, id).await?.ok_or_else(|| Problem::internal("share vanished"))
}

#[async_trait]
impl ShareStore for PostgresStore {
    async fn reserve_share(&self, scope: &Scope, req: &ShareRequest, max_bps: i64) -> Result<ShareReserved> {
        let outcome = in_transaction!(self, conn, {
            let order = load_order(&mut conn, scope, &req.order_id, true)
                .await?
                .ok_or_else(|| Problem::not_found("order", &req.order_id))?;
            if let Some(existing) =
                conn.query_opt(&sh::share_by_out_order_no_sql(), &scoped(scope, &req.out_order_no), sh::share).await?
            {
                return if sh::same_request(&existing, req) {
                    Ok(ShareReserved::Existing(existing))
                } else {
                    Err(sh::reused_out_order_no(req))
                };
            }
            let channel = conn.query_opt(sh::PAID_CHANNEL, &scoped(scope, &order.id), |r| r.text(0)).await?;
            plan_share(&order, channel.as_deref(), req.kind, req.amount, max_bps)?;
            let ends = SqlParam::Bool(req.kind == ShareKind::WechatSingle);
            if conn
                .exec(
                    sh::RESERVE_SHARE,
                    &with(scoped(scope, &order.id), [SqlParam::Int(req.amount.fen()), SqlParam::Int(max_bps), ends]),
                )
                .await?
                != 1
            {
                return Err(Problem::internal("share reservation lost under the row lock"));
            }
            let share = sh::pending_share(scope, req);
            conn.exec(&sh::insert_share_sql(), &sh::share_params(&share)).await?;
            Ok(ShareReserved::New(share))
        });
        // The same out_order_no on another order raced past the lookup: the unique index decides.
        match outcome {
            Err(p) if p.is_internal() && p.message.contains("profit_shares_app_id_livemode_out_order_no_key") => {
                Err(sh::reused_out_order_no(req))
            }
            other => other,
        }
    }

    async fn finish_share(
        &self,
        scope: &Scope,
        share_id: &str,
        outcome: &ShareOutcome,
        now: i64,
    ) -> Result<ProfitShare> {
        in_transaction!(self, conn, {
            let share = lock_share(&mut conn, scope, share_id).await?;
            let changed = match outcome {
                ShareOutcome::Succeeded { channel_order_no } => {
                    conn.exec(
                        sh::SHARE_SUCCEEDED,
                        &with(scoped(scope, share_id), [SqlParam::Text(channel_order_no.clone())]),
                    )
                    .await?
                        == 1
                }
                ShareOutcome::Failed { message } => {
                    let failed = conn
                        .exec(sh::SHARE_FAILED, &with(scoped(scope, share_id), [SqlParam::Text(message.clone())]))
                        .await?
                        == 1;
                    if failed {
                        let single = SqlParam::Bool(share.kind == ShareKind::WechatSingle);
                        conn.exec(
                            sh::RELEASE_SHARE,
                            &with(scoped(scope, &share.order_id), [SqlParam::Int(share.amount.fen()), single]),
                        )
                        .await?;
                    }
                    failed
                }
            };
            let done =
                load_share(&mut conn, scope, share_id).await?.ok_or_else(|| Problem::internal("share vanished"))?;
            if changed {
                emit(&mut conn, scope, sh::outcome_event(outcome), done.to_json(), now).await?;
            }
            Ok(done)
        })
    }

    async fn finish_sharing(&self, scope: &Scope, order_id: &str) -> Result<Option<Order>> {
        in_transaction!(self, conn, {
            conn.exec(sh::FINISH_SHARING, &scoped(scope, order_id)).await?;
            load_order(&mut conn, scope, order_id, false).await
        })
    }

    async fn reserve_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Option<Amount>,
    ) -> Result<(ProfitShare, Amount)> {
        in_transaction!(self, conn, {
            let share = lock_share(&mut conn, scope, share_id).await?;
            let amount = plan_return(&share, amount)?;
            if conn.exec(sh::RESERVE_RETURN, &with(scoped(scope, share_id), [SqlParam::Int(amount.fen())])).await? != 1
            {
                return Err(Problem::internal("return reservation lost under the row lock"));
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
        in_transaction!(self, conn, {
            let share = lock_share(&mut conn, scope, share_id).await?;
            let fen = [SqlParam::Int(amount.fen())];
            if succeeded {
                conn.exec(sh::RETURN_SUCCEEDED, &with(scoped(scope, share_id), fen.clone())).await?;
                conn.exec(sh::ORDER_SHARE_RETURNED, &with(scoped(scope, &share.order_id), fen)).await?;
            } else {
                conn.exec(sh::RETURN_FAILED, &with(scoped(scope, share_id), fen)).await?;
            }
            let done =
                load_share(&mut conn, scope, share_id).await?.ok_or_else(|| Problem::internal("share vanished"))?;
            if succeeded {
                emit(&mut conn, scope, ev::PROFIT_SHARING_RETURNED, done.to_json(), now).await?;
            }
            Ok(done)
        })
    }

    async fn share(&self, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
        let mut conn = self.pool.get().await?;
        load_share(&mut conn, scope, id).await
    }

    async fn shares_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<ProfitShare>> {
        let mut conn = self.pool.get().await?;
        conn.query(&sh::shares_of_order_sql(), &scoped(scope, order_id), sh::share).await
    }

    async fn set_app_max_share(&self, app_id: &str, bps: i64) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(conn.client().execute(sh::SET_MAX_SHARE, &[&bps, &app_id]).await.map_err(pg_err)? == 1)
    }
}
