//! The list benchmark (scripts/bench, `SCENARIO=lists`) over the data bench/lists_*.sql
//! generate: `N` orders of one app over the year from `T0`, order `i` (1-based) created at
//! `T0 + i × year / N` with `seq = i`, id `9` + `i` in 18 digits, trade number `td` + `i` in 30.
//!
//! Each query is named once here with its HTTP request and the statements paygate runs for it,
//! built by the store's own query builders (`rows::list_orders_query`, `hserve::records_queries`),
//! so `lists` times exactly what `lists-explain` explains.

use paygate_domain::paging::{CreatedRange, OrderFilter, Paging};
use paygate_domain::{Mode, Scope};
use paygate_store::hserve::{record_by_reference, records_queries, Condition, Field, Op, Operand, RecordQuery};
use paygate_store::rows::{list_orders_query, SqlParam};

const YEAR: i64 = 31_536_000;
/// The payer and the 知晓云 user (the same number: generated `uid` payer_K is hserve user K).
const PAYER: i64 = 4242;
/// The user the bench logs in as (registered through the API before the data was generated).
pub const USER: i64 = 1;

/// The generated data a run reads.
pub struct Data {
    pub app: String,
    pub t0: i64,
    pub n: i64,
}

impl Data {
    fn created(&self, i: i64) -> i64 {
        self.t0 + i * YEAR / self.n
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The app's secret key (`/v1`, and `/hserve` as the app's server).
    Key,
    /// The logged-in 知晓云 user's session token.
    User,
}

pub struct ListQuery {
    pub name: &'static str,
    pub path: String,
    pub auth: Auth,
    /// What paygate runs for it: the page, and for 知晓云 lists the bounded count.
    pub statements: Vec<(String, Vec<SqlParam>)>,
}

fn eq(field: Field, value: Operand) -> Condition {
    Condition::Field { field, op: Op::Eq, value }
}

fn cond(field: Field, op: Op, value: i64) -> Condition {
    Condition::Field { field, op, value: Operand::Int(value) }
}

fn text(v: &str) -> Operand {
    Operand::Text(v.into())
}

