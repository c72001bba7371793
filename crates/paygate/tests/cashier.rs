//! The 酷点 cashier face and the SaaS WeChat-Pay query face over HTTP, on SQLite and PostgreSQL.
//! Envelopes are signed here with an implementation of the documented scheme of its own
//! (docs/cashier.md), not paygate's code.

mod support;

use serde_json::{json, Map, Value};
use std::sync::Arc;
use support::faces::{hmac_sign, md5_sign};
use support::{Backend, Keys, TestServer};

both!(
    seed_001_member_wallet_payment,
    envelopes_are_refused_in_the_face_shape,
    paying_fresh_query_and_reverse,
    seed_002_query_with_fees_and_subsidies,
    wallet_never_goes_negative,
    wallet_debits_add_up_under_concurrency,
    wallet_payment_answers_what_a_query_reads,
    refused_and_replayed_wallet_payments_write_nothing
);

fn envelope(s: &TestServer, k: &Keys, biz: Value, sign_type: &str) -> Map<String, Value> {
    let (open_app_id, secret, token) = &k.cashier;
    let mut e = json!({"open_app_id": open_app_id, "timestamp": s.clock.now_for_tests(), "sign_type": sign_type,
        "token": token, "biz_content": biz.to_string()});
    let fields = e.as_object().unwrap().clone();
    e["sign"] = json!(if sign_type == "MD5" { md5_sign(&fields, secret) } else { hmac_sign(&fields, secret) });
    e.as_object().unwrap().clone()
}

/// Sends an envelope; checks the answer's signature; returns the status and the parsed `result`.
fn send(s: &TestServer, k: &Keys, op: &str, env: &Map<String, Value>) -> (u16, Value) {
    let (status, raw) =
        s.call("POST", "", &format!("/api/v2/cashier/{op}"), Some(Value::Object(env.clone()).to_string()), &[]);
    let result_text = raw["result"].as_str().unwrap_or_else(|| panic!("no result: {raw}"));
    let mut signed = Map::new();
    signed.insert("result".into(), json!(result_text));
    let sign = raw["sign"].as_str().unwrap();
    if !sign.is_empty() {
        let expected = if env["sign_type"] == "HMAC-SHA256" {
            hmac_sign(&signed, &k.cashier.1)
        } else {
            md5_sign(&signed, &k.cashier.1)
        };
        assert_eq!(sign, expected, "answer signature");
    }
    (status, serde_json::from_str(result_text).unwrap())
}

fn cashier(s: &TestServer, k: &Keys, op: &str, biz: Value) -> (u16, Value) {
    send(s, k, op, &envelope(s, k, biz, "MD5"))
}

fn member(s: &TestServer, k: &Keys, no: &str, top_up: i64) -> Value {
    let (st, m) = s.post(&k.test, "/v1/members", json!({"member_no": no, "phone": "18826490000", "name": "Janus"}));
    assert_eq!(st, 200, "{m}");
    if top_up > 0 {
        let (st, m) =
            s.post(&k.test, &format!("/v1/members/{}/topups", m["id"].as_str().unwrap()), json!({"amount": top_up}));
        assert_eq!(st, 200, "{m}");
        return m;
    }
    m
}

