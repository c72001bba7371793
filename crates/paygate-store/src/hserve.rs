//! Storage for the 知晓云 (hserve) face: client ids, end users and their sessions, and the
//! payment records that face lists. The face builds a [`RecordQuery`] (field conditions, no SQL);
//! the SQL for it is written here once for both backends.

use crate::rows::{self, RowLike, Shifted, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::{App, Charge, Mode, Order, Problem, Scope};

mod query;
pub use query::*;

#[async_trait]
pub trait HserveStore: Send + Sync {
    async fn hserve_client(&self, client_id: &str) -> Result<Option<(App, Mode)>>;
    async fn hserve_clients(&self, app_id: &str) -> Result<Vec<(String, Mode)>>;
    /// Fails with a `Conflict` when the username is taken in the scope.
    async fn create_hserve_user(
        &self,
        scope: &Scope,
        username: Option<&str>,
        password_hash: Option<&str>,
        anonymous: bool,
        now: i64,
    ) -> Result<HserveUser>;
    async fn hserve_user_by_name(&self, scope: &Scope, username: &str) -> Result<Option<HserveUser>>;
    async fn hserve_user(&self, scope: &Scope, id: i64) -> Result<Option<HserveUser>>;
    async fn create_hserve_session(&self, token_hash: &[u8], scope: &Scope, user_id: i64, expires: i64) -> Result<()>;
    /// `(scope, user id)` of a session that has not expired at `now`.
    async fn hserve_session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Scope, i64)>>;
    async fn delete_hserve_session(&self, token_hash: &[u8]) -> Result<bool>;
    /// The order, its (pending) charge and the record's metadata, in one transaction; returns the record id.
    async fn insert_payment_record(&self, order: &Order, charge: &Charge, meta: &RecordMeta) -> Result<i64>;
    /// A page of records and the total count; `user` restricts to one end user's records.
    async fn payment_records(
        &self,
        scope: &Scope,
        user: Option<i64>,
        query: &RecordQuery,
    ) -> Result<(Vec<PaymentRecord>, i64)>;
    /// By record id, trade_no or transaction_no.
    async fn payment_record(&self, scope: &Scope, user: Option<i64>, reference: &str) -> Result<Option<PaymentRecord>>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HserveUser {
    pub id: i64,
    pub created: i64,
    pub username: Option<String>,
    /// PBKDF2 record (`pbkdf2-sha256$iterations$salt$hash`), none for anonymous users.
    pub password_hash: Option<String>,
    pub anonymous: bool,
}

/// What a payment record holds beyond the core order and charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMeta {
    /// 知晓云's own serial number for the payment.
    pub transaction_no: String,
    /// The number sent to the channel (out_trade_no): what the merchant reconciles by.
    pub trade_no: String,
    /// `weixin_tenpay`, `alipay` or `qpay`: the family the list filters by.
    pub gateway_type: String,
    /// The exact gateway type the payment was made with (`weixin_tenpay_native`, …).
    pub trade_type: String,
    pub created_by: Option<i64>,
    pub merchandise_description: String,
    pub merchandise_schema_id: Option<i64>,
    pub merchandise_record_id: Option<String>,
    /// JSON text, as the client sent it.
    pub merchandise_snapshot: String,
    pub ip_address: String,
}

/// One payment record as the face renders it.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    /// The record's integer id (the order's sequence number).
    pub id: i64,
    pub order: Order,
    pub charge: Charge,
    pub meta: RecordMeta,
    /// When the record last changed ([`UPDATED`]).
    pub updated: i64,
    /// The creator's username (seed 003's `created_by_name`); none for anonymous users and servers.
    pub created_by_name: Option<String>,
}

pub fn record(r: &dyn RowLike) -> Result<PaymentRecord> {
    let order = rows::order(&Shifted(r, 1))?;
    let order_width = rows::width(rows::ORDER_COLUMNS);
    let charge = rows::charge(&Shifted(r, 1 + order_width))?;
    let m = 1 + order_width + rows::width(rows::CHARGE_COLUMNS);
    Ok(PaymentRecord {
        id: r.int(0)?,
        order,
        charge,
        meta: RecordMeta {
            transaction_no: r.text(m)?,
            trade_no: r.text(m + 1)?,
            gateway_type: r.text(m + 2)?,
            trade_type: r.text(m + 3)?,
            created_by: r.opt_int(m + 4)?,
            merchandise_description: r.text(m + 5)?,
            merchandise_schema_id: r.opt_int(m + 6)?,
            merchandise_record_id: r.opt_text(m + 7)?,
            merchandise_snapshot: r.text(m + 8)?,
            ip_address: r.text(m + 9)?,
        },
        updated: r.int(m + 10)?,
        created_by_name: r.opt_text(m + 11)?,
    })
}

