//! The merchant console (`/console`) over HTTP, on SQLite and on PostgreSQL: logins (good, bad, throttled),
//! sessions (idle and absolute expiry with the test clock, logout), CSRF and cross-site refusals, roles (viewer,
//! support, admin), refunds through the console seen in `/v1` and in the audit log, isolation between apps, the
//! search by every kind of id, and over HTTPS the `__Host-` cookies and HSTS (plain HTTP keeps the plain names).
//! Users are created through paygate-core, as `paygate user create` does.
//!
//! `Browser` (tests/support/console.rs) is a cookie jar over ureq without redirects; Chromium drives the same
//! pages in tests/clients/node/console.test.js.

mod support;

use paygate_core::console::Role;
use paygate_domain::{Mode, Scope};
use paygate_worker::{Settings, Worker};
use serde_json::{json, Value};
use std::time::Duration;
use support::console::{signed_in, user, Browser, PASSWORD};
use support::receiver::Receiver;
use support::{Backend, Keys, TestServer};

both!(
    logins_roles_refunds_and_refusals,
    isolation_expiry_and_logout,
    search_finds_a_payment_by_every_id,
    https_host_cookies_and_hsts
);

fn order_refunds(s: &TestServer, keys: &Keys, order_id: &str) -> Vec<Value> {
    let (status, list) = s.get(&keys.test, &format!("/v1/orders/{order_id}/order_refunds"));
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn logins_roles_refunds_and_refusals(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("console");
    for (email, role) in [("admin@shop.test", Role::Admin), ("support@shop.test", Role::Support)] {
        user(&s, &keys.app, email, role);
    }
    user(&s, &keys.app, "Viewer@Shop.test", Role::Viewer);
    let dup = s.rt.block_on(s.app.create_console_user(&keys.app, "viewer@shop.test", Role::Admin, PASSWORD));
    assert_eq!(dup.unwrap_err().code, "email_taken", "emails are unique per app, case-insensitively");
    let order = s.paid_order(&keys, "console-1", 1_000);
    let order_id = order["id"].as_str().unwrap();
    let detail = format!("/console/test/payments/{order_id}");

    // Not signed in: every page sends the browser to the login form.
    let mut anonymous = Browser::new(&s);
    let page = anonymous.get(&detail);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));
    let login = anonymous.get("/console/login");
    assert_eq!(login.status, 200);
    assert!(login.header("content-security-policy").unwrap().contains("frame-ancestors 'none'"));
    assert!(login.header("content-security-policy").unwrap().starts_with("default-src 'self'"));
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));

    // Good login: the cookie's attributes, and the payments page.
    let mut admin = Browser::new(&s);
    let page = admin.login(&keys.app, " ADMIN@shop.test", PASSWORD);
    assert_eq!(page.status, 303, "{}", page.body);
    let set = page.headers["set-cookie"].iter().find(|c| c.starts_with("pg_console=")).unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP without a proxy saying otherwise: {set}");
    // Behind a TLS-terminating proxy (X-Forwarded-Proto) every cookie is Secure; an older browser that sends only
    // `Origin` is let in when it names this host.
    let mut tls = Browser::new(&s);
    let csrf = tls.send("GET", "/console/login", None, &[("x-forwarded-proto", "https")]).hidden("csrf");
    let fields = [("csrf", csrf.as_str()), ("app", &keys.app), ("email", "admin@shop.test"), ("password", PASSWORD)];
    let origin = s.base.clone();
    let page =
        tls.send("POST", "/console/login", Some(&fields), &[("x-forwarded-proto", "https"), ("origin", &origin)]);
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(page.headers["set-cookie"].iter().all(|c| c.ends_with("; Secure")), "{:?}", page.headers["set-cookie"]);
    let list = admin.get("/console/test/payments");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains(order_id) && list.body.contains("console-1"), "{}", list.body);
    assert_eq!(list.header("cache-control"), Some("no-store"));
    assert!(list.header("content-security-policy").is_some());
    let zh = {
        admin.accept_language = "zh-CN,zh;q=0.9";
        let page = admin.get("/console/test/payments");
        admin.accept_language = "en";
        page
    };
    assert!(zh.body.contains("支付") && zh.body.contains("lang=\"zh-CN\""), "{}", zh.body);

    // Bad passwords, then the throttle (even the right password is refused while it holds).
    let mut guesser = Browser::new(&s);
    let page = guesser.login(&keys.app, "support@shop.test", "wrong password 1");
    assert_eq!(page.status, 401);
    assert!(page.body.contains("The app, email or password is wrong."));
    assert!(!guesser.cookies.contains_key("pg_console"));
    let page = guesser.login(&keys.app, "nobody@shop.test", PASSWORD);
    assert_eq!(page.status, 401, "an unknown email is the same answer");
    for _ in 0..4 {
        assert_eq!(guesser.login(&keys.app, "support@shop.test", "wrong password 2").status, 401);
    }
    let page = guesser.login(&keys.app, "support@shop.test", PASSWORD);
    assert_eq!(page.status, 429, "{}", page.body);
    s.clock.advance(61);
    let mut support = signed_in(&s, &keys.app, "support@shop.test");

    // A login without its CSRF token, or from another site, is refused.
    let mut b = Browser::new(&s);
    b.get("/console/login");
    let page = b.post("/console/login", &[("app", &keys.app), ("email", "admin@shop.test"), ("password", PASSWORD)]);
    assert_eq!(page.status, 403);
    let csrf = b.get("/console/login").hidden("csrf");
    let fields = [("csrf", csrf.as_str()), ("app", &keys.app), ("email", "admin@shop.test"), ("password", PASSWORD)];
    let page = b.send("POST", "/console/login", Some(&fields), &[("sec-fetch-site", "cross-site")]);
    assert_eq!(page.status, 403);
    assert!(!b.cookies.contains_key("pg_console"));

    // The viewer sees the payment but no refund form, and a refund it posts anyway is refused.
    let mut viewer = signed_in(&s, &keys.app, "viewer@shop.test");
    let page = viewer.get(&detail);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(order_id) && !page.body.contains("form_key"), "{}", page.body);
    let csrf = page.hidden("csrf");
    let refund_path = format!("{detail}/refunds");
    let form = [("csrf", csrf.as_str()), ("form_key", "viewer-form-key-000001"), ("amount", "1.00"), ("reason", "x")];
    let page = viewer.post(&refund_path, &form);
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(viewer.get("/console/test/audit").status, 403, "the audit log is the admin's");
    assert!(order_refunds(&s, &keys, order_id).is_empty());

    // Support: without the CSRF token, and cross-site with it, nothing happens.
    let page = support.get(&detail);
    let (csrf, form_key) = (page.hidden("csrf"), page.hidden("form_key"));
    let form = [("form_key", form_key.as_str()), ("amount", "3.00"), ("reason", "damaged")];
    assert_eq!(support.post(&refund_path, &form).status, 403);
    let zeros = "0".repeat(64);
    let form = [("csrf", zeros.as_str()), ("form_key", &form_key), ("amount", "3.00"), ("reason", "x")];
    assert_eq!(support.post(&refund_path, &form).status, 403, "a wrong token");
    let form = [("csrf", csrf.as_str()), ("form_key", &form_key), ("amount", "3.00"), ("reason", "damaged")];
    let page = support.send("POST", &refund_path, Some(&form), &[("origin", "https://evil.example")]);
    assert_eq!(page.status, 403, "{}", page.body);
    let page = support.send("POST", &refund_path, Some(&form), &[("sec-fetch-site", "same-site")]);
    assert_eq!(page.status, 403);
    assert!(order_refunds(&s, &keys, order_id).is_empty());

    // Support refunds 3 yuan; the double submit is the same refund.
    let page = support.post(&refund_path, &form);
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.header("location"), Some(format!("{detail}?refunded=1").as_str()));
    assert_eq!(support.post(&refund_path, &form).status, 303);
    let refunds = order_refunds(&s, &keys, order_id);
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!((refunds[0]["amount"].as_i64(), refunds[0]["description"].as_str()), (Some(300), Some("damaged")));
    assert_eq!(refunds[0]["status"], "succeeded");
    let page = support.get(&format!("{detail}?refunded=1"));
    assert!(page.body.contains("Refund created.") && page.body.contains("3.00"), "{}", page.body);
    assert!(page.body.contains("refund.succeeded") && page.body.contains(refunds[0]["id"].as_str().unwrap()));
    // A refund above what is left is shown on the payment, and changes nothing.
    let (csrf, form_key) = (page.hidden("csrf"), page.hidden("form_key"));
    let form = [("csrf", csrf.as_str()), ("form_key", &form_key), ("amount", "9.71"), ("reason", "")];
    let page = support.post(&refund_path, &form);
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(order_refunds(&s, &keys, order_id).len(), 1);

    // The audit log: the refund by support, with the order's money before and after, written with it.
    let log = s.rt.block_on(s.app.store.console_audit(&keys.app, None, 50)).unwrap();
    let refund_id = refunds[0]["id"].as_str().unwrap();
    let entry = log.iter().find(|r| r.entry.action == "refund.create").expect("audited").entry.clone();
    assert_eq!((entry.actor.as_str(), entry.object_id.as_str()), ("support@shop.test", refund_id));
    assert_eq!(entry.before.unwrap()["order"]["refund_reserved"], 0);
    let after = entry.after.unwrap();
    assert_eq!(
        (after["order"]["refund_reserved"].as_i64(), after["refund"]["amount"].as_i64()),
        (Some(300), Some(300))
    );
    assert_eq!(log.iter().filter(|r| r.entry.action == "refund.create").count(), 1);
    assert!(log.iter().any(|r| r.entry.action == "console_user.create" && r.entry.actor == "cli"));
    let page = admin.get("/console/test/audit");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("refund.create") && page.body.contains(refund_id), "{}", page.body);
    assert_eq!(support.get("/console/test/audit").status, 403);

    // Live mode is another world: the test payment is not there.
    let page = admin.get("/console/live/payments");
    assert_eq!(page.status, 200);
    assert!(!page.body.contains(order_id));
    assert_eq!(admin.get(&format!("/console/live/payments/{order_id}")).status, 404);
}

