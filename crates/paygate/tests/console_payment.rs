//! The console's payment page beyond the order (issue 13), on SQLite and on PostgreSQL: a pending test-mode charge
//! paid at the sandbox with the page's "pay" button (support may, a viewer may not, CSRF-less posts are refused,
//! a second press finds nothing pending), then the charge's settlement and the order's profit shares on the page,
//! and the pay in the audit log. The payments list's merchandise filter (知晓云 orders by merchandise record id).

mod support;

use paygate_core::console::Role;
use paygate_worker::{Settings, Worker};
use serde_json::{json, Map, Value};
use std::time::Duration;
use support::console::{signed_in, user, Browser};
use support::faces::{hs, md5_sign};
use support::{Backend, Keys, TestServer};

both!(
    sandbox_pay_settlement_and_shares,
    search_finds_cashier_and_hserve_payments,
    worker_deletes_idle_sessions,
    merchandise_filter_lists_its_payments_only
);

fn sandbox_pay_settlement_and_shares(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("console-pay");
    for (email, role) in
        [("admin@shop.test", Role::Admin), ("support@shop.test", Role::Support), ("viewer@shop.test", Role::Viewer)]
    {
        user(&s, &keys.app, email, role);
    }
    let order = s.create_order(&keys, &keys.test, "console-pay-1", 1_000, json!({"profit_sharing": true}));
    let order_id = order["id"].as_str().unwrap();
    let (status, paying) = s.post(&keys.test, &format!("/v1/orders/{order_id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 200, "{paying}");
    let charge = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    let detail = format!("/console/test/payments/{order_id}");
    let pay = format!("{detail}/charges/{charge}/pay");
    let button = format!("action=\"{pay}\"");

    // A viewer sees the pending charge but no button, and a pay it posts anyway is refused.
    let mut viewer = signed_in(&s, &keys.app, "viewer@shop.test");
    let page = viewer.get(&detail);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&charge) && !page.body.contains(&button), "{}", page.body);
    let csrf = page.hidden("csrf");
    assert_eq!(viewer.post(&pay, &[("csrf", &csrf)]).status, 403);

    // Support sees the button; a post without the CSRF token is refused and pays nothing.
    let mut support = signed_in(&s, &keys.app, "support@shop.test");
    let page = support.get(&detail);
    assert!(page.body.contains(&button), "{}", page.body);
    assert_eq!(support.post(&pay, &[]).status, 403);
    let (_, before) = s.get(&keys.test, &format!("/v1/orders/{order_id}"));
    assert_eq!(before["status"], "created", "{before}");

    // The button pays the charge, as /v1's sandbox pay does, and the page says so.
    let page = support.submit(&detail, &pay, &[]);
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some(format!("{detail}?paid=1").as_str())),
        "{}",
        page.body
    );
    let (_, after) = s.get(&keys.test, &format!("/v1/orders/{order_id}"));
    assert_eq!(after["status"], "paid", "{after}");
    let page = support.get(&format!("{detail}?paid=1"));
    assert!(page.body.contains("The sandbox charge was paid."), "{}", page.body);
    assert!(!page.body.contains(&button), "nothing is pending any more: {}", page.body);
    // The settlement of the succeeded charge, in yuan.
    let settled = format!("<td data-k=\"Charge\">{charge}</td><td data-k=\"Original amount\">10.00</td>");
    assert!(page.body.contains(&settled), "{}", page.body);
    assert!(page.body.contains("<td data-k=\"Payer paid\">10.00</td>"), "{}", page.body);
    assert!(page.body.contains("<td data-k=\"Fee rate\">"), "{}", page.body);

    // A second press (a stale page) finds the charge no longer pending.
    let page = support.submit(&detail, &pay, &[]);
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("not pending"), "{}", page.body);
    // A charge id that is not this order's is not found.
    let page = support.submit(&detail, &format!("{detail}/charges/ch_nope/pay"), &[]);
    assert_eq!(page.status, 404, "{}", page.body);

    // A profit share made through /v1 shows on the page with its receiver.
    let receivers =
        json!([{"type": "MERCHANT_ID", "account": "o-receiver-1", "amount": 100, "description": "分给商户"}]);
    let (status, share) = s.post(
        &keys.test,
        &format!("/v1/orders/{order_id}/profit_sharings"),
        json!({"type": "wechat_single", "receivers": receivers}),
    );
    assert_eq!(status, 200, "{share}");
    let page = support.get(&detail);
    let share_id = share["id"].as_str().unwrap();
    assert!(page.body.contains(&format!("<td data-k=\"Share\">{share_id}</td>")), "{}", page.body);
    assert!(page.body.contains("MERCHANT_ID o-receiver-1 1.00"), "{}", page.body);

    // The pay is in the audit log, by the support user.
    let mut admin = signed_in(&s, &keys.app, "admin@shop.test");
    let audit = admin.get("/console/test/audit");
    assert_eq!(audit.status, 200);
    assert_eq!(audit.body.matches("charge.sandbox_pay").count(), 1, "{}", audit.body);
    assert!(audit.body.contains("support@shop.test"), "{}", audit.body);
    // Written by the settlement's transaction: the charge as it was under the order's lock, and as paid.
    let log = s.rt.block_on(s.app.store.console_audit(&keys.app, None, 100)).unwrap();
    let paid = log.iter().find(|r| r.entry.action == "charge.sandbox_pay").expect("the pay's entry");
    let (_, charged) = s.get(&keys.test, &format!("/v1/charges/{charge}"));
    assert_eq!((paid.entry.object_id.as_str(), paid.entry.actor.as_str()), (charge.as_str(), "support@shop.test"));
    assert_eq!(paid.entry.before, Some(json!({ "order": order_id, "status": "pending" })));
    let after = json!({ "status": "succeeded", "transaction_no": charged["transaction_no"] });
    assert!(charged["transaction_no"].is_string(), "{charged}");
    assert_eq!(paid.entry.after, Some(after));
}