fn seed_001_member_wallet_payment(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("酷点门店");
    let janus = member(&s, &k, "M0001", 130);
    let code = janus["pay_code"].as_str().unwrap();
    let (st, paid) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "300230547599788000", "total_fee": 100, "auth_code": code, "attach": "桌号 8"}),
    );
    assert_eq!((st, paid["code"].as_i64(), paid["succeed"].as_bool()), (200, Some(0), Some(true)), "{paid}");
    let pay_no = paid["data"]["pay_no"].as_str().unwrap().to_string();

    // Seed 001's example: query by pay_no, MD5 envelope; every documented field.
    let (st, q) = cashier(&s, &k, "query", json!({"pay_no": pay_no}));
    assert_eq!((st, &q["msg"]), (200, &json!("success")), "{q}");
    let d = &q["data"];
    for (field, value) in [
        ("status", json!("PAYED_SUCC")),
        ("status_name", json!("支付成功")),
        ("payment", json!("会员钱包支付")),
        ("payment_type", json!("BALANCE")),
        ("fee", json!(100)),
        ("origin_fee", json!(100)),
        ("received_fee", json!(100)),
        ("user_pay_fee", json!(100)),
        ("refunded_fee", json!(0)),
        ("can_refund", json!(true)),
        ("member_name", json!("Janus")),
        ("member_phone", json!("18826490000")),
        ("user_no", json!("M0001")),
        ("attach", json!("桌号 8")),
        ("shop_name", json!("酷点门店")),
    ] {
        assert_eq!(d[field], value, "{field}: {d}");
    }
    for field in [
        "mch_discount_fee",
        "mch_discount_desc",
        "kd_discount_fee",
        "kd_discount_desc",
        "m_discount_fee",
        "y_discount_fee",
        "p_discount_fee",
    ] {
        assert!(d["discount_info"].get(field).is_some(), "discount_info lacks {field}: {d}");
    }
    let pay_time = d["pay_time"].as_str().unwrap();
    assert!(pay_time.len() == 19 && &pay_time[4..5] == "-" && &pay_time[10..11] == " ", "{pay_time}");
    // The same with HMAC-SHA256, and by out_trade_no.
    let (st, q2) =
        send(&s, &k, "query", &envelope(&s, &k, json!({"out_trade_no": "300230547599788000"}), "HMAC-SHA256"));
    assert_eq!((st, &q2["data"]["pay_no"]), (200, &json!(pay_no)));

    // A reused out_trade_no answers the latest payment (seed 001); an unpaid one has no fee fields.
    let (_, again) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "300230547599788000", "total_fee": 10, "auth_code": "134567890123459999"}),
    );
    let (_, latest) = cashier(&s, &k, "query", json!({"out_trade_no": "300230547599788000"}));
    assert_eq!(latest["data"]["pay_no"], again["data"]["pay_no"]);
    assert_eq!(latest["data"]["status"], "PAYING");
    assert!(latest["data"].get("fee").is_none() && latest["data"].get("member_name").is_none(), "{latest}");

    // A refund of a wallet payment goes back to the wallet, with its history.
    let (st, r) = cashier(&s, &k, "refund", json!({"pay_no": pay_no, "refund_fee": 30}));
    assert_eq!((st, &r["data"]["status"], &r["data"]["refunded_fee"]), (200, &json!("REFUND_SUCC"), &json!(30)), "{r}");
    let id = janus["id"].as_str().unwrap();
    let (_, m) = s.get(&k.test, &format!("/v1/members/{id}"));
    assert_eq!(m["balance"], 60, "130 − 100 + 30");
    let (_, history) = s.get(&k.test, &format!("/v1/members/{id}/balance_transactions"));
    let kinds: Vec<(&str, i64, i64)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["type"].as_str().unwrap(), t["amount"].as_i64().unwrap(), t["balance_after"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("refund", 30, 60), ("payment", -100, 30), ("topup", 130, 130)]);
    // More than the balance is refused and writes nothing.
    let (st, err) = cashier(&s, &k, "pay", json!({"out_trade_no": "too-much", "total_fee": 61, "auth_code": code}));
    assert_eq!((st, &err["sub_code"]), (400, &json!("insufficient_balance")), "{err}");
    let (st, _) = cashier(&s, &k, "query", json!({"out_trade_no": "too-much"}));
    assert_eq!(st, 404);
}

fn envelopes_are_refused_in_the_face_shape(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (_, paid) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "o1", "total_fee": 100, "auth_code": "134567890123456789"}));
    let pay_no = paid["data"]["pay_no"].as_str().unwrap().to_string();
    let good = envelope(&s, &k, json!({"pay_no": pay_no}), "MD5");
    let refused = |env: &Map<String, Value>, param: &str| {
        let (st, r) = send(&s, &k, "query", env);
        assert_eq!(
            (st, r["code"].as_i64(), r["succeed"].as_bool(), r["param"].as_str()),
            (401, Some(40001), Some(false), Some(param)),
            "{r}"
        );
    };
    let mut tampered = good.clone();
    tampered.insert("biz_content".into(), json!(json!({"pay_no": "600000000000000000"}).to_string()));
    refused(&tampered, "sign");
    let mut unsigned = good.clone();
    unsigned.remove("sign");
    refused(&unsigned, "sign");
    let mut wrong_token = envelope(&s, &k, json!({"pay_no": pay_no}), "MD5");
    wrong_token.insert("token".into(), json!("UT00000000000000000000000000000000"));
    refused(&wrong_token, "token");
    s.clock.advance(-301);
    let stale = envelope(&s, &k, json!({"pay_no": pay_no}), "MD5");
    s.clock.advance(301);
    refused(&stale, "timestamp");
    let (st, _) = send(&s, &k, "query", &good);
    assert_eq!(st, 200);
    refused(&good, "sign");
    // Another app's payment is not found; bad input names its field.
    let other = s.create_app("other");
    let (st, r) = cashier(&s, &other, "query", json!({"pay_no": pay_no}));
    assert_eq!((st, r["code"].as_i64()), (404, Some(40004)), "{r}");
    let (st, r) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "o2", "total_fee": 1.5, "auth_code": "134567890123456789"}));
    assert_eq!((st, r["param"].as_str()), (400, Some("total_fee")), "{r}");
    let (st, r) = cashier(&s, &k, "pay", json!({"out_trade_no": "o2", "total_fee": 100, "auth_code": "12"}));
    assert_eq!((st, r["param"].as_str()), (400, Some("auth_code")), "{r}");
    let (st, r) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "o2", "total_fee": 100, "auth_code": "134567890123456789",
            "discount_info": {"m_discount_fee": 100}}),
    );
    assert_eq!((st, r["param"].as_str()), (400, Some("discount_info")), "{r}");
}

