//! The Ping++ Charge API over HTTP (`POST/GET /v1/charges`, `GET /v1/charges/{id}`, reverse), on
//! SQLite and on PostgreSQL.

mod support;

use serde_json::{json, Value};
use support::{Backend, Keys, TestServer};

both!(
    create_shapes_and_each_channel,
    bad_input_names_the_field,
    duplicate_order_no_and_idempotency,
    pay_refund_and_events,
    list_filters_and_cursors,
    reverse_unpaid_and_paid,
    isolation_between_apps_and_modes,
    unpaid_charge_expires
);

const CHARGE_FIELDS: &[&str] = &[
    "id",
    "object",
    "created",
    "livemode",
    "paid",
    "refunded",
    "reversed",
    "app",
    "channel",
    "order_no",
    "client_ip",
    "amount",
    "amount_settle",
    "currency",
    "subject",
    "body",
    "extra",
    "time_paid",
    "time_expire",
    "time_settle",
    "transaction_no",
    "refunds",
    "amount_refunded",
    "failure_code",
    "failure_msg",
    "metadata",
    "credential",
    "description",
];

fn body(k: &Keys, order_no: &str, channel: &str) -> Value {
    json!({
        "order_no": order_no, "app": {"id": k.app}, "channel": channel, "amount": 100, "client_ip": "127.0.0.1",
        "currency": "cny", "subject": "Your Subject", "body": "Your Body",
    })
}

fn create(s: &TestServer, k: &Keys, order_no: &str, channel: &str) -> Value {
    let (status, charge) = s.post(&k.test, "/v1/charges", body(k, order_no, channel));
    assert_eq!(status, 200, "create charge: {charge}");
    charge
}

fn pay(s: &TestServer, k: &Keys, ch: &str) -> Value {
    let (status, charge) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!(status, 200, "sandbox pay: {charge}");
    charge
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn ids(list: &Value) -> Vec<String> {
    list["data"].as_array().unwrap().iter().map(|c| id(c).to_string()).collect()
}

fn create_shapes_and_each_channel(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let mut full = body(&k, "2017081400000006", "alipay_qr");
    let extra = json!({"time_expire": 1_800_003_600_i64, "metadata": {"k": "v"}, "description": "d",
        "extra": {"product_id": "p1"}});
    full.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, ch) = s.post(&k.test, "/v1/charges", full);
    assert_eq!(status, 200, "{ch}");
    for field in CHARGE_FIELDS {
        assert!(ch.get(field).is_some(), "charge lacks {field}: {ch}");
    }
    assert!(id(&ch).starts_with("ch_") && ch["object"] == "charge" && ch["livemode"] == false);
    assert_eq!((ch["order_no"].as_str(), ch["app"].as_str()), (Some("2017081400000006"), Some(k.app.as_str())));
    assert_eq!(
        (ch["amount"].as_i64(), ch["amount_settle"].as_i64(), ch["currency"].as_str()),
        (Some(100), Some(100), Some("cny"))
    );
    assert_eq!(
        (ch["paid"].as_bool(), ch["refunded"].as_bool(), ch["reversed"].as_bool()),
        (Some(false), Some(false), Some(false))
    );
    assert_eq!((ch["time_expire"].as_i64(), ch["time_paid"].clone()), (Some(1_800_003_600), Value::Null));
    assert_eq!((ch["metadata"].clone(), ch["description"].as_str()), (json!({"k": "v"}), Some("d")));
    assert_eq!(ch["extra"], json!({"product_id": "p1"}));
    assert_eq!(
        ch["refunds"],
        json!({"object": "list", "url": format!("/v1/charges/{}/refunds", id(&ch)), "has_more": false, "data": []})
    );
    assert_eq!(ch["credential"]["object"], "credential");
    assert!(ch["credential"]["alipay_qr"].as_str().unwrap().contains(id(&ch)), "{ch}");
    // Retrieve answers the same charge; the order behind it carries the number.
    let (status, got) = s.get(&k.test, &format!("/v1/charges/{}", id(&ch)));
    assert_eq!(
        (status, got["order_no"].as_str(), got["credential"].clone()),
        (200, Some("2017081400000006"), ch["credential"].clone())
    );
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(orders["data"][0]["merchant_order_no"], "2017081400000006");
    assert_eq!(orders["data"][0]["charges"]["data"][0]["order_no"], "2017081400000006");
    // Every Ping++ channel name opens through the sandbox in test mode, with its credential.
    for (n, channel) in paygate_domain::PINGPP_CHANNELS.iter().enumerate() {
        let ch = create(&s, &k, &format!("chan{n}"), channel);
        assert_eq!(ch["channel"], *channel);
        assert!(ch["credential"][*channel].is_string(), "{channel}: {ch}");
    }
    // The client's address is the peer's when absent.
    let mut no_ip = body(&k, "noip", "wx");
    no_ip.as_object_mut().unwrap().remove("client_ip");
    let (status, ch) = s.post(&k.test, "/v1/charges", no_ip);
    assert_eq!((status, ch["client_ip"].as_str()), (200, Some("127.0.0.1")));
}

