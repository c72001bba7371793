//! The channel poller (issue 11): payments and refunds pending at WeChat Pay are asked about again on a backoff by
//! the worker, against the WeChat simulator in-process. The simulator's notifications are held back (a
//! `reorder_notify` fault with a long hold) so only the poller can settle things; what it records goes through the
//! notification paths (a later real notification changes nothing; a success for a canceled order is late money).

mod support;

#[path = "wechat_world/mod.rs"]
mod wechat_world;

use paygate_core::channel_poller::POLL_DELAYS;
use paygate_domain::{ChargeStatus, Mode, Scope};
use paygate_store::PollKind;
use serde_json::{json, Value};
use support::faces::md5_sign;
use support::{Backend, Keys};
use wechat_world::{scope, start, World};

both!(
    poller_settles_a_payment_whose_notification_is_held,
    poller_waits_out_userpaying_and_failed_queries,
    poller_finishes_processing_refunds,
    poller_late_payment_after_cancel_goes_paid_after_close,
    expiry_closes_notpay_at_wechat_and_ends_the_polling,
    sandbox_charges_are_not_polled,
    two_nodes_never_claim_the_same_round,
    cashier_wechat_codes_pay_through_micropay,
);

fn poller_settles_a_payment_whose_notification_is_held(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("poll v2");
    let (mch, appid) = ("1900000201", "wx2421b1c4370ec501");
    w.merchant(&k, mch, appid, false);
    let (id, ch, no) = w.qr_order(&k, "poll-1", 1000, json!({}));
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[0], 0)), "scheduled at open");

    w.hold_next_notification();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "SUCCESS");
    // Not due yet: nothing is asked, nothing changes.
    assert_eq!(w.tick().polled, 0);
    assert_eq!(w.order(&k, &id)["status"], "created");

    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    let order = w.order(&k, &id);
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope(&k), &ch)).unwrap().unwrap();
    assert_eq!(stored.transaction_no.as_deref(), w.sim_order(mch, &no)["transaction_id"].as_str());
    let kept = stored.notification.expect("the orderquery answer is kept");
    assert_eq!((kept["trade_state"].as_str(), kept["out_trade_no"].as_str()), (Some("SUCCESS"), Some(no.as_str())));
    assert_eq!(w.schedule(PollKind::Charge, &ch), None, "a final answer ends the polling");

    // The real notification arrives after all (released by the next one): acknowledged, nothing changes.
    let (_, _, other) = w.qr_order(&k, "poll-1b", 100, json!({}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": other}));
    w.wait_for("both notifications delivered", || {
        let all: Value =
            ureq::get(&format!("{}/sim/wechat/notifications", w.sim_base)).call().unwrap().into_json().unwrap();
        all["notifications"].as_array().unwrap().iter().filter(|n| n["delivered"] == true).count() >= 2
    });
    assert_eq!(w.events(&k, "order.succeeded"), 2);
    let again = w.s.rt.block_on(w.s.app.store.charge(&scope(&k), &ch)).unwrap().unwrap();
    assert_eq!((again.transaction_no, again.time_paid), (stored.transaction_no, stored.time_paid));
    w.s.clock.advance(3600);
    assert_eq!(w.tick().polled, 0, "nothing left to ask");
}

fn poller_waits_out_userpaying_and_failed_queries(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("poll v3");
    let (mch, appid) = ("1900000202", "wxd678efh567hg6502");
    w.merchant(&k, mch, appid, true);
    let (id, ch, no) = w.qr_order(&k, "poll-2", 2000, json!({}));
    w.sim_call("/sim/wechat/userpaying", json!({"mch_id": mch, "out_trade_no": no}));
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "USERPAYING");

    // USERPAYING: still pending; the next check moves on the backoff.
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "created");
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[1], 1)));

    // The query fails (WeChat's 500 SYSTEM_ERROR): counted, nothing changes, the round after asks again.
    let path = format!("/v3/pay/transactions/out-trade-no/{no}");
    w.sim_call("/sim/wechat/faults", json!({"path": path, "kind": "systemerror"}));
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (0, 1), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "created");
    assert_eq!(w.schedule(PollKind::Charge, &ch), Some((w.now() + POLL_DELAYS[2], 2)));

    w.hold_next_notification();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    w.s.clock.advance(POLL_DELAYS[2]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "paid");
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope(&k), &ch)).unwrap().unwrap();
    assert_eq!(stored.transaction_no.as_deref(), w.sim_order(mch, &no)["transaction_id"].as_str());
    assert_eq!(w.events(&k, "order.succeeded"), 1);
}