fn paying_fresh_query_and_reverse(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    // The payer is still entering a password: PAYING until the channel is asked again.
    let (_, paying) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "held", "total_fee": 100, "auth_code": "280000000000000000"}));
    assert_eq!(paying["data"]["status"], "PAYING");
    assert_eq!(paying["data"]["payment_type"], "ALIPAY");
    s.clock.advance(6);
    let (_, stale) = cashier(&s, &k, "query", json!({"out_trade_no": "held"}));
    assert_eq!(stale["data"]["status"], "PAYING", "without is_fresh the stored state answers");
    let (_, fresh) = cashier(&s, &k, "query", json!({"out_trade_no": "held", "is_fresh": true}));
    assert_eq!(fresh["data"]["status"], "PAYED_SUCC", "{fresh}");
    // One that never completes is reversed (撤销); a failed one reads PAYED_FAIL.
    let (_, stuck) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "stuck", "total_fee": 100, "auth_code": "134567890123459999"}));
    let (_, fresh) = cashier(&s, &k, "query", json!({"pay_no": stuck["data"]["pay_no"], "is_fresh": true}));
    assert_eq!(fresh["data"]["status"], "PAYING");
    let (st, reversed) = cashier(&s, &k, "reverse", json!({"pay_no": stuck["data"]["pay_no"]}));
    assert_eq!(
        (st, &reversed["data"]["status"], &reversed["data"]["status_name"]),
        (200, &json!("PAYED_REVERSAL"), &json!("已撤销")),
        "{reversed}"
    );
    let (_, failed) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "declined", "total_fee": 100, "auth_code": "134567890123454444"}),
    );
    assert_eq!(failed["data"]["status"], "PAYED_FAIL");
    // Reversing a paid payment refunds it in full.
    let (_, paid) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "paid", "total_fee": 250, "auth_code": "134567890123456789"}));
    let (_, reversed) = cashier(&s, &k, "reverse", json!({"out_trade_no": "paid"}));
    assert_eq!(reversed["data"]["status"], "PAYED_REVERSAL");
    let order = paid["data"]["order_no"].as_str().unwrap();
    let (_, o) = s.get(&k.test, &format!("/v1/orders/{order}"));
    assert_eq!((o["amount_refunded"].as_i64(), o["status"].as_str()), (Some(250), Some("refunded")));
    s.clock.advance(1);
    let (st, again) = cashier(&s, &k, "reverse", json!({"out_trade_no": "paid"}));
    assert_eq!((st, &again["sub_code"]), (400, &json!("not_reversible")), "{again}");
    // Canceled from the back office: CANCEL. Never completed and expired (24 h): TIMEOUT.
    let (_, to_cancel) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "to-cancel", "total_fee": 100, "auth_code": "134567890123459999"}),
    );
    let (st, _) = s.put(
        &k.test,
        &format!("/v1/orders/{}", to_cancel["data"]["order_no"].as_str().unwrap()),
        json!({"status": "canceled"}),
    );
    assert_eq!(st, 200);
    let (_, canceled) = cashier(&s, &k, "query", json!({"out_trade_no": "to-cancel"}));
    assert_eq!(
        (canceled["data"]["status"].as_str(), canceled["data"]["status_name"].as_str()),
        (Some("CANCEL"), Some("已取消"))
    );
    cashier(&s, &k, "pay", json!({"out_trade_no": "abandoned", "total_fee": 100, "auth_code": "134567890123459999"}));
    s.clock.advance(24 * 3600 + 1);
    let worker = paygate_worker::Worker::new(s.app.clone(), paygate_worker::Settings::default());
    s.rt.block_on(worker.tick()).unwrap();
    let (_, expired) = cashier(&s, &k, "query", json!({"out_trade_no": "abandoned"}));
    assert_eq!(
        (expired["data"]["status"].as_str(), expired["data"]["status_name"].as_str()),
        (Some("TIMEOUT"), Some("已超时"))
    );
}

