//! The order story over HTTP, on SQLite and on PostgreSQL.

mod support;

use serde_json::json;
use support::{Backend, TestServer};

both!(lifecycle, cancel_rules, concurrent_refunds_never_exceed_paid, refund_edges, list_filters_and_paging);

fn lifecycle(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.create_order(
        &k,
        &k.test,
        "2017081400000006",
        1000,
        json!({"coupon_amount": 200, "uid": "user_007", "metadata": {"k": "v"}}),
    );
    for field in [
        "id",
        "object",
        "created",
        "livemode",
        "paid",
        "refunded",
        "status",
        "app",
        "uid",
        "merchant_order_no",
        "amount",
        "actual_amount",
        "coupon_amount",
        "amount_paid",
        "amount_refunded",
        "currency",
        "subject",
        "body",
        "client_ip",
        "time_paid",
        "time_expire",
        "description",
        "metadata",
        "receipt_app",
        "service_app",
        "available_balance",
        "charge_essentials",
        "available_methods",
        "charges",
    ] {
        assert!(order.get(field).is_some(), "order lacks {field}: {order}");
    }
    assert_eq!(order["object"], "order");
    assert_eq!(order["actual_amount"], 800);
    assert_eq!(order["status"], "created");
    assert_eq!(order["livemode"], false);
    assert_eq!(order["charges"]["object"], "list");
    let id = order["id"].as_str().unwrap();
    assert_eq!(id.len(), 19);

    let (st, got) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!((st, &got["merchant_order_no"]), (200, &json!("2017081400000006")));

    // Pay: the charge carries a sandbox credential on this server.
    let (st, paying) =
        s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr", "charge_amount": 800}));
    assert_eq!(st, 200, "{paying}");
    let charge = &paying["charges"]["data"][0];
    let ch = charge["id"].as_str().unwrap();
    assert!(ch.starts_with("ch_"));
    assert_eq!(charge["amount"], 800);
    let url = charge["credential"]["alipay_qr"].as_str().unwrap();
    assert!(url.starts_with(&s.base), "{url}");
    let (page_status, _, page) = s.raw("GET", "", &url[s.base.len()..], None, &[]);
    assert!(page_status == 200 && page.contains("Pay"), "{page}");

    // A wrong charge_amount is refused naming the field.
    let (st, err) =
        s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr", "charge_amount": 1}));
    assert_eq!((st, &err["error"]["param"]), (400, &json!("charge_amount")));

    // A charge shows its order's merchant number as `order_no`, as seed 004's nested charge does
    // (completing by the channel's own number is covered by the 知晓云 and face stories).
    assert_eq!(charge["order_no"], "2017081400000006");
    let (st, done) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["paid"], true);
    assert!(done["transaction_no"].as_str().unwrap().len() > 10);
    let (st, again) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!((st, &again["error"]["code"]), (400, &json!("charge_not_pending")));

    let (_, paid) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["paid"], true);
    assert_eq!(paid["amount_paid"], 800);
    assert!(paid["time_paid"].is_i64());

    // Charges through both paths.
    let (_, list) = s.get(&k.test, &format!("/v1/orders/{id}/charges"));
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (st, _) = s.get(&k.test, &format!("/v1/orders/{id}/charges/{ch}"));
    assert_eq!(st, 200);
    let (_, via_charges) = s.get(&k.test, &format!("/v1/charges/{ch}"));
    assert_eq!(via_charges["order"], json!(id));

    // Partial refund through the order, then the rest through the charge.
    let (st, r1) =
        s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 300, "description": "partial"}));
    assert_eq!(st, 200, "{r1}");
    let r1 = &r1["data"][0];
    assert_eq!((r1["status"].as_str(), r1["amount"].as_i64()), (Some("succeeded"), Some(300)));
    let (_, mid) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(
        (mid["amount_refunded"].as_i64(), mid["refunded"].as_bool(), mid["status"].as_str()),
        (Some(300), Some(true), Some("paid"))
    );
    let (st, r2) = s.post(&k.test, &format!("/v1/charges/{ch}/refunds"), json!({"description": "rest"}));
    assert_eq!(st, 200, "{r2}");
    assert_eq!(r2["amount"], 500, "default refund amount is what remains");
    let (_, done) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!((done["amount_refunded"].as_i64(), done["status"].as_str()), (Some(800), Some("refunded")));

    let (_, refunds) = s.get(&k.test, &format!("/v1/orders/{id}/order_refunds"));
    assert_eq!(refunds["data"].as_array().unwrap().len(), 2);
    let re = r2["id"].as_str().unwrap();
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}/order_refunds/{re}")).0, 200);
    assert_eq!(s.get(&k.test, &format!("/v1/charges/{ch}/refunds/{re}")).0, 200);
    assert_eq!(s.get(&k.test, &format!("/v1/charges/{ch}/refunds")).1["data"].as_array().unwrap().len(), 2);
    let (st, none_left) = s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({}));
    assert_eq!((st, &none_left["error"]["code"]), (400, &json!("nothing_to_refund")));
}