fn poller_finishes_processing_refunds(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("poll refunds");
    let (mch, appid) = ("1900000203", "wx2421b1c4370ec503");
    w.merchant(&k, mch, appid, false);
    let (id, _ch, no) = w.qr_order(&k, "poll-3", 1000, json!({}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");

    let refund = |amount: i64| {
        let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": amount}));
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["data"][0]["status"], "pending", "{r}");
        r["data"][0]["id"].as_str().unwrap().to_string()
    };
    let status_of = |rid: &str| w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"].clone();
    let (r1, r2) = (refund(300), refund(200));
    assert!(w.schedule(PollKind::Refund, &r1).is_some() && w.schedule(PollKind::Refund, &r2).is_some());
    let sim_refunds = w.sim_order(mch, &no)["refunds"].clone();
    let out_no = |i: usize| sim_refunds[i]["out_refund_no"].as_str().unwrap().to_string();

    // PROCESSING: the poller leaves both pending.
    w.s.clock.advance(POLL_DELAYS[0]);
    assert_eq!(w.tick().polled, 0);
    assert_eq!((status_of(&r1), status_of(&r2)), (json!("pending"), json!("pending")));

    // WeChat settles one SUCCESS and closes the other; their notifications are held back.
    w.hold_next_notification();
    w.sim_call("/sim/wechat/refunds/settle", json!({"mch_id": mch, "out_refund_no": out_no(0), "status": "SUCCESS"}));
    w.hold_next_notification();
    w.sim_call("/sim/wechat/refunds/settle", json!({"mch_id": mch, "out_refund_no": out_no(1), "status": "CLOSED"}));
    w.s.clock.advance(POLL_DELAYS[1]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (2, 0), "{sweep:?}");
    assert_eq!(sim_refunds[0]["amount"], 300, "{sim_refunds}");
    assert_eq!((status_of(&r1), status_of(&r2)), (json!("succeeded"), json!("failed")));
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    let order = w.order(&k, &id);
    assert_eq!(order["amount_refunded"], 300, "{order}");
    // The closed refund's reservation is released: the remaining 700 can still be refunded.
    refund(700);
    assert_eq!(w.schedule(PollKind::Refund, &r1), None);
    assert_eq!(w.schedule(PollKind::Refund, &r2), None);
}

fn poller_late_payment_after_cancel_goes_paid_after_close(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("poll late");
    let (mch, appid) = ("1900000204", "wx2421b1c4370ec504");
    w.merchant(&k, mch, appid, false);
    let (id, ch, no) = w.qr_order(&k, "poll-4", 700, json!({}));
    // WeChat refuses closeorder in the first 5 minutes: canceled here, still payable there.
    let (status, canceled) = w.s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "NOTPAY");
    w.hold_next_notification();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));

    // The poller's last look at the closed charge finds the money: late money, never a sale.
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "paid_after_close");
    assert_eq!(w.events(&k, "order.paid_after_close"), 1);
    assert_eq!(w.events(&k, "order.succeeded"), 0);
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);
}

