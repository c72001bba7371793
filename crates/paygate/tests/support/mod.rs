//! Test harness: the real server on a real socket (port 0) over a real database — a fresh
//! SQLite file or a fresh PostgreSQL schema per test — driven over HTTP. PostgreSQL is
//! required: without it the Postgres half fails loudly instead of skipping.
#![allow(dead_code)]

pub mod channels;
pub mod console;
pub mod faces;
pub mod receiver;

use paygate_core::{Clock, Paygate};
use paygate_store::ExposeSecret as _;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a story once per backend: `both!(story_fn);` makes `story_fn::sqlite` and `story_fn::postgres`.
#[macro_export]
macro_rules! both {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[test]
            fn sqlite() { super::$story(super::support::Backend::Sqlite) }
            #[test]
            fn postgres() { super::$story(super::support::Backend::Postgres) }
        }
    )*};
}

pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("PAYGATE_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique(prefix: &str) -> String {
    let mut b = [0u8; 8];
    getrandom_bytes(&mut b);
    format!("{prefix}{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>())
}

fn getrandom_bytes(buf: &mut [u8]) {
    getrandom::getrandom(buf).unwrap();
}

/// A database for one test; `url` is what paygate is started with.
pub fn fresh_database(rt: &tokio::runtime::Runtime, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(unique("paygate-test-"));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join("paygate.db").display())
        }
        Backend::Postgres => {
            let admin = postgres_admin_url();
            let schema = unique("t_");
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required for the test suite ({admin}): {e}. \
                             Set PAYGATE_TEST_POSTGRES_URL or run .ci/run."
                    )
                });
                tokio::spawn(conn);
                client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
            });
            let sep = if admin.contains('?') { '&' } else { '?' };
            format!("{admin}{sep}options=-c%20search_path%3D{schema}")
        }
    }
}

/// What the test servers run under: webhook receivers listen on 127.0.0.1.
fn allow_private() -> paygate_core::Policy {
    paygate_core::Policy {
        webhook_allow_private: true,
        channel_allow_private: true,
        public_url: None,
        channel_ca_pem: None,
    }
}

pub struct TestServer {
    pub rt: tokio::runtime::Runtime,
    pub app: Arc<Paygate>,
    pub clock: Arc<TestClock>,
    pub base: String,
    pub database_url: String,
    running: Option<paygate::Running>,
    pg_schema: Option<String>,
}

/// An app's credentials as the tests use them.
#[derive(Clone, Debug)]
pub struct Keys {
    pub app: String,
    pub test: String,
    pub live: String,
    /// The app's test-mode 知晓云 client id.
    pub client_id: String,
    /// Test-mode cashier credential: (open_app_id, secret, token).
    pub cashier: (String, String, String),
    /// Test-mode SaaS query credential: (accessid, key).
    pub saas: (String, String),
}

impl TestServer {
    pub fn start(backend: Backend) -> TestServer {
        TestServer::start_with_limits(backend, paygate_http::Limits::default())
    }

    /// A server whose connection limits (timeouts, cap, shutdown grace) are `limits`.
    pub fn start_with_limits(backend: Backend, limits: paygate_http::Limits) -> TestServer {
        TestServer::launch(backend, limits, allow_private())
    }

    /// A server under the test policy (private targets allowed) trusting `channel_ca_pem` for channel endpoints.
    pub fn start_trusting(backend: Backend, channel_ca_pem: &str) -> TestServer {
        let policy = paygate_core::Policy { channel_ca_pem: Some(channel_ca_pem.to_string()), ..allow_private() };
        TestServer::launch(backend, paygate_http::Limits::default(), policy)
    }

    /// A server under the production default policy: webhook endpoints on loopback, private and
    /// link-local addresses are refused (every other server here allows them, since the test
    /// receivers listen on 127.0.0.1).
    pub fn start_strict(backend: Backend) -> TestServer {
        TestServer::launch(backend, paygate_http::Limits::default(), paygate_core::Policy::default())
    }

