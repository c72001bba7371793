//! Profit sharing through WeChat Pay (issue 11) against the simulator in-process, v2 (HMAC-SHA256) and v3: an order
//! opened with profit_sharing is paid, shared to a receiver (added at WeChat first), partly returned, and finished;
//! an order not opened for sharing is refused by WeChat; an uncertain answer (SYSTEMERROR, no answer) is queried
//! before any resend, so the share exists once at WeChat.

mod support;
#[path = "wechat_world/mod.rs"]
mod wechat_world;

use serde_json::{json, Value};
use support::{Backend, Keys};
use wechat_world::{start, World};

both!(share_return_finish_v2, share_return_finish_v3, uncertain_share_answers_are_queried_first);

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

fn to_merchant(account: &str, amount: i64) -> Value {
    json!([{"type": "MERCHANT_ID", "account": account, "amount": amount, "description": "分给商户"}])
}

fn story(w: &World, k: &Keys, mch: &str) {
    let (id, _) = paid(w, k, mch, "share-1", 1000, true);
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
