//! SQL and row mapping shared by both backends. Statements are written with PostgreSQL's `$N`
//! placeholders; the SQLite backend rewrites them to `?N` (explicitly numbered, so the
//! binding order is the same). Types are chosen so one text serves both: BIGINT fen, BIGINT unix
//! seconds, BOOLEAN, TEXT (JSON as text).

use crate::Result;
use paygate_domain::paging::{OrderFilter, Paging};
use paygate_domain::{
    Amount, Charge, ChargeStatus, Currency, Mode, Order, OrderStatus, Problem, Refund, RefundStatus, Scope,
};
use serde_json::Value;

/// What a backend's row must offer for the mappers below.
pub trait RowLike {
    fn text(&self, i: usize) -> Result<String>;
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    fn int(&self, i: usize) -> Result<i64>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    fn boolean(&self, i: usize) -> Result<bool>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>>;
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>>;
}

/// A bind parameter of a dynamically built query.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Text(String),
    Int(i64),
    Bool(bool),
    /// Typed NULLs: PostgreSQL checks a parameter's type even when it is NULL.
    OptText(Option<String>),
    OptInt(Option<i64>),
    Bytes(Vec<u8>),
    /// A column of values, one per row of a batch (`unnest($N::text[], …)`): PostgreSQL only.
    Array(SqlArray),
}

/// The columns a batch statement binds; `None` is NULL (nullable columns share the variant).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlArray {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
    Bool(Vec<bool>),
}

pub const ORDER_COLUMNS: &str = "id, app_id, livemode, created, status, uid, merchant_order_no, amount, \
    coupon_amount, actual_amount, amount_paid, amount_refunded, refund_reserved, has_refunds, currency, subject, body, \
    client_ip, time_paid, time_expire, description, metadata, receipt_app, service_app, profit_sharing, \
    share_reserved, sharing_finished";

pub const CHARGE_COLUMNS: &str = "id, order_id, app_id, livemode, created, status, channel, channel_order_no, amount, \
    amount_refunded, currency, client_ip, subject, body, extra, credential, time_paid, time_expire, transaction_no, \
    failure_code, failure_msg, metadata, description, notification, settlement, member_id, order_no, reversed";

pub const REFUND_COLUMNS: &str = "id, order_id, charge_id, app_id, livemode, created, status, amount, refund_no, \
    description, metadata, time_succeed, transaction_no, failure_code, failure_msg";

pub fn insert_order_sql() -> &'static str {
    crate::sql::once_sql!("INSERT INTO orders ({ORDER_COLUMNS}) VALUES ({})", placeholders(27))
}
/// A second order with a taken merchant_order_no inserts nothing (0 rows) instead of failing:
/// that one unique key, and no other error, is a duplicate order.
pub fn insert_new_order_sql() -> &'static str {
    crate::sql::once_sql!("{} ON CONFLICT (app_id, livemode, merchant_order_no) DO NOTHING", insert_order_sql())
}
pub fn insert_charge_sql() -> &'static str {
    crate::sql::once_sql!("INSERT INTO charges ({CHARGE_COLUMNS}) VALUES ({})", placeholders(28))
}
pub fn insert_refund_sql() -> &'static str {
    crate::sql::once_sql!("INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ({})", placeholders(15))
}
pub fn select_order_sql(lock: &str) -> String {
    format!("SELECT {ORDER_COLUMNS} FROM orders WHERE app_id = $1 AND livemode = $2 AND id = $3 {lock}")
}
pub fn select_charge_sql(lock: &str) -> String {
    format!("SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2 AND id = $3 {lock}")
}
pub fn select_refund_sql(lock: &str) -> String {
    format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE app_id = $1 AND livemode = $2 AND id = $3 {lock}")
}
pub fn charges_of_order_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2 AND order_id = $3 ORDER BY seq DESC"
    )
}
/// The charges of a page of orders: one bound parameter per order (a page holds at most 101).
pub fn charges_of_orders_query(scope: &Scope, order_ids: &[String]) -> (String, Vec<SqlParam>) {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    params.extend(order_ids.iter().map(|id| SqlParam::Text(id.clone())));
    let binds = (3..=params.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2 AND order_id IN ({binds}) \
         ORDER BY seq DESC"
    );
    (sql, params)
}
pub fn pending_charges_sql(lock: &str) -> String {
    format!(
        "SELECT {CHARGE_COLUMNS} FROM charges \
         WHERE app_id = $1 AND livemode = $2 AND order_id = $3 AND status = 'pending' {lock}"
    )
}
pub fn find_charge_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {CHARGE_COLUMNS} FROM charges WHERE app_id = $1 AND livemode = $2 \
         AND (id = $3 OR channel_order_no = $3 OR transaction_no = $3 \
         OR channel_order_no = (SELECT trade_no FROM hserve_orders \
             WHERE app_id = $1 AND livemode = $2 AND transaction_no = $3)) \
         ORDER BY seq DESC LIMIT 1"
    )
}
pub fn find_test_charge_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {CHARGE_COLUMNS} FROM charges WHERE livemode = FALSE \
         AND (id = $1 OR channel_order_no = $1 OR transaction_no = $1 \
         OR channel_order_no = (SELECT trade_no FROM hserve_orders WHERE livemode = FALSE AND transaction_no = $1)) \
         ORDER BY seq DESC LIMIT 1"
    )
}