fn cancel_rules(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "c1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    let ch = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    let (st, canceled) = s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"}));
    assert_eq!((st, &canceled["status"]), (200, &json!("canceled")), "{canceled}");
    let (st, err) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_pub_qr"}));
    assert_eq!((st, &err["error"]["code"]), (400, &json!("order_not_payable")));
    // Canceling again is harmless; a paid order cannot be canceled.
    assert_eq!(s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"})).0, 200);
    let paid = s.paid_order(&k, "c2", 100);
    let (st, err) =
        s.put(&k.test, &format!("/v1/orders/{}", paid["id"].as_str().unwrap()), json!({"status": "canceled"}));
    assert_eq!((st, &err["error"]["code"]), (400, &json!("order_not_cancelable")));
    let (st, err) = s.put(&k.test, &format!("/v1/orders/{id}"), json!({"status": "paid"}));
    assert_eq!((st, &err["error"]["param"]), (400, &json!("status")));

    // Its pending charge was closed with the order, so money arriving for it now is a late
    // payment: never a normal success, refunded automatically by default.
    let (st, late) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!(st, 200, "{late}");
    let (_, after) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(after["status"], "paid_after_close");
    assert_eq!(after["paid"], false, "late money never reads as a sale");
    assert_eq!((after["amount_paid"].as_i64(), after["amount_refunded"].as_i64()), (Some(100), Some(100)));
    assert_eq!(
        s.get(&k.test, &format!("/v1/orders?app={}&paid=true", k.app)).1["data"].as_array().unwrap().len(),
        1,
        "only c2 is a sale"
    );

    // A superseded (closed) charge that still succeeds pays an order that is still open; the
    // newer pending charge is closed in its place.
    let o3 = s.create_order(&k, &k.test, "c3", 100, json!({}));
    let id3 = o3["id"].as_str().unwrap();
    let (_, first) = s.post(&k.test, &format!("/v1/orders/{id3}/pay"), json!({"channel": "alipay"}));
    let first_ch = first["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    let (_, second) = s.post(&k.test, &format!("/v1/orders/{id3}/pay"), json!({"channel": "wx"}));
    assert_eq!(second["charges"]["data"].as_array().unwrap().len(), 2);
    let second_ch = second["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&k.test, &format!("/v1/sandbox/charges/{first_ch}/pay"), json!({"result": "success"})).0, 200);
    let (_, o3) = s.get(&k.test, &format!("/v1/orders/{id3}"));
    assert_eq!(o3["status"], "paid");
    let (st, err) = s.post(&k.test, &format!("/v1/sandbox/charges/{second_ch}/pay"), json!({"result": "success"}));
    assert_eq!(
        (st, &err["error"]["code"]),
        (409, &json!("order_already_paid")),
        "a second success on a paid order is refused"
    );

    // A failed sandbox payment leaves the order payable.
    let o4 = s.create_order(&k, &k.test, "c4", 100, json!({}));
    let id4 = o4["id"].as_str().unwrap();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id4}/pay"), json!({"channel": "wx"}));
    let ch4 = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    let (_, failed) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch4}/pay"), json!({"result": "fail"}));
    assert_eq!((failed["paid"].as_bool(), failed["failure_code"].as_str()), (Some(false), Some("sandbox_declined")));
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id4}")).1["status"], "created");
    let (st, again) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch4}/pay"), json!({"result": "success"}));
    assert_eq!((st, &again["error"]["code"]), (400, &json!("charge_not_pending")));
}

