//! kill -9 in the middle of 1 000 sandbox payments, on SQLite and PostgreSQL, against the real
//! binary: every payment acknowledged before the kill has exactly one success event, and after
//! the restart every event reaches the receiver (at least once; counted by distinct id).

mod support;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use support::receiver::Receiver;
use support::Backend;

const PAYMENTS: usize = 1000;

both!(kill_9_loses_no_acknowledged_payment_or_event);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(db: &str) -> (Child, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", db])
        // Short leases so that a killed node's claims come free quickly; the lease must outlast
        // an attempt (timeout) by more than a second. The receivers listen on 127.0.0.1.
        .env("PAYGATE_WORKER_LEASE_SECONDS", "4")
        .env("PAYGATE_WORKER_TIMEOUT_MS", "2500")
        .env("PAYGATE_WORKER_POLL_MS", "50")
        .env("PAYGATE_WEBHOOK_ALLOW_PRIVATE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ureq::get(&format!("{base}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, base)
}

fn call(agent: &ureq::Agent, method: &str, url: &str, key: &str, body: Value) -> Result<(u16, Value), String> {
    let req = agent.request(method, url).set("authorization", &format!("Bearer {key}"));
    let resp = match if method == "GET" { req.call() } else { req.send_json(body) } {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    Ok((status, resp.into_json().map_err(|e| e.to_string())?))
}

fn parallel<T: Sync>(items: &[T], threads: usize, f: impl Fn(&ureq::Agent, &T) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { break };
                    f(&agent, item);
                }
            });
        }
    });
}