fn isolation_expiry_and_logout(backend: Backend) {
    let s = TestServer::start(backend);
    let (a, b) = (s.create_app("a"), s.create_app("b"));
    user(&s, &a.app, "owner@a.test", Role::Admin);
    user(&s, &b.app, "owner@b.test", Role::Admin);
    let order = s.paid_order(&a, "only-a", 500);
    let order_id = order["id"].as_str().unwrap();

    // Another app's user: the payment does not exist for them, by path or by search, and is not listed.
    let mut other = signed_in(&s, &b.app, "owner@b.test");
    let page = other.get(&format!("/console/test/payments/{order_id}"));
    assert_eq!(page.status, 404);
    assert!(!page.body.contains("only-a"));
    let page = other.get("/console/test/payments?q=only-a");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No payment has this id.") && !page.body.contains(order_id));
    let csrf = other.get("/console/test/payments").hidden("csrf");
    let form = [("csrf", csrf.as_str()), ("form_key", "other-app-form-key-0001"), ("amount", ""), ("reason", "")];
    assert_eq!(other.post(&format!("/console/test/payments/{order_id}/refunds"), &form).status, 404);
    assert!(order_refunds(&s, &a, order_id).is_empty());
    // Nor does a user of one app sign in to another.
    assert_eq!(Browser::new(&s).login(&a.app, "owner@b.test", PASSWORD).status, 401);

    // Idle expiry: each use keeps the session 30 minutes more; 30 minutes idle ends it.
    let mut owner = signed_in(&s, &a.app, "owner@a.test");
    for _ in 0..3 {
        s.clock.advance(29 * 60);
        assert_eq!(owner.get("/console/test/payments").status, 200);
    }
    s.clock.advance(30 * 60);
    let page = owner.get("/console/test/payments");
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));

    // Absolute expiry: used every 25 minutes, it still ends 12 hours after login.
    let mut owner = signed_in(&s, &a.app, "owner@a.test");
    let mut elapsed = 0;
    while elapsed + 25 * 60 < 12 * 3600 {
        s.clock.advance(25 * 60);
        elapsed += 25 * 60;
        assert_eq!(owner.get("/console/test/payments").status, 200, "at {elapsed} s");
    }
    s.clock.advance(25 * 60);
    assert_eq!(owner.get("/console/test/payments").status, 303, "past 12 hours");

    // Logout: refused without the token; with it, the session is gone and its cookie too.
    let mut owner = signed_in(&s, &a.app, "owner@a.test");
    let token = owner.cookies["pg_console"].clone();
    assert_eq!(owner.post("/console/logout", &[]).status, 403);
    let csrf = owner.get("/console/test/payments").hidden("csrf");
    let page = owner.post("/console/logout", &[("csrf", &csrf)]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));
    assert!(!owner.cookies.contains_key("pg_console"));
    owner.cookies.insert("pg_console".into(), token);
    assert_eq!(owner.get("/console/test/payments").status, 303, "the old cookie opens nothing");
    let log = s.rt.block_on(s.app.store.console_audit(&a.app, None, 50)).unwrap();
    assert!(log.iter().any(|r| r.entry.action == "console.logout" && r.entry.actor == "owner@a.test"));
    assert!(log.iter().all(|r| r.entry.app_id == a.app), "b's logins are b's");
}