/// Every list query of the benchmark, in the order they run.
pub fn queries(d: &Data) -> Vec<ListQuery> {
    let scope = Scope { app_id: d.app.clone(), mode: Mode::Test };
    // A narrow window ten months ago, and the order in the middle of the year.
    let w = d.created(d.n / 6);
    let mid = d.n / 2;
    let mid_id = format!("9{mid:018}");
    let mid_at = (d.created(mid), mid);
    let app = &d.app;
    let mut out = Vec::new();
    let mut v1 = |name, q: &str, filter: OrderFilter, paging: Paging| {
        // Every cursor query here pages from the middle order.
        let cursor = matches!(&paging, Paging::Cursor { .. }).then_some(mid_at);
        let (sql, params, _) = list_orders_query(&scope, &filter, &paging, cursor);
        out.push(ListQuery {
            name,
            path: format!("/v1/orders?app={app}{q}"),
            auth: Auth::Key,
            statements: vec![(sql, params)],
        });
    };
    let page = Paging::page(None, None).unwrap();
    let created = |gte: Option<i64>, lt: Option<i64>, lte: Option<i64>| CreatedRange { gte, lt, lte, gt: None };
    let f = OrderFilter::default;
    v1("v1_page1", "", f(), page.clone());
    v1("v1_paid", "&paid=true", OrderFilter { paid: Some(true), ..f() }, page.clone());
    v1("v1_refunded", "&refunded=true", OrderFilter { refunded: Some(true), ..f() }, page.clone());
    v1("v1_canceled", "&canceled=true", OrderFilter { canceled: Some(true), ..f() }, page.clone());
    v1(
        "v1_uid",
        &format!("&uid=payer_{PAYER}"),
        OrderFilter { uid: Some(format!("payer_{PAYER}")), ..f() },
        page.clone(),
    );
    v1(
        "v1_created_window",
        &format!("&created%5Bgte%5D={w}&created%5Blt%5D={}", w + 3600),
        OrderFilter { created: created(Some(w), Some(w + 3600), None), ..f() },
        page.clone(),
    );
    v1(
        "v1_refunded_before",
        &format!("&refunded=true&created%5Blte%5D={w}"),
        OrderFilter { refunded: Some(true), created: created(None, None, Some(w)), ..f() },
        page.clone(),
    );
    v1(
        "v1_cursor_middle",
        &format!("&limit=10&starting_after={mid_id}"),
        f(),
        Paging::cursor(Some(10), Some(mid_id.clone()), None).unwrap(),
    );
    v1(
        "v1_before_middle",
        &format!("&limit=10&ending_before={mid_id}"),
        f(),
        Paging::cursor(Some(10), None, Some(mid_id.clone())).unwrap(),
    );
    // The deepest page offset paging allows (paging::MAX_OFFSET rows skipped).
    let deepest = paygate_domain::paging::MAX_OFFSET / 10 + 1;
    v1("v1_page_deepest", &format!("&page={deepest}"), f(), Paging::page(Some(deepest), None).unwrap());
    v1(
        "v1_paid_uid",
        &format!("&paid=true&uid=payer_{PAYER}"),
        OrderFilter { paid: Some(true), uid: Some(format!("payer_{PAYER}")), ..f() },
        page.clone(),
    );
    v1(
        "v1_canceled_day",
        &format!("&canceled=true&created%5Bgte%5D={w}&created%5Blt%5D={}", w + 86400),
        OrderFilter { canceled: Some(true), created: created(Some(w), Some(w + 86400), None), ..f() },
        page.clone(),
    );
    v1(
        "v1_paid_not_refunded_before",
        &format!("&paid=true&refunded=false&created%5Blt%5D={w}"),
        OrderFilter { paid: Some(true), refunded: Some(false), created: created(None, Some(w), None), ..f() },
        page.clone(),
    );
    v1(
        "v1_unpaid_refunded",
        "&paid=false&refunded=true",
        OrderFilter { paid: Some(false), refunded: Some(true), ..f() },
        page,
    );

    let mut hs = |name, q: String, auth: Auth, condition: Vec<Condition>, order_by: Vec<(Field, bool)>, offset| {
        let query = RecordQuery { condition: Condition::And(condition), order_by, limit: 20, offset };
        let user = (auth == Auth::User).then_some(USER);
        let ((page, page_params), count) = records_queries(&scope, user, &query).unwrap();
        out.push(ListQuery {
            name,
            path: format!("/hserve/v2.2/idp/pay/order/?{q}"),
            auth,
            statements: vec![(page, page_params), count],
        });
    };
    let key = Auth::Key;
    hs("hs_page1", String::new(), key, vec![], vec![], 0);
    hs("hs_success", "status=success".into(), key, vec![eq(Field::Status, text("success"))], vec![], 0);
    let complete = || eq(Field::RefundStatus, text("complete"));
    hs("hs_refund_complete", "refund_status=complete".into(), key, vec![complete()], vec![], 0);
    hs(
        "hs_created_by",
        format!("created_by_id={PAYER}"),
        key,
        vec![eq(Field::CreatedById, Operand::Int(PAYER))],
        vec![],
        0,
    );
    hs(
        "hs_created_window",
        format!("created_at__gte={w}&created_at__lt={}", w + 3600),
        key,
        vec![cond(Field::CreatedAt, Op::Gte, w), cond(Field::CreatedAt, Op::Lt, w + 3600)],
        vec![],
        0,
    );
    hs(
        "hs_refund_before",
        format!("refund_status=complete&created_at__lte={w}"),
        key,
        vec![complete(), cond(Field::CreatedAt, Op::Lte, w)],
        vec![],
        0,
    );
    hs(
        "hs_from_middle",
        format!("created_at__lte={}", mid_at.0),
        key,
        vec![cond(Field::CreatedAt, Op::Lte, mid_at.0)],
        vec![],
        0,
    );
    let deepest = paygate_domain::paging::MAX_RECORD_OFFSET - 20;
    hs("hs_offset_deepest", format!("offset={deepest}"), key, vec![], vec![], deepest);
    let trade_no = format!("td{mid:030}");
    hs("hs_trade_no", format!("trade_no={trade_no}"), key, vec![eq(Field::TradeNo, text(&trade_no))], vec![], 0);
    hs("hs_alipay", "gateway_type=alipay".into(), key, vec![eq(Field::GatewayType, text("alipay"))], vec![], 0);
    hs(
        "hs_merchandise",
        "merchandise_record_id=item_42".into(),
        key,
        vec![eq(Field::MerchandiseRecordId, text("item_42"))],
        vec![],
        0,
    );
    hs(
        "hs_paid_window_by_paid_at",
        format!("paid_at__gte={w}&paid_at__lt={}&order_by=-paid_at", w + 3600),
        key,
        vec![cond(Field::PaidAt, Op::Gte, w), cond(Field::PaidAt, Op::Lt, w + 3600)],
        vec![(Field::PaidAt, true)],
        0,
    );
    hs("hs_pending", "status=pending".into(), key, vec![eq(Field::Status, text("pending"))], vec![], 0);
    hs("hs_user", String::new(), Auth::User, vec![], vec![], 0);
    hs("hs_user_success", "status=success".into(), Auth::User, vec![eq(Field::Status, text("success"))], vec![], 0);
    // Not a list: one record by its trade number (refunds find records the same way).
    out.push(ListQuery {
        name: "hs_get_by_trade_no",
        path: format!("/hserve/v2.2/idp/pay/order/{trade_no}"),
        auth: Auth::Key,
        statements: vec![record_by_reference(&scope, None, &trade_no)],
    });
    out
}

