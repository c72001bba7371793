//! The WeChat Pay channel end to end (issue 11): paygate's adapter against the WeChat simulator, started
//! in-process from the paygate-sim library on port 0. A v2 account (one app) and a v3 account (another app) point at
//! it; `/v1` orders pay with wx_pub_qr, the simulator's payer API pays, its signed notification reaches
//! `/notify/wechat[/v3]/…` and settles the order; partial refunds stay pending until the simulator's refund
//! notification; forged, wrong-amount, wrong-mch and stale notifications are refused and change nothing.

mod support;

use paygate_channels::wechat::v2::{self, Fields};
use paygate_channels::wechat::v3::{random_token, Resource, ResponseSignature, SigningKey};
use paygate_sim::wechat::config::{MerchantConfig, SimConfig};
use paygate_sim::wechat::WechatSim;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::{Backend, Keys, TestServer};

both!(
    v2_pay_notify_refund_and_refusals,
    v3_pay_notify_refund_and_refusals,
    paid_after_close_v2,
    intent_is_recorded_before_the_channel_call,
    routing_falls_back_without_an_account,
    charge_api_and_hserve_pay_through_wechat,
    private_channel_targets_are_refused_by_default,
    v2_refund_notice_is_only_a_prompt_to_query,
);

const V2_KEY: &str = "V2keyV2keyV2keyV2keyV2keyV2key32";
const V3_KEY: &str = "v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12";
const SERIAL: &str = "5157F09EFDC096DE15EBE81A47057A72";

fn pems() -> &'static (String, String, String) {
    support::channels::rsa_pems()
}

struct World {
    s: TestServer,
    sim: Arc<WechatSim>,
    sim_base: String,
}

fn start(backend: Backend) -> World {
    start_on(TestServer::start(backend))
}

fn start_on(s: TestServer) -> World {
    let config = SimConfig { platform_private_key_pem: pems().2.clone(), ..SimConfig::default() };
    let sim = WechatSim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    let sim_base = format!("http://{addr}");
    support::channels::set_master_key(&s.app);
    let w = World { s, sim, sim_base };
    w.sim_call("/sim/wechat/settings", json!({"notify_time_scale": 1000, "hold_refunds": true}));
    w
}

impl World {
    fn sim_call(&self, path: &str, body: Value) -> Value {
        support::channels::sim_post(&ureq::agent(), &self.sim_base, path, body)
    }

    fn sim_order(&self, mch_id: &str, out_trade_no: &str) -> Value {
        let url = format!("{}/sim/wechat/orders?mch_id={mch_id}&out_trade_no={out_trade_no}", self.sim_base);
        ureq::get(&url).call().unwrap().into_json().unwrap()
    }

    fn notify_url(&self, keys: &Keys, v3: bool) -> String {
        format!("{}/notify/wechat/{}{}/test", self.s.base, if v3 { "v3/" } else { "" }, keys.app)
    }

    /// A sim merchant and the same account set in paygate (test mode).
    fn merchant(&self, keys: &Keys, mch_id: &str, appid: &str, v3: bool) {
        let merchant = json!({
            "mch_id": mch_id, "appid": appid, "api_key": V2_KEY, "api_v3_key": V3_KEY,
            "merchant_serial": SERIAL, "merchant_public_key_pem": pems().1,
            "refund_notify_url": self.notify_url(keys, v3),
        });
        let _: MerchantConfig = serde_json::from_value(merchant.clone()).unwrap();
        assert_eq!(self.sim_call("/sim/wechat/merchants", merchant)["mch_id"], mch_id);
        let mut account = json!({"mch_id": mch_id, "appid": appid, "api_base_url": self.sim_base});
        if v3 {
            account.as_object_mut().unwrap().extend(
                json!({"api_version": "v3", "api_v3_key": V3_KEY, "merchant_serial_no": SERIAL,
                    "merchant_private_key": pems().0, "wechatpay_public_key_id": self.sim.public_key_id(),
                    "wechatpay_public_key": self.sim.public_key_pem()})
                .as_object()
                .unwrap()
                .clone(),
            );
        } else {
            account
                .as_object_mut()
                .unwrap()
                .extend(json!({"api_version": "v2", "api_v2_key": V2_KEY}).as_object().unwrap().clone());
        }
        let (status, got) = self.s.put(&keys.test, "/v1/channel_accounts/wechat", account);
        assert_eq!(status, 200, "{got}");
    }