pub const CLOSE_PENDING_CHARGES: &str = "UPDATE charges SET status = 'closed' \
    WHERE app_id = $1 AND livemode = $2 AND order_id = $3 AND status = 'pending'";
pub const CANCEL_ORDER: &str =
    "UPDATE orders SET status = 'canceled' WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'created'";
/// A closed charge can still succeed at the channel (money taken late); see `plan_settlement`.
pub const CHARGE_SUCCEEDED: &str = "UPDATE charges \
    SET status = 'succeeded', transaction_no = $4, time_paid = $5, notification = $6, settlement = $7 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status IN ('pending', 'closed')";
/// Once a charge pays the order, its other pending charges can no longer succeed normally.
pub const CLOSE_OTHER_PENDING: &str = "UPDATE charges SET status = 'closed' \
    WHERE app_id = $1 AND livemode = $2 AND order_id = $3 AND status = 'pending' AND id <> $4";
pub const ORDER_PAID_LATE: &str = "UPDATE orders SET status = 'paid_after_close', amount_paid = $4, time_paid = $5 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status IN ('closed', 'canceled')";
pub const CHARGE_FAILED: &str = "UPDATE charges SET status = 'failed', failure_code = $4, failure_msg = $5 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
/// Only a created order becomes paid; the amount is the charge's.
pub const ORDER_PAID: &str = "UPDATE orders SET status = 'paid', amount_paid = $4, time_paid = $5 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'created'";
/// The reservation: succeeds only while the bound still holds, whatever ran before it.
pub const RESERVE_REFUND: &str = "UPDATE orders SET refund_reserved = refund_reserved + $4, has_refunds = TRUE \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status IN ('paid', 'refunded', 'paid_after_close') \
    AND amount_paid - refund_reserved >= $4 AND share_reserved = 0";
pub const REFUND_SUCCEEDED: &str = "UPDATE refunds SET status = 'succeeded', transaction_no = $4, time_succeed = $5 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
pub const REFUND_FAILED: &str = "UPDATE refunds SET status = 'failed', failure_code = $4, failure_msg = $5 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND status = 'pending'";
/// Counts a succeeded refund; the order reads `refunded` once everything paid went back.
pub const ORDER_REFUND_COUNTED: &str = "UPDATE orders SET amount_refunded = amount_refunded + $4, \
    status = CASE WHEN status = 'paid' AND amount_refunded + $4 = amount_paid THEN 'refunded' ELSE status END \
    WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const CHARGE_REFUND_COUNTED: &str = "UPDATE charges SET amount_refunded = amount_refunded + $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3";
/// A refund of a wallet payment goes back to the wallet, in the refund's own transaction: `$3` is
/// the charge, `$4` the amount, `$5` the refund id, `$6` now. No-ops for other charges.
pub const WALLET_REFUND_CREDIT: &str = "UPDATE members SET balance = balance + $4 \
    WHERE id = (SELECT member_id FROM charges WHERE app_id = $1 AND livemode = $2 AND id = $3)";
