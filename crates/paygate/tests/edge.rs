//! The HTTP edge, tried as attackers and unlucky operators would (issue 8): NUL bytes, wrong
//! routes and methods, oversized requests, non-ASCII idempotency keys, internal errors on the
//! sandbox page, the database going away, slow and idle clients, the connection cap. Each
//! story runs against the real server on SQLite and PostgreSQL, over raw sockets where a
//! client library would tidy the request up.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use support::{Backend, TestServer};

both!(
    nul_bytes_are_refused_at_every_face,
    router_refusals_speak_each_face,
    head_works_and_plus_stays_plus_in_paths,
    non_ascii_idempotency_keys_are_keys,
    sandbox_page_hides_internal_errors,
    readiness_and_an_unavailable_database,
    slow_and_idle_clients_are_cut_off,
    connection_cap_answers_503,
    every_listed_route_reaches_its_handler,
);

/// An answer read off the socket: status, headers (lower-case names), body.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body))
    }
}

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Sends `head` (request line and headers, without the final blank line) and `body` as bytes,
/// exactly as given, on a new connection, and reads the answer until the server closes.
fn raw(s: &TestServer, head: &[u8], body: &[u8]) -> Raw {
    let mut stream = TcpStream::connect(addr(s)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!("\r\nhost: t\r\nconnection: close\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes(),
    );
    request.extend_from_slice(body);
    stream.write_all(&request).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    parse(&out)
}

fn parse(bytes: &[u8]) -> Raw {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw { status, headers, body: body.to_string() }
}

fn get(s: &TestServer, key: &str, path: &str) -> Raw {
    raw(s, format!("GET {path} HTTP/1.1\r\nauthorization: Bearer {key}").as_bytes(), b"")
}

fn post(s: &TestServer, path: &str, headers: &str, body: &[u8]) -> Raw {
    raw(s, format!("POST {path} HTTP/1.1\r\ncontent-type: application/json{headers}").as_bytes(), body)
}

/// The cashier's `{result, sign}` answer, its `result` opened.
fn cashier_result(r: &Raw) -> Value {
    serde_json::from_str(r.json()["result"].as_str().expect("result is JSON text")).unwrap()
}

fn hserve_user_token(s: &TestServer, client_id: &str) -> String {
    let r = post(s, "/hserve/v2.0/login/anonymous/", &format!("\r\nx-hydrogen-client-id: {client_id}"), b"");
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["token"].as_str().unwrap().to_string()
}

fn nul_bytes_are_refused_at_every_face(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.paid_order(&k, "nul-1", 100);
    let id = order["id"].as_str().unwrap();
    let token = hserve_user_token(&s, &k.client_id);
    let pingpp = |r: Raw, param: &str| {
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"]["param"], json!(param), "{}", r.body);
    };
    // Ping++ /v1: query values, cursors, path ids, JSON fields.
    pingpp(get(&s, &k.test, &format!("/v1/orders?app={}&uid=a%00b", k.app)), "uid");
    pingpp(get(&s, &k.test, &format!("/v1/orders?app={}&starting_after=a%00b", k.app)), "starting_after");
    pingpp(get(&s, &k.test, "/v1/orders/a%00b"), "path");
    let auth = format!("\r\nauthorization: Bearer {}", k.test);
    pingpp(post(&s, "/v1/sandbox/charges/a%00b/pay", &auth, b"{}"), "path");
    let body = json!({"app": k.app, "merchant_order_no": "m\u{0}1", "amount": 1, "currency": "cny", "subject": "s",
        "body": "b"});
    pingpp(post(&s, "/v1/orders", &auth, body.to_string().as_bytes()), "merchant_order_no");
    let refund = json!({"amount": 1, "metadata": {"note": "x\u{0}"}});
    pingpp(post(&s, &format!("/v1/orders/{id}/order_refunds"), &auth, refund.to_string().as_bytes()), "metadata.note");
    // Without credentials too: the control character is refused before anything is looked up.
    pingpp(get(&s, "", "/v1/orders/a%01b"), "path");

    // 知晓云: login without credentials, path ids, filters, `where`; errors keep CORS.
    let client = format!("\r\nx-hydrogen-client-id: {}", k.client_id);
    let r = post(
        &s,
        "/hserve/v2.1/login/username/",
        &client,
        json!({"username": "a\u{0}b", "password": "p"}).to_string().as_bytes(),
    );
    assert_eq!((r.status, r.json()["param"].as_str()), (400, Some("username")), "{}", r.body);
    assert!(r.json()["error_msg"].as_str().unwrap().contains("NUL"));
    let hserve_get = |path: &str| {
        raw(
            &s,
            format!(
                "GET {path} HTTP/1.1\r\nx-hydrogen-client-id: {}\r\nauthorization: Hydrogen-r1 {token}",
                k.client_id
            )
            .as_bytes(),
            b"",
        )
    };
    for (path, param) in [
        ("/hserve/v2.0/idp/pay/order/a%00b/", "path"),
        ("/hserve/v2.2/idp/pay/order/?trade_no=a%00b", "trade_no"),
        (
            "/hserve/v2.2/idp/pay/order/?where=%7B%22trade_no%22%3A%7B%22%24eq%22%3A%22a%5Cu0000b%22%7D%7D",
            "where.trade_no",
        ),
    ] {
        let r = hserve_get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.json()["param"].as_str().unwrap().starts_with(param), "{path}: {}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
    }

    // 酷点 cashier: the envelope's own fields and the fields inside biz_content.
    let r =
        post(&s, "/api/v2/cashier/query", "", json!({"open_app_id": "a\u{0}b", "timestamp": 1}).to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(cashier_result(&r)["param"], "open_app_id");
    // SaaS query: `accessid` with a NUL, no signature needed to be refused.
    let r = post(
        &s,
        "/api/v1/pay/wx/query",
        "",
        json!({"accessid": "a\u{0}b", "trade_no": "1", "sign": "x"}).to_string().as_bytes(),
    );
    assert_eq!((r.status, r.json()["param"].as_str()), (400, Some("accessid")), "{}", r.body);
    assert_eq!(r.json()["return_code"], 40002);
    // Nothing was written by any of it.
    let (_, list) = s.get(&k.test, &format!("/v1/orders?app={}", k.app));
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

fn router_refusals_speak_each_face(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let big = vec![b' '; paygate_http::MAX_BODY_BYTES + 10];
    let long_query = "x".repeat(paygate_http::MAX_URI_BYTES + 10);

    // Ping++: {"error": {…}}.
    let r = get(&s, &k.test, "/v1/nope");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("route_not_found")));
    let r = raw(&s, format!("DELETE /v1/orders HTTP/1.1\r\nauthorization: Bearer {}", k.test).as_bytes(), b"");
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{}", r.body);
    assert_eq!(r.header("allow"), Some("GET, POST, HEAD"));
    let r = post(&s, "/v1/orders", "", &big);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (413, Some("request_too_large")));
    let r = get(&s, &k.test, &format!("/v1/orders?q={long_query}"));
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (414, Some("uri_too_long")));
    let r = get(&s, "", "/nope");
    assert_eq!((r.status, r.json()["error"]["type"].as_str()), (404, Some("invalid_request_error")));

    // 知晓云: {error_msg, …} and CORS on every refusal, so the browser SDK can read it.
    for (r, status) in [
        (get(&s, "", "/hserve/v2.2/idp/pay/refund/"), 405),
        (get(&s, "", "/hserve/v2.2/nope/"), 404),
        (post(&s, "/hserve/v2.2/idp/pay/refund/", "", &big), 413),
        (get(&s, "", &format!("/hserve/v2.2/idp/pay/order/?q={long_query}")), 414),
    ] {
        assert_eq!(r.status, status, "{}", r.body);
        assert!(r.json()["error_msg"].is_string(), "{}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{status}");
    }
    assert_eq!(get(&s, "", "/hserve/v2.2/idp/pay/refund/").header("allow"), Some("POST, OPTIONS"));

    // 酷点 cashier: the {result, sign} envelope with its numeric code.
    let r = get(&s, "", "/api/v2/cashier/query");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    assert_eq!(cashier_result(&r)["code"], 40002);
    let r = post(&s, "/api/v2/cashier/nope", "", b"{}");
    assert_eq!((r.status, cashier_result(&r)["code"].as_i64()), (404, Some(40004)));
    let r = post(&s, "/api/v2/cashier/pay", "", &big);
    assert_eq!((r.status, cashier_result(&r)["sub_code"].as_str()), (413, Some("request_too_large")));

    // SaaS query: {return_code, error_code, error_msg, sign}.
    let r = get(&s, "", "/api/v1/pay/wx/query");
    assert_eq!((r.status, r.json()["return_code"].as_i64()), (405, Some(40002)));
    let r = post(&s, "/api/v1/pay/wx/query", "", &big);
    assert_eq!((r.status, r.json()["error_code"].as_str()), (413, Some("request_too_large")));

    // The sandbox page is HTML.
    let r = raw(&s, b"DELETE /sandbox/charges/ch_x HTTP/1.1", b"");
    assert_eq!((r.status, r.header("content-type")), (405, Some("text/html; charset=utf-8")));
}