fn saas(s: &TestServer, k: &Keys, mut body: Map<String, Value>) -> (u16, Value) {
    let (accessid, key) = &k.saas;
    body.insert("accessid".into(), json!(accessid));
    let sign = md5_sign(&body, key).to_uppercase();
    body.insert("sign".into(), json!(sign));
    let (st, answer) = s.call("POST", "", "/api/v1/pay/wx/query", Some(Value::Object(body).to_string()), &[]);
    let mut fields = answer.as_object().unwrap().clone();
    let sign = fields.remove("sign").unwrap();
    if sign != "" {
        assert_eq!(sign, json!(md5_sign(&fields, key).to_uppercase()), "answer signature: {answer}");
    }
    (st, answer)
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn seed_002_query_with_fees_and_subsidies(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("saas");
    let (st, _) = s.post(&k.test, "/v1/fee_rates", json!({"channel": "wechat", "rate_bp": 100}));
    assert_eq!(st, 200);
    // Seed 002's worked examples: a 5-yuan fee with 6 yuan pre-declared, then with 2.
    let goods = json!([{"goods_id": "sku-1", "goods_remark": "1001", "discount_amount": "3", "quantity": "1",
        "price": "528800"}]);
    let (_, six) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "20200324182435195", "total_fee": 50000, "auth_code": "134567890123456789",
        "pre_fee_subsidy_amount": 600, "fee_subsidy_party": "服务商", "goods_detail": goods}),
    );
    let (_, two) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "20200324182435196", "total_fee": 50000, "auth_code": "134567890123456780",
        "pre_fee_subsidy_amount": 200, "fee_subsidy_party": "服务商",
        "discount_info": {"m_discount_fee": 0, "p_discount_fee": 0}}),
    );
    let trade_no = six["data"]["pay_no"].as_str().unwrap();

    let (st, q) = saas(&s, &k, obj(json!({"trade_no": trade_no, "out_trade_no": "not-this-one"})));
    assert_eq!(st, 200, "{q}");
    for (field, value) in [
        ("trade_no", json!(trade_no)),
        ("out_trade_no", json!("20200324182435195")),
        ("total_amount", json!("500.00")),
        ("rate", json!("1.00%")),
        ("fee", json!("5.00")),
        ("trade_status", json!("1")),
        ("refunded_amount", json!("0.00")),
        ("remanent_amount", json!("500.00")),
        ("fee_subsidy_party", json!("服务商")),
        ("pre_fee_subsidy_amount", json!("6.00")),
        ("real_fee_subsidy_amount", json!("5.00")),
        ("real_fee_amount", json!("0.00")),
        ("return_code", json!(10000)),
    ] {
        assert_eq!(q[field], value, "{field}: {q}");
    }
    assert!(
        q["weixin_no"].as_str().unwrap().starts_with("4200")
            && q["channel_trade_no"].is_string()
            && q["appid"].is_string()
            && q["openid"].is_string(),
        "{q}"
    );
    let a = &q["attach"];
    for field in [
        "sub_appid",
        "sub_mch_id",
        "nonce_str",
        "sign",
        "result_code",
        "openid",
        "trade_type",
        "trade_state",
        "bank_type",
        "promotion_detail",
        "total_fee",
        "fee_type",
        "settlement_total_fee",
        "cash_fee",
        "cash_fee_type",
        "transaction_id",
        "out_trade_no",
        "time_end",
        "trade_state_desc",
        "coupon_fee",
        "goods_detail",
    ] {
        assert!(a.get(field).is_some(), "attach lacks {field}: {a}");
    }
    assert_eq!(
        (a["total_fee"].as_i64(), a["trade_state"].as_str(), a["trade_type"].as_str()),
        (Some(50000), Some("SUCCESS"), Some("MICROPAY"))
    );
    assert_eq!(a["goods_detail"][0]["goods_id"], "sku-1");
    let (_, q2) = saas(&s, &k, obj(json!({"out_trade_no": "20200324182435196"})));
    assert_eq!(
        (q2["real_fee_subsidy_amount"].as_str(), q2["real_fee_amount"].as_str()),
        (Some("2.00"), Some("3.00")),
        "{q2}"
    );
    let (_, by_channel) = saas(&s, &k, obj(json!({"channel_trade_no": q["channel_trade_no"]})));
    assert_eq!(by_channel["trade_no"], json!(trade_no));
    // Discounts become WeChat promotion_detail entries; a refund moves refunded/remanent.
    let (_, disc) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "d1", "total_fee": 1000, "auth_code": "134567890123456781",
        "discount_info": {"m_discount_fee": 100, "mch_discount_desc": "满10减1", "p_discount_fee": 50}}),
    );
    assert_eq!(
        (disc["data"]["user_pay_fee"].as_i64(), disc["data"]["fee"].as_i64(), disc["data"]["received_fee"].as_i64()),
        (Some(850), Some(900), Some(891)),
        "{disc}"
    );
    cashier(&s, &k, "refund", json!({"out_trade_no": "d1", "refund_fee": 350}));
    let (_, q3) = saas(&s, &k, obj(json!({"out_trade_no": "d1"})));
    let promos: Vec<Value> = serde_json::from_str(q3["attach"]["promotion_detail"].as_str().unwrap()).unwrap();
    assert_eq!(promos.len(), 2, "{promos:?}");
    assert_eq!(
        (promos[0]["type"].as_str(), promos[0]["merchant_contribute"].as_str()),
        (Some("DISCOUNT"), Some("100"))
    );
    assert_eq!((promos[1]["type"].as_str(), promos[1]["wxpay_contribute"].as_str()), (Some("COUPON"), Some("50")));
    assert_eq!(
        (q3["refunded_amount"].as_str(), q3["remanent_amount"].as_str(), q3["attach"]["trade_state"].as_str()),
        (Some("3.50"), Some("5.00"), Some("REFUND"))
    );
    // Refusals in the face's own shape.
    let (st, err) = saas(&s, &k, obj(json!({"trade_no": "600000000000000000"})));
    assert_eq!((st, err["return_code"].as_i64()), (404, Some(40004)), "{err}");
    let (accessid, _) = &k.saas;
    let (st, err) = s.call(
        "POST",
        "",
        "/api/v1/pay/wx/query",
        Some(
            json!({"accessid": accessid, "trade_no": trade_no, "sign": "2C8D30547DA3B1C9C22D5EF6BBC6EFE6"}).to_string(),
        ),
        &[],
    );
    assert_eq!((st, err["return_code"].as_i64(), err["param"].as_str()), (401, Some(40001), Some("sign")), "{err}");
    let (st, err) = s.call(
        "POST",
        "",
        "/api/v1/pay/wx/query",
        Some(json!({"accessid": accessid, "trade_no": trade_no}).to_string()),
        &[],
    );
    assert_eq!((st, err["param"].as_str()), (401, Some("sign")), "{err}");
    let other = s.create_app("other");
    let (st, _) = saas(&s, &other, obj(json!({"trade_no": trade_no})));
    assert_eq!(st, 404);
    let (_, alipay) =
        cashier(&s, &k, "pay", json!({"out_trade_no": "ali", "total_fee": 100, "auth_code": "280000000000000001"}));
    let (st, _) = saas(&s, &k, obj(json!({"trade_no": alipay["data"]["pay_no"]})));
    assert_eq!(st, 404, "the WeChat-Pay face shows WeChat payments only");
    let _ = two;
    // Seed 002's own example values: a 0.01-yuan payment, nothing refunded.
    let (_, cent) = cashier(
        &s,
        &k,
        "pay",
        json!({"out_trade_no": "740941632410065", "total_fee": 1, "auth_code": "134567890123456782"}),
    );
    let (_, q4) = saas(&s, &k, obj(json!({"trade_no": cent["data"]["pay_no"]})));
    for (field, value) in [
        ("total_amount", "0.01"),
        ("trade_status", "1"),
        ("remanent_amount", "0.01"),
        ("refunded_amount", "0.00"),
        ("out_trade_no", "740941632410065"),
    ] {
        assert_eq!(q4[field], json!(value), "{field}: {q4}");
    }
    assert!(q4.get("pre_fee_subsidy_amount").is_none(), "subsidy fields only when one was declared: {q4}");
}

