//! The channel poller for Alipay (issue 12): payments and refunds pending at Alipay are asked about again on the
//! worker's backoff, against the Alipay simulator in-process. Notifications never reach paygate here: a payment
//! code trade has no notify_url, and QR payments are opened with a `Host` that names a closed port, so the
//! notify_url Alipay is given goes nowhere; only the poller (driven by `Worker::tick` and the test clock) settles
//! things, through the notification paths. Refunds and royalty settlements Alipay never got (20000, a dropped
//! connection) are found missing by their query and sent again unchanged; a settlement whose answer was lost is
//! found by the settle query and never sent twice.

mod support;

#[path = "alipay_world/mod.rs"]
mod alipay_world;

use alipay_world::{scope, World};
use paygate_core::channel_poller::POLL_DELAYS;
use paygate_domain::{Charge, ChargeStatus};
use paygate_store::{PollKind, PosRef};
use serde_json::{json, Value};
use support::faces::md5_sign;
use support::{Backend, Keys, TestServer};

both!(
    poller_settles_a_barcode_wait_without_a_notification,
    poller_finds_a_qr_payment_whose_open_call_timed_out,
    poller_finishes_a_refund_alipay_did_not_confirm,
    poller_fails_a_closed_trade_and_skips_the_sandbox,
    poller_last_look_after_cancel_finds_late_money,
    poller_resolves_a_settle_alipay_did_not_answer,
    poller_resends_a_refund_alipay_never_received,
    poller_cancels_a_code_payment_past_the_wait,
);

/// Nothing listens here: notifications sent to it are never delivered.
const DEAD_HOST: &str = "127.0.0.1:9";

fn start(backend: Backend) -> World {
    let w = alipay_world::start(backend);
    w.sim_call("/sim/alipay/settings", json!({"timeout_ms": 100}));
    w
}

trait Poller {
    fn pay_qr(&self, keys: &Keys, no: &str, amount: i64) -> (String, u16, Vec<Charge>);
}

impl Poller for World {
    /// Pays a new order with alipay_qr, the request's `Host` naming a dead port (so does the notify_url):
    /// (order id, the pay call's status, the order's charges).
    fn pay_qr(&self, keys: &Keys, no: &str, amount: i64) -> (String, u16, Vec<Charge>) {
        let order = self.s.create_order(keys, &keys.test, no, amount, json!({}));
        let id = order["id"].as_str().unwrap().to_string();
        let body = Some(json!({"channel": "alipay_qr"}).to_string());
        let path = format!("/v1/orders/{id}/pay");
        let (status, _) = self.s.call("POST", &keys.test, &path, body, &[("host", DEAD_HOST)]);
        let charges = self.s.rt.block_on(self.s.app.store.charges_of_order(&scope(keys), &id)).unwrap();
        (id, status, charges)
    }
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

fn poller_settles_a_barcode_wait_without_a_notification(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll code");
    w.account(&k);
    let code = "280000000000000444";
    w.sim_call("/sim/alipay/codes", json!({"auth_code": code, "outcome": "WAIT"}));
    let paying = cashier(&w.s, &k, "pay", json!({"out_trade_no": "poll-code", "total_fee": 300, "auth_code": code}));
    assert_eq!(paying["data"]["status"], "PAYING", "{paying}");
    let by = PosRef::PayNo(paying["data"]["pay_no"].as_str().unwrap().to_string());
    let record = w.s.rt.block_on(w.s.app.store.pos_record(&scope(&k), &by)).unwrap().unwrap();
    let (ch, no, order_id) =
        (record.charge.id.clone(), record.charge.channel_order_no.clone(), record.order.id.clone());
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[0], 0)), "scheduled at WAIT");

    // Not due yet; then due while the payer still confirms: asked, still pending, nothing changes.
    assert_eq!(w.tick().polled, 0);
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 0), "{sweep:?}");
    assert_eq!(w.sim_trade(&no)["trade_status"], "WAIT_BUYER_PAY");
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[1], 1)));
    assert_eq!(w.order(&k, &order_id)["status"], "created");

    // The payer pays; no notification comes (the code payment names no notify_url); the next round settles it.
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no}));
    assert_eq!(w.sim_trade(&no)["trade_status"], "TRADE_SUCCESS");
    assert!(w.notifications(&no).is_empty(), "{:?}", w.notifications(&no));
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &order_id)["status"], "paid");
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let charge = w.charge(&k, &ch);
    assert_eq!(charge.transaction_no.as_deref(), w.sim_trade(&no)["trade_no"].as_str());
    let kept = charge.notification.expect("the query's answer is kept");
    assert_eq!(kept["trade_status"], "TRADE_SUCCESS");
    assert_eq!(w.schedule(PollKind::Charge, &ch), None, "a final answer ends the polling");
    w.s.clock.advance(3600);
    assert_eq!(w.tick().polled, 0, "nothing left to ask");
    assert_eq!(w.events(&k, "order.succeeded"), 1, "settled once");

    // Refunding it reaches Alipay (a scanned code is refunded where it was paid), at once (fund_change=Y).
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{order_id}/order_refunds"), json!({"amount": 50}));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["data"][0]["status"], "succeeded", "{r}");
    assert_eq!(w.sim_trade(&no)["refunded"], "0.50");
}

