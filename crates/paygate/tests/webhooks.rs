//! Events, the outbox and webhook delivery, on SQLite and PostgreSQL. The worker is driven
//! sweep by sweep with the test clock, so the 24-hour schedule runs in milliseconds.

mod support;

use base64::Engine;
use paygate_worker::{Settings, Worker};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;
use support::receiver::Receiver;
use support::{Backend, Keys, TestServer};

both!(
    https_endpoints_go_through_tls,
    events_are_recorded_and_delivered_signed,
    retries_follow_the_schedule,
    gives_up_after_sixteen_attempts,
    endpoint_input_is_validated,
    expiry_and_late_payment,
    the_worker_keeps_months_ahead_and_retention_removes_only_old_finished_events
);

fn worker(s: &TestServer) -> Worker {
    Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() })
}

fn endpoint(s: &TestServer, k: &Keys, url: &str, events: serde_json::Value) -> serde_json::Value {
    let mut body = json!({"url": url});
    if !events.is_null() {
        body["events"] = events;
    }
    let (st, e) = s.post(&k.test, "/v1/webhook_endpoints", body);
    assert_eq!(st, 200, "{e}");
    e
}

fn events_are_recorded_and_delivered_signed(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let rx = Receiver::always(200);
    let ep = endpoint(&s, &k, &rx.url, json!(null));
    let secret = ep["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let order = s.paid_order(&k, "ev-1", 100);
    let id = order["id"].as_str().unwrap();

    let (_, list) = s.get(&k.test, "/v1/events");
    let types: Vec<&str> = list["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, vec!["order.succeeded", "charge.succeeded"], "newest first");
    let ev = &list["data"][0];
    assert_eq!(ev["object"], "event");
    assert_eq!(ev["data"]["object"]["id"], json!(id));
    assert_eq!(ev["data"]["object"]["status"], "paid", "the object as it was then");
    assert_eq!(ev["pending_webhooks"], 1);
    let evt = ev["id"].as_str().unwrap();
    assert_eq!(s.get(&k.test, &format!("/v1/events/{evt}")).1["type"], "order.succeeded");
    assert_eq!(s.get(&k.test, "/v1/events?type=charge.succeeded").1["data"].as_array().unwrap().len(), 1);
    assert_eq!(s.get(&k.test, "/v1/events?limit=1").1["has_more"], true);
    let (st, err) = s.get(&k.test, "/v1/events?type=nope");
    assert_eq!((st, err["error"]["param"].as_str()), (400, Some("type")));
    // Another app, or the live key, sees none of it.
    let other = s.create_app("other");
    assert_eq!(s.get(&other.test, &format!("/v1/events/{evt}")).0, 404);
    assert_eq!(s.get(&k.live, "/v1/events").1["data"].as_array().unwrap().len(), 0);

    let sweep = s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(sweep.delivered, 2);
    let got = rx.all();
    assert_eq!(got.len(), 2);
    assert_eq!(s.get(&k.test, &format!("/v1/events/{evt}")).1["pending_webhooks"], 0);

    // Both signatures verify over the raw body, with independent code paths.
    let pem = s.get(&k.test, "/v1/webhook_public_key").1["pem"].as_str().unwrap().to_string();
    let key = VerifyingKey::<Sha256>::new(rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap());
    for r in &got {
        let sig =
            base64::engine::general_purpose::STANDARD.decode(r.header("x-pingplusplus-signature").unwrap()).unwrap();
        key.verify(r.body.as_bytes(), &Signature::try_from(sig.as_slice()).unwrap()).expect("RSA signature verifies");
        let tampered = r.body.replace("100", "999");
        assert!(key.verify(tampered.as_bytes(), &Signature::try_from(sig.as_slice()).unwrap()).is_err());
        let header = r.header("paygate-signature").unwrap();
        let (t, v1) = header.split_once(",v1=").unwrap();
        let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
        assert_eq!(t, s.clock.now_for_tests());
        assert_eq!(v1, hmac_sha256_hex(secret.as_bytes(), format!("{t}.{}", r.body).as_bytes()));
    }

    // The attempt log, and a manual resend.
    let (_, deliveries) = s.get(&k.test, &format!("/v1/events/{evt}/deliveries"));
    let d = &deliveries["data"][0];
    assert_eq!((d["status"].as_str(), d["attempts"].as_i64()), (Some("delivered"), Some(1)));
    assert_eq!(d["attempt_log"][0]["status_code"], 200);
    let (st, resent) = s.post(&k.test, &format!("/v1/events/{evt}/resend"), json!({}));
    assert_eq!((st, resent["deliveries_queued"].as_i64()), (200, Some(1)));
    s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(rx.count(), 3);
    assert_eq!(rx.all()[2].json()["id"], json!(evt));

    // Subscriptions filter, deletion stops deliveries.
    let refunds_only = Receiver::always(200);
    let ep2 = endpoint(&s, &k, &refunds_only.url, json!(["refund.succeeded"]));
    assert_eq!(s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 10})).0, 200);
    s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(
        refunds_only.all().iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect::<Vec<_>>(),
        vec!["refund.succeeded"]
    );
    assert_eq!(rx.count(), 4);
    let (_, eps) = s.get(&k.test, "/v1/webhook_endpoints");
    assert_eq!(eps["data"].as_array().unwrap().len(), 2);
    assert!(eps["data"][0].get("secret").is_none(), "secrets are shown only at creation");
    assert_eq!(
        s.call("DELETE", &k.test, &format!("/v1/webhook_endpoints/{}", ep2["id"].as_str().unwrap()), None, &[]).0,
        200
    );
    assert_eq!(
        s.call("DELETE", &other.test, &format!("/v1/webhook_endpoints/{}", ep["id"].as_str().unwrap()), None, &[]).0,
        404
    );
    assert_eq!(s.post(&k.test, &format!("/v1/orders/{id}/order_refunds"), json!({"amount": 10})).0, 200);
    s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(refunds_only.count(), 1);
    assert_eq!(rx.count(), 5);
}

fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    // RFC 2104 written out with sha2, independent of the hmac crate the server uses.
    use sha2::Digest;
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(k.map(|b| b ^ 0x36)).chain_update(message).finalize();
    let outer = Sha256::new().chain_update(k.map(|b| b ^ 0x5c)).chain_update(inner).finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

fn retries_follow_the_schedule(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    // Down for the first 3 attempts (the third asks for 120 s), then up.
    let rx = Receiver::start(Box::new(|n| match n {
        0 | 1 => (500, None),
        2 => (503, Some(("retry-after", "120".to_string()))),
        _ => (200, None),
    }));
    endpoint(&s, &k, &rx.url, json!(["order.canceled"]));
    let order = s.create_order(&k, &k.test, "r-1", 100, json!({}));
    assert_eq!(
        s.put(&k.test, &format!("/v1/orders/{}", order["id"].as_str().unwrap()), json!({"status": "canceled"})).0,
        200
    );
    let w = worker(&s);
    let start = s.clock.now_for_tests();
    let mut attempt_times = Vec::new();
    for _ in 0..2000 {
        let before = rx.count();
        s.rt.block_on(w.tick()).unwrap();
        if rx.count() > before {
            attempt_times.push(s.clock.now_for_tests() - start);
        }
        if rx.count() == 4 {
            break;
        }
        s.clock.advance(1);
    }
    assert_eq!(rx.count(), 4, "delivered on attempt 4");
    // Attempt 1 at once; then 15 s, 15 s (+≤10 % jitter), then the receiver's Retry-After 120 s over the
    // scheduled 30 s.
    let gaps: Vec<i64> = attempt_times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(attempt_times[0], 0);
    assert!((15..=17).contains(&gaps[0]) && (15..=17).contains(&gaps[1]), "{gaps:?}");
    assert!((120..=122).contains(&gaps[2]), "Retry-After honoured: {gaps:?}");
    let evt = rx.all()[0].json()["id"].as_str().unwrap().to_string();
    let (_, d) = s.get(&k.test, &format!("/v1/events/{evt}/deliveries"));
    let log = d["data"][0]["attempt_log"].as_array().unwrap();
    assert_eq!(log.iter().map(|a| a["status_code"].as_i64().unwrap()).collect::<Vec<_>>(), vec![500, 500, 503, 200]);
    assert_eq!(d["data"][0]["status"], "delivered");
    assert!(rx.all().iter().all(|r| r.json()["id"] == json!(evt)), "the same event each time");
}

