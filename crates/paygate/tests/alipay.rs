//! The Alipay channel end to end (issue 12): paygate's adapter against the Alipay simulator, started in-process
//! from the paygate-sim library on port 0. An Alipay account is set through the API; `/v1` orders pay with
//! alipay_qr, the simulator's payer API pays, its signed form notification reaches `/notify/alipay/…` and settles
//! the order; partial refunds succeed at once (`fund_change=Y`); forged, tampered, wrong-app and wrong-seller
//! notifications are refused and change nothing; a payment after close is paid_after_close; 知晓云 alipay_page
//! pays through the same account.

mod support;

#[path = "alipay_world/mod.rs"]
mod alipay_world;

use alipay_world::{pems, start, start_on, World, ALIPAY_APP_ID, SELLER_ID};
use paygate_channels::alipay::{self, Params, SigningKey};
use paygate_sim::alipay::config::{AppConfig, SimConfig};
use serde_json::{json, Value};
use support::faces::md5_sign;
use support::{Backend, Keys, TestServer};

both!(
    qr_pay_notify_refunds_and_refusals,
    paid_after_close_and_close_before_scan,
    wap_page_app_credentials_and_hserve_alipay_page,
    routing_falls_back_without_an_account,
    cashier_alipay_codes_pay_wait_and_fail,
    royalty_through_profit_sharing,
    intent_first_faults_and_a_refund_confirmed_by_notification,
    private_channel_targets_are_refused_by_default,
    adapter_cancel_and_royalty_unbind,
    royalty_relations_through_the_api,
    list_filters_by_channel,
    certificate_mode_pays_and_refunds,
);