/// A cashier request signed as tests/cashier.rs signs it (MD5); the answer's `result` parsed.
fn cashier(s: &TestServer, k: &Keys, op: &str, biz: Value) -> Value {
    let (open_app_id, secret, token) = &k.cashier;
    let mut e = json!({"open_app_id": open_app_id, "timestamp": s.clock.now_for_tests(), "sign_type": "MD5",
        "token": token, "biz_content": biz.to_string()});
    let fields: Map<String, Value> = e.as_object().unwrap().clone();
    e["sign"] = json!(md5_sign(&fields, secret));
    let (status, raw) = s.call("POST", "", &format!("/api/v2/cashier/{op}"), Some(e.to_string()), &[]);
    assert_eq!(status, 200, "{raw}");
    serde_json::from_str(raw["result"].as_str().unwrap()).unwrap()
}

/// The search box also takes the numbers the cashier (pay_no, out_trade_no) and 知晓云 (trade_no,
/// transaction_no) faces show, each landing on that payment and no other.
fn search_finds_cashier_and_hserve_payments(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("console-search");
    user(&s, &k.app, "viewer@shop.test", Role::Viewer);
    let paid =
        cashier(&s, &k, "pay", json!({"out_trade_no": "till-7", "total_fee": 250, "auth_code": "134567890123456789"}));
    let data = &paid["data"];
    let order_no = data["order_no"].as_str().unwrap_or_else(|| panic!("{paid}"));
    let pay_no = data["pay_no"].as_str().unwrap();
    let (st, session) = hs(
        &s,
        "POST",
        &k.client_id,
        "",
        "/hserve/v2.1/register/username/",
        Some(json!({"username": "alice", "password": "secret-1"})),
    );
    assert_eq!(st, 201, "{session}");
    let token = session["token"].as_str().unwrap();
    let body = json!({"gateway_type": "weixin_tenpay_js", "total_cost": "3.98", "merchandise_description": "描述"});
    let (st, created) = hs(&s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    let (trade_no, transaction_no) =
        (created["trade_no"].as_str().unwrap(), created["transaction_no"].as_str().unwrap());

    let mut viewer = signed_in(&s, &k.app, "viewer@shop.test");
    let cash = format!("/console/test/payments/{order_no}");
    for reference in [pay_no, "till-7"] {
        let page = viewer.get(&format!("/console/test/payments?q={reference}"));
        assert_eq!((page.status, page.header("location")), (303, Some(cash.as_str())), "{reference}");
    }
    let mut found = Vec::new();
    for reference in [trade_no, transaction_no] {
        let page = viewer.get(&format!("/console/test/payments?q={reference}"));
        assert_eq!(page.status, 303, "{reference}: {}", page.body);
        found.push(page.header("location").unwrap().to_string());
    }
    assert_eq!(found[0], found[1]);
    assert_ne!(found[0], cash);
    let page = viewer.get(&found[0]);
    assert!(page.body.contains(trade_no) && page.body.contains("3.98"), "{}", page.body);
    let page = viewer.get("/console/test/payments?q=no-such-number");
    assert_eq!(page.status, 200, "nothing found stays on the list");
}

/// The worker's housekeeping deletes a session left idle past its expiry (and counts it), and only that one.
fn worker_deletes_idle_sessions(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("console-sessions");
    user(&s, &k.app, "viewer@shop.test", Role::Viewer);
    let worker = Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() });
    let _idle = signed_in(&s, &k.app, "viewer@shop.test");
    s.clock.advance(1000);
    let mut busy = signed_in(&s, &k.app, "viewer@shop.test");
    assert_eq!(s.rt.block_on(worker.tick()).unwrap().expired_sessions, 0);
    s.clock.advance(800);
    assert_eq!(s.rt.block_on(worker.tick()).unwrap().expired_sessions, 1, "the first, 30 minutes idle");
    assert_eq!(s.rt.block_on(worker.tick()).unwrap().expired_sessions, 0);
    assert_eq!(busy.get("/console/test/payments").status, 200, "the other one lives on");
}