fn bad_input_names_the_field(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("order_no", Value::Null, "order_no"),
        ("order_no", json!("no spaces"), "order_no"),
        ("order_no", json!(""), "order_no"),
        ("app", json!("app_x"), "app"),
        ("app", json!({}), "app.id"),
        ("app", json!({"id": "app_other"}), "app.id"),
        ("channel", json!("bitcoin"), "channel"),
        ("amount", json!(1.5), "amount"),
        ("amount", json!("100"), "amount"),
        ("amount", json!(0), "amount"),
        ("amount", json!(10_000_000_001_i64), "amount"),
        ("currency", json!("usd"), "currency"),
        ("subject", json!(""), "subject"),
        ("subject", json!("x".repeat(33)), "subject"),
        ("body", Value::Null, "body"),
        ("client_ip", json!("not-an-ip"), "client_ip"),
        ("time_expire", json!(1), "time_expire"),
        ("metadata", json!({"k": {"nested": 1}}), "metadata"),
        ("description", json!(5), "description"),
    ];
    for (field, value, param) in cases {
        let mut b = body(&k, "bad1", "wx");
        if value.is_null() {
            b.as_object_mut().unwrap().remove(field);
        } else {
            b[field] = value.clone();
        }
        let (status, err) = s.post(&k.test, "/v1/charges", b);
        assert!((400..500).contains(&status), "{field}={value}: {status} {err}");
        assert_eq!(err["error"]["param"], param, "{field}={value}: {err}");
    }
    // Nothing was recorded by any refusal.
    let (_, list) = s.get(&k.test, "/v1/charges");
    assert_eq!(list["data"], json!([]));
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(orders["data"], json!([]));
    // Live mode has no channel: a channel error, nothing recorded.
    let (status, err) = s.post(&k.live, "/v1/charges", body(&k, "live1", "wx"));
    assert_eq!((status, err["error"]["param"].as_str()), (402, Some("channel")), "{err}");
    let (status, err) = s.post(&k.test, "/v1/charges/ch_nope/reverse", json!({}));
    assert_eq!((status, err["error"]["code"].as_str()), (404, Some("resource_missing")));
}

