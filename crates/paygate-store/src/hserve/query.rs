//! The 知晓云 record query: the fields, operators and conditions a face may ask for (data, no SQL), and the SQL
//! written for them once for both backends — the page's `seq`s, the bounded count, the records read by `seq`,
//! one record by its numbers.

use crate::rows::{self, SqlParam};
use crate::Result;
use paygate_domain::{Problem, Scope};

/// The fields a record query may filter or sort on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Id,
    CreatedAt,
    PaidAt,
    Status,
    RefundStatus,
    TradeNo,
    TransactionNo,
    GatewayType,
    MerchandiseRecordId,
    MerchandiseSchemaId,
    MerchandiseDescription,
    CreatedById,
    CreatedByName,
    UpdatedAt,
    TotalCost,
    RefundAmount,
    MerchandiseSnapshot,
    IpAddress,
}

impl Field {
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "id" => Field::Id,
            "created_at" => Field::CreatedAt,
            "paid_at" => Field::PaidAt,
            "status" => Field::Status,
            "refund_status" => Field::RefundStatus,
            "trade_no" => Field::TradeNo,
            "transaction_no" => Field::TransactionNo,
            "gateway_type" => Field::GatewayType,
            "merchandise_record_id" => Field::MerchandiseRecordId,
            "merchandise_schema_id" => Field::MerchandiseSchemaId,
            "merchandise_description" => Field::MerchandiseDescription,
            "created_by_id" | "created_by" => Field::CreatedById,
            "created_by_name" => Field::CreatedByName,
            "updated_at" => Field::UpdatedAt,
            "total_cost" => Field::TotalCost,
            "refund_amount" => Field::RefundAmount,
            "merchandise_snapshot" => Field::MerchandiseSnapshot,
            "ip_address" => Field::IpAddress,
            _ => return None,
        })
    }

    /// Fields an index of `hserve_orders` finds by value, each value holding few records:
    /// a query that compares one with `=` or `in` reads those records first.
    fn pins_records(self) -> bool {
        matches!(self, Field::TradeNo | Field::TransactionNo | Field::CreatedById | Field::MerchandiseRecordId)
    }

    /// Fields kept on the record itself (`hserve_orders`): a query comparing only these needs
    /// no order row until its page is read.
    fn on_record(self) -> bool {
        use Field::*;
        matches!(
            self,
            TradeNo
                | TransactionNo
                | GatewayType
                | MerchandiseRecordId
                | MerchandiseSchemaId
                | MerchandiseDescription
                | CreatedById
                | CreatedByName
                | MerchandiseSnapshot
                | IpAddress
        )
    }

    /// Whether the field can be null (sorting then puts nulls first ascending, last descending).
    pub fn nullable(self) -> bool {
        use Field::*;
        matches!(self, PaidAt | MerchandiseRecordId | MerchandiseSchemaId | CreatedById | CreatedByName)
    }

    /// Amounts: yuan on the wire, fen in the column.
    pub fn is_amount(self) -> bool {
        matches!(self, Field::TotalCost | Field::RefundAmount)
    }

    /// Integer columns (ids and unix times).
    pub fn is_int(self) -> bool {
        use Field::*;
        matches!(self, Id | CreatedAt | UpdatedAt | PaidAt | MerchandiseSchemaId | CreatedById)
    }

    /// The column (or expression), for the fields that are not derived from several.
    fn column(self) -> &'static str {
        match self {
            Field::Id => "o.seq",
            Field::CreatedAt => "o.created",
            Field::PaidAt => "o.time_paid",
            Field::TradeNo => "h.trade_no",
            Field::TransactionNo => "h.transaction_no",
            Field::GatewayType => "h.gateway_type",
            Field::MerchandiseRecordId => "h.merchandise_record_id",
            Field::MerchandiseSchemaId => "h.merchandise_schema_id",
            Field::MerchandiseDescription => "h.merchandise_description",
            Field::CreatedById => "h.created_by",
            Field::CreatedByName => CREATED_BY_NAME,
            Field::UpdatedAt => UPDATED,
            Field::TotalCost => "o.actual_amount",
            Field::RefundAmount => "o.amount_refunded",
            Field::MerchandiseSnapshot => "h.merchandise_snapshot",
            Field::IpAddress => "h.ip_address",
            // Derived: see `derived_predicate`.
            Field::Status | Field::RefundStatus => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
    IsNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Int(i64),
    Text(String),
    Null,
    List(Vec<Operand>),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Field { field: Field, op: Op, value: Operand },
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub condition: Condition,
    /// `(field, descending)`; empty = newest first.
    pub order_by: Vec<(Field, bool)>,
    pub limit: i64,
    pub offset: i64,
}