fn head_works_and_plus_stays_plus_in_paths(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "head-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    let got = get(&s, &k.test, &format!("/v1/orders/{id}"));
    let head = raw(&s, format!("HEAD /v1/orders/{id} HTTP/1.1\r\nauthorization: Bearer {}", k.test).as_bytes(), b"");
    assert_eq!((head.status, head.body.as_str()), (200, ""), "HEAD answers like GET, without the body");
    assert_eq!(head.header("content-length"), got.header("content-length"));
    assert_eq!(raw(&s, b"HEAD /healthz HTTP/1.1", b"").status, 200);
    // `+` in a path is a plus: the id looked up is "a+b", not "a b".
    let r = get(&s, &k.test, "/v1/orders/a+b");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"]["message"].as_str().unwrap().ends_with("a+b"), "{}", r.body);
}

fn non_ascii_idempotency_keys_are_keys(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.paid_order(&k, "idem-1", 100);
    let id = order["id"].as_str().unwrap();
    let path = format!("/v1/orders/{id}/order_refunds");
    let refund = |key: &[u8]| {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\ncontent-type: application/json\r\nauthorization: Bearer {}\r\nidempotency-key: ",
            k.test
        )
        .into_bytes();
        head.extend_from_slice(key);
        raw(&s, &head, br#"{"amount": 10}"#)
    };
    let first = refund("订单-1".as_bytes());
    let second = refund("订单-1".as_bytes());
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.body, second.body, "replayed byte for byte");
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}")).1["amount_refunded"], 10, "one refund, not two");
    // A key that is not UTF-8, or longer than 255 bytes, is refused by name, never ignored.
    let r = refund(b"\xff\xfe");
    assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some("Idempotency-Key")), "{}", r.body);
    let r = refund("键".repeat(86).as_bytes());
    assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some("Idempotency-Key")), "{}", r.body);
    assert_eq!(s.get(&k.test, &format!("/v1/orders/{id}")).1["amount_refunded"], 10);
}

