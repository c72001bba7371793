//! The store suite: every method of `Store`, `HserveStore`, `ShareStore` and `PosStore`, error
//! paths included (not found, duplicates, conditional updates that refuse, another app's or
//! mode's objects), run through `dyn Store` against a fresh SQLite file and a fresh PostgreSQL
//! schema (`both!`): the two backends must answer alike.

#[path = "../support/mod.rs"]
mod support;

mod apps;
mod batching;
mod console;
mod console_audited;
mod delivery_log;
mod faces;
mod history;
mod lists;
mod orders;
mod outbox;

use paygate_domain::{Amount, App, Charge, ChargeStatus, Currency, LatePayment, Mode, Order, OrderStatus, Scope};
use paygate_store::{ApiKeyRecord, ChargeOutcome, FaceCredential, SettledCharge, Store};
use serde_json::json;
use std::future::Future;
use std::sync::Arc;
use support::Backend;

/// The time every story starts at.
pub const NOW: i64 = 1_800_000_000;

/// A fresh, migrated database and its store; dropped with the test.
pub struct Db {
    rt: tokio::runtime::Runtime,
    pub store: Arc<dyn Store>,
    url: String,
}

impl Db {
    pub fn open(backend: Backend) -> Db {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let url = support::fresh_database(&rt, backend);
        let store = paygate::open_store(&url, 4).expect("store opens");
        rt.block_on(store.migrate()).expect("migrates");
        Db { rt, store, url }
    }

    pub fn run<T>(&self, f: impl Future<Output = T>) -> T {
        self.rt.block_on(f)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(schema) = self.url.split("search_path%3D").nth(1) {
            let admin = support::postgres_admin_url();
            self.rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).await;
                }
            });
        } else if let Some(path) = self.url.strip_prefix("sqlite://") {
            if let Some(dir) = std::path::Path::new(path).parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

pub fn test(app: &App) -> Scope {
    Scope { app_id: app.id.clone(), mode: Mode::Test }
}

pub fn live(app: &App) -> Scope {
    Scope { app_id: app.id.clone(), mode: Mode::Live }
}

pub fn fen(n: i64) -> Amount {
    Amount::from_stored(n)
}

/// A key record whose hash is `hash` repeated (a test needs distinct hashes, not real ones).
pub fn key(hash: u8, mode: Mode) -> ApiKeyRecord {
    ApiKeyRecord { key_hash: vec![hash; 32], mode, hint: format!("k{hash:03}") }
}

/// An app `app_<name>` with a key per mode (hashes `seed`, `seed + 1`), a 知晓云 client id per
/// mode (`cl_<name>_test|live`) and a cashier credential per mode (`kd_<name>_test|live`).
pub async fn app(store: &dyn Store, name: &str, seed: u8) -> App {
    let app = App {
        id: format!("app_{name}"),
        name: name.into(),
        created: NOW + seed as i64,
        public_key_pem: None,
        late_payment: LatePayment::Refund,
        max_share_bps: paygate_domain::shares::DEFAULT_MAX_SHARE_BPS,
    };
    let keys = [key(seed, Mode::Test), key(seed + 1, Mode::Live)];
    let clients = [(format!("cl_{name}_test"), Mode::Test), (format!("cl_{name}_live"), Mode::Live)];
    let credentials = [Mode::Test, Mode::Live].map(|mode| FaceCredential {
        public_id: format!("kd_{name}_{}", mode.name()),
        face: "cashier".into(),
        scope: Scope { app_id: app.id.clone(), mode },
        secret: format!("secret-of-{name}-{}", mode.name()).into(),
        token: Some(format!("UT{name}")),
    });
    store.create_app(&app, &keys, &clients, &credentials).await.expect("app created");
    app
}

/// An unpaid order `o_<n>` (merchant number `m_<n>`) expiring an hour from [`NOW`].
pub fn order(scope: &Scope, n: &str, amount: i64) -> Order {
    Order {
        id: format!("o_{n}"),
        app_id: scope.app_id.clone(),
        mode: scope.mode,
        created: NOW,
        status: OrderStatus::Created,
        uid: None,
        merchant_order_no: format!("m_{n}"),
        amount: fen(amount),
        coupon_amount: Amount::ZERO,
        actual_amount: fen(amount),
        amount_paid: Amount::ZERO,
        amount_refunded: Amount::ZERO,
        refund_reserved: Amount::ZERO,
        has_refunds: false,
        currency: Currency::Cny,
        subject: "subject".into(),
        body: "body".into(),
        client_ip: "127.0.0.1".into(),
        time_paid: None,
        time_expire: NOW + 3600,
        description: None,
        metadata: Some(json!({"n": n})),
        receipt_app: scope.app_id.clone(),
        service_app: scope.app_id.clone(),
        profit_sharing: false,
        share_reserved: Amount::ZERO,
        sharing_finished: false,
    }
}

/// A pending charge `ch_<n>` (channel order number `co_<n>`) for the whole of `order`.
pub fn charge(order: &Order, n: &str, channel: &str) -> Charge {
    Charge {
        id: format!("ch_{n}"),
        order_id: order.id.clone(),
        app_id: order.app_id.clone(),
        mode: order.mode,
        created: NOW,
        status: ChargeStatus::Pending,
        channel: channel.into(),
        channel_order_no: format!("co_{n}"),
        amount: order.actual_amount,
        amount_refunded: Amount::ZERO,
        currency: Currency::Cny,
        client_ip: "127.0.0.1".into(),
        subject: order.subject.clone(),
        body: order.body.clone(),
        extra: json!({}),
        credential: json!({"object": "credential"}),
        time_paid: None,
        time_expire: order.time_expire,
        transaction_no: None,
        failure_code: None,
        failure_msg: None,
        metadata: json!({}),
        description: None,
        notification: None,
        settlement: None,
        member_id: None,
        order_no: order.merchant_order_no.clone(),
        reversed: false,
    }
}

pub fn success(transaction_no: &str) -> ChargeOutcome {
    ChargeOutcome::Succeeded {
        transaction_no: transaction_no.into(),
        time_paid: NOW + 10,
        notification: Some(json!({"result_code": "SUCCESS"})),
        settlement: Some(json!({"fee": 1})),
    }
}

/// Order `o_<n>` paid through charge `ch_<n>` on `channel` (transaction number `tx_<n>`).
pub async fn paid(store: &dyn Store, scope: &Scope, n: &str, amount: i64, channel: &str) -> (Order, Charge) {
    let mut o = order(scope, n, amount);
    o.profit_sharing = true;
    store.insert_order(&o).await.unwrap();
    store.open_charge(scope, &charge(&o, n, channel)).await.unwrap();
    match store.settle_charge(scope, &format!("ch_{n}"), &success(&format!("tx_{n}"))).await.unwrap() {
        SettledCharge::Settled { charge, order } => (order, charge),
        other => panic!("not settled: {other:?}"),
    }
}

/// The event types `scope` has, oldest first.
pub async fn event_types(store: &dyn Store, scope: &Scope) -> Vec<String> {
    let paging = paygate_domain::paging::Paging::Cursor { limit: 100, starting_after: None, ending_before: None };
    let page = store.list_events(scope, None, &Default::default(), &paging).await.unwrap();
    page.data.into_iter().rev().map(|e| e.kind).collect()
}