/// A payment notification as Alipay builds it, signed with `key`.
fn notice(app_id: &str, seller_id: &str, out_trade_no: &str, total: &str, key: &SigningKey) -> Params {
    let mut p: Params = [
        ("notify_time", "2026-11-30 23:00:00"),
        ("notify_type", "trade_status_sync"),
        ("notify_id", "ac05099524730693a8b330c5ecf72da9786"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("app_id", app_id),
        ("seller_id", seller_id),
        ("buyer_id", "2088102122524333"),
        ("trade_no", "2026113022001400000000000001"),
        ("out_trade_no", out_trade_no),
        ("trade_status", "TRADE_SUCCESS"),
        ("total_amount", total),
        ("receipt_amount", total),
        ("gmt_payment", "2026-11-30 22:59:58"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    alipay::sign_notify(&mut p, key).unwrap();
    p
}

fn qr_pay_notify_refunds_and_refusals(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay qr");
    w.account(&k);
    let (id, no, charge) = w.pay(&k, "qr-1", 1000, "alipay_qr");
    let qr = charge["credential"]["alipay_qr"].as_str().unwrap();
    assert!(qr.starts_with(&format!("{}/sim/alipay/qr/", w.sim_base)), "{charge}");
    assert_eq!(w.sim_trade(&no)["total_amount"], "10.00");
    assert_eq!(w.sim_trade(&no)["trade_status"], "WAIT_BUYER_PAY");
    assert!(w.sim_trade(&no)["notify_url"].as_str().unwrap().ends_with(&format!("/notify/alipay/{}/test", k.app)));

    // Forged, tampered, wrong amount, wrong app, wrong seller, not a form: `failure` with a 4xx, nothing changes.
    let alipay_key = SigningKey::from_pem(&pems().2).unwrap();
    let forger = SigningKey::from_pem(&pems().0).unwrap();
    let mut tampered = notice(ALIPAY_APP_ID, SELLER_ID, &no, "10.00", &alipay_key);
    tampered.insert("total_amount".into(), "0.01".into());
    let mut unsigned = notice(ALIPAY_APP_ID, SELLER_ID, &no, "10.00", &alipay_key);
    unsigned.remove("sign");
    for (why, body) in [
        ("forged", alipay::encode_form(&notice(ALIPAY_APP_ID, SELLER_ID, &no, "10.00", &forger))),
        ("tampered amount", alipay::encode_form(&tampered)),
        ("unsigned", alipay::encode_form(&unsigned)),
        ("signed, wrong amount", alipay::encode_form(&notice(ALIPAY_APP_ID, SELLER_ID, &no, "0.01", &alipay_key))),
        ("wrong app_id", alipay::encode_form(&notice("2021000000000999", SELLER_ID, &no, "10.00", &alipay_key))),
        ("wrong seller", alipay::encode_form(&notice(ALIPAY_APP_ID, "2088000000000999", &no, "10.00", &alipay_key))),
        ("unknown trade", alipay::encode_form(&notice(ALIPAY_APP_ID, SELLER_ID, "nope", "10.00", &alipay_key))),
        ("not a form", "a=%zz".to_string()),
    ] {
        let (status, text) = w.notify(&k, &body);
        assert!((400..500).contains(&status), "{why}: {status} {text}");
        assert_eq!(text, "failure", "{why}");
    }
    assert_eq!(w.order(&k, &id)["status"], "created");
    assert_eq!(w.events(&k, "order.succeeded"), 0);
    let url = format!("{}/notify/alipay/app_nope/test", w.s.base);
    let body = alipay::encode_form(&notice(ALIPAY_APP_ID, SELLER_ID, &no, "10.00", &alipay_key));
    assert_eq!(ureq::post(&url).send_string(&body).unwrap_err().into_response().unwrap().status(), 404);

    // The buyer pays at the simulator; its signed notification settles the order, once.
    w.sim_call("/sim/alipay/faults", json!({"kind": "duplicate_notify"}));
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    w.wait_for("the notifications to be acknowledged", || w.all_notifications_acknowledged());
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let stored = w.stored(&k, charge["id"].as_str().unwrap());
    let trade_no = w.sim_trade(&no)["trade_no"].as_str().unwrap().to_string();
    assert_eq!(stored.transaction_no.as_deref(), Some(trade_no.as_str()));
    let kept = stored.notification.expect("the real notification is kept");
    assert_eq!(
        (kept["out_trade_no"].as_str(), kept["trade_status"].as_str()),
        (Some(no.as_str()), Some("TRADE_SUCCESS"))
    );
    assert!(kept.get("sign").is_none());

    // A duplicate (correctly signed): `success`, nothing changes.
    let (status, text) = w.notify(&k, &body);
    assert_eq!((status, text.as_str()), (200, "success"));
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    assert_eq!(w.stored(&k, &stored.id).transaction_no, stored.transaction_no);

    // Partial refunds: each its own out_request_no; fund_change=Y, so succeeded at once.
    let mut refund_ids = Vec::new();
    for amount in [300, 200] {
        let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": amount}));
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["data"][0]["status"], "succeeded", "{r}");
        refund_ids.push(r["data"][0]["id"].as_str().unwrap().to_string());
    }
    let trade = w.sim_trade(&no);
    let refunds = trade["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 2, "{trade}");
    assert_ne!(refunds[0]["out_request_no"], refunds[1]["out_request_no"]);
    assert_eq!(
        (refunds[0]["refund_amount"].as_str(), refunds[1]["refund_amount"].as_str()),
        (Some("3.00"), Some("2.00"))
    );
    assert_eq!(trade["refunded"], "5.00");
    assert_eq!(w.order(&k, &id)["amount_refunded"], 500);
    assert_eq!(w.events(&k, "refund.succeeded"), 2);
    // Alipay's refund notifications are acknowledged and change nothing more.
    w.wait_for("the refund notifications to be acknowledged", || w.all_notifications_acknowledged());
    assert_eq!(w.events(&k, "refund.succeeded"), 2);
    assert_eq!(w.order(&k, &id)["amount_refunded"], 500);
}

fn paid_after_close_and_close_before_scan(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay late");
    w.account(&k);

    // Never scanned: Alipay does not know the trade (ACQ.TRADE_NOT_EXIST), so there is nothing to close.
    let (id, _no, _) = w.pay(&k, "unscanned-1", 500, "alipay_qr");
    let (status, canceled) = w.s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
    assert_eq!(status, 200, "{canceled}");

    // Scanned, then closed at Alipay with the order; the buyer pays anyway: paid_after_close.
    let (id, no, _) = w.pay(&k, "late-1", 700, "alipay_qr");
    w.sim_call("/sim/alipay/scan", json!({"out_trade_no": no}));
    let (status, canceled) = w.s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(w.sim_trade(&no)["trade_status"], "TRADE_CLOSED", "closed at Alipay too");
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no, "late": true}));
    w.wait_for("the late payment", || w.order(&k, &id)["status"] == "paid_after_close");
    assert_eq!(w.events(&k, "order.paid_after_close"), 1);
    assert_eq!(w.events(&k, "order.succeeded"), 0);
}