    /// An order paid with wx_pub_qr: (order id, the charge's out_trade_no).
    fn qr_order(&self, keys: &Keys, no: &str, amount: i64) -> (String, String) {
        let order = self.s.create_order(keys, &keys.test, no, amount, json!({}));
        let id = order["id"].as_str().unwrap().to_string();
        let (status, paid) = self.s.post(&keys.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
        assert_eq!(status, 200, "pay: {paid}");
        let charge = &paid["charges"]["data"][0];
        let code_url = charge["credential"]["wx_pub_qr"].as_str().unwrap_or_default();
        assert!(code_url.starts_with("weixin://wxpay/bizpayurl?pr="), "{charge}");
        let scope = paygate_domain::Scope { app_id: keys.app.clone(), mode: paygate_domain::Mode::Test };
        let ch = charge["id"].as_str().unwrap();
        let stored = self.s.rt.block_on(self.s.app.store.charge(&scope, ch)).unwrap().unwrap();
        (id, stored.channel_order_no)
    }

    fn order(&self, keys: &Keys, id: &str) -> Value {
        self.s.get(&keys.test, &format!("/v1/orders/{id}")).1
    }

    fn wait_for(&self, what: &str, done: impl FnMut() -> bool) {
        support::channels::wait_for(what, done)
    }

    fn events(&self, keys: &Keys, kind: &str) -> usize {
        self.s.get(&keys.test, &format!("/v1/events?type={kind}&limit=100")).1["data"].as_array().unwrap().len()
    }

    fn post_raw(&self, path: &str, body: &str, headers: &[(&str, String)]) -> (u16, String) {
        let mut req = ureq::post(&format!("{}{path}", self.s.base));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        match req.send_string(body) {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{path}: {e}"),
        }
    }
}

/// A v2 payment notification as WeChat builds it, signed with `key`.
fn v2_notice(appid: &str, mch_id: &str, out_trade_no: &str, total: i64, key: &str) -> String {
    let total = total.to_string();
    let mut f: Fields = [
        ("return_code", "SUCCESS"),
        ("appid", appid),
        ("mch_id", mch_id),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("result_code", "SUCCESS"),
        ("openid", "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
        ("trade_type", "NATIVE"),
        ("bank_type", "OTHERS"),
        ("total_fee", total.as_str()),
        ("cash_fee", total.as_str()),
        ("transaction_id", "4200000000202611300000000001"),
        ("out_trade_no", out_trade_no),
        ("time_end", "20261130225000"),
    ]
    .into_iter()
    .collect();
    v2::sign_in_place(&mut f, key).unwrap();
    v2::render_xml(&f)
}

/// A v2 refund notification: unsigned, the refund in `req_info` encrypted under `key`.
fn v2_refund_notice(appid: &str, mch_id: &str, out_trade_no: &str, out_refund_no: &str, fee: i64, key: &str) -> String {
    let fee = fee.to_string();
    let info: Fields = [
        ("out_trade_no", out_trade_no),
        ("out_refund_no", out_refund_no),
        ("refund_id", "50000000382019052709732678859"),
        ("refund_fee", fee.as_str()),
        ("refund_status", "SUCCESS"),
    ]
    .into_iter()
    .collect();
    let plain = v2::render_xml(&info).replacen("<xml>", "<root>", 1).replacen("</xml>", "</root>", 1);
    let f: Fields = [
        ("return_code", "SUCCESS"),
        ("appid", appid),
        ("mch_id", mch_id),
        ("nonce_str", "n"),
        ("req_info", v2::encrypt_req_info(&plain, key).as_str()),
    ]
    .into_iter()
    .collect();
    v2::render_xml(&f)
}

const V2_OK: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

fn v2_pay_notify_refund_and_refusals(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("wechat v2");
    let (mch, appid) = ("1900000101", "wx2421b1c4370ec43b");
    w.merchant(&k, mch, appid, false);
    let (id, no) = w.qr_order(&k, "v2-1", 1000);
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "NOTPAY");

    // Forged, wrong amount, wrong mch: refused in WeChat's format, nothing changes.
    let url = format!("/notify/wechat/{}/test", k.app);
    for (why, body) in [
        ("bad sign", v2_notice(appid, mch, &no, 1000, "WrongKeyWrongKeyWrongKeyWrongKey")),
        ("wrong amount", v2_notice(appid, mch, &no, 1, V2_KEY)),
        ("wrong mch", v2_notice(appid, "1900000999", &no, 1000, V2_KEY)),
        ("not xml", "<xml><a>".to_string()),
    ] {
        let (status, text) = w.post_raw(&url, &body, &[]);
        assert!((400..500).contains(&status), "{why}: {status} {text}");
        assert!(text.contains("<return_code><![CDATA[FAIL]]></return_code>"), "{why}: {text}");
    }
    assert_eq!(w.order(&k, &id)["status"], "created");
    let (status, _) =
        w.post_raw(&format!("/notify/wechat/{}/test", "app_nope"), &v2_notice(appid, mch, &no, 1000, V2_KEY), &[]);
    assert_eq!(status, 404);

    // The payer pays at the simulator; its signed notification settles the order, once.
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    let order = w.order(&k, &id);
    let charge = &order["charges"]["data"][0];
    assert_eq!(charge["paid"], true, "{charge}");
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope, charge["id"].as_str().unwrap())).unwrap().unwrap();
    let kept = stored.notification.expect("the real notification is kept");
    assert_eq!((kept["mch_id"].as_str(), kept["out_trade_no"].as_str()), (Some(mch), Some(no.as_str())));
    assert_eq!(stored.transaction_no.as_deref(), w.sim_order(mch, &no)["transaction_id"].as_str());

    // A duplicate (a correctly signed notification again) is acknowledged and changes nothing.
    let (status, text) = w.post_raw(&url, &v2_notice(appid, mch, &no, 1000, V2_KEY), &[]);
    assert_eq!((status, text.as_str()), (200, V2_OK));
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let again = w.s.rt.block_on(w.s.app.store.charge(&scope, &stored.id)).unwrap().unwrap();
    assert_eq!(again.transaction_no, stored.transaction_no);

    // Partial refund: accepted by WeChat = pending; the simulator settles it; its notification finishes it.
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 300}));
    assert_eq!(status, 200, "{r}");
    let r = &r["data"][0];
    assert_eq!(r["status"], "pending", "{r}");
    let refunds = w.sim_order(mch, &no)["refunds"].clone();
    assert_eq!(refunds[0]["status"], "PROCESSING", "{refunds}");
    let out_refund_no = refunds[0]["out_refund_no"].as_str().unwrap().to_string();
    let rid = r["id"].as_str().unwrap().to_string();
    // Refund notifications are authenticated by req_info decrypting under the key; the amount must match.
    for (why, key, fee) in [("another key", "WrongKeyWrongKeyWrongKeyWrongKey", 300), ("another amount", V2_KEY, 299)] {
        let body = v2_refund_notice(appid, mch, &no, &out_refund_no, fee, key);
        let (status, text) = w.post_raw(&url, &body, &[]);
        assert!((400..500).contains(&status), "{why}: {status} {text}");
    }
    assert_eq!(w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"], "pending");
    let settle = json!({"mch_id": mch, "out_refund_no": out_refund_no, "status": "SUCCESS"});
    w.sim_call("/sim/wechat/refunds/settle", settle);
    w.wait_for("the refund to succeed", || {
        w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"] == "succeeded"
    });
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    // Once more (WeChat resends): acknowledged, nothing changes.
    let (status, text) = w.post_raw(&url, &v2_refund_notice(appid, mch, &no, &out_refund_no, 300, V2_KEY), &[]);
    assert_eq!((status, text.as_str()), (200, V2_OK));
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    assert_eq!(w.order(&k, &id)["amount_refunded"], 300);
}

