//! The Alipay simulator in-process beside a test server, with one Alipay app set on both sides: shared by the
//! Alipay stories (`#[path]`-included; each test crate declares `mod support`).
#![allow(dead_code)]

use crate::support::{Backend, Keys, TestServer};
use paygate_domain::{Charge, Mode, Scope};
use paygate_sim::alipay::config::{AppConfig, SimConfig};
use paygate_sim::alipay::AlipaySim;
use paygate_store::PollKind;
use paygate_worker::{Settings, Sweep, Worker};
use serde_json::{json, Value};
use std::sync::Arc;

pub const ALIPAY_APP_ID: &str = "2021000000000001";
pub const SELLER_ID: &str = "2088000000000001";

pub fn pems() -> &'static (String, String, String) {
    crate::support::channels::rsa_pems()
}

pub struct World {
    pub s: TestServer,
    pub sim: Arc<AlipaySim>,
    pub sim_base: String,
    /// A worker on the server's app, driven sweep by sweep (`tick`) with the test clock.
    pub worker: Worker,
}

pub fn start(backend: Backend) -> World {
    start_on(TestServer::start(backend))
}

pub fn start_on(s: TestServer) -> World {
    let app =
        AppConfig { app_id: ALIPAY_APP_ID.into(), app_public_key_pem: pems().1.clone(), seller_id: SELLER_ID.into() };
    let config = SimConfig { apps: vec![app], alipay_private_key_pem: pems().2.clone(), ..SimConfig::default() };
    start_with(s, config)
}

/// The simulator as `config` says, beside `s` (whose channel accounts can then be set).
pub fn start_with(s: TestServer, config: SimConfig) -> World {
    let sim = AlipaySim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let sim_base = format!("http://{addr}");
    crate::support::channels::set_master_key(&s.app);
    let worker = Worker::new(s.app.clone(), Settings::default());
    let w = World { s, sim, sim_base, worker };
    w.sim_call("/sim/alipay/settings", json!({"notify_time_scale": 1000}));
    w
}

impl World {
    pub fn sim_call(&self, path: &str, body: Value) -> Value {
        crate::support::channels::sim_post(&ureq::agent(), &self.sim_base, path, body)
    }

    pub fn sim_trade(&self, out_trade_no: &str) -> Value {
        let url = format!("{}/sim/alipay/trades?app_id={ALIPAY_APP_ID}&out_trade_no={out_trade_no}", self.sim_base);
        match ureq::get(&url).call() {
            Ok(r) => r.into_json().unwrap(),
            Err(ureq::Error::Status(_, r)) => r.into_json().unwrap(),
            Err(e) => panic!("{e}"),
        }
    }

    /// The simulator's Alipay account set in paygate (test mode).
    pub fn account(&self, keys: &Keys) {
        let account = json!({"app_id": ALIPAY_APP_ID, "app_private_key": pems().0,
            "alipay_public_key": self.sim.alipay_public_key_pem(), "seller_id": SELLER_ID,
            "gateway_url": format!("{}/gateway.do", self.sim_base)});
        let (status, got) = self.s.put(&keys.test, "/v1/channel_accounts/alipay", account);
        assert_eq!(status, 200, "{got}");
    }

    /// An order paid with `channel`: (order id, the charge's out_trade_no, the charge).
    pub fn pay(&self, keys: &Keys, no: &str, amount: i64, channel: &str) -> (String, String, Value) {
        let order = self.s.create_order(keys, &keys.test, no, amount, json!({}));
        let id = order["id"].as_str().unwrap().to_string();
        let (status, paid) = self.s.post(&keys.test, &format!("/v1/orders/{id}/pay"), json!({"channel": channel}));
        assert_eq!(status, 200, "pay: {paid}");
        let charge = paid["charges"]["data"][0].clone();
        let stored = self.stored(keys, charge["id"].as_str().unwrap());
        assert_eq!(stored.credential, charge["credential"], "the stored credential is Alipay's");
        (id, stored.channel_order_no, charge)
    }

    pub fn stored(&self, keys: &Keys, charge_id: &str) -> paygate_domain::Charge {
        let scope = paygate_domain::Scope { app_id: keys.app.clone(), mode: paygate_domain::Mode::Test };
        self.s.rt.block_on(self.s.app.store.charge(&scope, charge_id)).unwrap().unwrap()
    }

    pub fn order(&self, keys: &Keys, id: &str) -> Value {
        self.s.get(&keys.test, &format!("/v1/orders/{id}")).1
    }

    pub fn wait_for(&self, what: &str, done: impl FnMut() -> bool) {
        crate::support::channels::wait_for(what, done)
    }

    pub fn events(&self, keys: &Keys, kind: &str) -> usize {
        self.s.get(&keys.test, &format!("/v1/events?type={kind}&limit=100")).1["data"].as_array().unwrap().len()
    }

    pub fn notify(&self, keys: &Keys, body: &str) -> (u16, String) {
        let url = format!("{}/notify/alipay/{}/test", self.s.base, keys.app);
        let req = ureq::post(&url).set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
        match req.send_string(body) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    }

    /// The simulator's notifications about `out_trade_no`.
    pub fn notifications(&self, out_trade_no: &str) -> Vec<Value> {
        let url = format!("{}/sim/alipay/notifications", self.sim_base);
        let all: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        all["notifications"].as_array().unwrap().iter().filter(|n| n["out_trade_no"] == out_trade_no).cloned().collect()
    }

    pub fn charge(&self, keys: &Keys, id: &str) -> Charge {
        self.s.rt.block_on(self.s.app.store.charge(&scope(keys), id)).unwrap().unwrap()
    }

    pub fn tick(&self) -> Sweep {
        self.s.rt.block_on(self.worker.tick()).unwrap()
    }

    pub fn schedule(&self, kind: PollKind, id: &str) -> Option<(i64, i64)> {
        self.s.rt.block_on(self.s.app.store.poll_schedule(kind, id)).unwrap()
    }

    pub fn now(&self) -> i64 {
        self.s.app.now()
    }

    /// Every notification the simulator sent was answered exactly `success`.
    pub fn all_notifications_acknowledged(&self) -> bool {
        let url = format!("{}/sim/alipay/notifications", self.sim_base);
        let list: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        list["notifications"].as_array().unwrap().iter().all(|n| n["delivered"] == true)
    }
}

pub fn scope(keys: &Keys) -> Scope {
    Scope { app_id: keys.app.clone(), mode: Mode::Test }
}
