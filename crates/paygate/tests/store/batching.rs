//! Order creates and retrieves that arrive together. PostgreSQL sends them to the database in
//! batches (one statement each); SQLite's writer commits them in groups. Either way each call is
//! answered as if it ran alone: a duplicate merchant_order_no names the order that holds it, a
//! bad order fails alone, a cancelled call breaks nobody else's, and scope holds.

use crate::support::{self, Backend};
use crate::{app, charge, live, order, test, Db};
use paygate_domain::paging::{OrderFilter, Paging};
use paygate_domain::{Order, Problem, ProblemKind, Scope};
use paygate_store::Store;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

crate::both!(concurrent_creates_and_retrieves);

/// `order(scope, n)` with another merchant_order_no.
fn numbered(scope: &Scope, n: &str, merchant_order_no: &str) -> Order {
    Order { merchant_order_no: merchant_order_no.into(), ..order(scope, n, 100) }
}

async fn count(s: &dyn Store, scope: &Scope) -> usize {
    let page = s.list_orders(scope, &OrderFilter::default(), &Paging::Page { page: 1, per_page: 100 }).await;
    page.unwrap().data.len()
}

/// 60 creates at once in one scope over 20 merchant numbers (three calls each), 20 in another
/// app with the same numbers, then retrieves at once across both apps and both modes.
fn concurrent_creates_and_retrieves(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.clone();
    db.run(async {
        let (a, b) = (app(s.as_ref(), "a", 10).await, app(s.as_ref(), "b", 20).await);
        let (t, other) = (test(&a), test(&b));
        let mut orders: Vec<Order> = (0..60).map(|i| numbered(&t, &format!("a{i}"), &format!("m{}", i % 20))).collect();
        orders.extend((0..20).map(|i| numbered(&other, &format!("b{i}"), &format!("m{i}"))));
        let creates: Vec<_> = orders
            .iter()
            .map(|o| {
                let (s, o) = (s.clone(), o.clone());
                tokio::spawn(async move { s.insert_order(&o).await })
            })
            .collect();
        let mut winners: HashMap<(String, String), String> = HashMap::new();
        let mut refused = Vec::new();
        for (o, created) in orders.iter().zip(creates) {
            match created.await.unwrap() {
                Ok(()) => {
                    let holder = winners.insert((o.app_id.clone(), o.merchant_order_no.clone()), o.id.clone());
                    assert_eq!(holder, None, "{} acknowledged twice", o.merchant_order_no);
                }
                Err(e) => refused.push((o, e)),
            }
        }
        assert_eq!(winners.len(), 40, "every merchant number of each app taken once");
        assert_eq!(refused.len(), 40);
        for (o, e) in &refused {
            assert_eq!((e.kind, e.code), (ProblemKind::Conflict, "duplicate_merchant_order_no"), "{}", e.message);
            let winner = &winners[&(o.app_id.clone(), o.merchant_order_no.clone())];
            assert!(e.message.contains(winner.as_str()), "{} should name {winner}", e.message);
        }
        // What is stored is exactly what was acknowledged.
        assert_eq!((count(s.as_ref(), &t).await, count(s.as_ref(), &other).await), (20, 20));

        // Retrieves at once: each order in its own scope only.
        let asks: Vec<(Scope, String, bool)> = orders
            .iter()
            .flat_map(|o| {
                let own = if o.app_id == a.id { t.clone() } else { other.clone() };
                let stranger = if o.app_id == a.id { other.clone() } else { t.clone() };
                let stored = winners.values().any(|id| id == &o.id);
                [(own, o.id.clone(), stored), (stranger, o.id.clone(), false), (live(&a), o.id.clone(), false)]
            })
            .collect();
        let views: Vec<_> = asks
            .iter()
            .map(|(scope, id, _)| {
                let (s, scope, id) = (s.clone(), scope.clone(), id.clone());
                tokio::spawn(async move { s.order_view(&scope, &id).await })
            })
            .collect();
        for ((scope, id, found), view) in asks.iter().zip(views) {
            let view = view.await.unwrap().unwrap();
            assert_eq!(view.is_some(), *found, "{id} in {scope:?}");
            if let Some(v) = view {
                assert_eq!((&v.order.id, &v.order.app_id, v.order.mode), (id, &scope.app_id, scope.mode));
            }
        }
    });
}

