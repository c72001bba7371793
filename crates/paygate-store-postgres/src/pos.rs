//! Cashier and SaaS-face storage on PostgreSQL (SQL shared in `paygate_store::pos`). The wallet
//! debit is a conditional update on the member row, inside the payment's transaction: the row
//! lock serialises concurrent payments and none can take the balance below zero.

use crate::pool::Conn;
use crate::{emit, in_transaction, load_order, order_object, PostgresStore};
use async_trait::async_trait;
use paygate_domain::events as ev;
use paygate_domain::objects;
use paygate_domain::{Amount, App, Charge, Order, Problem, Scope};
use paygate_store::pos::{self as p, BalanceTransaction, FaceCredential, Member, PosMeta, PosRecord, PosRef, PosStore};
use paygate_store::rows::{self, scoped, SqlParam};
use paygate_store::{Result, Store};

async fn meta(conn: &mut Conn, scope: &Scope, by: &PosRef) -> Result<Option<(String, PosMeta)>> {
    let (sql, params) = p::meta_query(scope, by);
    conn.query_opt(&sql, &params, p::meta).await
}

async fn record(conn: &mut Conn, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>> {
    let Some((order_id, meta)) = meta(conn, scope, by).await? else { return Ok(None) };
    let order =
        load_order(conn, scope, &order_id, false).await?.ok_or_else(|| Problem::internal("record without order"))?;
    let charge = conn
        .query_opt(&rows::charges_of_order_sql(), &scoped(scope, &order_id), rows::charge)
        .await?
        .ok_or_else(|| Problem::internal("record without charge"))?;
    let member = match meta.member_id {
        Some(id) => conn.query_opt(&p::member_by_id_sql(), &p::member_scoped(scope, id, []), p::member).await?,
        None => None,
    };
    Ok(Some(PosRecord { order, charge, meta, member }))
}

#[async_trait]
impl PosStore for PostgresStore {
    async fn face_credential(&self, public_id: &str) -> Result<Option<(FaceCredential, App)>> {
        let sql = format!("SELECT {} FROM face_credentials c WHERE c.public_id = $1", p::CREDENTIAL_COLUMNS);
        let cred = {
            let mut conn = self.pool.get().await?;
            conn.query_opt(&sql, &[SqlParam::Text(public_id.to_string())], p::credential).await?
        };
        let Some(cred) = cred else { return Ok(None) };
        Ok(self.app(&cred.scope.app_id).await?.map(|app| (cred, app)))
    }

    async fn face_credentials(&self, app_id: &str) -> Result<Vec<FaceCredential>> {
        let mut conn = self.pool.get().await?;
        conn.query(&p::credentials_of_app_sql(), &[SqlParam::Text(app_id.to_string())], p::credential).await
    }

    async fn remember_signature(&self, public_id: &str, sign: &str, now: i64, forget_before: i64) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        conn.exec(p::FORGET_SIGNATURES, &[SqlParam::Int(forget_before)]).await?;
        Ok(conn
            .exec(
                p::REMEMBER_SIGNATURE,
                &[SqlParam::Text(public_id.to_string()), SqlParam::Text(sign.to_string()), SqlParam::Int(now)],
            )
            .await?
            == 1)
    }

    async fn set_fee_rate(&self, scope: &Scope, family: &str, rate_bp: i64) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.exec(p::SET_FEE_RATE, &rows::with(scoped(scope, family), [SqlParam::Int(rate_bp)])).await.map(|_| ())
    }

    async fn fee_rate(&self, scope: &Scope, family: &str) -> Result<Option<i64>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(p::FEE_RATE, &scoped(scope, family), |r| r.int(0)).await
    }

    async fn create_member(&self, scope: &Scope, member: &Member) -> Result<Member> {
        let mut conn = self.pool.get().await?;
        let id = conn.query_opt(p::INSERT_MEMBER, &p::member_params(scope, member), |r| r.int(0)).await?;
        p::inserted_member(id, member)
    }

    async fn member(&self, scope: &Scope, id: i64) -> Result<Option<Member>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&p::member_by_id_sql(), &p::member_scoped(scope, id, []), p::member).await
    }

    async fn member_by_pay_code(&self, scope: &Scope, pay_code: &str) -> Result<Option<Member>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&p::member_by_code_sql(), &scoped(scope, pay_code), p::member).await
    }

    async fn top_up(&self, scope: &Scope, member_id: i64, amount: Amount, reference: &str, now: i64) -> Result<Member> {
        in_transaction!(self, conn, {
            if conn.exec(p::CREDIT, &p::member_scoped(scope, member_id, [SqlParam::Int(amount.fen())])).await? != 1 {
                return Err(Problem::not_found("member", &member_id.to_string()));
            }
            let record = [
                SqlParam::Int(amount.fen()),
                SqlParam::Text("topup".into()),
                SqlParam::Text(reference.to_string()),
                SqlParam::Int(now),
            ];
            conn.exec(p::RECORD_BALANCE, &p::member_scoped(scope, member_id, record)).await?;
            conn.query_opt(&p::member_by_id_sql(), &p::member_scoped(scope, member_id, []), p::member)
                .await?
                .ok_or_else(|| Problem::internal("member vanished"))
        })
    }

    async fn balance_transactions(&self, scope: &Scope, member_id: i64, limit: i64) -> Result<Vec<BalanceTransaction>> {
        let mut conn = self.pool.get().await?;
        conn.query(
            p::BALANCE_TRANSACTIONS,
            &p::member_scoped(scope, member_id, [SqlParam::Int(limit)]),
            p::balance_transaction,
        )
        .await
    }

    async fn insert_pos_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta) -> Result<()> {
        in_transaction!(self, conn, {
            conn.exec(&rows::insert_order_sql(), &rows::order_params(order)).await?;
            conn.exec(&rows::insert_charge_sql(), &rows::charge_params(charge)).await?;
            conn.exec(p::INSERT_META, &p::meta_params(order, meta)).await?;
            Ok(())
        })
    }

    async fn insert_wallet_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta, now: i64) -> Result<()> {
        let member_id = meta.member_id.ok_or_else(|| Problem::internal("wallet payment without member"))?;
        let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
        in_transaction!(self, conn, {
            conn.exec(&rows::insert_order_sql(), &rows::order_params(order)).await?;
            conn.exec(&rows::insert_charge_sql(), &rows::charge_params(charge)).await?;
            conn.exec(p::INSERT_META, &p::meta_params(order, meta)).await?;
            if conn.exec(p::DEBIT, &p::wallet_debit_params(order, member_id)).await? != 1 {
                return Err(p::insufficient_balance(member_id, order.actual_amount));
            }
            let record = [
                SqlParam::Int(-order.actual_amount.fen()),
                SqlParam::Text("payment".into()),
                SqlParam::Text(charge.id.clone()),
                SqlParam::Int(now),
            ];
            conn.exec(p::RECORD_BALANCE, &p::member_scoped(&scope, member_id, record)).await?;
            emit(&mut conn, &scope, ev::CHARGE_SUCCEEDED, objects::charge(charge, None), now).await?;
            let object = order_object(&mut conn, &scope, order.clone()).await?;
            emit(&mut conn, &scope, ev::ORDER_SUCCEEDED, object, now).await?;
            Ok(())
        })
    }

    async fn pos_record(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>> {
        let mut conn = self.pool.get().await?;
        record(&mut conn, scope, by).await
    }

    async fn pos_meta(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosMeta>> {
        let mut conn = self.pool.get().await?;
        Ok(meta(&mut conn, scope, by).await?.map(|(_, m)| m))
    }

    async fn mark_reversed(&self, scope: &Scope, order_id: &str) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.exec(p::MARK_REVERSED, &scoped(scope, order_id)).await.map(|_| ())
    }
}
