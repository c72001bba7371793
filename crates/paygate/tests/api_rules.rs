//! Idempotency, isolation, bad input and request signatures, on SQLite and PostgreSQL.

mod support;

use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::json;
use sha2::Sha256;
use support::{Backend, TestServer};

both!(idempotency, isolation, bad_input_is_4xx_and_writes_nothing, request_signatures, openapi_document_is_served);

fn order_body(app: &str, no: &str) -> String {
    json!({"app": app, "merchant_order_no": no, "amount": 100, "currency": "cny", "subject": "s", "body": "b"})
        .to_string()
}

fn idempotency(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let body = order_body(&k.app, "idem-1");
    let key = [("idempotency-key", "key-1")];
    let (st1, replayed1, first) = s.raw("POST", &k.test, "/v1/orders", Some(body.clone()), &key);
    let (st2, replayed2, second) = s.raw("POST", &k.test, "/v1/orders", Some(body.clone()), &key);
    assert_eq!((st1, st2), (200, 200));
    assert_eq!(first, second, "replayed byte for byte");
    assert_eq!((replayed1, replayed2.as_deref()), (None, Some("true")));

    // Same key, different request.
    let (st, _, err) = s.raw("POST", &k.test, "/v1/orders", Some(order_body(&k.app, "idem-2")), &key);
    assert_eq!(st, 400);
    assert!(err.contains("idempotency_error"), "{err}");

    // Errors are replayed too (a retry of a refused request is refused the same way).
    let bad =
        json!({"app": k.app, "merchant_order_no": "x", "amount": 0, "currency": "cny", "subject": "s", "body": "b"})
            .to_string();
    let (a, _, ea) = s.raw("POST", &k.test, "/v1/orders", Some(bad.clone()), &[("idempotency-key", "key-bad")]);
    let (b, rb, eb) = s.raw("POST", &k.test, "/v1/orders", Some(bad), &[("idempotency-key", "key-bad")]);
    assert_eq!((a, b, ea == eb, rb.as_deref()), (400, 400, true, Some("true")));

    // Keys are per app and mode: the live key may reuse the name.
    let (st, _, _) = s.raw("POST", &k.live, "/v1/orders", Some(body.clone()), &key);
    assert_eq!(st, 200);

    // A duplicate while the first is still running gets 409.
    let caller = s.rt.block_on(s.app.authenticate(&k.test)).unwrap();
    let busy_body = order_body(&k.app, "idem-busy");
    let started =
        s.rt.block_on(s.app.idempotency_start(&caller, "key-busy", "POST", "/v1/orders", busy_body.as_bytes()))
            .unwrap();
    assert!(matches!(started, paygate_core::idempotency::Idempotent::Run));
    let (st, _, err) =
        s.raw("POST", &k.test, "/v1/orders", Some(busy_body.clone()), &[("idempotency-key", "key-busy")]);
    assert_eq!(st, 409, "{err}");
    // …and the abandoned start is taken over once its lease runs out (a crashed request).
    s.clock.advance(paygate_store::IDEMPOTENCY_LEASE_SECONDS);
    let (st, _, _) = s.raw("POST", &k.test, "/v1/orders", Some(busy_body), &[("idempotency-key", "key-busy")]);
    assert_eq!(st, 200);

    // Racing duplicates: one order, every answer either that order or a 409.
    let race = order_body(&k.app, "idem-race");
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let hs: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    let (st, _, text) =
                        s.raw("POST", &k.test, "/v1/orders", Some(race.clone()), &[("idempotency-key", "key-race")]);
                    (st, text)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let oks: Vec<&String> = answers.iter().filter(|(st, _)| *st == 200).map(|(_, t)| t).collect();
    assert!(!oks.is_empty());
    assert!(oks.iter().all(|t| *t == oks[0]), "every success is the same order");
    assert!(answers.iter().all(|(st, _)| *st == 200 || *st == 409), "{answers:?}");
    let (_, list) = s.get(&k.test, &format!("/v1/orders?app={}&per_page=20", k.app));
    let race_orders = list["data"].as_array().unwrap().iter().filter(|o| o["merchant_order_no"] == "idem-race").count();
    assert_eq!(race_orders, 1);

    // Without a key, a repeated merchant_order_no names the existing order.
    let first_id = serde_json::from_str::<serde_json::Value>(&first).unwrap()["id"].as_str().unwrap().to_string();
    let (st, err) = s.call("POST", &k.test, "/v1/orders", Some(body.clone()), &[]);
    assert_eq!(st, 409);
    assert!(err["error"]["message"].as_str().unwrap().contains(&first_id), "{err}");
    assert_eq!(err["error"]["param"], "merchant_order_no");

    // After 24 hours the key is forgotten and the request runs again (and meets the duplicate).
    s.clock.advance(paygate_store::IDEMPOTENCY_TTL_SECONDS);
    let (st, replayed, _) = s.raw("POST", &k.test, "/v1/orders", Some(body), &key);
    assert_eq!((st, replayed), (409, None));
    let (st, _, _) =
        s.raw("POST", &k.test, "/v1/orders", Some(order_body(&k.app, "i")), &[("idempotency-key", &"k".repeat(256))]);
    assert_eq!(st, 400, "over-long keys are refused");
}

