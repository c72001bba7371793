//! Orders, charges, cancel and expiry, settlement (late payments included) and refunds.

use crate::support::{self, Backend};
use crate::{app, charge, event_types, fen, live, order, paid, success, test, Db, NOW};
use paygate_domain::paging::{OrderFilter, Paging};
use paygate_domain::{ChargeStatus, OrderStatus, ProblemKind, RefundStatus};
use paygate_store::{CancelOutcome, ChargeOutcome, RefundOutcome, RefundRequest, SettledCharge};
use serde_json::json;

crate::both!(orders_and_charges, cancel_and_expiry, settlement, refunds);

fn cursor(limit: i64, after: Option<&str>, before: Option<&str>) -> Paging {
    Paging::Cursor { limit, starting_after: after.map(str::to_string), ending_before: before.map(str::to_string) }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|x| id(x).to_string()).collect()
}

fn orders_and_charges(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let b = app(s, "b", 20).await;
        let (t, other) = (test(&a), test(&b));
        for n in ["1", "2", "3"] {
            s.insert_order(&order(&t, n, 100)).await.unwrap();
        }
        // A taken merchant_order_no is a conflict naming the order that holds it …
        let mut dup = order(&t, "9", 100);
        dup.merchant_order_no = "m_1".into();
        let refused = s.insert_order(&dup).await.unwrap_err();
        assert_eq!((refused.kind, refused.code), (ProblemKind::Conflict, "duplicate_merchant_order_no"));
        assert!(refused.message.contains("o_1"), "{}", refused.message);
        assert!(s.order(&t, "o_9").await.unwrap().is_none());
        // … only within the scope: the live mode and another app may use it.
        let mut in_live = order(&live(&a), "l1", 100);
        in_live.merchant_order_no = "m_1".into();
        s.insert_order(&in_live).await.unwrap();
        // Any other failure is not a duplicate (here: the order id is taken).
        let mut same_id = order(&t, "1", 100);
        same_id.merchant_order_no = "m_other".into();
        assert_ne!(s.insert_order(&same_id).await.unwrap_err().code, "duplicate_merchant_order_no");

        assert_eq!(s.order(&t, "o_1").await.unwrap().unwrap(), order(&t, "1", 100));
        assert!(s.order(&other, "o_1").await.unwrap().is_none());
        assert!(s.order(&live(&a), "o_1").await.unwrap().is_none());

        // Pages and cursors, newest first; a cursor that names no order is refused by name.
        let page = |page, per_page| Paging::Page { page, per_page };
        let all = OrderFilter::default();
        let first = s.list_orders(&t, &all, &page(1, 2)).await.unwrap();
        assert_eq!((ids(&first.data, |o| &o.id), first.has_more), (vec!["o_3".into(), "o_2".into()], true));
        let second = s.list_orders(&t, &all, &page(2, 2)).await.unwrap();
        assert_eq!((ids(&second.data, |o| &o.id), second.has_more), (vec!["o_1".into()], false));
        let after = s.list_orders(&t, &all, &cursor(1, Some("o_3"), None)).await.unwrap();
        assert_eq!((ids(&after.data, |o| &o.id), after.has_more), (vec!["o_2".into()], true));
        let before = s.list_orders(&t, &all, &cursor(5, None, Some("o_1"))).await.unwrap();
        assert_eq!(ids(&before.data, |o| &o.id), ["o_3", "o_2"]);
        let unknown = s.list_orders(&t, &all, &cursor(5, Some("o_nope"), None)).await.unwrap_err();
        assert_eq!(unknown.param.as_deref(), Some("starting_after"));
        let unknown = s.list_orders(&other, &all, &cursor(5, None, Some("o_1"))).await.unwrap_err();
        assert_eq!(unknown.param.as_deref(), Some("ending_before"));
        let canceled = OrderFilter { canceled: Some(true), ..Default::default() };
        assert!(s.list_orders(&t, &canceled, &page(1, 10)).await.unwrap().data.is_empty());
        let early = OrderFilter {
            created: paygate_domain::paging::CreatedRange { lt: Some(NOW), ..Default::default() },
            ..all
        };
        assert!(s.list_orders(&t, &early, &page(1, 10)).await.unwrap().data.is_empty());

        // A charge needs an order of its scope; a second one supersedes (closes) the first.
        let o1 = s.order(&t, "o_1").await.unwrap().unwrap();
        let missing = s.open_charge(&other, &charge(&o1, "x", "alipay")).await.unwrap_err();
        assert_eq!(missing.kind, ProblemKind::NotFound);
        let opened = s.open_charge(&t, &charge(&o1, "1a", "alipay")).await.unwrap();
        assert!(opened.superseded.is_empty());
        let opened = s.open_charge(&t, &charge(&o1, "1b", "wx")).await.unwrap();
        assert_eq!(ids(&opened.superseded, |c| &c.id), ["ch_1a"]);
        assert_eq!(s.charge(&t, "ch_1a").await.unwrap().unwrap().status, ChargeStatus::Closed);
        assert!(s.charge(&other, "ch_1b").await.unwrap().is_none());
        assert_eq!(ids(&s.charges_of_order(&t, "o_1").await.unwrap(), |c| &c.id), ["ch_1b", "ch_1a"]);
        assert!(s.charges_of_order(&other, "o_1").await.unwrap().is_empty());
        // A page's charges in one query: each order's newest first, other scopes' never.
        let listed: Vec<String> = ["o_1", "o_2", "o_3"].map(String::from).into();
        assert_eq!(ids(&s.charges_of_orders(&t, &listed).await.unwrap(), |c| &c.id), ["ch_1b", "ch_1a"]);
        assert!(s.charges_of_orders(&other, &listed).await.unwrap().is_empty());
        assert!(s.charges_of_orders(&t, &[]).await.unwrap().is_empty());
        let view = s.order_view(&t, "o_1").await.unwrap().unwrap();
        assert_eq!(
            (view.order.id.as_str(), ids(&view.charges, |c| &c.id)),
            ("o_1", vec!["ch_1b".into(), "ch_1a".into()])
        );
        let bare = s.order_view(&t, "o_2").await.unwrap().unwrap();
        assert!(bare.charges.is_empty());
        assert!(s.order_view(&other, "o_1").await.unwrap().is_none());

        // Charges are found by id, channel order number or transaction number, in scope only.
        assert_eq!(s.find_charge(&t, "co_1b").await.unwrap().unwrap().id, "ch_1b");
        assert!(s.find_charge(&other, "co_1b").await.unwrap().is_none());
        assert_eq!(s.find_test_charge("ch_1a").await.unwrap().unwrap().id, "ch_1a");
        let live_order = s.order(&live(&a), "o_l1").await.unwrap().unwrap();
        s.open_charge(&live(&a), &charge(&live_order, "l1", "wx")).await.unwrap();
        assert!(s.find_test_charge("ch_l1").await.unwrap().is_none(), "live charges are not the sandbox's");
        s.settle_charge(&t, "ch_1b", &success("tx_1b")).await.unwrap();
        assert_eq!(s.find_charge(&t, "tx_1b").await.unwrap().unwrap().id, "ch_1b");
        let paid_filter = OrderFilter { paid: Some(true), ..Default::default() };
        assert_eq!(ids(&s.list_orders(&t, &paid_filter, &page(1, 10)).await.unwrap().data, |o| &o.id), ["o_1"]);

        // A paid or expired order takes no new charge.
        let paid = s.order(&t, "o_1").await.unwrap().unwrap();
        assert_eq!(s.open_charge(&t, &charge(&paid, "1c", "wx")).await.unwrap_err().code, "order_not_payable");
        let mut late = charge(&s.order(&t, "o_2").await.unwrap().unwrap(), "2a", "wx");
        late.created = NOW + 3600;
        assert_eq!(s.open_charge(&t, &late).await.unwrap_err().code, "order_expired");
    });
}

