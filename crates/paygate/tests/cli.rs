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

both!(app_list_and_roll_key);

/// `paygate app list` and `paygate app roll-key`: the new key works at once; the old one keeps
/// working for the grace period (0 = stops at once).
fn app_list_and_roll_key(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = support::fresh_database(&rt, backend);
    let json = |args: &[&str]| -> serde_json::Value {
        let out = paygate(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let created = json(&["app", "create", "--name", "roll shop", "--json", "--database", &db]);
    let app = created["id"].as_str().unwrap();
    let list = json(&["app", "list", "--json", "--database", &db]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!((list[0]["id"].as_str(), list[0]["name"].as_str()), (Some(app), Some("roll shop")));

    let first = created["test_secret_key"].as_str().unwrap().to_string();
    let rolled = json(&["app", "roll-key", app, "--grace-hours", "0", "--json", "--database", &db]);
    let second = rolled["secret_key"].as_str().unwrap().to_string();
    assert!(second.starts_with("sk_test_") && second != first);
    let rolled = json(&["app", "roll-key", app, "--json", "--database", &db]);
    let third = rolled["secret_key"].as_str().unwrap().to_string();
    // A server on the system clock, started after the rolls (a node's key cache lives 30 s).
    let (mut server, base) = serve_binary(&db);
    let works = |key: &str| match ureq::get(&format!("{base}/v1/orders?app={app}"))
        .set("authorization", &format!("Bearer {key}"))
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(status, _)) => status,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(works(&first), 401, "rolled with no grace: the old key stopped at once");
    assert_eq!((works(&third), works(&second)), (200, 200), "within the grace period both work");
    assert_eq!(works(created["live_secret_key"].as_str().unwrap()), 200, "the other mode's key is untouched");
    let _ = server.kill();
    let _ = server.wait();
    let out = paygate(&["app", "roll-key", "app_nope", "--database", &db]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_command_answers_help_and_completions_are_printed() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "-h"],
        vec!["app", "roll-key", "--help"],
        vec!["webhook", "create", "--help"],
        vec!["events", "resend", "--help"],
        vec!["reconcile", "run", "--help"],
        vec!["--version"],
    ] {
        let out = paygate(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let help = String::from_utf8(paygate(&["serve", "--help"]).stdout).unwrap();
    assert!(
        help.contains("PAYGATE_DATABASE_URL") && help.contains("PAYGATE_MAX_CONNECTIONS"),
        "env vars shown: {help}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = paygate(&["completions", shell]);
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("roll-key"), "{shell}");
    }
    let out = paygate(&["serve", "--idle-timeout", "0"]);
    assert_eq!(out.status.code(), Some(2), "a bad option is a usage error");
    let out = paygate(&["serve", "--worker-lease-seconds", "5", "--database", "sqlite:///nonexistent/dir/x.db"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PAYGATE_WORKER_LEASE_SECONDS"));
}

/// `paygate serve --no-worker` on a free port; the child and its base URL.
fn serve_binary(db: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--no-worker", "--listen", "127.0.0.1:0", "--database", db])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("paygate prints where it serves").unwrap();
        if let Some(rest) = line.split("serving on ").nth(1) {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, base)
}

both!(webhook_disable_and_enable);

/// `paygate webhook disable|enable`: the endpoint's status as `/v1` and `webhook list` show it; another mode's or
/// an unknown endpoint is an error, not a change.
fn webhook_disable_and_enable(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("hooks");
    let (st, endpoint) = s.post(&k.test, "/v1/webhook_endpoints", json!({"url": "https://example.com/hooks"}));
    assert_eq!(st, 200, "{endpoint}");
    let id = endpoint["id"].as_str().unwrap();
    let status = || {
        let (_, list) = s.get(&k.test, "/v1/webhook_endpoints");
        list["data"][0]["status"].as_str().unwrap().to_string()
    };
    let run = |args: &[&str]| {
        let mut all = vec!["webhook"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--app", &k.app, "--database", &s.database_url]);
        paygate(&all)
    };
    assert_eq!(status(), "enabled");
    let out = run(&["disable", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(), "disabled");
    let listed: serde_json::Value = serde_json::from_slice(&run(&["list", "--json"]).stdout).unwrap();
    assert_eq!((listed[0]["id"].as_str(), listed[0]["status"].as_str()), (Some(id), Some("disabled")));
    let out = run(&["enable", id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(status(), "enabled");
    // The endpoint is test mode's: live mode has no such endpoint, and nothing changes.
    assert_eq!(run(&["disable", id, "--live"]).status.code(), Some(1));
    assert_eq!(run(&["disable", "we_nope"]).status.code(), Some(1));
    assert_eq!(status(), "enabled");
}
