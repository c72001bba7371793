//! Profit sharing on the simulator, v2 (HMAC-SHA256 XML) and v3 (JSON): receivers first, the 30 % cap,
//! idempotent out_order_no, finish/unfreeze, returns bounded by what a receiver got.

mod support;

use paygate_channels::wechat::v2::SignType;
use serde_json::json;
use support::{start, Harness, APPID, MCH};

fn paid_v2_order(h: &Harness, no: &str, total: &str) -> String {
    h.v2(
        "/pay/unifiedorder",
        &[
            ("body", "b"),
            ("out_trade_no", no),
            ("total_fee", total),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", "http://127.0.0.1:9/n"),
            ("trade_type", "NATIVE"),
            ("profit_sharing", "Y"),
        ],
        SignType::HmacSha256,
    );
    let paid = h.sim("/sim/wechat/pay", json!({"out_trade_no": no}));
    paid["transaction_id"].as_str().unwrap().to_string()
}

#[test]
fn v2_profit_sharing_rules() {
    let h = start();
    let tx = paid_v2_order(&h, "s1", "1000");
    let receivers = r#"[{"type":"MERCHANT_ID","account":"190001","amount":200,"description":"d"}]"#;
    let hmac = SignType::HmacSha256;

    // Receivers must be added first.
    let early = h.v2(
        "/secapi/pay/multiprofitsharing",
        &[("transaction_id", &tx), ("out_order_no", "p1"), ("receivers", receivers)],
        hmac,
    );
    assert_eq!(early.get("err_code"), Some("RECEIVER_INVALID"), "{early:?}");
    let added = h.v2(
        "/pay/profitsharingaddreceiver",
        &[("receiver", r#"{"type":"MERCHANT_ID","account":"190001","name":"n","relation_type":"PARTNER"}"#)],
        hmac,
    );
    assert_eq!(added.get("result_code"), Some("SUCCESS"));

    let first = h.v2(
        "/secapi/pay/multiprofitsharing",
        &[("transaction_id", &tx), ("out_order_no", "p1"), ("receivers", receivers)],
        hmac,
    );
    assert_eq!(first.get("result_code"), Some("SUCCESS"), "{first:?}");
    let again = h.v2(
        "/secapi/pay/multiprofitsharing",
        &[("transaction_id", &tx), ("out_order_no", "p1"), ("receivers", receivers)],
        hmac,
    );
    assert_eq!(again.get("order_id"), first.get("order_id"), "same out_order_no, same request");

    // 200 shared; 101 more passes 30 % of 1000.
    let over = r#"[{"type":"MERCHANT_ID","account":"190001","amount":101,"description":"d"}]"#;
    let capped = h.v2(
        "/secapi/pay/multiprofitsharing",
        &[("transaction_id", &tx), ("out_order_no", "p2"), ("receivers", over)],
        hmac,
    );
    assert_eq!(capped.get("err_code"), Some("INVALID_REQUEST"), "{capped:?}");

    // MD5 is refused for profit sharing (return_code FAIL, unsigned): checked without the signed-answer helper.
    let md5 = h.v2_raw("/pay/profitsharingquery", &[("transaction_id", &tx), ("out_order_no", "p1")], SignType::Md5);
    assert_eq!(md5.get("return_code"), Some("FAIL"));
    let q = h.v2("/pay/profitsharingquery", &[("transaction_id", &tx), ("out_order_no", "p1")], hmac);
    assert!(q.get("receivers").unwrap().contains("\"amount\":200"));

    let back = |no: &str, amount: &str| {
        h.v2(
            "/secapi/pay/profitsharingreturn",
            &[
                ("out_order_no", "p1"),
                ("out_return_no", no),
                ("return_account_type", "MERCHANT_ID"),
                ("return_account", "190001"),
                ("return_amount", amount),
                ("description", "back"),
            ],
            hmac,
        )
    };
    assert_eq!(back("b1", "150").get("result"), Some("SUCCESS"));
    assert_eq!(back("b2", "51").get("err_code"), Some("INVALID_REQUEST"), "more than the receiver got");
    let rq = h.v2("/pay/profitsharingreturnquery", &[("out_order_no", "p1"), ("out_return_no", "b1")], hmac);
    assert_eq!(rq.get("return_amount"), Some("150"));

    let finish = h.v2(
        "/secapi/pay/profitsharingfinish",
        &[("transaction_id", &tx), ("out_order_no", "f1"), ("amount", "0"), ("description", "done")],
        hmac,
    );
    assert_eq!(finish.get("result_code"), Some("SUCCESS"), "{finish:?}");
    let after = h.v2(
        "/secapi/pay/profitsharing",
        &[("transaction_id", &tx), ("out_order_no", "p3"), ("receivers", receivers)],
        hmac,
    );
    assert_eq!(after.get("err_code"), Some("INVALID_REQUEST"), "finished orders share no more");

    // An order created without profit_sharing=Y cannot be shared.
    h.v2(
        "/pay/unifiedorder",
        &[
            ("body", "b"),
            ("out_trade_no", "s2"),
            ("total_fee", "100"),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", "http://127.0.0.1:9/n"),
            ("trade_type", "NATIVE"),
        ],
        hmac,
    );
    let plain = h.sim("/sim/wechat/pay", json!({"out_trade_no": "s2"}));
    let refused = h.v2(
        "/secapi/pay/profitsharing",
        &[
            ("transaction_id", plain["transaction_id"].as_str().unwrap()),
            ("out_order_no", "p4"),
            ("receivers", receivers),
        ],
        hmac,
    );
    assert_eq!(refused.get("err_code"), Some("ORDER_NOT_READY"));
}

#[test]
fn v3_profit_sharing_rules() {
    let h = start();
    let order = json!({"appid": APPID, "mchid": MCH, "description": "d", "out_trade_no": "v3s",
        "notify_url": "http://127.0.0.1:9/n", "amount": {"total": 1000}, "settle_info": {"profit_sharing": true}});
    assert_eq!(h.v3("POST", "/v3/pay/transactions/native", Some(order)).0, 200);
    let paid = h.sim("/sim/wechat/pay", json!({"out_trade_no": "v3s"}));
    let tx = paid["transaction_id"].as_str().unwrap();
    let share = |no: &str, amount: i64, unfreeze: bool| {
        h.v3(
            "POST",
            "/v3/profitsharing/orders",
            Some(json!({"appid": APPID, "transaction_id": tx, "out_order_no": no, "unfreeze_unsplit": unfreeze,
                "receivers": [{"type": "MERCHANT_ID", "account": "190001", "amount": amount, "description": "d"}]})),
        )
    };
    assert_eq!(share("o1", 100, false).1["code"], "RECEIVER_INVALID");
    let mut add = json!({"appid": APPID, "type": "MERCHANT_ID", "account": "190001", "relation_type": "PARTNER"});
    // v3 takes a name only encrypted with the platform key: a plain one does not decrypt.
    add["name"] = json!("示例商户全称");
    let (status, plain) = h.v3("POST", "/v3/profitsharing/receivers/add", Some(add.clone()));
    assert_eq!((status, &plain["code"]), (400, &json!("PARAM_ERROR")), "{plain}");
    add.as_object_mut().unwrap().remove("name");
    assert_eq!(h.v3("POST", "/v3/profitsharing/receivers/add", Some(add)).0, 200);
    let (status, first) = share("o1", 100, false);
    assert_eq!((status, first["state"].as_str()), (200, Some("FINISHED")), "{first}");
    assert_eq!(share("o2", 201, false).1["code"], "INVALID_REQUEST", "30 % cap");
    let (_, amounts) = h.v3("GET", &format!("/v3/profitsharing/transactions/{tx}/amounts"), None);
    assert_eq!(amounts["unsplit_amount"], 900);
    let ret = json!({"out_order_no": "o1", "out_return_no": "r1", "return_mchid": "190001", "amount": 40,
        "description": "back"});
    let (status, back) = h.v3("POST", "/v3/profitsharing/return-orders", Some(ret));
    assert_eq!((status, back["result"].as_str()), (200, Some("SUCCESS")));
    let (status, q) = h.v3("GET", "/v3/profitsharing/return-orders/r1?out_order_no=o1", None);
    assert_eq!((status, q["amount"].as_i64()), (200, Some(40)));
    let unfreeze = json!({"transaction_id": tx, "out_order_no": "u1", "description": "done"});
    assert_eq!(h.v3("POST", "/v3/profitsharing/orders/unfreeze", Some(unfreeze)).0, 200);
    assert_eq!(share("o3", 1, false).1["code"], "INVALID_REQUEST");
    let (_, amounts) = h.v3("GET", &format!("/v3/profitsharing/transactions/{tx}/amounts"), None);
    assert_eq!(amounts["unsplit_amount"], 0);
}