fn concurrent_refunds_never_exceed_paid(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.paid_order(&k, "race", 100);
    let id = order["id"].as_str().unwrap().to_string();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..200)
            .map(|_| scope.spawn(|| s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 1})).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 400).count();
    assert_eq!((ok, refused), (100, 100), "statuses: {statuses:?}");
    let (_, after) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(after["amount_refunded"], 100);
    assert_eq!(after["status"], "refunded");
    let (_, refunds) = s.get(&k.test, &format!("/v1/orders/{id}/order_refunds?limit=100"));
    let total: i64 = refunds["data"].as_array().unwrap().iter().map(|r| r["amount"].as_i64().unwrap()).sum();
    assert_eq!(total, 100);
    assert_eq!(refunds["has_more"], false);
}

fn refund_edges(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let unpaid = s.create_order(&k, &k.test, "u1", 100, json!({}));
    let (st, err) =
        s.post(&k.test, &format!("/v1/orders/{}/order_refunds", unpaid["id"].as_str().unwrap()), json!({"amount": 1}));
    assert_eq!((st, &err["error"]["code"]), (400, &json!("order_not_paid")));
    let paid = s.paid_order(&k, "p1", 100);
    let id = paid["id"].as_str().unwrap();
    for (amount, param) in [
        (json!(0), "amount"),
        (json!(-1), "amount"),
        (json!(101), "amount"),
        (json!("5"), "amount"),
        (json!(1.5), "amount"),
    ] {
        let (st, err) = s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": amount}));
        assert_eq!((st, err["error"]["param"].as_str()), (400, Some(param)), "amount {amount}: {err}");
    }
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}")).1["amount_refunded"], 0, "refused refunds wrote nothing");
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}/order_refunds")).1["data"].as_array().unwrap().len(), 0);
}

