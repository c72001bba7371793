//! Cashier and SaaS-face storage on SQLite (SQL shared in `paygate_store::pos`). The wallet
//! debit runs on the single writer as a conditional update, so concurrent payments can never
//! take the balance below zero.

use crate::conn::{exec, query, query_opt};
use crate::{emit, load_order, order_object, SqliteStore};
use async_trait::async_trait;
use paygate_domain::events as ev;
use paygate_domain::objects;
use paygate_domain::{Amount, App, Charge, Order, Problem, Scope};
use paygate_store::pos::{self as p, BalanceTransaction, FaceCredential, Member, PosMeta, PosRecord, PosRef, PosStore};
use paygate_store::rows::{self, scoped, SqlParam};
use paygate_store::{Result, Store};
use rusqlite::Connection;

fn meta(conn: &Connection, scope: &Scope, by: &PosRef) -> Result<Option<(String, PosMeta)>> {
    let (sql, params) = p::meta_query(scope, by);
    query_opt(conn, &sql, &params, p::meta)
}

fn record(conn: &Connection, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>> {
    let Some((order_id, meta)) = meta(conn, scope, by)? else { return Ok(None) };
    let order = load_order(conn, scope, &order_id)?.ok_or_else(|| Problem::internal("record without order"))?;
    let charge = query_opt(conn, &rows::charges_of_order_sql(), &scoped(scope, &order_id), rows::charge)?
        .ok_or_else(|| Problem::internal("record without charge"))?;
    let member = match meta.member_id {
        Some(id) => query_opt(conn, &p::member_by_id_sql(), &p::member_scoped(scope, id, []), p::member)?,
        None => None,
    };
    Ok(Some(PosRecord { order, charge, meta, member }))
}

#[async_trait]
impl PosStore for SqliteStore {
    async fn face_credential(&self, public_id: &str) -> Result<Option<(FaceCredential, App)>> {
        let id = public_id.to_string();
        let sql = format!("SELECT {} FROM face_credentials c WHERE c.public_id = $1", p::CREDENTIAL_COLUMNS);
        let Some(cred) = self.db.read(move |conn| query_opt(conn, &sql, &[SqlParam::Text(id)], p::credential)).await?
        else {
            return Ok(None);
        };
        Ok(self.app(&cred.scope.app_id).await?.map(|app| (cred, app)))
    }

    async fn face_credentials(&self, app_id: &str) -> Result<Vec<FaceCredential>> {
        let id = app_id.to_string();
        self.db.read(move |conn| query(conn, &p::credentials_of_app_sql(), &[SqlParam::Text(id)], p::credential)).await
    }

    async fn remember_signature(&self, public_id: &str, sign: &str, now: i64, forget_before: i64) -> Result<bool> {
        let params = [SqlParam::Text(public_id.to_string()), SqlParam::Text(sign.to_string()), SqlParam::Int(now)];
        self.db
            .write(move |conn| {
                exec(conn, p::FORGET_SIGNATURES, &[SqlParam::Int(forget_before)])?;
                Ok(exec(conn, p::REMEMBER_SIGNATURE, &params)? == 1)
            })
            .await
    }

    async fn set_fee_rate(&self, scope: &Scope, family: &str, rate_bp: i64) -> Result<()> {
        let params = rows::with(scoped(scope, family), [SqlParam::Int(rate_bp)]);
        self.db.write(move |conn| exec(conn, p::SET_FEE_RATE, &params).map(|_| ())).await
    }

    async fn fee_rate(&self, scope: &Scope, family: &str) -> Result<Option<i64>> {
        let params = scoped(scope, family);
        self.db.read(move |conn| query_opt(conn, p::FEE_RATE, &params, |r| r.int(0))).await
    }

    async fn create_member(&self, scope: &Scope, member: &Member) -> Result<Member> {
        let params = p::member_params(scope, member);
        let id = self.db.write(move |conn| query_opt(conn, p::INSERT_MEMBER, &params, |r| r.int(0))).await?;
        p::inserted_member(id, member)
    }

    async fn member(&self, scope: &Scope, id: i64) -> Result<Option<Member>> {
        let params = p::member_scoped(scope, id, []);
        self.db.read(move |conn| query_opt(conn, &p::member_by_id_sql(), &params, p::member)).await
    }

    async fn member_by_pay_code(&self, scope: &Scope, pay_code: &str) -> Result<Option<Member>> {
        let params = scoped(scope, pay_code);
        self.db.read(move |conn| query_opt(conn, &p::member_by_code_sql(), &params, p::member)).await
    }

    async fn top_up(&self, scope: &Scope, member_id: i64, amount: Amount, reference: &str, now: i64) -> Result<Member> {
        let (scope, reference) = (scope.clone(), reference.to_string());
        self.db
            .write(move |conn| {
                if exec(conn, p::CREDIT, &p::member_scoped(&scope, member_id, [SqlParam::Int(amount.fen())]))? != 1 {
                    return Err(Problem::not_found("member", &member_id.to_string()));
                }
                let record = [
                    SqlParam::Int(amount.fen()),
                    SqlParam::Text("topup".into()),
                    SqlParam::Text(reference),
                    SqlParam::Int(now),
                ];
                exec(conn, p::RECORD_BALANCE, &p::member_scoped(&scope, member_id, record))?;
                query_opt(conn, &p::member_by_id_sql(), &p::member_scoped(&scope, member_id, []), p::member)?
                    .ok_or_else(|| Problem::internal("member vanished"))
            })
            .await
    }

    async fn balance_transactions(&self, scope: &Scope, member_id: i64, limit: i64) -> Result<Vec<BalanceTransaction>> {
        let params = p::member_scoped(scope, member_id, [SqlParam::Int(limit)]);
        self.db.read(move |conn| query(conn, p::BALANCE_TRANSACTIONS, &params, p::balance_transaction)).await
    }

    async fn insert_pos_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta) -> Result<()> {
        let (order, charge, meta) = (order.clone(), charge.clone(), meta.clone());
        self.db
            .write(move |conn| {
                exec(conn, &rows::insert_order_sql(), &rows::order_params(&order))?;
                exec(conn, &rows::insert_charge_sql(), &rows::charge_params(&charge))?;
                exec(conn, p::INSERT_META, &p::meta_params(&order, &meta))?;
                Ok(())
            })
            .await
    }

    async fn insert_wallet_payment(&self, order: &Order, charge: &Charge, meta: &PosMeta, now: i64) -> Result<()> {
        let (order, charge, meta) = (order.clone(), charge.clone(), meta.clone());
        let member_id = meta.member_id.ok_or_else(|| Problem::internal("wallet payment without member"))?;
        self.db
            .write(move |conn| {
                let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
                exec(conn, &rows::insert_order_sql(), &rows::order_params(&order))?;
                exec(conn, &rows::insert_charge_sql(), &rows::charge_params(&charge))?;
                exec(conn, p::INSERT_META, &p::meta_params(&order, &meta))?;
                if exec(conn, p::DEBIT, &p::wallet_debit_params(&order, member_id))? != 1 {
                    return Err(p::insufficient_balance(member_id, order.actual_amount));
                }
                let record = [
                    SqlParam::Int(-order.actual_amount.fen()),
                    SqlParam::Text("payment".into()),
                    SqlParam::Text(charge.id.clone()),
                    SqlParam::Int(now),
                ];
                exec(conn, p::RECORD_BALANCE, &p::member_scoped(&scope, member_id, record))?;
                emit(conn, &scope, ev::CHARGE_SUCCEEDED, objects::charge(&charge, None), now)?;
                emit(conn, &scope, ev::ORDER_SUCCEEDED, order_object(conn, &scope, order.clone())?, now)?;
                Ok(())
            })
            .await
    }

    async fn pos_record(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosRecord>> {
        let (scope, by) = (scope.clone(), by.clone());
        self.db.read(move |conn| record(conn, &scope, &by)).await
    }

    async fn pos_meta(&self, scope: &Scope, by: &PosRef) -> Result<Option<PosMeta>> {
        let (scope, by) = (scope.clone(), by.clone());
        self.db.read(move |conn| Ok(meta(conn, &scope, &by)?.map(|(_, m)| m))).await
    }

    async fn mark_reversed(&self, scope: &Scope, order_id: &str) -> Result<()> {
        let params = scoped(scope, order_id);
        self.db.write(move |conn| exec(conn, p::MARK_REVERSED, &params).map(|_| ())).await
    }
}