fn wallet_never_goes_negative(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let m = member(&s, &k, "M-race", 500);
    let code = m["pay_code"].as_str().unwrap().to_string();
    let s = Arc::new(s);
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let (s, k, code) = (s.clone(), k.clone(), code.clone());
            std::thread::spawn(move || {
                cashier(&s, &k, "pay", json!({"out_trade_no": format!("race-{i}"), "total_fee": 5, "auth_code": code}))
                    .0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|c| **c == 200).count(), 100, "{statuses:?}");
    assert!(statuses.iter().all(|c| *c == 200 || *c == 400), "{statuses:?}");
    let (_, after) = s.get(&k.test, &format!("/v1/members/{}", m["id"].as_str().unwrap()));
    assert_eq!(after["balance"], 0);
}

/// The member's ledger, oldest first: (type, amount, balance_after).
fn ledger(s: &TestServer, k: &Keys, member: &Value) -> Vec<(String, i64, i64)> {
    let path = format!("/v1/members/{}/balance_transactions?limit=100", member["id"].as_str().unwrap());
    let (st, history) = s.get(&k.test, &path);
    assert_eq!(st, 200, "{history}");
    let entry = |t: &Value| {
        (t["type"].as_str().unwrap().to_string(), t["amount"].as_i64().unwrap(), t["balance_after"].as_i64().unwrap())
    };
    history["data"].as_array().unwrap().iter().rev().map(entry).collect()
}

