//! The PostgreSQL store, for production and for several stateless nodes on one database.
//! Every mutating method runs in one transaction that first locks the order row
//! (`FOR UPDATE`) — the one lock order (order, then its charges/refunds) means no deadlocks —
//! and then applies conditional updates that re-check their own preconditions.

mod hserve;
mod pool;
mod pos;
mod shares;

use async_trait::async_trait;
use paygate_domain::events::{self as ev, Event};
use paygate_domain::objects::{self, OrderView};
use paygate_domain::paging::CreatedRange;
use paygate_domain::paging::{OrderFilter, Page, Paging};
use paygate_domain::{
    plan_refund, plan_settlement, App, Charge, LatePayment, Mode, Order, Problem, Refund, Scope, Settlement,
};
use paygate_store::outbox;
use paygate_store::rows::{self, scoped, with, SqlParam};
use paygate_store::*;
use pool::{is_unique_violation, pg_err, Conn, Pool};
use serde_json::Value;
use std::sync::Arc;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_hserve_and_shares.sql")),
    (3, include_str!("../migrations/0003_pos_fees_wallet.sql")),
];
/// Serialises migrations when several nodes start at once.
const MIGRATION_LOCK: i64 = 0x0070_6179_6761_7465;

pub struct PostgresStore {
    pool: Arc<Pool>,
}

impl PostgresStore {
    /// `url` is a libpq-style URL; `pool_size` bounds this node's connections.
    pub fn connect(url: &str, pool_size: usize) -> Result<PostgresStore> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| Problem::invalid("database", format!("Invalid PostgreSQL URL: {e}")))?;
        // An unreachable server must fail a request (503) instead of holding it forever.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        Ok(PostgresStore { pool: Arc::new(Pool::new(config, pool_size.max(1))) })
    }
}

#[macro_export]
macro_rules! in_transaction {
    ($store:expr, $conn:ident, $body:block) => {{
        let mut $conn = $store.pool.get().await?;
        $conn.begin().await?;
        let result: Result<_> = async { $body }.await;
        match result {
            Ok(v) => {
                $conn.commit().await?;
                Ok(v)
            }
            Err(e) => {
                $conn.rollback().await;
                Err(e)
            }
        }
    }};
}

/// Records an event and queues its deliveries in the current transaction.
pub(crate) async fn emit(conn: &mut Conn, scope: &Scope, kind: &str, object: Value, now: i64) -> Result<()> {
    let event = outbox::new_event(scope, kind, object, now)?;
    for (sql, params) in outbox::event_statements(&event) {
        conn.exec(sql, &params).await?;
    }
    Ok(())
}

pub(crate) async fn order_object(conn: &mut Conn, scope: &Scope, order: Order) -> Result<Value> {
    let charges = conn.query(&rows::charges_of_order_sql(), &scoped(scope, &order.id), rows::charge).await?;
    Ok(objects::order(&OrderView { order, charges }))
}

pub(crate) const APP_COLUMNS: &str = "a.id, a.name, a.created, a.public_key_pem, a.late_payment, a.max_share_bps";

pub(crate) fn app_row(r: &tokio_postgres::Row) -> Result<App> {
    let policy: String = r.try_get(4).map_err(pg_err)?;
    Ok(App {
        id: r.try_get(0).map_err(pg_err)?,
        name: r.try_get(1).map_err(pg_err)?,
        created: r.try_get(2).map_err(pg_err)?,
        public_key_pem: r.try_get(3).map_err(pg_err)?,
        late_payment: LatePayment::parse(&policy).unwrap_or_default(),
        max_share_bps: r.try_get(5).map_err(pg_err)?,
    })
}

pub(crate) async fn load_order(conn: &mut Conn, scope: &Scope, id: &str, lock: bool) -> Result<Option<Order>> {
    let sql = rows::select_order_sql(if lock { "FOR UPDATE" } else { "" });
    conn.query_opt(&sql, &scoped(scope, id), rows::order).await
}