/// A record, with its order's list position copied from the order inserted before it in the
/// same transaction (migration 0009/0010: pinned lists read it from `hserve_orders`' indexes).
pub const INSERT_META: &str = "INSERT INTO hserve_orders \
    (order_id, app_id, livemode, transaction_no, trade_no, gateway_type, trade_type, created_by, \
    merchandise_description, merchandise_schema_id, merchandise_record_id, merchandise_snapshot, ip_address, \
    created, seq) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
    (SELECT o.created FROM orders o WHERE o.id = $1), (SELECT o.seq FROM orders o WHERE o.id = $1))";

pub fn meta_params(scope: &Scope, order_id: &str, m: &RecordMeta) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(order_id.to_string()),
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Text(m.transaction_no.clone()),
        SqlParam::Text(m.trade_no.clone()),
        SqlParam::Text(m.gateway_type.clone()),
        SqlParam::Text(m.trade_type.clone()),
        SqlParam::OptInt(m.created_by),
        SqlParam::Text(m.merchandise_description.clone()),
        SqlParam::OptInt(m.merchandise_schema_id),
        SqlParam::OptText(m.merchandise_record_id.clone()),
        SqlParam::Text(m.merchandise_snapshot.clone()),
        SqlParam::Text(m.ip_address.clone()),
    ]
}

pub const USER_COLUMNS: &str = "id, created, username, password_hash, anonymous";

pub fn user(r: &dyn RowLike) -> Result<HserveUser> {
    Ok(HserveUser {
        id: r.int(0)?,
        created: r.int(1)?,
        username: r.opt_text(2)?,
        password_hash: r.opt_text(3)?,
        anonymous: r.boolean(4)?,
    })
}

/// Returns no row when the username is taken (anonymous users have none, so never collide).
pub const INSERT_USER: &str =
    "INSERT INTO hserve_users (app_id, livemode, created, username, password_hash, anonymous) \
    VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app_id, livemode, username) DO NOTHING RETURNING id";

pub fn new_user_params(
    scope: &Scope,
    username: Option<&str>,
    password_hash: Option<&str>,
    anonymous: bool,
    now: i64,
) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(scope.app_id.clone()),
        SqlParam::Bool(scope.mode.is_live()),
        SqlParam::Int(now),
        SqlParam::OptText(username.map(str::to_string)),
        SqlParam::OptText(password_hash.map(str::to_string)),
        SqlParam::Bool(anonymous),
    ]
}

/// The user an insert made, or the conflict its taken username is.
pub fn inserted_user(
    id: Option<i64>,
    username: Option<&str>,
    password_hash: Option<&str>,
    anonymous: bool,
    now: i64,
) -> Result<HserveUser> {
    match id {
        Some(id) => Ok(HserveUser {
            id,
            created: now,
            username: username.map(str::to_string),
            password_hash: password_hash.map(str::to_string),
            anonymous,
        }),
        None => Err(Problem::conflict(
            "username_taken",
            format!("The username '{}' is already registered.", username.unwrap_or_default()),
        )
        .with_param("username")),
    }
}
pub fn user_by_name_sql() -> String {
    format!("SELECT {USER_COLUMNS} FROM hserve_users WHERE app_id = $1 AND livemode = $2 AND username = $3")
}
pub fn user_by_id_sql() -> String {
    format!("SELECT {USER_COLUMNS} FROM hserve_users WHERE app_id = $1 AND livemode = $2 AND id = $3")
}
pub const INSERT_SESSION: &str =
    "INSERT INTO hserve_sessions (token_hash, user_id, app_id, livemode, expires) VALUES ($1, $2, $3, $4, $5)";
pub const SESSION: &str =
    "SELECT app_id, livemode, user_id FROM hserve_sessions WHERE token_hash = $1 AND expires > $2";
pub const DELETE_SESSION: &str = "DELETE FROM hserve_sessions WHERE token_hash = $1";
pub const CLIENT_APP: &str = "SELECT app_id, livemode FROM hserve_clients WHERE client_id = $1";
pub const CLIENTS_OF_APP: &str = "SELECT client_id, livemode FROM hserve_clients WHERE app_id = $1 ORDER BY livemode";
pub const INSERT_CLIENT: &str = "INSERT INTO hserve_clients (client_id, app_id, livemode) VALUES ($1, $2, $3)";

#[async_trait]
impl<B: crate::Backend> HserveStore for B {
    async fn hserve_client(&self, client_id: &str) -> Result<Option<(App, Mode)>> {
        let sql = format!(
            "SELECT {}, c.livemode FROM hserve_clients c JOIN apps a ON a.id = c.app_id WHERE c.client_id = $1",
            crate::sql::APP_COLUMNS
        );
        job!(self, Read, [client_id], |tx| {
            let row = |r: &dyn RowLike| Ok((crate::sql::app(r)?, Mode::from_live(r.boolean(6)?)));
            tx.query_opt(&sql, &[SqlParam::Text(client_id)], row).await
        })
    }