fn isolation(backend: Backend) {
    let s = TestServer::start(backend);
    let a = s.create_app("a");
    let b = s.create_app("b");
    let paid = s.paid_order(&a, "iso-1", 100);
    let id = paid["id"].as_str().unwrap();
    let ch = paid["charges"]["data"][0]["id"].as_str().unwrap();
    for path in [
        format!("/v1/orders/{id}"),
        format!("/v1/orders/{id}/charges"),
        format!("/v1/orders/{id}/charges/{ch}"),
        format!("/v1/charges/{ch}"),
        format!("/v1/orders/{id}/order_refunds"),
    ] {
        assert_eq!(s.get(&b.test, &path).0, 404, "other app: {path}");
        assert_eq!(s.get(&a.live, &path).0, 404, "live key, test object: {path}");
    }
    assert_eq!(s.post(&b.test, &format!("/v1/orders/{id}/order_refunds"), json!({})).0, 404);
    assert_eq!(s.post(&b.test, &format!("/v1/charges/{ch}/refunds"), json!({})).0, 404);
    assert_eq!(s.put(&b.test, &format!("/v1/orders/{id}"), json!({"status": "canceled"})).0, 404);
    assert_eq!(s.post(&b.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({})).0, 404);
    assert_eq!(s.get(&a.test, &format!("/v1/orders/{id}")).1["amount_refunded"], 0);
    // Another app's id in the body is not found either.
    let (st, err) = s.call("POST", &b.test, "/v1/orders", Some(order_body(&a.app, "x")), &[]);
    assert_eq!((st, err["error"]["param"].as_str()), (404, Some("app")));
    // Live mode: orders work, payment needs a channel that is not configured yet.
    let live = s.create_order(&a, &a.live, "live-1", 100, json!({}));
    assert_eq!(live["livemode"], true);
    assert_eq!(s.get(&a.test, &format!("/v1/orders/{}", live["id"].as_str().unwrap())).0, 404);
    let (st, err) =
        s.post(&a.live, &format!("/v1/orders/{}/pay", live["id"].as_str().unwrap()), json!({"channel": "alipay"}));
    assert_eq!((st, err["error"]["type"].as_str()), (402, Some("channel_error")), "{err}");
    let (_, test_list) = s.get(&a.test, &format!("/v1/orders?app={}", a.app));
    assert!(test_list["data"].as_array().unwrap().iter().all(|o| o["livemode"] == false));
    // The same merchant_order_no may exist once per mode.
    s.create_order(&a, &a.live, "iso-1", 100, json!({}));
    // Bad credentials.
    assert_eq!(s.get("sk_test_nope", &format!("/v1/orders/{id}")).0, 401);
    assert_eq!(s.get("", &format!("/v1/orders/{id}")).0, 401);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:", a.test)));
    let (st, _) = s.call("GET", "", &format!("/v1/orders/{id}"), None, &[("authorization", &basic)]);
    assert_eq!(st, 200, "HTTP Basic with the key as user name");
}