fn cancel_and_expiry(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let (t, other) = (test(&a), live(&a));
        for n in ["1", "2", "3", "4"] {
            let o = order(&t, n, 100);
            s.insert_order(&o).await.unwrap();
            s.open_charge(&t, &charge(&o, n, "wx")).await.unwrap();
        }
        assert!(s.cancel_order(&t, "o_nope", NOW).await.unwrap().is_none());
        assert!(s.cancel_order(&other, "o_1", NOW).await.unwrap().is_none());
        match s.cancel_order(&t, "o_1", NOW).await.unwrap().unwrap() {
            CancelOutcome::Canceled { order, closed_charges } => {
                assert_eq!(order.status, OrderStatus::Canceled);
                assert_eq!(ids(&closed_charges, |c| &c.id), ["ch_1"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(s.charge(&t, "ch_1").await.unwrap().unwrap().status, ChargeStatus::Closed);
        // The conditional update refuses a second cancel and a paid order, changing nothing.
        let again = s.cancel_order(&t, "o_1", NOW).await.unwrap().unwrap();
        assert!(matches!(again, CancelOutcome::NotCancelable(ref o) if o.status == OrderStatus::Canceled));
        s.settle_charge(&t, "ch_2", &success("tx_2")).await.unwrap();
        let refused = s.cancel_order(&t, "o_2", NOW).await.unwrap().unwrap();
        assert!(matches!(refused, CancelOutcome::NotCancelable(ref o) if o.status == OrderStatus::Paid));
        assert_eq!(event_types(s, &t).await, ["order.canceled", "charge.succeeded", "order.succeeded"]);

        // Expiry: only created orders past time_expire, any app; closing re-checks both.
        assert!(s.expired_orders(NOW + 3599, 10).await.unwrap().is_empty());
        let mut due = s.expired_orders(NOW + 3600, 10).await.unwrap();
        due.sort_by(|x, y| x.1.cmp(&y.1));
        assert_eq!(due, [(t.clone(), "o_3".to_string()), (t.clone(), "o_4".to_string())]);
        assert_eq!(s.expired_orders(NOW + 3600, 1).await.unwrap().len(), 1);
        assert!(s.close_expired_order(&t, "o_3", NOW + 3599).await.unwrap().is_none(), "not yet expired");
        assert!(s.close_expired_order(&t, "o_nope", NOW + 3600).await.unwrap().is_none());
        assert!(s.close_expired_order(&other, "o_3", NOW + 3600).await.unwrap().is_none());
        assert!(s.close_expired_order(&t, "o_2", NOW + 3600).await.unwrap().is_none(), "paid");
        let (closed, charges) = s.close_expired_order(&t, "o_3", NOW + 3600).await.unwrap().unwrap();
        assert_eq!((closed.status, ids(&charges, |c| &c.id)), (OrderStatus::Closed, vec!["ch_3".to_string()]));
        assert_eq!(s.charge(&t, "ch_3").await.unwrap().unwrap().status, ChargeStatus::Closed);
        assert!(s.close_expired_order(&t, "o_3", NOW + 3600).await.unwrap().is_none(), "already closed");
        assert_eq!(event_types(s, &t).await.last().map(String::as_str), Some("order.closed"));
        assert_eq!(s.expired_orders(NOW + 3600, 10).await.unwrap(), [(t.clone(), "o_4".to_string())]);
    });
}

fn settlement(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        assert_eq!(s.settle_charge(&t, "ch_nope", &success("tx")).await.unwrap_err().kind, ProblemKind::NotFound);
        for n in ["1", "2", "3"] {
            let o = order(&t, n, 100);
            s.insert_order(&o).await.unwrap();
            s.open_charge(&t, &charge(&o, n, "wx")).await.unwrap();
        }
        assert_eq!(s.settle_charge(&live(&a), "ch_1", &success("tx")).await.unwrap_err().kind, ProblemKind::NotFound);
        // A failure ends the charge; a second answer changes nothing.
        let failed = ChargeOutcome::Failed { code: "declined".into(), message: "no".into() };
        match s.settle_charge(&t, "ch_1", &failed).await.unwrap() {
            SettledCharge::Settled { charge, order } => {
                assert_eq!((charge.status, charge.failure_code.as_deref()), (ChargeStatus::Failed, Some("declined")));
                assert_eq!(order.status, OrderStatus::Created);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.settle_charge(&t, "ch_1", &failed).await.unwrap(), SettledCharge::NotPending(_)));
        // A success pays the order once, with its settlement and notification kept.
        match s.settle_charge(&t, "ch_2", &success("tx_2")).await.unwrap() {
            SettledCharge::Settled { charge, order } => {
                assert_eq!(
                    (order.status, order.amount_paid, order.time_paid),
                    (OrderStatus::Paid, fen(100), Some(NOW + 10))
                );
                assert_eq!((charge.settlement, charge.notification.is_some()), (Some(json!({"fee": 1})), true));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(s.settle_charge(&t, "ch_2", &success("tx_2")).await.unwrap(), SettledCharge::NotPending(_)));
        // Money for a canceled order is a late payment, with its own event.
        s.cancel_order(&t, "o_3", NOW).await.unwrap();
        match s.settle_charge(&t, "ch_3", &success("tx_3")).await.unwrap() {
            SettledCharge::Settled { order, .. } => assert_eq!(order.status, OrderStatus::PaidAfterClose),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.late_payments_to_refund(10).await.unwrap(), [(t.clone(), "o_3".to_string())]);
        let types = event_types(s, &t).await;
        assert_eq!(types, ["charge.succeeded", "order.succeeded", "order.canceled", "order.paid_after_close"]);
        // An app holding late money for review is not refunded by the worker.
        s.set_app_late_payment(&a.id, paygate_domain::LatePayment::Hold).await.unwrap();
        assert!(s.late_payments_to_refund(10).await.unwrap().is_empty());
        s.set_app_late_payment(&a.id, paygate_domain::LatePayment::Refund).await.unwrap();
        // Once its refund is reserved it is no longer listed.
        s.reserve_refund(&t, &refund_request("r3", "o_3", None, None)).await.unwrap();
        assert!(s.late_payments_to_refund(10).await.unwrap().is_empty());
    });
}

fn refund_request(n: &str, order_id: &str, charge_id: Option<&str>, amount: Option<i64>) -> RefundRequest {
    RefundRequest {
        id: format!("re_{n}"),
        refund_no: format!("rn_{n}"),
        order_id: order_id.into(),
        charge_id: charge_id.map(str::to_string),
        amount: amount.map(fen),
        description: "refund".into(),
        metadata: json!({}),
        created: NOW + 20,
    }
}

fn refunds(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        let (o, _) = paid(s, &t, "1", 100, "wx").await;
        let unpaid = order(&t, "2", 100);
        s.insert_order(&unpaid).await.unwrap();
        let not_found = s.reserve_refund(&t, &refund_request("x", "o_nope", None, None)).await.unwrap_err();
        assert_eq!(not_found.kind, ProblemKind::NotFound);
        let other_scope = s.reserve_refund(&live(&a), &refund_request("x", "o_1", None, None)).await.unwrap_err();
        assert_eq!(other_scope.kind, ProblemKind::NotFound);
        assert_eq!(
            s.reserve_refund(&t, &refund_request("x", "o_2", None, None)).await.unwrap_err().code,
            "order_not_paid"
        );
        let wrong_charge = s.reserve_refund(&t, &refund_request("x", "o_1", Some("ch_nope"), None)).await.unwrap_err();
        assert_eq!(wrong_charge.kind, ProblemKind::NotFound);
        let too_much = s.reserve_refund(&t, &refund_request("x", "o_1", None, Some(101))).await.unwrap_err();
        assert_eq!(too_much.code, "refund_exceeds_refundable");

        let r1 = s.reserve_refund(&t, &refund_request("1", "o_1", None, Some(60))).await.unwrap();
        assert_eq!((r1.status, r1.amount, r1.charge_id.as_str()), (RefundStatus::Pending, fen(60), "ch_1"));
        // The reservation holds: 41 more would pass what was paid.
        let taken = s.reserve_refund(&t, &refund_request("x", "o_1", Some("ch_1"), Some(41))).await.unwrap_err();
        assert_eq!(taken.code, "refund_exceeds_refundable");
        let r2 = s.reserve_refund(&t, &refund_request("2", "o_1", Some("ch_1"), None)).await.unwrap();
        assert_eq!(r2.amount, fen(40));
        assert_eq!(s.order(&t, &o.id).await.unwrap().unwrap().refund_reserved, fen(100));

        let done = RefundOutcome::Succeeded { transaction_no: Some("rt_1".into()), time_succeed: NOW + 30 };
        assert_eq!(s.finish_refund(&t, "re_nope", &done).await.unwrap_err().kind, ProblemKind::NotFound);
        assert_eq!(s.finish_refund(&live(&a), "re_1", &done).await.unwrap_err().kind, ProblemKind::NotFound);
        let finished = s.finish_refund(&t, "re_1", &done).await.unwrap();
        assert_eq!((finished.status, finished.time_succeed), (RefundStatus::Succeeded, Some(NOW + 30)));
        // A second answer changes nothing and emits nothing.
        let failed = RefundOutcome::Failed { code: "x".into(), message: "late".into() };
        assert_eq!(s.finish_refund(&t, "re_1", &failed).await.unwrap().status, RefundStatus::Succeeded);
        let released = s.finish_refund(&t, "re_2", &failed).await.unwrap();
        assert_eq!(released.status, RefundStatus::Failed);
        let o = s.order(&t, "o_1").await.unwrap().unwrap();
        assert_eq!((o.amount_refunded, o.refund_reserved, o.has_refunds), (fen(60), fen(60), true));
        assert_eq!(s.charge(&t, "ch_1").await.unwrap().unwrap().amount_refunded, fen(60));
        // The released 40 can be refunded again, and then the order reads refunded.
        s.reserve_refund(&t, &refund_request("3", "o_1", None, None)).await.unwrap();
        s.finish_refund(&t, "re_3", &done).await.unwrap();
        assert_eq!(s.order(&t, "o_1").await.unwrap().unwrap().status, OrderStatus::Refunded);
        let nothing = s.reserve_refund(&t, &refund_request("x", "o_1", None, Some(1))).await.unwrap_err();
        assert_eq!(nothing.code, "nothing_to_refund");
        let types = event_types(s, &t).await;
        assert_eq!(types[2..], ["refund.succeeded", "refund.failed", "refund.succeeded"]);

        assert_eq!(s.refund(&t, "re_2").await.unwrap().unwrap().failure_msg.as_deref(), Some("late"));
        assert!(s.refund(&live(&a), "re_2").await.unwrap().is_none());
        let page = s.refunds(&t, Some("o_1"), None, 2).await.unwrap();
        assert_eq!((ids(&page.data, |r| &r.id), page.has_more), (vec!["re_3".into(), "re_2".into()], true));
        let by_charge = s.refunds(&t, None, Some("ch_1"), 10).await.unwrap();
        assert_eq!((by_charge.data.len(), by_charge.has_more), (3, false));
        assert!(s.refunds(&live(&a), Some("o_1"), None, 10).await.unwrap().data.is_empty());
    });
}