/// When a record last changed: the latest of the times its changes leave in the books — created,
/// paid (also late), a refund asked (a failed one ends then too) or succeeded, closed at expiry.
/// Derived rather than stored, so a refund or payment made through any face (`/v1` too) moves it.
/// A cancel through `/v1` keeps no time of its own and does not move it.
pub const UPDATED: &str = "(SELECT MAX(t) FROM (SELECT o.created AS t UNION ALL SELECT o.time_paid \
    UNION ALL SELECT CASE WHEN o.status = 'closed' THEN o.time_expire END \
    UNION ALL SELECT MAX(r.created) FROM refunds r WHERE r.order_id = o.id \
    UNION ALL SELECT MAX(r.time_succeed) FROM refunds r WHERE r.order_id = o.id) u)";

/// The creator's username (null for anonymous users and for records the server made).
pub const CREATED_BY_NAME: &str = "(SELECT u.username FROM hserve_users u WHERE u.id = h.created_by)";

/// `o.` + ORDER_COLUMNS, `c.` + CHARGE_COLUMNS, then the meta columns: one row per record.
fn select_columns() -> String {
    format!(
        "o.seq, {}, {}, h.transaction_no, h.trade_no, h.gateway_type, h.trade_type, h.created_by, \
         h.merchandise_description, h.merchandise_schema_id, h.merchandise_record_id, h.merchandise_snapshot, \
         h.ip_address, {UPDATED}, {CREATED_BY_NAME}",
        rows::prefixed(rows::ORDER_COLUMNS, "o."),
        rows::prefixed(rows::CHARGE_COLUMNS, "c.")
    )
}

/// A record's rows, the order read first: the order lists' indexes (scope, `created`, the rare
/// filters) find the page, each record then by its primary key. `CROSS JOIN` fixes that order on
/// SQLite, which plans without statistics and would otherwise guess; PostgreSQL plans a cross
/// join with a join condition like any join, from its statistics. The join condition is
/// [`JOINED`], in the WHERE clause.
const BY_ORDER: &str = "orders o CROSS JOIN hserve_orders h";
/// The record read first: for a query pinned to a few records by an index of `hserve_orders`
/// (its creator, its numbers, its merchandise), which are then sorted.
const BY_RECORD: &str = "hserve_orders h CROSS JOIN orders o";
const JOINED: &str = "o.id = h.order_id";
const WITH_CHARGE: &str = "JOIN charges c ON c.channel_order_no = h.trade_no";

/// SQL text and its parameters.
pub type Statement = (String, Vec<SqlParam>);

/// How far past the page `meta.total_count` counts: exact while at most `offset + limit +
/// TOTAL_COUNT_AHEAD` records match, and that number (so `next` is still offered) when more do.
/// Counting every match would read millions of rows per request; this reads at most what the
/// page skipped, the page and this many more (docs/hserve.md).
pub const TOTAL_COUNT_AHEAD: i64 = 200;

/// The default order: newest first, by `(created, seq)` — the order of `orders_scope_created`
/// and of the partial list indexes, so a page is read from an index without sorting the app.
const NEWEST_FIRST: &str = "o.created DESC, o.seq DESC";
/// The same order said on the records' copy of `(created, seq)`, for lists read by record: the
/// creator and merchandise indexes of `hserve_orders` end in it, so those pages need no sort.
const NEWEST_RECORD_FIRST: &str = "h.created DESC, h.seq DESC";

