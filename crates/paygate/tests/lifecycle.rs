//! The `paygate serve` process as an operator runs it: a port already taken, and shutting down
//! with a client that never finishes its request (issue 8, items 4 and 16). Both backends.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::Backend;

both!(a_port_in_use_fails_before_anything_is_written, shutdown_has_a_deadline_and_a_second_signal_exits);

fn database(backend: Backend) -> (tokio::runtime::Runtime, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = support::fresh_database(&rt, backend);
    (rt, url)
}

/// Apps in the database (0 when it has no schema yet).
fn app_count(rt: &tokio::runtime::Runtime, url: &str) -> i64 {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if !std::path::Path::new(path).exists() {
            return 0;
        }
        let conn = rusqlite::Connection::open(path).unwrap();
        return conn.query_row("SELECT COUNT(*) FROM apps", [], |r| r.get(0)).unwrap_or(0);
    }
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.query_one("SELECT COUNT(*) FROM apps", &[]).await.map(|r| r.get::<_, i64>(0)).unwrap_or(0)
    })
}

fn a_port_in_use_fails_before_anything_is_written(backend: Backend) {
    let (rt, url) = database(backend);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--listen", &listen, "--database", &url])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.is_empty(), "no keys printed for an app nobody can use: {stdout}");
    assert!(stderr.contains("Cannot listen on"), "{stderr}");
    assert_eq!(app_count(&rt, &url), 0, "no first app was created");
}

/// Starts `paygate serve` on a free port; returns the child and its address.
fn serve(url: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paygate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", url, "--no-worker"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("paygate prints where it serves").unwrap();
        if let Some(rest) = line.split("serving on http://").nth(1) {
            break rest.split(' ').next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

fn signal(child: &Child, name: &str) {
    // `sh`'s own kill: a minimal machine may have no /bin/kill.
    let ok = Command::new("sh").args(["-c", &format!("kill -s {name} {}", child.id())]).status().unwrap();
    assert!(ok.success());
}

/// Waits for the child to exit, at most `within`; its exit code and how long it took.
fn exits_within(child: &mut Child, within: Duration) -> (Option<i32>, Duration) {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("paygate did not exit within {within:?}");
}

fn half_sent_request(addr: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"POST /v1/orders HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stream
}

fn shutdown_has_a_deadline_and_a_second_signal_exits(backend: Backend) {
    let (_rt, url) = database(backend);
    // One signal: the half-sent request gets the grace period (2 s), not the header timeout (60 s).
    let (mut child, addr) = serve(&url, &["--shutdown-grace", "2", "--header-read-timeout", "60"]);
    let _held = half_sent_request(&addr);
    signal(&child, "TERM");
    let (code, took) = exits_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(0), "a graceful exit");
    assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(6), "within the grace period: {took:?}");

    // Two signals: the second one ends it at once, whatever the grace period.
    let (mut child, addr) = serve(&url, &["--shutdown-grace", "60", "--header-read-timeout", "60"]);
    let _held = half_sent_request(&addr);
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still draining after the first signal");
    signal(&child, "INT");
    let (code, took) = exits_within(&mut child, Duration::from_secs(5));
    assert_eq!(code, Some(130));
    assert!(took < Duration::from_secs(2), "{took:?}");
}
