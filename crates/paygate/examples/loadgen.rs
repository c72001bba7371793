//! Load generator for scripts/bench (not a test). Prints one JSON line per run.
//!
//!   loadgen create   BASE KEY APP CLIENTS SECONDS IDS_OUT   — POST /v1/orders
//!   loadgen retrieve BASE KEY IDS_IN CLIENTS SECONDS        — GET /v1/orders/{id}
//!   loadgen sqlite-insert PATH SECONDS                      — raw single-row inserts (WAL, FULL)
//!   loadgen sqlite-select PATH CLIENTS SECONDS              — raw primary-key selects
//!   loadgen payments BASE KEY APP CLIENTS COUNT             — times completing COUNT sandbox payments
//!   loadgen receive PORT EXPECTED                           — a webhook receiver; rate of the first EXPECTED
//!   loadgen wallet BASE OPEN_APP_ID SECRET TOKEN PAY_CODE CLIENTS SECONDS
//!                                                           — cashier wallet payments (MD5-signed envelopes)
//!   loadgen lists BASE KEY USER_TOKEN APP T0 N CLIENTS SECONDS
//!                                                           — each list query of loadgen/lists.rs: p50/p99
//!   loadgen lists-explain postgres|sqlite URL|PATH APP T0 N — each list query's plan (markdown)
//!   loadgen wechat BASE KEY APP SIM_BASE MCH_ID TAG CLIENTS SECONDS
//!                                                           — payments through the WeChat simulator
//!   loadgen console-rollup DATABASE_URL                     — the worker's console overview rollup, timed

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "loadgen/console.rs"]
mod console;
#[path = "loadgen/lists.rs"]
mod lists;
#[path = "loadgen/wechat.rs"]
mod wechat;