/// The page and the count query for `query` within `scope`, restricted to `user` when set.
/// The orders drive (their list indexes hold the scope, `created` and the rare filters), each
/// joined to its record by primary key — unless the query is a user's, is pinned to a few
/// records by an index of `hserve_orders` ([`pinned`]), or reads only the records' own columns
/// ([`record_only`]): then the records are read first, newest first from their own indexes.
pub fn records_queries(scope: &Scope, user: Option<i64>, query: &RecordQuery) -> Result<(Statement, Statement)> {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    // Newest first over the records' own columns (no filter at all, the creator, gateway,
    // merchandise): the records alone find the page and the count, in the order of their
    // `(created, seq)` indexes, and only the page's orders are read. Every record has its order
    // (a foreign key), so leaving the join out changes no answer.
    let record_only = query.order_by.is_empty() && record_only(&query.condition);
    let by_record = record_only || user.is_some() || pinned(&query.condition);
    // A record has its order's scope. Said on the table read first: by order, each record is then
    // found by `hserve_orders`' primary key alone (an index-only probe on PostgreSQL); by record,
    // its scoped indexes find them.
    let scoped = if by_record { "h" } else { "o" };
    let joined = if record_only { String::new() } else { format!("{JOINED} AND ") };
    let mut filter = format!("{joined}{scoped}.app_id = $1 AND {scoped}.livemode = $2");
    if let Some(u) = user {
        params.push(SqlParam::Int(u));
        filter.push_str(&format!(" AND h.created_by = ${}", params.len()));
    }
    let cond = predicate(&query.condition, &mut params)?;
    filter.push_str(&format!(" AND ({cond})"));
    if query.order_by.len() > MAX_ORDER_BY {
        let n = query.order_by.len();
        return Err(Problem::invalid("order_by", format!("order_by takes at most {MAX_ORDER_BY} fields, got {n}.")));
    }
    let order = match query.order_by.is_empty() {
        true if by_record => NEWEST_RECORD_FIRST.to_string(),
        true => NEWEST_FIRST.to_string(),
        false => {
            let mut terms = query.order_by.iter().map(|(f, desc)| order_term(*f, *desc)).collect::<Result<Vec<_>>>()?;
            terms.push("o.seq DESC".into());
            terms.join(", ")
        }
    };
    let (records, seq) = match (record_only, by_record) {
        (true, _) => ("hserve_orders h", "h.seq"),
        (false, true) => (BY_RECORD, "o.seq"),
        (false, false) => (BY_ORDER, "o.seq"),
    };
    // The count reads the records the page would, in the same order, and stops at its bound. The
    // order changes no count, but without it SQLite may walk another index of the scope (payers'
    // orders by uid, say), where matches clustered in time — the open orders — lie far apart.
    let mut count_params = params.clone();
    count_params.push(SqlParam::Int(query.offset.saturating_add(query.limit).saturating_add(TOTAL_COUNT_AHEAD)));
    let count = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM {records} WHERE {filter} ORDER BY {order} LIMIT ${}) t",
        count_params.len()
    );
    // Bound, not inlined: statement caches then hold one entry per filter shape.
    params.push(SqlParam::Int(query.limit));
    let limit = params.len();
    params.push(SqlParam::Int(query.offset));
    // The page's records are found first, in list order, on the list index and the records' primary key only
    // (the records an offset skips, and those a sort passes over, read nothing else); [`records_by_seq`] then
    // reads them whole — their charges, creators and refunds — for the page alone.
    let page =
        format!("SELECT {seq} FROM {records} WHERE {filter} ORDER BY {order} LIMIT ${limit} OFFSET ${}", params.len());
    Ok(((page, params), (count, count_params)))
}