fn poller_finds_a_qr_payment_whose_open_call_timed_out(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll qr");
    w.account(&k);
    // The precreate is carried out at Alipay, then the connection drops: no credential, the charge stays pending.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.precreate", "kind": "timeout"}));
    let (id, status, charges) = w.pay_qr(&k, "poll-qr", 1200);
    assert!(status >= 400, "the pay call reports no answer: {status}");
    assert_eq!(charges.len(), 1);
    let (ch, no) = (charges[0].id.clone(), charges[0].channel_order_no.clone());
    assert_eq!(charges[0].status, ChargeStatus::Pending);
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[0], 0)), "scheduled without answer");

    // The buyer pays; the notification goes to a dead address and is never delivered.
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no}));
    support::channels::wait_for("the notification to be tried", || {
        w.notifications(&no).iter().any(|n| n["attempts"].as_u64() >= Some(1))
    });
    assert!(w.notifications(&no).iter().all(|n| n["delivered"] == false));
    assert_eq!(w.order(&k, &id)["status"], "created");

    // A failed query (20000) changes nothing: the next round asks again.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.query", "kind": "20000", "count": 1}));
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 1), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "created");
    assert_eq!(w.charge(&k, &ch).status, ChargeStatus::Pending);
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[1], 1)));

    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "paid");
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    assert_eq!(w.charge(&k, &ch).transaction_no.as_deref(), w.sim_trade(&no)["trade_no"].as_str());
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);
}

fn poller_finishes_a_refund_alipay_did_not_confirm(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll refund");
    w.account(&k);
    let (id, status, charges) = w.pay_qr(&k, "poll-refund", 1000);
    assert_eq!(status, 200);
    let no = charges[0].channel_order_no.clone();
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": no}));
    w.s.clock.advance(POLL_DELAYS[0]);
    assert_eq!(w.tick().polled, 1);
    assert_eq!(w.order(&k, &id)["status"], "paid");

    // The refund is carried out, its answer never comes (so no fund_change=Y): pending, on the schedule; its
    // notification goes to the dead address too.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.refund", "kind": "timeout", "count": 1}));
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 250}));
    assert_eq!(status, 200, "{r}");
    let rid = r["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(r["data"][0]["status"], "pending", "{r}");
    assert_eq!(w.sim_trade(&no)["refunded"], "2.50");
    assert_eq!(w.schedule(PollKind::Refund, &rid), Some((w.now() + POLL_DELAYS[0], 0)));
    let refund_status = || w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"].clone();

    // The refund query fails (20000): still pending, asked again later.
    w.sim_call(
        "/sim/alipay/faults",
        json!({"method": "alipay.trade.fastpay.refund.query", "kind": "20000", "count": 1}),
    );
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 0), "{sweep:?}");
    assert_eq!(refund_status(), "pending");
    assert_eq!(w.schedule(PollKind::Refund, &rid), Some((w.now() + POLL_DELAYS[1], 1)));

    // REFUND_SUCCESS with the refund's amount: finished through the refund notification's path, once.
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(refund_status(), "succeeded");
    assert_eq!(w.order(&k, &id)["amount_refunded"], 250);
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    assert_eq!(w.schedule(PollKind::Refund, &rid), None);
    w.s.clock.advance(3600);
    assert_eq!(w.tick().polled, 0);
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
}