fn duplicate_order_no_and_idempotency(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let first = create(&s, &k, "dup1", "wx");
    let (status, err) = s.post(&k.test, "/v1/charges", body(&k, "dup1", "alipay"));
    assert_eq!(status, 409, "{err}");
    assert_eq!(
        (err["error"]["param"].as_str(), err["error"]["code"].as_str()),
        (Some("order_no"), Some("duplicate_order_no"))
    );
    // An order's merchant_order_no is taken the same way (one number space per app and mode).
    s.create_order(&k, &k.test, "dup2", 100, json!({}));
    let (status, err) = s.post(&k.test, "/v1/charges", body(&k, "dup2", "wx"));
    assert_eq!((status, err["error"]["param"].as_str()), (409, Some("order_no")));
    // The live mode's numbers are its own.
    let (_, list) = s.get(&k.test, "/v1/charges");
    assert_eq!(ids(&list), vec![id(&first).to_string()], "no charge or order recorded for the duplicate");
    // Idempotency-Key: the same request answers the same charge, byte for byte.
    let req = body(&k, "idem1", "wx").to_string();
    let headers = [("idempotency-key", "k-1")];
    let (s1, r1, t1) = s.raw("POST", &k.test, "/v1/charges", Some(req.clone()), &headers);
    let (s2, r2, t2) = s.raw("POST", &k.test, "/v1/charges", Some(req), &headers);
    assert_eq!((s1, s2, r1, r2.as_deref()), (200, 200, None, Some("true")));
    assert_eq!(t1, t2);
    let (status, err) = s.call("POST", &k.test, "/v1/charges", Some(body(&k, "idem2", "wx").to_string()), &headers);
    assert_eq!((status, err["error"]["type"].as_str()), (400, Some("idempotency_error")));
    let (_, list) = s.get(&k.test, "/v1/charges");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

fn pay_refund_and_events(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let ch = create(&s, &k, "pay1", "wx_pub_qr");
    let ch_id = id(&ch).to_string();
    s.clock.advance(5);
    let paid = pay(&s, &k, &ch_id);
    assert_eq!((paid["paid"].as_bool(), paid["time_paid"].as_i64()), (Some(true), Some(1_800_000_005)));
    assert!(paid["transaction_no"].is_string());
    let (_, got) = s.get(&k.test, &format!("/v1/charges/{ch_id}"));
    assert_eq!((got["paid"].as_bool(), got["amount_refunded"].as_i64()), (Some(true), Some(0)));
    // The event a Ping++ merchant's webhook code reads: the charge with its refund list.
    let (_, events) = s.get(&k.test, "/v1/events?type=charge.succeeded");
    let event = &events["data"][0];
    assert_eq!((event["type"].as_str(), event["object"].as_str()), (Some("charge.succeeded"), Some("event")));
    let object = &event["data"]["object"];
    assert_eq!(
        (object["id"].as_str(), object["order_no"].as_str(), object["paid"].as_bool()),
        (Some(ch_id.as_str()), Some("pay1"), Some(true))
    );
    assert_eq!(object["refunds"]["data"], json!([]));
    for field in CHARGE_FIELDS {
        assert!(object.get(field).is_some(), "event charge lacks {field}");
    }
    // Partial, then the rest, then nothing.
    let (status, re) =
        s.post(&k.test, &format!("/v1/charges/{ch_id}/refunds"), json!({"amount": 30, "description": "part"}));
    assert_eq!((status, re["amount"].as_i64(), re["status"].as_str()), (200, Some(30), Some("succeeded")), "{re}");
    let (_, got) = s.get(&k.test, &format!("/v1/charges/{ch_id}"));
    assert_eq!((got["amount_refunded"].as_i64(), got["refunded"].as_bool()), (Some(30), Some(false)));
    assert_eq!(got["refunds"]["data"][0]["id"], re["id"]);
    let (status, err) = s.post(&k.test, &format!("/v1/charges/{ch_id}/refunds"), json!({"amount": 71}));
    assert_eq!((status, err["error"]["param"].as_str()), (400, Some("amount")));
    let (_, rest) = s.post(&k.test, &format!("/v1/charges/{ch_id}/refunds"), json!({}));
    assert_eq!(rest["amount"], 70);
    let (_, got) = s.get(&k.test, &format!("/v1/charges/{ch_id}"));
    assert_eq!((got["amount_refunded"].as_i64(), got["refunded"].as_bool()), (Some(100), Some(true)));
    let (_, events) = s.get(&k.test, "/v1/events?type=refund.succeeded");
    let refunds: Vec<_> = events["data"].as_array().unwrap().iter().map(|e| e["data"]["object"].clone()).collect();
    assert_eq!(refunds.len(), 2);
    assert!(refunds.iter().all(|r| r["object"] == "refund" && r["charge"] == ch_id.as_str()));
    // The order behind the charge keeps the books.
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    let order = &orders["data"][0];
    assert_eq!(
        (order["amount_paid"].as_i64(), order["amount_refunded"].as_i64(), order["status"].as_str()),
        (Some(100), Some(100), Some("refunded"))
    );
}

fn list_filters_and_cursors(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let t0 = s.clock.now_for_tests();
    let mut made = Vec::new();
    for n in 0..6 {
        let channel = if n % 2 == 0 { "wx" } else { "alipay" };
        made.push(id(&create(&s, &k, &format!("l{n}"), channel)).to_string());
        s.clock.advance(10);
    }
    pay(&s, &k, &made[0]);
    pay(&s, &k, &made[1]);
    s.post(&k.test, &format!("/v1/charges/{}/refunds", made[1]), json!({}));
    let (status, _) = s.post(&k.test, &format!("/v1/charges/{}/reverse", made[2]), json!({}));
    assert_eq!(status, 200);
    let newest_first: Vec<String> = made.iter().rev().cloned().collect();
    let q = |query: &str| {
        let (status, list) = s.get(&k.test, &format!("/v1/charges?{query}"));
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!((list["object"].as_str(), list["url"].as_str()), (Some("list"), Some("/v1/charges")));
        list
    };
    let pick = |idx: &[usize]| idx.iter().rev().map(|i| made[*i].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&q(&format!("app[id]={}", k.app))), newest_first);
    assert_eq!(ids(&q("channel=wx")), pick(&[0, 2, 4]));
    assert_eq!(ids(&q("paid=true")), pick(&[0, 1]));
    assert_eq!(ids(&q("paid=false")), pick(&[2, 3, 4, 5]));
    assert_eq!(ids(&q("refunded=true")), pick(&[1]));
    assert_eq!(ids(&q("refunded=false")).len(), 5);
    assert_eq!(ids(&q("reversed=true")), pick(&[2]));
    assert_eq!(ids(&q("reversed=false")).len(), 5);
    assert_eq!(ids(&q(&format!("created[gte]={}", t0 + 20))), pick(&[2, 3, 4, 5]));
    assert_eq!(ids(&q(&format!("created[gt]={}", t0 + 20))), pick(&[3, 4, 5]));
    assert_eq!(ids(&q(&format!("created[lt]={}", t0 + 20))), pick(&[0, 1]));
    assert_eq!(ids(&q(&format!("created[lte]={}&channel=alipay", t0 + 30))), pick(&[1, 3]));
    assert_eq!(ids(&q("paid=true&channel=alipay&refunded=true")), pick(&[1]));
    // Cursor paging, both ways, with has_more.
    let page1 = q("limit=2");
    assert_eq!((ids(&page1), page1["has_more"].as_bool()), (newest_first[0..2].to_vec(), Some(true)));
    let page2 = q(&format!("limit=2&starting_after={}", newest_first[1]));
    assert_eq!(ids(&page2), newest_first[2..4].to_vec());
    let page3 = q(&format!("limit=2&starting_after={}", newest_first[3]));
    assert_eq!((ids(&page3), page3["has_more"].as_bool()), (newest_first[4..6].to_vec(), Some(false)));
    let back = q(&format!("limit=2&ending_before={}", newest_first[4]));
    assert_eq!((ids(&back), back["has_more"].as_bool()), (newest_first[2..4].to_vec(), Some(true)));
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("paid=maybe", "paid"),
        ("created[gt]=soon", "created[gt]"),
        ("starting_after=ch_unknown", "starting_after"),
        ("app[id]=app_other", "app[id]"),
    ] {
        let (status, err) = s.get(&k.test, &format!("/v1/charges?{query}"));
        assert!((400..500).contains(&status), "{query}: {status}");
        assert_eq!(err["error"]["param"], param, "{query}: {err}");
    }
}

