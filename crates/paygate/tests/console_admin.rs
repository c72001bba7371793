//! The console's webhooks and developers pages over HTTP, on SQLite and on PostgreSQL: an admin creates an endpoint
//! (its secret shown once), sees its deliveries in the log with filters, resends an event and deletes the
//! endpoint; rolls the mode's API key (the new key works on `/v1`, the old one until its grace ends); sets and
//! clears the app's RSA public key and a fee rate. Support and viewers are refused every change, another app's
//! admin sees and changes nothing of this app, a POST without the CSRF token does nothing, and a private webhook
//! URL is refused under the strict policy exactly as `/v1` refuses it. Every change is in the audit log.

mod support;

use paygate_core::console::Role;
use paygate_worker::{Settings, Worker};
use serde_json::{json, Value};
use std::time::Duration;
use support::console::Browser;
use support::receiver::Receiver;
use support::{Backend, TestServer};

both!(webhooks_page, endpoints_are_disabled_and_enabled, developers_page, strict_policy_refuses_private_urls);

fn signed_in(s: &TestServer, app: &str, email: &str, role: Role) -> Browser {
    support::console::user(s, app, email, role);
    support::console::signed_in(s, app, email)
}

fn endpoints(s: &TestServer, key: &str) -> Vec<Value> {
    let (status, list) = s.get(key, "/v1/webhook_endpoints");
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn audit_actions(s: &TestServer, app: &str) -> Vec<(String, String, String)> {
    let log = s.rt.block_on(s.app.store.console_audit(app, None, 100)).unwrap();
    log.into_iter().map(|r| (r.entry.action, r.entry.actor, r.entry.object_id)).collect()
}

const HOOKS: &str = "/console/test/webhooks";

fn webhooks_page(backend: Backend) {
    let s = TestServer::start(backend);
    let (keys, other_keys) = (s.create_app("hooks"), s.create_app("other"));
    let mut admin = signed_in(&s, &keys.app, "admin@hooks.test", Role::Admin);
    let mut support = signed_in(&s, &keys.app, "support@hooks.test", Role::Support);
    let mut viewer = signed_in(&s, &keys.app, "viewer@hooks.test", Role::Viewer);
    let mut other = signed_in(&s, &other_keys.app, "admin@other.test", Role::Admin);
    let receiver = Receiver::always(200);

    let page = admin.get(HOOKS);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("No endpoints yet.") && page.body.contains("name=\"url\""), "{}", page.body);
    assert!(!support.get(HOOKS).body.contains("name=\"url\""), "support sees no create form");

    // Refused: without the CSRF token (even an admin), and for support and viewers whatever they carry.
    let create = [("url", receiver.url.as_str()), ("events", "order.succeeded"), ("events", "charge.succeeded")];
    assert_eq!(admin.post(HOOKS, &create).status, 403);
    assert_eq!(support.submit(HOOKS, HOOKS, &create).status, 403);
    assert_eq!(viewer.submit(HOOKS, HOOKS, &create).status, 403);
    assert!(endpoints(&s, &keys.test).is_empty());

    // Created: the secret is on the answer page only; /v1 lists the endpoint with its event types.
    let page = admin.submit(HOOKS, HOOKS, &create);
    assert_eq!(page.status, 200, "{}", page.body);
    let secret = page.by_id("secret");
    assert!(secret.starts_with("whsec_") && secret.len() > 20, "{secret}");
    let listed = endpoints(&s, &keys.test);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let endpoint_id = listed[0]["id"].as_str().unwrap().to_string();
    assert_eq!(listed[0]["events"], json!(["charge.succeeded", "order.succeeded"]));
    assert!(listed[0].get("secret").is_none());
    let page = admin.get(HOOKS);
    assert!(page.body.contains(&endpoint_id) && page.body.contains(&receiver.url), "{}", page.body);
    assert!(!page.body.contains(&secret), "the secret is shown once");

    // A payment's events are delivered; the log shows them, filtered by endpoint and by status.
    s.paid_order(&keys, "hooked-1", 500);
    let (_, events) = s.get(&keys.test, "/v1/events?type=order.succeeded");
    let event_id = events["data"][0]["id"].as_str().unwrap().to_string();
    let worker = Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() });
    s.rt.block_on(worker.tick()).unwrap();
    assert_eq!(receiver.received.lock().unwrap().len(), 2);
    let page = viewer.get(&format!("{HOOKS}?endpoint={endpoint_id}&status=delivered"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&event_id) && page.body.contains("order.succeeded"), "{}", page.body);
    assert!(page.body.contains("charge.succeeded") && page.body.contains("→ 200 ("), "{}", page.body);
    assert!(!page.body.contains("/resend"), "viewers get no resend button");
    let page = viewer.get(&format!("{HOOKS}?status=failed"));
    assert!(page.body.contains("No deliveries.") && !page.body.contains(&event_id), "{}", page.body);
    assert_eq!(viewer.get(&format!("{HOOKS}?status=lost")).status, 400);

    // Resend: refused without the token and for support; the admin's queues one delivery, then delivered.
    let resend = format!("{HOOKS}/events/{event_id}/resend");
    assert_eq!(admin.post(&resend, &[]).status, 403);
    assert_eq!(support.submit(HOOKS, &resend, &[]).status, 403);
    let page = admin.submit(HOOKS, &resend, &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/webhooks?resent=1")));
    assert!(admin.get("/console/test/webhooks?resent=1").body.contains("Event queued again for delivery (1)"));
    let page = admin.get(&format!("{HOOKS}?status=pending"));
    assert!(page.body.contains(&event_id) && page.body.contains("order.succeeded"), "{}", page.body);
    s.rt.block_on(worker.tick()).unwrap();
    assert_eq!(receiver.received.lock().unwrap().len(), 3);

    // Another app's admin sees none of it and can change none of it.
    let page = other.get(&format!("{HOOKS}?endpoint={endpoint_id}"));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(&event_id) && !page.body.contains(&receiver.url), "{}", page.body);
    assert_eq!(other.submit(HOOKS, &resend, &[]).status, 404);
    assert_eq!(other.submit(HOOKS, &format!("{HOOKS}/{endpoint_id}/delete"), &[]).status, 404);
    assert_eq!(endpoints(&s, &keys.test).len(), 1);
    // Nor is a test endpoint in live mode.
    assert!(!admin.get("/console/live/webhooks").body.contains(&endpoint_id));

    // Delete: refused without the token and for support; the admin's removes it from /v1 too.
    let delete = format!("{HOOKS}/{endpoint_id}/delete");
    assert_eq!(admin.post(&delete, &[]).status, 403);
    assert_eq!(support.submit(HOOKS, &delete, &[]).status, 403);
    assert_eq!(endpoints(&s, &keys.test).len(), 1);
    let page = admin.submit(HOOKS, &delete, &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/webhooks?deleted=1")));
    assert!(endpoints(&s, &keys.test).is_empty());
    assert_eq!(admin.submit(HOOKS, &delete, &[]).status, 404, "deleted once");

    let actions = audit_actions(&s, &keys.app);
    for (action, object) in [
        ("webhook_endpoint.create", &endpoint_id),
        ("event.resend", &event_id),
        ("webhook_endpoint.delete", &endpoint_id),
    ] {
        let found = actions.iter().filter(|(a, who, o)| a == action && who == "admin@hooks.test" && o == object);
        assert_eq!(found.count(), 1, "{action}: {actions:?}");
    }
    let log = s.rt.block_on(s.app.store.console_audit(&keys.app, None, 100)).unwrap();
    assert!(log.iter().all(|r| !r.entry.after.as_ref().is_some_and(|a| a.to_string().contains(&secret))));
    assert!(audit_actions(&s, &other_keys.app).iter().all(|(a, ..)| !a.starts_with("webhook") && a != "event.resend"));
}