fn bad_input_is_4xx_and_writes_nothing(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let base =
        json!({"app": k.app, "merchant_order_no": "b1", "amount": 100, "currency": "cny", "subject": "s", "body": "b"});
    let with = |field: &str, value: serde_json::Value| {
        let mut b = base.clone();
        b[field] = value;
        b.to_string()
    };
    let without = |field: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(field);
        b.to_string()
    };
    let cases: Vec<(String, Option<&str>)> = vec![
        ("{\"amount\": ".into(), None),
        ("[1, 2]".into(), None),
        (without("amount"), Some("amount")),
        (without("merchant_order_no"), Some("merchant_order_no")),
        (without("currency"), Some("currency")),
        (without("subject"), Some("subject")),
        (without("app"), Some("app")),
        (with("amount", json!(0)), Some("amount")),
        (with("amount", json!(-100)), Some("amount")),
        (with("amount", json!(1.5)), Some("amount")),
        (with("amount", json!("100")), Some("amount")),
        (with("amount", json!(9_223_372_036_854_775_807i64)), Some("amount")),
        (with("amount", json!(18_446_744_073_709_551_615u64)), Some("amount")),
        ("{\"amount\": 1e400}".into(), None),
        (with("currency", json!("usd")), Some("currency")),
        (with("currency", json!(1)), Some("currency")),
        (with("coupon_amount", json!(100)), Some("coupon_amount")),
        (with("coupon_amount", json!(-1)), Some("coupon_amount")),
        (with("subject", json!("x".repeat(33))), Some("subject")),
        (with("subject", json!("")), Some("subject")),
        (with("merchant_order_no", json!("has space")), Some("merchant_order_no")),
        (with("client_ip", json!("999.1.1.1")), Some("client_ip")),
        (with("time_expire", json!(1)), Some("time_expire")),
        (with("metadata", json!("text")), Some("metadata")),
        (with("receipt_app", json!("app_someoneelse00000")), Some("receipt_app")),
    ];
    for (body, param) in cases {
        let (st, err) = s.call("POST", &k.test, "/v1/orders", Some(body.clone()), &[]);
        assert!((400..500).contains(&st), "{body} → {st} {err}");
        assert_eq!(err["error"]["param"].as_str(), param, "{body} → {err}");
        assert!(err["error"]["message"].as_str().unwrap().len() > 10);
    }
    let (_, list) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(list["data"].as_array().unwrap().len(), 0, "no partial writes");
    // Unknown ids, malformed ids, unknown routes and methods, oversized bodies.
    for path in [
        "/v1/orders/2000000000000000000",
        "/v1/orders/../../etc",
        "/v1/charges/ch_nope",
        "/v1/orders/1/order_refunds/re_x",
    ] {
        let (st, _) = s.get(&k.test, path);
        assert_eq!(st, 404, "{path}");
    }
    assert_eq!(s.call("DELETE", &k.test, "/v1/orders", None, &[]).0, 405);
    assert_eq!(s.get(&k.test, "/v1/nothing").0, 404);
    let (st, _) = s.post(&k.test, "/v1/orders/2000000000000000000/pay", json!({"channel": "alipay"}));
    assert_eq!(st, 404);
    let order = s.create_order(&k, &k.test, "b2", 100, json!({}));
    let (st, err) =
        s.post(&k.test, &format!("/v1/orders/{}/pay", order["id"].as_str().unwrap()), json!({"channel": "bitcoin"}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("channel")));
    let (st, err) = s.post(&k.test, &format!("/v1/orders/{}/pay", order["id"].as_str().unwrap()), json!({}));
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("channel")));
    let huge = format!("{{\"description\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (st, _) = s.call("POST", &k.test, "/v1/orders", Some(huge), &[]);
    assert_eq!(st, 413);
    assert_eq!(s.raw("GET", "", "/healthz", None, &[]).0, 200);
}

