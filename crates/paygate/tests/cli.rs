//! The `paygate` binary's commands, run as a user would.

mod support;

use serde_json::json;
use std::process::Command;
use support::{Backend, TestServer};

fn paygate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paygate")).args(args).env_remove("PAYGATE_DATABASE_URL").output().unwrap()
}

#[test]
fn bad_database_urls_are_clear_startup_errors() {
    for url in ["mysql://root@localhost/x", "sqlite://", "paygate.db"] {
        let out = paygate(&["migrate", "--database", url]);
        assert_eq!(out.status.code(), Some(1), "{url}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("sqlite://"), "{url}: {err}");
    }
    let out = paygate(&["migrate", "--database", "postgres://u:secret@127.0.0.1:1/none"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "the cause is shown: {err}");
    assert!(!err.contains("secret"), "passwords are never printed: {err}");
    let out = paygate(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn app_create_json_is_the_only_stdout() {
    let dir = std::env::temp_dir().join(format!("paygate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite://{}", dir.join("cli.db").display());
    let out = paygate(&["app", "create", "--name", "cli shop", "--json", "--database", &db]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let app: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON object");
    assert!(app["id"].as_str().unwrap().starts_with("app_"));
    assert!(app["test_secret_key"].as_str().unwrap().starts_with("sk_test_"));
    assert!(app["live_secret_key"].as_str().unwrap().starts_with("sk_live_"));
    // The keys are not stored in plain text anywhere in the database file.
    let bytes = std::fs::read(dir.join("cli.db")).unwrap();
    let key = app["test_secret_key"].as_str().unwrap().as_bytes();
    assert!(!bytes.windows(key.len()).any(|w| w == key));
    std::fs::remove_dir_all(dir).unwrap();
}

both!(sandbox_page_and_cli_complete_payments);

fn sandbox_page_and_cli_complete_payments(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "page-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id}/pay"), json!({"channel": "wx_wap"}));
    let url = paying["charges"]["data"][0]["credential"]["wx_wap"].as_str().unwrap().to_string();
    // A person presses "Pay" on the page: a form POST, no API key.
    let resp = ureq::post(&url).send_form(&[("result", "success")]).unwrap().into_string().unwrap();
    assert!(resp.contains("succeeded"), "{resp}");
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}")).1["status"], "paid");
    // The operator's CLI, against the same database.
    let o2 = s.create_order(&k, &k.test, "page-2", 100, json!({}));
    let id2 = o2["id"].as_str().unwrap();
    let (_, paying) = s.post(&k.test, &format!("/v1/orders/{id2}/pay"), json!({"channel": "upacp"}));
    let ch = paying["charges"]["data"][0]["id"].as_str().unwrap();
    let out = paygate(&["sandbox", "pay", ch, "--fail", "--database", &s.database_url]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id2}")).1["charges"]["data"][0]["status"], "failed");
    // Live charges are never completed by the sandbox.
    let live = s.create_order(&k, &k.live, "page-3", 100, json!({}));
    let (st, _) = s.post(&k.live, &format!("/v1/sandbox/charges/{}/pay", live["id"].as_str().unwrap()), json!({}));
    assert_eq!(st, 400);
}