fn balance(s: &TestServer, k: &Keys, member: &Value) -> i64 {
    let (_, m) = s.get(&k.test, &format!("/v1/members/{}", member["id"].as_str().unwrap()));
    m["balance"].as_i64().unwrap()
}

/// Many cashiers paying different amounts from one wallet at once: every debit is in the ledger
/// in the order the wallet's row lock granted them, each balance_after is the one before minus
/// the payment, and the debits add up to the balance change exactly; whatever was refused was
/// more than the wallet held when it was refused (the balance only falls).
fn wallet_debits_add_up_under_concurrency(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let m = member(&s, &k, "M-sum", 1000);
    let code = m["pay_code"].as_str().unwrap().to_string();
    let s = Arc::new(s);
    let handles: Vec<_> = (10..50)
        .map(|fen: i64| {
            let (s, k, code) = (s.clone(), k.clone(), code.clone());
            std::thread::spawn(move || {
                let biz = json!({"out_trade_no": format!("sum-{fen}"), "total_fee": fen, "auth_code": code});
                let (st, r) = cashier(&s, &k, "pay", biz);
                (fen, st, r)
            })
        })
        .collect();
    let answers: Vec<(i64, u16, Value)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let paid: i64 = answers.iter().filter(|(_, st, _)| *st == 200).map(|(fen, _, _)| fen).sum();
    let left = balance(&s, &k, &m);
    assert!(left >= 0);
    assert_eq!(paid, 1000 - left, "the debits add up to the balance change");
    for (fen, st, r) in &answers {
        match st {
            200 => assert_eq!(r["data"]["status"], "PAYED_SUCC", "{r}"),
            400 => {
                assert_eq!(r["sub_code"], "insufficient_balance", "{r}");
                assert!(*fen > left, "{fen} fen was refused with {left} left at the end");
            }
            _ => panic!("{st}: {r}"),
        }
    }
    let entries = ledger(&s, &k, &m);
    assert_eq!(entries[0], ("topup".to_string(), 1000, 1000));
    let payments = &entries[1..];
    assert_eq!(payments.len(), answers.iter().filter(|(_, st, _)| *st == 200).count());
    for pair in entries.windows(2) {
        let ((_, _, before), (kind, amount, after)) = (&pair[0], &pair[1]);
        assert_eq!((kind.as_str(), before + amount), ("payment", *after), "{entries:?}");
    }
    assert_eq!(entries.last().unwrap().2, left);
}