fn expiry_closes_notpay_at_wechat_and_ends_the_polling(backend: Backend) {
    let w = start(backend);
    w.sim_call("/sim/wechat/settings", json!({"close_min_age_seconds": 0}));
    let k = w.s.create_app("poll expiry");
    let (mch, appid) = ("1900000205", "wx2421b1c4370ec505");
    w.merchant(&k, mch, appid, false);
    let expire = w.now() + 120;
    let (id, ch, no) = w.qr_order(&k, "poll-5", 900, json!({"time_expire": expire}));
    for delay in &POLL_DELAYS[..3] {
        w.s.clock.advance(*delay);
        assert_eq!(w.tick().polled, 0);
    }
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "NOTPAY");
    w.s.clock.advance(expire - w.now() + 1);
    let sweep = w.tick();
    assert_eq!(sweep.expired_orders, 1, "{sweep:?}");
    assert_eq!(w.order(&k, &id)["status"], "closed");
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "CLOSED", "closed at WeChat by the expiry path");
    // The next round looks once more at the closed charge (CLOSED: nothing to record) and stops.
    w.s.clock.advance(POLL_DELAYS[5]);
    w.tick();
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope(&k), &ch)).unwrap().unwrap();
    assert_eq!(stored.status, ChargeStatus::Closed);
}

fn sandbox_charges_are_not_polled(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("no account");
    let (_, ch, _) = w.qr_order(&k, "poll-6", 100, json!({}));
    assert_eq!(w.schedule(PollKind::Charge, &ch), None);
    w.s.clock.advance(3600);
    assert_eq!(w.tick().polled, 0);
}