/// The statement as a literal: PostgreSQL's `EXECUTE q(…)` arguments.
pub fn literal(p: &SqlParam) -> String {
    let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match p {
        SqlParam::Text(s) | SqlParam::OptText(Some(s)) => quoted(s),
        SqlParam::Int(i) | SqlParam::OptInt(Some(i)) => i.to_string(),
        SqlParam::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        SqlParam::OptText(None) | SqlParam::OptInt(None) => "NULL".into(),
        other => panic!("list queries bind no {other:?}"),
    }
}

/// `$N` → `?N`, as the SQLite backend rewrites every statement.
pub fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

pub fn sqlite_value(p: &SqlParam) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        SqlParam::Text(s) | SqlParam::OptText(Some(s)) => Value::Text(s.clone()),
        SqlParam::Int(i) | SqlParam::OptInt(Some(i)) => Value::Integer(*i),
        SqlParam::Bool(b) => Value::Integer(i64::from(*b)),
        SqlParam::OptText(None) | SqlParam::OptInt(None) => Value::Null,
        other => panic!("list queries bind no {other:?}"),
    }
}

/// Each query's plan, as markdown: PostgreSQL's `EXPLAIN (ANALYZE, BUFFERS)` of the statement
/// prepared and executed five times first (so the plan is the one the plan cache settled on, as
/// paygate's prepared statements get), SQLite's `EXPLAIN QUERY PLAN` on the bundled SQLite
/// paygate runs, with the time of one execution.
pub fn explain(backend: &str, target: &str, d: &Data) -> String {
    let mut out = format!("## {backend}: {} orders\n\n", d.n);
    match backend {
        "postgres" => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(target, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                for q in queries(d) {
                    for (i, (sql, params)) in q.statements.iter().enumerate() {
                        let args = params.iter().map(literal).collect::<Vec<_>>().join(", ");
                        client.batch_execute(&format!("PREPARE bench_q AS {sql}")).await.unwrap();
                        for _ in 0..5 {
                            client.batch_execute(&format!("EXECUTE bench_q({args})")).await.unwrap();
                        }
                        let rows =
                            client.query(&format!("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_q({args})"), &[]).await;
                        client.batch_execute("DEALLOCATE bench_q").await.unwrap();
                        let plan: Vec<String> = rows.unwrap().iter().map(|r| r.get::<_, String>(0)).collect();
                        out.push_str(&section(&q, i, sql, &args, &plan.join("\n")));
                    }
                }
            });
        }
        _ => {
            let conn =
                rusqlite::Connection::open_with_flags(target, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            for q in queries(d) {
                for (i, (sql, params)) in q.statements.iter().enumerate() {
                    let sql_lite = sqlite_placeholders(sql);
                    let values: Vec<_> = params.iter().map(sqlite_value).collect();
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql_lite}")).unwrap();
                    let steps: Vec<(i64, i64, String)> = stmt
                        .query_map(rusqlite::params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?, r.get(3)?)))
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    let mut depth = std::collections::HashMap::new();
                    let mut plan = Vec::new();
                    for (id, parent, detail) in steps {
                        let d = depth.get(&parent).map_or(0, |p| p + 1);
                        depth.insert(id, d);
                        plan.push(format!("{}{detail}", "  ".repeat(d)));
                    }
                    let start = std::time::Instant::now();
                    let mut stmt = conn.prepare(&sql_lite).unwrap();
                    let n = stmt.query_map(rusqlite::params_from_iter(values.iter()), |_| Ok(())).unwrap().count();
                    plan.push(format!("({n} rows in {:.2} ms)", start.elapsed().as_secs_f64() * 1000.0));
                    let args = params.iter().map(literal).collect::<Vec<_>>().join(", ");
                    out.push_str(&section(&q, i, sql, &args, &plan.join("\n")));
                }
            }
        }
    }
    out
}

fn section(q: &ListQuery, statement: usize, sql: &str, args: &str, plan: &str) -> String {
    let what = if statement == 0 { "" } else { " (count)" };
    format!("### {}{what}\n`GET {}`\n\n```sql\n{sql}\n-- {args}\n```\n```\n{plan}\n```\n\n", q.name, q.path)
}