fn kill_9_loses_no_acknowledged_payment_or_event(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = support::fresh_database(&rt, backend);
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["app", "create", "--name", "crash", "--json", "--database", &db])
        .output()
        .unwrap();
    let app: Value = serde_json::from_slice(&out.stdout).expect("app JSON");
    let (key, app_id) = (app["test_secret_key"].as_str().unwrap().to_string(), app["id"].as_str().unwrap().to_string());
    let rx = Receiver::always(200);
    let (mut server, base) = start(&db);
    let agent = ureq::agent();
    assert_eq!(
        call(&agent, "POST", &format!("{base}/v1/webhook_endpoints"), &key, json!({"url": rx.url})).unwrap().0,
        200
    );

    // 1 000 orders with an open sandbox charge each.
    let charges = Mutex::new(Vec::new());
    let numbers: Vec<usize> = (0..PAYMENTS).collect();
    parallel(&numbers, 8, |agent, i| {
        let order = json!({"app": app_id, "merchant_order_no": format!("crash{i}"), "amount": 100, "currency": "cny",
            "subject": "s", "body": "b"});
        let (st, o) = call(agent, "POST", &format!("{base}/v1/orders"), &key, order).unwrap();
        assert_eq!(st, 200, "{o}");
        let (st, paying) = call(
            agent,
            "POST",
            &format!("{base}/v1/orders/{}/pay", o["id"].as_str().unwrap()),
            &key,
            json!({"channel": "alipay_qr"}),
        )
        .unwrap();
        assert_eq!(st, 200, "{paying}");
        charges.lock().unwrap().push(paying["charges"]["data"][0]["id"].as_str().unwrap().to_string());
    });
    let charges = charges.into_inner().unwrap();

    // Complete them from 16 clients; kill -9 the server once a third were acknowledged.
    let acked = Mutex::new(HashSet::new());
    let killed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while acked.lock().unwrap().len() < PAYMENTS / 3 {
                std::thread::sleep(Duration::from_millis(2));
            }
            server.kill().unwrap(); // SIGKILL
            server.wait().unwrap();
            killed.store(1, Ordering::SeqCst);
        });
        parallel(&charges, 16, |agent, ch| {
            if killed.load(Ordering::SeqCst) == 1 {
                return;
            }
            if let Ok((200, _)) =
                call(agent, "POST", &format!("{base}/v1/sandbox/charges/{ch}/pay"), &key, json!({"result": "success"}))
            {
                acked.lock().unwrap().insert(ch.clone());
            }
        });
    });
    let acked = acked.into_inner().unwrap();
    assert!(
        acked.len() >= PAYMENTS / 3 && acked.len() < PAYMENTS,
        "the kill landed mid-stream: {} acknowledged",
        acked.len()
    );

    // Restart; the rest of the payers complete (some were committed but never acknowledged).
    let (mut server, base) = start(&db);
    parallel(&charges, 8, |agent, ch| {
        if !acked.contains(ch) {
            let (st, body) =
                call(agent, "POST", &format!("{base}/v1/sandbox/charges/{ch}/pay"), &key, json!({"result": "success"}))
                    .unwrap();
            assert!(st == 200 || (st == 400 && body["error"]["code"] == "charge_not_pending"), "{st} {body}");
        }
    });

    // Every charge has exactly one charge.succeeded event; acknowledged ones included.
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let cursor = after.as_ref().map(|a| format!("&starting_after={a}")).unwrap_or_default();
        let (_, page) = call(&agent, "GET", &format!("{base}/v1/events?limit=100{cursor}"), &key, Value::Null).unwrap();
        let data = page["data"].as_array().unwrap().clone();
        after = data.last().map(|e| e["id"].as_str().unwrap().to_string());
        events.extend(data);
        if page["has_more"] != true {
            break;
        }
    }
    let mut per_charge: HashMap<String, usize> = HashMap::new();
    for e in events.iter().filter(|e| e["type"] == "charge.succeeded") {
        *per_charge.entry(e["data"]["object"]["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    assert_eq!(per_charge.len(), PAYMENTS);
    assert!(per_charge.values().all(|n| *n == 1), "exactly one success event per payment");
    assert!(acked.iter().all(|ch| per_charge.get(ch) == Some(&1)));
    assert_eq!(events.len(), 2 * PAYMENTS, "charge.succeeded + order.succeeded each");

    // Every event reaches the receiver.
    let all_ids: HashSet<String> = events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got: HashSet<String> = rx.all().iter().map(|r| r.json()["id"].as_str().unwrap().to_string()).collect();
        if got == all_ids {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events delivered",
            got.intersection(&all_ids).count(),
            all_ids.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.kill().unwrap();
    let _ = server.wait();
}

both!(sigterm_drains_in_flight_deliveries);

fn sigterm_drains_in_flight_deliveries(backend: Backend) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let db = support::fresh_database(&rt, backend);
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["app", "create", "--name", "term", "--json", "--database", &db])
        .output()
        .unwrap();
    let app: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (key, app_id) = (app["test_secret_key"].as_str().unwrap().to_string(), app["id"].as_str().unwrap().to_string());
    // A receiver that takes 1.5 s to answer.
    let rx = Receiver::start(Box::new(|_| {
        std::thread::sleep(Duration::from_millis(1500));
        (200, None)
    }));
    let (mut server, base) = start(&db);
    let agent = ureq::agent();
    assert_eq!(
        call(
            &agent,
            "POST",
            &format!("{base}/v1/webhook_endpoints"),
            &key,
            json!({"url": rx.url, "events": ["order.canceled"]})
        )
        .unwrap()
        .0,
        200
    );
    let order = json!({"app": app_id, "merchant_order_no": "term-1", "amount": 100, "currency": "cny", "subject": "s",
        "body": "b"});
    let (_, o) = call(&agent, "POST", &format!("{base}/v1/orders"), &key, order).unwrap();
    let id = o["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&agent, "PUT", &format!("{base}/v1/orders/{id}"), &key, json!({"status": "canceled"})).unwrap().0,
        200
    );
    // Wait until the delivery is on the wire, then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(20);
    while rx.count() == 0 {
        assert!(Instant::now() < deadline, "delivery started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // `sh`'s own kill: a minimal machine may have no /bin/kill.
    let killed = Command::new("sh").args(["-c", &format!("kill -s TERM {}", server.id())]).status().unwrap();
    assert!(killed.success());
    let status = server.wait().unwrap();
    assert!(status.success(), "clean exit after draining: {status:?}");
    // Restarted without a worker: the attempt was recorded as delivered before the exit.
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--no-worker", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    while ureq::get(&format!("{base}/healthz")).call().is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, events) = call(&agent, "GET", &format!("{base}/v1/events?type=order.canceled"), &key, Value::Null).unwrap();
    let evt = events["data"][0]["id"].as_str().unwrap();
    let (_, d) = call(&agent, "GET", &format!("{base}/v1/events/{evt}/deliveries"), &key, Value::Null).unwrap();
    assert_eq!(
        (d["data"][0]["status"].as_str(), d["data"][0]["attempts"].as_i64()),
        (Some("delivered"), Some(1)),
        "{d}"
    );
    assert_eq!(rx.count(), 1);
    server.kill().unwrap();
    let _ = server.wait();
}
