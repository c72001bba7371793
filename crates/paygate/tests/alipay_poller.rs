//! The channel poller for Alipay (issue 12): payments and refunds pending at Alipay are asked about again on the
//! worker's backoff, against the Alipay simulator in-process. Notifications never reach paygate here: a payment
//! code trade has no notify_url, and QR payments are opened with a `Host` that names a closed port, so the
//! notify_url Alipay is given goes nowhere; only the poller (driven by `Worker::tick` and the test clock) settles
//! things, through the notification paths.

mod support;

use paygate_core::channel_poller::POLL_DELAYS;
use paygate_domain::{Charge, ChargeStatus, Mode, Scope};
use paygate_sim::alipay::config::{AppConfig, SimConfig};
use paygate_sim::alipay::AlipaySim;
use paygate_store::{PollKind, PosRef};
use paygate_worker::{Settings, Sweep, Worker};
use serde_json::{json, Value};
use std::sync::Arc;
use support::faces::md5_sign;
use support::{Backend, Keys, TestServer};

both!(
    poller_settles_a_barcode_wait_without_a_notification,
    poller_finds_a_qr_payment_whose_open_call_timed_out,
    poller_finishes_a_refund_alipay_did_not_confirm,
    poller_fails_a_closed_trade_and_skips_the_sandbox,
    poller_last_look_after_cancel_finds_late_money,
);

const ALIPAY_APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000001";
/// Nothing listens here: notifications sent to it are never delivered.
const DEAD_HOST: &str = "127.0.0.1:9";

struct World {
    s: TestServer,
    sim: Arc<AlipaySim>,
    sim_base: String,
    worker: Worker,
}

fn start(backend: Backend) -> World {
    let s = TestServer::start(backend);
    let pems = support::channels::rsa_pems();
    let app =
        AppConfig { app_id: ALIPAY_APP_ID.into(), app_public_key_pem: pems.1.clone(), seller_id: SELLER_ID.into() };
    let config = SimConfig { apps: vec![app], alipay_private_key_pem: pems.2.clone(), ..SimConfig::default() };
    let sim = AlipaySim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let sim_base = format!("http://{addr}");
    support::channels::set_master_key(&s.app);
    let worker = Worker::new(s.app.clone(), Settings::default());
    let w = World { s, sim, sim_base, worker };
    w.sim_call("/sim/alipay/settings", json!({"notify_time_scale": 1000, "timeout_ms": 100}));
    w
}

impl World {
    fn sim_call(&self, path: &str, body: Value) -> Value {
        support::channels::sim_post(&ureq::agent(), &self.sim_base, path, body)
    }

    fn sim_trade(&self, out_trade_no: &str) -> Value {
        let url = format!("{}/sim/alipay/trades?app_id={ALIPAY_APP_ID}&out_trade_no={out_trade_no}", self.sim_base);
        ureq::get(&url).call().unwrap().into_json().unwrap()
    }

    /// The simulator's notifications about `out_trade_no`.
    fn notifications(&self, out_trade_no: &str) -> Vec<Value> {
        let url = format!("{}/sim/alipay/notifications", self.sim_base);
        let all: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        all["notifications"].as_array().unwrap().iter().filter(|n| n["out_trade_no"] == out_trade_no).cloned().collect()
    }

    fn account(&self, keys: &Keys) {
        let account = json!({"app_id": ALIPAY_APP_ID, "app_private_key": support::channels::rsa_pems().0,
            "alipay_public_key": self.sim.alipay_public_key_pem(), "seller_id": SELLER_ID,
            "gateway_url": format!("{}/gateway.do", self.sim_base)});
        let (status, got) = self.s.put(&keys.test, "/v1/channel_accounts/alipay", account);
        assert_eq!(status, 200, "{got}");
    }

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

    fn charge(&self, keys: &Keys, id: &str) -> Charge {
        self.s.rt.block_on(self.s.app.store.charge(&scope(keys), id)).unwrap().unwrap()
    }

    fn order(&self, keys: &Keys, id: &str) -> Value {
        self.s.get(&keys.test, &format!("/v1/orders/{id}")).1
    }

    fn events(&self, keys: &Keys, kind: &str) -> usize {
        self.s.get(&keys.test, &format!("/v1/events?type={kind}&limit=100")).1["data"].as_array().unwrap().len()
    }

    fn tick(&self) -> Sweep {
        self.s.rt.block_on(self.worker.tick()).unwrap()
    }

    fn schedule(&self, kind: PollKind, id: &str) -> Option<(i64, i64)> {
        self.s.rt.block_on(self.s.app.store.poll_schedule(kind, id)).unwrap()
    }

    fn now(&self) -> i64 {
        self.s.app.now()
    }
}

fn scope(keys: &Keys) -> Scope {
    Scope { app_id: keys.app.clone(), mode: Mode::Test }
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