fn poller_fails_a_closed_trade_and_skips_the_sandbox(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll closed");
    w.account(&k);
    let (id, status, charges) = w.pay_qr(&k, "poll-closed", 500);
    assert_eq!(status, 200);
    let (ch, no) = (charges[0].id.clone(), charges[0].channel_order_no.clone());

    // Not scanned yet (Alipay does not know the trade): pending.
    w.s.clock.advance(POLL_DELAYS[0]);
    assert_eq!(w.tick().polled, 0);
    assert_eq!(w.charge(&k, &ch).status, ChargeStatus::Pending);

    // The buyer scans, then gives up: TRADE_CLOSED fails the charge; the order can be paid again.
    w.sim_call("/sim/alipay/scan", json!({"out_trade_no": no}));
    w.sim_call("/sim/alipay/fail", json!({"out_trade_no": no}));
    assert_eq!(w.sim_trade(&no)["trade_status"], "TRADE_CLOSED");
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    let charge = w.charge(&k, &ch);
    assert_eq!(charge.status, ChargeStatus::Failed);
    assert_eq!(charge.failure_code.as_deref(), Some("alipay_trade_closed"));
    assert_eq!(w.order(&k, &id)["status"], "created");
    assert_eq!(w.events(&k, "order.succeeded"), 0);
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);

    // Without an Alipay account, alipay_qr is the sandbox's: never scheduled.
    let sandbox = w.s.create_app("alipay poll sandbox");
    let (_, status, charges) = w.pay_qr(&sandbox, "poll-sandbox", 500);
    assert_eq!(status, 200);
    assert_eq!(w.schedule(PollKind::Charge, &charges[0].id), None);
}

fn poller_last_look_after_cancel_finds_late_money(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll late");
    w.account(&k);
    let (paid_id, status, paid) = w.pay_qr(&k, "poll-late", 700);
    assert_eq!(status, 200);
    let (unpaid_id, status, unpaid) = w.pay_qr(&k, "poll-unpaid", 800);
    assert_eq!(status, 200);
    // Canceled here before the buyer scanned (Alipay does not know the trades yet: nothing to close there).
    for id in [&paid_id, &unpaid_id] {
        let (status, canceled) = w.s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
        assert_eq!(status, 200, "{canceled}");
    }
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": paid[0].channel_order_no}));

    // The last look at each closed charge: the paid one is late money (never a sale), the other stays closed;
    // both schedules end.
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (2, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &paid_id)["status"], "paid_after_close");
    assert_eq!(w.events(&k, "order.paid_after_close"), 1);
    assert_eq!(w.events(&k, "order.succeeded"), 0);
    assert_eq!(w.charge(&k, &unpaid[0].id).status, ChargeStatus::Closed);
    assert_eq!(w.order(&k, &unpaid_id)["status"], "canceled");
    for charge in [&paid[0], &unpaid[0]] {
        assert_eq!(w.schedule(PollKind::Charge, &charge.id), None);
    }
}

/// An order paid by alipay_qr and settled through the poller: (order id, out_trade_no).
fn paid_order(w: &World, k: &Keys, no: &str, amount: i64) -> (String, String) {
    let (id, status, charges) = w.pay_qr(k, no, amount);
    assert_eq!(status, 200);
    let out_trade_no = charges[0].channel_order_no.clone();
    w.sim_call("/sim/alipay/pay", json!({"out_trade_no": out_trade_no}));
    w.s.clock.advance(POLL_DELAYS[0]);
    assert_eq!(w.tick().polled, 1);
    assert_eq!(w.order(k, &id)["status"], "paid");
    (id, out_trade_no)
}

