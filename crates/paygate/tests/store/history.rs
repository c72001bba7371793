//! The outbox history over time: PostgreSQL's monthly partitions created ahead, events listed and
//! retrieved across month boundaries, retention that removes only what is old and finished (whole
//! months on PostgreSQL, batches on SQLite), and a database migrated with its events.

use crate::support::{self, Backend};
use crate::{app, order, test, Db, NOW};
use paygate_domain::events::Event;
use paygate_domain::paging::{CreatedRange, Paging};
use paygate_domain::Scope;
use paygate_store::{Attempt, AttemptRecord, AttemptResult, Backend as _, Claim, NewEndpoint, Store};

crate::both!(months_listing_and_retention, a_migrated_database_keeps_its_events);

/// 2026-12-01T00:00:00Z, 2027-01-01 and 2027-02-01 (NOW is 2027-01-15T08:00Z).
const DEC: i64 = 1_796_083_200;
const JAN: i64 = 1_798_761_600;
const FEB: i64 = 1_801_440_000;
/// November 2023: no partition is ever made for it here, so on PostgreSQL its rows stay in the
/// default partitions.
const OLD: i64 = 1_700_000_000;

fn endpoint(scope: &Scope) -> NewEndpoint {
    NewEndpoint {
        id: "we_all".into(),
        scope: scope.clone(),
        created: OLD,
        url: "https://example.com/all".into(),
        secret: "whsec_all".into(),
        types: None,
    }
}

/// An order `o_<n>` canceled at `at`: one `order.canceled` event created then.
async fn canceled_at(s: &dyn Store, scope: &Scope, n: &str, at: i64) -> Event {
    s.insert_order(&order(scope, n, 100)).await.unwrap();
    s.cancel_order(scope, &format!("o_{n}"), at).await.unwrap().unwrap();
    let all = s.list_events(scope, None, &CreatedRange::default(), &cursor(1, None)).await.unwrap();
    all.data.into_iter().next().unwrap()
}

fn cursor(limit: i64, starting_after: Option<&Event>) -> Paging {
    Paging::Cursor { limit, starting_after: starting_after.map(|e| e.id.clone()), ending_before: None }
}

/// The orders the listed events are about, in the order listed.
async fn listed(s: &dyn Store, scope: &Scope, created: CreatedRange) -> Vec<String> {
    let page = s.list_events(scope, None, &created, &cursor(100, None)).await.unwrap();
    page.data.iter().map(|e| e.object["id"].as_str().unwrap().to_string()).collect()
}

fn attempt(d: &paygate_store::DueDelivery, at: i64, result: AttemptResult) -> AttemptRecord {
    let attempt =
        Attempt { attempted_at: at, status_code: Some(200), latency_ms: 1, error: None, response_snippet: None };
    AttemptRecord { seq: d.seq, event_created: d.event.created, lease_until: d.lease_until, attempt, result }
}

/// The partition (PostgreSQL) an event's row is in.
async fn partition_of(db: &Db, id: &str) -> String {
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client.query_one("SELECT tableoid::regclass::text FROM events WHERE id = $1", &[&id]).await.unwrap();
    row.get(0)
}