fn wap_page_app_credentials_and_hserve_alipay_page(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay faces");
    w.account(&k);
    let gateway = format!("{}/gateway.do?", w.sim_base);
    // wap and page pay: the signed gateway URL; the simulator's cashier page opens it (its signature checks out).
    for (no, channel, method) in
        [("wap-1", "alipay_wap", "alipay.trade.wap.pay"), ("pc-1", "alipay_pc_direct", "alipay.trade.page.pay")]
    {
        let (id, out_trade_no, charge) = w.pay(&k, no, 100, channel);
        let url = charge["credential"][channel].as_str().unwrap();
        assert!(url.starts_with(&gateway) && url.contains(&format!("method={method}")), "{charge}");
        let page = ureq::get(url).call().unwrap();
        assert_eq!(page.status(), 200);
        w.sim_call("/sim/alipay/pay", json!({"out_trade_no": out_trade_no}));
        w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    }
    // App pay: the order string, signed.
    let (_, _, charge) = w.pay(&k, "app-1", 100, "alipay");
    let info = charge["credential"]["alipay"]["orderInfo"].as_str().unwrap();
    let params = alipay::parse_form(info.as_bytes()).unwrap();
    let app_key = paygate_channels::alipay::alipay_public_key(&pems().1).unwrap();
    alipay::verify_request(&params, &app_key).unwrap();
    assert_eq!(params["method"], "alipay.trade.app.pay");

    // 知晓云: alipay_page pays through the same account.
    let (st, session) = support::faces::hs(
        &w.s,
        "POST",
        &k.client_id,
        "",
        "/hserve/v2.1/register/username/",
        Some(json!({"username": "ali-user", "password": "secret-1"})),
    );
    assert_eq!(st, 201, "{session}");
    let token = session["token"].as_str().unwrap();
    let body = json!({"gateway_type": "alipay_page", "total_cost": "2.00", "merchandise_description": "d"});
    let (st, created) =
        support::faces::hs(&w.s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    let url = created["payment_url"].as_str().unwrap_or_default();
    assert!(url.starts_with(&gateway) && url.contains("alipay.trade.page.pay"), "{created}");
    let trade_no = created["trade_no"].as_str().unwrap().to_string();
    assert_eq!(ureq::get(url).call().unwrap().status(), 200);
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": trade_no}));
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    w.wait_for("the 知晓云 payment", || {
        let charge = w.s.rt.block_on(w.s.app.store.find_charge(&scope, &trade_no)).unwrap().unwrap();
        charge.status == paygate_domain::ChargeStatus::Succeeded
    });
}

fn routing_falls_back_without_an_account(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("no alipay account");
    let order = w.s.create_order(&k, &k.test, "sbx-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let (status, paid) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    assert_eq!(status, 200, "{paid}");
    let url = paid["charges"]["data"][0]["credential"]["alipay_qr"].as_str().unwrap();
    assert!(url.contains("/sandbox/charges/"), "{url}");
    let (status, text) = w.notify(&k, "a=b");
    assert_eq!((status, text.as_str()), (404, "failure"));
    let url = format!("{}/notify/alipay/{}/test", w.s.base, k.app);
    let refused = ureq::get(&url).call().unwrap_err().into_response().unwrap();
    assert_eq!((refused.status(), refused.into_string().unwrap().as_str()), (405, "failure"));
}

/// A signed 酷点 cashier call (docs/cashier.md): the parsed `result`.
fn cashier(s: &TestServer, k: &Keys, op: &str, biz: Value) -> Value {
    let (open_app_id, secret, token) = &k.cashier;
    let mut e = json!({"open_app_id": open_app_id, "timestamp": s.clock.now_for_tests(), "sign_type": "MD5",
        "token": token, "biz_content": biz.to_string()});
    let fields = e.as_object().unwrap().clone();
    e["sign"] = json!(md5_sign(&fields, secret));
    let (status, raw) = s.call("POST", "", &format!("/api/v2/cashier/{op}"), Some(e.to_string()), &[]);
    let result = serde_json::from_str(raw["result"].as_str().unwrap_or_else(|| panic!("no result: {raw}"))).unwrap();
    assert_eq!(status, 200, "{result}");
    result
}

fn cashier_alipay_codes_pay_wait_and_fail(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay codes");
    w.account(&k);
    let (wait, pay, fail) = ("280000000000000111", "280000000000000222", "280000000000000333");
    for (code, outcome) in [(wait, "WAIT"), (pay, "PAY"), (fail, "FAIL")] {
        w.sim_call("/sim/alipay/codes", json!({"auth_code": code, "outcome": outcome}));
    }

    // Paid at once: alipay.trade.pay answers TRADE_SUCCESS, signed.
    let paid = cashier(&w.s, &k, "pay", json!({"out_trade_no": "code-pay", "total_fee": 150, "auth_code": pay}));
    assert_eq!(
        (paid["data"]["status"].as_str(), paid["data"]["payment_type"].as_str()),
        (Some("PAYED_SUCC"), Some("ALIPAY")),
        "{paid}"
    );
    assert_eq!(w.events(&k, "order.succeeded"), 1);

    // The payer confirms on the phone (10003): PAYING, also when asked fresh while Alipay still waits.
    let paying = cashier(&w.s, &k, "pay", json!({"out_trade_no": "code-wait", "total_fee": 100, "auth_code": wait}));
    assert_eq!(paying["data"]["status"], "PAYING", "{paying}");
    let pay_no = paying["data"]["pay_no"].clone();
    let fresh = cashier(&w.s, &k, "query", json!({"pay_no": pay_no, "is_fresh": true}));
    assert_eq!(fresh["data"]["status"], "PAYING", "{fresh}");
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let by = paygate_store::PosRef::PayNo(pay_no.as_str().unwrap().to_string());
    let record = w.s.rt.block_on(w.s.app.store.pos_record(&scope, &by)).unwrap().unwrap();
    assert_eq!(w.sim_trade(&record.charge.channel_order_no)["trade_status"], "WAIT_BUYER_PAY");
    // The payer confirms; the stored answer stays PAYING until asked fresh, which asks Alipay.
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": record.charge.channel_order_no}));
    let stale = cashier(&w.s, &k, "query", json!({"pay_no": pay_no}));
    assert_eq!(stale["data"]["status"], "PAYING", "{stale}");
    w.s.clock.advance(1); // another envelope than the first fresh query's (replays are refused)
    let fresh = cashier(&w.s, &k, "query", json!({"pay_no": pay_no, "is_fresh": true}));
    assert_eq!(fresh["data"]["status"], "PAYED_SUCC", "{fresh}");
    let trade_no = w.sim_trade(&record.charge.channel_order_no)["trade_no"].as_str().unwrap().to_string();
    let charge = w.s.rt.block_on(w.s.app.store.charge(&scope, &record.charge.id)).unwrap().unwrap();
    assert_eq!(charge.transaction_no.as_deref(), Some(trade_no.as_str()));
    assert_eq!(w.events(&k, "order.succeeded"), 2);

    // Refused by Alipay: PAYED_FAIL.
    let failed = cashier(&w.s, &k, "pay", json!({"out_trade_no": "code-fail", "total_fee": 100, "auth_code": fail}));
    assert_eq!(failed["data"]["status"], "PAYED_FAIL", "{failed}");
}

fn royalty_through_profit_sharing(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay royalty");
    w.account(&k);
    let order = w.s.create_order(&k, &k.test, "roy-1", 1000, json!({"profit_sharing": true}));
    let id = order["id"].as_str().unwrap().to_string();
    let (status, paid) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    assert_eq!(status, 200, "{paid}");
    let charge = w.stored(&k, paid["charges"]["data"][0]["id"].as_str().unwrap());
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": charge.channel_order_no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");

    // 30 % of 10.00 to a receiver: bound first, then settled at Alipay.
    let receivers = json!([{"type": "userId", "account": "2088000000000002", "amount": 300, "description": "平台"}]);
    let url = format!("/v1/orders/{id}/profit_sharings");
    let (status, share) = w.s.post(&k.test, &url, json!({"type": "alipay", "receivers": receivers}));
    assert_eq!(status, 200, "{share}");
    assert_eq!(share["status"], "succeeded", "{share}");
    let trade = w.sim_trade(&charge.channel_order_no);
    let settles = trade["settles"].as_array().unwrap();
    assert_eq!(settles.len(), 1, "{trade}");
    assert_eq!(settles[0]["receivers"][0]["amount"], "3.00");
    assert_eq!(settles[0]["receivers"][0]["trans_in"], "2088000000000002");

    // Over the cap: refused before Alipay is asked.
    let more = json!([{"type": "userId", "account": "2088000000000002", "amount": 1, "description": "再分"}]);
    let (status, err) = w.s.post(&k.test, &url, json!({"type": "alipay", "receivers": more}));
    assert!((400..500).contains(&status), "{err}");
    assert_eq!(w.sim_trade(&charge.channel_order_no)["settles"].as_array().unwrap().len(), 1);
}

fn charges(w: &World, keys: &Keys, order_id: &str) -> Vec<paygate_domain::Charge> {
    let scope = paygate_domain::Scope { app_id: keys.app.clone(), mode: paygate_domain::Mode::Test };
    w.s.rt.block_on(w.s.app.store.charges_of_order(&scope, order_id)).unwrap()
}

fn intent_first_faults_and_a_refund_confirmed_by_notification(backend: Backend) {
    let w = start(backend);
    w.sim_call("/sim/alipay/settings", json!({"timeout_ms": 100}));
    let k = w.s.create_app("alipay faults");
    w.account(&k);
    let order = w.s.create_order(&k, &k.test, "faults-1", 800, json!({}));
    let id = order["id"].as_str().unwrap().to_string();
    let pay = || w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    use paygate_domain::ChargeStatus;

    // Alipay refuses (a signed 40004): the recorded charge is marked failed.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.precreate", "kind": "40004"}));
    let (status, err) = pay();
    assert_eq!(status, 402, "{err}");
    let recorded = charges(&w, &k, &id);
    assert_eq!(recorded.iter().map(|c| c.status).collect::<Vec<_>>(), [ChargeStatus::Failed]);

    // No answer (made at Alipay, then the connection drops): the charge stays pending.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.precreate", "kind": "timeout"}));
    let (status, err) = pay();
    assert!(status >= 400, "{err}");
    let recorded = charges(&w, &k, &id);
    assert_eq!(recorded.iter().filter(|c| c.status == ChargeStatus::Pending).count(), 1, "{recorded:?}");

    // Paying again supersedes it; this one is paid.
    let (status, paid) = pay();
    assert_eq!(status, 200, "{paid}");
    let charge = w.stored(&k, paid["charges"]["data"][0]["id"].as_str().unwrap());
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": charge.channel_order_no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");

    // The refund is carried out but its answer never comes: pending, until Alipay's refund notification is
    // confirmed by the refund query.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.refund", "kind": "timeout"}));
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 250}));
    assert_eq!(status, 200, "{r}");
    let rid = r["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(w.sim_trade(&charge.channel_order_no)["refunded"], "2.50");
    w.wait_for("the refund to succeed", || {
        w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"] == "succeeded"
    });
    assert_eq!(w.order(&k, &id)["amount_refunded"], 250);
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    w.wait_for("the notifications to be acknowledged", || w.all_notifications_acknowledged());
}