    async fn hserve_clients(&self, app_id: &str) -> Result<Vec<(String, Mode)>> {
        job!(self, Read, [app_id], |tx| {
            let row = |r: &dyn RowLike| Ok((r.text(0)?, Mode::from_live(r.boolean(1)?)));
            tx.query(CLIENTS_OF_APP, &[SqlParam::Text(app_id)], row).await
        })
    }

    async fn create_hserve_user(
        &self,
        scope: &Scope,
        username: Option<&str>,
        password_hash: Option<&str>,
        anonymous: bool,
        now: i64,
    ) -> Result<HserveUser> {
        let params = new_user_params(scope, username, password_hash, anonymous, now);
        let id = job!(self, Autocommit, [], |tx| { tx.query_opt(INSERT_USER, &params, |r| r.int(0)).await })?;
        inserted_user(id, username, password_hash, anonymous, now)
    }

    async fn hserve_user_by_name(&self, scope: &Scope, username: &str) -> Result<Option<HserveUser>> {
        let params = rows::scoped(scope, username);
        job!(self, Read, [], |tx| { tx.query_opt(&user_by_name_sql(), &params, user).await })
    }

    async fn hserve_user(&self, scope: &Scope, id: i64) -> Result<Option<HserveUser>> {
        let params = rows::scoped_int(scope, id);
        job!(self, Read, [], |tx| { tx.query_opt(&user_by_id_sql(), &params, user).await })
    }

    async fn create_hserve_session(&self, token_hash: &[u8], scope: &Scope, user_id: i64, expires: i64) -> Result<()> {
        let params = [
            SqlParam::Bytes(token_hash.to_vec()),
            SqlParam::Int(user_id),
            SqlParam::Text(scope.app_id.clone()),
            SqlParam::Bool(scope.mode.is_live()),
            SqlParam::Int(expires),
        ];
        job!(self, Autocommit, [], |tx| { tx.exec(INSERT_SESSION, &params).await.map(|_| ()) })
    }

    async fn hserve_session(&self, token_hash: &[u8], now: i64) -> Result<Option<(Scope, i64)>> {
        let params = [SqlParam::Bytes(token_hash.to_vec()), SqlParam::Int(now)];
        job!(self, Read, [], |tx| {
            let row =
                |r: &dyn RowLike| Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.int(2)?));
            tx.query_opt(SESSION, &params, row).await
        })
    }

    async fn delete_hserve_session(&self, token_hash: &[u8]) -> Result<bool> {
        let params = [SqlParam::Bytes(token_hash.to_vec())];
        job!(self, Autocommit, [], |tx| { Ok(tx.exec(DELETE_SESSION, &params).await? > 0) })
    }

    async fn insert_payment_record(&self, order: &Order, charge: &Charge, meta: &RecordMeta) -> Result<i64> {
        job!(self, Write, [order, charge, meta], |tx| {
            let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
            tx.exec(rows::insert_order_sql(), &rows::order_params(&order)).await?;
            tx.exec(rows::insert_charge_sql(), &rows::charge_params(&charge)).await?;
            tx.exec(INSERT_META, &meta_params(&scope, &order.id, &meta)).await?;
            let seq = tx.query_opt(rows::ORDER_SEQ, &rows::scoped(&scope, &order.id), |r| r.int(0)).await?;
            seq.ok_or_else(|| crate::sql::vanished("record"))
        })
    }

    async fn payment_records(
        &self,
        scope: &Scope,
        user: Option<i64>,
        query: &RecordQuery,
    ) -> Result<(Vec<PaymentRecord>, i64)> {
        let ((page_sql, page_params), (count_sql, count_params)) = records_queries(scope, user, query)?;
        let (offset, limit) = (query.offset, query.limit);
        job!(self, Read, [scope], |tx| {
            let seqs = tx.query(&page_sql, &page_params, |r| r.int(0)).await?;
            let mut records = Vec::with_capacity(seqs.len());
            if !seqs.is_empty() {
                let (sql, params) = records_by_seq(&scope, &seqs);
                let mut found = tx.query(&sql, &params, record).await?;
                // Back into list order (the page's statement said it; the records' one says none).
                for seq in &seqs {
                    if let Some(at) = found.iter().position(|r| r.id == *seq) {
                        records.push(found.swap_remove(at));
                    }
                }
            }
            // A short page that is not past the end is the end: the total is known without counting.
            let shown = i64::try_from(records.len()).unwrap_or(i64::MAX);
            if shown < limit && (shown > 0 || offset == 0) {
                return Ok((records, offset.saturating_add(shown)));
            }
            let total = tx.query_opt(&count_sql, &count_params, |r| r.int(0)).await?.unwrap_or(0);
            Ok((records, total))
        })
    }

    async fn payment_record(&self, scope: &Scope, user: Option<i64>, reference: &str) -> Result<Option<PaymentRecord>> {
        let (sql, params) = record_by_reference(scope, user, reference);
        job!(self, Read, [], |tx| { tx.query_opt(&sql, &params, record).await })
    }
}
