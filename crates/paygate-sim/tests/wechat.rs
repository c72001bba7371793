//! The simulator over HTTP, driven with paygate-channels' own protocol code: sign, send, verify the answer and the
//! notifications. (The independent check — published SDKs — is tests/clients/python/test_wechat_sim.py.)

mod support;

use paygate_channels::wechat::v2::{self, Fields, SignType};
use paygate_channels::wechat::v3::{Authorization, RequestParts, Resource, ResponseSignature};
use serde_json::{json, Value};
use support::{now, start, APPID, KEY, MCH, SERIAL, V3KEY};

#[test]
fn v2_flow_with_signed_answers_and_notifications() {
    let h = start();
    let notify = format!("{}/v2", h.notify);
    let created = h.v2(
        "/pay/unifiedorder",
        &[
            ("body", "b"),
            ("out_trade_no", "o1"),
            ("total_fee", "100"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", &notify),
            ("trade_type", "NATIVE"),
        ],
        SignType::HmacSha256,
    );
    assert_eq!(created.get("result_code"), Some("SUCCESS"));
    assert!(created.get("code_url").unwrap().starts_with("weixin://"));
    let q = h.v2("/pay/orderquery", &[("out_trade_no", "o1")], SignType::Md5);
    assert_eq!(q.get("trade_state"), Some("NOTPAY"));

    let page = ureq::get(&format!("{}/sim/wechat", h.base)).call().unwrap().into_string().unwrap();
    assert!(page.contains("<td>o1</td>") && page.contains("data-path=\"/sim/wechat/pay\""), "{page}");
    h.sim("/sim/wechat/pay", json!({"out_trade_no": "o1"}));
    let n = v2::parse_xml(std::str::from_utf8(&h.next().body).unwrap()).unwrap();
    v2::verify(&n, KEY).expect("notification signed with the order's sign type (HMAC-SHA256)");
    assert_eq!((n.get("total_fee"), n.get("sign_type")), (Some("100"), Some("HMAC-SHA256")));

    let r = h.v2(
        "/secapi/pay/refund",
        &[
            ("out_trade_no", "o1"),
            ("out_refund_no", "r1"),
            ("total_fee", "100"),
            ("refund_fee", "40"),
            ("notify_url", &notify),
        ],
        SignType::Md5,
    );
    assert_eq!(r.get("result_code"), Some("SUCCESS"));
    let rn = v2::parse_xml(std::str::from_utf8(&h.next().body).unwrap()).unwrap();
    let info = v2::decrypt_req_info(rn.get("req_info").unwrap(), KEY).unwrap();
    assert!(info.starts_with("<root>") && info.contains("<refund_fee><![CDATA[40]]></refund_fee>"), "{info}");

    let too_much = h.v2(
        "/secapi/pay/refund",
        &[("out_trade_no", "o1"), ("out_refund_no", "r2"), ("total_fee", "100"), ("refund_fee", "61")],
        SignType::Md5,
    );
    assert_eq!((too_much.get("result_code"), too_much.get("err_code")), (Some("FAIL"), Some("INVALID_REQUEST")));
    let rq = h.v2("/pay/refundquery", &[("out_trade_no", "o1")], SignType::Md5);
    assert_eq!((rq.get("refund_count"), rq.get("refund_status_0")), (Some("1"), Some("SUCCESS")));

    // A forged request: return_code FAIL, unsigned.
    let mut forged: Fields =
        [("appid", APPID), ("mch_id", MCH), ("nonce_str", "x"), ("out_trade_no", "o1")].into_iter().collect();
    forged.set("sign", v2::sign(&forged, "wrong key", SignType::Md5));
    let text = ureq::post(&format!("{}/pay/orderquery", h.base)).send_string(&v2::render_xml(&forged)).unwrap();
    let answer = v2::parse_xml(&text.into_string().unwrap()).unwrap();
    assert_eq!((answer.get("return_code"), answer.get("sign")), (Some("FAIL"), None));
}

#[test]
fn v3_flow_with_signed_answers_and_encrypted_notifications() {
    let h = start();
    let order = json!({"appid": APPID, "mchid": MCH, "description": "d", "out_trade_no": "o3",
        "notify_url": format!("{}/v3/pay", h.notify), "amount": {"total": 300, "currency": "CNY"}});
    let (status, created) = h.v3("POST", "/v3/pay/transactions/native", Some(order));
    assert_eq!(status, 200, "{created}");
    assert!(created["code_url"].as_str().unwrap().starts_with("weixin://"));
    let (status, q) = h.v3("GET", &format!("/v3/pay/transactions/out-trade-no/o3?mchid={MCH}"), None);
    assert_eq!((status, q["trade_state"].as_str()), (200, Some("NOTPAY")));

    h.sim("/sim/wechat/pay", json!({"out_trade_no": "o3"}));
    let n = h.next();
    let body = std::str::from_utf8(&n.body).unwrap();
    let sig = ResponseSignature::from_headers(|name| n.header(name)).unwrap();
    sig.verify(&h.platform, body, now()).unwrap();
    let envelope: Value = serde_json::from_str(body).unwrap();
    assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
    let resource: Resource = serde_json::from_value(envelope["resource"].clone()).unwrap();
    let paid: Value = serde_json::from_slice(&resource.open(V3KEY.as_bytes()).unwrap()).unwrap();
    assert_eq!((paid["trade_state"].as_str(), paid["amount"]["total"].as_i64()), (Some("SUCCESS"), Some(300)));

    let tx = paid["transaction_id"].as_str().unwrap();
    let (status, by_id) = h.v3("GET", &format!("/v3/pay/transactions/id/{tx}?mchid={MCH}"), None);
    assert_eq!((status, by_id["out_trade_no"].as_str()), (200, Some("o3")));

    let refund = json!({"transaction_id": tx, "out_refund_no": "r3", "amount": {"refund": 100, "total": 300,
        "currency": "CNY"}, "notify_url": format!("{}/v3/refund", h.notify)});
    let (status, r) = h.v3("POST", "/v3/refund/domestic/refunds", Some(refund.clone()));
    assert_eq!((status, r["status"].as_str()), (200, Some("SUCCESS")));
    let (status, again) = h.v3("POST", "/v3/refund/domestic/refunds", Some(refund));
    assert_eq!((status, &again["refund_id"]), (200, &r["refund_id"]), "out_refund_no is idempotent");
    let rn = h.next();
    let envelope: Value = serde_json::from_slice(&rn.body).unwrap();
    assert_eq!(envelope["event_type"], "REFUND.SUCCESS");
    let (status, rq) = h.v3("GET", "/v3/refund/domestic/refunds/r3", None);
    assert_eq!((status, rq["amount"]["refund"].as_i64()), (200, Some(100)));

    // Close: refused before 5 minutes, 204 after.
    let open = json!({"appid": APPID, "mchid": MCH, "description": "d", "out_trade_no": "o4",
        "notify_url": "http://127.0.0.1:9/n", "amount": {"total": 1}});
    assert_eq!(h.v3("POST", "/v3/pay/transactions/app", Some(open)).0, 200);
    let close = json!({"mchid": MCH});
    let (status, early) = h.v3("POST", "/v3/pay/transactions/out-trade-no/o4/close", Some(close.clone()));
    assert_eq!((status, early["code"].as_str()), (400, Some("INVALID_REQUEST")));
    h.sim("/sim/wechat/clock", json!({"advance_seconds": 300}));
    let (status, body) = h.v3("POST", "/v3/pay/transactions/out-trade-no/o4/close", Some(close));
    assert_eq!((status, body), (204, Value::Null));

    // A tampered request: the signature covered another body.
    let parts = RequestParts { method: "POST", path_and_query: "/v3/refund/domestic/refunds", body: "{}" };
    let auth = Authorization::sign(&h.merchant_key, MCH, SERIAL, &parts, now(), "n").unwrap();
    let err = ureq::post(&format!("{}/v3/refund/domestic/refunds", h.base))
        .set("Authorization", &auth.header_value())
        .send_string("{\"out_refund_no\":\"x\"}")
        .unwrap_err();
    assert!(matches!(err, ureq::Error::Status(401, _)), "{err}");
}

#[test]
fn faults_timeout_keeps_the_change_and_systemerror_does_not() {
    let h = start();
    let create = |no: &str| {
        h.v2(
            "/pay/unifiedorder",
            &[
                ("body", "b"),
                ("out_trade_no", no),
                ("total_fee", "10"),
                ("spbill_create_ip", "127.0.0.1"),
                ("notify_url", "http://127.0.0.1:9/n"),
                ("trade_type", "APP"),
            ],
            SignType::Md5,
        )
    };
    h.sim("/sim/wechat/settings", json!({"timeout_ms": 50}));
    h.sim("/sim/wechat/faults", json!({"path": "/pay/unifiedorder", "kind": "timeout"}));
    let mut fields: Fields = [
        ("appid", APPID),
        ("mch_id", MCH),
        ("nonce_str", "n"),
        ("body", "b"),
        ("out_trade_no", "t1"),
        ("total_fee", "10"),
        ("spbill_create_ip", "1.1.1.1"),
        ("notify_url", "http://x/n"),
        ("trade_type", "APP"),
    ]
    .into_iter()
    .collect();
    v2::sign_in_place(&mut fields, KEY).unwrap();
    assert!(ureq::post(&format!("{}/pay/unifiedorder", h.base)).send_string(&v2::render_xml(&fields)).is_err());
    let q = h.v2("/pay/orderquery", &[("out_trade_no", "t1")], SignType::Md5);
    assert_eq!(q.get("trade_state"), Some("NOTPAY"), "the timed-out request was carried out");

    h.sim("/sim/wechat/faults", json!({"path": "/pay/unifiedorder", "kind": "systemerror"}));
    assert_eq!(create("t2").get("err_code"), Some("SYSTEMERROR"));
    assert_eq!(
        h.v2("/pay/orderquery", &[("out_trade_no", "t2")], SignType::Md5).get("err_code"),
        Some("ORDERNOTEXIST")
    );
    assert_eq!(create("t2").get("result_code"), Some("SUCCESS"));
}

#[test]
fn duplicate_and_reordered_notifications() {
    let h = start();
    let notify = format!("{}/v2", h.notify);
    for no in ["d1", "d2", "d3"] {
        h.v2(
            "/pay/unifiedorder",
            &[
                ("body", "b"),
                ("out_trade_no", no),
                ("total_fee", "1"),
                ("spbill_create_ip", "127.0.0.1"),
                ("notify_url", &notify),
                ("trade_type", "NATIVE"),
            ],
            SignType::Md5,
        );
    }
    let order_of = |h: &support::Harness| {
        let n = v2::parse_xml(std::str::from_utf8(&h.next().body).unwrap()).unwrap();
        v2::verify(&n, KEY).unwrap();
        n.get("out_trade_no").unwrap().to_string()
    };
    h.sim("/sim/wechat/faults", json!({"kind": "duplicate_notify"}));
    h.sim("/sim/wechat/pay", json!({"out_trade_no": "d1"}));
    assert_eq!((order_of(&h), order_of(&h)), ("d1".to_string(), "d1".to_string()));

    h.sim("/sim/wechat/faults", json!({"kind": "reorder_notify"}));
    h.sim("/sim/wechat/pay", json!({"out_trade_no": "d2"}));
    h.sim("/sim/wechat/pay", json!({"out_trade_no": "d3"}));
    assert_eq!((order_of(&h), order_of(&h)), ("d3".to_string(), "d2".to_string()), "the held one comes last");
}

#[test]
fn held_refund_stays_processing_until_settled() {
    let h = start();
    let notify = format!("{}/v2", h.notify);
    h.v2(
        "/pay/unifiedorder",
        &[
            ("body", "b"),
            ("out_trade_no", "h1"),
            ("total_fee", "50"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", &notify),
            ("trade_type", "JSAPI"),
            ("openid", "oX"),
        ],
        SignType::Md5,
    );
    h.sim("/sim/wechat/pay", json!({"out_trade_no": "h1"}));
    h.next();
    h.sim("/sim/wechat/settings", json!({"hold_refunds": true}));
    let refund = [
        ("out_trade_no", "h1"),
        ("out_refund_no", "hr1"),
        ("total_fee", "50"),
        ("refund_fee", "50"),
        ("notify_url", notify.as_str()),
    ];
    assert_eq!(h.v2("/secapi/pay/refund", &refund, SignType::Md5).get("result_code"), Some("SUCCESS"));
    let q = h.v2("/pay/refundquery", &[("out_refund_no", "hr1")], SignType::Md5);
    assert_eq!(q.get("refund_status_0"), Some("PROCESSING"));
    assert!(h.received.recv_timeout(std::time::Duration::from_millis(200)).is_err(), "no notification yet");
    h.sim("/sim/wechat/refunds/settle", json!({"out_refund_no": "hr1", "status": "SUCCESS"}));
    let n = v2::parse_xml(std::str::from_utf8(&h.next().body).unwrap()).unwrap();
    let info = v2::decrypt_req_info(n.get("req_info").unwrap(), KEY).unwrap();
    assert!(info.contains("<refund_status><![CDATA[SUCCESS]]></refund_status>"), "{info}");
    let q = h.v2("/pay/refundquery", &[("out_trade_no", "h1")], SignType::Md5);
    assert_eq!(q.get("refund_status_0"), Some("SUCCESS"));
}