fn private_channel_targets_are_refused_by_default(backend: Backend) {
    // The production policy: the simulator on 127.0.0.1 is a private target, never called.
    let w = start_on(TestServer::start_strict(backend));
    let k = w.s.create_app("strict");
    w.account(&k);
    let order = w.s.create_order(&k, &k.test, "strict-1", 100, json!({}));
    let id = order["id"].as_str().unwrap().to_string();
    let (status, err) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    assert_eq!((status, err["error"]["code"].as_str()), (402, Some("channel_target_refused")), "{err}");
    let recorded = charges(&w, &k, &id);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, paygate_domain::ChargeStatus::Failed, "never sent, so not left pending");
}

fn adapter_cancel_and_royalty_unbind(backend: Backend) {
    use paygate_channels::alipay_pay::Canceled;
    let w = start(backend);
    let k = w.s.create_app("alipay cancel unbind");
    w.account(&k);
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let adapter = w.s.rt.block_on(w.s.app.alipay_adapter(&scope)).unwrap().expect("the account routes to Alipay");

    // alipay.trade.cancel: an unpaid trade is closed; a paid one is refunded in full and closed; one Alipay never
    // had has nothing to cancel; no answer is "cancel again".
    let (_, unpaid_no, unpaid) = w.pay(&k, "cancel-unpaid", 300, "alipay_qr");
    let unpaid = w.stored(&k, unpaid["id"].as_str().unwrap());
    assert_eq!(w.s.rt.block_on(adapter.cancel_code(&unpaid)).unwrap(), Canceled::Closed);
    assert_eq!(w.sim_trade(&unpaid_no)["trade_status"], "TRADE_CLOSED");
    let (id, paid_no, paid) = w.pay(&k, "cancel-paid", 500, "alipay_qr");
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": paid_no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    let paid = w.stored(&k, paid["id"].as_str().unwrap());
    assert_eq!(w.s.rt.block_on(adapter.cancel_code(&paid)).unwrap(), Canceled::Refunded);
    let trade = w.sim_trade(&paid_no);
    assert_eq!((trade["trade_status"].as_str(), trade["refunded"].as_str()), (Some("TRADE_CLOSED"), Some("5.00")));
    let mut unknown = unpaid.clone();
    unknown.channel_order_no = "never-opened-at-alipay".into();
    assert_eq!(w.s.rt.block_on(adapter.cancel_code(&unknown)).unwrap(), Canceled::Closed);
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.cancel", "kind": "20000"}));
    assert!(matches!(w.s.rt.block_on(adapter.cancel_code(&unpaid)).unwrap(), Canceled::Retry { .. }));

    // Royalty relations: bound, then unbound (the simulator's books show both); a bad receiver type is refused.
    let bound = || {
        let config: Value =
            ureq::get(&format!("{}/sim/alipay/config", w.sim_base)).call().unwrap().into_json().unwrap();
        config["apps"][0]["royalty_receivers"].clone()
    };
    let receivers = [("userId", "2088000000000003"), ("loginName", "shop@example.com")];
    w.s.rt.block_on(adapter.royalty_relation(true, &receivers, "bind-1")).unwrap();
    assert_eq!(bound().as_array().map(Vec::len), Some(2), "{}", bound());
    w.s.rt.block_on(adapter.royalty_relation(false, &receivers[..1], "unbind-1")).unwrap();
    assert_eq!(bound(), json!([{"type": "loginName", "account": "shop@example.com"}]));
    let err = w.s.rt.block_on(adapter.royalty_relation(false, &[("nope", "x")], "unbind-2")).unwrap_err();
    assert_eq!(err.code, "channel_refused", "{err:?}");
    assert_eq!(bound().as_array().map(Vec::len), Some(1));
}