pub(crate) async fn load_charge(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<Charge>> {
    conn.query_opt(&rows::select_charge_sql(""), &scoped(scope, id), rows::charge).await
}

pub(crate) async fn load_refund(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<Refund>> {
    conn.query_opt(&rows::select_refund_sql(""), &scoped(scope, id), rows::refund).await
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.exec("SELECT pg_advisory_lock($1)", &[SqlParam::Int(MIGRATION_LOCK)]).await?;
        let result = async {
            conn.client()
                .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
                .await
                .map_err(pg_err)?;
            for (version, sql) in MIGRATIONS {
                let done = conn.query_opt("SELECT version FROM schema_migrations WHERE version = $1", &[SqlParam::Int(*version)], |r| r.int(0)).await?;
                if done.is_none() {
                    conn.begin().await?;
                    let applied = async {
                        conn.client().batch_execute(sql).await.map_err(pg_err)?;
                        conn.exec(
                            "INSERT INTO schema_migrations (version, applied) VALUES ($1, extract(epoch from now())::bigint)",
                            &[SqlParam::Int(*version)],
                        )
                        .await
                    }
                    .await;
                    match applied {
                        Ok(_) => conn.commit().await?,
                        Err(e) => {
                            conn.rollback().await;
                            return Err(e);
                        }
                    }
                }
            }
            Ok(())
        }
        .await;
        conn.exec("SELECT pg_advisory_unlock($1)", &[SqlParam::Int(MIGRATION_LOCK)]).await?;
        result
    }

    async fn setting(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        let mut conn = self.pool.get().await?;
        let client = conn.client();
        client
            .execute(
                "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                &[&name, &fresh],
            )
            .await
            .map_err(pg_err)?;
        let row = client.query_one("SELECT value FROM settings WHERE name = $1", &[&name]).await.map_err(pg_err)?;
        row.try_get(0).map_err(pg_err)
    }

    async fn create_app(
        &self,
        app: &App,
        keys: &[ApiKeyRecord],
        hserve_clients: &[(String, Mode)],
        credentials: &[FaceCredential],
    ) -> Result<()> {
        in_transaction!(self, conn, {
            conn.client()
                .execute(
                    "INSERT INTO apps (id, name, created, public_key_pem, late_payment) VALUES ($1, $2, $3, $4, $5)",
                    &[&app.id, &app.name, &app.created, &app.public_key_pem, &app.late_payment.as_str()],
                )
                .await
                .map_err(pg_err)?;
            for k in keys {
                conn.client()
                    .execute(
                        "INSERT INTO api_keys (key_hash, app_id, livemode, hint) VALUES ($1, $2, $3, $4)",
                        &[&k.key_hash, &app.id, &k.mode.is_live(), &k.hint],
                    )
                    .await
                    .map_err(pg_err)?;
            }
            for (client_id, mode) in hserve_clients {
                conn.exec(
                    paygate_store::hserve::INSERT_CLIENT,
                    &[
                        SqlParam::Text(client_id.clone()),
                        SqlParam::Text(app.id.clone()),
                        SqlParam::Bool(mode.is_live()),
                    ],
                )
                .await?;
            }
            for c in credentials {
                conn.exec(paygate_store::pos::INSERT_CREDENTIAL, &paygate_store::pos::credential_params(c)).await?;
            }
            Ok(())
        })
    }

    async fn ready(&self) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.query_opt("SELECT 1", &[], |_| Ok(())).await.map(|_| ())
    }

    async fn count_apps(&self) -> Result<i64> {
        let mut conn = self.pool.get().await?;
        conn.query_opt("SELECT COUNT(*) FROM apps", &[], |r| r.int(0)).await.map(|n| n.unwrap_or(0))
    }

    async fn find_api_key(&self, key_hash: &[u8]) -> Result<Option<(App, Mode)>> {
        let mut conn = self.pool.get().await?;
        let sql = format!(
            "SELECT {APP_COLUMNS}, k.livemode FROM api_keys k JOIN apps a ON a.id = k.app_id WHERE k.key_hash = $1"
        );
        let rows = conn.client().query(&sql, &[&key_hash]).await.map_err(pg_err)?;
        let Some(r) = rows.first() else { return Ok(None) };
        Ok(Some((app_row(r)?, Mode::from_live(r.try_get(6).map_err(pg_err)?))))
    }

    async fn app(&self, app_id: &str) -> Result<Option<App>> {
        let mut conn = self.pool.get().await?;
        let rows = conn
            .client()
            .query(&format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.id = $1"), &[&app_id])
            .await
            .map_err(pg_err)?;
        rows.first().map(app_row).transpose()
    }

    async fn set_app_late_payment(&self, app_id: &str, policy: LatePayment) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let n = conn
            .client()
            .execute("UPDATE apps SET late_payment = $1 WHERE id = $2", &[&policy.as_str(), &app_id])
            .await
            .map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn set_app_public_key(&self, app_id: &str, pem: Option<&str>) -> Result<bool> {
        let mut conn = self.pool.get().await?;
        let n = conn
            .client()
            .execute("UPDATE apps SET public_key_pem = $1 WHERE id = $2", &[&pem, &app_id])
            .await
            .map_err(pg_err)?;
        Ok(n == 1)
    }

    async fn insert_order(&self, order: &Order) -> Result<()> {
        let mut conn = self.pool.get().await?;
        match conn.exec_raw(&rows::insert_order_sql(), &rows::order_params(order)).await {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                let existing =
                    conn.query_opt(rows::ORDER_BY_MERCHANT_NO, &rows::merchant_no_params(order), |r| r.text(0)).await?;
                Err(match existing {
                    Some(id) => rows::duplicate_order(&order.merchant_order_no, &id),
                    None => pg_err(e),
                })
            }
            Err(e) => Err(pg_err(e)),
        }
    }

    async fn order(&self, scope: &Scope, id: &str) -> Result<Option<Order>> {
        let mut conn = self.pool.get().await?;
        load_order(&mut conn, scope, id, false).await
    }

    async fn order_view(&self, scope: &Scope, id: &str) -> Result<Option<OrderView>> {
        let mut conn = self.pool.get().await?;
        Ok(rows::into_order_view(
            conn.query(&rows::order_view_sql(), &scoped(scope, id), rows::order_and_charge).await?,
        ))
    }

    async fn list_orders(&self, scope: &Scope, filter: &OrderFilter, paging: &Paging) -> Result<Page<Order>> {
        let mut conn = self.pool.get().await?;
        let cursor = match paging {
            Paging::Cursor { starting_after, ending_before, .. } => {
                match starting_after.as_ref().or(ending_before.as_ref()) {
                    Some(id) => {
                        let seq = conn.query_opt(rows::ORDER_SEQ, &scoped(scope, id), |r| r.int(0)).await?;
                        let param = if starting_after.is_some() { "starting_after" } else { "ending_before" };
                        Some(seq.ok_or_else(|| Problem::invalid(param, format!("No such order: {id}")))?)
                    }
                    None => None,
                }
            }
            Paging::Page { .. } => None,
        };
        let (sql, params, reversed) = rows::list_orders_query(scope, filter, paging, cursor);
        let orders = conn.query(&sql, &params, rows::order).await?;
        Ok(rows::into_page(orders, paging.size(), reversed))
    }

    async fn cancel_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<CancelOutcome>> {
        in_transaction!(self, conn, {
            let Some(order) = load_order(&mut conn, scope, id, true).await? else { return Ok(None) };
            if !order.status.accepts_payment() {
                return Ok(Some(CancelOutcome::NotCancelable(order)));
            }
            let closing =
                conn.query(&rows::pending_charges_sql("FOR UPDATE"), &scoped(scope, id), rows::charge).await?;
            conn.exec(rows::CANCEL_ORDER, &scoped(scope, id)).await?;
            conn.exec(rows::CLOSE_PENDING_CHARGES, &scoped(scope, id)).await?;
            let order = load_order(&mut conn, scope, id, false)
                .await?
                .ok_or_else(|| Problem::internal("canceled order vanished"))?;
            let object = order_object(&mut conn, scope, order.clone()).await?;
            emit(&mut conn, scope, ev::ORDER_CANCELED, object, now).await?;
            Ok(Some(CancelOutcome::Canceled { order, closed_charges: closing }))
        })
    }

    async fn expired_orders(&self, now: i64, limit: i64) -> Result<Vec<(Scope, String)>> {
        let mut conn = self.pool.get().await?;
        conn.query(outbox::EXPIRED_ORDERS, &[SqlParam::Int(now), SqlParam::Int(limit)], |r| {
            Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.text(2)?))
        })
        .await
    }

    async fn close_expired_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<(Order, Vec<Charge>)>> {
        in_transaction!(self, conn, {
            let Some(order) = load_order(&mut conn, scope, id, true).await? else { return Ok(None) };
            if !order.status.accepts_payment() || order.time_expire > now {
                return Ok(None);
            }
            let closing =
                conn.query(&rows::pending_charges_sql("FOR UPDATE"), &scoped(scope, id), rows::charge).await?;
            if conn.exec(outbox::CLOSE_ORDER, &with(scoped(scope, id), [SqlParam::Int(now)])).await? != 1 {
                return Err(Problem::internal("expiry lost under the row lock"));
            }
            conn.exec(rows::CLOSE_PENDING_CHARGES, &scoped(scope, id)).await?;
            let order = load_order(&mut conn, scope, id, false)
                .await?
                .ok_or_else(|| Problem::internal("closed order vanished"))?;
            let object = order_object(&mut conn, scope, order.clone()).await?;
            emit(&mut conn, scope, ev::ORDER_CLOSED, object, now).await?;
            Ok(Some((order, closing)))
        })
    }

    async fn open_charge(&self, scope: &Scope, charge: &Charge) -> Result<OpenedCharge> {
        in_transaction!(self, conn, {
            let order = load_order(&mut conn, scope, &charge.order_id, true)
                .await?
                .ok_or_else(|| Problem::not_found("order", &charge.order_id))?;
            paygate_domain::check_payable(&order, charge.created)?;
            let superseded =
                conn.query(&rows::pending_charges_sql("FOR UPDATE"), &scoped(scope, &order.id), rows::charge).await?;
            conn.exec(rows::CLOSE_PENDING_CHARGES, &scoped(scope, &order.id)).await?;
            conn.exec(&rows::insert_charge_sql(), &rows::charge_params(charge)).await?;
            Ok(OpenedCharge { charge: charge.clone(), superseded })
        })
    }

    async fn charge(&self, scope: &Scope, id: &str) -> Result<Option<Charge>> {
        let mut conn = self.pool.get().await?;
        load_charge(&mut conn, scope, id).await
    }

    async fn charges_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<Charge>> {
        let mut conn = self.pool.get().await?;
        conn.query(&rows::charges_of_order_sql(), &scoped(scope, order_id), rows::charge).await
    }

    async fn find_charge(&self, scope: &Scope, reference: &str) -> Result<Option<Charge>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&rows::find_charge_sql(), &scoped(scope, reference), rows::charge).await
    }

    async fn find_test_charge(&self, reference: &str) -> Result<Option<Charge>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&rows::find_test_charge_sql(), &[SqlParam::Text(reference.to_string())], rows::charge).await
    }

    async fn settle_charge(&self, scope: &Scope, charge_id: &str, outcome: &ChargeOutcome) -> Result<SettledCharge> {
        in_transaction!(self, conn, {
            let charge = load_charge(&mut conn, scope, charge_id)
                .await?
                .ok_or_else(|| Problem::not_found("charge", charge_id))?;
            // Lock order first: the same order as cancel and refunds, so they never deadlock.
            let order = load_order(&mut conn, scope, &charge.order_id, true)
                .await?
                .ok_or_else(|| Problem::internal("charge without order"))?;
            let charge =
                load_charge(&mut conn, scope, charge_id).await?.ok_or_else(|| Problem::internal("charge vanished"))?;
            let settlement = plan_settlement(&order, &charge, matches!(outcome, ChargeOutcome::Succeeded { .. }))?;
            let order_key = scoped(scope, &order.id);
            match (&settlement, outcome) {
                (Settlement::NotPending, _) => return Ok(SettledCharge::NotPending(charge)),
                (Settlement::Failed, ChargeOutcome::Failed { code, message }) => {
                    conn.exec(
                        rows::CHARGE_FAILED,
                        &with(
                            scoped(scope, charge_id),
                            [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())],
                        ),
                    )
                    .await?;
                }
                (
                    Settlement::Paid | Settlement::PaidAfterClose,
                    ChargeOutcome::Succeeded { transaction_no, time_paid, notification, settlement: money },
                ) => {
                    let set = [
                        SqlParam::Text(transaction_no.clone()),
                        SqlParam::Int(*time_paid),
                        SqlParam::OptText(notification.as_ref().map(|n| n.to_string())),
                        SqlParam::OptText(money.as_ref().map(|n| n.to_string())),
                    ];
                    let paid = [SqlParam::Int(charge.amount.fen()), SqlParam::Int(*time_paid)];
                    let order_sql =
                        if settlement == Settlement::Paid { rows::ORDER_PAID } else { rows::ORDER_PAID_LATE };
                    if conn.exec(rows::CHARGE_SUCCEEDED, &with(scoped(scope, charge_id), set)).await? != 1
                        || conn.exec(order_sql, &with(order_key.clone(), paid)).await? != 1
                    {
                        return Err(Problem::internal("settlement lost under the row lock"));
                    }
                    conn.exec(rows::CLOSE_OTHER_PENDING, &with(order_key, [SqlParam::Text(charge_id.to_string())]))
                        .await?;
                }
                _ => return Err(Problem::internal("settlement does not match the outcome")),
            }
            let charge =
                load_charge(&mut conn, scope, charge_id).await?.ok_or_else(|| Problem::internal("charge vanished"))?;
            let order = load_order(&mut conn, scope, &charge.order_id, false)
                .await?
                .ok_or_else(|| Problem::internal("order vanished"))?;
            let now = charge.time_paid.unwrap_or(charge.created);
            match settlement {
                Settlement::Paid => {
                    emit(&mut conn, scope, ev::CHARGE_SUCCEEDED, objects::charge(&charge, None), now).await?;
                    let object = order_object(&mut conn, scope, order.clone()).await?;
                    emit(&mut conn, scope, ev::ORDER_SUCCEEDED, object, now).await?;
                }
                Settlement::PaidAfterClose => {
                    let object = order_object(&mut conn, scope, order.clone()).await?;
                    emit(&mut conn, scope, ev::ORDER_PAID_AFTER_CLOSE, object, now).await?;
                }
                _ => {}
            }
            Ok(SettledCharge::Settled { charge, order })
        })
    }

    async fn reserve_refund(&self, scope: &Scope, req: &RefundRequest) -> Result<Refund> {
        in_transaction!(self, conn, {
            let order = load_order(&mut conn, scope, &req.order_id, true)
                .await?
                .ok_or_else(|| Problem::not_found("order", &req.order_id))?;
            let charge_id = match &req.charge_id {
                Some(id) => id.clone(),
                None => conn
                    .query_opt(rows::SUCCEEDED_CHARGE_OF_ORDER, &scoped(scope, &order.id), |r| r.text(0))
                    .await?
                    .ok_or_else(|| {
                        plan_refund(&order, None, req.amount)
                            .err()
                            .unwrap_or_else(|| Problem::internal("paid order has no charge"))
                    })?,
            };
            let charge = load_charge(&mut conn, scope, &charge_id)
                .await?
                .filter(|c| c.order_id == order.id)
                .ok_or_else(|| Problem::not_found("charge", &charge_id))?;
            let amount = plan_refund(&order, Some(&charge), req.amount)?;
            if conn.exec(rows::RESERVE_REFUND, &with(scoped(scope, &order.id), [SqlParam::Int(amount.fen())])).await?
                != 1
            {
                return Err(Problem::internal("refund reservation lost under the row lock"));
            }
            let refund = rows::pending_refund(scope, req, &charge.id, amount);
            conn.exec(&rows::insert_refund_sql(), &rows::refund_params(&refund)).await?;
            Ok(refund)
        })
    }

    async fn finish_refund(&self, scope: &Scope, refund_id: &str, outcome: &RefundOutcome) -> Result<Refund> {
        in_transaction!(self, conn, {
            let refund = load_refund(&mut conn, scope, refund_id)
                .await?
                .ok_or_else(|| Problem::not_found("refund", refund_id))?;
            load_order(&mut conn, scope, &refund.order_id, true).await?;
            let amount = SqlParam::Int(refund.amount.fen());
            match outcome {
                RefundOutcome::Succeeded { transaction_no, time_succeed } => {
                    let set = [SqlParam::OptText(transaction_no.clone()), SqlParam::Int(*time_succeed)];
                    if conn.exec(rows::REFUND_SUCCEEDED, &with(scoped(scope, refund_id), set)).await? == 1 {
                        conn.exec(rows::ORDER_REFUND_COUNTED, &with(scoped(scope, &refund.order_id), [amount.clone()]))
                            .await?;
                        conn.exec(
                            rows::CHARGE_REFUND_COUNTED,
                            &with(scoped(scope, &refund.charge_id), [amount.clone()]),
                        )
                        .await?;
                        let wallet = with(
                            scoped(scope, &refund.charge_id),
                            [amount, SqlParam::Text(refund_id.to_string()), SqlParam::Int(*time_succeed)],
                        );
                        conn.exec(rows::WALLET_REFUND_CREDIT, &wallet[..4]).await?;
                        conn.exec(rows::WALLET_REFUND_RECORD, &wallet).await?;
                    }
                }
                RefundOutcome::Failed { code, message } => {
                    let set = [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())];
                    if conn.exec(rows::REFUND_FAILED, &with(scoped(scope, refund_id), set)).await? == 1 {
                        conn.exec(rows::ORDER_REFUND_RELEASED, &with(scoped(scope, &refund.order_id), [amount]))
                            .await?;
                    }
                }
            }
            let done =
                load_refund(&mut conn, scope, refund_id).await?.ok_or_else(|| Problem::internal("refund vanished"))?;
            if done.status != refund.status {
                let (kind, now) = match outcome {
                    RefundOutcome::Succeeded { time_succeed, .. } => (ev::REFUND_SUCCEEDED, *time_succeed),
                    RefundOutcome::Failed { .. } => (ev::REFUND_FAILED, done.created),
                };
                emit(&mut conn, scope, kind, objects::refund(&done), now).await?;
            }
            Ok(done)
        })
    }

    async fn refund(&self, scope: &Scope, id: &str) -> Result<Option<Refund>> {
        let mut conn = self.pool.get().await?;
        load_refund(&mut conn, scope, id).await
    }

    async fn refunds(
        &self,
        scope: &Scope,
        order_id: Option<&str>,
        charge_id: Option<&str>,
        limit: i64,
    ) -> Result<Page<Refund>> {
        let mut conn = self.pool.get().await?;
        let (sql, params) = rows::refunds_query(scope, order_id, charge_id, limit);
        Ok(rows::into_page(conn.query(&sql, &params, rows::refund).await?, limit, false))
    }

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<Event>> {
        let mut conn = self.pool.get().await?;
        conn.query_opt(&outbox::select_event_sql(), &scoped(scope, id), outbox::event).await
    }

    async fn list_events(
        &self,
        scope: &Scope,
        kind: Option<&str>,
        created: &CreatedRange,
        paging: &Paging,
    ) -> Result<Page<Event>> {
        let mut conn = self.pool.get().await?;
        let (limit, cursor, before) = match paging {
            Paging::Cursor { limit, starting_after, ending_before } => {
                let cursor = match starting_after.as_ref().or(ending_before.as_ref()) {
                    Some(id) => {
                        Some(conn.query_opt(outbox::EVENT_SEQ, &scoped(scope, id), |r| r.int(0)).await?.ok_or_else(
                            || {
                                Problem::invalid(
                                    if starting_after.is_some() { "starting_after" } else { "ending_before" },
                                    format!("No such event: {id}"),
                                )
                            },
                        )?)
                    }
                    None => None,
                };
                (*limit, cursor, ending_before.is_some())
            }
            Paging::Page { per_page, .. } => (*per_page, None, false),
        };
        let (sql, params) = outbox::list_events_query(scope, kind, created, limit, cursor, before);
        Ok(rows::into_page(conn.query(&sql, &params, outbox::event).await?, limit, before))
    }

    async fn create_endpoint(&self, e: &NewEndpoint) -> Result<()> {
        in_transaction!(self, conn, {
            let live = e.scope.mode.is_live();
            conn.exec(
                outbox::INSERT_ENDPOINT,
                &[
                    SqlParam::Text(e.id.clone()),
                    SqlParam::Text(e.scope.app_id.clone()),
                    SqlParam::Bool(live),
                    SqlParam::Int(e.created),
                    SqlParam::Text(e.url.clone()),
                    SqlParam::Text(e.secret.clone()),
                    SqlParam::Bool(e.types.is_none()),
                ],
            )
            .await?;
            for t in e.types.iter().flatten() {
                conn.exec(outbox::INSERT_ENDPOINT_TYPE, &[SqlParam::Text(e.id.clone()), SqlParam::Text(t.clone())])
                    .await?;
            }
            Ok(())
        })
    }

    async fn endpoints(&self, scope: &Scope) -> Result<Vec<Endpoint>> {
        let mut conn = self.pool.get().await?;
        let params = [SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
        let found = conn
            .query(outbox::LIST_ENDPOINTS, &params, |r| {
                Ok((r.text(0)?, r.int(1)?, r.boolean(2)?, r.text(3)?, r.boolean(4)?))
            })
            .await?;
        let mut out = Vec::with_capacity(found.len());
        for (id, created, livemode, url, all) in found {
            let types = if all {
                None
            } else {
                Some(conn.query(outbox::ENDPOINT_TYPES, &[SqlParam::Text(id.clone())], |r| r.text(0)).await?)
            };
            out.push(Endpoint { id, created, livemode, url, types });
        }
        Ok(out)
    }

    async fn delete_endpoint(&self, scope: &Scope, id: &str) -> Result<bool> {
        in_transaction!(self, conn, {
            if conn.exec(outbox::DELETE_ENDPOINT, &scoped(scope, id)).await? != 1 {
                return Ok(false);
            }
            conn.exec(outbox::DROP_ENDPOINT_DELIVERIES, &[SqlParam::Text(id.to_string())]).await?;
            Ok(true)
        })
    }

    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>> {
        in_transaction!(self, conn, {
            conn.exec(outbox::DROP_ORPHANED_DELIVERIES, &[SqlParam::Int(claim.now)]).await?;
            // SKIP LOCKED: several nodes claim disjoint sets at once.
            let row = |r: &dyn rows::RowLike| Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?));
            let sql = outbox::claim_sql("FOR UPDATE SKIP LOCKED");
            let claimed = conn.query(&sql, &outbox::claim_params(claim), row).await?;
            let mut due = Vec::with_capacity(claimed.len());
            for (seq, event_id, endpoint_id, attempts) in claimed {
                let endpoint = [SqlParam::Text(endpoint_id.clone())];
                let target = conn.query_opt(outbox::DELIVERY_TARGET, &endpoint, |r| Ok((r.text(0)?, r.text(1)?)));
                let target = target.await?;
                let event = [SqlParam::Text(event_id)];
                let event = conn.query_opt(outbox::EVENT_BY_ID, &event, |r| Ok(outbox::event(r))).await?;
                // One unreadable row is failed with its reason; it never fails the claim.
                match outbox::due_delivery((seq, endpoint_id, attempts), claim, target, event) {
                    Ok(delivery) => due.push(delivery),
                    Err(why) => {
                        for (sql, params) in outbox::unsendable_statements(seq, claim.now, &why) {
                            conn.exec(sql, &params).await?;
                        }
                    }
                }
            }
            Ok(due)
        })
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<()> {
        in_transaction!(self, conn, {
            for record in attempts {
                conn.exec(outbox::INSERT_ATTEMPT, &outbox::attempt_params(record.seq, &record.attempt)).await?;
                if conn.exec(outbox::DELIVERY_DONE, &outbox::done_params(record)).await? == 0 {
                    conn.exec(outbox::DELIVERY_ATTEMPT_COUNTED, &outbox::counted_params(record)).await?;
                }
            }
            Ok(())
        })
    }

    async fn late_payments_to_refund(&self, limit: i64) -> Result<Vec<(Scope, String)>> {
        let mut conn = self.pool.get().await?;
        conn.query(outbox::LATE_PAYMENTS_TO_REFUND, &[SqlParam::Int(limit)], |r| {
            Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.text(2)?))
        })
        .await
    }

    async fn deliveries(&self, scope: &Scope, event_id: &str) -> Result<Vec<DeliveryView>> {
        let mut conn = self.pool.get().await?;
        let found = conn
            .query(outbox::DELIVERIES_OF_EVENT, &scoped(scope, event_id), |r| {
                Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?, r.int(4)?))
            })
            .await?;
        let mut out = Vec::with_capacity(found.len());
        for (seq, endpoint_id, status, attempts, next_attempt_at) in found {
            let log = conn.query(outbox::ATTEMPTS_OF_DELIVERY, &[SqlParam::Int(seq)], outbox::attempt).await?;
            out.push(DeliveryView { endpoint_id, status, attempts, next_attempt_at, log });
        }
        Ok(out)
    }

    async fn resend_event(&self, scope: &Scope, event_id: &str, now: i64) -> Result<u64> {
        let mut conn = self.pool.get().await?;
        let event = conn
            .query_opt(&outbox::select_event_sql(), &scoped(scope, event_id), outbox::event)
            .await?
            .ok_or_else(|| Problem::not_found("event", event_id))?;
        let params = [
            SqlParam::Text(event.id),
            SqlParam::Int(now),
            SqlParam::Text(scope.app_id.clone()),
            SqlParam::Bool(scope.mode.is_live()),
            SqlParam::Text(event.kind),
        ];
        conn.exec(outbox::RESEND, &params).await
    }

    async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8],
        now: i64,
    ) -> Result<IdempotencyBegin> {
        let live = scope.mode.is_live();
        in_transaction!(self, conn, {
            // Take the key if it is free; otherwise lock the existing row and judge it.
            let inserted = conn
                .client()
                .execute(
                    "INSERT INTO idempotency_keys (app_id, livemode, key, fingerprint, created) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    &[&scope.app_id, &live, &key, &fingerprint, &now],
                )
                .await
                .map_err(pg_err)?;
            if inserted == 1 {
                return Ok(IdempotencyBegin::Started);
            }
            let row = conn
                .client()
                .query_one(
                    "SELECT fingerprint, created, status, body FROM idempotency_keys WHERE app_id = $1 AND livemode = $2 AND key = $3 FOR UPDATE",
                    &[&scope.app_id, &live, &key],
                )
                .await
                .map_err(pg_err)?;
            let (fp, created, status, body): (Vec<u8>, i64, Option<i64>, Option<Vec<u8>>) = (
                row.try_get(0).map_err(pg_err)?,
                row.try_get(1).map_err(pg_err)?,
                row.try_get(2).map_err(pg_err)?,
                row.try_get(3).map_err(pg_err)?,
            );
            match idempotency_decision(&fp, created, status, body, fingerprint, now) {
                Some(decision) => Ok(decision),
                None => {
                    conn.client()
                        .execute(
                            "UPDATE idempotency_keys SET fingerprint = $4, created = $5, status = NULL, body = NULL WHERE app_id = $1 AND livemode = $2 AND key = $3",
                            &[&scope.app_id, &live, &key, &fingerprint, &now],
                        )
                        .await
                        .map_err(pg_err)?;
                    Ok(IdempotencyBegin::Started)
                }
            }
        })
    }

    async fn idempotency_complete(&self, scope: &Scope, key: &str, status: u16, body: &[u8]) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.client()
            .execute(
                "UPDATE idempotency_keys SET status = $4, body = $5 WHERE app_id = $1 AND livemode = $2 AND key = $3",
                &[&scope.app_id, &scope.mode.is_live(), &key, &(status as i64), &body],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()> {
        let mut conn = self.pool.get().await?;
        conn.client()
            .execute(
                "DELETE FROM idempotency_keys WHERE app_id = $1 AND livemode = $2 AND key = $3 AND status IS NULL",
                &[&scope.app_id, &scope.mode.is_live(), &key],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }
}