pub const WALLET_REFUND_RECORD: &str = "INSERT INTO balance_transactions \
    (member_id, app_id, livemode, created, kind, amount, balance_after, reference) \
    SELECT m.id, CAST($1 AS TEXT), CAST($2 AS BOOLEAN), CAST($6 AS BIGINT), 'refund', CAST($4 AS BIGINT), m.balance, \
    CAST($5 AS TEXT) FROM members m \
    WHERE m.id = (SELECT member_id FROM charges WHERE app_id = $1 AND livemode = $2 AND id = $3)";
pub const ORDER_REFUND_RELEASED: &str = "UPDATE orders SET refund_reserved = refund_reserved - $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const SUCCEEDED_CHARGE_OF_ORDER: &str =
    "SELECT id FROM charges WHERE app_id = $1 AND livemode = $2 AND order_id = $3 AND status = 'succeeded'";

pub fn placeholders(n: usize) -> String {
    (1..=n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

pub fn scope_params(scope: &Scope) -> (String, bool) {
    (scope.app_id.clone(), scope.mode.is_live())
}

pub fn order_params(o: &Order) -> Vec<SqlParam> {
    use SqlParam::*;
    vec![
        Text(o.id.clone()),
        Text(o.app_id.clone()),
        Bool(o.mode.is_live()),
        Int(o.created),
        Text(o.status.as_str().into()),
        opt_text(&o.uid),
        Text(o.merchant_order_no.clone()),
        Int(o.amount.fen()),
        Int(o.coupon_amount.fen()),
        Int(o.actual_amount.fen()),
        Int(o.amount_paid.fen()),
        Int(o.amount_refunded.fen()),
        Int(o.refund_reserved.fen()),
        Bool(o.has_refunds),
        Text(o.currency.code().into()),
        Text(o.subject.clone()),
        Text(o.body.clone()),
        Text(o.client_ip.clone()),
        opt_int(o.time_paid),
        Int(o.time_expire),
        opt_text(&o.description),
        OptText(o.metadata.as_ref().map(|m| m.to_string())),
        Text(o.receipt_app.clone()),
        Text(o.service_app.clone()),
        Bool(o.profit_sharing),
        Int(o.share_reserved.fen()),
        Bool(o.sharing_finished),
    ]
}

pub fn charge_params(c: &Charge) -> Vec<SqlParam> {
    use SqlParam::*;
    vec![
        Text(c.id.clone()),
        Text(c.order_id.clone()),
        Text(c.app_id.clone()),
        Bool(c.mode.is_live()),
        Int(c.created),
        Text(c.status.as_str().into()),
        Text(c.channel.clone()),
        Text(c.channel_order_no.clone()),
        Int(c.amount.fen()),
        Int(c.amount_refunded.fen()),
        Text(c.currency.code().into()),
        Text(c.client_ip.clone()),
        Text(c.subject.clone()),
        Text(c.body.clone()),
        Text(c.extra.to_string()),
        Text(c.credential.to_string()),
        opt_int(c.time_paid),
        Int(c.time_expire),
        opt_text(&c.transaction_no),
        opt_text(&c.failure_code),
        opt_text(&c.failure_msg),
        Text(c.metadata.to_string()),
        opt_text(&c.description),
        OptText(c.notification.as_ref().map(|n| n.to_string())),
        OptText(c.settlement.as_ref().map(|n| n.to_string())),
        OptInt(c.member_id),
        Text(c.order_no.clone()),
        Bool(c.reversed),
    ]
}

pub fn refund_params(r: &Refund) -> Vec<SqlParam> {
    use SqlParam::*;
    vec![
        Text(r.id.clone()),
        Text(r.order_id.clone()),
        Text(r.charge_id.clone()),
        Text(r.app_id.clone()),
        Bool(r.mode.is_live()),
        Int(r.created),
        Text(r.status.as_str().into()),
        Int(r.amount.fen()),
        Text(r.refund_no.clone()),
        Text(r.description.clone()),
        Text(r.metadata.to_string()),
        opt_int(r.time_succeed),
        opt_text(&r.transaction_no),
        opt_text(&r.failure_code),
        opt_text(&r.failure_msg),
    ]
}

fn opt_text(v: &Option<String>) -> SqlParam {
    SqlParam::OptText(v.clone())
}
fn opt_int(v: Option<i64>) -> SqlParam {
    SqlParam::OptInt(v)
}

fn status_err(what: &str, v: &str) -> Problem {
    Problem::internal(format!("stored {what} has unknown status '{v}'"))
}

fn json(text: Option<String>) -> Result<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| Problem::internal(format!("stored JSON is invalid: {e}"))))
        .transpose()
}