fn list_filters_by_channel(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay lists");
    w.account(&k);
    // Two Alipay charges (one paid through the simulator) and a WeChat one (the sandbox: no WeChat account).
    let (paid_id, paid_no, paid) = w.pay(&k, "list-ali-1", 100, "alipay_qr");
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": paid_no}));
    w.wait_for("the order to be paid", || w.order(&k, &paid_id)["status"] == "paid");
    let (_, _, open) = w.pay(&k, "list-ali-2", 200, "alipay_qr");
    let (_, _, wap) = w.pay(&k, "list-ali-3", 300, "alipay_wap");
    let order = w.s.create_order(&k, &k.test, "list-wx-1", 400, json!({}));
    let wx_order = order["id"].as_str().unwrap().to_string();
    let (status, wx) = w.s.post(&k.test, &format!("/v1/orders/{wx_order}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 200, "{wx}");
    let wx = wx["charges"]["data"][0]["id"].as_str().unwrap().to_string();

    let ids = |query: &str| -> Vec<String> {
        let (status, list) = w.s.get(&k.test, &format!("/v1/charges?{query}"));
        assert_eq!(status, 200, "{list}");
        let data = list["data"].as_array().unwrap();
        let mut ids: Vec<String> = data.iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
        ids.sort();
        ids
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let id = |c: &Value| c["id"].as_str().unwrap().to_string();
    assert_eq!(ids("channel=alipay_qr"), sorted(vec![id(&paid), id(&open)]));
    assert_eq!(ids("channel=alipay_wap"), vec![id(&wap)]);
    assert_eq!(ids("channel=wx_pub_qr"), vec![wx.clone()]);
    assert_eq!(ids("channel=alipay_qr&paid=true"), vec![id(&paid)]);
    assert_eq!(ids("channel=alipay_qr&paid=false"), vec![id(&open)]);
    assert_eq!(ids("channel=alipay_pc_direct"), Vec::<String>::new());
    assert_eq!(ids("limit=100").len(), 4, "unfiltered: every charge");
    // Each listed charge says its channel, and the paid Alipay one carries Alipay's trade number.
    let (_, list) = w.s.get(&k.test, "/v1/charges?channel=alipay_qr&paid=true");
    let listed = &list["data"][0];
    assert_eq!(listed["channel"], "alipay_qr");
    assert_eq!(listed["transaction_no"], w.sim_trade(&paid_no)["trade_no"], "{listed}");
}

macro_rules! cert_fixture {
    ($name:literal) => {
        include_str!(concat!("../../paygate-channels/testdata/alipay_cert/", $name))
    };
}

fn certificate_mode_pays_and_refunds(backend: Backend) {
    // The simulator signs with the key inside the Alipay certificate and checks the app's certificate SNs (the
    // values Alipay's SDKs compute for these certificates; see the fixtures' README).
    let s = TestServer::start(backend);
    let app = AppConfig {
        app_id: ALIPAY_APP_ID.into(),
        app_public_key_pem: cert_fixture!("app_public.pem").into(),
        seller_id: SELLER_ID.into(),
    };
    let config = SimConfig {
        apps: vec![app],
        alipay_private_key_pem: cert_fixture!("alipay_private.pem").into(),
        ..SimConfig::default()
    };
    let w = alipay_world::start_with(s, config);
    w.sim_call(
        "/sim/alipay/settings",
        json!({"app_cert_sn": "85a26a69032fe196c796c88a32f1aa94",
            "alipay_root_cert_sn": "986382d059c06b5e6739963e1aedd649",
            "alipay_cert_sn": "4814aa0f6554177f4c7eeb46b1be6db3"}),
    );
    let k = w.s.create_app("alipay cert mode");
    let account = |alipay_cert: &str| {
        json!({"app_id": ALIPAY_APP_ID, "app_private_key": cert_fixture!("app_private.pem"),
            "app_public_cert": cert_fixture!("app.crt"), "alipay_public_cert": alipay_cert,
            "alipay_root_cert": cert_fixture!("alipayRootCert.crt"), "seller_id": SELLER_ID,
            "gateway_url": format!("{}/gateway.do", w.sim_base)})
    };
    let (status, got) =
        w.s.put(&k.test, "/v1/channel_accounts/alipay", account(cert_fixture!("alipayCertPublicKey_RSA2.crt")));
    assert_eq!(status, 200, "{got}");

    // Precreate (the SNs accepted, the answer verified with the certificate's key), pay, notify, refund.
    let (id, no, _) = w.pay(&k, "cert-1", 880, "alipay_qr");
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 80}));
    assert_eq!((status, r["data"][0]["status"].as_str()), (200, Some("succeeded")), "{r}");
    assert_eq!(w.sim_trade(&no)["refunded"], "0.80");

    // The app names another certificate: Alipay refuses the request (a signed 40002), nothing is opened.
    w.sim_call("/sim/alipay/settings", json!({"app_cert_sn": "0123456789abcdef0123456789abcdef"}));
    let order = w.s.create_order(&k, &k.test, "cert-2", 100, json!({}));
    let other = order["id"].as_str().unwrap().to_string();
    let (status, err) = w.s.post(&k.test, &format!("/v1/orders/{other}/pay"), json!({"channel": "alipay_qr"}));
    assert!(status >= 400, "{err}");
    assert!(err.to_string().contains("app-cert-sn"), "{err}");

    // An Alipay certificate that does not chain to the root bundle cannot be set up: the account is refused at use.
    let (status, _) = w.s.put(&k.test, "/v1/channel_accounts/alipay", account(cert_fixture!("forged_chain.crt")));
    assert_eq!(status, 200, "stored as given; checked when the adapter is built");
    let order = w.s.create_order(&k, &k.test, "cert-3", 100, json!({}));
    let third = order["id"].as_str().unwrap().to_string();
    let (status, err) = w.s.post(&k.test, &format!("/v1/orders/{third}/pay"), json!({"channel": "alipay_qr"}));
    assert!(status >= 400, "{err}");
    assert_eq!(err["error"]["code"], "channel_account_invalid", "{err}");
    assert!(err.to_string().contains("does not chain"), "{err}");
}