/// The records whose `seq` is in `seqs` (a page [`records_queries`] found), in no particular order. Its text
/// depends only on how many there are, never on the list's filter or order: PostgreSQL then plans it once per
/// connection and page size and reuses the plan, where the page's own statement — with its joins and
/// subqueries — was planned anew on every request (0.7 ms, most of a list's database time at 10 M orders).
/// The scope is said on the record (each record has its order's): said on the order, SQLite walked the app's
/// orders by their scope index instead of reading the page's rows by `seq` (2 s a page at 10 M orders).
pub fn records_by_seq(scope: &Scope, seqs: &[i64]) -> Statement {
    let mut params = vec![SqlParam::Text(scope.app_id.clone()), SqlParam::Bool(scope.mode.is_live())];
    let mut list = Vec::with_capacity(seqs.len());
    for seq in seqs {
        params.push(SqlParam::Int(*seq));
        list.push(format!("${}", params.len()));
    }
    let sql = format!(
        "SELECT {} FROM {BY_ORDER} {WITH_CHARGE} WHERE {JOINED} AND h.app_id = $1 AND h.livemode = $2 \
         AND o.seq IN ({})",
        select_columns(),
        list.join(", ")
    );
    (sql, params)
}

/// The most fields one `order_by` may name (each is a sort key the database must compare).
pub const MAX_ORDER_BY: usize = 8;

/// One ORDER BY term. Nulls sort as the smallest value, said explicitly so both databases agree
/// (it is SQLite's, MySQL's and MongoDB's default, not PostgreSQL's): first ascending, last
/// descending. 知晓云 documents no order for nulls; this one makes `-paid_at` list the latest
/// payments first and unpaid records after them.
fn order_term(f: Field, desc: bool) -> Result<String> {
    let col = match f.column() {
        "" => return Err(Problem::invalid("order_by", "order_by cannot sort by status or refund_status.")),
        col => col,
    };
    let nulls = match (f.nullable(), desc) {
        (false, _) => "",
        (true, false) => " NULLS FIRST",
        (true, true) => " NULLS LAST",
    };
    Ok(format!("{col} {}{nulls}", if desc { "DESC" } else { "ASC" }))
}

/// One record by its id, trade number or 知晓云 transaction number, within the scope.
pub fn record_by_reference(scope: &Scope, user: Option<i64>, reference: &str) -> (String, Vec<SqlParam>) {
    let mut params = rows::scoped(scope, reference);
    let by_id = reference.parse::<i64>().ok();
    params.push(SqlParam::OptInt(by_id));
    // The three lookups each by their own unique index, then the record by primary key (the
    // scope is checked on the order: SQLite would otherwise walk `hserve_orders` by scope): an OR
    // across the two tables could only be checked record by record, over the whole app.
    let mut sql = format!(
        "SELECT {} FROM {BY_RECORD} {WITH_CHARGE} WHERE {JOINED} AND o.app_id = $1 AND o.livemode = $2 \
         AND h.order_id IN (\
         SELECT order_id FROM hserve_orders WHERE transaction_no = $3 \
         UNION ALL SELECT order_id FROM hserve_orders WHERE trade_no = $3 \
         UNION ALL SELECT id FROM orders WHERE seq = $4)",
        select_columns()
    );
    if let Some(u) = user {
        params.push(SqlParam::Int(u));
        sql.push_str(&format!(" AND h.created_by = ${}", params.len()));
    }
    (sql, params)
}

/// Whether `c` pins the query to few records by an index of `hserve_orders` (see
/// [`Field::pins_records`]): a comparison with `=` or `in` that every match must pass.
fn pinned(c: &Condition) -> bool {
    match c {
        Condition::Field { field, op: Op::Eq | Op::In, value } => field.pins_records() && *value != Operand::Null,
        Condition::And(all) => all.iter().any(pinned),
        Condition::Or(_) | Condition::Field { .. } => false,
    }
}

