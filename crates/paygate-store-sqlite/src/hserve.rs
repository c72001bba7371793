//! The 知晓云 face's storage on SQLite (SQL shared in `paygate_store::hserve`).

use crate::conn::{exec, query, query_opt, sql_err, sqlite_sql};
use crate::{app_row, SqliteStore, APP_COLUMNS};
use async_trait::async_trait;
use paygate_domain::{App, Charge, Mode, Order, Problem, Scope};
use paygate_store::hserve::{self as h, HserveStore, HserveUser, PaymentRecord, RecordMeta, RecordQuery};
use paygate_store::rows::{self, SqlParam};
use paygate_store::Result;

#[async_trait]
impl HserveStore for SqliteStore {
    async fn hserve_client(&self, client_id: &str) -> Result<Option<(App, Mode)>> {
        let client_id = client_id.to_string();
        self.db
            .read(move |conn| {
                let sql = format!("SELECT {APP_COLUMNS}, c.livemode FROM hserve_clients c JOIN apps a ON a.id = c.app_id WHERE c.client_id = ?1");
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
                let mut found = stmt.query([client_id]).map_err(sql_err)?;
                match found.next().map_err(sql_err)? {
                    None => Ok(None),
                    Some(r) => Ok(Some((app_row(r).map_err(sql_err)?, Mode::from_live(r.get(6).map_err(sql_err)?)))),
                }
            })
            .await
    }

    async fn hserve_clients(&self, app_id: &str) -> Result<Vec<(String, Mode)>> {
        let app_id = app_id.to_string();
        self.db
            .read(move |conn| {
                query(conn, h::CLIENTS_OF_APP, &[SqlParam::Text(app_id)], |r| {
                    Ok((r.text(0)?, Mode::from_live(r.boolean(1)?)))
                })
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
        let params = h::new_user_params(scope, username, password_hash, anonymous, now);
        let id = self.db.write(move |conn| query_opt(conn, h::INSERT_USER, &params, |r| r.int(0))).await?;
        h::inserted_user(id, username, password_hash, anonymous, now)
    }

    async fn hserve_user_by_name(&self, scope: &Scope, username: &str) -> Result<Option<HserveUser>> {
        let params = rows::scoped(scope, username);
        self.db.read(move |conn| query_opt(conn, &h::user_by_name_sql(), &params, h::user)).await
    }

    async fn hserve_user(&self, scope: &Scope, id: i64) -> Result<Option<HserveUser>> {
        let params = rows::scoped_int(scope, id);
        self.db.read(move |conn| query_opt(conn, &h::user_by_id_sql(), &params, h::user)).await
    }

    async fn create_hserve_session(&self, token_hash: &[u8], scope: &Scope, user_id: i64, expires: i64) -> Result<()> {
        let (hash, scope) = (token_hash.to_vec(), scope.clone());
        self.db
            .write(move |conn| {
                conn.execute(
                    &sqlite_sql(h::INSERT_SESSION),
                    rusqlite::params![hash, user_id, scope.app_id, scope.mode.is_live(), expires],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn hserve_session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Scope, i64)>> {
        let hash = token_hash.to_vec();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(&sqlite_sql(h::SESSION)).map_err(sql_err)?;
                let mut found = stmt.query(rusqlite::params![hash, now]).map_err(sql_err)?;
                match found.next().map_err(sql_err)? {
                    None => Ok(None),
                    Some(r) => {
                        let scope = Scope {
                            app_id: r.get(0).map_err(sql_err)?,
                            mode: Mode::from_live(r.get(1).map_err(sql_err)?),
                        };
                        Ok(Some((scope, r.get(2).map_err(sql_err)?)))
                    }
                }
            })
            .await
    }

    async fn delete_hserve_session(&self, token_hash: &[u8]) -> Result<bool> {
        let hash = token_hash.to_vec();
        self.db
            .write(move |conn| {
                conn.execute(&sqlite_sql(h::DELETE_SESSION), rusqlite::params![hash]).map(|n| n > 0).map_err(sql_err)
            })
            .await
    }

    async fn insert_payment_record(&self, order: &Order, charge: &Charge, meta: &RecordMeta) -> Result<i64> {
        let (order, charge, meta) = (order.clone(), charge.clone(), meta.clone());
        self.db
            .write(move |conn| {
                exec(conn, &rows::insert_order_sql(), &rows::order_params(&order))?;
                exec(conn, &rows::insert_charge_sql(), &rows::charge_params(&charge))?;
                let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
                exec(conn, h::INSERT_META, &h::meta_params(&scope, &order.id, &meta))?;
                query_opt(conn, rows::ORDER_SEQ, &rows::scoped(&scope, &order.id), |r| r.int(0))?
                    .ok_or_else(|| Problem::internal("record vanished"))
            })
            .await
    }

    async fn payment_records(
        &self,
        scope: &Scope,
        user: Option<i64>,
        q: &RecordQuery,
    ) -> Result<(Vec<PaymentRecord>, i64)> {
        let ((page_sql, page_params), (count_sql, count_params)) = h::records_queries(scope, user, q)?;
        self.db
            .read(move |conn| {
                let records = query(conn, &page_sql, &page_params, h::record)?;
                let total = query_opt(conn, &count_sql, &count_params, |r| r.int(0))?.unwrap_or(0);
                Ok((records, total))
            })
            .await
    }

    async fn payment_record(&self, scope: &Scope, user: Option<i64>, reference: &str) -> Result<Option<PaymentRecord>> {
        let (sql, params) = h::record_by_reference(scope, user, reference);
        self.db.read(move |conn| query_opt(conn, &sql, &params, h::record)).await
    }
}
