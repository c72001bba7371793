//! The SQLite store: embedded, zero set-up. Writes go through one writer thread (see
//! [`conn`]), so every trait method's read-decide-write runs with no other writer in between.

mod conn;
mod hserve;
mod pos;
mod shares;

use async_trait::async_trait;
use conn::{exec, query, query_opt, sql_err, Db};
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
use rusqlite::Connection;
use serde_json::Value;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_hserve_and_shares.sql")),
    (3, include_str!("../migrations/0003_pos_fees_wallet.sql")),
];

pub struct SqliteStore {
    db: Db,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: &str) -> Result<SqliteStore> {
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !dir.as_os_str().is_empty() && !dir.exists() {
                return Err(Problem::internal(format!("directory {} does not exist", dir.display())));
            }
        }
        Ok(SqliteStore { db: Db::open(path)? })
    }
}

pub(crate) fn load_order(conn: &Connection, scope: &Scope, id: &str) -> Result<Option<Order>> {
    query_opt(conn, &rows::select_order_sql(""), &scoped(scope, id), rows::order)
}

pub(crate) fn load_charge(conn: &Connection, scope: &Scope, id: &str) -> Result<Option<Charge>> {
    query_opt(conn, &rows::select_charge_sql(""), &scoped(scope, id), rows::charge)
}

pub(crate) fn load_refund(conn: &Connection, scope: &Scope, id: &str) -> Result<Option<Refund>> {
    query_opt(conn, &rows::select_refund_sql(""), &scoped(scope, id), rows::refund)
}

/// Records an event and queues its deliveries in the current transaction.
pub(crate) fn emit(conn: &Connection, scope: &Scope, kind: &str, object: Value, now: i64) -> Result<()> {
    let event = outbox::new_event(scope, kind, object, now)?;
    for (sql, params) in outbox::event_statements(&event) {
        exec(conn, sql, &params)?;
    }
    Ok(())
}

pub(crate) fn order_object(conn: &Connection, scope: &Scope, order: Order) -> Result<Value> {
    let charges = query(conn, &rows::charges_of_order_sql(), &scoped(scope, &order.id), rows::charge)?;
    Ok(objects::order(&OrderView { order, charges }))
}

pub(crate) const APP_COLUMNS: &str = "a.id, a.name, a.created, a.public_key_pem, a.late_payment, a.max_share_bps";

pub(crate) fn app_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<App> {
    let policy: String = r.get(4)?;
    Ok(App {
        id: r.get(0)?,
        name: r.get(1)?,
        created: r.get(2)?,
        public_key_pem: r.get(3)?,
        late_payment: LatePayment::parse(&policy).unwrap_or_default(),
        max_share_bps: r.get(5)?,
    })
}