/// Renames a table under the running server, so the next query of it fails inside the database.
fn break_table(s: &TestServer, backend: Backend, table: &str) {
    match backend {
        Backend::Sqlite => {
            let path = s.database_url.strip_prefix("sqlite://").unwrap();
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.execute_batch(&format!("PRAGMA busy_timeout = 5000; ALTER TABLE {table} RENAME TO {table}_gone;"))
                .unwrap();
        }
        Backend::Postgres => {
            let schema = s.database_url.split("search_path%3D").nth(1).unwrap().to_string();
            s.rt.block_on(async {
                let (client, conn) =
                    tokio_postgres::connect(&support::postgres_admin_url(), tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client.batch_execute(&format!("ALTER TABLE {schema}.{table} RENAME TO {table}_gone")).await.unwrap();
            });
        }
    }
}

fn sandbox_page_hides_internal_errors(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "page-1", 100, json!({}));
    let (_, paying) =
        s.post(&k.test, &format!("/v1/orders/{}/pay", order["id"].as_str().unwrap()), json!({"channel": "alipay_qr"}));
    let charge = paying["charges"]["data"][0]["id"].as_str().unwrap().to_string();
    break_table(&s, backend, "charges");
    for r in [
        raw(&s, format!("GET /sandbox/charges/{charge} HTTP/1.1").as_bytes(), b""),
        raw(
            &s,
            format!("POST /sandbox/charges/{charge} HTTP/1.1\r\ncontent-type: application/x-www-form-urlencoded")
                .as_bytes(),
            b"result=success",
        ),
    ] {
        assert_eq!(r.status, 500, "{}", r.body);
        let lower = r.body.to_lowercase();
        for leak in ["sqlite", "postgres", "db error", "charges_gone", "no such table", "relation", "paygate-store"] {
            assert!(!lower.contains(leak), "the page shows internal detail '{leak}': {}", r.body);
        }
        assert!(r.body.contains("internal error"), "{}", r.body);
    }
}

