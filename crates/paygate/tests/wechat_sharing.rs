//! Profit sharing through WeChat Pay (issue 11) against the simulator in-process, v2 (HMAC-SHA256) and v3: an order
//! opened with profit_sharing is paid, shared to a receiver the merchant added first (POST
//! /v1/profit_sharing_receivers), partly returned, and finished; an order not opened for sharing is refused by WeChat;
//! a receiver never added, or removed, is refused by WeChat with a clear 402; an uncertain answer (SYSTEMERROR, no
//! answer) is queried before any resend, so the share exists once at WeChat.

mod support;
#[path = "wechat_world/mod.rs"]
mod wechat_world;

use serde_json::{json, Value};
use support::{Backend, Keys};
use wechat_world::{start, World};

both!(
    share_return_finish_v2,
    share_return_finish_v3,
    uncertain_share_answers_are_queried_first,
    receivers_added_and_removed_v2,
    receivers_added_and_removed_v3,
    receivers_without_a_wechat_account,
);

/// A paid wx_pub_qr order (paid at the simulator, settled by its notification): (order id, out_trade_no).
fn paid(w: &World, k: &Keys, mch: &str, no: &str, amount: i64, profit_sharing: bool) -> (String, String) {
    let (id, _, out_trade_no) = w.qr_order(k, no, amount, json!({"profit_sharing": profit_sharing}));
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": out_trade_no}));
    w.wait_for("the order to be paid", || w.order(k, &id)["status"] == "paid");
    (id, out_trade_no)
}

fn share(w: &World, k: &Keys, order: &str, body: Value) -> (u16, Value) {
    w.s.post(&k.test, &format!("/v1/orders/{order}/profit_sharings"), body)
}

/// Adds a MERCHANT_ID receiver, with its name (WeChat wants it; v3 sends it encrypted with the platform key, and the
/// simulator refuses one it cannot decrypt).
fn add_receiver(w: &World, k: &Keys, account: &str, name: bool) -> (u16, Value) {
    let mut body = json!({"type": "MERCHANT_ID", "account": account, "relation_type": "PARTNER"});
    if name {
        body["name"] = json!("示例商户全称");
    }
    w.s.post(&k.test, "/v1/profit_sharing_receivers", body)
}

fn remove_receiver(w: &World, k: &Keys, account: &str) -> (u16, Value) {
    w.s.call("DELETE", &k.test, &format!("/v1/profit_sharing_receivers/MERCHANT_ID/{account}"), None, &[])
}

fn to_merchant(account: &str, amount: i64) -> Value {
    json!([{"type": "MERCHANT_ID", "account": account, "amount": amount, "description": "分给商户"}])
}

fn story(w: &World, k: &Keys, mch: &str) {
    let (id, _) = paid(w, k, mch, "share-1", 1000, true);
    let (st, added) = add_receiver(w, k, "1900000999", true);
    assert_eq!(st, 200, "{added}");
    let (st, ps) = share(w, k, &id, json!({"type": "wechat_multi", "receivers": to_merchant("1900000999", 200)}));
    assert_eq!(st, 200, "{ps}");
    assert_eq!(ps["status"], "succeeded", "{ps}");
    assert!(!ps["channel_order_no"].as_str().unwrap_or_default().is_empty(), "WeChat's order_id kept: {ps}");
    let ps_id = ps["id"].as_str().unwrap();

    // 分账回退: 50 of the 200 back from the merchant receiver.
    let (st, back) =
        w.s.post(&k.test, &format!("/v1/orders/{id}/profit_sharings/{ps_id}/returns"), json!({"amount": 50}));
    assert_eq!(st, 200, "{back}");
    assert_eq!(back["amount_returned"], 50, "{back}");

    // 完结分账: the rest is released at WeChat.
    let (st, done) = w.s.post(&k.test, &format!("/v1/orders/{id}/profit_sharings/finish"), json!({}));
    assert_eq!(st, 200, "{done}");

    // An order opened without profit sharing is refused before WeChat is asked (WeChat froze nothing; the first
    // share above succeeding at the simulator, which refuses ORDER_NOT_READY otherwise, shows the flag reached it).
    let (plain, _) = paid(w, k, mch, "share-2", 1000, false);
    let (st, err) = share(w, k, &plain, json!({"type": "wechat_single", "receivers": to_merchant("1900000999", 100)}));
    assert!((400..500).contains(&st), "{st} {err}");
    assert_eq!(err["error"]["code"], "profit_sharing_not_enabled", "{err}");
}

fn share_return_finish_v2(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("share v2");
    let mch = "1900000301";
    w.merchant(&k, mch, "wx2421b1c4370ec601", false);
    story(&w, &k, mch);
}

fn share_return_finish_v3(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("share v3");
    let mch = "1900000302";
    w.merchant(&k, mch, "wxd678efh567hg6602", true);
    story(&w, &k, mch);
}