/// A 知晓云 user of `k` signed up through the /hserve face: its session token.
fn hserve_user(s: &TestServer, k: &Keys, user: &str) -> String {
    let register = Some(json!({"username": user, "password": "secret-1"}));
    let (st, session) = hs(s, "POST", &k.client_id, "", "/hserve/v2.1/register/username/", register);
    assert_eq!(st, 201, "{session}");
    session["token"].as_str().unwrap().to_string()
}

/// A 知晓云 order for `merchandise` made through the /hserve face by the user of `token`; its order id, found as
/// the console's search finds it (by transaction_no).
fn hserve_order(s: &TestServer, k: &Keys, token: &str, merchandise: &str, browser: &mut Browser) -> String {
    let body = json!({"gateway_type": "weixin_tenpay_js", "total_cost": "1.00", "merchandise_description": "商品",
        "merchandise_schema_id": 7, "merchandise_record_id": merchandise});
    let (st, created) = hs(s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    let page = browser.get(&format!("/console/test/payments?q={}", created["transaction_no"].as_str().unwrap()));
    let location = page.header("location").unwrap_or_else(|| panic!("{}", page.body));
    location.rsplit('/').next().unwrap().to_string()
}

/// The order ids a payments page lists, in its order.
fn listed(body: &str) -> Vec<String> {
    body.split("<a href=\"/console/test/payments/").skip(1).map(|s| s.split('"').next().unwrap().to_string()).collect()
}

/// The merchandise filter lists the payments of 知晓云 orders for that merchandise record, newest first, alone or
/// with the other filters, on the page and in its CSV export; another app's records and the other mode's are not
/// seen; a value no record id could be is refused, naming the field.
fn merchandise_filter_lists_its_payments_only(backend: Backend) {
    let s = TestServer::start(backend);
    let (k, theirs) = (s.create_app("console-merch"), s.create_app("console-merch-other"));
    user(&s, &k.app, "viewer@shop.test", Role::Viewer);
    user(&s, &theirs.app, "viewer@theirs.test", Role::Viewer);
    let mut b = signed_in(&s, &k.app, "viewer@shop.test");
    let mut other = signed_in(&s, &theirs.app, "viewer@theirs.test");
    let (alice, bob) = (hserve_user(&s, &k, "alice"), hserve_user(&s, &k, "bob"));
    let first = hserve_order(&s, &k, &alice, "item-a", &mut b);
    s.clock.advance(5);
    let other_item = hserve_order(&s, &k, &bob, "item-b", &mut b);
    s.clock.advance(5);
    let second = hserve_order(&s, &k, &bob, "item-a", &mut b);
    let not_ours = hserve_order(&s, &theirs, &hserve_user(&s, &theirs, "alice"), "item-a", &mut other);
    s.create_order(&k, &k.test, "plain-1", 100, json!({}));

    let all = b.get("/console/test/payments");
    assert_eq!(listed(&all.body).len(), 4, "{}", all.body);
    let page = b.get("/console/test/payments?merchandise=item-a");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(listed(&page.body), [second.clone(), first.clone()], "newest first: {}", page.body);
    assert!(page.body.contains("name=\"merchandise\" type=\"text\" value=\"item-a\""), "{}", page.body);
    assert!(page.body.contains("/console/test/payments.csv?merchandise=item-a"), "{}", page.body);
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-b").body), [other_item]);
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-c").body), Vec::<String>::new());
    // With the order's own filters (the records then joined to their orders) and a time window.
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-a&status=unpaid").body).len(), 2);
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-a&status=paid").body), Vec::<String>::new());
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-a&refund=no&uid=nobody").body).len(), 0);
    let today = b.get("/console/test/payments?merchandise=item-a&from=2000-01-01&to=2099-12-31");
    assert_eq!(listed(&today.body).len(), 2, "{}", today.body);
    assert_eq!(listed(&b.get("/console/test/payments?merchandise=item-a&to=2000-01-01").body).len(), 0);
    // Another app's record for the same merchandise is its own, and test records are not live.
    assert!(!page.body.contains(&not_ours));
    assert_eq!(listed(&other.get("/console/test/payments?merchandise=item-a").body), [not_ours]);
    let live = b.get("/console/live/payments?merchandise=item-a");
    assert!(!live.body.contains(&first) && !live.body.contains(&second), "{}", live.body);

    let csv = b.get("/console/test/payments.csv?merchandise=item-a");
    assert_eq!(csv.status, 200, "{}", csv.body);
    let ids: Vec<&str> = csv.body.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "{}", csv.body);

    // More than a page (20): the next-page link keeps the filter, and the cursor walks the records' index to
    // the end, each payment once, newest first — alone and joined to the orders (status).
    let mut many: Vec<String> = (0..23).map(|_| hserve_order(&s, &k, &alice, "item-many", &mut b)).collect();
    many.reverse();
    for filter in ["merchandise=item-many", "merchandise=item-many&status=unpaid"] {
        let (mut walked, mut path) = (Vec::new(), format!("/console/test/payments?{filter}"));
        loop {
            let page = b.get(&path);
            assert_eq!(page.status, 200, "{path}: {}", page.body);
            walked.extend(listed(&page.body));
            let Some(next) = page.body.split("<p><a href=\"").find(|l| l.contains("after=")) else { break };
            path = next.split('"').next().unwrap().replace("&amp;", "&");
            assert!(path.contains("merchandise=item-many"), "{path}");
        }
        assert_eq!(walked, many, "{filter}");
    }

    let long = "m".repeat(65);
    for bad in [format!("merchandise={long}"), "merchandise=a%01b".into(), "merchandise=a&channel=wx_pub".into()] {
        for path in ["/console/test/payments", "/console/test/payments.csv"] {
            let page = b.get(&format!("{path}?{bad}"));
            assert_eq!(page.status, 400, "{path}?{bad}: {}", page.body);
            assert!(page.body.contains("merchandise"), "{path}?{bad}: {}", page.body);
        }
    }
}