/// Whether `c` compares only fields kept on the record ([`Field::on_record`]).
fn record_only(c: &Condition) -> bool {
    match c {
        Condition::Field { field, .. } => field.on_record(),
        Condition::And(all) | Condition::Or(all) => all.iter().all(record_only),
    }
}

fn predicate(c: &Condition, params: &mut Vec<SqlParam>) -> Result<String> {
    match c {
        Condition::And(list) if list.is_empty() => Ok("TRUE".into()),
        Condition::Or(list) if list.is_empty() => Ok("FALSE".into()),
        Condition::And(list) => Ok(list
            .iter()
            .map(|c| predicate(c, params).map(|p| format!("({p})")))
            .collect::<Result<Vec<_>>>()?
            .join(" AND ")),
        Condition::Or(list) => Ok(list
            .iter()
            .map(|c| predicate(c, params).map(|p| format!("({p})")))
            .collect::<Result<Vec<_>>>()?
            .join(" OR ")),
        Condition::Field { field, op, value } => field_predicate(*field, *op, value, params),
    }
}

fn bind(value: &Operand, params: &mut Vec<SqlParam>) -> Result<String> {
    params.push(match value {
        Operand::Int(i) => SqlParam::Int(*i),
        Operand::Text(t) => SqlParam::Text(t.clone()),
        Operand::Bool(b) => SqlParam::Bool(*b),
        Operand::Null | Operand::List(_) => return Err(Problem::internal("cannot bind a list or null")),
    });
    Ok(format!("${}", params.len()))
}

fn field_predicate(field: Field, op: Op, value: &Operand, params: &mut Vec<SqlParam>) -> Result<String> {
    if matches!(field, Field::Status | Field::RefundStatus) {
        return derived_predicate(field, op, value);
    }
    if field == Field::GatewayType && matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
        return gateway_predicate(op, value, params);
    }
    let col = field.column();
    Ok(match (op, value) {
        (Op::IsNull, Operand::Bool(true)) => format!("{col} IS NULL"),
        (Op::IsNull, Operand::Bool(false)) => format!("{col} IS NOT NULL"),
        (Op::IsNull, _) => return Err(Problem::invalid("where", "isnull takes true or false.")),
        (Op::Eq, Operand::Null) => format!("{col} IS NULL"),
        (Op::Ne, Operand::Null) => format!("{col} IS NOT NULL"),
        (Op::In | Op::NotIn, Operand::List(items)) => {
            if items.is_empty() {
                return Ok(if op == Op::In { "FALSE".into() } else { "TRUE".into() });
            }
            let binds = items.iter().map(|v| bind(v, params)).collect::<Result<Vec<_>>>()?;
            format!("{col} {} ({})", if op == Op::In { "IN" } else { "NOT IN" }, binds.join(", "))
        }
        (op, v) => {
            let sym = match op {
                Op::Eq => "=",
                Op::Ne => "<>",
                Op::Gt => ">",
                Op::Gte => ">=",
                Op::Lt => "<",
                Op::Lte => "<=",
                _ => return Err(Problem::invalid("where", "in/nin need a list.")),
            };
            let p = bind(v, params)?;
            format!("{col} {sym} {p}")
        }
    })
}

/// `gateway_type` matches the family (`weixin_tenpay`) or the exact type the payment was made
/// with (`weixin_tenpay_native`): the two never share a value, so each value is looked for in
/// both columns — in a list too, where values of both kinds may be mixed.
fn gateway_predicate(op: Op, value: &Operand, params: &mut Vec<SqlParam>) -> Result<String> {
    let items = match value {
        Operand::List(items) => items.as_slice(),
        one => std::slice::from_ref(one),
    };
    if items.is_empty() {
        return Ok(if op == Op::In { "FALSE".into() } else { "TRUE".into() });
    }
    let binds = items.iter().map(|v| bind(v, params)).collect::<Result<Vec<_>>>()?.join(", ");
    let any = format!("(h.gateway_type IN ({binds}) OR h.trade_type IN ({binds}))");
    Ok(if matches!(op, Op::Eq | Op::In) { any } else { format!("NOT {any}") })
}

