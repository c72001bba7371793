//! The Ping++ Charge API's transactions (`POST /v1/charges`, `GET /v1/charges`, reverse), written
//! once for both backends. A charge made by `POST /v1/charges` is an order (merchant_order_no =
//! the charge's `order_no`) and its charge, inserted together: there is never an order without
//! its charge, and the order's unique key is what makes an `order_no` a duplicate.

use crate::rows::{self, scoped, SqlParam, CHARGE_COLUMNS};
use crate::sql::{job, vanished, Backend, Tx};
use crate::transactions::{cursor_seq, emit, load_charge, load_order, order_object, pending_charges};
use crate::Result;
use async_trait::async_trait;
use paygate_domain::events as ev;
use paygate_domain::paging::{ChargeFilter, Page, Paging};
use paygate_domain::{Charge, ChargeStatus, Order, Problem, Scope};

#[derive(Debug, Clone)]
pub enum ReverseOutcome {
    /// The charge had succeeded (possibly just now): nothing changed; its money goes back by a
    /// refund, then [`ChargeStore::mark_charge_reversed`].
    Paid(Charge),
    /// The charge was not paid: it is now reversed (closed if it was pending), its order canceled
    /// if it was still open (with `order.canceled`); `closed` are the charges to close at their
    /// channel.
    Closed { charge: Charge, closed: Vec<Charge> },
}

#[async_trait]
pub trait ChargeStore: Send + Sync {
    /// The order and its pending charge, in one transaction. A taken `order_no` (the order's
    /// merchant_order_no) inserts nothing and is a `Conflict` naming `order_no`.
    async fn insert_charge_payment(&self, order: &Order, charge: &Charge) -> Result<()>;
    /// The scope's charges, newest first, filtered; cursors are charge ids of the scope.
    async fn list_charges(&self, scope: &Scope, filter: &ChargeFilter, paging: &Paging) -> Result<Page<Charge>>;
    /// Under the order lock: a paid charge is reported as such; any other is reversed. `None`
    /// when the charge does not exist in the scope.
    async fn reverse_charge(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<ReverseOutcome>>;
    /// A succeeded charge whose money is back (or on its way back) is marked reversed.
    async fn mark_charge_reversed(&self, scope: &Scope, id: &str) -> Result<Option<Charge>>;
}

const CHARGE_SEQ: &str = "SELECT seq FROM charges WHERE app_id = $1 AND livemode = $2 AND id = $3";
/// Not paid: reversed, and closed if still pending (the order lock is held; the status re-check
/// makes a success that got in first win).
const REVERSE_UNPAID: &str = "UPDATE charges SET reversed = TRUE, \
    status = CASE WHEN status = 'pending' THEN 'closed' ELSE status END \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status <> 'succeeded'";
const MARK_REVERSED: &str = "UPDATE charges SET reversed = TRUE \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'succeeded'";

fn duplicate_order_no(order_no: &str, existing_order: &str) -> Problem {
    Problem::conflict(
        "duplicate_order_no",
        format!("order_no '{order_no}' is already used by order {existing_order} of this app."),
    )
    .with_param("order_no")
}

/// The charges list query: scope, filters, then the cursor, one row more than the page for
/// `has_more`. Served by `charges_scope_seq (app_id, livemode, seq)`.
pub fn list_charges_query(
    scope: &Scope,
    filter: &ChargeFilter,
    paging: &Paging,
    cursor: Option<i64>,
) -> (String, Vec<SqlParam>, bool) {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    let mut sql = format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2");
    let mut push = |clause: &str, p: SqlParam, sql: &mut String| {
        params.push(p);
        sql.push_str(&format!(" AND {clause} ${}", params.len()));
    };
    if let Some(channel) = &filter.channel {
        push("channel =", SqlParam::Text(channel.clone()), &mut sql);
    }
    if let Some(paid) = filter.paid {
        sql.push_str(if paid { " AND status = 'succeeded'" } else { " AND status <> 'succeeded'" });
    }
    if let Some(refunded) = filter.refunded {
        sql.push_str(if refunded { " AND amount_refunded = amount" } else { " AND amount_refunded < amount" });
    }
    if let Some(reversed) = filter.reversed {
        push("reversed =", SqlParam::Bool(reversed), &mut sql);
    }
    let c = &filter.created;
    for (op, v) in [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)] {
        if let Some(v) = v {
            push(&format!("created {op}"), SqlParam::Int(v), &mut sql);
        }
    }
    let (limit, before) = match paging {
        Paging::Cursor { limit, ending_before, .. } => (*limit, ending_before.is_some()),
        Paging::Page { per_page, .. } => (*per_page, false),
    };
    if let Some(seq) = cursor {
        push(if before { "seq >" } else { "seq <" }, SqlParam::Int(seq), &mut sql);
    }
    params.push(SqlParam::Int(limit + 1));
    sql.push_str(&format!(" ORDER BY seq {} LIMIT ${}", if before { "ASC" } else { "DESC" }, params.len()));
    (sql, params, before)
}