/// A v3 callback as WeChat builds it: the resource sealed with the APIv3 key, the body signed by `signer`.
fn v3_notice(signer: &SigningKey, serial: &str, ts: i64, resource: &Value) -> (String, Vec<(&'static str, String)>) {
    let sealed = Resource::seal(
        V3_KEY.as_bytes(),
        &random_token(12),
        "transaction",
        resource.to_string().as_bytes(),
        "transaction",
    )
    .unwrap();
    let body = json!({"id": "EV-1", "create_time": "2026-11-30T22:50:00+08:00", "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功", "resource": sealed})
    .to_string();
    let sig = ResponseSignature::sign(signer, serial, &body, ts, &random_token(32)).unwrap();
    (body, sig.headers().to_vec())
}

fn wall() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn v3_pay_notify_refund_and_refusals(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("wechat v3");
    let (mch, appid) = ("1900000102", "wxd678efh567hg6787");
    w.merchant(&k, mch, appid, true);
    let (id, no) = w.qr_order(&k, "v3-1", 2000);
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "NOTPAY");

    let platform = SigningKey::from_pem(&pems().2).unwrap();
    let forger = SigningKey::from_pem(&pems().0).unwrap();
    let serial = w.sim.public_key_id().to_string();
    let resource = |mchid: &str, total: i64| {
        json!({"appid": appid, "mchid": mchid, "out_trade_no": no, "transaction_id": "4200000000202611300000000002",
            "trade_state": "SUCCESS", "amount": {"total": total, "payer_total": total, "currency": "CNY"}})
    };
    let url = format!("/notify/wechat/v3/{}/test", k.app);
    for (why, (body, headers)) in [
        ("forged", v3_notice(&forger, &serial, wall(), &resource(mch, 2000))),
        ("stale", v3_notice(&platform, &serial, wall() - 400, &resource(mch, 2000))),
        ("wrong serial", v3_notice(&platform, "PUB_KEY_ID_OTHER", wall(), &resource(mch, 2000))),
        ("wrong amount", v3_notice(&platform, &serial, wall(), &resource(mch, 1999))),
        ("wrong mch", v3_notice(&platform, &serial, wall(), &resource("1900000999", 2000))),
    ] {
        let (status, text) = w.post_raw(&url, &body, &headers);
        assert!((400..500).contains(&status), "{why}: {status} {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["code"], "FAIL", "{why}");
    }
    let (status, _) = w.post_raw(&url, "{}", &[]);
    assert!((400..500).contains(&status));
    assert_eq!(w.order(&k, &id)["status"], "created");

    // The simulator sends this payment's notification twice.
    w.sim_call("/sim/wechat/faults", json!({"kind": "duplicate_notify"}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    // A duplicate, correctly signed and fresh: 204, nothing changes.
    let (body, headers) = v3_notice(&platform, &serial, wall(), &resource(mch, 2000));
    assert_eq!(w.post_raw(&url, &body, &headers).0, 204);
    assert_eq!(w.events(&k, "order.succeeded"), 1);
    let charge = w.order(&k, &id)["charges"]["data"][0].clone();
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope, charge["id"].as_str().unwrap())).unwrap().unwrap();
    assert_eq!(stored.notification.unwrap()["event_type"], "TRANSACTION.SUCCESS");
    assert_eq!(stored.transaction_no.as_deref(), w.sim_order(mch, &no)["transaction_id"].as_str());

    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 500}));
    assert_eq!(status, 200, "{r}");
    let r = &r["data"][0];
    assert_eq!(r["status"], "pending", "{r}");
    let refunds = w.sim_order(mch, &no)["refunds"].clone();
    let out_refund_no = refunds[0]["out_refund_no"].as_str().unwrap().to_string();
    w.sim_call(
        "/sim/wechat/refunds/settle",
        json!({"mch_id": mch, "out_refund_no": out_refund_no, "status": "SUCCESS"}),
    );
    let rid = r["id"].as_str().unwrap().to_string();
    w.wait_for("the refund to succeed", || {
        w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"] == "succeeded"
    });
    assert_eq!(w.order(&k, &id)["amount_refunded"], 500);
}