fn gives_up_after_sixteen_attempts(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let rx = Receiver::always(500);
    endpoint(&s, &k, &rx.url, json!(null));
    let order = s.create_order(&k, &k.test, "g-1", 100, json!({}));
    assert_eq!(
        s.put(&k.test, &format!("/v1/orders/{}", order["id"].as_str().unwrap()), json!({"status": "canceled"})).0,
        200
    );
    let w = worker(&s);
    let start = s.clock.now_for_tests();
    for _ in 0..40 {
        s.rt.block_on(w.tick()).unwrap();
        s.clock.advance(7 * 3600);
    }
    assert_eq!(rx.count(), 16);
    let evt = rx.all()[0].json()["id"].as_str().unwrap().to_string();
    let (_, d) = s.get(&k.test, &format!("/v1/events/{evt}/deliveries"));
    assert_eq!((d["data"][0]["status"].as_str(), d["data"][0]["attempts"].as_i64()), (Some("failed"), Some(16)));
    let log = d["data"][0]["attempt_log"].as_array().unwrap();
    let span = log.last().unwrap()["attempted_at"].as_i64().unwrap() - start;
    assert!(span >= 20 * 3600, "about a day of retries: {span}");
    // A failed event can still be re-sent by hand.
    assert_eq!(s.post(&k.test, &format!("/v1/events/{evt}/resend"), json!({})).1["deliveries_queued"], 1);
}

fn endpoint_input_is_validated(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    for (body, param) in [
        (json!({"url": "ftp://example.com/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": format!("https://example.com/{}", "a".repeat(3000))}), "url"),
        (json!({}), "url"),
        (json!({"url": "https://example.com", "events": ["order.nope"]}), "events"),
        (json!({"url": "https://example.com", "events": "order.succeeded"}), "events"),
        (json!({"url": "https://example.com", "events": []}), "events"),
        (json!({"url": 5}), "url"),
    ] {
        let (st, err) = s.post(&k.test, "/v1/webhook_endpoints", body.clone());
        assert_eq!((st, err["error"]["param"].as_str()), (400, Some(param)), "{body}");
    }
    let huge = format!("{{\"url\": \"https://e.com/{}\"}}", "x".repeat(2 * 1024 * 1024));
    assert_eq!(s.call("POST", &k.test, "/v1/webhook_endpoints", Some(huge), &[]).0, 413);
    assert_eq!(s.get(&k.test, "/v1/webhook_endpoints").1["data"].as_array().unwrap().len(), 0);
}