type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T, Problem>> + Send + 'a>>;

/// Polls a call once: it is then queued behind the batch that is running.
fn queue_now<T>(call: &mut Call<'_, T>) {
    assert!(call.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending(), "the call should wait");
}

/// A connection of the test's own that holds a lock on `orders` while calls pile up.
struct Blocker(tokio_postgres::Client);

impl Blocker {
    async fn connect(url: &str) -> Blocker {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        Blocker(client)
    }

    async fn lock(&self, mode: &str) {
        self.0.batch_execute(&format!("BEGIN; LOCK TABLE orders IN {mode} MODE")).await.unwrap();
    }

    /// Until a call waits for the lock: its batch (a batch of one) is running.
    async fn until_waited_for(&self) {
        let start = Instant::now();
        let sql = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'orders'::regclass";
        while self.0.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) == 0 {
            assert!(start.elapsed() < Duration::from_secs(10), "no call ever waited for the lock");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn release(&self) {
        self.0.batch_execute("ROLLBACK").await.unwrap();
    }

    async fn count(&self, where_: &str) -> i64 {
        self.0.query_one(&format!("SELECT count(*) FROM orders WHERE {where_}"), &[]).await.unwrap().get(0)
    }
}

/// PostgreSQL's batches, made certain: a store with one connection (one batch in flight) whose
/// first call waits behind a table lock while the calls under test queue; when the lock goes,
/// the queued calls are one batch.
#[test]
fn postgres_batches() {
    let db = Db::open(Backend::Postgres);
    let s = db.store.as_ref();
    db.run(async {
        let (a, b) = (app(s, "a", 10).await, app(s, "b", 20).await);
        let (t, other) = (test(&a), test(&b));
        s.insert_order(&numbered(&t, "old", "m_taken")).await.unwrap();
        let store = paygate::open_store(&db.url, 1).unwrap();
        let blocker = Blocker::connect(&db.url).await;

        // 1. Duplicates inside one batch and against a stored order; the same number in another
        // app and mode; a call cancelled while queued, and the first call's caller gone while
        // its batch runs.
        let orders = [
            numbered(&t, "first", "m_first"),
            numbered(&t, "d1", "m_dup"),
            numbered(&t, "d2", "m_dup"),
            numbered(&t, "t", "m_taken"),
            numbered(&other, "b1", "m_dup"),
            numbered(&live(&a), "l1", "m_dup"),
            numbered(&t, "x", "m_x"),
            numbered(&t, "g1", "m_g1"),
            numbered(&t, "d3", "m_dup"),
            numbered(&t, "g2", "m_g2"),
        ];
        blocker.lock("SHARE").await;
        let mut calls: Vec<Call<'_, ()>> = orders.iter().map(|o| store.insert_order(o)).collect();
        queue_now(&mut calls[0]);
        blocker.until_waited_for().await;
        calls[1..].iter_mut().for_each(queue_now);
        drop(calls.remove(6));
        drop(calls.remove(0));
        blocker.release().await;
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await);
        }
        let duplicate_of = |e: &Problem, id: &str| e.code == "duplicate_merchant_order_no" && e.message.contains(id);
        let [d1, d2, taken, b1, l1, g1, d3, g2] = answers.try_into().unwrap();
        assert!(d1.is_ok() && b1.is_ok() && l1.is_ok() && g1.is_ok() && g2.is_ok());
        assert!(duplicate_of(&d2.unwrap_err(), "o_d1") && duplicate_of(&d3.unwrap_err(), "o_d1"));
        assert!(duplicate_of(&taken.unwrap_err(), "o_old"));
        // The first call's batch ran to its commit without its caller; the call cancelled
        // while queued never ran.
        assert_eq!(blocker.count("id = 'o_first'").await, 1);
        assert_eq!(blocker.count("id = 'o_x'").await, 0);
        assert_eq!(blocker.count("id IN ('o_d2', 'o_d3', 'o_t')").await, 0);
        assert_eq!(blocker.count("TRUE").await, 7, "old, first, d1, b1, l1, g1, g2");

        // 2. A batch whose statement fails (a NUL byte; a CHECK) is retried row by row: only the
        // bad rows fail, each with its own answer.
        let nul = Order { subject: "a\0b".into(), ..numbered(&t, "nul", "m_nul") };
        let check = Order { amount_paid: crate::fen(101), ..numbered(&t, "check", "m_check") };
        let orders = [
            numbered(&t, "first2", "m_first2"),
            numbered(&t, "g3", "m_g3"),
            nul,
            check,
            numbered(&t, "d4", "m_dup"),
            numbered(&t, "g4", "m_g4"),
        ];
        blocker.lock("SHARE").await;
        let mut calls: Vec<Call<'_, ()>> = orders.iter().map(|o| store.insert_order(o)).collect();
        queue_now(&mut calls[0]);
        blocker.until_waited_for().await;
        calls[1..].iter_mut().for_each(queue_now);
        blocker.release().await;
        let mut answers = Vec::new();
        for call in calls {
            answers.push(call.await);
        }
        let [first2, g3, nul, check, d4, g4] = answers.try_into().unwrap();
        assert!(first2.is_ok() && g3.is_ok() && g4.is_ok());
        let nul = nul.unwrap_err();
        assert_eq!((nul.kind, nul.param.as_deref()), (ProblemKind::InvalidRequest, Some("body")), "{}", nul.message);
        assert_eq!(check.unwrap_err().kind, ProblemKind::Internal);
        assert!(duplicate_of(&d4.unwrap_err(), "o_d1"));
        assert_eq!(blocker.count("id IN ('o_nul', 'o_check', 'o_d4')").await, 0);
        assert_eq!(blocker.count("TRUE").await, 10);

        // 3. Retrieves of several apps and modes in one batch: each answered from its own scope,
        // an order asked twice read with its charges once.
        let d1 = s.order(&t, "o_d1").await.unwrap().unwrap();
        s.open_charge(&t, &charge(&d1, "c1", "alipay")).await.unwrap();
        s.open_charge(&t, &charge(&d1, "c2", "wx")).await.unwrap();
        let asks = [
            (t.clone(), "o_g1"),
            (t.clone(), "o_d1"),
            (other.clone(), "o_d1"),
            (live(&a), "o_d1"),
            (t.clone(), "o_d1"),
            (other.clone(), "o_b1"),
            (t.clone(), "o_b1"),
            (live(&a), "o_l1"),
            (t.clone(), "o_nope"),
        ];
        blocker.lock("ACCESS EXCLUSIVE").await;
        let mut calls: Vec<Call<'_, _>> = asks.iter().map(|(scope, id)| store.order_view(scope, id)).collect();
        queue_now(&mut calls[0]);
        blocker.until_waited_for().await;
        calls[1..].iter_mut().for_each(queue_now);
        blocker.release().await;
        let mut seen = Vec::new();
        for call in calls {
            let view = call.await.unwrap();
            seen.push(view.map(|v| (v.order.id, v.charges.into_iter().map(|c| c.id).collect::<Vec<_>>())));
        }
        let view = |id: &str, charges: &[&str]| Some((id.to_string(), charges.iter().map(|c| c.to_string()).collect()));
        let d1_view = view("o_d1", &["ch_c2", "ch_c1"]);
        let expected =
            [view("o_g1", &[]), d1_view.clone(), None, None, d1_view, view("o_b1", &[]), None, view("o_l1", &[]), None];
        assert_eq!(seen, expected);
    });
}
