//! Profit sharing on SQLite: every decision runs on the single writer, between reading the order
//! and the conditional update that applies it (SQL shared in `paygate_store::shares`).

use crate::conn::{exec, query, query_opt, sql_err, sqlite_sql};
use crate::{emit, load_order, SqliteStore};
use async_trait::async_trait;
use paygate_domain::events as ev;
use paygate_domain::shares::{plan_return, plan_share, ProfitShare, ShareKind};
use paygate_domain::{Amount, Order, Problem, Scope};
use paygate_store::rows::{scoped, with, SqlParam};
use paygate_store::shares::{self as sh, ShareOutcome, ShareRequest, ShareReserved, ShareStore};
use paygate_store::Result;
use rusqlite::Connection;

fn load_share(conn: &Connection, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
    query_opt(conn, &sh::select_share_sql(), &scoped(scope, id), sh::share)
}

fn succeeded_channel(conn: &Connection, scope: &Scope, order: &Order) -> Result<Option<String>> {
    query_opt(conn, sh::PAID_CHANNEL, &scoped(scope, &order.id), |r| r.text(0))
}

#[async_trait]
impl ShareStore for SqliteStore {
    async fn reserve_share(&self, scope: &Scope, req: &ShareRequest, max_bps: i64) -> Result<ShareReserved> {
        let (scope, req) = (scope.clone(), req.clone());
        self.db
            .write(move |conn| {
                if let Some(existing) =
                    query_opt(conn, &sh::share_by_out_order_no_sql(), &scoped(&scope, &req.out_order_no), sh::share)?
                {
                    return if sh::same_request(&existing, &req) {
                        Ok(ShareReserved::Existing(existing))
                    } else {
                        Err(sh::reused_out_order_no(&req))
                    };
                }
                let order = load_order(conn, &scope, &req.order_id)?
                    .ok_or_else(|| Problem::not_found("order", &req.order_id))?;
                let channel = succeeded_channel(conn, &scope, &order)?;
                plan_share(&order, channel.as_deref(), req.kind, req.amount, max_bps)?;
                let ends = SqlParam::Bool(req.kind == ShareKind::WechatSingle);
                if exec(
                    conn,
                    sh::RESERVE_SHARE,
                    &with(scoped(&scope, &order.id), [SqlParam::Int(req.amount.fen()), SqlParam::Int(max_bps), ends]),
                )? != 1
                {
                    return Err(Problem::internal("share reservation lost under the single writer"));
                }
                let share = sh::pending_share(&scope, &req);
                exec(conn, &sh::insert_share_sql(), &sh::share_params(&share))?;
                Ok(ShareReserved::New(share))
            })
            .await
    }

    async fn finish_share(
        &self,
        scope: &Scope,
        share_id: &str,
        outcome: &ShareOutcome,
        now: i64,
    ) -> Result<ProfitShare> {
        let (scope, id, outcome) = (scope.clone(), share_id.to_string(), outcome.clone());
        self.db
            .write(move |conn| {
                let share = load_share(conn, &scope, &id)?.ok_or_else(|| Problem::not_found("profit_sharing", &id))?;
                let changed = match &outcome {
                    ShareOutcome::Succeeded { channel_order_no } => {
                        exec(
                            conn,
                            sh::SHARE_SUCCEEDED,
                            &with(scoped(&scope, &id), [SqlParam::Text(channel_order_no.clone())]),
                        )? == 1
                    }
                    ShareOutcome::Failed { message } => {
                        let failed = exec(
                            conn,
                            sh::SHARE_FAILED,
                            &with(scoped(&scope, &id), [SqlParam::Text(message.clone())]),
                        )? == 1;
                        if failed {
                            let single = SqlParam::Bool(share.kind == ShareKind::WechatSingle);
                            exec(
                                conn,
                                sh::RELEASE_SHARE,
                                &with(scoped(&scope, &share.order_id), [SqlParam::Int(share.amount.fen()), single]),
                            )?;
                        }
                        failed
                    }
                };
                let done = load_share(conn, &scope, &id)?.ok_or_else(|| Problem::internal("share vanished"))?;
                if changed {
                    emit(conn, &scope, sh::outcome_event(&outcome), done.to_json(), now)?;
                }
                Ok(done)
            })
            .await
    }

    async fn finish_sharing(&self, scope: &Scope, order_id: &str) -> Result<Option<Order>> {
        let (scope, id) = (scope.clone(), order_id.to_string());
        self.db
            .write(move |conn| {
                exec(conn, sh::FINISH_SHARING, &scoped(&scope, &id))?;
                load_order(conn, &scope, &id)
            })
            .await
    }

    async fn reserve_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Option<Amount>,
    ) -> Result<(ProfitShare, Amount)> {
        let (scope, id) = (scope.clone(), share_id.to_string());
        self.db
            .write(move |conn| {
                let share = load_share(conn, &scope, &id)?.ok_or_else(|| Problem::not_found("profit_sharing", &id))?;
                let amount = plan_return(&share, amount)?;
                if exec(conn, sh::RESERVE_RETURN, &with(scoped(&scope, &id), [SqlParam::Int(amount.fen())]))? != 1 {
                    return Err(Problem::internal("return reservation lost under the single writer"));
                }
                Ok((share, amount))
            })
            .await
    }

    async fn finish_share_return(
        &self,
        scope: &Scope,
        share_id: &str,
        amount: Amount,
        succeeded: bool,
        now: i64,
    ) -> Result<ProfitShare> {
        let (scope, id) = (scope.clone(), share_id.to_string());
        self.db
            .write(move |conn| {
                let share = load_share(conn, &scope, &id)?.ok_or_else(|| Problem::not_found("profit_sharing", &id))?;
                let fen = [SqlParam::Int(amount.fen())];
                if succeeded {
                    exec(conn, sh::RETURN_SUCCEEDED, &with(scoped(&scope, &id), fen.clone()))?;
                    exec(conn, sh::ORDER_SHARE_RETURNED, &with(scoped(&scope, &share.order_id), fen))?;
                } else {
                    exec(conn, sh::RETURN_FAILED, &with(scoped(&scope, &id), fen))?;
                }
                let done = load_share(conn, &scope, &id)?.ok_or_else(|| Problem::internal("share vanished"))?;
                if succeeded {
                    emit(conn, &scope, ev::PROFIT_SHARING_RETURNED, done.to_json(), now)?;
                }
                Ok(done)
            })
            .await
    }

    async fn share(&self, scope: &Scope, id: &str) -> Result<Option<ProfitShare>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db.read(move |conn| load_share(conn, &scope, &id)).await
    }

    async fn shares_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<ProfitShare>> {
        let (scope, id) = (scope.clone(), order_id.to_string());
        self.db.read(move |conn| query(conn, &sh::shares_of_order_sql(), &scoped(&scope, &id), sh::share)).await
    }

    async fn set_app_max_share(&self, app_id: &str, bps: i64) -> Result<bool> {
        let app_id = app_id.to_string();
        self.db
            .write(move |conn| {
                conn.execute(&sqlite_sql(sh::SET_MAX_SHARE), rusqlite::params![bps, app_id])
                    .map(|n| n == 1)
                    .map_err(sql_err)
            })
            .await
    }
}