async fn reverse_unpaid(tx: &mut dyn Tx, scope: &Scope, charge: Charge, now: i64) -> Result<ReverseOutcome> {
    let key = scoped(scope, &charge.order_id);
    // Cancel the order only while it is open; its other pending charges close with it.
    let mut closed = Vec::new();
    if tx.exec(rows::CANCEL_ORDER, &key).await? == 1 {
        closed = pending_charges(tx, scope, &charge.order_id).await?;
        tx.exec(rows::CLOSE_PENDING_CHARGES, &key).await?;
        let order = load_order(tx, scope, &charge.order_id, false).await?.ok_or_else(|| vanished("order"))?;
        let object = order_object(tx, scope, order).await?;
        emit(tx, scope, ev::ORDER_CANCELED, object, now).await?;
    } else if charge.status == ChargeStatus::Pending {
        closed.push(charge.clone());
    }
    if tx.exec(REVERSE_UNPAID, &scoped(scope, &charge.id)).await? != 1 {
        return Err(Problem::internal("reversal lost under the order lock"));
    }
    let charge = load_charge(tx, scope, &charge.id).await?.ok_or_else(|| vanished("charge"))?;
    Ok(ReverseOutcome::Closed { charge, closed })
}

#[async_trait]
impl<B: Backend> ChargeStore for B {
    async fn insert_charge_payment(&self, order: &Order, charge: &Charge) -> Result<()> {
        job!(self, Write, [order, charge], |tx| {
            if tx.exec(rows::insert_new_order_sql(), &rows::order_params(&order)).await? != 1 {
                let taken = rows::merchant_no_params(&order);
                let existing = tx.query_opt(rows::ORDER_BY_MERCHANT_NO, &taken, |r| r.text(0)).await?;
                let existing = existing.ok_or_else(|| vanished("order holding the order_no"))?;
                return Err(duplicate_order_no(&order.merchant_order_no, &existing));
            }
            tx.exec(rows::insert_charge_sql(), &rows::charge_params(&charge)).await?;
            Ok(())
        })
    }

    async fn list_charges(&self, scope: &Scope, filter: &ChargeFilter, paging: &Paging) -> Result<Page<Charge>> {
        job!(self, Read, [scope, filter, paging], |tx| {
            let cursor = cursor_seq(tx, CHARGE_SEQ, &scope, &paging, "charge").await?;
            let (sql, params, reversed) = list_charges_query(&scope, &filter, &paging, cursor);
            Ok(rows::into_page(tx.query(&sql, &params, rows::charge).await?, paging.size(), reversed))
        })
    }

    async fn reverse_charge(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<ReverseOutcome>> {
        job!(self, Write, [scope, id], |tx| {
            let Some(charge) = load_charge(tx, &scope, &id).await? else { return Ok(None) };
            // The order row first, as every order transaction locks; then the charge as it is now.
            load_order(tx, &scope, &charge.order_id, true).await?.ok_or_else(|| vanished("order"))?;
            let charge = load_charge(tx, &scope, &id).await?.ok_or_else(|| vanished("charge"))?;
            if charge.status == ChargeStatus::Succeeded {
                return Ok(Some(ReverseOutcome::Paid(charge)));
            }
            reverse_unpaid(tx, &scope, charge, now).await.map(Some)
        })
    }

    async fn mark_charge_reversed(&self, scope: &Scope, id: &str) -> Result<Option<Charge>> {
        job!(self, Write, [scope, id], |tx| {
            tx.exec(MARK_REVERSED, &scoped(&scope, &id)).await?;
            load_charge(tx, &scope, &id).await
        })
    }
}
