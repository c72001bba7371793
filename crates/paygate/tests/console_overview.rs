//! The console's overview, payments CSV export and member pages over HTTP, on SQLite and on PostgreSQL: the
//! overview's paid amounts by channel family and face (today live; earlier days only once the worker's rollup
//! has run), test and live apart, another app's money never shown; the CSV export streamed (chunked), its rows
//! equal to the filtered list and its cells defused; a member's balance, top-ups and transactions.

mod support;

use paygate_core::console::Role;
use serde_json::{json, Value};
use std::time::Duration;
use support::console::{signed_in as log_in, Browser, Page};
use support::{Backend, Keys, TestServer};

both!(
    overview_rolls_up_by_channel_and_face,
    overview_today_is_reused_for_ten_seconds,
    csv_export_is_the_filtered_list,
    member_page_shows_the_wallet
);

fn signed_in(s: &TestServer, app: &str, email: &str) -> Browser {
    support::console::user(s, app, email, Role::Viewer);
    log_in(s, app, email)
}

/// An order of `amount` paid in the sandbox through `channel`.
fn paid_with(s: &TestServer, keys: &Keys, no: &str, amount: i64, channel: &str, extra: Value) -> Value {
    let order = s.create_order(keys, &keys.test, no, amount, json!({}));
    let id = order["id"].as_str().unwrap();
    let (status, paid) =
        s.post(&keys.test, &format!("/v1/orders/{id}/pay"), json!({"channel": channel, "extra": extra}));
    assert_eq!(status, 200, "pay: {paid}");
    let ch = paid["charges"]["data"][0]["id"].as_str().unwrap();
    let (status, charge) = s.post(&keys.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!(status, 200, "sandbox pay: {charge}");
    order
}

/// A member's wallet payment of `fee` at the cashier face (付款码): a `balance` charge with a `pos_orders` row.
fn cashier_payment(s: &TestServer, k: &Keys, member_no: &str, top_up: i64, fee: i64) {
    let (st, m) = s.post(&k.test, "/v1/members", json!({"member_no": member_no, "phone": "18826490000", "name": "J"}));
    assert_eq!(st, 200, "{m}");
    let id = m["id"].as_str().unwrap();
    let (st, m) = s.post(&k.test, &format!("/v1/members/{id}/topups"), json!({"amount": top_up}));
    assert_eq!(st, 200, "{m}");
    let (open_app_id, secret, token) = &k.cashier;
    let biz = json!({"out_trade_no": format!("out-{member_no}"), "total_fee": fee, "auth_code": m["pay_code"]});
    let mut e = json!({"open_app_id": open_app_id, "timestamp": s.clock.now_for_tests(), "sign_type": "MD5",
        "token": token, "biz_content": biz.to_string()});
    e["sign"] = json!(support::faces::md5_sign(e.as_object().unwrap(), secret));
    let (st, raw) = s.call("POST", "", "/api/v2/cashier/pay", Some(e.to_string()), &[]);
    assert_eq!(st, 200, "{raw}");
    let result: Value = serde_json::from_str(raw["result"].as_str().unwrap()).unwrap();
    assert_eq!(result["succeed"], true, "{result}");
}

/// The overview card of the period of `days` days.
fn card(page: &Page, days: i64) -> String {
    let start = format!("<section class=\"card\" data-days=\"{days}\">");
    let at = page.body.find(&start).unwrap_or_else(|| panic!("no {days}-day card in {}", page.body));
    page.body[at..].split("</section>").next().unwrap().to_string()
}

fn field(card: &str, key: &str) -> String {
    let marker = format!("data-k=\"{key}\">");
    let at = card.find(&marker).unwrap_or_else(|| panic!("no {key} in {card}")) + marker.len();
    card[at..].split('<').next().unwrap().to_string()
}

/// The paid fen of one bar (`data-channel="wx"`, `data-face="v1"`), `None` without that bar.
fn bar(card: &str, kind: &str, name: &str) -> Option<i64> {
    let marker = format!("data-{kind}=\"{name}\" data-paid=\"");
    let at = card.find(&marker)? + marker.len();
    card[at..].split('"').next().unwrap().parse().ok()
}

fn overview_rolls_up_by_channel_and_face(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("overview");
    let other = s.create_app("other shop");
    paid_with(&s, &keys, "ov-1", 1_000, "wx_pub", json!({"open_id": "o1"}));
    paid_with(&s, &keys, "ov-2", 2_500, "wx_pub_qr", json!({"product_id": "p1"}));
    let ali = paid_with(&s, &keys, "ov-3", 700, "alipay", json!({}));
    s.create_order(&keys, &keys.test, "ov-unpaid", 400, json!({}));
    cashier_payment(&s, &keys, "M-1", 1_000, 300);
    paid_with(&s, &other, "other-1", 99_900, "wx_pub", json!({"open_id": "o1"}));
    let ali_id = ali["id"].as_str().unwrap();
    let (status, refund) =
        s.post(&keys.test, &format!("/v1/orders/{ali_id}/order_refunds"), json!({"amount": 200, "description": "x"}));
    assert_eq!(status, 200, "{refund}");
    let mut b = signed_in(&s, &keys.app, "viewer@shop.test");

    // Today is read live: four payments of 45.00 — two wx ones and an alipay one through /v1, a wallet one at
    // the cashier.
    let page = b.get("/console/test");
    assert_eq!(page.status, 200, "{}", page.body);
    let today = card(&page, 1);
    assert_eq!(field(&today, "volume"), "45.00", "{today}");
    assert_eq!(field(&today, "count"), "4");
    assert_eq!(field(&today, "rate"), "80.0%", "4 of 5 orders paid");
    assert_eq!(field(&today, "refunds"), "2.00 (1)");
    assert_eq!((bar(&today, "channel", "wx"), bar(&today, "channel", "alipay")), (Some(3_500), Some(700)));
    assert_eq!(bar(&today, "channel", "balance"), Some(300));
    assert_eq!((bar(&today, "face", "v1"), bar(&today, "face", "cashier")), (Some(4_200), Some(300)));
    assert!(page.body.contains("<svg") && !page.body.contains("<script"), "SVG, no script");
    assert!(!page.body.contains("999.00"), "another app's money is never shown: {}", page.body);
    let live = b.get("/console/live");
    assert_eq!(live.status, 200);
    assert_eq!(field(&card(&live, 1), "volume"), "0.00", "test money is not live money");
    assert_eq!(field(&card(&live, 30), "volume"), "0.00");

    // A day later those payments are yesterday's: not in today's card, and not in the 7 days until the worker
    // has rolled that day up (a page view never scans past days).
    s.clock.advance(86_400);
    let mut b = log_in(&s, &keys.app, "viewer@shop.test"); // the session has expired meanwhile
    let page = b.get("/console/test");
    assert_eq!(field(&card(&page, 1), "volume"), "0.00");
    assert_eq!(field(&card(&page, 7), "volume"), "0.00", "not rolled up yet");
    let worker = paygate_worker::Worker::new(
        s.app.clone(),
        paygate_worker::Settings { timeout: Duration::from_secs(5), ..paygate_worker::Settings::default() },
    );
    s.rt.block_on(worker.tick()).unwrap();
    let page = b.get("/console/test");
    for days in [7, 30] {
        let c = card(&page, days);
        assert_eq!(field(&c, "volume"), "45.00", "{days} days: {c}");
        assert_eq!(field(&c, "count"), "4");
        assert_eq!(field(&c, "rate"), "80.0%");
        assert_eq!(field(&c, "refunds"), "2.00 (1)");
        assert_eq!((bar(&c, "channel", "wx"), bar(&c, "channel", "alipay")), (Some(3_500), Some(700)), "{c}");
        assert_eq!((bar(&c, "face", "v1"), bar(&c, "face", "cashier")), (Some(4_200), Some(300)));
        assert_eq!(bar(&c, "channel", "balance"), Some(300));
    }
    assert!(!page.body.contains("999.00"), "{}", page.body);
    assert_eq!(field(&card(&b.get("/console/live"), 7), "volume"), "0.00");

    // Rolling a day up again writes the same numbers (an upsert), and a rolled-up day is not read again.
    // The worker's pass took the newest 3 days of 30; the rest come over later passes, then nothing is due.
    assert_eq!(s.rt.block_on(s.app.console_rollup(40)).unwrap(), 27);
    assert_eq!(s.rt.block_on(s.app.console_rollup(40)).unwrap(), 0, "every day is rolled up already");
    s.sql("DELETE FROM console_rollup_days");
    assert!(s.rt.block_on(s.app.console_rollup(40)).unwrap() >= 1);
    assert_eq!(field(&card(&b.get("/console/test"), 7), "volume"), "45.00");
}

/// The order ids of a CSV export (its first column), header row left out.
fn csv_ids(csv: &str) -> Vec<String> {
    csv.lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect()
}

fn csv_export_is_the_filtered_list(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("csv");
    let other = s.create_app("other shop");
    // 103 unpaid and 3 paid orders: the unfiltered export spans two list calls (100 each).
    for n in 0..103 {
        s.create_order(&keys, &keys.test, &format!("open-{n}"), 100 + n, json!({}));
    }
    let mut paid = Vec::new();
    for no in ["-x1", "paid-2", "paid-3"] {
        paid.push(s.paid_order(&keys, no, 1_000)["id"].as_str().unwrap().to_string());
    }
    s.paid_order(&other, "theirs", 5_000);
    let mut b = signed_in(&s, &keys.app, "viewer@shop.test");

    let list = b.get("/console/test/payments?status=paid");
    assert!(list.body.contains("/console/test/payments.csv?status=paid"), "the page links its export: {}", list.body);
    let csv = b.get("/console/test/payments.csv?status=paid");
    assert_eq!(csv.status, 200, "{}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap().starts_with("attachment;"));
    assert_eq!(csv.header("transfer-encoding"), Some("chunked"), "streamed, not built whole: {:?}", csv.headers);
    assert!(csv.header("content-length").is_none());
    let heading = csv.body.lines().next().unwrap();
    assert_eq!(heading, "\u{feff}Order,Merchant order no.,Channel,Amount,Status,Created");
    let ids = csv_ids(&csv.body);
    paid.reverse(); // newest first, as the list
    assert_eq!(ids, paid, "{}", csv.body);
    // The same rows as the page shows, in its order.
    let shown: Vec<&String> = ids.iter().filter(|id| list.body.contains(&format!("payments/{id}\""))).collect();
    assert_eq!(shown.len(), 3, "{}", list.body);
    assert!(csv.body.contains(",'-x1,wx_pub,10.00,paid,"), "defused: {}", csv.body);
    for line in csv.body.lines().skip(1) {
        assert!(line.contains(",10.00,paid,"), "{line}");
    }

    // Unfiltered: every order of the app and mode, over two pages, equal to /v1's list; none of the other app's.
    let all = b.get("/console/test/payments.csv");
    let ids = csv_ids(&all.body);
    assert_eq!(ids.len(), 106);
    let mut listed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/v1/orders?app={}&limit=100&starting_after={a}", keys.app),
            None => format!("/v1/orders?app={}&limit=100", keys.app),
        };
        let (status, page) = s.get(&keys.test, &path);
        assert_eq!(status, 200, "{page}");
        for o in page["data"].as_array().unwrap() {
            listed.push(o["id"].as_str().unwrap().to_string());
        }
        if page["has_more"] != true {
            break;
        }
        after = listed.last().cloned();
    }
    assert_eq!(ids, listed);
    assert!(!all.body.contains("theirs"));
    assert_eq!(csv_ids(&b.get("/console/live/payments.csv").body), Vec::<String>::new(), "test orders are not live");
    // By channel (the charge list): the three paid wx_pub charges.
    let by_channel = b.get("/console/test/payments.csv?channel=wx_pub&status=paid");
    assert_eq!(csv_ids(&by_channel.body), paid, "{}", by_channel.body);
    // A bad filter is refused before anything is sent.
    assert_eq!(b.get("/console/test/payments.csv?from=2026-13-01").status, 400);
}

