//! 知晓云 `weixin_tenpay_js` through the real WeChat Pay adapter (issue 11), v2 and v3, against the simulator:
//! JSAPI needs the payer's openid. Users here have no WeChat login to take it from, so the order request carries
//! it (`openid`); without it the request is refused with a 400 naming the field, before anything is recorded or
//! WeChat is asked. With it, the answer holds the JSAPI parameters signed over WeChat's own prepay_id (not the
//! sandbox's), and paying it settles the record through WeChat's notification, which names that openid as payer.

mod support;
#[path = "wechat_world/mod.rs"]
mod wechat_world;

use serde_json::{json, Value};
use support::faces::hs;
use support::{Backend, Keys};
use wechat_world::{start, World};

both!(jsapi_needs_the_openid_v2, jsapi_needs_the_openid_v3);

const OPENID: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

fn user(w: &World, k: &Keys) -> String {
    let body = json!({"username": "payer", "password": "secret-1"});
    let (st, session) = hs(&w.s, "POST", &k.client_id, "", "/hserve/v2.1/register/username/", Some(body));
    assert_eq!(st, 201, "{session}");
    session["token"].as_str().unwrap().to_string()
}

fn order(w: &World, k: &Keys, token: &str, openid: Option<&str>) -> (u16, Value) {
    let mut body = json!({"gateway_type": "weixin_tenpay_js", "total_cost": 3.5, "merchandise_description": "js"});
    if let Some(openid) = openid {
        body["openid"] = json!(openid);
    }
    hs(&w.s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body))
}

fn story(v3: bool, backend: Backend) {
    let w = start(backend);
    let k = w.s.create_app("hserve js");
    let (mch, appid) = if v3 { ("1900000422", "wxd678efh567hg6622") } else { ("1900000421", "wx2421b1c4370ec621") };
    w.merchant(&k, mch, appid, v3);
    let token = user(&w, &k);

    let (st, err) = order(&w, &k, &token, None);
    assert_eq!(st, 400, "{err}");
    assert_eq!(err["param"], "openid", "{err}");
    assert!(err["error_msg"].as_str().unwrap_or_default().contains("openid"), "{err}");
    let (st, err) = order(&w, &k, &token, Some("not an openid"));
    assert_eq!((st, &err["param"]), (400, &json!("openid")), "{err}");
    let (_, page) = hs(&w.s, "GET", &k.client_id, &token, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(page["meta"]["total_count"], 0, "a refused order leaves no record: {page}");

    let (st, js) = order(&w, &k, &token, Some(OPENID));
    assert_eq!(st, 201, "{js}");
    assert_eq!(js["appId"], appid, "WeChat's JSAPI parameters, not the sandbox's: {js}");
    let package = js["package"].as_str().unwrap_or_default();
    assert!(package.starts_with("prepay_id=") && package.len() > "prepay_id=".len(), "{js}");
    assert!(js["paySign"].as_str().is_some_and(|s| !s.is_empty()), "{js}");
    let trade_no = js["trade_no"].as_str().unwrap().to_string();
    w.sim_call("/sim/wechat/pay", json!({"mch_id": mch, "out_trade_no": trade_no}));
    let id = js["id"].as_i64().unwrap();
    let path = format!("/hserve/v2.2/idp/pay/order/{id}/");
    let paid = || hs(&w.s, "GET", &k.client_id, &token, &path, None).1;
    w.wait_for("the 知晓云 record to be paid", || paid()["status"] == "success");
    // WeChat's notification, kept with the record, names the payer (the simulator refuses JSAPI without one).
    let wechat = &paid()["gateway_extra_info"]["wechat_response"];
    assert!(wechat.to_string().contains(OPENID), "{wechat}");
}

fn jsapi_needs_the_openid_v2(backend: Backend) {
    story(false, backend);
}

fn jsapi_needs_the_openid_v3(backend: Backend) {
    story(true, backend);
}