fn search_finds_a_payment_by_every_id(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("search");
    user(&s, &keys.app, "viewer@search.test", Role::Viewer);
    let receiver = Receiver::always(200);
    let (status, endpoint) = s.post(&keys.test, "/v1/webhook_endpoints", json!({ "url": receiver.url }));
    assert_eq!(status, 200, "{endpoint}");
    s.paid_order(&keys, "decoy-1", 100);
    let order = s.paid_order(&keys, "wanted-1", 1_234);
    let worker = Worker::new(s.app.clone(), Settings { timeout: Duration::from_secs(5), ..Settings::default() });
    s.rt.block_on(worker.tick()).unwrap();
    let order_id = order["id"].as_str().unwrap();
    let charge_id = order["charges"]["data"][0]["id"].as_str().unwrap();
    let scope = Scope { app_id: keys.app.clone(), mode: Mode::Test };
    let charge = s.rt.block_on(s.app.store.charge(&scope, charge_id)).unwrap().unwrap();
    let transaction_no = charge.transaction_no.clone().expect("paid charges have a transaction number");
    let mut viewer = signed_in(&s, &keys.app, "viewer@search.test");
    let wanted = format!("/console/test/payments/{order_id}");
    for reference in [order_id, "wanted-1", charge_id, transaction_no.as_str(), charge.channel_order_no.as_str()] {
        let page = viewer.get(&format!("/console/test/payments?q={reference}"));
        assert_eq!((page.status, page.header("location")), (303, Some(wanted.as_str())), "{reference}");
    }
    let page = viewer.get(&wanted);
    assert!(page.body.contains("12.34") && page.body.contains(&transaction_no), "{}", page.body);
    // Its events (not the decoy's), each with its delivery to the endpoint and the attempt's answer.
    let endpoint_id = endpoint["id"].as_str().unwrap();
    for kind in ["order.succeeded", "charge.succeeded"] {
        assert!(page.body.contains(kind), "{kind}: {}", page.body);
    }
    assert!(page.body.contains(&format!("{endpoint_id} · delivered · 1")), "{}", page.body);
    assert!(page.body.contains("→ 200 ("), "{}", page.body);
    let decoy_events = page.body.matches("order.succeeded").count();
    assert_eq!(decoy_events, 1, "only this payment's order event");
    let page = viewer.get("/console/test/payments?q=%3Cscript%3Enothing");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("&lt;script&gt;nothing") && !page.body.contains("<script>"), "escaped");
    // The filters: paid orders by channel, and a created window that holds nothing.
    let page = viewer.get("/console/test/payments?status=paid&channel=wx_pub");
    assert!(page.body.contains(charge_id), "{}", page.body);
    let page = viewer.get("/console/test/payments?from=2000-01-01&to=2000-01-02");
    assert!(!page.body.contains(order_id) && page.body.contains("No payments."));

    // Cursor paging (20 a page, newest first) keeps the filters; a payer's orders; unpaid ones.
    let mut made = Vec::new();
    for i in 0..21 {
        let o = s.create_order(&keys, &keys.test, &format!("page-{i}"), 100, json!({ "uid": "payer-7" }));
        made.push(o["id"].as_str().unwrap().to_string());
    }
    let first = viewer.get("/console/test/payments?uid=payer-7&status=unpaid");
    assert!(made[1..].iter().all(|id| first.body.contains(id.as_str())), "{}", first.body);
    assert!(!first.body.contains(made[0].as_str()) && !first.body.contains(order_id));
    let marker = "<a href=\"";
    let next = first.body.rsplit(marker).next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert!(next.contains("after=") && next.contains("uid=payer-7") && next.contains("status=unpaid"), "{next}");
    let second = viewer.get(&next);
    assert!(second.body.contains(made[0].as_str()) && !second.body.contains(made[1].as_str()), "{}", second.body);
    assert!(!second.body.contains("Older"), "the last page");
    let paid_only = viewer.get("/console/test/payments?status=paid");
    assert!(paid_only.body.contains(order_id) && !paid_only.body.contains(made[0].as_str()));
}