const DEV: &str = "/console/test/developers";

fn developers_page(backend: Backend) {
    let s = TestServer::start(backend);
    let (keys, other_keys) = (s.create_app("dev"), s.create_app("other"));
    let mut admin = signed_in(&s, &keys.app, "admin@dev.test", Role::Admin);
    let mut support = signed_in(&s, &keys.app, "support@dev.test", Role::Support);
    let mut other = signed_in(&s, &other_keys.app, "admin@other.test", Role::Admin);

    // What the admin sees: the client id and credential ids of this app and mode, never a stored secret.
    let page = admin.get(DEV);
    assert_eq!(page.status, 200, "{}", page.body);
    for shown in [&keys.client_id, &keys.cashier.0, &keys.saas.0] {
        assert!(page.body.contains(shown.as_str()), "{shown}: {}", page.body);
    }
    for secret in [&keys.cashier.1, &keys.cashier.2, &keys.saas.1, &keys.test, &keys.live] {
        assert!(!page.body.contains(secret.as_str()), "a secret on the page");
    }
    assert!(page.body.contains("wechat") && page.body.contains("alipay"), "fee families");
    let page = other.get(DEV);
    assert!(!page.body.contains(&keys.client_id) && !page.body.contains(&keys.cashier.0), "another app's ids");

    // Support may not see the page, nor roll the key; neither may anyone without the CSRF token.
    assert_eq!(support.get(DEV).status, 403);
    let roll = format!("{DEV}/roll-key");
    assert_eq!(support.submit(HOOKS, &roll, &[("grace_hours", "1")]).status, 403);
    assert_eq!(admin.post(&roll, &[("grace_hours", "1")]).status, 403);
    assert_eq!(s.get(&keys.test, "/v1/webhook_endpoints").0, 200, "the key was not rolled");
    assert_eq!(admin.submit(DEV, &roll, &[("grace_hours", "100000")]).status, 400, "grace beyond the maximum");

    // The admin rolls it: the new key is on the answer only, works on /v1, and the old one works for an hour.
    let page = admin.submit(DEV, &roll, &[("grace_hours", "1")]);
    assert_eq!(page.status, 200, "{}", page.body);
    let new_key = page.by_id("new-key");
    assert!(new_key.starts_with("sk_test_") && new_key != keys.test, "{new_key}");
    assert!(!admin.get(DEV).body.contains(&new_key), "shown once");
    assert_eq!(s.get(&new_key, "/v1/webhook_endpoints").0, 200);
    assert_eq!(s.get(&keys.test, "/v1/webhook_endpoints").0, 200, "the old key in its grace period");
    assert_eq!(s.get(&keys.live, "/v1/webhook_endpoints").0, 200, "the live key is another mode's");
    // Sessions end after 30 idle minutes: the hour passes with the console in use.
    for _ in 0..3 {
        s.clock.advance(1201);
        assert_eq!(admin.get(DEV).status, 200);
        assert_eq!(support.get(HOOKS).status, 200);
    }
    assert_eq!(s.get(&keys.test, "/v1/webhook_endpoints").0, 401, "the grace is over");
    assert_eq!(s.get(&new_key, "/v1/webhook_endpoints").0, 200);
    assert_eq!(s.get(&other_keys.test, "/v1/webhook_endpoints").0, 200, "another app's key is untouched");

    // A fee rate, and refusals of a bad one.
    let fees = format!("{DEV}/fee-rates");
    let page = admin.submit(DEV, &fees, &[("family", "wechat"), ("rate_bp", "60")]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/developers?saved=fee")));
    let page = admin.get("/console/test/developers?saved=fee");
    assert!(page.body.contains("Fee rate saved.") && page.body.contains("value=\"60\""), "{}", page.body);
    assert_eq!(admin.submit(DEV, &fees, &[("family", "paypal"), ("rate_bp", "60")]).status, 400);
    assert_eq!(admin.submit(DEV, &fees, &[("family", "wechat"), ("rate_bp", "-1")]).status, 400);
    assert_eq!(support.submit(HOOKS, &fees, &[("family", "wechat"), ("rate_bp", "1")]).status, 403);

    // The app's RSA public key: set (then unsigned /v1 requests are refused), shown, cleared.
    let (_, platform) = s.get(&new_key, "/v1/webhook_public_key");
    let pem = platform["pem"].as_str().unwrap();
    let key_path = format!("{DEV}/public-key");
    assert_eq!(admin.submit(DEV, &key_path, &[("pem", "not a key"), ("do", "set")]).status, 400);
    assert_eq!(support.submit(HOOKS, &key_path, &[("pem", pem), ("do", "set")]).status, 403);
    let crlf = pem.replace('\n', "\r\n");
    let page = admin.submit(DEV, &key_path, &[("pem", &crlf), ("do", "set")]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/developers?saved=key")));
    let page = admin.get(DEV);
    assert!(page.body.contains("BEGIN PUBLIC KEY"), "{}", page.body);
    assert_eq!(s.get(&new_key, "/v1/webhook_endpoints").0, 401, "requests must now be signed");
    assert_eq!(admin.submit(DEV, &key_path, &[("pem", ""), ("do", "clear")]).status, 303);
    assert!(admin.get(DEV).body.contains("None: requests need no signature."));
    assert_eq!(s.get(&new_key, "/v1/webhook_endpoints").0, 200);

    let actions = audit_actions(&s, &keys.app);
    let by_admin = |action: &str| actions.iter().filter(|(a, who, _)| a == action && who == "admin@dev.test").count();
    assert_eq!(by_admin("api_key.roll"), 1, "{actions:?}");
    assert_eq!(by_admin("fee_rate.set"), 1, "{actions:?}");
    assert_eq!(by_admin("app.public_key"), 2, "{actions:?}");
    let log = s.rt.block_on(s.app.store.console_audit(&keys.app, None, 100)).unwrap();
    assert!(log.iter().all(|r| !format!("{:?}", r.entry).contains(&new_key)), "no key in the audit log");
    // Each entry was written by its change's transaction, with what that transaction replaced as `before`.
    let changes = |action: &str| -> Vec<(Option<Value>, Option<Value>)> {
        let mine = log.iter().rev().filter(|r| r.entry.action == action && r.entry.actor == "admin@dev.test");
        mine.map(|r| (r.entry.before.clone(), r.entry.after.clone())).collect()
    };
    assert_eq!(changes("api_key.roll"), [(None, Some(json!({ "old_keys_grace_seconds": 3600 })))]);
    assert_eq!(changes("fee_rate.set"), [(Some(json!({ "rate_bp": null })), Some(json!({ "rate_bp": 60 })))]);
    let keys_set = changes("app.public_key");
    let set_pem = keys_set[0].1.clone().unwrap();
    assert!(set_pem["public_key_pem"].as_str().unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"), "{set_pem}");
    assert_eq!(keys_set[0].0, Some(json!({ "public_key_pem": null })));
    assert_eq!(keys_set[1], (Some(set_pem), Some(json!({ "public_key_pem": null }))), "the clear replaced the set");
}

fn strict_policy_refuses_private_urls(backend: Backend) {
    let s = TestServer::start_strict(backend);
    let keys = s.create_app("strict");
    let mut admin = signed_in(&s, &keys.app, "admin@strict.test", Role::Admin);
    for url in ["http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://[::1]/hooks"] {
        let (status, v1) = s.post(&keys.test, "/v1/webhook_endpoints", json!({ "url": url }));
        assert_eq!(status, 400, "{url}: {v1}");
        let page = admin.submit(HOOKS, HOOKS, &[("url", url)]);
        assert_eq!(page.status, 400, "{url}: {}", page.body);
        let message = v1["error"]["message"].as_str().unwrap();
        let escaped = message.replace('&', "&amp;").replace('\'', "&#39;").replace('"', "&quot;");
        assert!(page.body.contains(&escaped), "{url}: {message} / {}", page.body);
    }
    assert!(endpoints(&s, &keys.test).is_empty());
    assert!(audit_actions(&s, &keys.app).iter().all(|(a, ..)| a != "webhook_endpoint.create"));
}

/// Disable and enable on the webhooks page: admins only, with the CSRF token; a disabled endpoint's pending
/// deliveries show as failed in the log and it is sent nothing until enabled. Create, disable, enable and delete
/// are each audited once with the endpoint before and after (a disable of a disabled endpoint changes nothing).
fn endpoints_are_disabled_and_enabled(backend: Backend) {
    let s = TestServer::start(backend);
    let (keys, other_keys) = (s.create_app("toggle"), s.create_app("other"));
    let mut admin = signed_in(&s, &keys.app, "admin@toggle.test", Role::Admin);
    let mut support = signed_in(&s, &keys.app, "support@toggle.test", Role::Support);
    let mut viewer = signed_in(&s, &keys.app, "viewer@toggle.test", Role::Viewer);
    let mut other = signed_in(&s, &other_keys.app, "admin@other.test", Role::Admin);
    let receiver = Receiver::always(200);
    let worker = Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() });

    assert_eq!(admin.submit(HOOKS, HOOKS, &[("url", receiver.url.as_str())]).status, 200);
    let endpoint_id = endpoints(&s, &keys.test)[0]["id"].as_str().unwrap().to_string();
    let (disable, enable) = (format!("{HOOKS}/{endpoint_id}/disable"), format!("{HOOKS}/{endpoint_id}/enable"));
    let page = admin.get(HOOKS);
    assert!(page.body.contains(">Enabled<") && page.body.contains(&disable), "{}", page.body);
    let page = viewer.get(HOOKS);
    assert!(page.body.contains(">Enabled<") && !page.body.contains(&disable), "viewers get no button");

    // A payment's deliveries wait; the disable is refused without the token, for support and viewers, and for
    // another app's admin.
    s.paid_order(&keys, "toggle-1", 500);
    let (_, events) = s.get(&keys.test, "/v1/events?type=order.succeeded");
    let first_event = events["data"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(admin.post(&disable, &[]).status, 403);
    assert_eq!(support.submit(HOOKS, &disable, &[]).status, 403);
    assert_eq!(viewer.submit(HOOKS, &disable, &[]).status, 403);
    assert_eq!(other.submit(HOOKS, &disable, &[]).status, 404);
    assert_eq!(endpoints(&s, &keys.test)[0]["status"], "enabled");

    // The admin's disable: the deliveries still pending are failed, new events are not queued for it.
    let page = admin.submit(HOOKS, &disable, &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/webhooks?toggled=disabled")));
    assert_eq!(endpoints(&s, &keys.test)[0]["status"], "disabled");
    let page = admin.get("/console/test/webhooks?toggled=disabled");
    assert!(page.body.contains("Endpoint disabled:") && page.body.contains(">Disabled<"), "{}", page.body);
    assert!(page.body.contains(&enable) && !page.body.contains(&disable), "{}", page.body);
    let page = admin.get(&format!("{HOOKS}?status=failed"));
    assert!(page.body.contains(&first_event), "failed on disable, shown in the log: {}", page.body);
    assert_eq!(admin.submit(HOOKS, &disable, &[]).status, 303, "disabling twice is no error");
    s.paid_order(&keys, "toggle-2", 600);
    s.rt.block_on(worker.tick()).unwrap();
    assert_eq!(receiver.count(), 0);
    assert!(admin.get(&format!("{HOOKS}?status=pending")).body.contains("No deliveries."));

    // Enable: support is refused; the admin's makes it receive new events again.
    assert_eq!(support.submit(HOOKS, &enable, &[]).status, 403);
    let page = admin.submit(HOOKS, &enable, &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test/webhooks?toggled=enabled")));
    assert!(admin.get("/console/test/webhooks?toggled=enabled").body.contains("Endpoint enabled:"));
    s.paid_order(&keys, "toggle-3", 700);
    s.rt.block_on(worker.tick()).unwrap();
    assert_eq!(receiver.count(), 2, "the new payment's two events");
    assert_eq!(admin.submit(HOOKS, &format!("{HOOKS}/{endpoint_id}/delete"), &[]).status, 303);
    assert_eq!(admin.submit(HOOKS, &enable, &[]).status, 404, "a deleted endpoint");

    // One entry per change, by the admin, with the endpoint before and after.
    let log = s.rt.block_on(s.app.store.console_audit(&keys.app, None, 100)).unwrap();
    let entries: Vec<(String, Option<Value>, Option<Value>)> = log
        .iter()
        .rev()
        .filter(|r| r.entry.action.starts_with("webhook_endpoint.") && r.entry.object_id == endpoint_id)
        .inspect(|r| assert_eq!(r.entry.actor, "admin@toggle.test"))
        .map(|r| (r.entry.action.clone(), r.entry.before.clone(), r.entry.after.clone()))
        .collect();
    let state = |status: &str| Some(json!({ "url": receiver.url, "events": ["*"], "status": status }));
    assert_eq!(
        entries,
        vec![
            ("webhook_endpoint.create".to_string(), None, state("enabled")),
            ("webhook_endpoint.disable".to_string(), state("enabled"), state("disabled")),
            ("webhook_endpoint.enable".to_string(), state("disabled"), state("enabled")),
            ("webhook_endpoint.delete".to_string(), state("enabled"), None),
        ]
    );
    assert!(audit_actions(&s, &other_keys.app).iter().all(|(a, ..)| !a.starts_with("webhook")));
}