fn mode(live: bool) -> Mode {
    Mode::from_live(live)
}

pub fn order(r: &dyn RowLike) -> Result<Order> {
    let status = r.text(4)?;
    Ok(Order {
        id: r.text(0)?,
        app_id: r.text(1)?,
        mode: mode(r.boolean(2)?),
        created: r.int(3)?,
        status: OrderStatus::parse(&status).ok_or_else(|| status_err("order", &status))?,
        uid: r.opt_text(5)?,
        merchant_order_no: r.text(6)?,
        amount: Amount::from_stored(r.int(7)?),
        coupon_amount: Amount::from_stored(r.int(8)?),
        actual_amount: Amount::from_stored(r.int(9)?),
        amount_paid: Amount::from_stored(r.int(10)?),
        amount_refunded: Amount::from_stored(r.int(11)?),
        refund_reserved: Amount::from_stored(r.int(12)?),
        has_refunds: r.boolean(13)?,
        currency: Currency::parse("currency", &r.text(14)?)?,
        subject: r.text(15)?,
        body: r.text(16)?,
        client_ip: r.text(17)?,
        time_paid: r.opt_int(18)?,
        time_expire: r.int(19)?,
        description: r.opt_text(20)?,
        metadata: json(r.opt_text(21)?)?,
        receipt_app: r.text(22)?,
        service_app: r.text(23)?,
        profit_sharing: r.boolean(24)?,
        share_reserved: Amount::from_stored(r.int(25)?),
        sharing_finished: r.boolean(26)?,
    })
}

pub fn charge(r: &dyn RowLike) -> Result<Charge> {
    let status = r.text(5)?;
    Ok(Charge {
        id: r.text(0)?,
        order_id: r.text(1)?,
        app_id: r.text(2)?,
        mode: mode(r.boolean(3)?),
        created: r.int(4)?,
        status: ChargeStatus::parse(&status).ok_or_else(|| status_err("charge", &status))?,
        channel: r.text(6)?,
        channel_order_no: r.text(7)?,
        amount: Amount::from_stored(r.int(8)?),
        amount_refunded: Amount::from_stored(r.int(9)?),
        currency: Currency::parse("currency", &r.text(10)?)?,
        client_ip: r.text(11)?,
        subject: r.text(12)?,
        body: r.text(13)?,
        extra: json(Some(r.text(14)?))?.unwrap_or(Value::Null),
        credential: json(Some(r.text(15)?))?.unwrap_or(Value::Null),
        time_paid: r.opt_int(16)?,
        time_expire: r.int(17)?,
        transaction_no: r.opt_text(18)?,
        failure_code: r.opt_text(19)?,
        failure_msg: r.opt_text(20)?,
        metadata: json(Some(r.text(21)?))?.unwrap_or(Value::Null),
        description: r.opt_text(22)?,
        notification: json(r.opt_text(23)?)?,
        settlement: json(r.opt_text(24)?)?,
        member_id: r.opt_int(25)?,
        order_no: r.text(26)?,
        reversed: r.boolean(27)?,
    })
}

pub fn refund(r: &dyn RowLike) -> Result<Refund> {
    let status = r.text(6)?;
    Ok(Refund {
        id: r.text(0)?,
        order_id: r.text(1)?,
        charge_id: r.text(2)?,
        app_id: r.text(3)?,
        mode: mode(r.boolean(4)?),
        created: r.int(5)?,
        status: RefundStatus::parse(&status).ok_or_else(|| status_err("refund", &status))?,
        amount: Amount::from_stored(r.int(7)?),
        refund_no: r.text(8)?,
        description: r.text(9)?,
        metadata: json(Some(r.text(10)?))?.unwrap_or(Value::Null),
        time_succeed: r.opt_int(11)?,
        transaction_no: r.opt_text(12)?,
        failure_code: r.opt_text(13)?,
        failure_msg: r.opt_text(14)?,
    })
}