fn list_filters_and_paging(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let other = s.create_app("other");
    s.create_order(&other, &other.test, "theirs", 100, json!({"uid": "u1"}));
    let t0 = s.clock.now_for_tests();
    let created = s.create_order(&k, &k.test, "o1", 100, json!({"uid": "u1"}));
    s.clock.advance(10);
    let paid = s.paid_order(&k, "o2", 100);
    s.clock.advance(10);
    let refunded = s.paid_order(&k, "o3", 100);
    let rid = refunded["id"].as_str().unwrap();
    assert_eq!(s.post(&k.test, &format!("/v1/orders/{rid}/order_refunds"), json!({"amount": 10})).0, 200);
    s.clock.advance(10);
    let canceled = s.create_order(&k, &k.test, "o4", 100, json!({"uid": "u2"}));
    let cid = canceled["id"].as_str().unwrap();
    assert_eq!(s.put(&k.test, &format!("/v1/orders/{cid}"), json!({"status": "canceled"})).0, 200);

    let ids = |query: &str| -> Vec<String> {
        let (st, list) = s.get(&k.test, &format!("/v1/orders?app={}{query}", k.app));
        assert_eq!(st, 200, "{query}: {list}");
        assert_eq!(list["object"], "list");
        list["data"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
    };
    let id = |o: &serde_json::Value| o["id"].as_str().unwrap().to_string();
    let all = ids("");
    assert_eq!(all, vec![id(&canceled), id(&refunded), id(&paid), id(&created)], "newest first, only this app");
    assert_eq!(ids("&uid=u1"), vec![id(&created)]);
    assert_eq!(ids("&paid=true"), vec![id(&refunded), id(&paid)]);
    assert_eq!(ids("&paid=false"), vec![id(&canceled), id(&created)]);
    assert_eq!(ids("&refunded=true"), vec![id(&refunded)]);
    assert_eq!(ids("&refunded=false").len(), 3);
    assert_eq!(ids("&canceled=1"), vec![id(&canceled)]);
    assert_eq!(ids("&canceled=0").len(), 3);
    assert_eq!(ids(&format!("&receipt_app={}", k.app)).len(), 4);
    assert_eq!(ids(&format!("&service_app={}", k.app)).len(), 4);
    assert_eq!(ids(&format!("&created%5Bgt%5D={t0}")).len(), 3);
    assert_eq!(ids(&format!("&created[gte]={t0}")).len(), 4);
    assert_eq!(ids(&format!("&created[lt]={}", t0 + 10)), vec![id(&created)]);
    assert_eq!(ids(&format!("&created[lte]={}&created[gte]={}", t0 + 10, t0 + 10)), vec![id(&paid)]);

    // Page numbers.
    let (_, p1) = s.get(&k.test, &format!("/v1/orders?app={}&per_page=3&page=1", k.app));
    assert_eq!((p1["data"].as_array().unwrap().len(), p1["has_more"].as_bool()), (3, Some(true)));
    let (_, p2) = s.get(&k.test, &format!("/v1/orders?app={}&per_page=3&page=2", k.app));
    assert_eq!((p2["data"].as_array().unwrap().len(), p2["has_more"].as_bool()), (1, Some(false)));
    let (_, exact) = s.get(&k.test, &format!("/v1/orders?app={}&per_page=4", k.app));
    assert_eq!(exact["has_more"], false);

    // Cursors walk the same list both ways.
    let (_, c1) = s.get(&k.test, &format!("/v1/orders?app={}&limit=2", k.app));
    assert_eq!(c1["has_more"], true);
    let last = c1["data"][1]["id"].as_str().unwrap();
    let (_, c2) = s.get(&k.test, &format!("/v1/orders?app={}&limit=2&starting_after={last}", k.app));
    let page2: Vec<_> = c2["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(page2, all[2..4].to_vec());
    assert_eq!(c2["has_more"], false);
    let first_of_2 = &page2[0];
    let (_, back) = s.get(&k.test, &format!("/v1/orders?app={}&limit=1&ending_before={first_of_2}", k.app));
    assert_eq!(back["data"][0]["id"], json!(all[1]));
    assert_eq!(back["has_more"], true);

    // Bad paging values name their parameter.
    for (q, param) in [
        ("&per_page=21", "per_page"),
        ("&per_page=0", "per_page"),
        ("&page=0", "page"),
        ("&page=x", "page"),
        ("&limit=0", "limit"),
        ("&limit=101", "limit"),
        ("&paid=maybe", "paid"),
        ("&canceled=2", "canceled"),
        ("&created[gt]=yesterday", "created[gt]"),
        ("&starting_after=2000000000000000000", "starting_after"),
        ("&page=1&limit=2", "page"),
    ] {
        let (st, err) = s.get(&k.test, &format!("/v1/orders?app={}{q}", k.app));
        assert_eq!((st, err["error"]["param"].as_str()), (400, Some(param)), "{q}: {err}");
    }
    let (st, err) = s.get(&k.test, "/v1/orders");
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("app")));
    let (st, _) = s.get(&k.test, &format!("/v1/orders?app={}", other.app));
    assert_eq!(st, 404, "another app's list is not found, not forbidden");
}