fn months_listing_and_retention(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    let pg = backend == Backend::Postgres;
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        s.create_endpoint(&endpoint(&t), None).await.unwrap();

        // Months are made ahead (whatever the wall clock made at migration), once.
        s.prepare_outbox_months(DEC + 86_400, 2).await.unwrap();
        assert_eq!(s.prepare_outbox_months(DEC, 2).await.unwrap(), 0);
        let months = s.outbox_months().await.unwrap();
        if pg {
            for m in [(DEC, JAN), (JAN, FEB)] {
                assert!(months.contains(&m), "{m:?} in {months:?}");
            }
            assert!(months.iter().any(|&(start, _)| start == FEB), "February made ahead: {months:?}");
        } else {
            assert!(months.is_empty(), "SQLite keeps plain tables");
        }

        // Events on both sides of a month boundary, and one from a month that has no partition.
        let old = canceled_at(s, &t, "old", OLD).await;
        let dec = canceled_at(s, &t, "dec", JAN - 1).await;
        let jan = canceled_at(s, &t, "jan", JAN).await;
        let late = canceled_at(s, &t, "late", NOW).await;
        if pg {
            assert_eq!(partition_of(&db, &old.id).await, "events_default");
            assert_eq!(partition_of(&db, &dec.id).await, "events_202612");
            assert_eq!(partition_of(&db, &jan.id).await, "events_202701");
        }
        assert_eq!(listed(s, &t, CreatedRange::default()).await, ["o_late", "o_jan", "o_dec", "o_old"]);
        let january = CreatedRange { gte: Some(JAN), lt: Some(FEB), ..Default::default() };
        assert_eq!(listed(s, &t, january).await, ["o_late", "o_jan"]);
        let to_january = CreatedRange { lte: Some(JAN), gt: Some(OLD), ..Default::default() };
        assert_eq!(listed(s, &t, to_january).await, ["o_jan", "o_dec"]);
        // A cursor walks from one month into the previous one.
        let page = s.list_events(&t, None, &CreatedRange::default(), &cursor(1, Some(&jan))).await.unwrap();
        assert_eq!((page.data[0].id.as_str(), page.has_more), (dec.id.as_str(), true));
        for e in [&old, &dec, &jan, &late] {
            let found = s.event(&t, &e.id).await.unwrap().expect("retrieved");
            assert_eq!((found.created, found.pending_webhooks), (e.created, 1));
        }

        // Everything is sent at NOW; all but December's delivery gets through.
        let claim = Claim { now: NOW, lease_until: NOW + 60, limit: 10, per_endpoint: 10 };
        let due = s.claim_deliveries(&claim).await.unwrap();
        assert_eq!(due.len(), 4);
        let records: Vec<AttemptRecord> = due
            .iter()
            .map(|d| match d.event.id == dec.id {
                true => attempt(d, NOW, AttemptResult::RetryAt(NOW + 600)),
                false => attempt(d, NOW, AttemptResult::Delivered),
            })
            .collect();
        s.record_attempts(&records).await.unwrap();

        // Retention up to JAN + 1 day: November 2023 goes (old and delivered); December, past it too,
        // stays while its delivery is pending; January is not past it (PostgreSQL keeps whole
        // months; SQLite, deleting event by event, removes `jan` too).
        let cutoff = JAN + 86_400;
        let pass = s.drop_outbox_months(cutoff).await.unwrap();
        let mut trimmed = 0;
        loop {
            let n = s.trim_outbox_history(cutoff, 1).await.unwrap();
            trimmed += n;
            if n < 1 {
                break;
            }
        }
        assert!(s.event(&t, &old.id).await.unwrap().is_none(), "old and delivered: gone");
        assert!(s.deliveries(&t, &old.id).await.unwrap().is_empty());
        assert!(s.event(&t, &dec.id).await.unwrap().is_some(), "pending: kept");
        assert!(s.event(&t, &late.id).await.unwrap().is_some(), "not past retention: kept");
        if pg {
            assert!(pass.kept >= 1, "December kept for its pending delivery: {pass:?}");
            assert!(s.outbox_months().await.unwrap().contains(&(DEC, JAN)));
            assert_eq!(trimmed, 1, "the default partition's old event");
            assert!(s.event(&t, &jan.id).await.unwrap().is_some(), "its month is not over: kept");
        } else {
            assert_eq!(pass, Default::default());
            assert_eq!(trimmed, 2, "old and jan");
            assert!(s.event(&t, &jan.id).await.unwrap().is_none());
        }

        // December's delivery gets through: now its month (or event) goes too.
        let retry = Claim { now: NOW + 600, lease_until: NOW + 660, ..claim };
        let due = s.claim_deliveries(&retry).await.unwrap();
        assert_eq!(due.iter().map(|d| d.event.id.as_str()).collect::<Vec<_>>(), [dec.id.as_str()]);
        s.record_attempts(&[attempt(&due[0], NOW + 600, AttemptResult::Delivered)]).await.unwrap();
        let pass = s.drop_outbox_months(cutoff).await.unwrap();
        while s.trim_outbox_history(cutoff, 1).await.unwrap() == 1 {}
        assert!(s.event(&t, &dec.id).await.unwrap().is_none(), "delivered and old: gone");
        assert_eq!(listed(s, &t, CreatedRange::default()).await[0], "o_late");
        if pg {
            assert!(pass.dropped >= 1, "{pass:?}");
            assert!(!s.outbox_months().await.unwrap().contains(&(DEC, JAN)));
            // An event of a dropped month still has somewhere to go: the default partition.
            let again = canceled_at(s, &t, "dec2", JAN - 10).await;
            assert_eq!(partition_of(&db, &again.id).await, "events_default");
            assert!(s.event(&t, &again.id).await.unwrap().is_some());
        }
    });
}