fn royalty_relations_through_the_api(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay relations");
    w.account(&k);
    let bound = || {
        let config: Value =
            ureq::get(&format!("{}/sim/alipay/config", w.sim_base)).call().unwrap().into_json().unwrap();
        config["apps"][0]["royalty_receivers"].clone()
    };
    let body = json!({"channel": "alipay", "type": "userId", "account": "2088000000000005"});
    let (status, added) = w.s.post(&k.test, "/v1/profit_sharing_receivers", body);
    assert_eq!(status, 200, "{added}");
    assert_eq!((added["type"].as_str(), added["relation_type"].as_str()), (Some("userId"), None), "{added}");
    assert_eq!(bound(), json!([{"type": "userId", "account": "2088000000000005"}]));
    let path = "/v1/profit_sharing_receivers/userId/2088000000000005?channel=alipay";
    let (status, gone) = w.s.call("DELETE", &k.test, path, None, &[]);
    assert_eq!((status, gone["deleted"].as_bool()), (200, Some(true)), "{gone}");
    assert_eq!(bound(), json!([]));

    let refused = |body: Value, param: &str| {
        let (status, r) = w.s.post(&k.test, "/v1/profit_sharing_receivers", body);
        assert_eq!((status, r["error"]["param"].as_str()), (400, Some(param)), "{r}");
    };
    refused(json!({"channel": "alipay", "type": "MERCHANT_ID", "account": "1"}), "type");
    refused(json!({"channel": "alipay", "type": "userId", "account": "a/b"}), "account");
    refused(json!({"channel": "paypal", "type": "userId", "account": "1"}), "channel");
    // Without an Alipay account: the sandbox accepts in test mode; live mode has no channel.
    let other = w.s.create_app("alipay relations, no account");
    let body = json!({"channel": "alipay", "type": "loginName", "account": "shop@example.com"});
    assert_eq!(w.s.post(&other.test, "/v1/profit_sharing_receivers", body.clone()).0, 200);
    let (status, r) = w.s.post(&other.live, "/v1/profit_sharing_receivers", body);
    assert_eq!((status, r["error"]["code"].as_str()), (402, Some("channel_not_configured")), "{r}");
}