fn poller_resolves_a_settle_alipay_did_not_answer(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll settle");
    w.account(&k);
    let (id, no) = paid_order(&w, &k, "poll-settle", 1000);
    let url = format!("/v1/orders/{id}/profit_sharings");
    let share = |n: &str| {
        let receivers = json!([{"type": "userId", "account": "2088000000000002", "amount": 100, "description": n}]);
        let (status, got) = w.s.post(&k.test, &url, json!({"type": "alipay", "receivers": receivers}));
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["status"], "pending", "no answer is no result: {got}");
        got["id"].as_str().unwrap().to_string()
    };
    let stored = |sid: &str| w.s.rt.block_on(w.s.app.store.share(&scope(&k), sid)).unwrap().unwrap();
    let settles = || w.sim_trade(&no)["settles"].as_array().unwrap().len();

    // Settled at Alipay, the answer lost: pending (not failed), on the schedule; the query finds it.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.order.settle", "kind": "timeout"}));
    let first = share("carried out");
    assert_eq!(settles(), 1);
    assert_eq!(w.schedule(PollKind::Share, &first), Some((w.now() + POLL_DELAYS[0], 0)));
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    let done = stored(&first);
    assert_eq!(done.status, paygate_domain::shares::ShareStatus::Succeeded);
    assert_eq!(done.channel_order_no.as_deref(), Some(done.out_order_no.as_str()));
    assert_eq!(settles(), 1, "found by the query, not sent again");
    assert_eq!(w.schedule(PollKind::Share, &first), None);

    // Never reached Alipay: the query fails once (asked again), then says there is no such settlement; the
    // same settlement is sent again and made.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.order.settle", "kind": "drop"}));
    let second = share("lost");
    assert_eq!(settles(), 1);
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.order.settle.query", "kind": "20000"}));
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 1), "{sweep:?}");
    assert_eq!(stored(&second).status, paygate_domain::shares::ShareStatus::Pending);
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(stored(&second).status, paygate_domain::shares::ShareStatus::Succeeded);
    assert_eq!(settles(), 2);
    assert_eq!(w.sim_trade(&no)["settled"], "2.00");

    // Lost, and Alipay refuses it when sent again: failed, its reservation released (shared again at once).
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.order.settle", "kind": "drop"}));
    let third = share("refused");
    w.sim_call(
        "/sim/alipay/faults",
        json!({"method": "alipay.trade.order.settle", "kind": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}),
    );
    w.s.clock.advance(POLL_DELAYS[0]);
    assert_eq!(w.tick().polled, 1);
    let failed = stored(&third);
    assert_eq!(failed.status, paygate_domain::shares::ShareStatus::Failed);
    assert!(failed.failure_msg.as_deref().unwrap_or("").contains("alipay_acq_trade_status_error"), "{failed:?}");
    assert_eq!(w.events(&k, "profit_sharing.failed"), 1);
    assert_eq!(w.events(&k, "profit_sharing.succeeded"), 2);
    let receivers = json!([{"type": "userId", "account": "2088000000000002", "amount": 100, "description": "again"}]);
    let (status, got) = w.s.post(&k.test, &url, json!({"type": "alipay", "receivers": receivers}));
    assert_eq!((status, got["status"].as_str()), (200, Some("succeeded")), "{got}");
    assert_eq!(w.sim_trade(&no)["settled"], "3.00");
}

