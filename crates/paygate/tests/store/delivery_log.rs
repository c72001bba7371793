//! The console's delivery log (`DeliveryLogStore`): one query over the mode's deliveries, merged across endpoints
//! newest first, paged by cursor without losing or repeating a row, filtered by endpoint and status, each row with
//! its latest attempt; another app's or mode's deliveries never show.

use crate::outbox::endpoint;
use crate::support::{self, Backend};
use crate::{app, live, paid, test, Db, NOW};
use paygate_store::console_webhooks::{DeliveryLogFilter, DeliveryLogRow};
use paygate_store::{Attempt, AttemptRecord, AttemptResult, Claim};

crate::both!(the_log_merges_endpoints_newest_first);

fn filter(endpoint: Option<&str>, status: Option<&str>, before: Option<i64>) -> DeliveryLogFilter {
    DeliveryLogFilter { endpoint_id: endpoint.map(str::to_string), status: status.map(str::to_string), before }
}

fn the_log_merges_endpoints_newest_first(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let (a, other) = (app(s, "a", 10).await, app(s, "other", 20).await);
        let t = test(&a);
        s.create_endpoint(&endpoint("all", &t, None), None).await.unwrap();
        s.create_endpoint(&endpoint("orders", &t, Some(&["order.succeeded"])), None).await.unwrap();
        s.create_endpoint(&endpoint("live", &live(&a), None), None).await.unwrap();
        s.create_endpoint(&endpoint("other", &test(&other), None), None).await.unwrap();
        // Each payment: charge.succeeded to we_all, order.succeeded to we_all and we_orders; the live and the
        // other app's payments go to endpoints this log must not show.
        for n in 0..3 {
            paid(s, &t, &format!("t{n}"), 100, "wx").await;
            paid(s, &live(&a), &format!("l{n}"), 100, "wx").await;
            paid(s, &test(&other), &format!("o{n}"), 100, "wx").await;
        }

        let all = s.delivery_log(&t, &filter(None, None, None), 100).await.unwrap();
        assert_eq!(all.len(), 9, "{all:?}");
        assert!(all.windows(2).all(|w| w[0].seq > w[1].seq), "newest first: {all:?}");
        let count = |endpoint: &str, kind: &str| {
            all.iter().filter(|r| r.endpoint_id == endpoint && r.event_type == kind).count()
        };
        assert_eq!([count("we_all", "order.succeeded"), count("we_all", "charge.succeeded")], [3, 3], "{all:?}");
        assert_eq!([count("we_orders", "order.succeeded"), count("we_orders", "charge.succeeded")], [3, 0]);
        assert!(all.iter().all(|r| r.status == "pending" && r.attempts == 0 && r.last_attempt.is_none()));

        // Pages of 4 by cursor: the same rows, none lost or repeated.
        let mut paged: Vec<DeliveryLogRow> = Vec::new();
        loop {
            let before = paged.last().map(|r| r.seq);
            let page = s.delivery_log(&t, &filter(None, None, before), 4).await.unwrap();
            assert!(page.len() <= 4);
            let done = page.len() < 4;
            paged.extend(page);
            if done {
                break;
            }
        }
        assert_eq!(paged, all);

        let orders = s.delivery_log(&t, &filter(Some("we_orders"), None, None), 2).await.unwrap();
        let newest_two: Vec<&DeliveryLogRow> = all.iter().filter(|r| r.endpoint_id == "we_orders").take(2).collect();
        assert_eq!(orders.iter().collect::<Vec<_>>(), newest_two);
        for (scope, endpoint) in [(&t, "we_other"), (&t, "we_live"), (&live(&a), "we_all")] {
            let none = s.delivery_log(scope, &filter(Some(endpoint), None, None), 100).await.unwrap();
            assert!(none.is_empty(), "{endpoint}: {none:?}");
        }

        // One delivery sent: it alone is delivered, with its attempt; the others stay pending.
        let claim = Claim { now: NOW + 10, lease_until: NOW + 70, limit: 1, per_endpoint: 1 };
        let claimed = s.claim_deliveries(&claim).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let sent = Attempt {
            attempted_at: NOW + 11,
            status_code: Some(200),
            latency_ms: 7,
            error: None,
            response_snippet: Some("ok".into()),
        };
        let record = AttemptRecord {
            seq: claimed[0].seq,
            event_created: claimed[0].event.created,
            lease_until: claimed[0].lease_until,
            attempt: sent.clone(),
            result: AttemptResult::Delivered,
        };
        s.record_attempts(&[record]).await.unwrap();
        let scope = paygate_domain::Scope { app_id: claimed[0].event.app_id.clone(), mode: claimed[0].event.mode };
        let delivered = s.delivery_log(&scope, &filter(None, Some("delivered"), None), 100).await.unwrap();
        assert_eq!(delivered.len(), 1, "{delivered:?}");
        assert_eq!((delivered[0].seq, delivered[0].last_attempt.clone()), (claimed[0].seq, Some(sent)));
        let pending = s.delivery_log(&scope, &filter(None, Some("pending"), None), 100).await.unwrap();
        let of_scope = s.delivery_log(&scope, &filter(None, None, None), 100).await.unwrap();
        assert_eq!(pending.len(), of_scope.len() - 1);
        assert!(pending.iter().all(|r| r.status == "pending" && r.seq != claimed[0].seq));
    });
}