fn reverse_unpaid_and_paid(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    // Unpaid: closed, its order canceled, and it can no longer be paid.
    let ch = create(&s, &k, "rv1", "alipay_qr");
    let (status, rev) = s.post(&k.test, &format!("/v1/charges/{}/reverse", id(&ch)), json!({}));
    assert_eq!((status, rev["reversed"].as_bool(), rev["paid"].as_bool()), (200, Some(true), Some(false)), "{rev}");
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(orders["data"][0]["status"], "canceled");
    let (_, again) = s.post(&k.test, &format!("/v1/charges/{}/reverse", id(&ch)), json!({}));
    assert_eq!(again["reversed"], true, "reversing twice answers the reversed charge");
    // A payment arriving after the reversal is late money: recorded, never a sale, refunded.
    let (status, late) = s.post(&k.test, &format!("/v1/sandbox/charges/{}/pay", id(&ch)), json!({}));
    assert_eq!(status, 200, "{late}");
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(
        (orders["data"][0]["paid"].as_bool(), orders["data"][0]["status"].as_str()),
        (Some(false), Some("paid_after_close"))
    );
    // Paid and partly refunded: the rest is refunded, the charge is reversed.
    let ch = create(&s, &k, "rv2", "wx");
    let ch_id = id(&ch).to_string();
    pay(&s, &k, &ch_id);
    s.post(&k.test, &format!("/v1/charges/{ch_id}/refunds"), json!({"amount": 40}));
    let (status, rev) = s.post(&k.test, &format!("/v1/charges/{ch_id}/reverse"), json!({}));
    assert_eq!(status, 200, "{rev}");
    assert_eq!(
        (rev["reversed"].as_bool(), rev["refunded"].as_bool(), rev["amount_refunded"].as_i64()),
        (Some(true), Some(true), Some(100))
    );
    let amounts: Vec<i64> =
        rev["refunds"]["data"].as_array().unwrap().iter().map(|r| r["amount"].as_i64().unwrap()).collect();
    assert_eq!(amounts, vec![60, 40]);
    let (status, rev) = s.post(&k.test, &format!("/v1/charges/{ch_id}/reverse"), json!({}));
    assert_eq!((status, rev["amount_refunded"].as_i64()), (200, Some(100)), "nothing more moves: {rev}");
    let (status, err) = s.post(&k.test, &format!("/v1/charges/{ch_id}/refunds"), json!({"amount": 1}));
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("nothing_to_refund")));
    // Reversal is idempotent under Idempotency-Key as every POST.
    let ch = create(&s, &k, "rv3", "wx");
    let path = format!("/v1/charges/{}/reverse", id(&ch));
    let headers = [("idempotency-key", "rev-1")];
    let (_, _, first) = s.raw("POST", &k.test, &path, Some("{}".into()), &headers);
    let (_, replayed, second) = s.raw("POST", &k.test, &path, Some("{}".into()), &headers);
    assert_eq!((first, replayed.as_deref()), (second, Some("true")));
}