/// A transaction whose request future is dropped half-way (here: waiting for a row lock) is
/// never committed, and its connection leaves the pool instead of serving a later request from
/// inside the abandoned transaction.
#[test]
fn postgres_cancelled_transaction_is_discarded() {
    let db = Db::open(Backend::Postgres);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        s.insert_order(&order(&t, "1", 100)).await.unwrap();
        let (locker, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        locker.batch_execute("BEGIN; SELECT id FROM orders WHERE id = 'o_1' FOR UPDATE").await.unwrap();
        let before = s.pool_stats().await.unwrap();
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(300), s.cancel_order(&t, "o_1", NOW));
        assert!(waiting.await.is_err(), "the cancel waits for the row lock");
        let after = s.pool_stats().await.unwrap();
        // The connection that was inside the transaction is gone from the pool, not idle in it.
        assert_eq!((after.size, after.in_use, after.idle), (before.size - 1, 0, before.idle - 1));
        locker.batch_execute("ROLLBACK").await.unwrap();
        // The abandoned cancel changed nothing; a new one runs on a clean connection.
        assert_eq!(s.order(&t, "o_1").await.unwrap().unwrap().status, OrderStatus::Created);
        assert!(matches!(s.cancel_order(&t, "o_1", NOW).await.unwrap(), Some(CancelOutcome::Canceled { .. })));
        // The cancel that was dropped never committed: one cancel, one event.
        assert_eq!(event_types(s, &t).await, ["order.canceled"]);
    });
}