fn paid_after_close_v2(backend: Backend) {
    let w = start(backend);
    w.sim_call("/sim/wechat/settings", json!({"close_min_age_seconds": 0}));
    let k = w.s.create_app("wechat late");
    let (mch, appid) = ("1900000103", "wx2421b1c4370ec43c");
    w.merchant(&k, mch, appid, false);
    let (id, no) = w.qr_order(&k, "late-1", 700);
    let (status, canceled) = w.s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(w.sim_order(mch, &no)["trade_state"], "CLOSED", "closed at WeChat too");
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no, "late": true}));
    w.wait_for("the late payment", || w.order(&k, &id)["status"] == "paid_after_close");
    assert_eq!(w.events(&k, "order.paid_after_close"), 1);
    assert_eq!(w.events(&k, "order.succeeded"), 0);
}

fn charges(w: &World, keys: &Keys, order_id: &str) -> Vec<paygate_domain::Charge> {
    let scope = paygate_domain::Scope { app_id: keys.app.clone(), mode: paygate_domain::Mode::Test };
    w.s.rt.block_on(w.s.app.store.charges_of_order(&scope, order_id)).unwrap()
}

fn intent_is_recorded_before_the_channel_call(backend: Backend) {
    let w = start(backend);
    w.sim_call("/sim/wechat/settings", json!({"timeout_ms": 100}));
    let k = w.s.create_app("wechat intent");
    let (mch, appid) = ("1900000104", "wx2421b1c4370ec43d");
    w.merchant(&k, mch, appid, false);
    let order = w.s.create_order(&k, &k.test, "intent-1", 500, json!({}));
    let id = order["id"].as_str().unwrap().to_string();
    let pay = |body: Value| w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), body);

    // Refused before anything is recorded: what needs no channel call (JSAPI without open_id).
    let (status, err) = pay(json!({"channel": "wx_pub"}));
    assert_eq!((status, err["error"]["param"].as_str()), (400, Some("extra.open_id")), "{err}");
    assert!(charges(&w, &k, &id).is_empty());

    // WeChat refuses (a signed SYSTEMERROR): the recorded charge is marked failed.
    w.sim_call("/sim/wechat/faults", json!({"path": "/pay/unifiedorder", "kind": "systemerror"}));
    let (status, err) = pay(json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 402, "{err}");
    let recorded = charges(&w, &k, &id);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, paygate_domain::ChargeStatus::Failed);

    // No answer (the connection drops after the order was made at WeChat): the charge stays pending.
    w.sim_call("/sim/wechat/faults", json!({"path": "/pay/unifiedorder", "kind": "timeout"}));
    let (status, err) = pay(json!({"channel": "wx_pub_qr"}));
    assert!(status >= 400, "{err}");
    let recorded = charges(&w, &k, &id);
    let pending: Vec<_> = recorded.iter().filter(|c| c.status == paygate_domain::ChargeStatus::Pending).collect();
    assert_eq!(pending.len(), 1, "{recorded:?}");
    let waiting = pending[0].clone();
    assert_eq!(w.sim_order(mch, &waiting.channel_order_no)["trade_state"], "NOTPAY");

    // Paying again supersedes it; the new charge carries WeChat's credential.
    let (status, paid) = pay(json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 200, "{paid}");
    let newest = &paid["charges"]["data"][0];
    assert!(newest["credential"]["wx_pub_qr"].as_str().unwrap().starts_with("weixin://"), "{newest}");
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let old = w.s.rt.block_on(w.s.app.store.charge(&scope, &waiting.id)).unwrap().unwrap();
    assert_eq!(old.status, paygate_domain::ChargeStatus::Closed);
}