fn isolation_between_apps_and_modes(backend: Backend) {
    let s = TestServer::start(backend);
    let (a, b) = (s.create_app("a"), s.create_app("b"));
    let ch = create(&s, &a, "iso1", "wx");
    let path = format!("/v1/charges/{}", id(&ch));
    for key in [&b.test, &a.live] {
        assert_eq!(s.get(key, &path).0, 404);
        assert_eq!(s.post(key, &format!("{path}/reverse"), json!({})).0, 404);
        assert_eq!(s.post(key, &format!("{path}/refunds"), json!({})).0, 404);
        assert_eq!(s.get(key, "/v1/charges").1["data"], json!([]));
    }
    assert_eq!(s.get(&b.test, &format!("/v1/charges?starting_after={}", id(&ch))).0, 400);
    // Another app may use the same order_no; the number is unique per app.
    create(&s, &b, "iso1", "wx");
    let (status, err) = s.post(&b.test, "/v1/charges", body(&a, "iso2", "wx"));
    assert_eq!((status, err["error"]["param"].as_str()), (404, Some("app.id")));
}

fn unpaid_charge_expires(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let mut b = body(&k, "exp1", "wx");
    b["time_expire"] = json!(s.clock.now_for_tests() + 60);
    let (_, ch) = s.post(&k.test, "/v1/charges", b);
    s.clock.advance(61);
    let pass = s.rt.block_on(s.app.expire_due_orders(100)).unwrap();
    assert_eq!(pass.done, 1);
    let (_, got) = s.get(&k.test, &format!("/v1/charges/{}", id(&ch)));
    assert_eq!(
        (got["status"].as_str(), got["paid"].as_bool(), got["reversed"].as_bool()),
        (Some("closed"), Some(false), Some(false))
    );
    let (_, orders) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(orders["data"][0]["status"], "closed");
    let (_, events) = s.get(&k.test, "/v1/events?type=order.closed");
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}
