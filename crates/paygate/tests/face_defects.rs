//! Regression stories for issue 8's face items (10, 12, 13, 14, 17, 18), each on SQLite and on
//! PostgreSQL against the real server: what a 知晓云 SDK user, a cashier, a SaaS provider and an
//! attacker sent, and what they must get back.

mod support;

use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use support::faces::{hs, md5_sign};
use support::{Backend, Keys, TestServer};

both!(
    hserve_records_follow_seed_003,
    hserve_queries_are_bounded,
    cashier_names_payments_and_fields_as_sent,
    saas_wechat_fields_follow_wechat_definitions,
    list_limits_out_of_range_are_refused,
    hserve_logins_are_throttled,
    client_numbers_never_overflow,
    secret_keys_are_unbiased
);

const LIST: &str = "/hserve/v2.2/idp/pay/order/";
const REFUND: &str = "/hserve/v2.2/idp/pay/refund/";
/// A WeChat payment code the sandbox pays at once.
const WECHAT_CODE: &str = "134567890123456789";

fn register(s: &TestServer, k: &Keys, name: &str) -> (String, i64) {
    let body = json!({"username": name, "password": "secret-1"});
    let (st, session) = hs(s, "POST", &k.client_id, "", "/hserve/v2.1/register/username/", Some(body));
    assert_eq!(st, 201, "{session}");
    (session["token"].as_str().unwrap().to_string(), session["user_id"].as_i64().unwrap())
}

fn login(s: &TestServer, k: &Keys, name: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": name, "password": password});
    hs(s, "POST", &k.client_id, "", "/hserve/v2.1/login/username/", Some(body))
}