/// A wallet payment is answered from what its transaction wrote; that answer is exactly what a
/// query reads back from the database, discounts, subsidy, fee and member included.
fn wallet_payment_answers_what_a_query_reads(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("酷点门店");
    let (st, _) = s.post(&k.test, "/v1/fee_rates", json!({"channel": "balance", "rate_bp": 38}));
    assert_eq!(st, 200);
    let m = member(&s, &k, "M-same", 100_000);
    let biz = json!({"out_trade_no": "same-1", "total_fee": 12_345, "auth_code": m["pay_code"], "attach": "桌号 9",
        "subject": "午餐", "pre_fee_subsidy_amount": 20, "fee_subsidy_party": "服务商",
        "goods_detail": [{"goods_id": "sku-9", "quantity": 2}],
        "discount_info": {"kd_discount_fee": 100, "kd_discount_desc": "平台券", "m_discount_fee": 200,
            "y_discount_fee": 300, "p_discount_fee": 45, "mch_discount_desc": "满100减2"}});
    let (st, paid) = cashier(&s, &k, "pay", biz);
    assert_eq!(st, 200, "{paid}");
    let d = &paid["data"];
    assert_eq!(
        (d["user_pay_fee"].as_i64(), d["fee"].as_i64(), d["received_fee"].as_i64(), d["member_name"].as_str()),
        (Some(11_700), Some(12_145), Some(12_145 - (46 - 20)), Some("Janus")),
        "{d}"
    );
    for by in [json!({"pay_no": d["pay_no"]}), json!({"order_no": d["order_no"]}), json!({"out_trade_no": "same-1"})] {
        let (st, q) = cashier(&s, &k, "query", by);
        assert_eq!((st, &q), (200, &paid), "the pay answer is what the database holds");
    }
    assert_eq!(balance(&s, &k, &m), 100_000 - 11_700);
}

/// A wallet payment refused (the balance, an unknown code, bad input) writes nothing but uses up
/// its envelope, as every verified envelope is used up; a replayed payment envelope is refused
/// and writes nothing.
fn refused_and_replayed_wallet_payments_write_nothing(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let m = member(&s, &k, "M-replay", 100);
    let code = m["pay_code"].as_str().unwrap();
    let events = |s: &TestServer| s.get(&k.test, "/v1/events?limit=100").1["data"].as_array().unwrap().len();
    let replayed = |env: &Map<String, Value>| {
        let (st, r) = send(&s, &k, "pay", env);
        assert_eq!(
            (st, r["param"].as_str(), r["msg"].as_str()),
            (401, Some("sign"), Some("This request was already received (replay).")),
            "{r}"
        );
    };
    let short = envelope(&s, &k, json!({"out_trade_no": "short", "total_fee": 101, "auth_code": code}), "MD5");
    let (st, r) = send(&s, &k, "pay", &short);
    assert_eq!(
        (st, r["code"].as_i64(), r["sub_code"].as_str()),
        (400, Some(40002), Some("insufficient_balance")),
        "{r}"
    );
    let unknown =
        envelope(&s, &k, json!({"out_trade_no": "nobody", "total_fee": 1, "auth_code": "990000000000000007"}), "MD5");
    let (st, r) = send(&s, &k, "pay", &unknown);
    assert_eq!((st, r["param"].as_str()), (400, Some("auth_code")), "{r}");
    let bad = envelope(&s, &k, json!({"out_trade_no": "bad", "total_fee": 1.5, "auth_code": code}), "MD5");
    let (st, r) = send(&s, &k, "pay", &bad);
    assert_eq!((st, r["param"].as_str()), (400, Some("total_fee")), "{r}");
    for env in [&short, &unknown, &bad] {
        replayed(env);
    }
    for out_trade_no in ["short", "nobody", "bad"] {
        assert_eq!(cashier(&s, &k, "query", json!({"out_trade_no": out_trade_no})).0, 404);
    }
    assert_eq!((balance(&s, &k, &m), ledger(&s, &k, &m).len(), events(&s)), (100, 1, 0));

    let good = envelope(&s, &k, json!({"out_trade_no": "once", "total_fee": 30, "auth_code": code}), "MD5");
    let (st, paid) = send(&s, &k, "pay", &good);
    assert_eq!(st, 200, "{paid}");
    replayed(&good);
    let (_, q) = cashier(&s, &k, "query", json!({"out_trade_no": "once"}));
    assert_eq!(q["data"]["pay_no"], paid["data"]["pay_no"]);
    assert_eq!((balance(&s, &k, &m), ledger(&s, &k, &m).len(), events(&s)), (70, 2, 2));
}