fn expiry_and_late_payment(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let rx = Receiver::always(200);
    endpoint(&s, &k, &rx.url, json!(null));
    let expire_at = s.clock.now_for_tests() + 60;
    let order = s.create_order(&k, &k.test, "x-1", 100, json!({"time_expire": expire_at}));
    let id = order["id"].as_str().unwrap().to_string();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    let ch = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    let w = worker(&s);
    assert_eq!(s.rt.block_on(w.tick()).unwrap().expired_orders, 0, "not yet");
    s.clock.advance(60);
    assert_eq!(s.rt.block_on(w.tick()).unwrap().expired_orders, 1);
    let (_, closed) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["charges"]["data"][0]["status"], "closed", "closed at the channel and in the books");
    assert_eq!(rx.all().iter().filter(|r| r.json()["type"] == "order.closed").count(), 1);
    let (st, _) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "alipay_qr"}));
    assert_eq!(st, 400, "a closed order cannot be paid");

    // The payer's money still arrives: paid_after_close, an event, and an automatic refund.
    let (st, _) = s.post(&k.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
    assert_eq!(st, 200);
    let (_, late) = s.get(&k.test, &format!("/v1/orders/{id}"));
    assert_eq!(
        (late["status"].as_str(), late["paid"].as_bool(), late["amount_refunded"].as_i64()),
        (Some("paid_after_close"), Some(false), Some(100))
    );
    s.rt.block_on(w.tick()).unwrap();
    let types: Vec<String> = rx.all().iter().map(|r| r.json()["type"].as_str().unwrap().to_string()).collect();
    assert!(
        types.contains(&"order.paid_after_close".to_string()) && types.contains(&"refund.succeeded".to_string()),
        "{types:?}"
    );
    assert!(!types.contains(&"order.succeeded".to_string()), "never reported as a normal success: {types:?}");

    // An app that holds late money for review gets no automatic refund.
    let held = s.create_app("holds");
    s.rt.block_on(s.app.set_app_late_payment(&held.app, paygate_domain::LatePayment::Hold)).unwrap();
    let o2 = s.create_order(&held, &held.test, "x-2", 100, json!({}));
    let id2 = o2["id"].as_str().unwrap();
    let (_, paying) = s.post(&held.test, &format!("/v1/orders/{id2}/pay"), json!({"channel": "wx"}));
    let ch2 = paying["charges"]["data"][0]["id"].as_str().unwrap();
    assert_eq!(s.put(&held.test, &format!("/v1/orders/{id2}"), json!({"status": "canceled"})).0, 200);
    assert_eq!(s.post(&held.test, &format!("/v1/sandbox/charges/{ch2}/pay"), json!({})).0, 200);
    let (_, o2) = s.get(&held.test, &format!("/v1/orders/{id2}"));
    assert_eq!(
        (o2["status"].as_str(), o2["amount_paid"].as_i64(), o2["amount_refunded"].as_i64()),
        (Some("paid_after_close"), Some(100), Some(0))
    );
    // …and can refund it by hand.
    assert_eq!(s.post(&held.test, &format!("/v1/orders/{id2}/order_refunds"), json!({})).0, 200);

    // A crash between a late payment and its automatic refund: the store recorded the late
    // money (as the settlement does) but nothing refunded it. The next worker sweep does.
    let o3 = s.create_order(&k, &k.test, "x-3", 100, json!({}));
    let id3 = o3["id"].as_str().unwrap().to_string();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id3}/pay"), json!({"channel": "wx"}));
    let ch3 = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.put(&k.test, &format!("/v1/orders/{id3}"), json!({"status": "canceled"})).0, 200);
    let scope = paygate_domain::Scope { app_id: k.app.clone(), mode: paygate_domain::Mode::Test };
    let outcome = paygate_store::ChargeOutcome::Succeeded {
        transaction_no: "late-crash".into(),
        time_paid: s.clock.now_for_tests(),
        notification: None,
        settlement: None,
    };
    s.rt.block_on(s.app.store.settle_charge(&scope, &ch3, &outcome)).unwrap();
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id3}")).1["amount_refunded"], 0);
    s.rt.block_on(w.tick()).unwrap();
    let (_, o3) = s.get(&k.test, &format!("/v1/orders/{id3}"));
    assert_eq!((o3["status"].as_str(), o3["amount_refunded"].as_i64()), (Some("paid_after_close"), Some(100)));
}

fn https_endpoints_go_through_tls(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let plain = Receiver::always(200);
    // The same socket, addressed as https: the TLS handshake fails, is logged, and is retried.
    endpoint(&s, &k, &plain.url.replace("http://", "https://"), json!(["order.canceled"]));
    let order = s.create_order(&k, &k.test, "tls-1", 100, json!({}));
    assert_eq!(
        s.put(&k.test, &format!("/v1/orders/{}", order["id"].as_str().unwrap()), json!({"status": "canceled"})).0,
        200
    );
    let sweep = s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(sweep.retrying, 1);
    assert_eq!(plain.count(), 0, "nothing was sent in clear text to an https endpoint");
    let evt = s.get(&k.test, "/v1/events").1["data"][0]["id"].as_str().unwrap().to_string();
    let (_, d) = s.get(&k.test, &format!("/v1/events/{evt}/deliveries"));
    let attempt = &d["data"][0]["attempt_log"][0];
    assert!(attempt["status_code"].is_null());
    assert!(!attempt["error"].as_str().unwrap().is_empty(), "{attempt}");
    assert_eq!(d["data"][0]["status"], "pending");
}

