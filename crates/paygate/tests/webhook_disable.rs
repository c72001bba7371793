//! Disabling and enabling webhook endpoints on `/v1` (`POST /v1/webhook_endpoints/{id}` with `disabled`), on SQLite
//! and PostgreSQL, with real receivers: a disabled endpoint is sent nothing new (events and resends skip it) and
//! its pending deliveries are failed at once; enabled again, it receives new events and resends. Bad input is a 400
//! naming `disabled`, an unknown, deleted, other app's or other mode's endpoint a 404.

mod support;

use paygate_worker::{Settings, Worker};
use serde_json::{json, Value};
use std::time::Duration;
use support::receiver::Receiver;
use support::{Backend, Keys, TestServer};

both!(disabled_endpoints_get_nothing_until_enabled, updates_are_checked_and_scoped);

fn worker(s: &TestServer) -> Worker {
    Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() })
}

fn endpoint(s: &TestServer, k: &Keys, url: &str) -> String {
    let (status, e) = s.post(&k.test, "/v1/webhook_endpoints", json!({ "url": url }));
    assert_eq!((status, e["status"].as_str()), (200, Some("enabled")), "{e}");
    e["id"].as_str().unwrap().to_string()
}

fn set_disabled(s: &TestServer, key: &str, id: &str, disabled: Value) -> (u16, Value) {
    s.post(key, &format!("/v1/webhook_endpoints/{id}"), json!({ "disabled": disabled }))
}

/// The newest event of `kind` and its deliveries as `(endpoint, status)`.
fn newest_event(s: &TestServer, k: &Keys, kind: &str) -> (String, Vec<(String, String)>) {
    let (_, events) = s.get(&k.test, &format!("/v1/events?type={kind}&limit=1"));
    let id = events["data"][0]["id"].as_str().unwrap().to_string();
    let (status, list) = s.get(&k.test, &format!("/v1/events/{id}/deliveries"));
    assert_eq!(status, 200, "{list}");
    let mut deliveries: Vec<(String, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["endpoint"].as_str().unwrap().to_string(), d["status"].as_str().unwrap().to_string()))
        .collect();
    deliveries.sort();
    (id, deliveries)
}

fn pair(endpoint: &str, status: &str) -> (String, String) {
    (endpoint.to_string(), status.to_string())
}

