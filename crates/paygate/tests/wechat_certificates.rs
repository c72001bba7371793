//! API v3 in platform-certificate mode (issue 11): an account without the WeChat Pay public key verifies WeChat with
//! the platform certificates of `GET /v3/certificates`, fetched when an answer or a callback names a serial not
//! known yet, opened with the APIv3 key, and believed only because the fetch's own answer verifies with one of
//! them. The simulator signs under its certificate's serial; a pay → notification → paid flow goes through, and a
//! callback under a serial WeChat never issued is refused.

mod support;
#[path = "wechat_world/mod.rs"]
mod wechat_world;

use paygate_sim::wechat::config::SimConfig;
use paygate_sim::wechat::WechatSim;
use paygate_worker::{Settings, Worker};
use serde_json::json;
use support::{Backend, TestServer};
use wechat_world::{pems, World, SERIAL, V2_KEY, V3_KEY};

both!(
    payment_verified_with_fetched_platform_certificates,
    configured_certificate_is_known_from_the_start,
    certificates_not_signed_by_one_of_them_are_refused,
);

/// A simulator signing under its platform certificate, and a v3 merchant on both sides whose paygate account has no
/// public key (`certificate`: the platform certificate set on the account, or none).
fn world(backend: Backend, mch_id: &str, certificate: bool) -> (World, support::Keys) {
    world_signing(backend, mch_id, certificate, true)
}

/// As [`world`]; `sim_certificates` false: the simulator signs under its public key id, certificates fetched too.
fn world_signing(backend: Backend, mch_id: &str, certificate: bool, sim_certificates: bool) -> (World, support::Keys) {
    let s = TestServer::start(backend);
    let config = SimConfig {
        platform_private_key_pem: pems().2.clone(),
        platform_certificates: sim_certificates,
        ..Default::default()
    };
    let sim = WechatSim::new(config).unwrap();
    let (addr, _task) = s.rt.block_on(sim.start("127.0.0.1:0")).unwrap();
    support::channels::set_master_key(&s.app);
    let worker = Worker::new(s.app.clone(), Settings::default());
    let w = World { s, sim, sim_base: format!("http://{addr}"), worker };
    w.sim_call("/sim/wechat/settings", json!({"notify_time_scale": 1000}));
    let k = w.s.create_app("certificates");
    let appid = "wxd678efh567hg6610";
    let notify = format!("{}/notify/wechat/v3/{}/test", w.s.base, k.app);
    let merchant = json!({"mch_id": mch_id, "appid": appid, "api_key": V2_KEY, "api_v3_key": V3_KEY,
        "merchant_serial": SERIAL, "merchant_public_key_pem": pems().1, "refund_notify_url": notify});
    assert_eq!(w.sim_call("/sim/wechat/merchants", merchant)["mch_id"], mch_id);
    let mut account = json!({"mch_id": mch_id, "appid": appid, "api_base_url": w.sim_base, "api_version": "v3",
        "api_v3_key": V3_KEY, "merchant_serial_no": SERIAL, "merchant_private_key": pems().0});
    if certificate {
        account["platform_certificate"] = json!(w.sim.platform_certificate().0);
    }
    let (status, got) = w.s.put(&k.test, "/v1/channel_accounts/wechat", account);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["has_wechatpay_public_key"], false, "{got}");
    (w, k)
}

fn pay_through(w: &World, k: &support::Keys, mch_id: &str, no: &str) {
    // Opening the order is a v3 call: its answer names the certificate's serial.
    let (id, _, out_trade_no) = w.qr_order(k, no, 1000, json!({}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch_id, "out_trade_no": out_trade_no}));
    w.wait_for("the order to be paid by the v3 notification", || w.order(k, &id)["status"] == "paid");
}

fn payment_verified_with_fetched_platform_certificates(backend: Backend) {
    let mch_id = "1900000411";
    let (w, k) = world(backend, mch_id, false);
    pay_through(&w, &k, mch_id, "cert-1");
    // A receiver's name goes encrypted with the fetched certificate's key, named by its serial (the simulator
    // decrypts it, refusing what it cannot).
    let body = json!({"type": "MERCHANT_ID", "account": "1900000999", "relation_type": "PARTNER", "name": "示例商户"});
    let (status, added) = w.s.post(&k.test, "/v1/profit_sharing_receivers", body);
    assert_eq!(status, 200, "{added}");

    // A callback under a serial WeChat never issued: paygate refetched at most a minute ago, so it knows it is not
    // WeChat's, and refuses it as unauthenticated.
    let body = json!({"id": "EV-x", "event_type": "TRANSACTION.SUCCESS", "resource": {}}).to_string();
    let path = format!("/notify/wechat/v3/{}/test", k.app);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
    let headers = [
        ("Wechatpay-Timestamp", now.as_str()),
        ("Wechatpay-Nonce", "n1"),
        ("Wechatpay-Signature", "c2lnbmF0dXJl"),
        ("Wechatpay-Serial", "7A11FF0000000000000000000000000000000000"),
    ];
    let (status, refused) = w.s.call("POST", "", &path, Some(body), &headers);
    assert_eq!(status, 401, "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("platform certificate"), "{refused}");
}

/// The account's own `platform_certificate` is trusted without a fetch; payments go through the same.
fn configured_certificate_is_known_from_the_start(backend: Backend) {
    let mch_id = "1900000412";
    let (w, k) = world(backend, mch_id, true);
    pay_through(&w, &k, mch_id, "cert-2");
}

/// The certificates' answer signed under a serial none of them has (here the public key id) proves nothing: the
/// fetch is refused, and so is the payment's opening, with the reason.
fn certificates_not_signed_by_one_of_them_are_refused(backend: Backend) {
    let (w, k) = world_signing(backend, "1900000413", false, false);
    let order = w.s.create_order(&k, &k.test, "cert-3", 1000, json!({}));
    let id = order["id"].as_str().unwrap();
    let (status, refused) = w.s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!(status, 402, "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("none of the certificates it brings"), "{refused}");
}