/// A TCP proxy to PostgreSQL that the test can cut, as a network failure or a database restart
/// would; `restore` listens again on the same port.
struct Proxy {
    port: u16,
    target: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    fn start(rt: &tokio::runtime::Runtime, target: &str, port: u16) -> Proxy {
        let mut proxy = Proxy { port, target: target.to_string(), tasks: Vec::new() };
        proxy.listen(rt);
        proxy
    }

    fn listen(&mut self, rt: &tokio::runtime::Runtime) {
        let listener = rt.block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port))).unwrap();
        self.port = listener.local_addr().unwrap().port();
        let target = self.target.clone();
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let held = connections.clone();
        let accept = rt.spawn(async move {
            let _closes_with_accept = CloseAll(held.clone());
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                held.lock().unwrap().push(task.abort_handle());
            }
        });
        self.tasks = vec![accept];
    }

    fn cut(&mut self, rt: &tokio::runtime::Runtime) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = rt.block_on(t);
        }
    }
}

/// Aborts every proxied connection when the accept task ends (it is aborted by `cut`).
struct CloseAll(std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>);

impl Drop for CloseAll {
    fn drop(&mut self) {
        for h in self.0.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

fn readiness_and_an_unavailable_database(backend: Backend) {
    match backend {
        Backend::Sqlite => sqlite_busy_is_503(),
        Backend::Postgres => postgres_away_is_503(),
    }
}

/// SQLite is embedded, so it is never "away"; what it has instead is a file another process
/// holds locked past busy_timeout: that is a 503 to retry, not a 500.
fn sqlite_busy_is_503() {
    let s = TestServer::start(Backend::Sqlite);
    let k = s.create_app("shop");
    assert_eq!((get(&s, "", "/readyz").status, get(&s, "", "/healthz").status), (200, 200));
    let path = s.database_url.strip_prefix("sqlite://").unwrap();
    let locker = rusqlite::Connection::open(path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = json!({"app": k.app, "merchant_order_no": "busy-1", "amount": 1, "currency": "cny", "subject": "s",
        "body": "b"});
    let r = post(&s, "/v1/orders", &format!("\r\nauthorization: Bearer {}", k.test), body.to_string().as_bytes());
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert!(!r.body.contains("sqlite"), "{}", r.body);
    locker.execute_batch("ROLLBACK").unwrap();
    let r = post(&s, "/v1/orders", &format!("\r\nauthorization: Bearer {}", k.test), body.to_string().as_bytes());
    assert_eq!(r.status, 200, "works again once the lock is gone: {}", r.body);
}

fn postgres_away_is_503() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = support::fresh_database(&rt, Backend::Postgres);
    let admin = support::postgres_admin_url();
    let host_port = admin.split('@').nth(1).unwrap().split('/').next().unwrap().to_string();
    let mut proxy = Proxy::start(&rt, &host_port, 0);
    let proxied = url.replacen(&host_port, &format!("127.0.0.1:{}", proxy.port), 1);
    let s = TestServer::attach(&proxied);
    let k = s.create_app("shop");
    let order = s.create_order(&k, &k.test, "away-1", 100, json!({}));
    let id = order["id"].as_str().unwrap();
    assert_eq!(get(&s, "", "/readyz").status, 200);

    proxy.cut(&rt);
    let r = get(&s, &k.test, &format!("/v1/orders/{id}"));
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.body);
    assert_eq!(r.json()["error"]["type"], "api_error");
    assert!(!r.body.contains("postgres"), "{}", r.body);
    let r = raw(
        &s,
        format!("GET /hserve/v2.2/idp/pay/order/ HTTP/1.1\r\nauthorization: Bearer {}", k.test).as_bytes(),
        b"",
    );
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")), "{}", r.body);
    assert!(r.json()["error_msg"].is_string());
    assert_eq!(get(&s, "", "/readyz").status, 503, "not ready without its database");
    assert_eq!(get(&s, "", "/healthz").status, 200, "but alive");

    proxy.listen(&rt);
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&s, "", "/readyz").status != 200 {
        assert!(Instant::now() < deadline, "ready again once the database is back");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(&s, &k.test, &format!("/v1/orders/{id}")).status, 200);
    drop(s);
    let schema = url.split("search_path%3D").nth(1).unwrap().to_string();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await.unwrap();
    });
}

