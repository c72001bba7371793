//! The 知晓云 face's storage on PostgreSQL (SQL shared in `paygate_store::hserve`).

use crate::pool::pg_err;
use crate::{app_row, in_transaction, PostgresStore, APP_COLUMNS};
use async_trait::async_trait;
use paygate_domain::{App, Charge, Mode, Order, Problem, Scope};
use paygate_store::hserve::{self as h, HserveStore, HserveUser, PaymentRecord, RecordMeta, RecordQuery};
use paygate_store::rows::{self, SqlParam};
use paygate_store::Result;

#[async_trait]
impl HserveStore for PostgresStore {
    async fn hserve_client(&self, client_id: &str) -> Result<Option<(App, Mode)>> {
        let mut conn = self.pool.get().await?;
        let sql = format!("SELECT {APP_COLUMNS}, c.livemode FROM hserve_clients c JOIN apps a ON a.id = c.app_id WHERE c.client_id = $1");
        let found = conn.client().query(&sql, &[&client_id]).await.map_err(pg_err)?;
        let Some(r) = found.first() else { return Ok(None) };
        Ok(Some((app_row(r)?, Mode::from_live(r.try_get(6).map_err(pg_err)?))))
    }

    async fn hserve_clients(&self, app_id: &str) -> Result<Vec<(String, Mode)>> {
        let mut conn = self.pool.get().await?;
        conn.query(h::CLIENTS_OF_APP, &[SqlParam::Text(app_id.to_string())], |r| {
            Ok((r.text(0)?, Mode::from_live(r.boolean(1)?)))
        })
        .await
    }

    async fn create_hserve_user(
        &self,
        scope: &Scope,
        username: Option<&str>,
        password_hash: Option<&str>,
        anonymous: bool,
        now: i64,
    ) -> Result<HserveUser> {
        let mut conn = self.pool.get().await?;
        let id = conn
            .query_opt(h::INSERT_USER, &h::new_user_params(scope, username, password_hash, anonymous, now), |r| {
                r.int(0)
            })
            .await?;
        h::inserted_user(id, username, password_hash, anonymous, now)
    }

    async fn hserve_user_by_name(&self, scope: &Scope, username: &str) -> Result<Option<HserveUser>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&h::user_by_name_sql(), &rows::scoped(scope, username), h::user).await
    }

    async fn hserve_user(&self, scope: &Scope, id: i64) -> Result<Option<HserveUser>> {
        let mut conn = self.pool.get().await?;
        let params = rows::scoped_int(scope, id);
        conn.query_opt(&h::user_by_id_sql(), &params, h::user).await
    }

    async fn create_hserve_session(&self, token_hash: &[u8], scope: &Scope, user_id: i64, expires: i64) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.client()
            .execute(h::INSERT_SESSION, &[&token_hash, &user_id, &scope.app_id, &scope.mode.is_live(), &expires])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn hserve_session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Scope, i64)>> {
        let mut conn = self.pool.get().await?;
        let found = conn.client().query(h::SESSION, &[&token_hash, &now]).await.map_err(pg_err)?;
        let Some(r) = found.first() else { return Ok(None) };
        let scope =
            Scope { app_id: r.try_get(0).map_err(pg_err)?, mode: Mode::from_live(r.try_get(1).map_err(pg_err)?) };
        Ok(Some((scope, r.try_get(2).map_err(pg_err)?)))
    }

    async fn delete_hserve_session(&self, token_hash: &[u8]) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        Ok(conn.client().execute(h::DELETE_SESSION, &[&token_hash]).await.map_err(pg_err)? > 0)
    }

    async fn insert_payment_record(&self, order: &Order, charge: &Charge, meta: &RecordMeta) -> Result<i64> {
        let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
        in_transaction!(self, conn, {
            conn.exec(&rows::insert_order_sql(), &rows::order_params(order)).await?;
            conn.exec(&rows::insert_charge_sql(), &rows::charge_params(charge)).await?;
            conn.exec(h::INSERT_META, &h::meta_params(&scope, &order.id, meta)).await?;
            conn.query_opt(rows::ORDER_SEQ, &rows::scoped(&scope, &order.id), |r| r.int(0))
                .await?
                .ok_or_else(|| Problem::internal("record vanished"))
        })
    }

    async fn payment_records(
        &self,
        scope: &Scope,
        user: Option<i64>,
        q: &RecordQuery,
    ) -> Result<(Vec<PaymentRecord>, i64)> {
        let ((page_sql, page_params), (count_sql, count_params)) = h::records_queries(scope, user, q)?;
        let mut conn = self.pool.get().await?;
        let records = conn.query(&page_sql, &page_params, h::record).await?;
        let total = conn.query_opt(&count_sql, &count_params, |r| r.int(0)).await?.unwrap_or(0);
        Ok((records, total))
    }

    async fn payment_record(&self, scope: &Scope, user: Option<i64>, reference: &str) -> Result<Option<PaymentRecord>> {
        let (sql, params) = h::record_by_reference(scope, user, reference);
        let mut conn = self.pool.get().await?;
        conn.query_opt(&sql, &params, h::record).await
    }
}