/// Applies the migrations before this one (PostgreSQL 7, SQLite 8) the way an older paygate did.
async fn migrate_before_partitions(backend: Backend, url: &str) {
    let (migrations, before) = match backend {
        Backend::Sqlite => (paygate_store_sqlite::SqliteStore::MIGRATIONS, 8),
        Backend::Postgres => (paygate_store_postgres::PostgresStore::MIGRATIONS, 7),
    };
    let mut script =
        String::from("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL);");
    for (version, sql) in migrations.iter().filter(|(v, _)| *v < before) {
        script.push_str(sql);
        script.push_str(&format!(";\nINSERT INTO schema_migrations (version, applied) VALUES ({version}, 0);\n"));
    }
    // An endpoint, three events (two delivered, one pending with a failed attempt) as stored then.
    script.push_str(
        "INSERT INTO webhook_endpoints (id, app_id, livemode, created, url, secret, all_events) \
         VALUES ('we_1', 'app_a', FALSE, 1, 'https://example.com/1', 'whsec_1', TRUE);
         INSERT INTO events (id, app_id, livemode, created, type, data) VALUES
           ('evt_m1', 'app_a', FALSE, 1700000000, 'order.canceled', '{\"id\": \"o_1\"}'),
           ('evt_m2', 'app_a', FALSE, 1790000000, 'order.canceled', '{\"id\": \"o_2\"}'),
           ('evt_m3', 'app_a', FALSE, 1799000000, 'order.canceled', '{\"id\": \"o_3\"}');
         INSERT INTO deliveries (event_id, endpoint_id, created, status, attempts, next_attempt_at) VALUES
           ('evt_m1', 'we_1', 1700000000, 'delivered', 1, 1700000000),
           ('evt_m2', 'we_1', 1790000000, 'delivered', 1, 1790000000),
           ('evt_m3', 'we_1', 1799000000, 'pending', 1, 1799000100);
         INSERT INTO delivery_attempts (delivery_seq, attempted_at, status_code, latency_ms) VALUES
           (1, 1700000001, 200, 3), (2, 1790000001, 200, 3), (3, 1799000001, 500, 3);",
    );
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(url.strip_prefix("sqlite://").unwrap()).unwrap();
            conn.execute_batch(&script).unwrap();
        }
        Backend::Postgres => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.batch_execute(&script).await.unwrap();
        }
    }
}

fn a_migrated_database_keeps_its_events(backend: Backend) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let url = support::fresh_database(&rt, backend);
    rt.block_on(migrate_before_partitions(backend, &url));
    let store = paygate::open_store(&url, 4).expect("store opens");
    rt.block_on(store.migrate()).expect("migrates");
    let db = Db { rt, store, url };
    let s = db.store.as_ref();
    db.run(async {
        let t = Scope { app_id: "app_a".into(), mode: paygate_domain::Mode::Test };
        let paging = cursor(10, None);
        let all = s.list_events(&t, None, &CreatedRange::default(), &paging).await.unwrap();
        assert_eq!(all.data.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["evt_m3", "evt_m2", "evt_m1"]);
        let pending = all.data.iter().map(|e| e.pending_webhooks).collect::<Vec<_>>();
        assert_eq!(pending, [1, 0, 0]);
        let m3 = s.event(&t, "evt_m3").await.unwrap().expect("kept");
        assert_eq!((m3.created, m3.object["id"].as_str()), (1_799_000_000, Some("o_3")));
        let views = s.deliveries(&t, "evt_m1").await.unwrap();
        assert_eq!((views.len(), views[0].status.as_str(), views[0].log[0].status_code), (1, "delivered", Some(200)));
        if backend == Backend::Postgres {
            assert_eq!(partition_of(&db, "evt_m1").await, "events_202311");
            assert_eq!(partition_of(&db, "evt_m3").await, "events_202701");
        }
        // The pending delivery is claimed with its event; the log goes on where it was.
        let claim = Claim { now: NOW, lease_until: NOW + 60, limit: 10, per_endpoint: 10 };
        let due = s.claim_deliveries(&claim).await.unwrap();
        assert_eq!((due.len(), due[0].event.id.as_str(), due[0].attempts), (1, "evt_m3", 1));
        s.record_attempts(&[attempt(&due[0], NOW, AttemptResult::Delivered)]).await.unwrap();
        let views = s.deliveries(&t, "evt_m3").await.unwrap();
        let log: Vec<_> = views[0].log.iter().map(|a| a.status_code).collect();
        assert_eq!((views[0].status.as_str(), log), ("delivered", vec![Some(500), Some(200)]));
        // New rows number on after the migrated ones: a new event lists first.
        let a = app(s, "a", 10).await;
        assert_eq!(a.id, "app_a");
        let fresh = canceled_at(s, &t, "new", 1_700_000_000).await;
        let all = s.list_events(&t, None, &CreatedRange::default(), &paging).await.unwrap();
        assert_eq!(all.data[0].id, fresh.id, "the newest event lists first whatever its created");
    });
}