    fn launch(backend: Backend, limits: paygate_http::Limits, policy: paygate_core::Policy) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let database_url = fresh_database(&rt, backend);
        let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000)));
        let (app, running) = rt.block_on(async {
            let app = paygate::start_with(&database_url, clock.clone(), policy).await.expect("paygate starts");
            let listener = paygate::bind("127.0.0.1:0").await.expect("binds");
            let running = paygate::serve_on(listener, app.clone(), None, limits).expect("listens");
            (app, running)
        });
        let base = format!("http://{}", running.addr);
        let pg_schema = database_url.split("search_path%3D").nth(1).map(str::to_string);
        TestServer { rt, app, clock, base, database_url, running: Some(running), pg_schema }
    }

    /// A second node on the same database (its own process state, its own port).
    pub fn attach(database_url: &str) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000)));
        let (app, running) = rt.block_on(async {
            let app = paygate::start_with(database_url, clock.clone(), allow_private()).await.expect("paygate starts");
            let running = paygate::serve("127.0.0.1:0", app.clone(), None).await.expect("listens");
            (app, running)
        });
        let base = format!("http://{}", running.addr);
        TestServer {
            rt,
            app,
            clock,
            base,
            database_url: database_url.to_string(),
            running: Some(running),
            pg_schema: None,
        }
    }

    pub fn create_app(&self, name: &str) -> Keys {
        let keys = self.rt.block_on(self.app.create_app(name, None)).unwrap();
        let client_id = keys
            .hserve_clients
            .iter()
            .find(|(_, m)| *m == paygate_domain::Mode::Test)
            .map(|(id, _)| id.clone())
            .unwrap();
        let cred =
            |face: &str| keys.credentials.iter().find(|c| c.face == face && !c.scope.mode.is_live()).cloned().unwrap();
        let (c, s) = (cred("cashier"), cred("saas"));
        Keys {
            app: keys.app.id,
            test: keys.test_secret_key,
            live: keys.live_secret_key,
            client_id,
            cashier: (c.public_id, c.secret.expose_secret().into(), c.token.unwrap_or_default()),
            saas: (s.public_id, s.secret.expose_secret().into()),
        }
    }

    pub fn get(&self, key: &str, path: &str) -> (u16, Value) {
        self.call("GET", key, path, None, &[])
    }

    pub fn post(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", key, path, Some(body.to_string()), &[])
    }

    pub fn put(&self, key: &str, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", key, path, Some(body.to_string()), &[])
    }

    /// One request; returns the status and the parsed JSON body whatever the status.
    pub fn call(
        &self,
        method: &str,
        key: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, _, text) = self.raw(method, key, path, body, headers);
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path} answered non-JSON ({status}): {text}"));
        (status, value)
    }

    /// One request; status, the `idempotent-replayed` header, and the body text.
    pub fn raw(
        &self,
        method: &str,
        key: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, String) {
        let mut req = ureq::request(method, &format!("{}{}", self.base, path)).set("content-type", "application/json");
        if !key.is_empty() {
            req = req.set("authorization", &format!("Bearer {key}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_string(&b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let replayed = resp.header("idempotent-replayed").map(str::to_string);
        (status, replayed, resp.into_string().unwrap())
    }

    pub fn create_order(&self, keys: &Keys, key: &str, merchant_order_no: &str, amount: i64, extra: Value) -> Value {
        let mut body = json!({
            "app": keys.app, "merchant_order_no": merchant_order_no, "amount": amount, "currency": "cny",
            "subject": "Your Subject", "body": "Your Body", "client_ip": "127.0.0.1",
        });
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        let (status, order) = self.post(key, "/v1/orders", body);
        assert_eq!(status, 200, "create order: {order}");
        order
    }

    /// Creates an order, pays it through the sandbox, returns the paid order.
    pub fn paid_order(&self, keys: &Keys, merchant_order_no: &str, amount: i64) -> Value {
        let order = self.create_order(keys, &keys.test, merchant_order_no, amount, json!({}));
        let id = order["id"].as_str().unwrap();
        let (status, paid) = self.post(
            &keys.test,
            &format!("/v1/orders/{id}/pay"),
            json!({"channel": "wx_pub", "extra": {"open_id": "o1"}}),
        );
        assert_eq!(status, 200, "pay: {paid}");
        let ch = paid["charges"]["data"][0]["id"].as_str().unwrap().to_string();
        let (status, charge) =
            self.post(&keys.test, &format!("/v1/sandbox/charges/{ch}/pay"), json!({"result": "success"}));
        assert_eq!(status, 200, "sandbox pay: {charge}");
        let (_, order) = self.get(&keys.test, &format!("/v1/orders/{id}"));
        assert_eq!(order["status"], "paid");
        order
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.rt.block_on(running.stop());
        }
        if let Some(schema) = self.pg_schema.take() {
            self.rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&postgres_admin_url(), tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
                }
            });
        } else if let Some(path) = self.database_url.strip_prefix("sqlite://") {
            if let Some(dir) = std::path::Path::new(path).parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl TestServer {
    /// Runs raw SQL on the test's database, behind paygate's back: for stories that need a
    /// state no API produces (an outbox left damaged by an older version, say).
    pub fn sql(&self, sql: &str) {
        match self.database_url.strip_prefix("sqlite://") {
            Some(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            None => self.rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client.batch_execute(sql).await.unwrap();
            }),
        }
    }
}

impl TestClock {
    pub fn now_for_tests(&self) -> i64 {
        self.now()
    }
}