/// Every status an order can have (the CHECK of `orders.status`).
const STATUSES: [&str; 6] = ["created", "paid", "canceled", "refunded", "closed", "paid_after_close"];

/// The statuses an order with a refund can have: `has_refunds` is set only by [`RESERVE_REFUND`],
/// which takes these three, and none of them ever goes back to created, canceled or closed.
const REFUNDABLE: [&str; 3] = ["paid", "refunded", "paid_after_close"];

/// `paid`, `canceled` and `refunded=true` all constrain `status`: folded into one set, so the
/// database sees one condition — `status = 'canceled'` exactly as the partial index
/// `orders_canceled_created` says (a predicate can only pick a partial index when written as a
/// literal), `paid=false&refunded=true` as `status = 'paid_after_close'` (the late payments'
/// own index, instead of every refunded order read to find none), and a contradiction
/// (`paid=true&canceled=true`) as `FALSE`, which reads nothing, instead of a scan for rows that
/// cannot exist. `on` qualifies the column (`o.` when the orders are joined to their 知晓云 records).
fn status_condition(filter: &OrderFilter, on: &str) -> Option<String> {
    let paid = |s: &str| matches!(s, "paid" | "refunded");
    let kept: Vec<&str> = STATUSES
        .into_iter()
        .filter(|s| filter.paid.is_none_or(|p| paid(s) == p))
        .filter(|s| filter.canceled.is_none_or(|c| (*s == "canceled") == c))
        .filter(|s| filter.refunded != Some(true) || REFUNDABLE.contains(s))
        .collect();
    match kept.as_slice() {
        all if all.len() == STATUSES.len() => None,
        // `refunded=true` alone: `has_refunds` already says it (and picks `orders_refunds_created`).
        some if filter.refunded == Some(true) && some == REFUNDABLE => None,
        [] => Some("FALSE".into()),
        [one] => Some(format!("{on}status = '{one}'")),
        some => {
            Some(format!("{on}status IN ({})", some.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ")))
        }
    }
}

/// The order lists read: newest first by `created`, then `seq` (the later of two orders created
/// in the same second first). Every list index ends in `(created, seq)`.
pub const NEWEST_FIRST: &str = "ORDER BY created DESC, seq DESC";

/// Builds the orders list query for either backend. `cursor` is the `(created, seq)` of the
/// `starting_after` / `ending_before` order, looked up (scoped) by the caller: the page is the
/// rows after (before) it in list order, found by one seek of the same index.
/// Fetches one row more than the page size so `has_more` is exact.
pub fn list_orders_query(
    scope: &Scope,
    filter: &OrderFilter,
    paging: &Paging,
    cursor: Option<(i64, i64)>,
) -> (String, Vec<SqlParam>, bool) {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    // Filtered by merchandise, the 知晓云 records drive: `hserve_orders_merchandise` (scope, merchandise,
    // created, seq) holds a merchandise's records newest first, and each record keeps its order's `(created,
    // seq)`, so the scope, the window, the cursor and the order are all said on the record (`h.`). The order
    // is joined (by `CROSS JOIN`, which fixes that order on SQLite) only when its own columns are filtered.
    // Every field named (no `..`): a new filter must be placed on the record or the order here to compile.
    let OrderFilter {
        uid,
        receipt_app,
        service_app,
        paid: _,
        refunded,
        canceled: _,
        created: _,
        merchandise_record_id,
    } = filter;
    let by_record = merchandise_record_id.is_some();
    let order_filtered = uid.is_some()
        || receipt_app.is_some()
        || service_app.is_some()
        || refunded.is_some()
        || status_condition(filter, "").is_some();
    let (from, at, on) = match (by_record, order_filtered) {
        (false, _) => ("orders", "", ""),
        (true, false) => ("hserve_orders h", "h.", ""),
        (true, true) => ("hserve_orders h CROSS JOIN orders o", "h.", "o."),
    };
    let mut sql = format!("{at}app_id = $1 AND {at}livemode = $2");
    if by_record && order_filtered {
        sql.push_str(" AND o.id = h.order_id");
    }
    let mut push = |clause: &str, p: SqlParam, sql: &mut String| {
        params.push(p);
        sql.push_str(&format!(" AND {clause} ${}", params.len()));
    };
    if let Some(v) = &filter.merchandise_record_id {
        push("h.merchandise_record_id =", SqlParam::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &filter.uid {
        push(&format!("{on}uid ="), SqlParam::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &filter.receipt_app {
        push(&format!("{on}receipt_app ="), SqlParam::Text(v.clone()), &mut sql);
    }
    if let Some(v) = &filter.service_app {
        push(&format!("{on}service_app ="), SqlParam::Text(v.clone()), &mut sql);
    }
    if let Some(status) = status_condition(filter, on) {
        sql.push_str(&format!(" AND {status}"));
    }
    // A literal, not a bound boolean, for the same reason as the status (`orders_refunds_created`).
    match filter.refunded {
        Some(true) => sql.push_str(&format!(" AND {on}has_refunds")),
        Some(false) => sql.push_str(&format!(" AND NOT {on}has_refunds")),
        None => {}
    }
    let c = &filter.created;
    for (op, v) in [(">", c.gt), (">=", c.gte), ("<", c.lt), ("<=", c.lte)] {
        if let Some(v) = v {
            push(&format!("{at}created {op}"), SqlParam::Int(v), &mut sql);
        }
    }
    let mut reversed = false;
    let (order, page) = match paging {
        Paging::Page { page, per_page } => {
            params.push(SqlParam::Int(per_page + 1));
            params.push(SqlParam::Int((page - 1) * per_page));
            (NEWEST_FIRST, format!("LIMIT ${} OFFSET ${}", params.len() - 1, params.len()))
        }
        Paging::Cursor { limit, ending_before, .. } => {
            if let Some((created, seq)) = cursor {
                let op = if ending_before.is_some() { ">" } else { "<" };
                params.extend([SqlParam::Int(created), SqlParam::Int(seq)]);
                let n = params.len();
                sql.push_str(&format!(" AND ({at}created, {at}seq) {op} (${}, ${n})", n - 1));
            }
            reversed = ending_before.is_some();
            params.push(SqlParam::Int(limit + 1));
            (if reversed { "ORDER BY created ASC, seq ASC" } else { NEWEST_FIRST }, format!("LIMIT ${}", params.len()))
        }
    };
    let inner_order = match at {
        "" => order.to_string(),
        _ => order.replace("created", &format!("{at}created")).replace("seq", &format!("{at}seq")),
    };
    // The page's `seq`s are found from the index alone — every filter's column is in the list
    // indexes (`INCLUDE (status, has_refunds)` on PostgreSQL, trailing columns on SQLite), so
    // rows a filter refuses and rows an offset skips are never read from the table — and only
    // the page's own rows are then read whole, by primary key.
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE seq IN (SELECT {at}seq FROM {from} WHERE {sql} {inner_order} \
         {page}) {order}"
    );
    (sql, params, reversed)
}

/// Where a cursor order stands in list order.
pub const ORDER_CURSOR: &str = "SELECT created, seq FROM orders WHERE app_id = $1 AND livemode = $2 AND id = $3";
pub const ORDER_SEQ: &str = "SELECT seq FROM orders WHERE app_id = $1 AND livemode = $2 AND id = $3";

pub fn refunds_query(
    scope: &Scope,
    order_id: Option<&str>,
    charge_id: Option<&str>,
    limit: i64,
) -> (String, Vec<SqlParam>) {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    let mut sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE app_id = $1 AND livemode = $2");
    if let Some(o) = order_id {
        params.push(SqlParam::Text(o.into()));
        sql.push_str(&format!(" AND order_id = ${}", params.len()));
    }
    if let Some(c) = charge_id {
        params.push(SqlParam::Text(c.into()));
        sql.push_str(&format!(" AND charge_id = ${}", params.len()));
    }
    params.push(SqlParam::Int(limit + 1));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ${}", params.len()));
    (sql, params)
}

/// Trims the extra row fetched for `has_more` and restores newest-first order.
pub fn into_page<T>(mut rows: Vec<T>, size: i64, reversed: bool) -> paygate_domain::paging::Page<T> {
    let has_more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    if reversed {
        rows.reverse();
    }
    paygate_domain::paging::Page { data: rows, has_more }
}

/// The refund a reservation inserts, pending, with the amount decided in the transaction.
pub fn pending_refund(scope: &Scope, req: &crate::RefundRequest, charge_id: &str, amount: Amount) -> Refund {
    Refund {
        id: req.id.clone(),
        order_id: req.order_id.clone(),
        charge_id: charge_id.to_string(),
        app_id: scope.app_id.clone(),
        mode: scope.mode,
        created: req.created,
        status: RefundStatus::Pending,
        amount,
        refund_no: req.refund_no.clone(),
        description: req.description.clone(),
        metadata: req.metadata.clone(),
        time_succeed: None,
        transaction_no: None,
        failure_code: None,
        failure_msg: None,
    }
}

/// `(app_id, livemode, id)`: the first three parameters of every scoped statement.
pub fn scoped(scope: &Scope, id: &str) -> Vec<SqlParam> {
    vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live()), SqlParam::Text(id.to_string())]
}

/// `(app_id, livemode, id)` for tables keyed by an integer id.
pub fn scoped_int(scope: &Scope, id: i64) -> Vec<SqlParam> {
    vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live()), SqlParam::Int(id)]
}

pub fn with(mut params: Vec<SqlParam>, more: impl IntoIterator<Item = SqlParam>) -> Vec<SqlParam> {
    params.extend(more);
    params
}

pub const ORDER_BY_MERCHANT_NO: &str =
    "SELECT id FROM orders WHERE app_id = $1 AND livemode = $2 AND merchant_order_no = $3";

pub fn merchant_no_params(order: &Order) -> Vec<SqlParam> {
    vec![
        SqlParam::Text(order.app_id.clone()),
        SqlParam::Bool(order.mode.is_live()),
        SqlParam::Text(order.merchant_order_no.clone()),
    ]
}

/// The answer to a second order with a taken merchant_order_no: it names the existing order.
pub fn duplicate_order(merchant_order_no: &str, existing_id: &str) -> Problem {
    Problem::conflict(
        "duplicate_merchant_order_no",
        format!("merchant_order_no '{merchant_order_no}' is already used by order {existing_id}."),
    )
    .with_param("merchant_order_no")
}

/// A row read from column `offset` on, so the shared mappers serve a joined row.
pub struct Shifted<'a>(pub &'a dyn RowLike, pub usize);