fn disabled_endpoints_get_nothing_until_enabled(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let (off_rx, on_rx) = (Receiver::always(200), Receiver::always(200));
    let (off, on) = (endpoint(&s, &k, &off_rx.url), endpoint(&s, &k, &on_rx.url));

    // Queued for both, then `off` is disabled before the worker runs: its pending deliveries are failed at once.
    s.paid_order(&k, "before-disable", 100);
    let (first_event, deliveries) = newest_event(&s, &k, "order.succeeded");
    let mut expected = vec![pair(&off, "pending"), pair(&on, "pending")];
    expected.sort();
    assert_eq!(deliveries, expected);
    let (status, e) = set_disabled(&s, &k.test, &off, json!(true));
    assert_eq!((status, e["status"].as_str(), e["id"].as_str()), (200, Some("disabled"), Some(off.as_str())), "{e}");
    assert!(e.get("secret").is_none(), "the secret is shown on creation only");
    let mut expected = vec![pair(&off, "failed"), pair(&on, "pending")];
    expected.sort();
    assert_eq!(newest_event(&s, &k, "order.succeeded").1, expected);
    let (_, listed) = s.get(&k.test, "/v1/webhook_endpoints");
    let statuses: Vec<(&str, &str)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e["status"].as_str().unwrap()))
        .collect();
    assert_eq!(statuses, vec![(off.as_str(), "disabled"), (on.as_str(), "enabled")]);
    // Disabling again changes nothing and is no error.
    assert_eq!(set_disabled(&s, &k.test, &off, json!(true)).1["status"], "disabled");

    // New events are not queued for it at all; resends skip it too.
    s.paid_order(&k, "while-disabled", 200);
    assert_eq!(newest_event(&s, &k, "order.succeeded").1, vec![pair(&on, "pending")]);
    let (status, resent) = s.post(&k.test, &format!("/v1/events/{first_event}/resend"), json!({}));
    assert_eq!((status, resent["deliveries_queued"].as_u64()), (200, Some(1)), "{resent}");
    s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(off_rx.count(), 0, "a disabled endpoint is sent nothing");
    assert_eq!(on_rx.count(), 5, "two events per payment, and the resend");

    // Enabled again: new events reach it, and so does a resend of the one it missed.
    let (status, e) = set_disabled(&s, &k.test, &off, json!(false));
    assert_eq!((status, e["status"].as_str()), (200, Some("enabled")), "{e}");
    s.paid_order(&k, "after-enable", 300);
    let mut expected = vec![pair(&off, "pending"), pair(&on, "pending")];
    expected.sort();
    assert_eq!(newest_event(&s, &k, "order.succeeded").1, expected);
    let (status, resent) = s.post(&k.test, &format!("/v1/events/{first_event}/resend"), json!({}));
    assert_eq!((status, resent["deliveries_queued"].as_u64()), (200, Some(2)), "{resent}");
    s.rt.block_on(worker(&s).tick()).unwrap();
    assert_eq!(off_rx.count(), 3, "the new payment's two events and the resend");
    let bodies: Vec<Value> = off_rx.all().iter().map(|r| r.json()).collect();
    assert!(bodies.iter().any(|b| b["id"] == json!(first_event)), "{bodies:?}");
}

fn updates_are_checked_and_scoped(backend: Backend) {
    let s = TestServer::start(backend);
    let (k, other) = (s.create_app("shop"), s.create_app("other"));
    let rx = Receiver::always(200);
    let id = endpoint(&s, &k, &rx.url);

    for bad in [json!("yes"), json!(1), json!(null), json!([true])] {
        let (status, err) = set_disabled(&s, &k.test, &id, bad.clone());
        assert_eq!((status, err["error"]["param"].as_str()), (400, Some("disabled")), "{bad}: {err}");
    }
    let (status, err) = s.post(&k.test, &format!("/v1/webhook_endpoints/{id}"), json!({}));
    assert_eq!((status, err["error"]["param"].as_str()), (400, Some("disabled")), "{err}");
    let (status, err) = s.call("POST", &k.test, &format!("/v1/webhook_endpoints/{id}"), Some("{".into()), &[]);
    assert_eq!((status, err["error"]["code"].as_str()), (400, Some("invalid_json")), "{err}");

    // Unknown and malformed ids, another app's key and the live key find nothing, and change nothing.
    for (key, endpoint) in [
        (&k.test, "we_000000000000000000000000"),
        (&k.test, "nope"),
        (&other.test, id.as_str()),
        (&k.live, id.as_str()),
    ] {
        let (status, err) = set_disabled(&s, key, endpoint, json!(true));
        assert_eq!(status, 404, "{endpoint}: {err}");
        assert!(err["error"]["message"].is_string() && err["error"]["type"].is_string(), "{err}");
    }
    assert_eq!(s.get(&k.test, "/v1/webhook_endpoints").1["data"][0]["status"], "enabled");

    // A deleted endpoint can be neither disabled nor enabled.
    let (status, _) = s.call("DELETE", &k.test, &format!("/v1/webhook_endpoints/{id}"), None, &[]);
    assert_eq!(status, 200);
    assert_eq!(set_disabled(&s, &k.test, &id, json!(false)).0, 404);
    // GET of one endpoint is not a route: 405 naming what it takes.
    let (status, _, _) = s.raw("GET", &k.test, &format!("/v1/webhook_endpoints/{id}"), None, &[]);
    assert_eq!(status, 405);
}