fn poller_resends_a_refund_alipay_never_received(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll resend");
    w.account(&k);
    let (id, no) = paid_order(&w, &k, "poll-resend", 1000);
    let refund = |amount: i64| {
        let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": amount}));
        assert_eq!(status, 200, "{r}");
        r["data"][0].clone()
    };
    let status_of = |rid: &str| w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"].clone();

    // 20000: Alipay did nothing. Pending; the refund query says there is no such refund; sent again with the same
    // out_request_no, it is made (once).
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.refund", "kind": "20000"}));
    let r = refund(300);
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["status"], "pending", "{r}");
    assert_eq!(w.sim_trade(&no)["refunded"], "0.00");
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(status_of(&rid), "succeeded");
    assert_eq!(w.sim_trade(&no)["refunded"], "3.00");
    assert_eq!(w.sim_trade(&no)["refunds"].as_array().map(Vec::len), Some(1), "{}", w.sim_trade(&no));
    assert_eq!(w.order(&k, &id)["amount_refunded"], 300);
    assert_eq!(w.schedule(PollKind::Refund, &rid), None);

    // No answer at all (dropped before Alipay): same path. The resend is refused outright this time: the refund
    // fails and its amount is refundable again.
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.refund", "kind": "drop"}));
    let r = refund(700);
    let rid = r["id"].as_str().unwrap().to_string();
    assert_eq!(r["status"], "pending", "{r}");
    w.sim_call(
        "/sim/alipay/faults",
        json!({"method": "alipay.trade.refund", "kind": "40004", "sub_code": "ACQ.TRADE_STATUS_ERROR"}),
    );
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(status_of(&rid), "failed");
    assert_eq!(w.order(&k, &id)["amount_refunded"], 300);
    assert_eq!(w.events(&k, "refund.failed"), 1);
    assert_eq!(w.schedule(PollKind::Refund, &rid), None);
    let again = refund(700);
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(w.sim_trade(&no)["refunded"], "10.00");

    // ACQ.SYSTEM_ERROR is "send it again", not a refusal: pending.
    let (id2, _) = paid_order(&w, &k, "poll-resend-2", 500);
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.refund", "kind": "40004"}));
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id2}/order_refunds"), json!({"amount": 100}));
    assert_eq!((status, r["data"][0]["status"].as_str()), (200, Some("pending")), "{r}");
}

fn poller_cancels_a_code_payment_past_the_wait(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("alipay poll cancel");
    w.account(&k);
    let code = "280000000000000555";
    w.sim_call("/sim/alipay/codes", json!({"auth_code": code, "outcome": "WAIT"}));
    let pay = |no: &str| {
        let paying = cashier(&w.s, &k, "pay", json!({"out_trade_no": no, "total_fee": 300, "auth_code": code}));
        assert_eq!(paying["data"]["status"], "PAYING", "{paying}");
        let by = PosRef::PayNo(paying["data"]["pay_no"].as_str().unwrap().to_string());
        let record = w.s.rt.block_on(w.s.app.store.pos_record(&scope(&k), &by)).unwrap().unwrap();
        (record.charge.id.clone(), record.charge.channel_order_no.clone(), record.order.id.clone())
    };
    let (ch, no, order_id) = pay("cancel-code");

    // Within the wait (30 s): asked, still confirming, left alone.
    for delay in &POLL_DELAYS[..2] {
        w.s.clock.advance(*delay);
        let sweep = w.tick();
        assert_eq!((sweep.polled, sweep.errors), (0, 0), "{sweep:?}");
    }
    assert_eq!(w.sim_trade(&no)["trade_status"], "WAIT_BUYER_PAY");

    // Past it and still waiting: the last query, then alipay.trade.cancel closes it at Alipay; the charge fails
    // (the order can be paid again) and its polling ends.
    w.s.clock.advance(POLL_DELAYS[2]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(w.sim_trade(&no)["trade_status"], "TRADE_CLOSED");
    let charge = w.charge(&k, &ch);
    assert_eq!(charge.status, ChargeStatus::Failed);
    assert_eq!(charge.failure_code.as_deref(), Some("alipay_trade_canceled"));
    assert_eq!(w.order(&k, &order_id)["status"], "created");
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);
    // The payer confirms too late: Alipay refuses to pay a canceled trade.
    let url = format!("{}/sim/alipay/pay", w.sim_base);
    assert!(ureq::post(&url).send_json(json!({"out_trade_no": no})).is_err(), "a closed trade is not paid");

    // The cancel is carried out but its answer is lost: still pending; the next round's query finds the trade
    // closed and fails the charge.
    let (ch, no, _) = pay("cancel-code-2");
    w.sim_call("/sim/alipay/faults", json!({"method": "alipay.trade.cancel", "kind": "timeout"}));
    w.s.clock.advance(30);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 0), "{sweep:?}");
    assert_eq!(w.sim_trade(&no)["trade_status"], "TRADE_CLOSED");
    assert_eq!(w.charge(&k, &ch).status, ChargeStatus::Pending);
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    let charge = w.charge(&k, &ch);
    assert_eq!((charge.status, charge.failure_code.as_deref()), (ChargeStatus::Failed, Some("alipay_trade_closed")));
}
