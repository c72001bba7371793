//! Several nodes on one PostgreSQL share the outbox without double-sending.

mod support;

use paygate_worker::{Settings, Worker};
use serde_json::json;
use std::collections::HashSet;
use support::receiver::Receiver;
use support::{Backend, TestServer};

#[test]
fn two_nodes_on_one_postgres_deliver_each_event_once() {
    let a = TestServer::start(Backend::Postgres);
    let b = TestServer::attach(&a.database_url);
    let k = a.create_app("shop");
    let rx = Receiver::always(200);
    assert_eq!(a.post(&k.test, "/v1/webhook_endpoints", json!({"url": rx.url})).0, 200);
    for i in 0..60 {
        // Alternate nodes: both serve the same app from the same database.
        let node = if i % 2 == 0 { &a } else { &b };
        node.paid_order(&k, &format!("n{i}"), 100);
    }
    let expected = 120; // charge.succeeded + order.succeeded per payment
    let small = Settings { batch: 7, ..Settings::default() };
    let (wa, wb) = (Worker::new(a.app.clone(), small.clone()), Worker::new(b.app.clone(), small));
    let rx_ref = &rx;
    std::thread::scope(|s| {
        for (node, w) in [(&a, &wa), (&b, &wb)] {
            s.spawn(move || {
                for _ in 0..200 {
                    node.rt.block_on(w.tick()).unwrap();
                    if rx_ref.count() >= expected {
                        break;
                    }
                }
            });
        }
    });
    let ids: Vec<String> = rx.all().iter().map(|r| r.json()["id"].as_str().unwrap().to_string()).collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), expected, "every event delivered");
    assert_eq!(ids.len(), expected, "and none twice while both nodes are healthy");
}
