//! Events, webhook endpoints, delivery claims and attempts, resends, outbox figures, and
//! idempotency keys.

use crate::support::{self, Backend};
use crate::{app, live, paid, test, Db, NOW};
use paygate_domain::paging::{CreatedRange, Paging};
use paygate_domain::ProblemKind;
use paygate_store::{Attempt, AttemptRecord, AttemptResult, Claim, IdempotencyBegin, NewEndpoint};
use paygate_store::{IDEMPOTENCY_LEASE_SECONDS, IDEMPOTENCY_TTL_SECONDS};

crate::both!(events_and_deliveries, idempotency_keys);

/// Endpoint `we_<n>` of `scope` at `https://example.com/<n>`, subscribed to `types` (every type when `None`).
pub(crate) fn endpoint(n: &str, scope: &paygate_domain::Scope, types: Option<&[&str]>) -> NewEndpoint {
    NewEndpoint {
        id: format!("we_{n}"),
        scope: scope.clone(),
        created: NOW,
        url: format!("https://example.com/{n}"),
        secret: format!("whsec_{n}"),
        types: types.map(|t| t.iter().map(|s| s.to_string()).collect()),
    }
}

fn attempt(at: i64, status: Option<i64>) -> Attempt {
    Attempt { attempted_at: at, status_code: status, latency_ms: 5, error: None, response_snippet: Some("ok".into()) }
}

fn events_and_deliveries(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        let stats = s.outbox_stats(NOW).await.unwrap();
        assert_eq!((stats.pending, stats.oldest_pending_age_seconds), (0, 0));
        s.create_endpoint(&endpoint("all", &t, None), None).await.unwrap();
        s.create_endpoint(&endpoint("orders", &t, Some(&["order.succeeded"])), None).await.unwrap();
        s.create_endpoint(&endpoint("live", &live(&a), None), None).await.unwrap();
        let listed = s.endpoints(&t).await.unwrap();
        assert_eq!(listed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["we_all", "we_orders"]);
        assert_eq!((listed[0].types.clone(), listed[1].types.clone()), (None, Some(vec!["order.succeeded".into()])));

        // A payment writes charge.succeeded (to we_all) and order.succeeded (to both).
        paid(s, &t, "1", 100, "wx").await;
        let stats = s.outbox_stats(NOW + 100).await.unwrap();
        assert_eq!((stats.pending, stats.oldest_pending_age_seconds), (3, 90));
        let paging = Paging::Cursor { limit: 10, starting_after: None, ending_before: None };
        let events = s.list_events(&t, None, &CreatedRange::default(), &paging).await.unwrap();
        assert_eq!(
            events.data.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["order.succeeded", "charge.succeeded"]
        );
        let (order_event, charge_event) = (events.data[0].clone(), events.data[1].clone());
        assert_eq!((order_event.pending_webhooks, charge_event.pending_webhooks), (2, 1));
        assert_eq!(s.event(&t, &order_event.id).await.unwrap().unwrap(), order_event);
        assert!(s.event(&live(&a), &order_event.id).await.unwrap().is_none());
        let only = s.list_events(&t, Some("charge.succeeded"), &CreatedRange::default(), &paging).await.unwrap();
        assert_eq!(only.data.len(), 1);
        let after = Paging::Cursor { limit: 1, starting_after: Some(order_event.id.clone()), ending_before: None };
        let page = s.list_events(&t, None, &CreatedRange::default(), &after).await.unwrap();
        assert_eq!((page.data[0].id.as_str(), page.has_more), (charge_event.id.as_str(), false));
        let unknown = Paging::Cursor { limit: 1, starting_after: Some("evt_nope".into()), ending_before: None };
        let refused = s.list_events(&t, None, &CreatedRange::default(), &unknown).await.unwrap_err();
        assert_eq!(refused.param.as_deref(), Some("starting_after"));
        let late = CreatedRange { gt: Some(NOW + 10), ..Default::default() };
        assert!(s.list_events(&t, None, &late, &paging).await.unwrap().data.is_empty());

        // Claims: at most one lease per endpoint here, so two of three; then none until it runs out.
        let claim = Claim { now: NOW + 100, lease_until: NOW + 160, limit: 10, per_endpoint: 1 };
        let first = s.claim_deliveries(&claim).await.unwrap();
        assert_eq!(first.len(), 2);
        assert!(first.iter().all(|d| d.lease_until == NOW + 160 && d.attempts == 0));
        let held = Claim { now: NOW + 101, lease_until: NOW + 161, ..claim };
        assert!(s.claim_deliveries(&held).await.unwrap().is_empty());

        // Delivered under its lease: done. Under a stale lease: counted, not applied.
        let on = |endpoint: &str| first.iter().find(|d| d.endpoint_id == endpoint).unwrap();
        let (d0, d1) = (on("we_all"), on("we_orders"));
        let records = [
            AttemptRecord {
                seq: d0.seq,
                event_created: d0.event.created,
                lease_until: d0.lease_until,
                attempt: attempt(NOW + 102, Some(200)),
                result: AttemptResult::Delivered,
            },
            AttemptRecord {
                seq: d1.seq,
                event_created: d1.event.created,
                lease_until: NOW + 1,
                attempt: attempt(NOW + 102, Some(500)),
                result: AttemptResult::GiveUp,
            },
        ];
        s.record_attempts(&records).await.unwrap();
        let views = s.deliveries(&t, &d0.event.id).await.unwrap();
        let view = views.iter().find(|v| v.endpoint_id == d0.endpoint_id).unwrap();
        assert_eq!((view.status.as_str(), view.attempts, view.log.len()), ("delivered", 1, 1));
        assert_eq!(view.log[0].status_code, Some(200));
        let views = s.deliveries(&t, &d1.event.id).await.unwrap();
        let view = views.iter().find(|v| v.endpoint_id == d1.endpoint_id).unwrap();
        assert_eq!((view.status.as_str(), view.attempts), ("pending", 1));
        assert!(s.deliveries(&live(&a), &d1.event.id).await.unwrap().is_empty());

        // A retry scheduled later is not due before its time.
        let second = s.claim_deliveries(&Claim { now: NOW + 200, lease_until: NOW + 260, ..claim }).await.unwrap();
        // we_all's other event and the delivery whose stale verdict did not apply.
        assert_eq!(second.len(), 2);
        let retry = second.iter().map(|d| AttemptRecord {
            seq: d.seq,
            event_created: d.event.created,
            lease_until: d.lease_until,
            attempt: attempt(NOW + 201, None),
            result: AttemptResult::RetryAt(NOW + 500),
        });
        s.record_attempts(&retry.collect::<Vec<_>>()).await.unwrap();
        assert!(s
            .claim_deliveries(&Claim { now: NOW + 300, lease_until: NOW + 360, ..claim })
            .await
            .unwrap()
            .is_empty());

        // Resend queues one more delivery per subscribed endpoint; unknown events are 404.
        assert_eq!(s.resend_event(&t, &order_event.id, NOW + 400, None).await.unwrap(), 2);
        assert_eq!(s.resend_event(&t, "evt_nope", NOW, None).await.unwrap_err().kind, ProblemKind::NotFound);
        assert_eq!(
            s.resend_event(&live(&a), &order_event.id, NOW, None).await.unwrap_err().kind,
            ProblemKind::NotFound
        );
        assert_eq!(s.outbox_stats(NOW + 400).await.unwrap().pending, 4);

        // Deleting an endpoint drops its queued deliveries; deleting twice or elsewhere is false.
        assert!(!s.delete_endpoint(&live(&a), "we_all", None).await.unwrap());
        assert!(s.delete_endpoint(&t, "we_all", None).await.unwrap());
        assert!(!s.delete_endpoint(&t, "we_all", None).await.unwrap());
        assert_eq!(s.endpoints(&t).await.unwrap().len(), 1);
        assert_eq!(s.outbox_stats(NOW + 400).await.unwrap().pending, 2);
        let rest = s.claim_deliveries(&Claim { now: NOW + 600, lease_until: NOW + 660, limit: 10, per_endpoint: 5 });
        let rest = rest.await.unwrap();
        assert!(rest.iter().all(|d| d.endpoint_id == "we_orders" && d.url.ends_with("/orders")), "{rest:?}");
        assert_eq!(rest.len(), 2);
    });
}

