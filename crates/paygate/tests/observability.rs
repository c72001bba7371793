//! What an operator sees (issue 9, "observable in production"): one log line per request with
//! its id, method, route, app, status and latency (text or JSON), request ids echoed, no secret
//! ever in a log, and `/metrics` in Prometheus text. Both backends, the real binary for logs.

mod support;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use support::faces::{hs, md5_sign};
use support::receiver::Receiver;
use support::{Backend, TestServer};

both!(request_logs_name_each_request_and_never_a_secret, metrics_count_requests_deliveries_and_the_pool);

/// A fresh database URL for `backend`; on PostgreSQL with a password in it (trust auth ignores
/// it), so the test can check the log never shows it.
fn database(backend: Backend) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = support::fresh_database(&rt, backend);
    (rt, url.replacen("postgres://postgres@", "postgres://postgres:pw-never-logged@", 1))
}

fn paygate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_paygate")).args(args).output().unwrap()
}

struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn serve(url: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", url, "--log-format", "json", "--log", "debug"])
        .env("PAYGATE_WEBHOOK_ALLOW_PRIVATE", "1")
        .env("PAYGATE_WORKER_POLL_MS", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let base = loop {
        let line = lines.next().expect("the server logs where it listens").unwrap();
        stderr.lock().unwrap().push(line.clone());
        if let Some(addr) =
            serde_json::from_str::<Value>(&line).ok().and_then(|v| v["addr"].as_str().map(str::to_string))
        {
            break format!("http://{addr}");
        }
    };
    let sink = stderr.clone();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l)));
    Server { child, base, stderr }
}

fn call(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let mut req = ureq::request(method, &format!("{base}{path}")).set("content-type", "application/json");
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let sent = match body {
        Some(b) => req.send_string(&b.to_string()),
        None => req.call(),
    };
    let resp = match sent {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {path}: {e}"),
    };
    let (status, id) = (resp.status(), resp.header("x-request-id").map(str::to_string));
    (status, resp.into_json().unwrap_or(Value::Null), id)
}