fn request_signatures(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("signed");
    let mut rng = rsa::rand_core::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let pem = private.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
    s.rt.block_on(s.app.set_app_public_key(&k.app, Some(&pem))).unwrap();
    let signer = SigningKey::<Sha256>::new(private);
    let sign = |body: &str, uri: &str, ts: i64| {
        base64::engine::general_purpose::STANDARD.encode(signer.sign(format!("{body}{uri}{ts}").as_bytes()).to_bytes())
    };
    let now = s.clock.now_for_tests();
    let body = order_body(&k.app, "sig-1");

    let (st, err) = s.call("POST", &k.test, "/v1/orders", Some(body.clone()), &[]);
    assert_eq!(st, 401, "unsigned: {err}");
    let good = sign(&body, "/v1/orders", now);
    let ts = now.to_string();
    let (st, order) = s.call(
        "POST",
        &k.test,
        "/v1/orders",
        Some(body.clone()),
        &[("pingplusplus-request-timestamp", &ts), ("pingplusplus-signature", &good)],
    );
    assert_eq!(st, 200, "{order}");
    // GET signs the empty body and the query string exactly as sent.
    let uri = format!("/v1/orders?app={}&created%5Bgte%5D=0", k.app);
    let (st, list) = s.call(
        "GET",
        &k.test,
        &uri,
        None,
        &[("pingplusplus-request-timestamp", &ts), ("pingplusplus-signature", &sign("", &uri, now))],
    );
    assert_eq!((st, list["data"].as_array().map(Vec::len)), (200, Some(1)), "{list}");
    // Tampered body, wrong URI, stale and future timestamps, garbage.
    let tampered = body.replace("100", "1");
    let stale = (now - 301).to_string();
    let future = (now + 301).to_string();
    for (b, headers) in [
        (
            tampered.clone(),
            vec![("pingplusplus-request-timestamp", ts.clone()), ("pingplusplus-signature", good.clone())],
        ),
        (
            body.clone(),
            vec![
                ("pingplusplus-request-timestamp", stale.clone()),
                ("pingplusplus-signature", sign(&body, "/v1/orders", now - 301)),
            ],
        ),
        (
            body.clone(),
            vec![
                ("pingplusplus-request-timestamp", future.clone()),
                ("pingplusplus-signature", sign(&body, "/v1/orders", now + 301)),
            ],
        ),
        (
            body.clone(),
            vec![
                ("pingplusplus-request-timestamp", ts.clone()),
                ("pingplusplus-signature", "bm90IGEgc2lnbmF0dXJl".into()),
            ],
        ),
        (
            body.clone(),
            vec![("pingplusplus-request-timestamp", "soon".into()), ("pingplusplus-signature", good.clone())],
        ),
        (body.clone(), vec![("pingplusplus-signature", good.clone())]),
    ] {
        let hs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (st, err) = s.call("POST", &k.test, "/v1/orders", Some(b), &hs);
        assert_eq!((st, err["error"]["type"].as_str()), (401, Some("authentication_error")), "{headers:?}: {err}");
    }
    // An app without a registered key needs no signature.
    let plain = s.create_app("plain");
    s.create_order(&plain, &plain.test, "p", 100, json!({}));
}

/// The OpenAPI document is served, with no key, exactly as committed in `docs/openapi.json`
/// (generated with paygate-http's `openapi` feature, whose tests keep the file current; embedded
/// as is without it); and a path answers only the methods the document gives it:
/// `…/profit_sharings/finish` is POST only, although the share route `…/profit_sharings/{id}`
/// (GET) matches it too.
fn openapi_document_is_served(backend: Backend) {
    let s = TestServer::start(backend);
    let (st, _, body) = s.raw("GET", "", "/openapi.json", None, &[]);
    assert_eq!((st, body.as_str()), (200, paygate_http::openapi_json()));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert!(body == committed, "the served document is not docs/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((doc["openapi"].as_str(), doc["paths"]["/v1/orders"]["post"].is_object()), (Some("3.1.0"), true));
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "oa-1", 100, json!({}));
    let finish = format!("/v1/orders/{}/profit_sharings/finish", order["id"].as_str().unwrap());
    let (st, err) = s.get(&k.test, &finish);
    assert_eq!((st, err["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{err}");
}