fn report(name: &str, latencies: &mut [u64], elapsed: f64) {
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    println!(
        "{{\"name\":\"{name}\",\"ops\":{},\"seconds\":{elapsed:.2},\"per_second\":{:.0},\
         \"p50_ms\":{:.2},\"p99_ms\":{:.2}}}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}

/// Runs `work(client, i)` on `clients` threads for `seconds`; returns latencies in µs.
fn drive(clients: usize, seconds: u64, work: impl Fn(usize, u64) + Sync) -> (Vec<u64>, f64) {
    let stop = AtomicBool::new(false);
    let counter = AtomicU64::new(0);
    let all = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (stop, counter, all, work) = (&stop, &counter, &all, &work);
            s.spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    work(c, i);
                    mine.push(t.elapsed().as_micros() as u64);
                }
                all.lock().unwrap().extend(mine);
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    (all.into_inner().unwrap(), start.elapsed().as_secs_f64())
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().max_idle_connections_per_host(4).build()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_else(|| panic!("missing argument {i}; see the file header"));
    match a(0).as_str() {
        "create" => {
            let (base, key, app, clients, seconds, out) =
                (a(1), a(2), a(3), a(4).parse().unwrap(), a(5).parse().unwrap(), a(6));
            let agents: Vec<ureq::Agent> = (0..clients).map(|_| agent()).collect();
            let ids = Arc::new(Mutex::new(Vec::new()));
            let run = format!(
                "{:x}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            );
            let (mut lat, secs) = drive(clients, seconds, |c, i| {
                let body = format!(
                    "{{\"app\":\"{app}\",\"merchant_order_no\":\"b{run}{i}\",\"amount\":100,\"currency\":\"cny\",\
                     \"subject\":\"bench\",\"body\":\"bench\",\"client_ip\":\"127.0.0.1\"}}"
                );
                let resp = agents[c]
                    .post(&format!("{base}/v1/orders"))
                    .set("authorization", &format!("Bearer {key}"))
                    .set("content-type", "application/json")
                    .send_string(&body);
                let text = resp.expect("create succeeds").into_string().unwrap();
                let id = text.split("\"id\":\"").nth(1).and_then(|t| t.split('"').next()).unwrap().to_string();
                if i % 8 == 0 {
                    ids.lock().unwrap().push(id);
                }
            });
            std::fs::write(out, ids.lock().unwrap().join("\n")).unwrap();
            report("http_create", &mut lat, secs);
        }
        "retrieve" => {
            let (base, key, ids_in, clients, seconds) =
                (a(1), a(2), a(3), a(4).parse().unwrap(), a(5).parse().unwrap());
            let ids: Vec<String> = std::fs::read_to_string(ids_in).unwrap().lines().map(str::to_string).collect();
            let agents: Vec<ureq::Agent> = (0..clients).map(|_| agent()).collect();
            let (mut lat, secs) = drive(clients, seconds, |c, i| {
                let id = &ids[i as usize % ids.len()];
                agents[c]
                    .get(&format!("{base}/v1/orders/{id}"))
                    .set("authorization", &format!("Bearer {key}"))
                    .call()
                    .expect("retrieve succeeds")
                    .into_string()
                    .unwrap();
            });
            report("http_retrieve", &mut lat, secs);
        }
        "sqlite-insert" => {
            let (path, seconds) = (a(1), a(2).parse().unwrap());
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
                 CREATE TABLE IF NOT EXISTS bench_orders (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
                   app_id TEXT NOT NULL, livemode BOOLEAN NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL,
                   merchant_order_no TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL,
                   subject TEXT NOT NULL, body TEXT NOT NULL, client_ip TEXT NOT NULL, time_expire INTEGER NOT NULL,
                   metadata TEXT, UNIQUE (app_id, livemode, merchant_order_no));",
            )
            .unwrap();
            let conn = Mutex::new(conn);
            // One writer, as SQLite allows; each insert is its own durable transaction.
            let (mut lat, secs) = drive(1, seconds, |_, i| {
                let c = conn.lock().unwrap();
                c.prepare_cached(concat!(
                    "INSERT INTO bench_orders (id, app_id, livemode, created, status, merchant_order_no, amount, ",
                    "currency, subject, body, client_ip, time_expire) VALUES (?1, 'app_bench', 0, 1, 'created', ?1, ",
                    "100, 'cny', 'bench', 'bench', '127.0.0.1', 2)"
                ))
                .unwrap()
                .execute([format!("{i:019}")])
                .unwrap();
            });
            report("sqlite_raw_insert", &mut lat, secs);
        }
        "sqlite-select" => {
            let (path, clients, seconds) = (a(1), a(2).parse().unwrap(), a(3).parse().unwrap());
            let conns: Vec<Mutex<rusqlite::Connection>> =
                (0..clients).map(|_| Mutex::new(rusqlite::Connection::open(&path).unwrap())).collect();
            let max: i64 =
                conns[0].lock().unwrap().query_row("SELECT MAX(seq) FROM bench_orders", [], |r| r.get(0)).unwrap();
            let (mut lat, secs) = drive(clients, seconds, |c, i| {
                let conn = conns[c].lock().unwrap();
                let mut stmt = conn.prepare_cached("SELECT * FROM bench_orders WHERE seq = ?1").unwrap();
                let _ = stmt.query_row([(i as i64 * 7919) % max + 1], |r| r.get::<_, String>(1));
            });
            report("sqlite_raw_select", &mut lat, secs);
        }
        "payments" => {
            let (base, key, app, clients, count): (String, String, String, usize, usize) =
                (a(1), a(2), a(3), a(4).parse().unwrap(), a(5).parse().unwrap());
            let agents: Vec<ureq::Agent> = (0..clients).map(|_| agent()).collect();
            let auth = format!("Bearer {key}");
            let run = format!(
                "{:x}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            );
            // Untimed: orders with an open charge each.
            let charges = Mutex::new(Vec::new());
            let next = AtomicU64::new(0);
            std::thread::scope(|s| {
                for agent in &agents {
                    let (charges, next, auth, run, base, app) = (&charges, &next, &auth, &run, &base, &app);
                    s.spawn(move || loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        if i >= count {
                            break;
                        }
                        let body = format!(
                            "{{\"app\":\"{app}\",\"merchant_order_no\":\"p{run}{i}\",\"amount\":100,\
                             \"currency\":\"cny\",\"subject\":\"b\",\"body\":\"b\"}}"
                        );
                        let post = |url: String, body: &str| {
                            agent
                                .post(&url)
                                .set("authorization", auth)
                                .send_string(body)
                                .unwrap()
                                .into_string()
                                .unwrap()
                        };
                        let text = post(format!("{base}/v1/orders"), &body);
                        let id = text.split("\"id\":\"").nth(1).and_then(|t| t.split('"').next()).unwrap().to_string();
                        let text = post(format!("{base}/v1/orders/{id}/pay"), "{\"channel\":\"alipay_qr\"}");
                        let ch = text.split("\"id\":\"ch_").nth(1).and_then(|t| t.split('"').next());
                        let ch = ch.unwrap().to_string();
                        charges.lock().unwrap().push(format!("ch_{ch}"));
                    });
                }
            });
            let charges = charges.into_inner().unwrap();
            let next = AtomicU64::new(0);
            let lat = Mutex::new(Vec::new());
            let start = Instant::now();
            std::thread::scope(|s| {
                for agent in &agents {
                    let (charges, next, auth, base, lat) = (&charges, &next, &auth, &base, &lat);
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                            let Some(ch) = charges.get(i) else { break };
                            let t = Instant::now();
                            agent
                                .post(&format!("{base}/v1/sandbox/charges/{ch}/pay"))
                                .set("authorization", auth)
                                .send_string("{\"result\":\"success\"}")
                                .expect("payment completes");
                            mine.push(t.elapsed().as_micros() as u64);
                        }
                        lat.lock().unwrap().extend(mine);
                    });
                }
            });
            report("http_pay_complete", &mut lat.into_inner().unwrap(), start.elapsed().as_secs_f64());
        }
        "wallet" => {
            use md5::{Digest, Md5};
            let (base, open_app_id, secret, token, code) = (a(1), a(2), a(3), a(4), a(5));
            let (clients, seconds): (usize, u64) = (a(6).parse().unwrap(), a(7).parse().unwrap());
            let agents: Vec<ureq::Agent> = (0..clients).map(|_| agent()).collect();
            let run = format!(
                "{:x}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
            );
            let (mut lat, secs) = drive(clients, seconds, |c, i| {
                let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let biz = format!("{{\"out_trade_no\":\"w{run}{i}\",\"total_fee\":1,\"auth_code\":\"{code}\"}}");
                // docs/cashier.md: sorted name=value pairs, then &key=SECRET, lowercase MD5.
                let canonical =
                    format!("biz_content={biz}&open_app_id={open_app_id}&sign_type=MD5&timestamp={ts}&token={token}");
                let sign: String = Md5::digest(format!("{canonical}&key={secret}").as_bytes())
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let body = serde_json::json!({"open_app_id": open_app_id, "timestamp": ts, "sign_type": "MD5",
                    "token": token, "biz_content": biz, "sign": sign});
                let text = agents[c]
                    .post(&format!("{base}/api/v2/cashier/pay"))
                    .send_string(&body.to_string())
                    .expect("wallet payment succeeds")
                    .into_string()
                    .unwrap();
                assert!(text.contains("PAYED_SUCC"), "{text}");
            });
            report("http_wallet_pay", &mut lat, secs);
        }
        "receive" => {
            use std::io::{BufRead, BufReader, Read, Write};
            let (port, expected): (u16, usize) = (a(1).parse().unwrap(), a(2).parse().unwrap());
            let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
            let seen = Arc::new(AtomicU64::new(0));
            let first = Arc::new(Mutex::new(None::<Instant>));
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let first_seen = first.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (seen, first, tx) = (seen.clone(), first_seen.clone(), tx.clone());
                    std::thread::spawn(move || {
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut stream = stream;
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let mut len = 0usize;
                            loop {
                                let mut h = String::new();
                                if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                    return;
                                }
                                let h = h.trim_end().to_ascii_lowercase();
                                if h.is_empty() {
                                    break;
                                }
                                if let Some(v) = h.strip_prefix("content-length:") {
                                    len = v.trim().parse().unwrap_or(0);
                                }
                            }
                            let mut body = vec![0; len];
                            if reader.read_exact(&mut body).is_err() {
                                return;
                            }
                            first.lock().unwrap().get_or_insert_with(Instant::now);
                            if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_err() {
                                return;
                            }
                            if seen.fetch_add(1, Ordering::SeqCst) + 1 == expected as u64 {
                                let _ = tx.send(());
                            }
                        }
                    });
                }
            });
            rx.recv_timeout(Duration::from_secs(600)).expect("all expected webhooks arrived");
            let elapsed = first.lock().unwrap().unwrap().elapsed().as_secs_f64();
            println!(
                "{{\"name\":\"webhook_delivery\",\"ops\":{expected},\"seconds\":{elapsed:.2},\"per_second\":{:.0}}}",
                expected as f64 / elapsed
            );
        }
        "lists" => {
            let (base, key, token) = (a(1), a(2), a(3));
            let data = lists::Data { app: a(4), t0: a(5).parse().unwrap(), n: a(6).parse().unwrap() };
            let (clients, seconds): (usize, u64) = (a(7).parse().unwrap(), a(8).parse().unwrap());
            let agents: Vec<ureq::Agent> = (0..clients).map(|_| agent()).collect();
            for q in lists::queries(&data) {
                let auth = match q.auth {
                    lists::Auth::Key => format!("Bearer {key}"),
                    lists::Auth::User => format!("Hydrogen-r1 {token}"),
                };
                let get = |agent: &ureq::Agent| -> serde_json::Value {
                    let resp = agent.get(&format!("{base}{}", q.path)).set("authorization", &auth).call();
                    let resp = resp.unwrap_or_else(|e| panic!("{}: {e}", q.name));
                    serde_json::from_str(&resp.into_string().unwrap()).unwrap()
                };
                // What the query answers, once, so a list that silently reads nothing is seen.
                let first = get(&agents[0]);
                let rows = first.get("data").or(first.get("objects")).and_then(|d| d.as_array()).map_or(0, Vec::len);
                let total = first.pointer("/meta/total_count").cloned().unwrap_or(serde_json::Value::Null);
                let (mut lat, secs) = drive(clients, seconds, |c, _| {
                    get(&agents[c]);
                });
                report(&format!("lists:{}", q.name), &mut lat, secs);
                println!("{{\"name\":\"lists:{}:answer\",\"rows\":{rows},\"total_count\":{total}}}", q.name);
            }
        }
        "lists-explain" => {
            let data = lists::Data { app: a(3), t0: a(4).parse().unwrap(), n: a(5).parse().unwrap() };
            print!("{}", lists::explain(&a(1), &a(2), &data));
        }
        "wechat" => {
            let t = wechat::Target { base: a(1), key: a(2), app: a(3), sim: a(4), mch_id: a(5), tag: a(6) };
            wechat::run(&t, a(7).parse().expect("CLIENTS"), a(8).parse().expect("SECONDS"));
        }
        "console-rollup" => console::rollup(&a(1)),
        other => panic!("unknown mode {other}"),
    }
}
