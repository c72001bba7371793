//! [`Store`] for every [`Backend`]: each method's transaction, written once. A mutating method
//! first locks the order row (`FOR UPDATE` on PostgreSQL, the single writer on SQLite) — the one
//! lock order, order then its charges/refunds, so no deadlocks — and then applies conditional
//! updates that re-check their own preconditions, so the database decides, not a read before.

use crate::outbox::{self, OutboxStats};
use crate::rows::{self, scoped, with, SqlParam};
use crate::sql::{self, job, vanished, Backend, Tx};
use crate::*;
use paygate_domain::events as ev;
use paygate_domain::objects::{self, OrderView};
use paygate_domain::{plan_refund, plan_settlement, SettleDecision};
use serde_json::Value;

/// Records an event and queues its deliveries in the current transaction (the outbox).
pub(crate) async fn emit(tx: &mut dyn Tx, scope: &Scope, kind: &str, object: Value, now: i64) -> Result<()> {
    let event = outbox::new_event(scope, kind, object, now)?;
    for (sql, params) in outbox::event_statements(&event) {
        tx.exec(sql, &params).await?;
    }
    Ok(())
}

/// The order as events carry it: with its charges.
pub(crate) async fn order_object(tx: &mut dyn Tx, scope: &Scope, order: Order) -> Result<Value> {
    let charges = tx.query(rows::charges_of_order_sql(), &scoped(scope, &order.id), rows::charge).await?;
    Ok(objects::order(&OrderView { order, charges }))
}

/// `lock`: hold the row until the transaction ends (the first lock every order transaction takes).
pub(crate) async fn load_order(tx: &mut dyn Tx, scope: &Scope, id: &str, lock: bool) -> Result<Option<Order>> {
    let sql = rows::select_order_sql(if lock { tx.for_update() } else { "" });
    tx.query_opt(&sql, &scoped(scope, id), rows::order).await
}