fn two_nodes_never_claim_the_same_round(backend: Backend) {
    let w = start(backend);
    let store = w.s.app.store.clone();
    let sc = Scope { app_id: "app_claims".into(), mode: Mode::Test };
    let now = w.now();
    let rt = &w.s.rt;
    for i in 0..20 {
        rt.block_on(store.schedule_poll(PollKind::Charge, &sc, &format!("ch_claim{i}"), now, now)).unwrap();
    }
    // Scheduling again keeps the schedule.
    rt.block_on(store.schedule_poll(PollKind::Charge, &sc, "ch_claim0", now, now + 999)).unwrap();
    let claims = rt.block_on(async {
        let (a, b) = (store.clone(), store.clone());
        let one = tokio::spawn(async move { a.claim_due_polls(now, 100, &POLL_DELAYS).await.unwrap() });
        let two = tokio::spawn(async move { b.claim_due_polls(now, 100, &POLL_DELAYS).await.unwrap() });
        (one.await.unwrap(), two.await.unwrap())
    });
    let mut ids: Vec<String> = claims.0.iter().chain(claims.1.iter()).map(|d| d.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(claims.0.len() + claims.1.len(), 20, "every due row claimed once");
    assert_eq!(ids.len(), 20);
    assert!(claims.0.iter().all(|d| d.next_at == now + POLL_DELAYS[1] && d.attempts == 0));
    assert!(rt.block_on(store.claim_due_polls(now, 100, &POLL_DELAYS)).unwrap().is_empty(), "nothing due twice");
}

/// A signed cashier call (MD5), answered as the face's `result` JSON.
fn cashier(w: &World, k: &Keys, op: &str, biz: Value) -> Value {
    // A second of the business clock per call: two identical envelopes would be a replay.
    w.s.clock.advance(1);
    let (open_app_id, secret, token) = &k.cashier;
    let mut e = json!({"open_app_id": open_app_id, "timestamp": w.s.clock.now_for_tests(), "sign_type": "MD5",
        "token": token, "biz_content": biz.to_string()});
    let fields = e.as_object().unwrap().clone();
    e["sign"] = json!(md5_sign(&fields, secret));
    let (status, raw) = w.s.call("POST", "", &format!("/api/v2/cashier/{op}"), Some(e.to_string()), &[]);
    let result: Value = serde_json::from_str(raw["result"].as_str().unwrap()).unwrap();
    assert_eq!(status, 200, "{op}: {result}");
    result
}

fn cashier_wechat_codes_pay_through_micropay(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("poll cashier");
    let (mch, appid) = ("1900000207", "wx2421b1c4370ec507");
    w.merchant(&k, mch, appid, false);
    let pay = |no: &str, code: &str| {
        let got = cashier(&w, &k, "pay", json!({"out_trade_no": no, "total_fee": 100, "auth_code": code}));
        let pay_no = got["data"]["pay_no"].as_str().unwrap().to_string();
        let record =
            w.s.rt.block_on(w.s.app.store.pos_record(&scope(&k), &paygate_store::PosRef::PayNo(pay_no.clone())));
        let charge = record.unwrap().unwrap().charge;
        (got["data"]["status"].as_str().unwrap().to_string(), pay_no, charge)
    };
    let status = |pay_no: &str, fresh: bool| {
        cashier(&w, &k, "query", json!({"pay_no": pay_no, "is_fresh": fresh}))["data"]["status"].clone()
    };

    // A code WeChat charges at once: paid, with WeChat's transaction id; the order exists at WeChat as MICROPAY.
    let (st, _, charge) = pay("m1", "134567890123456701");
    assert_eq!(st, "PAYED_SUCC");
    let at_wechat = w.sim_order(mch, &charge.channel_order_no);
    assert_eq!(
        (at_wechat["trade_state"].as_str(), at_wechat["trade_type"].as_str()),
        (Some("SUCCESS"), Some("MICROPAY")),
        "{at_wechat}"
    );
    assert_eq!(charge.transaction_no.as_deref(), at_wechat["transaction_id"].as_str());
    assert_eq!(w.schedule(PollKind::Charge, &charge.id), None);

    // USERPAYING: PAYING; `is_fresh` asks WeChat at once (still USERPAYING, then paid).
    w.sim_call("/sim/wechat/codes", json!({"auth_code": "134567890123456702", "outcome": "USERPAYING"}));
    let (st, pay_no, charge) = pay("m2", "134567890123456702");
    assert_eq!(st, "PAYING");
    assert!(w.schedule(PollKind::Charge, &charge.id).is_some(), "on the poller's schedule");
    assert_eq!(status(&pay_no, true), "PAYING");
    w.hold_next_notification();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": charge.channel_order_no}));
    assert_eq!(status(&pay_no, false), "PAYING", "the stored state until asked");
    assert_eq!(status(&pay_no, true), "PAYED_SUCC");

    // USERPAYING resolved by the poller alone.
    w.sim_call("/sim/wechat/codes", json!({"auth_code": "134567890123456703", "outcome": "USERPAYING"}));
    let (st, pay_no, charge) = pay("m3", "134567890123456703");
    assert_eq!(st, "PAYING");
    w.hold_next_notification();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": charge.channel_order_no}));
    w.s.clock.advance(POLL_DELAYS[0]);
    let sweep = w.tick();
    assert_eq!((sweep.polled, sweep.errors), (1, 0), "{sweep:?}");
    assert_eq!(status(&pay_no, false), "PAYED_SUCC");

    // A refused code fails the payment.
    w.sim_call("/sim/wechat/codes", json!({"auth_code": "134567890123456704", "outcome": "FAIL"}));
    let (st, _, charge) = pay("m4", "134567890123456704");
    assert_eq!(st, "PAYED_FAIL");
    assert_eq!(charge.status, ChargeStatus::Failed);

    // A refund of a code payment goes to WeChat (accepted: pending, on the poller's schedule).
    let (_, pay_no, charge) = pay("m5", "134567890123456705");
    cashier(&w, &k, "refund", json!({"pay_no": pay_no, "refund_fee": 40}));
    let refunds = w.sim_order(mch, &charge.channel_order_no)["refunds"].clone();
    assert_eq!(
        (refunds[0]["amount"].as_i64(), refunds[0]["status"].as_str()),
        (Some(40), Some("PROCESSING")),
        "{refunds}"
    );
}
