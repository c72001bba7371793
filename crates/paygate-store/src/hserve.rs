//! Storage for the 知晓云 (hserve) face: client ids, end users and their sessions, and the
//! payment records that face lists. The face builds a [`RecordQuery`] (field conditions, no SQL);
//! the SQL for it is written here once for both backends.

use crate::rows::{self, RowLike, Shifted, SqlParam};
use crate::sql::job;
use crate::Result;
use async_trait::async_trait;
use paygate_domain::{App, Charge, Mode, Order, Problem, Scope};

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
