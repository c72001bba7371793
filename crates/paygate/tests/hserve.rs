//! The 知晓云 (hserve) face and profit sharing over HTTP, on SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use std::sync::Arc;
use support::faces::hs;
use support::{Backend, Keys, TestServer};

both!(
    seed_000_list_shape_and_isolation,
    refund_by_each_id_and_concurrently,
    profit_sharing_rules,
    concurrent_shares_never_exceed_the_cap,
    hserve_sharing_answers_as_seed_003,
    shares_and_refunds_racing_keep_both_rules
);

fn register(s: &TestServer, k: &Keys, name: &str) -> (String, i64) {
    let (st, session) = hs(
        s,
        "POST",
        &k.client_id,
        "",
        "/hserve/v2.1/register/username/",
        Some(json!({"username": name, "password": "secret-1"})),
    );
    assert_eq!(st, 201, "{session}");
    (session["token"].as_str().unwrap().to_string(), session["user_id"].as_i64().unwrap())
}

fn pay(s: &TestServer, k: &Keys, token: &str, gateway: &str, yuan: Value, extra: Value) -> Value {
    let mut body = json!({"gateway_type": gateway, "total_cost": yuan, "merchandise_description": "一条支付描述"});
    body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    let (st, created) = hs(s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    created
}

fn complete(s: &TestServer, k: &Keys, reference: &str) {
    let (st, done) = s.post(&k.test, &format!("/v1/sandbox/charges/{reference}/pay"), json!({"result": "success"}));
    assert_eq!(st, 200, "{done}");
}

fn seed_000_list_shape_and_isolation(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (alice, alice_id) = register(&s, &k, "alice");
    let js = pay(
        &s,
        &k,
        &alice,
        "weixin_tenpay_js",
        json!("398.00"),
        json!({"merchandise_record_id": "r1", "merchandise_schema_id": 7}),
    );
    for field in ["appId", "timeStamp", "nonceStr", "package", "signType", "paySign", "trade_no", "transaction_no"] {
        assert!(js.get(field).is_some(), "JSAPI answer lacks {field}: {js}");
    }
    let wap = pay(&s, &k, &alice, "weixin_tenpay_wap", json!(1), json!({}));
    assert!(wap["mweb_url"].as_str().unwrap().contains("/sandbox/charges/"));
    let qq = pay(&s, &k, &alice, "qpay_native", json!(0.5), json!({}));
    assert!(qq["code_url"].is_string());
    complete(&s, &k, js["transaction_no"].as_str().unwrap());

    // Seed 000's example: GET with --data-urlencode 'status=success'.
    let (st, page) = hs(&s, "GET", &k.client_id, &alice, "/hserve/v2.2/idp/pay/order/?status=success", None);
    assert_eq!(st, 200, "{page}");
    let meta: Vec<&String> = page["meta"].as_object().unwrap().keys().collect();
    assert_eq!(meta, ["limit", "next", "offset", "previous", "total_count"]);
    assert_eq!(page["meta"], json!({"limit": 20, "next": null, "offset": 0, "previous": null, "total_count": 1}));
    let o = &page["objects"][0];
    for field in [
        "created_at",
        "gateway_extra_info",
        "id",
        "ip_address",
        "merchandise_description",
        "merchandise_record_id",
        "merchandise_schema_id",
        "merchandise_snapshot",
        "paid_at",
        "status",
        "refund_status",
        "total_cost",
        "trade_no",
        "transaction_no",
        "updated_at",
        "created_by_id",
        "refund_amount",
        "gateway_type",
    ] {
        assert!(o.get(field).is_some(), "record lacks {field}: {o}");
    }
    assert_eq!(
        (o["status"].as_str(), o["total_cost"].as_str(), o["refund_status"].is_null()),
        (Some("success"), Some("398.00"), true)
    );
    assert_eq!(o["created_by_id"], alice_id);
    let wechat = &o["gateway_extra_info"]["wechat_response"];
    for field in [
        "appid",
        "bank_type",
        "cash_fee",
        "fee_type",
        "is_subscribe",
        "mch_id",
        "nonce_str",
        "openid",
        "out_trade_no",
        "result_code",
        "return_code",
        "sign",
        "time_end",
        "total_fee",
        "trade_type",
        "transaction_id",
    ] {
        assert!(wechat[field].is_string(), "wechat_response lacks {field}: {wechat}");
    }
    assert_eq!(
        (wechat["total_fee"].as_str(), wechat["trade_type"].as_str(), wechat["fee_type"].as_str()),
        (Some("39800"), Some("JSAPI"), Some("CNY"))
    );
    assert_eq!(wechat["out_trade_no"], js["trade_no"]);

    // order_by and keys shape the list.
    let (_, sorted) = hs(
        &s,
        "GET",
        &k.client_id,
        &alice,
        "/hserve/v2.2/idp/pay/order/?order_by=-total_cost&keys=total_cost,trade_no",
        None,
    );
    let costs: Vec<&str> =
        sorted["objects"].as_array().unwrap().iter().map(|o| o["total_cost"].as_str().unwrap()).collect();
    assert_eq!(costs, ["398.00", "1.00", "0.50"]);
    assert_eq!(sorted["objects"][0].as_object().unwrap().len(), 2, "{sorted}");
    let (_, without) = hs(
        &s,
        "GET",
        &k.client_id,
        &alice,
        "/hserve/v2.2/idp/pay/order/?order_by=total_cost&keys=-gateway_extra_info",
        None,
    );
    assert_eq!(without["objects"][0]["total_cost"], "0.50");
    assert!(
        without["objects"][0].get("gateway_extra_info").is_none() && without["objects"][0].get("trade_no").is_some()
    );

    // Bad filters are 400s naming the field, in the face's own error shape.
    for (query, param) in [
        ("status=paid", "status"),
        ("refund_status=x", "refund_status"),
        ("limit=0", "limit"),
        ("paid_at__gte=soon", "paid_at__gte"),
        ("colour=red", "colour"),
    ] {
        let (st, err) = hs(&s, "GET", &k.client_id, &alice, &format!("/hserve/v2.2/idp/pay/order/?{query}"), None);
        assert_eq!((st, err["param"].as_str()), (400, Some(param)), "{query}: {err}");
        assert!(err["error_msg"].is_string());
    }
    let (st, err) = hs(
        &s,
        "POST",
        &k.client_id,
        &alice,
        "/hserve/v2.2/idp/pay/order/",
        Some(json!({"gateway_type": "weixin_tenpay_js", "total_cost": -1})),
    );
    assert_eq!((st, err["param"].as_str()), (400, Some("total_cost")), "{err}");

    // Another user, another app: nothing of Alice's is visible.
    let (bob, _) = register(&s, &k, "bob");
    let (_, none) = hs(&s, "GET", &k.client_id, &bob, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(none["meta"]["total_count"], 0);
    let txn = js["transaction_no"].as_str().unwrap();
    let (st, _) = hs(&s, "GET", &k.client_id, &bob, &format!("/hserve/v2.0/idp/pay/order/{txn}/"), None);
    assert_eq!(st, 404);
    let other = s.create_app("other");
    let (st, _) = hs(&s, "GET", &other.client_id, &alice, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(st, 401, "a session is bound to its app");
    let (st, page) = hs(&s, "GET", &other.client_id, &other.test, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!((st, &page["meta"]["total_count"]), (200, &json!(0)));
    let (st, page) = hs(&s, "GET", &k.client_id, &k.test, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!((st, &page["meta"]["total_count"]), (200, &json!(3)), "the server key sees the whole app");
    // Users cannot refund or share: those are server operations.
    let (st, err) =
        hs(&s, "POST", &k.client_id, &alice, "/hserve/v2.2/idp/pay/refund/", Some(json!({"transaction_no": txn})));
    assert_eq!(st, 401, "{err}");
    // Sessions end at logout.
    let (st, _) = hs(&s, "POST", &k.client_id, &alice, "/hserve/v2.0/session/destroy/", None);
    assert_eq!(st, 201);
    let (st, _) = hs(&s, "GET", &k.client_id, &alice, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(st, 401);
    // Sessions expire after 30 days.
    let (carol, _) = register(&s, &k, "carol");
    s.clock.advance(paygate_core::hserve::SESSION_SECONDS - 1);
    let (st, _) = hs(&s, "GET", &k.client_id, &carol, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(st, 200);
    s.clock.advance(1);
    let (st, err) = hs(&s, "GET", &k.client_id, &carol, "/hserve/v2.2/idp/pay/order/", None);
    assert_eq!(st, 401, "{err}");
    // Browsers may call from another origin.
    let (st, headers, _) = s.raw(
        "OPTIONS",
        "",
        "/hserve/v2.2/idp/pay/order/",
        None,
        &[("origin", "http://shop.example"), ("access-control-request-method", "GET")],
    );
    assert_eq!((st, headers), (204, None));
}

fn refund_by_each_id_and_concurrently(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (user, _) = register(&s, &k, "carol");
    let p = pay(&s, &k, &user, "alipay_wap", json!(1), json!({}));
    complete(&s, &k, p["trade_no"].as_str().unwrap());
    let (_, record) = hs(
        &s,
        "GET",
        &k.client_id,
        &user,
        &format!("/hserve/v2.0/idp/pay/order/{}/", p["transaction_no"].as_str().unwrap()),
        None,
    );
    let by = [
        json!({"order_id": record["id"], "refund_amount": 0.1, "memo": "测试退款"}),
        json!({"trade_no": p["trade_no"], "refund_amount": "0.20"}),
        json!({"transaction_no": p["transaction_no"]}),
    ];
    let expected = [("0.10", "partial"), ("0.20", "partial"), ("0.70", "complete")];
    for (body, (amount, status)) in by.into_iter().zip(expected) {
        let (st, refund) = hs(&s, "POST", &k.client_id, &k.test, "/hserve/v2.2/idp/pay/refund/", Some(body));
        assert_eq!(st, 201, "{refund}");
        assert_eq!(
            (refund["refund_amount"].as_str(), refund["status"].as_str(), refund["refund_status"].as_str()),
            (Some(amount), Some("succeed"), Some(status))
        );
        for field in ["id", "order_id", "refund_no", "memo", "error_msg"] {
            assert!(refund.get(field).is_some(), "{field}: {refund}");
        }
    }
    let (st, err) =
        hs(&s, "POST", &k.client_id, &k.test, "/hserve/v2.2/idp/pay/refund/", Some(json!({"order_id": 999999})));
    assert_eq!((st, err["param"].as_str()), (404, Some("order_id")), "{err}");

    // 200 concurrent 0.01-yuan refunds of a 1.00-yuan payment: exactly 100 succeed.
    let p = pay(&s, &k, &user, "weixin_tenpay_native", json!("1.00"), json!({}));
    complete(&s, &k, p["transaction_no"].as_str().unwrap());
    let s = Arc::new(s);
    let trade_no = p["trade_no"].as_str().unwrap().to_string();
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let (s, k, trade_no) = (s.clone(), k.clone(), trade_no.clone());
            std::thread::spawn(move || {
                hs(
                    &s,
                    "POST",
                    &k.client_id,
                    &k.test,
                    "/hserve/v2.2/idp/pay/refund/",
                    Some(json!({"trade_no": trade_no, "refund_amount": 0.01})),
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|c| **c == 201).count(), 100, "{statuses:?}");
    assert!(statuses.iter().all(|c| *c == 201 || *c == 400), "{statuses:?}");
    let (_, after) = hs(&s, "GET", &k.client_id, &user, &format!("/hserve/v2.0/idp/pay/order/{trade_no}/"), None);
    assert_eq!((after["refund_amount"].as_str(), after["refund_status"].as_str()), (Some("1.00"), Some("complete")));
}

fn share(s: &TestServer, k: &Keys, order: &str, body: Value) -> (u16, Value) {
    s.post(&k.test, &format!("/v1/orders/{order}/profit_sharings"), body)
}

fn receiver(kind: &str, amount: Value) -> Value {
    json!([{"type": kind, "account": "o-receiver-1", "amount": amount, "description": "分给商户"}])
}

/// A paid test order through `channel`, optionally created for profit sharing.
fn paid(s: &TestServer, k: &Keys, no: &str, amount: i64, channel: &str, profit_sharing: bool) -> String {
    let order = s.create_order(k, &k.test, no, amount, json!({"profit_sharing": profit_sharing}));
    let id = order["id"].as_str().unwrap().to_string();
    let (st, paying) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": channel}));
    assert_eq!(st, 200, "{paying}");
    complete(s, k, paying["charges"]["data"][0]["id"].as_str().unwrap());
    id
}

fn refused(answer: (u16, Value), code: &str, words: &str) {
    let (st, body) = answer;
    assert_eq!((st, body["error"]["code"].as_str()), (400, Some(code)), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains(words), "message lacks '{words}': {body}");
}

fn profit_sharing_rules(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let wx = paid(&s, &k, "ps-wx", 1000, "wx_pub", true);
    let wx_plain = paid(&s, &k, "ps-wx-plain", 1000, "wx_lite", false);
    let ali = paid(&s, &k, "ps-ali", 1000, "alipay_qr", false);
    let unpaid = s.create_order(&k, &k.test, "ps-unpaid", 1000, json!({"profit_sharing": true}))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let multi = |amount: i64| json!({"type": "wechat_multi", "receivers": receiver("PERSONAL_OPENID", json!(amount))});

    refused(share(&s, &k, &unpaid, multi(10)), "order_not_paid", "only a paid order");
    refused(share(&s, &k, &ali, multi(10)), "share_channel_mismatch", "WeChat Pay");
    refused(
        share(&s, &k, &wx, json!({"type": "alipay", "receivers": receiver("userId", json!(10))})),
        "share_channel_mismatch",
        "Alipay",
    );
    refused(share(&s, &k, &wx_plain, multi(10)), "profit_sharing_not_enabled", "profit_sharing: true");
    refused(
        share(&s, &k, &wx, json!({"type": "wechat_single", "receivers": receiver("PERSONAL_WECHATID", json!(10))})),
        "receiver_type_deprecated",
        "deprecated",
    );
    let (st, err) =
        share(&s, &k, &wx, json!({"type": "wechat_multi", "receivers": receiver("PERSONAL_OPENID", json!(1.5))}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("receivers[0].amount")), "{err}");
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"type": "MERCHANT_ID", "account": format!("m{i}"), "amount": 1, "description": "d"}))
        .collect();
    let (st, err) = share(&s, &k, &wx, json!({"type": "wechat_multi", "receivers": many}));
    assert!(st == 400 && err["error"]["message"].as_str().unwrap().contains("At most 50"), "{err}");
    refused(share(&s, &k, &wx, multi(301)), "share_exceeds_limit", "at most 300 fen");

    // Alipay sharing with its own receiver types.
    let (st, a) = share(
        &s,
        &k,
        &ali,
        json!({"type": "alipay", "receivers": [
        {"type": "userId", "account": "2088000000000001", "amount": 100, "description": "d"},
        {"type": "loginName", "account": "shop@example.com", "amount": 50, "description": "d"}]}),
    );
    assert_eq!((st, a["status"].as_str(), a["amount"].as_i64()), (200, Some("succeeded"), Some(150)), "{a}");

    // The same out_order_no is the same request; reused for another request it is refused.
    let receivers = receiver("PERSONAL_OPENID", json!(100));
    let body = json!({"type": "wechat_multi", "out_order_no": "P20261122001", "receivers": receivers});
    let (st, first) = share(&s, &k, &wx, body.clone());
    assert_eq!(st, 200, "{first}");
    let (_, again) = share(&s, &k, &wx, body);
    assert_eq!(again["id"], first["id"]);
    let (st, err) = share(
        &s,
        &k,
        &wx,
        json!({"type": "wechat_multi", "out_order_no": "P20261122001", "receivers": receiver("MERCHANT_ID", json!(5))}),
    );
    assert_eq!((st, err["error"]["code"].as_str()), (409, Some("out_order_no_reused")), "{err}");
    let (_, order) = s.get(&k.test, &format!("/v1/orders/{wx}"));
    assert_eq!(order["amount_shared"], 100);

    // Unreturned shares block refunds until they are returned (分账回退).
    refused(
        s.post(&k.test, &format!("/v1/orders/{wx}/order_refunds"), json!({"amount": 10})),
        "profit_shares_unreturned",
        "return the shares",
    );
    let ps = first["id"].as_str().unwrap();
    let (st, err) = s.post(&k.test, &format!("/v1/orders/{wx}/profit_sharings/{ps}/returns"), json!({"amount": 101}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("amount")), "{err}");
    let (st, back) = s.post(&k.test, &format!("/v1/orders/{wx}/profit_sharings/{ps}/returns"), json!({}));
    assert_eq!((st, back["amount_returned"].as_i64()), (200, Some(100)), "{back}");
    refused(
        s.post(&k.test, &format!("/v1/orders/{wx}/profit_sharings/{ps}/returns"), json!({})),
        "share_already_returned",
        "in full",
    );
    let (st, refund) = s.post(&k.test, &format!("/v1/orders/{wx}/order_refunds"), json!({"amount": 500}));
    assert_eq!(st, 200, "{refund}");
    // The cap follows refunds: 30 % of the 500 fen left is 150.
    refused(share(&s, &k, &wx, multi(151)), "share_exceeds_limit", "at most 150 fen");
    // The cap is configurable per app.
    s.rt.block_on(s.app.set_app_max_share(&k.app, 50)).unwrap();
    let (st, _) = share(&s, &k, &wx, multi(250));
    assert_eq!(st, 200);
    // Multi sharing ends with an explicit finish; a single share ends it by itself.
    let (st, _) = s.post(&k.test, &format!("/v1/orders/{wx}/profit_sharings/finish"), json!({}));
    assert_eq!(st, 200);
    refused(share(&s, &k, &wx, multi(1)), "sharing_finished", "finished");
    let wx2 = paid(&s, &k, "ps-wx-2", 1000, "wx_pub_qr", true);
    let (st, single) =
        share(&s, &k, &wx2, json!({"type": "wechat_single", "receivers": receiver("MERCHANT_ID", json!(100))}));
    assert_eq!((st, single["status"].as_str()), (200, Some("succeeded")), "{single}");
    refused(share(&s, &k, &wx2, multi(1)), "sharing_finished", "finished");
    let (_, list) = s.get(&k.test, &format!("/v1/orders/{wx}/profit_sharings"));
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    // Each settled share is an event, written with it.
    let (_, events) = s.get(&k.test, "/v1/events?type=profit_sharing.succeeded&limit=100");
    assert_eq!(events["data"].as_array().unwrap().len(), 4, "one per settled share, none for the replay: {events}");
    let (_, events) = s.get(&k.test, "/v1/events?type=profit_sharing.returned");
    assert_eq!(events["data"][0]["data"]["object"]["amount_returned"], 100);
    // Another app cannot see or share this order.
    let other = s.create_app("other");
    let (st, _) = share(&s, &other, &wx2, multi(1));
    assert_eq!(st, 404);
}

fn concurrent_shares_never_exceed_the_cap(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = paid(&s, &k, "ps-race", 1000, "wx_pub", true);
    let s = Arc::new(s);
    let handles: Vec<_> = (0..100)
        .map(|_| {
            let (s, k, order) = (s.clone(), k.clone(), order.clone());
            std::thread::spawn(move || {
                share(
                    &s,
                    &k,
                    &order,
                    json!({"type": "wechat_multi", "receivers": receiver("PERSONAL_OPENID", json!(10))}),
                )
                .0
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|c| **c == 200).count(), 30, "{statuses:?}");
    let (_, o) = s.get(&k.test, &format!("/v1/orders/{order}"));
    assert_eq!(o["amount_shared"], 300);
}

fn hserve_sharing_answers_as_seed_003(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (user, _) = register(&s, &k, "dave");
    let wx = pay(&s, &k, &user, "weixin_tenpay_native", json!(10), json!({"profit_sharing": true}));
    let ali = pay(&s, &k, &user, "alipay_page", json!(10), json!({}));
    complete(&s, &k, wx["trade_no"].as_str().unwrap());
    complete(&s, &k, ali["trade_no"].as_str().unwrap());
    let (_, notify) = hs(
        &s,
        "GET",
        &k.client_id,
        &user,
        &format!("/hserve/v2.0/idp/pay/order/{}/", wx["trade_no"].as_str().unwrap()),
        None,
    );
    let appid = notify["gateway_extra_info"]["wechat_response"]["appid"].clone();
    let receivers = receiver("MERCHANT_ID", json!(100));
    let path = "/hserve/v2.2/idp/pay/wechat/multi-profit-sharing/";
    let (st, err) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        path,
        Some(json!({"trade_no": wx["trade_no"], "appid": "wx-someone-else", "receivers": receivers})),
    );
    assert_eq!((st, err["param"].as_str()), (400, Some("appid")), "{err}");
    let (st, ok) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        path,
        Some(json!({"trade_no": wx["trade_no"], "appid": appid, "receivers": receivers})),
    );
    assert_eq!(st, 200, "{ok}");
    for field in ["return_code", "appid", "mch_id", "trade_no", "wechat_order_no"] {
        assert!(ok[field].is_string(), "{field}: {ok}");
    }
    assert_eq!((ok["return_code"].as_str(), &ok["appid"]), (Some("SUCCESS"), &appid));
    let (st, err) = hs(
        &s,
        "POST",
        &k.client_id,
        &user,
        path,
        Some(json!({"trade_no": wx["trade_no"], "appid": appid, "receivers": receivers})),
    );
    assert_eq!(st, 401, "users cannot share: {err}");
    let (st, done) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        "/hserve/v2.2/idp/pay/wechat/profit-sharing/finish/",
        Some(json!({"trade_no": wx["trade_no"]})),
    );
    assert_eq!(st, 200, "{done}");
    let (st, a) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        "/hserve/v2.2/idp/pay/alipay/profit-sharing/",
        Some(json!({"trade_no": ali["trade_no"], "receivers": receiver("loginName", json!(300))})),
    );
    assert_eq!((st, a["return_code"].as_str(), &a["trade_no"]), (200, Some("10000"), &ali["trade_no"]), "{a}");
    // A refund is refused until the share is returned, then goes through.
    let (st, err) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        "/hserve/v2.2/idp/pay/refund/",
        Some(json!({"trade_no": ali["trade_no"]})),
    );
    assert!(st == 400 && err["error_msg"].as_str().unwrap().contains("return the shares"), "{err}");
    let (st, back) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        "/hserve/v2.2/idp/pay/profit-sharing/return/",
        Some(json!({"trade_no": ali["trade_no"], "profit_sharing_id": a["profit_sharing_id"]})),
    );
    assert_eq!(st, 200, "{back}");
    let (st, refund) = hs(
        &s,
        "POST",
        &k.client_id,
        &k.test,
        "/hserve/v2.2/idp/pay/refund/",
        Some(json!({"trade_no": ali["trade_no"]})),
    );
    assert_eq!((st, refund["refund_amount"].as_str()), (201, Some("10.00")), "{refund}");
}

/// Shares and refunds of one order at once: a refund needs no unreturned share, a share is
/// capped by what is paid and not refunded. Whatever the interleaving, the end state obeys both.
fn shares_and_refunds_racing_keep_both_rules(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = paid(&s, &k, "ps-mixed", 1000, "wx_pub", true);
    let s = Arc::new(s);
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let (s, k, order) = (s.clone(), k.clone(), order.clone());
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    (
                        "share",
                        share(
                            &s,
                            &k,
                            &order,
                            json!({"type": "wechat_multi", "receivers": receiver("PERSONAL_OPENID", json!(10))}),
                        )
                        .0,
                    )
                } else {
                    ("refund", s.post(&k.test, &format!("/v1/orders/{order}/order_refunds"), json!({"amount": 10})).0)
                }
            })
        })
        .collect();
    let results: Vec<(&str, u16)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(results.iter().all(|(_, st)| *st == 200 || *st == 400), "{results:?}");
    let won = |kind: &str| results.iter().filter(|(k, st)| *k == kind && *st == 200).count() as i64;
    let (_, o) = s.get(&k.test, &format!("/v1/orders/{order}"));
    let (shared, refunded) = (o["amount_shared"].as_i64().unwrap(), o["amount_refunded"].as_i64().unwrap());
    assert_eq!((shared, refunded), (won("share") * 10, won("refund") * 10), "{o}");
    assert!(shared * 10_000 <= (1000 - refunded) * 3000, "shared {shared} exceeds 30 % of {}", 1000 - refunded);
    assert!(shared > 0 || refunded > 0);
    // Once a share went out, refunds are refused until it comes back.
    if shared > 0 {
        refused(
            s.post(&k.test, &format!("/v1/orders/{order}/order_refunds"), json!({"amount": 10})),
            "profit_shares_unreturned",
            "return the shares",
        );
    }
}