fn routing_falls_back_without_an_account(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("no wechat account");
    // Test mode without a WeChat account: the sandbox, as before.
    let order = w.s.create_order(&k, &k.test, "sbx-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let (status, paid) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 200, "{paid}");
    let url = paid["charges"]["data"][0]["credential"]["wx_pub_qr"].as_str().unwrap();
    assert!(url.contains("/sandbox/charges/"), "{url}");
    // Live mode without one: channel_not_configured.
    let order = w.s.create_order(&k, &k.live, "live-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let (status, err) = w.s.post(&k.live, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!((status, err["error"]["code"].as_str()), (402, Some("channel_not_configured")), "{err}");
    // A notification for an app without an account is refused in WeChat's format.
    let (status, text) = w.post_raw(&format!("/notify/wechat/{}/test", k.app), "<xml></xml>", &[]);
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("FAIL"));
    let (status, text) = w.post_raw(&format!("/notify/wechat/v3/{}/prod", k.app), "{}", &[]);
    assert_eq!(status, 404, "{text}");
}

fn charge_api_and_hserve_pay_through_wechat(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("wechat faces");
    let (mch, appid) = ("1900000105", "wx2421b1c4370ec43e");
    w.merchant(&k, mch, appid, false);
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };

    // The Charge API: order and charge recorded, then WeChat asked, then the credential stored.
    let body = json!({"order_no": "ca-1", "app": {"id": k.app}, "channel": "wx_pub_qr", "amount": 300,
        "client_ip": "127.0.0.1", "currency": "cny", "subject": "s", "body": "b"});
    let (status, ch) = w.s.post(&k.test, "/v1/charges", body);
    assert_eq!(status, 200, "{ch}");
    assert!(ch["credential"]["wx_pub_qr"].as_str().unwrap().starts_with("weixin://"), "{ch}");
    let id = ch["id"].as_str().unwrap().to_string();
    let stored = w.s.rt.block_on(w.s.app.store.charge(&scope, &id)).unwrap().unwrap();
    assert_eq!(stored.credential, ch["credential"], "the stored credential is WeChat's");
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": stored.channel_order_no}));
    w.wait_for("the charge to be paid", || w.s.get(&k.test, &format!("/v1/charges/{id}")).1["paid"] == true);

    // 知晓云: weixin_tenpay_native pays through the same account.
    let (st, session) = support::faces::hs(
        &w.s,
        "POST",
        &k.client_id,
        "",
        "/hserve/v2.1/register/username/",
        Some(json!({"username": "wx-user", "password": "secret-1"})),
    );
    assert_eq!(st, 201, "{session}");
    let token = session["token"].as_str().unwrap();
    let body = json!({"gateway_type": "weixin_tenpay_native", "total_cost": "2.00", "merchandise_description": "d"});
    let (st, created) =
        support::faces::hs(&w.s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    assert!(created["code_url"].as_str().unwrap_or_default().starts_with("weixin://"), "{created}");
    let trade_no = created["trade_no"].as_str().unwrap().to_string();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": trade_no}));
    w.wait_for("the 知晓云 payment", || {
        let charge = w.s.rt.block_on(w.s.app.store.find_charge(&scope, &trade_no)).unwrap().unwrap();
        charge.status == paygate_domain::ChargeStatus::Succeeded
    });
}

fn private_channel_targets_are_refused_by_default(backend: Backend) {
    // The production policy: the simulator on 127.0.0.1 is a private target, never called.
    let w = start_on(TestServer::start_strict(backend));
    let k = w.s.create_app("strict");
    w.merchant(&k, "1900000106", "wx2421b1c4370ec43f", false);
    let order = w.s.create_order(&k, &k.test, "strict-1", 100, json!({}));
    let id = order["id"].as_str().unwrap().to_string();
    let (status, err) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!((status, err["error"]["code"].as_str()), (402, Some("channel_target_refused")), "{err}");
    let recorded = charges(&w, &k, &id);
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].status, paygate_domain::ChargeStatus::Failed, "never sent, so not left pending");
}