fn member_page_shows_the_wallet(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("wallets");
    let other = s.create_app("other shop");
    let (status, member) =
        s.post(&keys.test, "/v1/members", json!({"member_no": "M-7", "phone": "13800000000", "name": "<b>Li</b>"}));
    assert_eq!(status, 200, "{member}");
    let id = member["id"].to_string().trim_matches('"').to_string();
    for amount in [5_000, 3_000] {
        let (status, m) = s.post(&keys.test, &format!("/v1/members/{id}/topups"), json!({"amount": amount}));
        assert_eq!(status, 200, "{m}");
    }
    let (status, theirs) =
        s.post(&other.test, "/v1/members", json!({"member_no": "T-1", "phone": "13900000000", "name": "Theirs"}));
    assert_eq!(status, 200, "{theirs}");
    let mut b = signed_in(&s, &keys.app, "viewer@shop.test");

    let lookup = b.get(&format!("/console/test/members?id={id}"));
    assert_eq!((lookup.status, lookup.header("location")), (303, Some(format!("/console/test/members/{id}").as_str())));
    let page = b.get(&format!("/console/test/members/{id}"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("M-7") && page.body.contains("&lt;b&gt;Li&lt;/b&gt;"), "{}", page.body);
    assert!(page.body.contains("<dd>80.00</dd>"), "the balance: {}", page.body);
    assert!(page.body.contains("Top-ups (total: 80.00)"), "{}", page.body);
    assert_eq!(page.body.matches(">topup<").count(), 4, "two top-ups, in both tables: {}", page.body);
    assert!(page.body.contains(">50.00<") && page.body.contains(">30.00<"));
    let their_id = theirs["id"].to_string().trim_matches('"').to_string();
    assert_eq!(b.get(&format!("/console/test/members/{their_id}")).status, 404, "another app's member");
    assert_eq!(b.get(&format!("/console/live/members/{id}")).status, 404, "a test member is not live");
    assert_eq!(b.get("/console/test/members").status, 200);
}

/// Today's figures are read once per ten seconds per app and mode (a node's cache): a payment shows on the
/// overview within that, never later, and another app or mode never sees this one's.
fn overview_today_is_reused_for_ten_seconds(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("cached");
    let other = s.create_app("other");
    paid_with(&s, &keys, "c-1", 1_000, "wx_pub", json!({"open_id": "o1"}));
    let mut b = signed_in(&s, &keys.app, "viewer@cached.test");
    let today = |b: &mut Browser| field(&card(&b.get("/console/test"), 1), "volume");
    assert_eq!(today(&mut b), "10.00");
    paid_with(&s, &keys, "c-2", 500, "alipay", json!({}));
    s.clock.advance(9);
    assert_eq!(today(&mut b), "10.00", "read 9 s ago: reused");
    let mut o = signed_in(&s, &other.app, "viewer@other.test");
    assert_eq!(today(&mut o), "0.00", "another app's own figures, not the cached ones");
    assert_eq!(field(&card(&b.get("/console/live"), 1), "volume"), "0.00", "live mode's own");
    s.clock.advance(1);
    assert_eq!(today(&mut b), "15.00", "ten seconds on: read again");
}