fn request_logs_name_each_request_and_never_a_secret(backend: Backend) {
    let (_rt, url) = database(backend);
    let created = paygate(&["app", "create", "--name", "logs", "--json", "--database", &url]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let keys: Value = serde_json::from_slice(&created.stdout).unwrap();
    let (app, key) = (keys["id"].as_str().unwrap(), keys["test_secret_key"].as_str().unwrap());
    let cashier = keys["credentials"].as_array().unwrap().iter().find(|c| c["face"] == "cashier").unwrap().clone();
    let server = serve(&url);
    let b = &server.base;
    let bearer = format!("Bearer {key}");
    let auth = [("authorization", bearer.as_str())];

    // A request id sent by a proxy is kept and echoed; one is made up otherwise.
    let order = json!({"app": app, "merchant_order_no": "log-1", "amount": 100, "currency": "cny", "subject": "s",
        "body": "b"});
    let (st, _, id) = call(b, "POST", "/v1/orders", &[auth[0], ("x-request-id", "proxy-42")], Some(order));
    assert_eq!((st, id.as_deref()), (200, Some("proxy-42")));
    let (st, _, id) = call(b, "GET", &format!("/v1/orders?app={app}"), &auth, None);
    assert_eq!(st, 200);
    assert!(id.unwrap().starts_with("req_"));
    let (_, endpoint, _) =
        call(b, "POST", "/v1/webhook_endpoints", &auth, Some(json!({"url": "http://127.0.0.1:9/x"})));
    let endpoint_secret = endpoint["secret"].as_str().unwrap().to_string();
    // 知晓云: a password and the session token it buys.
    let client = keys["hserve_test_client_id"].as_str().unwrap();
    let password = "correct horse battery staple";
    let path = "/hserve/v2.1/register/username/";
    let body = json!({"username": "u1", "password": password});
    let (st, session, _) = call(b, "POST", path, &[("x-hydrogen-client-id", client)], Some(body.clone()));
    assert_eq!(st, 201, "{session}");
    let token = session["token"].as_str().unwrap().to_string();
    let hydrogen = format!("Hydrogen-r1 {token}");
    let (st, _, _) = call(
        b,
        "GET",
        "/hserve/v2.2/idp/pay/order/",
        &[("x-hydrogen-client-id", client), ("authorization", &hydrogen)],
        None,
    );
    assert_eq!(st, 200);
    let wrong = json!({"username": "u1", "password": "wrong password"});
    call(b, "POST", "/hserve/v2.1/login/username/", &[("x-hydrogen-client-id", client)], Some(wrong));
    // The cashier's signing secret, used to sign an envelope.
    let secret = cashier["secret"].as_str().unwrap();
    let mut env = json!({"open_app_id": cashier["public_id"], "timestamp": std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(), "sign_type": "MD5", "token": cashier["token"],
        "biz_content": json!({"pay_no": "nope"}).to_string()});
    env["sign"] = json!(md5_sign(env.as_object().unwrap(), secret));
    let (st, _, _) = call(b, "POST", "/api/v2/cashier/query", &[], Some(env));
    assert_eq!(st, 404);
    // A database failure is logged with the request and the store method that met it.
    break_orders_table(&url);
    let (st, _, _) = call(b, "GET", &format!("/v1/orders?app={app}"), &auth, None);
    assert_eq!(st, 500);

    let _ = Command::new("sh").args(["-c", &format!("kill -s TERM {}", server.child.id())]).status();
    let mut child = server.child;
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines = server.stderr.lock().unwrap().clone();
    let log = lines.join("\n");
    for secret in
        [key, keys["live_secret_key"].as_str().unwrap(), password, &token, secret, &endpoint_secret, "pw-never-logged"]
    {
        assert!(!log.contains(secret), "a secret reached the log: {secret}\n{log}");
    }
    // Every line is JSON; every request left one `answered` line with its id, route and app.
    let events: Vec<Value> =
        lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    let answered: Vec<&Value> = events.iter().filter(|e| e["message"] == "answered").collect();
    assert!(answered.len() >= 7, "{log}");
    let first = answered.iter().find(|e| e["span"]["id"] == "proxy-42").expect("the proxy's id is logged");
    assert_eq!(first["span"]["route"], "/v1/orders");
    assert_eq!(first["span"]["method"], "POST");
    assert_eq!(first["span"]["app"], json!(app));
    assert_eq!(first["status"], 200);
    assert!(first["latency_ms"].as_f64().is_some());
    let hserve = answered.iter().find(|e| e["span"]["route"] == "/hserve/v2.2/idp/pay/order").unwrap();
    assert_eq!(hserve["span"]["app"], json!(app));
    let refused = answered.iter().find(|e| e["span"]["route"] == "/api/v2/cashier/query").unwrap();
    assert_eq!(refused["status"], 404);
    let failed = events.iter().find(|e| e["message"] == "request failed").expect("the failure is logged");
    assert_eq!(failed["span"]["route"], "/v1/orders", "{failed}");
    assert!(failed["span"]["id"].as_str().is_some_and(|id| id.starts_with("req_")), "{failed}");
    let problem = failed["problem"].as_str().unwrap();
    assert!(problem.contains("paygate-store/src/transactions.rs"), "the store method, not the driver glue: {problem}");
}

fn break_orders_table(url: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA busy_timeout = 5000; ALTER TABLE orders RENAME TO orders_gone;").unwrap();
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute("ALTER TABLE orders RENAME TO orders_gone").await.unwrap();
    });
}

fn metrics_count_requests_deliveries_and_the_pool(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let rx = Receiver::always(200);
    let (st, _) = s.post(&k.test, "/v1/webhook_endpoints", json!({"url": rx.url}));
    assert_eq!(st, 200);
    s.paid_order(&k, "m-1", 100);
    s.get(&k.test, "/v1/orders/nope");
    hs(&s, "POST", &k.client_id, "", "/hserve/v2.0/login/anonymous/", None);
    let worker = paygate_worker::Worker::new(s.app.clone(), paygate_worker::Settings::default());
    let text = |s: &TestServer| s.raw("GET", "", "/metrics", None, &[]).2;
    let before = text(&s);
    assert!(before.contains("paygate_outbox_pending 2"), "two events wait for delivery: {before}");
    s.rt.block_on(worker.tick()).unwrap();
    let m = text(&s);
    for expected in [
        r#"paygate_http_requests_total{method="POST",route="/v1/orders",status="200"} 1"#,
        r#"paygate_http_requests_total{method="GET",route="/v1/orders/*",status="404"} 1"#,
        r#"paygate_http_requests_total{method="POST",route="/hserve/v2.0/login/anonymous",status="201"} 1"#,
        r#"paygate_http_request_duration_seconds_count{method="POST",route="/v1/orders/*/pay"} 1"#,
        r#"paygate_webhook_deliveries_total{result="delivered"} 2"#,
        "paygate_outbox_pending 0",
        "paygate_worker_sweep_duration_seconds_count 1",
        "paygate_db_pool_size",
        "paygate_db_pool_in_use",
        "paygate_db_pool_waiting",
    ] {
        assert!(m.contains(expected), "missing {expected}:\n{m}");
    }
    assert!(!m.contains("nope"), "ids never become labels");
}