pub(crate) async fn load_charge(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<Option<Charge>> {
    tx.query_opt(&rows::select_charge_sql(""), &scoped(scope, id), rows::charge).await
}

async fn load_refund(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<Option<Refund>> {
    tx.query_opt(&rows::select_refund_sql(""), &scoped(scope, id), rows::refund).await
}

pub(crate) async fn pending_charges(tx: &mut dyn Tx, scope: &Scope, order_id: &str) -> Result<Vec<Charge>> {
    let sql = rows::pending_charges_sql(tx.for_update());
    tx.query(&sql, &scoped(scope, order_id), rows::charge).await
}

/// [`Store::settle_charge`]'s transaction, with the charge as read under the order's lock (what an audited
/// settlement shows as `before`).
pub(crate) async fn settle_charge_tx(
    tx: &mut dyn Tx,
    scope: &Scope,
    charge_id: &str,
    outcome: &ChargeOutcome,
) -> Result<(SettledCharge, Charge)> {
    let charge = load_charge(tx, scope, charge_id).await?;
    let charge = charge.ok_or_else(|| Problem::not_found("charge", charge_id))?;
    // Lock the order first, as cancel and refunds do, then read the charge under it.
    let order = load_order(tx, scope, &charge.order_id, true).await?;
    let order = order.ok_or_else(|| Problem::internal("charge without order"))?;
    let locked = load_charge(tx, scope, charge_id).await?.ok_or_else(|| vanished("charge"))?;
    let charge = &locked;
    let settlement = plan_settlement(&order, charge, matches!(outcome, ChargeOutcome::Succeeded { .. }))?;
    let order_key = scoped(scope, &order.id);
    match (&settlement, outcome) {
        (SettleDecision::NotPending, _) => return Ok((SettledCharge::NotPending(locked.clone()), locked)),
        (SettleDecision::Failed, ChargeOutcome::Failed { code, message }) => {
            let set = [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())];
            tx.exec(rows::CHARGE_FAILED, &with(scoped(scope, charge_id), set)).await?;
        }
        (
            SettleDecision::Paid | SettleDecision::PaidAfterClose,
            ChargeOutcome::Succeeded { transaction_no, time_paid, notification, settlement: money },
        ) => {
            let set = [
                SqlParam::Text(transaction_no.clone()),
                SqlParam::Int(*time_paid),
                SqlParam::OptText(notification.as_ref().map(|n| n.to_string())),
                SqlParam::OptText(money.as_ref().map(|n| n.to_string())),
            ];
            let paid = [SqlParam::Int(charge.amount.fen()), SqlParam::Int(*time_paid)];
            let order_sql = if settlement == SettleDecision::Paid { rows::ORDER_PAID } else { rows::ORDER_PAID_LATE };
            if tx.exec(rows::CHARGE_SUCCEEDED, &with(scoped(scope, charge_id), set)).await? != 1
                || tx.exec(order_sql, &with(order_key.clone(), paid)).await? != 1
            {
                return Err(Problem::internal("settlement lost under the order lock"));
            }
            let other = [SqlParam::Text(charge_id.to_string())];
            tx.exec(rows::CLOSE_OTHER_PENDING, &with(order_key, other)).await?;
        }
        _ => return Err(Problem::internal("settlement does not match the outcome")),
    }
    let charge = load_charge(tx, scope, charge_id).await?.ok_or_else(|| vanished("charge"))?;
    let order = load_order(tx, scope, &charge.order_id, false).await?.ok_or_else(|| vanished("order"))?;
    let now = charge.time_paid.unwrap_or(charge.created);
    if settlement == SettleDecision::Paid {
        // As Ping++ sends it: with its (still empty) refund list, not null.
        let no_refunds = Page { data: Vec::new(), has_more: false };
        emit(tx, scope, ev::CHARGE_SUCCEEDED, objects::charge(&charge, Some(&no_refunds)), now).await?;
    }
    let kind = match settlement {
        SettleDecision::Paid => Some(ev::ORDER_SUCCEEDED),
        SettleDecision::PaidAfterClose => Some(ev::ORDER_PAID_AFTER_CLOSE),
        _ => None,
    };
    if let Some(kind) = kind {
        let object = order_object(tx, scope, order.clone()).await?;
        emit(tx, scope, kind, object, now).await?;
    }
    Ok((SettledCharge::Settled { charge, order }, locked))
}

/// A new order, or the duplicate naming the order that holds its merchant_order_no: the only
/// conflict that is a duplicate (any other failure, such as a taken id, is an error).
pub(crate) async fn insert_order_row(tx: &mut dyn Tx, order: &Order) -> Result<()> {
    if tx.exec(rows::insert_new_order_sql(), &rows::order_params(order)).await? == 1 {
        return Ok(());
    }
    let taken = rows::merchant_no_params(order);
    let existing = tx.query_opt(rows::ORDER_BY_MERCHANT_NO, &taken, |r| r.text(0)).await?;
    let existing = existing.ok_or_else(|| vanished("order holding the merchant_order_no"))?;
    Err(rows::duplicate_order(&order.merchant_order_no, &existing))
}

pub(crate) async fn order_view_row(tx: &mut dyn Tx, scope: &Scope, id: &str) -> Result<Option<OrderView>> {
    let rows = tx.query(rows::order_view_sql(), &scoped(scope, id), rows::order_and_charge).await?;
    Ok(rows::into_order_view(rows))
}

fn scope_row(r: &dyn rows::RowLike) -> Result<(Scope, String)> {
    Ok((Scope { app_id: r.text(0)?, mode: Mode::from_live(r.boolean(1)?) }, r.text(2)?))
}

/// The `seq` of the order or event a cursor names, or the error naming the cursor parameter.
pub(crate) async fn cursor_seq(
    tx: &mut dyn Tx,
    sql: &str,
    scope: &Scope,
    paging: &Paging,
    what: &str,
) -> Result<Option<i64>> {
    cursor_row(tx, sql, scope, paging, what, |r| r.int(0)).await
}

/// The row `sql` reads for the object a cursor names (`$1..$3` = scope and id), mapped, or the
/// error naming the cursor parameter.
pub(crate) async fn cursor_row<T: Send>(
    tx: &mut dyn Tx,
    sql: &str,
    scope: &Scope,
    paging: &Paging,
    what: &str,
    map: impl Fn(&dyn rows::RowLike) -> Result<T> + Sync,
) -> Result<Option<T>> {
    let Paging::Cursor { starting_after, ending_before, .. } = paging else { return Ok(None) };
    let Some(id) = starting_after.as_ref().or(ending_before.as_ref()) else { return Ok(None) };
    let param = if starting_after.is_some() { "starting_after" } else { "ending_before" };
    let row = tx.query_opt(sql, &scoped(scope, id), map).await?;
    row.map(Some).ok_or_else(|| Problem::invalid(param, format!("No such {what}: {id}")))
}

const INSERT_APP: &str =
    "INSERT INTO apps (id, name, created, public_key_pem, late_payment) VALUES ($1, $2, $3, $4, $5)";
const INSERT_KEY: &str = "INSERT INTO api_keys (key_hash, app_id, livemode, hint) VALUES ($1, $2, $3, $4)";
/// Keys still valid at `$3` expire then; a key that expires earlier keeps its expiry.
const EXPIRE_KEYS: &str = "UPDATE api_keys SET expires_at = $3 \
    WHERE app_id = $1 AND livemode = $2 AND (expires_at IS NULL OR expires_at > $3)";
const IDEMPOTENCY_TAKE: &str = "INSERT INTO idempotency_keys (app_id, livemode, key, fingerprint, created) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";
const IDEMPOTENCY_RETAKE: &str = "UPDATE idempotency_keys SET fingerprint = $4, created = $5, status = NULL, \
    body = NULL WHERE app_id = $1 AND livemode = $2 AND key = $3";

/// Reserves the refund under the order row lock (the body of `Store::reserve_refund`, also run by the console's
/// audited refund inside its own transaction).
pub(crate) async fn reserve_refund_tx(tx: &mut dyn Tx, scope: &Scope, req: &RefundRequest) -> Result<Refund> {
    let order = load_order(tx, scope, &req.order_id, true).await?;
    let order = order.ok_or_else(|| Problem::not_found("order", &req.order_id))?;
    let charge_id = match &req.charge_id {
        Some(id) => id.clone(),
        None => tx
            .query_opt(rows::SUCCEEDED_CHARGE_OF_ORDER, &scoped(scope, &order.id), |r| r.text(0))
            .await?
            .ok_or_else(|| {
                plan_refund(&order, None, req.amount)
                    .err()
                    .unwrap_or_else(|| Problem::internal("paid order has no charge"))
            })?,
    };
    let charge = load_charge(tx, scope, &charge_id).await?;
    let charge = charge.filter(|c| c.order_id == order.id).ok_or_else(|| Problem::not_found("charge", &charge_id))?;
    let amount = plan_refund(&order, Some(&charge), req.amount)?;
    let reserve = with(scoped(scope, &order.id), [SqlParam::Int(amount.fen())]);
    if tx.exec(rows::RESERVE_REFUND, &reserve).await? != 1 {
        return Err(Problem::internal("refund reservation lost under the order lock"));
    }
    let refund = rows::pending_refund(scope, req, &charge.id, amount);
    tx.exec(rows::insert_refund_sql(), &rows::refund_params(&refund)).await?;
    Ok(refund)
}

async fn insert_key(tx: &mut dyn Tx, app_id: &str, k: &ApiKeyRecord) -> Result<()> {
    let params = [
        SqlParam::Bytes(k.key_hash.clone()),
        SqlParam::Text(app_id.to_string()),
        SqlParam::Bool(k.mode.is_live()),
        SqlParam::Text(k.hint.clone()),
    ];
    tx.exec(INSERT_KEY, &params).await.map(|_| ())
}

fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[async_trait]
impl<B: Backend> Store for B {
    fn backend(&self) -> &'static str {
        B::NAME
    }

    async fn migrate(&self) -> Result<()> {
        job!(self, Write, [], |tx| { sql::migrate(tx, B::MIGRATIONS, B::MIGRATION_LOCK, now_unix()).await })
    }

    async fn ready(&self) -> Result<()> {
        job!(self, Read, [], |tx| { tx.query("SELECT 1", &[], |_| Ok(())).await.map(|_| ()) })
    }

    async fn setting(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>> {
        job!(self, Autocommit, [name, fresh], |tx| {
            let insert = [SqlParam::Text(name.clone()), SqlParam::Bytes(fresh)];
            tx.exec("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &insert)
                .await?;
            let name = [SqlParam::Text(name)];
            let stored = tx.query_opt("SELECT value FROM settings WHERE name = $1", &name, |r| r.bytes(0)).await?;
            stored.ok_or_else(|| vanished("setting"))
        })
    }

    async fn create_app(
        &self,
        app: &App,
        keys: &[ApiKeyRecord],
        hserve_clients: &[(String, Mode)],
        credentials: &[FaceCredential],
    ) -> Result<()> {
        job!(self, Write, [app, keys, hserve_clients, credentials], |tx| {
            let row = [
                SqlParam::Text(app.id.clone()),
                SqlParam::Text(app.name.clone()),
                SqlParam::Int(app.created),
                SqlParam::OptText(app.public_key_pem.clone()),
                SqlParam::Text(app.late_payment.as_str().into()),
            ];
            tx.exec(INSERT_APP, &row).await?;
            for k in &keys {
                insert_key(tx, &app.id, k).await?;
            }
            for (client_id, mode) in hserve_clients {
                let client =
                    [SqlParam::Text(client_id), SqlParam::Text(app.id.clone()), SqlParam::Bool(mode.is_live())];
                tx.exec(hserve::INSERT_CLIENT, &client).await?;
            }
            for c in &credentials {
                tx.exec(pos::INSERT_CREDENTIAL, &pos::credential_params(c)).await?;
            }
            Ok(())
        })
    }

    async fn count_apps(&self) -> Result<i64> {
        job!(self, Read, [], |tx| {
            Ok(tx.query_opt("SELECT COUNT(*) FROM apps", &[], |r| r.int(0)).await?.unwrap_or(0))
        })
    }

    async fn list_apps(&self) -> Result<Vec<App>> {
        let sql = format!("SELECT {} FROM apps a ORDER BY a.created, a.id", sql::APP_COLUMNS);
        job!(self, Read, [], |tx| { tx.query(&sql, &[], sql::app).await })
    }

    async fn find_api_key(&self, key_hash: &[u8], now: i64) -> Result<Option<KeyOwner>> {
        let sql = format!(
            "SELECT {}, k.livemode, k.expires_at FROM api_keys k JOIN apps a ON a.id = k.app_id \
             WHERE k.key_hash = $1 AND (k.expires_at IS NULL OR k.expires_at > $2)",
            sql::APP_COLUMNS
        );
        job!(self, Read, [key_hash], |tx| {
            let params = [SqlParam::Bytes(key_hash), SqlParam::Int(now)];
            tx.query_opt(&sql, &params, |r| {
                Ok(KeyOwner { app: sql::app(r)?, mode: Mode::from_live(r.boolean(6)?), expires_at: r.opt_int(7)? })
            })
            .await
        })
    }

    async fn roll_api_key(
        &self,
        app_id: &str,
        key: &ApiKeyRecord,
        old_keys_expire: i64,
        audit: Option<&console::AuditEntry>,
    ) -> Result<bool> {
        let audit = audit.cloned();
        job!(self, Write, [app_id, key], |tx| {
            let app = [SqlParam::Text(app_id.clone())];
            if tx.query_opt("SELECT id FROM apps WHERE id = $1", &app, |r| r.text(0)).await?.is_none() {
                return Ok(false);
            }
            let expire =
                [SqlParam::Text(app_id.clone()), SqlParam::Bool(key.mode.is_live()), SqlParam::Int(old_keys_expire)];
            tx.exec(EXPIRE_KEYS, &expire).await?;
            insert_key(tx, &app_id, &key).await?;
            if let Some(audit) = &audit {
                console::insert_audit(tx, audit).await?;
            }
            Ok(true)
        })
    }

    async fn set_app_public_key(
        &self,
        app_id: &str,
        pem: Option<&str>,
        audit: Option<&console::AuditEntry>,
    ) -> Result<bool> {
        let params = [SqlParam::OptText(pem.map(str::to_string)), SqlParam::Text(app_id.to_string())];
        let Some(mut audit) = audit.cloned() else {
            return job!(self, Autocommit, [], |tx| {
                Ok(tx.exec("UPDATE apps SET public_key_pem = $1 WHERE id = $2", &params).await? == 1)
            });
        };
        let app = [SqlParam::Text(app_id.to_string())];
        job!(self, Write, [], |tx| {
            // The row lock makes `before` the key this UPDATE replaces, even with another change racing it.
            let sql = format!("SELECT public_key_pem FROM apps WHERE id = $1 {}", tx.for_update());
            let Some(before) = tx.query_opt(&sql, &app, |r| r.opt_text(0)).await? else {
                return Ok(false);
            };
            if tx.exec("UPDATE apps SET public_key_pem = $1 WHERE id = $2", &params).await? != 1 {
                return Err(vanished("app"));
            }
            audit.before = Some(serde_json::json!({ "public_key_pem": before }));
            console::insert_audit(tx, &audit).await?;
            Ok(true)
        })
    }

    async fn set_app_late_payment(&self, app_id: &str, policy: LatePayment) -> Result<bool> {
        let params = [SqlParam::Text(policy.as_str().into()), SqlParam::Text(app_id.to_string())];
        job!(self, Autocommit, [], |tx| {
            Ok(tx.exec("UPDATE apps SET late_payment = $1 WHERE id = $2", &params).await? == 1)
        })
    }

    async fn app(&self, app_id: &str) -> Result<Option<App>> {
        let sql = format!("SELECT {} FROM apps a WHERE a.id = $1", sql::APP_COLUMNS);
        job!(self, Read, [app_id], |tx| { tx.query_opt(&sql, &[SqlParam::Text(app_id)], sql::app).await })
    }

    /// One autocommitted statement; on PostgreSQL concurrent creates share it (see `batches.rs`).
    async fn insert_order(&self, order: &Order) -> Result<()> {
        if let Some(batches) = self.batches() {
            let here = sql::here();
            return batches.insert_order(order.clone()).await.map_err(|p| p.raised_at(here));
        }
        job!(self, Autocommit, [order], |tx| { insert_order_row(tx, &order).await })
    }

    async fn order(&self, scope: &Scope, id: &str) -> Result<Option<Order>> {
        job!(self, Read, [scope, id], |tx| { load_order(tx, &scope, &id, false).await })
    }

    /// On PostgreSQL concurrent retrieves share one query (see `batches.rs`).
    async fn order_view(&self, scope: &Scope, id: &str) -> Result<Option<OrderView>> {
        if let Some(batches) = self.batches() {
            let here = sql::here();
            return batches.order_view(scope.clone(), id.to_string()).await.map_err(|p| p.raised_at(here));
        }
        job!(self, Read, [scope, id], |tx| { order_view_row(tx, &scope, &id).await })
    }

    async fn list_orders(&self, scope: &Scope, filter: &OrderFilter, paging: &Paging) -> Result<Page<Order>> {
        job!(self, Read, [scope, filter, paging], |tx| {
            let at = |r: &dyn rows::RowLike| Ok((r.int(0)?, r.int(1)?));
            let cursor = cursor_row(tx, rows::ORDER_CURSOR, &scope, &paging, "order", at).await?;
            let (sql, params, reversed) = rows::list_orders_query(&scope, &filter, &paging, cursor);
            Ok(rows::into_page(tx.query(&sql, &params, rows::order).await?, paging.size(), reversed))
        })
    }

    async fn cancel_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<CancelOutcome>> {
        job!(self, Write, [scope, id], |tx| {
            let Some(order) = load_order(tx, &scope, &id, true).await? else { return Ok(None) };
            let closing = pending_charges(tx, &scope, &id).await?;
            // The conditional update decides (status = 'created'), not the read above.
            if tx.exec(rows::CANCEL_ORDER, &scoped(&scope, &id)).await? != 1 {
                return Ok(Some(CancelOutcome::NotCancelable(order)));
            }
            tx.exec(rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &id)).await?;
            let order = load_order(tx, &scope, &id, false).await?.ok_or_else(|| vanished("canceled order"))?;
            let object = order_object(tx, &scope, order.clone()).await?;
            emit(tx, &scope, ev::ORDER_CANCELED, object, now).await?;
            Ok(Some(CancelOutcome::Canceled { order, closed_charges: closing }))
        })
    }

    async fn expired_orders(&self, now: i64, limit: i64) -> Result<Vec<(Scope, String)>> {
        job!(self, Read, [], |tx| {
            tx.query(outbox::EXPIRED_ORDERS, &[SqlParam::Int(now), SqlParam::Int(limit)], scope_row).await
        })
    }

    async fn close_expired_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<(Order, Vec<Charge>)>> {
        job!(self, Write, [scope, id], |tx| {
            if load_order(tx, &scope, &id, true).await?.is_none() {
                return Ok(None);
            }
            let closing = pending_charges(tx, &scope, &id).await?;
            // Paid, canceled or extended meanwhile: nothing to close.
            if tx.exec(outbox::CLOSE_ORDER, &with(scoped(&scope, &id), [SqlParam::Int(now)])).await? != 1 {
                return Ok(None);
            }
            tx.exec(rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &id)).await?;
            let order = load_order(tx, &scope, &id, false).await?.ok_or_else(|| vanished("closed order"))?;
            let object = order_object(tx, &scope, order.clone()).await?;
            emit(tx, &scope, ev::ORDER_CLOSED, object, now).await?;
            Ok(Some((order, closing)))
        })
    }

    async fn open_charge(&self, scope: &Scope, charge: &Charge) -> Result<OpenedCharge> {
        job!(self, Write, [scope, charge], |tx| {
            let order = load_order(tx, &scope, &charge.order_id, true)
                .await?
                .ok_or_else(|| Problem::not_found("order", &charge.order_id))?;
            paygate_domain::check_payable(&order, charge.created)?;
            let superseded = pending_charges(tx, &scope, &order.id).await?;
            tx.exec(rows::CLOSE_PENDING_CHARGES, &scoped(&scope, &order.id)).await?;
            tx.exec(rows::insert_charge_sql(), &rows::charge_params(&charge)).await?;
            Ok(OpenedCharge { charge, superseded })
        })
    }

    async fn charge(&self, scope: &Scope, id: &str) -> Result<Option<Charge>> {
        job!(self, Read, [scope, id], |tx| { load_charge(tx, &scope, &id).await })
    }

    async fn charges_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<Charge>> {
        job!(self, Read, [scope, order_id], |tx| {
            tx.query(rows::charges_of_order_sql(), &scoped(&scope, &order_id), rows::charge).await
        })
    }

    async fn charges_of_orders(&self, scope: &Scope, order_ids: &[String]) -> Result<Vec<Charge>> {
        if order_ids.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, params) = rows::charges_of_orders_query(scope, order_ids);
        job!(self, Read, [sql, params], |tx| { tx.query(&sql, &params, rows::charge).await })
    }

    async fn find_charge(&self, scope: &Scope, reference: &str) -> Result<Option<Charge>> {
        job!(self, Read, [scope, reference], |tx| {
            tx.query_opt(rows::find_charge_sql(), &scoped(&scope, &reference), rows::charge).await
        })
    }

    async fn find_test_charge(&self, reference: &str) -> Result<Option<Charge>> {
        job!(self, Read, [reference], |tx| {
            tx.query_opt(rows::find_test_charge_sql(), &[SqlParam::Text(reference)], rows::charge).await
        })
    }

    async fn settle_charge(&self, scope: &Scope, charge_id: &str, outcome: &ChargeOutcome) -> Result<SettledCharge> {
        job!(self, Write, [scope, charge_id, outcome], |tx| {
            Ok(settle_charge_tx(tx, &scope, &charge_id, &outcome).await?.0)
        })
    }

    async fn reserve_refund(&self, scope: &Scope, request: &RefundRequest) -> Result<Refund> {
        job!(self, Write, [scope, request], |tx| { reserve_refund_tx(tx, &scope, &request).await })
    }

    async fn finish_refund(&self, scope: &Scope, refund_id: &str, outcome: &RefundOutcome) -> Result<Refund> {
        job!(self, Write, [scope, refund_id, outcome], |tx| {
            let id = refund_id;
            let refund = load_refund(tx, &scope, &id).await?.ok_or_else(|| Problem::not_found("refund", &id))?;
            load_order(tx, &scope, &refund.order_id, true).await?;
            let amount = SqlParam::Int(refund.amount.fen());
            // Whether this transaction moved the refund: `refund` was read before the order's row lock, so a
            // concurrent finish (a notification racing the refund call) may have moved it meanwhile.
            let mut moved = false;
            match &outcome {
                RefundOutcome::Succeeded { transaction_no, time_succeed } => {
                    let set = [SqlParam::OptText(transaction_no.clone()), SqlParam::Int(*time_succeed)];
                    if tx.exec(rows::REFUND_SUCCEEDED, &with(scoped(&scope, &id), set)).await? == 1 {
                        moved = true;
                        let counted = with(scoped(&scope, &refund.order_id), [amount.clone()]);
                        tx.exec(rows::ORDER_REFUND_COUNTED, &counted).await?;
                        let counted = with(scoped(&scope, &refund.charge_id), [amount.clone()]);
                        tx.exec(rows::CHARGE_REFUND_COUNTED, &counted).await?;
                        let wallet = with(
                            scoped(&scope, &refund.charge_id),
                            [amount, SqlParam::Text(id.clone()), SqlParam::Int(*time_succeed)],
                        );
                        tx.exec(rows::WALLET_REFUND_CREDIT, &wallet[..4]).await?;
                        tx.exec(rows::WALLET_REFUND_RECORD, &wallet).await?;
                    }
                }
                RefundOutcome::Failed { code, message } => {
                    let set = [SqlParam::Text(code.clone()), SqlParam::Text(message.clone())];
                    if tx.exec(rows::REFUND_FAILED, &with(scoped(&scope, &id), set)).await? == 1 {
                        moved = true;
                        let released = with(scoped(&scope, &refund.order_id), [amount]);
                        tx.exec(rows::ORDER_REFUND_RELEASED, &released).await?;
                    }
                }
            }
            let done = load_refund(tx, &scope, &id).await?.ok_or_else(|| vanished("refund"))?;
            if moved && done.status != refund.status {
                let (kind, now) = match &outcome {
                    RefundOutcome::Succeeded { time_succeed, .. } => (ev::REFUND_SUCCEEDED, *time_succeed),
                    RefundOutcome::Failed { .. } => (ev::REFUND_FAILED, done.created),
                };
                emit(tx, &scope, kind, objects::refund(&done), now).await?;
            }
            Ok(done)
        })
    }

    async fn refund(&self, scope: &Scope, id: &str) -> Result<Option<Refund>> {
        job!(self, Read, [scope, id], |tx| { load_refund(tx, &scope, &id).await })
    }

    async fn refunds(
        &self,
        scope: &Scope,
        order_id: Option<&str>,
        charge_id: Option<&str>,
        limit: i64,
    ) -> Result<Page<Refund>> {
        let (sql, params) = rows::refunds_query(scope, order_id, charge_id, limit);
        job!(self, Read, [], |tx| { Ok(rows::into_page(tx.query(&sql, &params, rows::refund).await?, limit, false)) })
    }

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<Event>> {
        job!(self, Read, [scope, id], |tx| {
            tx.query_opt(&outbox::select_event_sql(), &scoped(&scope, &id), outbox::event).await
        })
    }

    async fn list_events(
        &self,
        scope: &Scope,
        kind: Option<&str>,
        created: &CreatedRange,
        paging: &Paging,
    ) -> Result<Page<Event>> {
        let kind = kind.map(str::to_string);
        job!(self, Read, [scope, created, paging], |tx| {
            let cursor = cursor_seq(tx, outbox::EVENT_SEQ, &scope, &paging, "event").await?;
            let (limit, before) = match &paging {
                Paging::Cursor { limit, ending_before, .. } => (*limit, ending_before.is_some()),
                Paging::Page { per_page, .. } => (*per_page, false),
            };
            let (sql, params) = outbox::list_events_query(&scope, kind.as_deref(), &created, limit, cursor, before);
            Ok(rows::into_page(tx.query(&sql, &params, outbox::event).await?, limit, before))
        })
    }

    async fn create_endpoint(&self, endpoint: &NewEndpoint, audit: Option<&console::AuditEntry>) -> Result<()> {
        let audit = audit.cloned();
        job!(self, Write, [endpoint, audit], |tx| { outbox::endpoints::create(tx, &endpoint, audit).await })
    }

    async fn endpoints(&self, scope: &Scope) -> Result<Vec<Endpoint>> {
        job!(self, Read, [scope], |tx| {
            let params = [SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
            let found = tx.query(outbox::LIST_ENDPOINTS, &params, outbox::endpoints::endpoint_row).await?;
            outbox::endpoints::with_types(tx, found).await
        })
    }

    async fn delete_endpoint(&self, scope: &Scope, id: &str, audit: Option<&console::AuditEntry>) -> Result<bool> {
        let audit = audit.cloned();
        job!(self, Write, [scope, id, audit], |tx| { outbox::endpoints::delete(tx, &scope, &id, audit).await })
    }

    async fn set_endpoint_disabled(
        &self,
        scope: &Scope,
        id: &str,
        disabled: bool,
        audit: Option<&console::AuditEntry>,
    ) -> Result<Option<Endpoint>> {
        let audit = audit.cloned();
        job!(self, Write, [scope, id, audit], |tx| {
            outbox::endpoints::set_disabled(tx, &scope, &id, disabled, audit).await
        })
    }

    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>> {
        let claim = *claim;
        job!(self, Write, [], |tx| { outbox::claim::claim(tx, &claim).await })
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<()> {
        job!(self, Write, [attempts], |tx| {
            for record in &attempts {
                let attempt = outbox::attempt_params(record.seq, record.event_created, &record.attempt);
                tx.exec(outbox::INSERT_ATTEMPT, &attempt).await?;
                if tx.exec(outbox::DELIVERY_DONE, &outbox::done_params(record)).await? == 0 {
                    tx.exec(outbox::DELIVERY_ATTEMPT_COUNTED, &outbox::counted_params(record)).await?;
                }
            }
            Ok(())
        })
    }

    async fn late_payments_to_refund(&self, limit: i64) -> Result<Vec<(Scope, String)>> {
        job!(self, Read, [], |tx| {
            tx.query(outbox::LATE_PAYMENTS_TO_REFUND, &[SqlParam::Int(limit)], scope_row).await
        })
    }

    async fn deliveries(&self, scope: &Scope, event_id: &str) -> Result<Vec<DeliveryView>> {
        job!(self, Read, [scope, event_id], |tx| {
            let row = |r: &dyn rows::RowLike| Ok((r.int(0)?, r.text(1)?, r.text(2)?, r.int(3)?, r.int(4)?));
            let found = tx.query(outbox::DELIVERIES_OF_EVENT, &scoped(&scope, &event_id), row).await?;
            let mut out = Vec::with_capacity(found.len());
            for (seq, endpoint_id, status, attempts, next_attempt_at) in found {
                let log = tx.query(outbox::ATTEMPTS_OF_DELIVERY, &[SqlParam::Int(seq)], outbox::attempt).await?;
                out.push(DeliveryView { endpoint_id, status, attempts, next_attempt_at, log });
            }
            Ok(out)
        })
    }

    async fn resend_event(
        &self,
        scope: &Scope,
        event_id: &str,
        now: i64,
        audit: Option<&console::AuditEntry>,
    ) -> Result<u64> {
        let audit = audit.cloned();
        job!(self, Write, [scope, event_id, audit], |tx| {
            outbox::endpoints::resend(tx, &scope, &event_id, now, audit).await
        })
    }

    async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8],
        now: i64,
    ) -> Result<IdempotencyBegin> {
        job!(self, Write, [scope, key, fingerprint], |tx| {
            // Take the key if it is free; otherwise lock the existing row and judge it.
            let params = with(scoped(&scope, &key), [SqlParam::Bytes(fingerprint.clone()), SqlParam::Int(now)]);
            if tx.exec(IDEMPOTENCY_TAKE, &params).await? == 1 {
                return Ok(IdempotencyBegin::Started);
            }
            let sql = format!(
                "SELECT fingerprint, created, status, body FROM idempotency_keys \
                 WHERE app_id = $1 AND livemode = $2 AND key = $3 {}",
                tx.for_update()
            );
            let row = |r: &dyn rows::RowLike| Ok((r.bytes(0)?, r.int(1)?, r.opt_int(2)?, r.opt_bytes(3)?));
            let (fp, created, status, body) =
                tx.query_opt(&sql, &scoped(&scope, &key), row).await?.ok_or_else(|| vanished("idempotency key"))?;
            match idempotency_decision(&fp, created, status, body, &fingerprint, now) {
                Some(decision) => Ok(decision),
                // Expired, or an abandoned start: take it over.
                None => {
                    tx.exec(IDEMPOTENCY_RETAKE, &params).await?;
                    Ok(IdempotencyBegin::Started)
                }
            }
        })
    }

    async fn idempotency_complete(&self, scope: &Scope, key: &str, status: u16, body: &[u8]) -> Result<()> {
        let params = with(scoped(scope, key), [SqlParam::Int(status as i64), SqlParam::Bytes(body.to_vec())]);
        job!(self, Autocommit, [], |tx| {
            let sql =
                "UPDATE idempotency_keys SET status = $4, body = $5 WHERE app_id = $1 AND livemode = $2 AND key = $3";
            tx.exec(sql, &params).await.map(|_| ())
        })
    }

    async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()> {
        let params = scoped(scope, key);
        job!(self, Autocommit, [], |tx| {
            let sql =
                "DELETE FROM idempotency_keys WHERE app_id = $1 AND livemode = $2 AND key = $3 AND status IS NULL";
            tx.exec(sql, &params).await.map(|_| ())
        })
    }

    async fn pool_stats(&self) -> Result<PoolStats> {
        Ok(self.connection_stats())
    }

    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats> {
        job!(self, Read, [], |tx| {
            let stats = tx.query_opt(outbox::OUTBOX_STATS, &[], |r| Ok((r.int(0)?, r.opt_int(1)?))).await?;
            let (pending, oldest) = stats.unwrap_or((0, None));
            Ok(OutboxStats { pending, oldest_pending_age_seconds: oldest.map_or(0, |created| (now - created).max(0)) })
        })
    }
}