/// A v2 refund notification is not proof (req_info is AES-ECB without integrity, unsigned): whatever it says, the
/// refund is finished only from WeChat's signed `/pay/refundquery` answer; a failed query answers FAIL.
fn v2_refund_notice_is_only_a_prompt_to_query(backend: Backend) {
    let w = start(backend);
    // The simulator's own refund notification is held back (10 minutes): only the test's notifications arrive.
    w.sim_call("/sim/wechat/settings", json!({"reorder_hold_ms": 600000}));
    let k = w.s.create_app("wechat v2 refund notice");
    let (mch, appid) = ("1900000102", "wx2421b1c4370ec43c");
    w.merchant(&k, mch, appid, false);
    let (id, no) = w.qr_order(&k, "v2-rn", 1000);
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": no}));
    w.wait_for("the order to be paid", || w.order(&k, &id)["status"] == "paid");
    let (status, r) = w.s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 400}));
    assert_eq!(status, 200, "{r}");
    let rid = r["data"][0]["id"].as_str().unwrap().to_string();
    let out_refund_no = w.sim_order(mch, &no)["refunds"][0]["out_refund_no"].as_str().unwrap().to_string();
    let refund_status = || w.s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{rid}")).1["status"].clone();
    let url = format!("/notify/wechat/{}/test", k.app);
    let notice = v2_refund_notice(appid, mch, &no, &out_refund_no, 400, V2_KEY);

    // It decrypts and says SUCCESS, but WeChat still says PROCESSING: acknowledged (the query was made), pending.
    let (status, text) = w.post_raw(&url, &notice, &[]);
    assert_eq!((status, text.as_str()), (200, V2_OK));
    assert_eq!(refund_status(), "pending");
    assert_eq!(w.events(&k, "refund.succeeded"), 0);

    // The query fails: FAIL, so WeChat notifies again; nothing changes.
    w.sim_call("/sim/wechat/faults", json!({"path": "/pay/refundquery", "kind": "systemerror"}));
    let (status, text) = w.post_raw(&url, &notice, &[]);
    assert!(status >= 500 && text.contains("<return_code><![CDATA[FAIL]]></return_code>"), "{status} {text}");
    assert_eq!(refund_status(), "pending");

    // Settled at WeChat (its own notification held back): the same notification now finishes the refund.
    w.sim_call("/sim/wechat/faults", json!({"path": "", "kind": "reorder_notify"}));
    w.sim_call(
        "/sim/wechat/refunds/settle",
        json!({"mch_id": mch, "out_refund_no": out_refund_no, "status": "SUCCESS"}),
    );
    let (status, text) = w.post_raw(&url, &notice, &[]);
    assert_eq!((status, text.as_str()), (200, V2_OK));
    assert_eq!(refund_status(), "succeeded");
    assert_eq!(w.events(&k, "refund.succeeded"), 1);
    assert_eq!(w.order(&k, &id)["amount_refunded"], 400);
}
