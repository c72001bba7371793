//! The WeChat simulator in-process beside a test server, with one merchant set on both sides: shared by the
//! WeChat poller, micropay and sharing stories (`#[path]`-included; each test crate declares `mod support`).
#![allow(dead_code)]

use crate::support::{Backend, Keys, TestServer};
use paygate_domain::{Mode, Scope};
use paygate_sim::wechat::config::SimConfig;
use paygate_sim::wechat::WechatSim;
use paygate_store::PollKind;
use paygate_worker::{Settings, Sweep, Worker};
use serde_json::{json, Value};
use std::sync::Arc;

pub const V2_KEY: &str = "V2keyV2keyV2keyV2keyV2keyV2key32";
pub const V3_KEY: &str = "v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12";
pub const SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A72";

pub fn pems() -> &'static (String, String, String) {
    crate::support::channels::rsa_pems()
}

pub struct World {
    pub s: TestServer,
    pub sim: Arc<WechatSim>,
    pub sim_base: String,
    pub worker: Worker,
}

pub fn start(backend: Backend) -> World {
    let s = TestServer::start(backend);
    let config = SimConfig { platform_private_key_pem: pems().2.clone(), ..SimConfig::default() };
    let sim = WechatSim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let sim_base = format!("http://{addr}");
    crate::support::channels::set_master_key(&s.app);
    let worker = Worker::new(s.app.clone(), Settings::default());
    let w = World { s, sim, sim_base, worker };
    // Refunds stay PROCESSING until settled; a held notification waits 10 minutes unless another one follows.
    w.sim_call(
        "/sim/wechat/settings",
        json!({"notify_time_scale": 1000, "hold_refunds": true, "reorder_hold_ms": 600000}),
    );
    w
}

impl World {
    pub fn sim_call(&self, path: &str, body: Value) -> Value {
        crate::support::channels::sim_post(&ureq::agent(), &self.sim_base, path, body)
    }

    pub fn sim_order(&self, mch_id: &str, out_trade_no: &str) -> Value {
        let url = format!("{}/sim/wechat/orders?mch_id={mch_id}&out_trade_no={out_trade_no}", self.sim_base);
        ureq::get(&url).call().unwrap().into_json().unwrap()
    }

    /// The next notification the simulator makes is held back (for 10 minutes).
    pub fn hold_next_notification(&self) {
        self.sim_call("/sim/wechat/faults", json!({"path": "", "kind": "reorder_notify"}));
    }

    /// A sim merchant and the same account set in paygate (test mode).
    pub fn merchant(&self, keys: &Keys, mch_id: &str, appid: &str, v3: bool) {
        let notify = format!("{}/notify/wechat/{}{}/test", self.s.base, if v3 { "v3/" } else { "" }, keys.app);
        let merchant = json!({
            "mch_id": mch_id, "appid": appid, "api_key": V2_KEY, "api_v3_key": V3_KEY,
            "merchant_serial": SERIAL, "merchant_public_key_pem": pems().1, "refund_notify_url": notify,
        });
        assert_eq!(self.sim_call("/sim/wechat/merchants", merchant)["mch_id"], mch_id);
        let mut account = json!({"mch_id": mch_id, "appid": appid, "api_base_url": self.sim_base});
        let more = if v3 {
            json!({"api_version": "v3", "api_v3_key": V3_KEY, "merchant_serial_no": SERIAL,
                "merchant_private_key": pems().0, "wechatpay_public_key_id": self.sim.public_key_id(),
                "wechatpay_public_key": self.sim.public_key_pem()})
        } else {
            json!({"api_version": "v2", "api_v2_key": V2_KEY})
        };
        account.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
        let (status, got) = self.s.put(&keys.test, "/v1/channel_accounts/wechat", account);
        assert_eq!(status, 200, "{got}");
    }

    /// An order paid with wx_pub_qr: (order id, charge id, the charge's out_trade_no).
    pub fn qr_order(&self, keys: &Keys, no: &str, amount: i64, extra: Value) -> (String, String, String) {
        let order = self.s.create_order(keys, &keys.test, no, amount, extra);
        let id = order["id"].as_str().unwrap().to_string();
        let (status, paid) = self.s.post(&keys.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
        assert_eq!(status, 200, "pay: {paid}");
        let ch = paid["charges"]["data"][0]["id"].as_str().unwrap().to_string();
        let stored = self.s.rt.block_on(self.s.app.store.charge(&scope(keys), &ch)).unwrap().unwrap();
        (id, ch, stored.channel_order_no)
    }

    pub fn order(&self, keys: &Keys, id: &str) -> Value {
        self.s.get(&keys.test, &format!("/v1/orders/{id}")).1
    }

    pub fn events(&self, keys: &Keys, kind: &str) -> usize {
        self.s.get(&keys.test, &format!("/v1/events?type={kind}&limit=100")).1["data"].as_array().unwrap().len()
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

    pub fn wait_for(&self, what: &str, done: impl FnMut() -> bool) {
        crate::support::channels::wait_for(what, done)
    }
}

pub fn scope(keys: &Keys) -> Scope {
    Scope { app_id: keys.app.clone(), mode: Mode::Test }
}