fn uncertain_share_answers_are_queried_first(backend: Backend) {
    let w = start(backend);
    w.sim_call("/sim/wechat/settings", json!({"timeout_ms": 100}));
    let k = w.s.create_app("share uncertain");
    let mch = "1900000303";
    w.merchant(&k, mch, "wx2421b1c4370ec603", false);
    let (id, out_trade_no) = paid(&w, &k, mch, "share-3", 1000, true);
    for account in ["1900000999", "1900000998"] {
        assert_eq!(add_receiver(&w, &k, account, true).0, 200);
    }

    // SYSTEMERROR (nothing done): the query finds no share, so it is sent again, once.
    w.sim_call("/sim/wechat/faults", json!({"path": "/secapi/pay/multiprofitsharing", "kind": "systemerror"}));
    let (st, first) = share(&w, &k, &id, json!({"type": "wechat_multi", "receivers": to_merchant("1900000999", 100)}));
    assert_eq!((st, &first["status"]), (200, &json!("succeeded")), "{first}");

    // Carried out but no answer: the query finds it; it is not sent again.
    w.sim_call("/sim/wechat/faults", json!({"path": "/secapi/pay/multiprofitsharing", "kind": "timeout"}));
    let (st, second) = share(&w, &k, &id, json!({"type": "wechat_multi", "receivers": to_merchant("1900000998", 100)}));
    assert_eq!((st, &second["status"]), (200, &json!("succeeded")), "{second}");
    assert_eq!(w.order(&k, &id)["amount_shared"], 200);
    let at_wechat = w.sim_order(mch, &out_trade_no);
    assert_eq!(at_wechat["trade_state"], "SUCCESS", "{at_wechat}");
}

/// Never added, added, removed: WeChat refuses a split to a receiver it does not hold, and paygate says so.
fn receivers_story(w: &World, k: &Keys, mch: &str) {
    let (id, _) = paid(w, k, mch, "recv-1", 1000, true);
    let single = |amount| json!({"type": "wechat_multi", "receivers": to_merchant("1900000777", amount)});
    let refused = |(st, err): (u16, Value), what: &str| {
        assert_eq!(st, 402, "{what}: {err}");
        assert_eq!(err["error"]["code"], "share_failed", "{what}: {err}");
        let message = err["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("RECEIVER_INVALID"), "{what}: WeChat's code named: {message}");
        assert!(message.contains("POST /v1/profit_sharing_receivers"), "{what}: the fix named: {message}");
    };
    refused(share(w, k, &id, single(100)), "never added");

    let (st, added) = add_receiver(w, k, "1900000777", true);
    assert_eq!(st, 200, "{added}");
    assert_eq!(
        (&added["object"], &added["type"], &added["account"], &added["relation_type"], &added["livemode"]),
        (
            &json!("profit_sharing_receiver"),
            &json!("MERCHANT_ID"),
            &json!("1900000777"),
            &json!("PARTNER"),
            &json!(false)
        ),
        "{added}"
    );
    assert!(added.get("name").is_none(), "the name is not answered: {added}");
    let (st, ps) = share(w, k, &id, single(100));
    assert_eq!((st, &ps["status"]), (200, &json!("succeeded")), "{ps}");

    let (st, gone) = remove_receiver(w, k, "1900000777");
    assert_eq!(st, 200, "{gone}");
    assert_eq!((&gone["deleted"], &gone["account"]), (&json!(true), &json!("1900000777")), "{gone}");
    refused(share(w, k, &id, single(50)), "removed");
    assert_eq!(w.order(k, &id)["amount_shared"], 100, "the refused split shared nothing");

    // Removing what WeChat does not hold is WeChat's refusal, said as such.
    let (st, err) = remove_receiver(w, k, "1900000777");
    assert_eq!((st, &err["error"]["code"]), (402, &json!("channel_declined")), "{err}");
    // Fields are checked before WeChat is asked.
    let (st, err) =
        w.s.post(&k.test, "/v1/profit_sharing_receivers", json!({"type": "MERCHANT_ID", "account": "1900000777"}));
    assert_eq!((st, &err["error"]["param"]), (400, &json!("relation_type")), "{err}");
    let (st, err) = w.s.call("DELETE", &k.test, "/v1/profit_sharing_receivers/PERSONAL_WECHATID/x1", None, &[]);
    assert_eq!((st, &err["error"]["param"]), (400, &json!("type")), "{err}");
}

fn receivers_added_and_removed_v2(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("receivers v2");
    w.merchant(&k, "1900000304", "wx2421b1c4370ec604", false);
    receivers_story(&w, &k, "1900000304");
}

fn receivers_added_and_removed_v3(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("receivers v3");
    w.merchant(&k, "1900000305", "wxd678efh567hg6605", true);
    receivers_story(&w, &k, "1900000305");
    // And without a name (a PERSONAL_OPENID needs none): nothing to encrypt.
    let body = json!({"type": "PERSONAL_OPENID", "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "relation_type": "USER"});
    assert_eq!(w.s.post(&k.test, "/v1/profit_sharing_receivers", body).0, 200);
}

/// Test mode without a WeChat account is the sandbox (no receivers to keep: accepted); live mode is refused.
fn receivers_without_a_wechat_account(backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("receivers sandbox");
    let (st, added) = add_receiver(&w, &k, "1900000778", true);
    assert_eq!((st, &added["livemode"]), (200, &json!(false)), "{added}");
    assert_eq!(remove_receiver(&w, &k, "1900000778").0, 200);
    let body = json!({"type": "MERCHANT_ID", "account": "1900000778", "relation_type": "PARTNER"});
    let (st, err) = w.s.post(&k.live, "/v1/profit_sharing_receivers", body);
    assert_eq!((st, &err["error"]["code"]), (402, &json!("channel_not_configured")), "{err}");
}