fn existing_order_no_conflict(conn: &Connection, order: &Order) -> Result<Problem> {
    Ok(match query_opt(conn, rows::ORDER_BY_MERCHANT_NO, &rows::merchant_no_params(order), |r| r.text(0))? {
        Some(id) => rows::duplicate_order(&order.merchant_order_no, &id),
        None => Problem::internal("order insert violated a constraint"),
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<()> {
        self.db
            .write(|conn| {
                conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)")
                    .map_err(sql_err)?;
                for (version, sql) in MIGRATIONS {
                    let done: Option<i64> =
                        query_opt(conn, "SELECT version FROM schema_migrations WHERE version = $1", &[SqlParam::Int(*version)], |r| r.int(0))?;
                    if done.is_none() {
                        conn.execute_batch(sql).map_err(sql_err)?;
                        exec(conn, "INSERT INTO schema_migrations (version, applied) VALUES ($1, strftime('%s','now'))", &[SqlParam::Int(*version)])?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn setting(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                    rusqlite::params![name, fresh],
                )
                .map_err(sql_err)?;
                conn.query_row("SELECT value FROM settings WHERE name = ?1", [name], |r| r.get(0)).map_err(sql_err)
            })
            .await
    }

    async fn create_app(
        &self,
        app: &App,
        keys: &[ApiKeyRecord],
        hserve_clients: &[(String, Mode)],
        credentials: &[FaceCredential],
    ) -> Result<()> {
        let (app, keys, clients, credentials) =
            (app.clone(), keys.to_vec(), hserve_clients.to_vec(), credentials.to_vec());
        self.db
            .write(move |conn| {
                conn.execute(
                    "INSERT INTO apps (id, name, created, public_key_pem, late_payment) VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![app.id, app.name, app.created, app.public_key_pem, app.late_payment.as_str()],
                )
                .map_err(sql_err)?;
                for k in keys {
                    conn.execute(
                        "INSERT INTO api_keys (key_hash, app_id, livemode, hint) VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![k.key_hash, app.id, k.mode.is_live(), k.hint],
                    )
                    .map_err(sql_err)?;
                }
                for (client_id, mode) in clients {
                    exec(
                        conn,
                        paygate_store::hserve::INSERT_CLIENT,
                        &[SqlParam::Text(client_id), SqlParam::Text(app.id.clone()), SqlParam::Bool(mode.is_live())],
                    )?;
                }
                for c in &credentials {
                    exec(conn, paygate_store::pos::INSERT_CREDENTIAL, &paygate_store::pos::credential_params(c))?;
                }
                Ok(())
            })
            .await
    }

    async fn ready(&self) -> Result<()> {
        self.db.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_err)).await
    }

    async fn count_apps(&self) -> Result<i64> {
        self.db.read(|conn| conn.query_row("SELECT COUNT(*) FROM apps", [], |r| r.get(0)).map_err(sql_err)).await
    }

    async fn find_api_key(&self, key_hash: &[u8]) -> Result<Option<(App, Mode)>> {
        let key_hash = key_hash.to_vec();
        self.db
            .read(move |conn| {
                let sql = format!("SELECT {APP_COLUMNS}, k.livemode FROM api_keys k JOIN apps a ON a.id = k.app_id WHERE k.key_hash = ?1");
                let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
                let mut rows = stmt.query([key_hash]).map_err(sql_err)?;
                match rows.next().map_err(sql_err)? {
                    None => Ok(None),
                    Some(r) => Ok(Some((app_row(r).map_err(sql_err)?, Mode::from_live(r.get(6).map_err(sql_err)?)))),
                }
            })
            .await
    }

    async fn app(&self, app_id: &str) -> Result<Option<App>> {
        let app_id = app_id.to_string();
        self.db
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps a WHERE a.id = ?1"))
                    .map_err(sql_err)?;
                let mut rows = stmt.query([app_id]).map_err(sql_err)?;
                rows.next().map_err(sql_err)?.map(app_row).transpose().map_err(sql_err)
            })
            .await
    }

    async fn set_app_late_payment(&self, app_id: &str, policy: LatePayment) -> Result<bool> {
        let app_id = app_id.to_string();
        self.db
            .write(move |conn| {
                conn.execute(
                    "UPDATE apps SET late_payment = ?1 WHERE id = ?2",
                    rusqlite::params![policy.as_str(), app_id],
                )
                .map(|n| n == 1)
                .map_err(sql_err)
            })
            .await
    }

    async fn set_app_public_key(&self, app_id: &str, pem: Option<&str>) -> Result<bool> {
        let (app_id, pem) = (app_id.to_string(), pem.map(str::to_string));
        self.db
            .write(move |conn| {
                conn.execute("UPDATE apps SET public_key_pem = ?1 WHERE id = ?2", rusqlite::params![pem, app_id])
                    .map(|n| n == 1)
                    .map_err(sql_err)
            })
            .await
    }

    async fn insert_order(&self, order: &Order) -> Result<()> {
        let order = order.clone();
        self.db
            .write(move |conn| match exec(conn, &rows::insert_order_sql(), &rows::order_params(&order)) {
                Ok(_) => Ok(()),
                Err(_) => Err(existing_order_no_conflict(conn, &order)?),
            })
            .await
    }

    async fn order(&self, scope: &Scope, id: &str) -> Result<Option<Order>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db.read(move |conn| load_order(conn, &scope, &id)).await
    }

    async fn order_view(&self, scope: &Scope, id: &str) -> Result<Option<OrderView>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db
            .read(move |conn| {
                Ok(rows::into_order_view(query(
                    conn,
                    &rows::order_view_sql(),
                    &scoped(&scope, &id),
                    rows::order_and_charge,
                )?))
            })
            .await
    }

    async fn list_orders(&self, scope: &Scope, filter: &OrderFilter, paging: &Paging) -> Result<Page<Order>> {
        let (scope, filter, paging) = (scope.clone(), filter.clone(), paging.clone());
        self.db
            .read(move |conn| {
                let cursor = match &paging {
                    Paging::Cursor { starting_after, ending_before, .. } => {
                        match starting_after.as_ref().or(ending_before.as_ref()) {
                            Some(id) => {
                                let seq = query_opt(conn, rows::ORDER_SEQ, &scoped(&scope, id), |r| r.int(0))?;
                                let param = if starting_after.is_some() { "starting_after" } else { "ending_before" };
                                Some(seq.ok_or_else(|| Problem::invalid(param, format!("No such order: {id}")))?)
                            }
                            None => None,
                        }
                    }
                    Paging::Page { .. } => None,
                };
                let (sql, params, reversed) = rows::list_orders_query(&scope, &filter, &paging, cursor);
                let orders = query(conn, &sql, &params, rows::order)?;
                Ok(rows::into_page(orders, paging.size(), reversed))
            })
            .await
    }

    async fn cancel_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<CancelOutcome>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db
            .write(move |conn| {
                let closing = query(conn, &rows::pending_charges_sql(""), &scoped(&scope, &id), rows::charge)?;
                if exec(conn, rows::CANCEL_ORDER, &scoped(&scope, &id))? == 1 {
                    exec(conn, rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &id))?;
                    let order =
                        load_order(conn, &scope, &id)?.ok_or_else(|| Problem::internal("canceled order vanished"))?;
                    emit(conn, &scope, ev::ORDER_CANCELED, order_object(conn, &scope, order.clone())?, now)?;
                    return Ok(Some(CancelOutcome::Canceled { order, closed_charges: closing }));
                }
                Ok(load_order(conn, &scope, &id)?.map(CancelOutcome::NotCancelable))
            })
            .await
    }

    async fn expired_orders(&self, now: i64, limit: i64) -> Result<Vec<(Scope, String)>> {
        self.db
            .read(move |conn| {
                query(conn, outbox::EXPIRED_ORDERS, &[SqlParam::Int(now), SqlParam::Int(limit)], |r| {
                    Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.text(2)?))
                })
            })
            .await
    }

    async fn close_expired_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<(Order, Vec<Charge>)>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db
            .write(move |conn| {
                let closing = query(conn, &rows::pending_charges_sql(""), &scoped(&scope, &id), rows::charge)?;
                if exec(conn, outbox::CLOSE_ORDER, &with(scoped(&scope, &id), [SqlParam::Int(now)]))? != 1 {
                    return Ok(None);
                }
                exec(conn, rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &id))?;
                let order = load_order(conn, &scope, &id)?.ok_or_else(|| Problem::internal("closed order vanished"))?;
                emit(conn, &scope, ev::ORDER_CLOSED, order_object(conn, &scope, order.clone())?, now)?;
                Ok(Some((order, closing)))
            })
            .await
    }

    async fn open_charge(&self, scope: &Scope, charge: &Charge) -> Result<OpenedCharge> {
        let (scope, charge) = (scope.clone(), charge.clone());
        self.db
            .write(move |conn| {
                let order = load_order(conn, &scope, &charge.order_id)?
                    .ok_or_else(|| Problem::not_found("order", &charge.order_id))?;
                paygate_domain::check_payable(&order, charge.created)?;
                let superseded = query(conn, &rows::pending_charges_sql(""), &scoped(&scope, &order.id), rows::charge)?;
                exec(conn, rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &order.id))?;
                exec(conn, &rows::insert_charge_sql(), &rows::charge_params(&charge))?;
                Ok(OpenedCharge { charge, superseded })
            })
            .await
    }

    async fn charge(&self, scope: &Scope, id: &str) -> Result<Option<Charge>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db.read(move |conn| load_charge(conn, &scope, &id)).await
    }

    async fn charges_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<Charge>> {
        let (scope, id) = (scope.clone(), order_id.to_string());
        self.db.read(move |conn| query(conn, &rows::charges_of_order_sql(), &scoped(&scope, &id), rows::charge)).await
    }

    async fn find_charge(&self, scope: &Scope, reference: &str) -> Result<Option<Charge>> {
        let (scope, reference) = (scope.clone(), reference.to_string());
        self.db
            .read(move |conn| query_opt(conn, &rows::find_charge_sql(), &scoped(&scope, &reference), rows::charge))
            .await
    }

    async fn find_test_charge(&self, reference: &str) -> Result<Option<Charge>> {
        let reference = reference.to_string();
        self.db
            .read(move |conn| {
                query_opt(conn, &rows::find_test_charge_sql(), &[SqlParam::Text(reference)], rows::charge)
            })
            .await
    }

    async fn settle_charge(&self, scope: &Scope, charge_id: &str, outcome: &ChargeOutcome) -> Result<SettledCharge> {
        let (scope, id, outcome) = (scope.clone(), charge_id.to_string(), outcome.clone());
        self.db
            .write(move |conn| {
                let charge = load_charge(conn, &scope, &id)?.ok_or_else(|| Problem::not_found("charge", &id))?;
                let order = load_order(conn, &scope, &charge.order_id)?
                    .ok_or_else(|| Problem::internal("charge without order"))?;
                let succeeded = matches!(outcome, ChargeOutcome::Succeeded { .. });
                let settlement = plan_settlement(&order, &charge, succeeded)?;
                let order_key = scoped(&scope, &order.id);
                match (&settlement, &outcome) {
                    (Settlement::NotPending, _) => return Ok(SettledCharge::NotPending(charge)),
                    (Settlement::Failed, ChargeOutcome::Failed { code, message }) => {
                        exec(
                            conn,
                            rows::CHARGE_FAILED,
                            &with(scoped(&scope, &id), [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())]),
                        )?;
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
                        if exec(conn, rows::CHARGE_SUCCEEDED, &with(scoped(&scope, &id), set))? != 1
                            || exec(conn, order_sql, &with(order_key.clone(), paid))? != 1
                        {
                            return Err(Problem::internal("settlement lost under the single writer"));
                        }
                        exec(conn, rows::CLOSE_OTHER_PENDING, &with(order_key, [SqlParam::Text(id.clone())]))?;
                    }
                    _ => return Err(Problem::internal("settlement does not match the outcome")),
                }
                let charge = load_charge(conn, &scope, &id)?.ok_or_else(|| Problem::internal("charge vanished"))?;
                let order =
                    load_order(conn, &scope, &charge.order_id)?.ok_or_else(|| Problem::internal("order vanished"))?;
                let now = charge.time_paid.unwrap_or(charge.created);
                match settlement {
                    Settlement::Paid => {
                        emit(conn, &scope, ev::CHARGE_SUCCEEDED, objects::charge(&charge, None), now)?;
                        emit(conn, &scope, ev::ORDER_SUCCEEDED, order_object(conn, &scope, order.clone())?, now)?;
                    }
                    Settlement::PaidAfterClose => {
                        emit(conn, &scope, ev::ORDER_PAID_AFTER_CLOSE, order_object(conn, &scope, order.clone())?, now)?
                    }
                    _ => {}
                }
                Ok(SettledCharge::Settled { charge, order })
            })
            .await
    }

    async fn reserve_refund(&self, scope: &Scope, request: &RefundRequest) -> Result<Refund> {
        let (scope, req) = (scope.clone(), request.clone());
        self.db
            .write(move |conn| {
                let order = load_order(conn, &scope, &req.order_id)?
                    .ok_or_else(|| Problem::not_found("order", &req.order_id))?;
                let charge_id = match &req.charge_id {
                    Some(id) => id.clone(),
                    None => {
                        query_opt(conn, rows::SUCCEEDED_CHARGE_OF_ORDER, &scoped(&scope, &order.id), |r| r.text(0))?
                            .ok_or_else(|| {
                                plan_refund(&order, None, req.amount)
                                    .err()
                                    .unwrap_or_else(|| Problem::internal("paid order has no charge"))
                            })?
                    }
                };
                let charge = load_charge(conn, &scope, &charge_id)?
                    .filter(|c| c.order_id == order.id)
                    .ok_or_else(|| Problem::not_found("charge", &charge_id))?;
                let amount = plan_refund(&order, Some(&charge), req.amount)?;
                if exec(conn, rows::RESERVE_REFUND, &with(scoped(&scope, &order.id), [SqlParam::Int(amount.fen())]))?
                    != 1
                {
                    return Err(Problem::internal("refund reservation lost under the single writer"));
                }
                let refund = rows::pending_refund(&scope, &req, &charge.id, amount);
                exec(conn, &rows::insert_refund_sql(), &rows::refund_params(&refund))?;
                Ok(refund)
            })
            .await
    }

    async fn finish_refund(&self, scope: &Scope, refund_id: &str, outcome: &RefundOutcome) -> Result<Refund> {
        let (scope, id, outcome) = (scope.clone(), refund_id.to_string(), outcome.clone());
        self.db
            .write(move |conn| {
                let refund = load_refund(conn, &scope, &id)?.ok_or_else(|| Problem::not_found("refund", &id))?;
                let amount = SqlParam::Int(refund.amount.fen());
                match &outcome {
                    RefundOutcome::Succeeded { transaction_no, time_succeed } => {
                        let set = [SqlParam::OptText(transaction_no.clone()), SqlParam::Int(*time_succeed)];
                        if exec(conn, rows::REFUND_SUCCEEDED, &with(scoped(&scope, &id), set))? == 1 {
                            exec(
                                conn,
                                rows::ORDER_REFUND_COUNTED,
                                &with(scoped(&scope, &refund.order_id), [amount.clone()]),
                            )?;
                            exec(
                                conn,
                                rows::CHARGE_REFUND_COUNTED,
                                &with(scoped(&scope, &refund.charge_id), [amount.clone()]),
                            )?;
                            let wallet = with(
                                scoped(&scope, &refund.charge_id),
                                [amount, SqlParam::Text(id.clone()), SqlParam::Int(*time_succeed)],
                            );
                            exec(conn, rows::WALLET_REFUND_CREDIT, &wallet[..4])?;
                            exec(conn, rows::WALLET_REFUND_RECORD, &wallet)?;
                        }
                    }
                    RefundOutcome::Failed { code, message } => {
                        let set = [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())];
                        if exec(conn, rows::REFUND_FAILED, &with(scoped(&scope, &id), set))? == 1 {
                            exec(conn, rows::ORDER_REFUND_RELEASED, &with(scoped(&scope, &refund.order_id), [amount]))?;
                        }
                    }
                }
                let done = load_refund(conn, &scope, &id)?.ok_or_else(|| Problem::internal("refund vanished"))?;
                if done.status != refund.status {
                    let (kind, now) = match &outcome {
                        RefundOutcome::Succeeded { time_succeed, .. } => (ev::REFUND_SUCCEEDED, *time_succeed),
                        RefundOutcome::Failed { .. } => (ev::REFUND_FAILED, done.created),
                    };
                    emit(conn, &scope, kind, objects::refund(&done), now)?;
                }
                Ok(done)
            })
            .await
    }

    async fn refund(&self, scope: &Scope, id: &str) -> Result<Option<Refund>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db.read(move |conn| load_refund(conn, &scope, &id)).await
    }

    async fn refunds(
        &self,
        scope: &Scope,
        order_id: Option<&str>,
        charge_id: Option<&str>,
        limit: i64,
    ) -> Result<Page<Refund>> {
        let (sql, params) = rows::refunds_query(scope, order_id, charge_id, limit);
        self.db.read(move |conn| Ok(rows::into_page(query(conn, &sql, &params, rows::refund)?, limit, false))).await
    }

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<Event>> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db
            .read(move |conn| query_opt(conn, &outbox::select_event_sql(), &scoped(&scope, &id), outbox::event))
            .await
    }

    async fn list_events(
        &self,
        scope: &Scope,
        kind: Option<&str>,
        created: &CreatedRange,
        paging: &Paging,
    ) -> Result<Page<Event>> {
        let (scope, kind, created, paging) = (scope.clone(), kind.map(str::to_string), created.clone(), paging.clone());
        self.db
            .read(move |conn| {
                let (limit, cursor, before) = match &paging {
                    Paging::Cursor { limit, starting_after, ending_before } => {
                        let cursor = match starting_after.as_ref().or(ending_before.as_ref()) {
                            Some(id) => Some(
                                query_opt(conn, outbox::EVENT_SEQ, &scoped(&scope, id), |r| r.int(0))?.ok_or_else(
                                    || {
                                        Problem::invalid(
                                            if starting_after.is_some() { "starting_after" } else { "ending_before" },
                                            format!("No such event: {id}"),
                                        )
                                    },
                                )?,
                            ),
                            None => None,
                        };
                        (*limit, cursor, ending_before.is_some())
                    }
                    Paging::Page { per_page, .. } => (*per_page, None, false),
                };
                let (sql, params) = outbox::list_events_query(&scope, kind.as_deref(), &created, limit, cursor, before);
                Ok(rows::into_page(query(conn, &sql, &params, outbox::event)?, limit, before))
            })
            .await
    }

    async fn create_endpoint(&self, endpoint: &NewEndpoint) -> Result<()> {
        let e = endpoint.clone();
        self.db
            .write(move |conn| {
                let live = e.scope.mode.is_live();
                exec(
                    conn,
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
                )?;
                for t in e.types.iter().flatten() {
                    exec(
                        conn,
                        outbox::INSERT_ENDPOINT_TYPE,
                        &[SqlParam::Text(e.id.clone()), SqlParam::Text(t.clone())],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn endpoints(&self, scope: &Scope) -> Result<Vec<Endpoint>> {
        let scope = scope.clone();
        self.db
            .read(move |conn| {
                let params = [SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
                let found = query(conn, outbox::LIST_ENDPOINTS, &params, |r| {
                    Ok((r.text(0)?, r.int(1)?, r.boolean(2)?, r.text(3)?, r.boolean(4)?))
                })?;
                found
                    .into_iter()
                    .map(|(id, created, livemode, url, all)| {
                        let types = if all {
                            None
                        } else {
                            Some(query(conn, outbox::ENDPOINT_TYPES, &[SqlParam::Text(id.clone())], |r| r.text(0))?)
                        };
                        Ok(Endpoint { id, created, livemode, url, types })
                    })
                    .collect()
            })
            .await
    }

    async fn delete_endpoint(&self, scope: &Scope, id: &str) -> Result<bool> {
        let (scope, id) = (scope.clone(), id.to_string());
        self.db
            .write(move |conn| {
                if exec(conn, outbox::DELETE_ENDPOINT, &scoped(&scope, &id))? != 1 {
                    return Ok(false);
                }
                exec(conn, outbox::DROP_ENDPOINT_DELIVERIES, &[SqlParam::Text(id)])?;
                Ok(true)
            })
            .await
    }

    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>> {
        let claim = *claim;
        self.db
            .write(move |conn| {
                exec(conn, outbox::DROP_ORPHANED_DELIVERIES, &[SqlParam::Int(claim.now)])?;
                let row = |r: &dyn rows::RowLike| Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?));
                let claimed = query(conn, &outbox::claim_sql(""), &outbox::claim_params(&claim), row)?;
                let mut due = Vec::with_capacity(claimed.len());
                for (seq, event_id, endpoint_id, attempts) in claimed {
                    let endpoint = [SqlParam::Text(endpoint_id.clone())];
                    let target = query_opt(conn, outbox::DELIVERY_TARGET, &endpoint, |r| Ok((r.text(0)?, r.text(1)?)))?;
                    let event = [SqlParam::Text(event_id)];
                    let event = query_opt(conn, outbox::EVENT_BY_ID, &event, |r| Ok(outbox::event(r)))?;
                    // One unreadable row is failed with its reason; it never fails the claim.
                    match outbox::due_delivery((seq, endpoint_id, attempts), &claim, target, event) {
                        Ok(delivery) => due.push(delivery),
                        Err(why) => {
                            for (sql, params) in outbox::unsendable_statements(seq, claim.now, &why) {
                                exec(conn, sql, &params)?;
                            }
                        }
                    }
                }
                Ok(due)
            })
            .await
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<()> {
        let attempts = attempts.to_vec();
        self.db
            .write(move |conn| {
                for record in &attempts {
                    exec(conn, outbox::INSERT_ATTEMPT, &outbox::attempt_params(record.seq, &record.attempt))?;
                    if exec(conn, outbox::DELIVERY_DONE, &outbox::done_params(record))? == 0 {
                        exec(conn, outbox::DELIVERY_ATTEMPT_COUNTED, &outbox::counted_params(record))?;
                    }
                }
                Ok(())
            })
            .await
    }

    async fn late_payments_to_refund(&self, limit: i64) -> Result<Vec<(Scope, String)>> {
        self.db
            .read(move |conn| {
                query(conn, outbox::LATE_PAYMENTS_TO_REFUND, &[SqlParam::Int(limit)], |r| {
                    Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.text(2)?))
                })
            })
            .await
    }

    async fn deliveries(&self, scope: &Scope, event_id: &str) -> Result<Vec<DeliveryView>> {
        let (scope, id) = (scope.clone(), event_id.to_string());
        self.db
            .read(move |conn| {
                let found = query(conn, outbox::DELIVERIES_OF_EVENT, &scoped(&scope, &id), |r| {
                    Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?, r.int(4)?))
                })?;
                found
                    .into_iter()
                    .map(|(seq, endpoint_id, status, attempts, next_attempt_at)| {
                        let log = query(conn, outbox::ATTEMPTS_OF_DELIVERY, &[SqlParam::Int(seq)], outbox::attempt)?;
                        Ok(DeliveryView { endpoint_id, status, attempts, next_attempt_at, log })
                    })
                    .collect()
            })
            .await
    }

    async fn resend_event(&self, scope: &Scope, event_id: &str, now: i64) -> Result<u64> {
        let (scope, id) = (scope.clone(), event_id.to_string());
        self.db
            .write(move |conn| {
                let event = query_opt(conn, &outbox::select_event_sql(), &scoped(&scope, &id), outbox::event)?
                    .ok_or_else(|| Problem::not_found("event", &id))?;
                let params = [
                    SqlParam::Text(event.id),
                    SqlParam::Int(now),
                    SqlParam::Text(scope.app_id.clone()),
                    SqlParam::Bool(scope.mode.is_live()),
                    SqlParam::Text(event.kind),
                ];
                Ok(exec(conn, outbox::RESEND, &params)? as u64)
            })
            .await
    }

    async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8],
        now: i64,
    ) -> Result<IdempotencyBegin> {
        let (scope, key, fingerprint) = (scope.clone(), key.to_string(), fingerprint.to_vec());
        self.db
            .write(move |conn| {
                let live = scope.mode.is_live();
                let existing: Option<(Vec<u8>, i64, Option<i64>, Option<Vec<u8>>)> = conn
                    .query_row(
                        "SELECT fingerprint, created, status, body FROM idempotency_keys WHERE app_id = ?1 AND livemode = ?2 AND key = ?3",
                        rusqlite::params![scope.app_id, live, key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .map(Some)
                    .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(sql_err(e)) })?;
                let decision = existing.map(|(fp, created, status, body)| paygate_store::idempotency_decision(&fp, created, status, body, &fingerprint, now));
                match decision {
                    Some(Some(d)) => Ok(d),
                    // Absent, expired, or an abandoned start: (re)take the key.
                    _ => {
                        conn.execute(
                            "INSERT INTO idempotency_keys (app_id, livemode, key, fingerprint, created, status, body) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL) \
                             ON CONFLICT (app_id, livemode, key) DO UPDATE SET fingerprint = excluded.fingerprint, created = excluded.created, status = NULL, body = NULL",
                            rusqlite::params![scope.app_id, live, key, fingerprint, now],
                        )
                        .map_err(sql_err)?;
                        Ok(IdempotencyBegin::Started)
                    }
                }
            })
            .await
    }

    async fn idempotency_complete(&self, scope: &Scope, key: &str, status: u16, body: &[u8]) -> Result<()> {
        let (scope, key, body) = (scope.clone(), key.to_string(), body.to_vec());
        self.db
            .write(move |conn| {
                conn.execute(
                    "UPDATE idempotency_keys SET status = ?4, body = ?5 WHERE app_id = ?1 AND livemode = ?2 AND key = ?3",
                    rusqlite::params![scope.app_id, scope.mode.is_live(), key, status as i64, body],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }

    async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()> {
        let (scope, key) = (scope.clone(), key.to_string());
        self.db
            .write(move |conn| {
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE app_id = ?1 AND livemode = ?2 AND key = ?3 AND status IS NULL",
                    rusqlite::params![scope.app_id, scope.mode.is_live(), key],
                )
                .map_err(sql_err)?;
                Ok(())
            })
            .await
    }
}