fn short_limits() -> paygate_http::Limits {
    paygate_http::Limits {
        max_connections: 8,
        header_read_timeout: Duration::from_millis(600),
        body_read_timeout: Duration::from_millis(600),
        idle_timeout: Duration::from_millis(1500),
        write_stall_timeout: Duration::from_secs(5),
        shutdown_grace: Duration::from_secs(2),
    }
}

/// Whether the server closed the connection within `within` (reads hit EOF).
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(Duration, Vec<u8>)> {
    let started = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some((started.elapsed(), out)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some((started.elapsed(), out)),
            Err(_) => return None,
        }
        if started.elapsed() > within {
            return None;
        }
    }
}

fn slow_and_idle_clients_are_cut_off(backend: Backend) {
    let s = TestServer::start_with_limits(backend, short_limits());
    let k = s.create_app("shop");
    // A head that trickles in and never finishes: closed after the header timeout, although
    // it keeps sending (the idle timeout alone would never fire).
    let mut slow = TcpStream::connect(addr(&s)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        if slow.write_all(b"x-slow: 1\r\n").is_err() {
            closed = true;
            break;
        }
    }
    assert!(closed, "a trickling head is cut off");
    assert!(started.elapsed() < Duration::from_secs(3), "near the header timeout: {:?}", started.elapsed());

    // A silent connection, and one idle after a first request, are closed after the idle timeout.
    let mut silent = TcpStream::connect(addr(&s)).unwrap();
    let (after, _) = closed_within(&mut silent, Duration::from_secs(5)).expect("a silent connection is closed");
    assert!(after >= Duration::from_millis(500), "{after:?}");
    let mut kept = TcpStream::connect(addr(&s)).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n").unwrap();
    let (after, answer) =
        closed_within(&mut kept, Duration::from_secs(5)).expect("an idle keep-alive connection is closed");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "answered first");
    assert!(after >= Duration::from_millis(1400), "not before the idle timeout: {after:?}");

    // A body that never arrives: 408 in the face's format once the body timeout passes.
    let mut stalled = TcpStream::connect(addr(&s)).unwrap();
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {}\r\ncontent-length: 100\r\n\r\n{{",
        k.test
    );
    stalled.write_all(head.as_bytes()).unwrap();
    let (_, answer) = closed_within(&mut stalled, Duration::from_secs(5)).expect("answered and closed");
    let r = parse(&answer);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (408, Some("request_timeout")), "{}", r.body);
    // Meanwhile the server answers everyone else.
    assert_eq!(get(&s, "", "/healthz").status, 200);
}

fn connection_cap_answers_503(backend: Backend) {
    let s = TestServer::start_with_limits(backend, short_limits());
    let held: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr(&s)).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut extra = TcpStream::connect(addr(&s)).unwrap();
    let (_, answer) = closed_within(&mut extra, Duration::from_secs(3)).expect("refused at once");
    let r = parse(&answer);
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    assert_eq!(r.json()["error"]["code"], "too_many_connections");
    drop(held);
    // Slots come free as connections close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(&s, "", "/healthz");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots come back: {}", r.status);
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The router's route tables (for 404/405) and the handlers' own matching agree: every listed
/// route and method reaches a handler, which may refuse the made-up ids but never says
/// "no such route" or "wrong method".
fn every_listed_route_reaches_its_handler(backend: Backend) {
    let s = TestServer::start(backend);
    let k = s.create_app("shop");
    for (path, method) in paygate_http::listed_routes() {
        let head = format!(
            "{method} {path} HTTP/1.1\r\ncontent-type: application/json\r\nauthorization: Bearer {}\r\n\
             x-hydrogen-client-id: {}",
            k.test, k.client_id
        );
        let r = raw(&s, head.as_bytes(), b"{}");
        assert!(r.status != 405 && r.status < 500, "{method} {path}: {} {}", r.status, r.body);
        assert!(!r.body.contains("route_not_found"), "{method} {path}: {}", r.body);
    }
}