/// The worker's upkeep: PostgreSQL months made ahead of its clock, and with a retention of 30 days
/// old events go once nothing of theirs is pending (PostgreSQL: their whole month; SQLite: each
/// event on its own), while events with a pending delivery and recent ones stay.
fn the_worker_keeps_months_ahead_and_retention_removes_only_old_finished_events(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (ok, down) = (Receiver::always(200), Receiver::always(500));
    endpoint(&s, &k, &ok.url, json!(null));
    let down_id = endpoint(&s, &k, &down.url, json!(["order.canceled"]))["id"].as_str().unwrap().to_string();
    s.paid_order(&k, "h-1", 100);
    let order = s.create_order(&k, &k.test, "h-2", 100, json!({}));
    let path = format!("/v1/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(s.put(&k.test, &path, json!({"status": "canceled"})).0, 200);
    let (_, events) = s.get(&k.test, "/v1/events");
    let ids: Vec<String> =
        events["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().into()).collect();
    let (canceled, paid) = (ids[0].clone(), ids[1..].to_vec());
    assert_eq!(ids.len(), 3, "{events}");
    let settings = Settings { timeout: Duration::from_secs(5), event_retention_days: Some(30), ..Settings::default() };
    let w = Worker::new(s.app.clone(), settings);
    let sweep = s.rt.block_on(w.tick()).unwrap();
    assert_eq!((sweep.delivered, sweep.retrying, sweep.trimmed_events), (3, 1, 0));
    let months = |s: &TestServer| s.rt.block_on(s.app.store.outbox_months()).unwrap();
    let month_starts = |s: &TestServer| months(s).iter().map(|m| m.0).collect::<Vec<_>>();
    let pg = backend == Backend::Postgres;
    if pg {
        // 2027-01, 2027-02 and 2027-03 (the clock is at 2027-01-15).
        for start in [1_798_761_600, 1_801_440_000, 1_803_859_200] {
            assert!(month_starts(&s).contains(&start), "{start} in {:?}", months(&s));
        }
    } else {
        assert!(months(&s).is_empty());
    }
    let found = |s: &TestServer, id: &str| s.get(&k.test, &format!("/v1/events/{id}")).0 == 200;

    // 70 days on January is past retention, but the canceled event's delivery is still pending.
    s.clock.advance(70 * 86_400);
    let sweep = s.rt.block_on(w.tick()).unwrap();
    assert!(found(&s, &canceled), "pending: kept");
    assert_eq!(sweep.trimmed_events, if pg { 0 } else { 2 });
    for id in &paid {
        assert_eq!(found(&s, id), pg, "delivered and old: PostgreSQL keeps the month, SQLite deletes it");
    }
    if pg {
        assert!(month_starts(&s).contains(&1_809_129_600), "2027-05 made ahead: {:?}", months(&s));
    }

    // Its endpoint deleted, nothing is pending: at the next upkeep the old events are gone.
    assert_eq!(s.call("DELETE", &k.test, &format!("/v1/webhook_endpoints/{down_id}"), None, &[]).0, 200);
    let fresh = s.create_order(&k, &k.test, "h-3", 100, json!({}));
    let fresh_path = format!("/v1/orders/{}", fresh["id"].as_str().unwrap());
    assert_eq!(s.put(&k.test, &fresh_path, json!({"status": "canceled"})).0, 200);
    s.clock.advance(paygate_worker::UPKEEP_SECONDS);
    s.rt.block_on(w.tick()).unwrap();
    for id in paid.iter().chain([&canceled]) {
        assert!(!found(&s, id), "{id} past retention and finished: gone");
    }
    let (_, events) = s.get(&k.test, "/v1/events");
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "the recent event stays: {events}");
    if pg {
        assert!(!month_starts(&s).contains(&1_798_761_600), "January dropped: {:?}", months(&s));
    }
}