/// `paygate user create` as an operator runs it: the password from stdin or a file (never argv), the user
/// able to sign in to the console served over the same database, a taken email refused.
#[test]
fn user_create_from_the_command_line() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("paygate-console-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("console.db").display());
    let paygate = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paygate"));
        c.env_remove("PAYGATE_DATABASE_URL");
        c
    };
    let out = paygate().args(["app", "create", "--name", "cli shop", "--json", "--database", &db]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app_id = app["id"].as_str().unwrap();
    let create = |email: &str, role: &str| {
        let mut c = paygate();
        c.args(["user", "create", "--app", app_id, "--email", email, "--role", role, "--database", &db]);
        c
    };
    let mut child = create("ops@shop.test", "admin").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ops@shop.test admin"));
    let file = dir.join("password");
    std::fs::write(&file, format!("{PASSWORD}\r\n")).unwrap();
    let out = create("desk@shop.test", "support").arg("--password-file").arg(&file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = create("OPS@shop.test", "viewer").arg("--password-file").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a taken email");
    std::fs::write(&file, "short\n").unwrap();
    let out = create("new@shop.test", "viewer").arg("--password-file").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "a weak password");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 10 characters"));

    let s = TestServer::attach(&db);
    for email in ["ops@shop.test", "desk@shop.test"] {
        let mut b = Browser::new(&s);
        assert_eq!(b.login(app_id, email, PASSWORD).status, 303, "{email}");
    }
    drop(s);
    let _ = std::fs::remove_dir_all(dir);
}