impl RowLike for Shifted<'_> {
    fn text(&self, i: usize) -> Result<String> {
        self.0.text(i + self.1)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.0.opt_text(i + self.1)
    }
    fn int(&self, i: usize) -> Result<i64> {
        self.0.int(i + self.1)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.0.opt_int(i + self.1)
    }
    fn boolean(&self, i: usize) -> Result<bool> {
        self.0.boolean(i + self.1)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        self.0.bytes(i + self.1)
    }
    fn opt_bytes(&self, i: usize) -> Result<Option<Vec<u8>>> {
        self.0.opt_bytes(i + self.1)
    }
}

/// `id, app_id` → `o.id, o.app_id`.
pub fn prefixed(columns: &str, prefix: &str) -> String {
    columns.split(',').map(|c| format!("{prefix}{}", c.trim())).collect::<Vec<_>>().join(", ")
}

pub fn width(columns: &str) -> usize {
    columns.split(',').count()
}

/// An order and its charges, newest first, in one round trip (a row per charge; one row with
/// NULL charge columns when it has none).
pub fn order_view_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {}, {} FROM orders o LEFT JOIN charges c ON c.order_id = o.id \
         WHERE o.app_id = $1 AND o.livemode = $2 AND o.id = $3 ORDER BY c.seq DESC",
        prefixed(ORDER_COLUMNS, "o."),
        prefixed(CHARGE_COLUMNS, "c.")
    )
}

pub fn order_and_charge(r: &dyn RowLike) -> Result<(Order, Option<Charge>)> {
    let at = width(ORDER_COLUMNS);
    let charge = match r.opt_text(at)? {
        Some(_) => Some(charge(&Shifted(r, at))?),
        None => None,
    };
    Ok((order(r)?, charge))
}

pub fn into_order_view(rows: Vec<(Order, Option<Charge>)>) -> Option<paygate_domain::objects::OrderView> {
    let mut rows = rows.into_iter();
    let (order, first) = rows.next()?;
    let charges = first.into_iter().chain(rows.filter_map(|(_, c)| c)).collect();
    Some(paygate_domain::objects::OrderView { order, charges })
}