// Money refunded implies a refund was reserved, which set `has_refunds` for good: saying it
// lets the partial index `orders_refunds_created` answer every refund_status but null.
const REFUND_COMPLETE: &str = "(o.has_refunds AND o.amount_paid > 0 AND o.amount_refunded = o.amount_paid)";
const REFUND_PARTIAL: &str = "(o.has_refunds AND o.amount_refunded > 0 AND o.amount_refunded < o.amount_paid)";
const REFUND_FAILED: &str = "(o.has_refunds AND o.amount_refunded = 0 AND o.refund_reserved = 0)";

/// `status` and `refund_status` are read off the order's money columns, exactly as the face
/// renders them: `refund_status` is null when it is none of complete, partial or failed (no
/// refund asked, or one still in progress).
fn derived_predicate(field: Field, op: Op, value: &Operand) -> Result<String> {
    let name = field_name(field);
    let one = |v: &Operand| -> Result<String> {
        let text = match v {
            Operand::Text(t) => t.as_str(),
            Operand::Null => "",
            _ => return Err(Problem::invalid(name, format!("{name} must be a string."))),
        };
        Ok(match (field, text) {
            (Field::Status, "success") => "o.status IN ('paid', 'refunded')".to_string(),
            // Literals, as PostgreSQL's `orders_open_created` (0016) states them: the open orders newest
            // first. `NOT has_refunds` is true of every open order; saying it is what lets this list, and
            // no UPDATE of one order, use that index. SQLite walks `orders_scope_created`.
            (Field::Status, "pending") => "(o.status = 'created' AND NOT o.has_refunds)".to_string(),
            (Field::Status, "closed") => "o.status IN ('closed', 'canceled', 'paid_after_close')".to_string(),
            // A status is never null.
            (Field::Status, "") if *v == Operand::Null => "FALSE".to_string(),
            (Field::RefundStatus, "complete") => REFUND_COMPLETE.to_string(),
            (Field::RefundStatus, "partial") => REFUND_PARTIAL.to_string(),
            (Field::RefundStatus, "failed") => REFUND_FAILED.to_string(),
            (Field::RefundStatus, "" | " ") => {
                format!("NOT ({REFUND_COMPLETE} OR {REFUND_PARTIAL} OR {REFUND_FAILED})")
            }
            (Field::Status, other) => {
                return Err(Problem::invalid(
                    "status",
                    format!("status must be 'pending' or 'success' (or 'closed'), got '{other}'."),
                ))
            }
            (_, other) => {
                return Err(Problem::invalid(
                    "refund_status",
                    format!("refund_status must be 'complete', 'partial', 'failed' or '', got '{other}'."),
                ))
            }
        })
    };
    // Each value once: a long list of repeats would only lengthen the OR chain.
    let any = |items: &[Operand]| -> Result<String> {
        let mut parts = items.iter().map(one).collect::<Result<Vec<_>>>()?;
        parts.sort();
        parts.dedup();
        Ok(format!("({})", parts.join(" OR ")))
    };
    match (op, value) {
        (Op::Eq, v) => one(v),
        (Op::Ne, v) => Ok(format!("NOT {}", one(v)?)),
        (Op::IsNull, Operand::Bool(null)) => Ok(format!("{}{}", if *null { "" } else { "NOT " }, one(&Operand::Null)?)),
        (Op::In | Op::NotIn, Operand::List(items)) if items.is_empty() => {
            Ok(if op == Op::In { "FALSE".into() } else { "TRUE".into() })
        }
        (Op::In, Operand::List(items)) => any(items),
        (Op::NotIn, Operand::List(items)) => Ok(format!("NOT {}", any(items)?)),
        _ => Err(Problem::invalid(name, format!("{name} can only be compared with =, !=, in or isnull."))),
    }
}

fn field_name(field: Field) -> &'static str {
    if field == Field::Status {
        "status"
    } else {
        "refund_status"
    }
}