/// What a TLS-terminating proxy adds to every request it forwards.
const HTTPS: (&str, &str) = ("x-forwarded-proto", "https");
const SAME_ORIGIN: (&str, &str) = ("sec-fetch-site", "same-origin");

/// Over HTTPS the session and login cookies are `__Host-` named (Secure, Path=/, no Domain), read back by that name
/// only, and every console answer carries HSTS; over plain HTTP neither.
fn https_host_cookies_and_hsts(backend: Backend) {
    let s = TestServer::start(backend);
    let keys = s.create_app("tls");
    user(&s, &keys.app, "admin@tls.test", Role::Admin);
    let host_only = |set: &str, name: &str| {
        assert!(set.starts_with(&format!("{name}=")), "{set}");
        for attribute in ["; Path=/;", "HttpOnly", "SameSite=Strict", "; Secure"] {
            assert!(set.contains(attribute), "{attribute}: {set}");
        }
        assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    };

    // Sign in through the proxy: the login form's cookie, then the session's, both host-only.
    let mut tls = Browser::new(&s);
    let form = tls.send("GET", "/console/login", None, &[HTTPS]);
    assert_eq!(form.header("strict-transport-security"), Some("max-age=31536000"));
    host_only(&form.headers["set-cookie"][0], "__Host-pg_console_login");
    let csrf = form.hidden("csrf");
    let fields = [("csrf", csrf.as_str()), ("app", &keys.app), ("email", "admin@tls.test"), ("password", PASSWORD)];
    let page = tls.send("POST", "/console/login", Some(&fields), &[HTTPS, SAME_ORIGIN]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/test")), "{}", page.body);
    assert_eq!(page.header("strict-transport-security"), Some("max-age=31536000"));
    let sets = &page.headers["set-cookie"];
    host_only(
        sets.iter().find(|c| c.starts_with("__Host-pg_console=")).expect("the session cookie"),
        "__Host-pg_console",
    );
    assert!(sets.iter().any(|c| c.starts_with("__Host-pg_console_login=;") && c.contains("Max-Age=0")), "{sets:?}");
    assert!(tls.cookies.contains_key("__Host-pg_console") && !tls.cookies.contains_key("pg_console"));

    // Signed in by that name; pages, the stylesheet and error pages all say HSTS.
    let page = tls.send("GET", "/console/test/payments", None, &[HTTPS]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("strict-transport-security"), Some("max-age=31536000"));
    let css = tls.send("GET", "/console/style.css", None, &[HTTPS]);
    assert_eq!(css.header("strict-transport-security"), Some("max-age=31536000"));
    let missing = tls.send("GET", "/console/test/payments/1234567890123456789", None, &[HTTPS]);
    assert_eq!((missing.status, missing.header("strict-transport-security")), (404, Some("max-age=31536000")));
    // A signed-in POST works with the session's CSRF token.
    let csrf = page.hidden("csrf");
    let fees = [("csrf", csrf.as_str()), ("family", "wechat"), ("rate_bp", "60")];
    let saved = tls.send("POST", "/console/test/developers/fee-rates", Some(&fees), &[HTTPS, SAME_ORIGIN]);
    assert_eq!((saved.status, saved.header("location")), (303, Some("/console/test/developers?saved=fee")));

    // The host-only cookie is not the session over plain HTTP (nor would a browser send it there) …
    let page = tls.get("/console/test/payments");
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));
    assert_eq!(page.header("strict-transport-security"), None);
    // … and a plain-HTTP session cookie is not one over HTTPS: each transport reads its own name only.
    let mut plain = signed_in(&s, &keys.app, "admin@tls.test");
    assert!(plain.cookies.contains_key("pg_console") && !plain.cookies.contains_key("__Host-pg_console"));
    let page = plain.get("/console/test/payments");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("strict-transport-security"), None, "no HSTS over plain HTTP");
    let page = plain.send("GET", "/console/test/payments", None, &[HTTPS]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));

    // Signing out over HTTPS clears the host-only cookie by its name and path.
    let csrf = tls.send("GET", "/console/test/payments", None, &[HTTPS]).hidden("csrf");
    let page = tls.send("POST", "/console/logout", Some(&[("csrf", csrf.as_str())]), &[HTTPS, SAME_ORIGIN]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")), "{}", page.body);
    let cleared = page.headers["set-cookie"].iter().find(|c| c.starts_with("__Host-pg_console=")).unwrap();
    assert!(cleared.contains("Max-Age=0") && cleared.contains("; Path=/;"), "{cleared}");
    assert!(tls.cookies.is_empty(), "{:?}", tls.cookies);
    let page = tls.send("GET", "/console/test/payments", None, &[HTTPS]);
    assert_eq!((page.status, page.header("location")), (303, Some("/console/login")));
}