fn idempotency_keys(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        assert_eq!(s.idempotency_begin(&t, "k1", b"fp", NOW).await.unwrap(), IdempotencyBegin::Started);
        assert_eq!(s.idempotency_begin(&t, "k1", b"fp", NOW + 1).await.unwrap(), IdempotencyBegin::InFlight);
        assert_eq!(s.idempotency_begin(&t, "k1", b"other", NOW + 1).await.unwrap(), IdempotencyBegin::Mismatch);
        // Keys are per scope.
        assert_eq!(s.idempotency_begin(&live(&a), "k1", b"other", NOW).await.unwrap(), IdempotencyBegin::Started);
        s.idempotency_complete(&t, "k1", 201, b"{\"ok\":true}").await.unwrap();
        let replay = IdempotencyBegin::Replay { status: 201, body: b"{\"ok\":true}".to_vec() };
        assert_eq!(s.idempotency_begin(&t, "k1", b"fp", NOW + 2).await.unwrap(), replay);
        // Releasing a completed key does nothing; a running one is freed.
        s.idempotency_release(&t, "k1").await.unwrap();
        assert_eq!(s.idempotency_begin(&t, "k1", b"fp", NOW + 3).await.unwrap(), replay);
        assert_eq!(s.idempotency_begin(&t, "k2", b"fp", NOW).await.unwrap(), IdempotencyBegin::Started);
        s.idempotency_release(&t, "k2").await.unwrap();
        assert_eq!(s.idempotency_begin(&t, "k2", b"fp2", NOW + 1).await.unwrap(), IdempotencyBegin::Started);
        // An abandoned start is taken over after the lease; a finished one is kept for the TTL.
        let later = NOW + 1 + IDEMPOTENCY_LEASE_SECONDS;
        assert_eq!(s.idempotency_begin(&t, "k2", b"fp2", later).await.unwrap(), IdempotencyBegin::Started);
        let expired = NOW + IDEMPOTENCY_TTL_SECONDS;
        assert_eq!(s.idempotency_begin(&t, "k1", b"new", expired).await.unwrap(), IdempotencyBegin::Started);
        assert_eq!(s.idempotency_begin(&t, "k1", b"new", expired + 1).await.unwrap(), IdempotencyBegin::InFlight);
    });
}
