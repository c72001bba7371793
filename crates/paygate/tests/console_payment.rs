//! The console's payment page beyond the order (issue 13), on SQLite and on PostgreSQL: a pending test-mode charge
//! paid at the sandbox with the page's "pay" button (support may, a viewer may not, CSRF-less posts are refused,
//! a second press finds nothing pending), then the charge's settlement and the order's profit shares on the page,
//! and the pay in the audit log.

mod support;

use paygate_core::console::Role;
use paygate_worker::{Settings, Worker};
use serde_json::{json, Map, Value};
use std::time::Duration;
use support::console::{signed_in, user};
use support::faces::{hs, md5_sign};
use support::{Backend, Keys, TestServer};

both!(sandbox_pay_settlement_and_shares, search_finds_cashier_and_hserve_payments, worker_deletes_idle_sessions);

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