fn pay(s: &TestServer, k: &Keys, token: &str, gateway: &str, yuan: &str) -> Value {
    let body = json!({"gateway_type": gateway, "total_cost": yuan, "merchandise_description": "一条支付描述"});
    let (st, created) = hs(s, "POST", &k.client_id, token, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!(st, 201, "{created}");
    created
}

fn complete(s: &TestServer, k: &Keys, reference: &str) {
    let (st, done) = s.post(&k.test, &format!("/v1/sandbox/charges/{reference}/pay"), json!({"result": "success"}));
    assert_eq!(st, 200, "{done}");
}

/// The server key's view of the list with `query`: the ids, in order.
fn ids(s: &TestServer, k: &Keys, query: &str) -> Vec<i64> {
    let (st, page) = hs(s, "GET", &k.client_id, &k.test, &format!("/hserve/v2.2/idp/pay/order/?{query}"), None);
    assert_eq!(st, 200, "{query}: {page}");
    assert_eq!(page["meta"]["total_count"].as_u64(), Some(page["objects"].as_array().unwrap().len() as u64), "{query}");
    page["objects"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect()
}

/// `where` as the SDK sends it: JSON, percent-encoded.
fn where_(v: Value) -> String {
    let text = v.to_string();
    let encoded: String = text
        .bytes()
        .map(|b| match b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect();
    format!("where={encoded}")
}

fn hserve_records_follow_seed_003(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (alice, alice_id) = register(&s, &k, "alice");
    let native = pay(&s, &k, &alice, "weixin_tenpay_native", "1.00");
    let page = pay(&s, &k, &alice, "alipay_page", "2.00");
    let js = pay(&s, &k, &alice, "weixin_tenpay_js", "3.00");
    let (st, anon) = hs(&s, "POST", &k.client_id, "", "/hserve/v2.0/login/anonymous/", None);
    assert_eq!(st, 201, "{anon}");
    let wap = pay(&s, &k, anon["token"].as_str().unwrap(), "alipay_wap", "4.00");
    // The app's server pays too (no creator at all).
    let srv = pay(&s, &k, &k.test, "qpay_native", "5.00");
    let id = |r: &Value| r["id"].as_i64().unwrap();
    let [native_id, page_id, js_id, wap_id, srv_id] = [&native, &page, &js, &wap, &srv].map(id);
    let created = s.clock.now_for_tests();
    s.clock.advance(10);
    complete(&s, &k, page["trade_no"].as_str().unwrap());
    complete(&s, &k, js["transaction_no"].as_str().unwrap());
    let paid = s.clock.now_for_tests();

    // created_by_name (seed 003) is shown and filtered: the creator's username, null for anonymous users.
    let one = |token: &str, reference: &Value| {
        let reference = reference.as_str().map(str::to_string).unwrap_or_else(|| reference.to_string());
        hs(&s, "GET", &k.client_id, token, &format!("/hserve/v2.0/idp/pay/order/{reference}/"), None).1
    };
    let record = one(&alice, &page["transaction_no"]);
    assert_eq!((&record["created_by_name"], &record["created_by_id"]), (&json!("alice"), &json!(alice_id)), "{record}");
    assert_eq!((record["updated_at"].as_i64(), record["paid_at"].as_i64()), (Some(paid), Some(paid)));
    let anon_record = one(&k.test, &json!(wap_id));
    assert!(anon_record.get("created_by_name").is_some_and(Value::is_null), "{anon_record}");
    assert_eq!(ids(&s, &k, "created_by_name=alice&order_by=id"), [native_id, page_id, js_id]);
    let alices = where_(json!({"created_by_name": {"$eq": "alice"}, "total_cost": {"$gte": "2"}}));
    assert_eq!(ids(&s, &k, &alices), [js_id, page_id]);
    assert_eq!(ids(&s, &k, "created_by_name__isnull=true"), [srv_id, wap_id]);

    // A refund moves updated_at (and refund_amount, which is filterable in yuan, zero included).
    s.clock.advance(100);
    let body = json!({"order_id": page_id, "refund_amount": "0.50"});
    let (st, refund) = hs(&s, "POST", &k.client_id, &k.test, REFUND, Some(body));
    assert_eq!(st, 201, "{refund}");
    let refunded_at = s.clock.now_for_tests();
    let record = one(&alice, &json!(page_id));
    let times = ["updated_at", "paid_at", "created_at"].map(|t| record[t].as_i64().unwrap());
    assert_eq!(times, [refunded_at, paid, created], "{record}");
    assert_eq!(ids(&s, &k, &format!("updated_at__gte={refunded_at}")), [page_id]);
    assert_eq!(ids(&s, &k, "order_by=-updated_at,id"), [page_id, js_id, native_id, wap_id, srv_id]);
    assert_eq!(ids(&s, &k, "refund_amount=0.5"), [page_id]);
    assert_eq!(ids(&s, &k, "refund_amount=0&order_by=id"), [native_id, js_id, wap_id, srv_id]);

    // refund_status null: by __isnull and by the SDK's Query.isNull / isNotNull (in `where`).
    assert_eq!(ids(&s, &k, "refund_status__isnull=true&order_by=id"), [native_id, js_id, wap_id, srv_id]);
    assert_eq!(ids(&s, &k, "refund_status__isnull=false"), [page_id]);
    let sdk_is_null = where_(json!({"$and": [{"refund_status": {"$isnull": true}}]}));
    assert_eq!(ids(&s, &k, &format!("order_by=id&{sdk_is_null}")), [native_id, js_id, wap_id, srv_id]);
    assert_eq!(ids(&s, &k, &where_(json!({"refund_status": {"$isnull": false}}))), [page_id]);
    assert_eq!(ids(&s, &k, &where_(json!({"refund_status": null, "status": "success"}))), [js_id]);
    assert_eq!(ids(&s, &k, "refund_status=partial"), [page_id]);

    // gateway_type takes families and exact types, one or in a list, mixed too.
    assert_eq!(ids(&s, &k, "gateway_type__in=weixin_tenpay_native,alipay_page&order_by=id"), [native_id, page_id]);
    assert_eq!(ids(&s, &k, "gateway_type__in=weixin_tenpay_js,alipay&order_by=id"), [page_id, js_id, wap_id]);
    assert_eq!(ids(&s, &k, "gateway_type__nin=weixin_tenpay_native,alipay&order_by=id"), [js_id, srv_id]);
    assert_eq!(ids(&s, &k, "gateway_type__ne=alipay_wap&order_by=id"), [native_id, page_id, js_id, srv_id]);
    let exact = where_(json!({"gateway_type": {"$in": ["alipay_wap", "weixin_tenpay_native"]}}));
    assert_eq!(ids(&s, &k, &format!("order_by=id&{exact}")), [native_id, wap_id]);
    let unknown = format!("{LIST}?gateway_type__in=weixin_tenpay,paypal");
    let (st, err) = hs(&s, "GET", &k.client_id, &k.test, &unknown, None);
    assert_eq!((st, err["param"].as_str()), (400, Some("gateway_type__in")), "{err}");
    assert!(err["error_msg"].as_str().unwrap().contains("paypal"), "{err}");

    // Nulls sort at the same end on both databases: first ascending, last descending.
    assert_eq!(ids(&s, &k, "order_by=paid_at,id"), [native_id, wap_id, srv_id, page_id, js_id]);
    assert_eq!(ids(&s, &k, "order_by=-paid_at,id"), [page_id, js_id, native_id, wap_id, srv_id]);
    // The anonymous user was created after alice: a larger id. The server's record has none.
    assert_eq!(ids(&s, &k, "order_by=-created_by_id,id"), [wap_id, native_id, page_id, js_id, srv_id]);
    assert_eq!(ids(&s, &k, "order_by=created_by_id,id"), [srv_id, native_id, page_id, js_id, wap_id]);
    assert_eq!(ids(&s, &k, "order_by=created_by_name,-id"), [srv_id, wap_id, js_id, page_id, native_id]);
}

fn hserve_queries_are_bounded(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (alice, _) = register(&s, &k, "alice");
    pay(&s, &k, &alice, "weixin_tenpay_native", "1.00");
    let list = |query: &str| hs(&s, "GET", &k.client_id, &alice, &format!("/hserve/v2.2/idp/pay/order/?{query}"), None);
    // 2 000 sort terms were a 500 on SQLite.
    let (st, err) = list(&format!("order_by={}", vec!["id"; 2000].join(",")));
    assert_eq!((st, err["param"].as_str()), (400, Some("order_by")), "{err}");
    assert!(err["error_msg"].as_str().unwrap().contains("at most"), "{err}");
    let (st, _) = list(&format!("order_by={}", ["-paid_at"; 8].join(",")));
    assert_eq!(st, 200);
    // Deep nesting, long lists and many conditions are refused naming the parameter, never a 500.
    let mut deep = json!({"status": "pending"});
    for _ in 0..40 {
        deep = json!({"$and": [deep]});
    }
    let (st, err) = list(&where_(deep));
    assert_eq!((st, err["param"].as_str()), (400, Some("where")), "{err}");
    let (st, err) = list(&where_(json!({"id": {"$in": vec![7; 1001]}})));
    assert_eq!((st, err["param"].as_str()), (400, Some("where.id")), "{err}");
    let many: Vec<String> = (0..1001).map(|i| i.to_string()).collect();
    let (st, err) = list(&format!("id__in={}", many.join(",")));
    assert_eq!((st, err["param"].as_str()), (400, Some("id__in")), "{err}");
    // The budget counts the whole query: plain filters and where together.
    let half: Vec<String> = (0..600).map(|i| i.to_string()).collect();
    let (st, err) = list(&format!("id__in={}&{}", half.join(","), where_(json!({"id": {"$nin": vec![7; 600]}}))));
    assert_eq!((st, err["param"].as_str()), (400, Some("where.id")), "{err}");
    // 1 000 refund statuses (all "", no refund) are one condition, not an OR chain too deep for SQLite.
    let (st, page) = list(&format!("refund_status__in={}", ",".repeat(999)));
    assert_eq!((st, &page["meta"]["total_count"]), (200, &json!(1)), "{page}");
    // Values that compare with nothing are refused, not a 500 from the database.
    for (q, param) in [
        (where_(json!({"paid_at": {"$gt": null}})), "where.paid_at"),
        (where_(json!({"paid_at": {"$eq": true}})), "where.paid_at"),
        (where_(json!({"id": {"$in": [[1]]}})), "where.id"),
        (where_(json!({"id": {"$in": [null]}})), "where.id"),
        (where_(json!({"refund_status": {"$isnull": "yes"}})), "where.refund_status"),
        ("refund_status__isnull=perhaps".to_string(), "refund_status__isnull"),
        ("total_cost__gt=-1".to_string(), "total_cost__gt"),
    ] {
        let (st, err) = list(&q);
        assert_eq!((st, err["param"].as_str()), (400, Some(param)), "{q}: {err}");
    }
}

/// A cashier envelope with `timestamp` as given; returns the status and the parsed `result`.
fn cashier_at(s: &TestServer, k: &Keys, op: &str, biz: Value, timestamp: Value) -> (u16, Value) {
    let (open_app_id, secret, token) = &k.cashier;
    let mut env = json!({
        "open_app_id": open_app_id, "timestamp": timestamp, "sign_type": "MD5", "token": token,
        "biz_content": biz.to_string(),
    });
    let sign = md5_sign(env.as_object().unwrap(), secret);
    env["sign"] = json!(sign);
    let (status, raw) = s.call("POST", "", &format!("/api/v2/cashier/{op}"), Some(env.to_string()), &[]);
    (status, serde_json::from_str(raw["result"].as_str().unwrap_or_else(|| panic!("no result: {raw}"))).unwrap())
}

fn cashier(s: &TestServer, k: &Keys, op: &str, biz: Value) -> (u16, Value) {
    // A nonce per envelope: two identical envelopes in one second are a replay.
    let mut biz = biz;
    biz["nonce"] = json!(format!("{:?}", std::time::Instant::now()));
    cashier_at(s, k, op, biz, json!(s.clock.now_for_tests()))
}

fn saas(s: &TestServer, k: &Keys, body: Value) -> (u16, Value) {
    let (accessid, key) = &k.saas;
    let mut body = body;
    body["accessid"] = json!(accessid);
    let sign = md5_sign(body.as_object().unwrap(), key).to_uppercase();
    body["sign"] = json!(sign);
    s.call("POST", "", "/api/v1/pay/wx/query", Some(body.to_string()), &[])
}

fn cashier_names_payments_and_fields_as_sent(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (st, paid) = cashier(&s, &k, "pay", json!({"out_trade_no": "t-1", "total_fee": 300, "auth_code": WECHAT_CODE}));
    assert_eq!(st, 200, "{paid}");
    let (pay_no, order_no) = (paid["data"]["pay_no"].as_str().unwrap(), paid["data"]["order_no"].as_str().unwrap());
    // Seed 001's own request example queries by order_no: the order_no its answers carry.
    let (st, q) = cashier(&s, &k, "query", json!({"order_no": order_no}));
    let found = (q["data"]["pay_no"].as_str(), q["data"]["order_no"].as_str());
    assert_eq!((st, found), (200, (Some(pay_no), Some(order_no))), "{q}");
    let (st, q) = cashier(&s, &k, "query", json!({"order_no": order_no.parse::<u64>().unwrap()}));
    assert_eq!((st, q["data"]["pay_no"].as_str()), (200, Some(pay_no)), "unquoted: {q}");
    let (st, q) = cashier(&s, &k, "query", json!({"order_no": "300230547599788000"}));
    assert_eq!((st, q["code"].as_i64(), q["param"].as_str()), (404, Some(40004), Some("order_no")), "{q}");
    let other = s.create_app("other");
    let (st, _) = cashier(&s, &other, "query", json!({"order_no": order_no}));
    assert_eq!(st, 404, "another app's order_no is not found");
    let (st, r) = cashier(&s, &k, "refund", json!({"order_no": order_no, "refund_fee": 100}));
    assert_eq!((st, r["data"]["refunded_fee"].as_i64()), (200, Some(100)), "{r}");

    // Errors name the fields the caller sent: refund_fee and refund_reason, not amount and description.
    for (biz, param) in [
        (json!({"pay_no": pay_no, "refund_fee": 201}), "refund_fee"),
        (json!({"pay_no": pay_no, "refund_fee": 0}), "refund_fee"),
        (json!({"pay_no": pay_no, "refund_fee": -5}), "refund_fee"),
        (json!({"pay_no": pay_no, "refund_fee": 1, "refund_reason": "bad\u{7}reason"}), "refund_reason"),
    ] {
        let (st, err) = cashier(&s, &k, "refund", biz.clone());
        assert_eq!((st, err["code"].as_i64(), err["param"].as_str()), (400, Some(40002), Some(param)), "{biz}: {err}");
    }
    let (st, r) = cashier(&s, &k, "refund", json!({"out_trade_no": "t-1"}));
    assert_eq!((st, r["data"]["refunded_fee"].as_i64()), (200, Some(300)), "{r}");
    let (st, err) = cashier(&s, &k, "refund", json!({"pay_no": pay_no, "refund_fee": 1}));
    assert_eq!((st, err["param"].as_str()), (400, Some("refund_fee")), "nothing left: {err}");

    // The same rule on the 知晓云 face: refund_amount (yuan) and memo are what BaaS.refund sends.
    let (alice, _) = register(&s, &k, "alice");
    let rec = pay(&s, &k, &alice, "alipay_page", "1.00");
    complete(&s, &k, rec["trade_no"].as_str().unwrap());
    let refund = |body: Value| hs(&s, "POST", &k.client_id, &k.test, "/hserve/v2.2/idp/pay/refund/", Some(body));
    let (st, err) = refund(json!({"trade_no": rec["trade_no"], "refund_amount": "1.01"}));
    assert_eq!((st, err["param"].as_str()), (400, Some("refund_amount")), "{err}");
    let (st, _) = refund(json!({"trade_no": rec["trade_no"]}));
    assert_eq!(st, 201);
    let (st, err) = refund(json!({"trade_no": rec["trade_no"]}));
    assert_eq!((st, err["param"].as_str()), (400, Some("refund_amount")), "nothing left: {err}");
    // A description with a control character is refused naming it, not silently emptied.
    let body = json!({"gateway_type": "alipay_page", "total_cost": "1.00", "merchandise_description": "tea\u{1}"});
    let (st, err) = hs(&s, "POST", &k.client_id, &alice, "/hserve/v2.2/idp/pay/order/", Some(body));
    assert_eq!((st, err["param"].as_str()), (400, Some("merchandise_description")), "{err}");
}

fn saas_wechat_fields_follow_wechat_definitions(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("saas");
    let (st, _) = s.post(&k.test, "/v1/fee_rates", json!({"channel": "wechat", "rate_bp": 60}));
    assert_eq!(st, 200);
    let discounts = json!({
        "kd_discount_fee": 30, "m_discount_fee": 100, "y_discount_fee": 20, "p_discount_fee": 50,
        "mch_discount_desc": "满10减1",
    });
    let biz = json!({"out_trade_no": "d1", "total_fee": 1000, "auth_code": WECHAT_CODE, "discount_info": discounts});
    let (st, paid) = cashier(&s, &k, "pay", biz);
    let d = &paid["data"];
    assert_eq!((st, d["user_pay_fee"].as_i64(), d["fee"].as_i64()), (200, Some(800), Some(900)), "{paid}");
    let (st, q) = saas(&s, &k, json!({"trade_no": paid["data"]["pay_no"]}));
    assert_eq!(st, 200, "{q}");
    let a = &q["attach"];
    // Fen as WeChat writes them: numbers or strings.
    let fen = |v: &Value| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).expect("fen");
    let wechat = |a: &Value| ["total_fee", "cash_fee", "coupon_fee", "settlement_total_fee"].map(|f| fen(&a[f]));
    let [total, cash, coupon, settlement] = wechat(a);
    let promos: Vec<Value> = serde_json::from_str(a["promotion_detail"].as_str().unwrap()).unwrap();
    let sum = |kind: Option<&str>| {
        promos.iter().filter(|p| kind.is_none_or(|k| p["type"] == k)).map(|p| fen(&p["amount"])).sum::<i64>()
    };
    assert_eq!((total, cash), (1000, 800), "{a}");
    assert_eq!(cash + coupon, total, "cash_fee + coupon_fee = total_fee: {a}");
    assert_eq!(coupon, sum(None), "coupon_fee is every promotion: {promos:?}");
    assert_eq!(settlement, total - sum(Some("DISCOUNT")), "settlement_total_fee = total_fee − DISCOUNTs: {a}");
    assert_eq!(settlement, 900, "what settles is the cashier's fee (origin − 免充值): {a}");
    for p in &promos {
        let contributors = ["wxpay_contribute", "merchant_contribute", "other_contribute"];
        let parts: i64 = contributors.map(|c| fen(&p[c])).iter().sum();
        assert_eq!(parts, fen(&p["amount"]), "{p}");
        assert!(p["type"] == "DISCOUNT" || p["type"] == "COUPON", "{p}");
    }
    assert_eq!(promos.iter().filter(|p| p["type"] == "DISCOUNT").count(), 1, "only the 免充值 discount: {promos:?}");
    // No discounts: everything is cash.
    let (_, plain) = cashier(&s, &k, "pay", json!({"out_trade_no": "d2", "total_fee": 500, "auth_code": WECHAT_CODE}));
    let (_, q) = saas(&s, &k, json!({"trade_no": plain["data"]["pay_no"]}));
    let a = &q["attach"];
    assert_eq!(wechat(a), [500, 500, 0, 500], "{a}");
}

fn list_limits_out_of_range_are_refused(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (st, m) = s.post(&k.test, "/v1/members", json!({"member_no": "M1", "phone": "18826490000", "name": "Janus"}));
    assert_eq!(st, 200, "{m}");
    let id = m["id"].as_str().unwrap();
    for amount in [10, 20, 30] {
        let (st, _) = s.post(&k.test, &format!("/v1/members/{id}/topups"), json!({"amount": amount}));
        assert_eq!(st, 200);
    }
    let path = format!("/v1/members/{id}/balance_transactions");
    for bad in ["0", "-5", "100000", "101", "x", "9223372036854775808"] {
        let (st, err) = s.get(&k.test, &format!("{path}?limit={bad}"));
        assert_eq!((st, err["error"]["param"].as_str()), (400, Some("limit")), "limit={bad}: {err}");
    }
    let (_, two) = s.get(&k.test, &format!("{path}?limit=2"));
    assert_eq!(two["data"].as_array().map(Vec::len), Some(2));
    let (_, all) = s.get(&k.test, &format!("{path}?limit=100"));
    assert_eq!(all["data"].as_array().map(Vec::len), Some(3));

    // Every other list refuses the same.
    let order = s.paid_order(&k, "o-1", 100);
    let order_id = order["id"].as_str().unwrap();
    let charge = order["charges"]["data"][0]["id"].as_str().unwrap();
    for (list, param) in [
        (format!("/v1/orders?app={}&per_page=0", k.app), "per_page"),
        (format!("/v1/orders?app={}&per_page=21", k.app), "per_page"),
        (format!("/v1/orders?app={}&page=0", k.app), "page"),
        (format!("/v1/orders?app={}&limit=0", k.app), "limit"),
        (format!("/v1/orders?app={}&limit=101", k.app), "limit"),
        (format!("/v1/orders/{order_id}/order_refunds?limit=0"), "limit"),
        (format!("/v1/charges/{charge}/refunds?limit=100000"), "limit"),
        ("/v1/events?limit=-5".to_string(), "limit"),
    ] {
        let (st, err) = s.get(&k.test, &list);
        assert_eq!((st, err["error"]["param"].as_str()), (400, Some(param)), "{list}: {err}");
    }
    let (alice, _) = register(&s, &k, "alice");
    for (q, param) in [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=-5", "limit"), ("offset=-1", "offset")] {
        let (st, err) = hs(&s, "GET", &k.client_id, &alice, &format!("/hserve/v2.2/idp/pay/order/?{q}"), None);
        assert_eq!((st, err["param"].as_str()), (400, Some(param)), "{q}: {err}");
    }
}

fn hserve_logins_are_throttled(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    register(&s, &k, "alice");
    register(&s, &k, "bob");
    // A few typos do not hurt: the right password still works, and it clears them.
    for _ in 0..4 {
        assert_eq!(login(&s, &k, "alice", "wrong-pw").0, 401);
    }
    assert_eq!(login(&s, &k, "alice", "secret-1").0, 201);
    // Guessing is not: after 5 failures the username waits a minute (even the right password).
    for _ in 0..5 {
        assert_eq!(login(&s, &k, "alice", "wrong-pw").0, 401);
    }
    for password in ["wrong-pw", "secret-1"] {
        let (st, err) = login(&s, &k, "alice", password);
        assert_eq!((st, err["param"].as_str()), (429, Some("username")), "{err}");
        assert!(err["error_msg"].as_str().unwrap().contains("try again in 60 seconds"), "{err}");
        assert_eq!(err["message"], err["error_msg"], "知晓云's error format");
    }
    assert_eq!(login(&s, &k, "bob", "secret-1").0, 201, "other usernames are not affected");
    let other = s.create_app("other");
    let body = json!({"username": "alice", "password": "x"});
    let (st, _) = hs(&s, "POST", &other.client_id, "", "/hserve/v2.1/login/username/", Some(body));
    assert_eq!(st, 401, "nor other apps' usernames");
    s.clock.advance(60);
    assert_eq!(login(&s, &k, "alice", "secret-1").0, 201, "one attempt a minute comes back");

    // Spraying many usernames meets the client id's own limit (100 failures, then one a second).
    let s = std::sync::Arc::new(s);
    let statuses: Vec<u16> = (0..4)
        .map(|t| {
            let (s, k) = (s.clone(), k.clone());
            let guess = move |i| login(&s, &k, &format!("user-{t}-{i}"), "guess").0;
            let guesses = move || (0..30).map(guess).collect::<Vec<_>>();
            std::thread::spawn(guesses)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let limited = statuses.iter().filter(|st| **st == 429).count();
    assert_eq!((statuses.iter().filter(|st| **st == 401).count(), limited), (100, 20), "{statuses:?}");
    let (st, err) = login(&s, &k, "bob", "secret-1");
    assert_eq!((st, err["param"].as_str()), (429, None), "the whole client id waits: {err}");
    s.clock.advance(1);
    assert_eq!(login(&s, &k, "bob", "secret-1").0, 201);
}

fn client_numbers_never_overflow(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("signed");
    // Ping++ request signatures: the timestamp window check (a panic in debug builds before).
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    s.rt.block_on(s.app.set_app_public_key(&k.app, Some(&pem))).unwrap();
    for ts in ["-9223372036854775808", "9223372036854775807", "-1"] {
        let headers = [("pingplusplus-request-timestamp", ts), ("pingplusplus-signature", "bm90IGEgc2lnbmF0dXJl")];
        let (st, err) = s.call("GET", &k.test, &format!("/v1/orders?app={}", k.app), None, &headers);
        assert_eq!((st, err["error"]["type"].as_str()), (401, Some("authentication_error")), "{ts}: {err}");
    }
    // Cashier and SaaS envelopes: the same window, in each face's format.
    let plain = s.create_app("plain");
    for ts in [json!(i64::MIN), json!("-9223372036854775808"), json!(i64::MAX)] {
        let (st, r) = cashier_at(&s, &plain, "query", json!({"pay_no": "600000000000000000"}), ts.clone());
        assert_eq!((st, r["code"].as_i64(), r["param"].as_str()), (401, Some(40001), Some("timestamp")), "{ts}: {r}");
        let (st, r) = saas(&s, &plain, json!({"trade_no": "600000000000000000", "timestamp": ts}));
        assert_eq!((st, r["return_code"].as_i64(), r["param"].as_str()), (401, Some(40001), Some("timestamp")), "{r}");
    }
    for ts in [json!(1.8e9), json!(u64::MAX)] {
        let (st, r) = saas(&s, &plain, json!({"trade_no": "600000000000000000", "timestamp": ts}));
        assert_eq!((st, r["return_code"].as_i64(), r["param"].as_str()), (400, Some(40002), Some("timestamp")), "{r}");
    }
    // Amounts, paging and filters at the ends of i64: 400s naming the field, or plain answers.
    let k = plain;
    let (st, m) = s.post(&k.test, "/v1/members", json!({"member_no": "M1", "phone": "1", "name": "J"}));
    assert_eq!(st, 200);
    let topups = format!("/v1/members/{}/topups", m["id"].as_str().unwrap());
    let (st, err) = s.post(&k.test, &topups, json!({"amount": i64::MAX}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("amount")), "{err}");
    let (st, err) = s.post(&k.test, "/v1/fee_rates", json!({"channel": "wechat", "rate_bp": i64::MAX}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("rate_bp")), "{err}");
    for (extra, param) in [
        (json!({"total_fee": i64::MAX}), "total_fee"),
        (json!({"discount_info": {"kd_discount_fee": i64::MAX}}), "discount_info.kd_discount_fee"),
        (json!({"pre_fee_subsidy_amount": i64::MAX}), "pre_fee_subsidy_amount"),
        (json!({"pre_fee_subsidy_amount": i64::MIN}), "pre_fee_subsidy_amount"),
    ] {
        let mut biz = json!({"out_trade_no": "x1", "total_fee": 100, "auth_code": WECHAT_CODE});
        biz.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (st, err) = cashier(&s, &k, "pay", biz.clone());
        assert_eq!((st, err["param"].as_str()), (400, Some(param)), "{biz}: {err}");
    }
    let (_, paid) = cashier(&s, &k, "pay", json!({"out_trade_no": "x5", "total_fee": 100, "auth_code": WECHAT_CODE}));
    let (st, err) = cashier(&s, &k, "refund", json!({"pay_no": paid["data"]["pay_no"], "refund_fee": i64::MAX}));
    assert_eq!((st, err["param"].as_str()), (400, Some("refund_fee")), "{err}");
    let ends = format!("created%5Bgte%5D={}&created%5Blt%5D={}", i64::MIN, i64::MAX);
    let (st, list) = s.get(&k.test, &format!("/v1/orders?app={}&{ends}", k.app));
    assert_eq!((st, list["data"].as_array().map(Vec::len)), (200, Some(1)), "{list}");
    // Offset paging stops at MAX_OFFSET rows (a page walks every row before it): 400 naming `page`.
    let (st, err) = s.get(&k.test, &format!("/v1/orders?app={}&page=100000000&per_page=20", k.app));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("page")), "{err}");
    let (st, _) = s.get(&k.test, &format!("/v1/events?{ends}"));
    assert_eq!(st, 200);

    let (alice, _) = register(&s, &k, "alice");
    let rec = pay(&s, &k, &alice, "alipay_page", "1.00");
    let list = |q: &str| hs(&s, "GET", &k.client_id, &alice, &format!("{LIST}?{q}"), None);
    let (st, err) = list("offset=9223372036854775807");
    assert_eq!((st, err["param"].as_str()), (400, Some("offset")), "{err}");
    let (st, page) = list(&format!("id={max}&paid_at__gt={min}&created_at__lte={max}", max = i64::MAX, min = i64::MIN));
    assert_eq!((st, &page["meta"]["total_count"]), (200, &json!(0)), "{page}");
    let (st, page) = list("id__in=-9223372036854775808,9223372036854775807");
    assert_eq!((st, &page["meta"]["total_count"]), (200, &json!(0)), "{page}");
    for (q, param) in [
        ("id=9223372036854775808", "id"),
        ("total_cost__lt=99999999999", "total_cost__lt"),
        ("limit=9223372036854775807", "limit"),
    ] {
        let (st, err) = list(q);
        assert_eq!((st, err["param"].as_str()), (400, Some(param)), "{q}: {err}");
    }
    complete(&s, &k, rec["trade_no"].as_str().unwrap());
    for amount in [json!("9999999999.99"), json!(1e300), json!("-0.01")] {
        let body = json!({"trade_no": rec["trade_no"], "refund_amount": amount});
        let (st, err) = hs(&s, "POST", &k.client_id, &k.test, REFUND, Some(body));
        assert_eq!((st, err["param"].as_str()), (400, Some("refund_amount")), "{amount}: {err}");
    }
    let body = json!({"gateway_type": "alipay_page", "total_cost": "999999999.99"});
    let (st, err) = hs(&s, "POST", &k.client_id, &alice, LIST, Some(body));
    assert_eq!((st, err["param"].as_str()), (400, Some("total_cost")), "{err}");
    let (st, err) = hs(&s, "POST", &k.client_id, &k.test, REFUND, Some(json!({"order_id": i64::MIN})));
    assert_eq!((st, err["param"].as_str()), (404, Some("order_id")), "{err}");
}

fn secret_keys_are_unbiased(backend: Backend) {
    let s = TestServer::start(backend);
    // `byte % 62` makes '0'..'7' come 5/256 of the time instead of 4/256: 15.6 % of all
    // characters instead of 12.9 %. 150 apps give 9 600 key characters (σ ≈ 0.34 %).
    let mut chars = String::new();
    for i in 0..150 {
        let k = s.create_app(&format!("app-{i}"));
        chars.push_str(&k.test["sk_test_".len()..]);
        chars.push_str(&k.live["sk_live_".len()..]);
        assert_eq!((k.test.len(), k.live.len()), (40, 40));
        assert!(k.test[8..].bytes().chain(k.live[8..].bytes()).all(|b| b.is_ascii_alphanumeric()));
    }
    let low = chars.bytes().filter(|b| (b'0'..=b'7').contains(b)).count() as f64 / chars.len() as f64;
    assert!(low < 0.1425, "'0'..'7' are {:.2} % of key characters (12.90 % expected)", low * 100.0);
    // The keys work as keys.
    let k = s.create_app("last");
    let (st, _) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(st, 200);
}
