//! Lists against a model: every `/v1/orders` filter and combination, walked by page numbers
//! and by cursors both ways, over orders that share `created` seconds and whose insertion order
//! is not their `created` order; 知晓云 record lists with their filters, offsets and the bounded
//! `total_count`. The expected answers are computed from the rows the story wrote.

use crate::support::{self, Backend};
use crate::{app, charge, fen, live, order, test, Db, NOW};
use paygate_domain::paging::{CreatedRange, OrderFilter, Paging};
use paygate_domain::{Order, OrderStatus, Scope};
use paygate_store::hserve::{Condition, Field, Op, Operand, RecordMeta, RecordQuery, TOTAL_COUNT_AHEAD};
use paygate_store::Store;
use std::sync::Arc;

crate::both!(order_lists_match_the_model, record_lists_match_the_model, record_count_is_bounded);

/// The states a list tells apart: status, and whether a refund was ever asked.
const STATES: [(OrderStatus, bool); 8] = [
    (OrderStatus::Created, false),
    (OrderStatus::Paid, false),
    (OrderStatus::Canceled, false),
    (OrderStatus::Refunded, true),
    (OrderStatus::Closed, false),
    (OrderStatus::PaidAfterClose, true),
    (OrderStatus::Paid, true),
    (OrderStatus::PaidAfterClose, false),
];

/// Order `i` of a story: three orders per `created` second, and every fifth one written late
/// (its `created` earlier than orders inserted before it, as a node with a slow clock does).
fn nth(scope: &Scope, i: i64) -> Order {
    let (status, has_refunds) = STATES[i as usize % STATES.len()];
    let mut o = order(scope, &format!("{i:03}"), 100);
    o.created = NOW + (i / 3) * 10 - if i % 5 == 4 { 25 } else { 0 };
    o.uid = [Some("u1".to_string()), Some("u2".to_string()), None][i as usize % 3].clone();
    o.status = status;
    let paid = matches!(status, OrderStatus::Paid | OrderStatus::Refunded | OrderStatus::PaidAfterClose);
    if paid {
        o.amount_paid = fen(100);
        o.time_paid = Some(o.created + 5);
    }
    if has_refunds {
        // Refunded in full, in part (paid), or asked and failed (nothing reserved).
        let refunded = match status {
            OrderStatus::Refunded => 100,
            OrderStatus::Paid => 40,
            _ => 0,
        };
        (o.has_refunds, o.amount_refunded, o.refund_reserved) = (true, fen(refunded), fen(refunded));
    }
    o
}

/// The model: `orders` in insertion (`seq`) order, filtered and listed newest first by
/// `(created, seq)`.
fn expected(orders: &[Order], f: &OrderFilter) -> Vec<String> {
    let paid = |o: &Order| matches!(o.status, OrderStatus::Paid | OrderStatus::Refunded);
    let c = &f.created;
    let mut kept: Vec<(i64, usize, String)> = orders
        .iter()
        .enumerate()
        .filter(|(_, o)| f.uid.as_ref().is_none_or(|u| o.uid.as_ref() == Some(u)))
        .filter(|(_, o)| f.paid.is_none_or(|p| paid(o) == p))
        .filter(|(_, o)| f.refunded.is_none_or(|r| o.has_refunds == r))
        .filter(|(_, o)| f.canceled.is_none_or(|x| (o.status == OrderStatus::Canceled) == x))
        .filter(|(_, o)| c.gt.is_none_or(|t| o.created > t) && c.gte.is_none_or(|t| o.created >= t))
        .filter(|(_, o)| c.lt.is_none_or(|t| o.created < t) && c.lte.is_none_or(|t| o.created <= t))
        .map(|(seq, o)| (o.created, seq, o.id.clone()))
        .collect();
    kept.sort_by_key(|k| std::cmp::Reverse((k.0, k.1)));
    kept.into_iter().map(|(_, _, id)| id).collect()
}

/// The whole list read three ways — page numbers, cursors forward, cursors backward from the
/// end — each of which must be the model's list.
async fn walk(s: &dyn Store, scope: &Scope, f: &OrderFilter, size: i64) -> [Vec<String>; 3] {
    let ids = |page: &paygate_domain::paging::Page<Order>| page.data.iter().map(|o| o.id.clone()).collect::<Vec<_>>();
    let mut by_page = Vec::new();
    for n in 1.. {
        let page = s.list_orders(scope, f, &Paging::Page { page: n, per_page: size }).await.unwrap();
        by_page.extend(ids(&page));
        if !page.has_more {
            break;
        }
    }
    let cursor = |after: Option<String>, before: Option<String>| Paging::Cursor {
        limit: size,
        starting_after: after,
        ending_before: before,
    };
    let (mut forward, mut after) = (Vec::new(), None);
    loop {
        let page = s.list_orders(scope, f, &cursor(after.clone(), None)).await.unwrap();
        forward.extend(ids(&page));
        match (page.has_more, forward.last()) {
            (true, Some(last)) => after = Some(last.clone()),
            _ => break,
        }
    }
    // Backward: the last page first (forward's last row ends it), then pages before it.
    let mut backward: Vec<String> = forward.iter().rev().take(1).cloned().collect();
    while let Some(first) = backward.first().cloned() {
        let page = s.list_orders(scope, f, &cursor(None, Some(first))).await.unwrap();
        let mut rows = ids(&page);
        rows.extend(backward);
        backward = rows;
        if !page.has_more {
            break;
        }
    }
    [by_page, forward, backward]
}

fn order_lists_match_the_model(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let (a, b) = (app(s, "a", 10).await, app(s, "b", 20).await);
        let t = test(&a);
        let mut orders = Vec::new();
        for i in 0..40 {
            let o = nth(&t, i);
            s.insert_order(&o).await.unwrap();
            orders.push(o);
        }
        // Another app's and the live mode's orders, alike, are never listed.
        for (n, scope) in [(0, test(&b)), (1, live(&a))] {
            let mut o = nth(&scope, n);
            o.id = format!("x_{n}");
            o.merchant_order_no = format!("x_{n}");
            s.insert_order(&o).await.unwrap();
        }
        let windows = [
            CreatedRange::default(),
            CreatedRange { gte: Some(NOW + 20), lt: Some(NOW + 70), ..Default::default() },
            CreatedRange { gt: Some(NOW + 20), lte: Some(NOW + 70), ..Default::default() },
            CreatedRange { lte: Some(NOW + 30), ..Default::default() },
        ];
        let bools = [None, Some(true), Some(false)];
        let mut checked = 0;
        for uid in [None, Some("u1"), Some("nobody")] {
            for paid in bools {
                for refunded in bools {
                    for canceled in bools {
                        for created in &windows {
                            let f = OrderFilter {
                                uid: uid.map(str::to_string),
                                paid,
                                refunded,
                                canceled,
                                created: created.clone(),
                                ..Default::default()
                            };
                            let want = expected(&orders, &f);
                            let size = 2 + (checked % 3);
                            for (how, got) in
                                ["pages", "cursors", "cursors back"].iter().zip(walk(s, &t, &f, size).await)
                            {
                                assert_eq!(got, want, "{how} of {size}: {f:?}");
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
        // The grid is not vacuous: the whole list, and lists that find some but not all.
        let everything = expected(&orders, &OrderFilter::default());
        assert_eq!(everything.len(), 40);
        assert_ne!(everything, orders.iter().rev().map(|o| o.id.clone()).collect::<Vec<_>>(), "created decides");
        // The receipt and service app filters: the app itself lists everything, another nothing.
        for (receipt, n) in [(a.id.clone(), 40), ("app_b".into(), 0)] {
            let f =
                OrderFilter { receipt_app: Some(receipt.clone()), service_app: Some(receipt), ..Default::default() };
            assert_eq!(walk(s, &t, &f, 7).await[0].len(), n);
        }
    });
}

fn meta(i: i64, created_by: Option<i64>) -> RecordMeta {
    RecordMeta {
        transaction_no: format!("htx_{i}"),
        trade_no: format!("co_{i:03}"),
        gateway_type: if i % 2 == 0 { "weixin_tenpay" } else { "alipay" }.into(),
        trade_type: if i % 2 == 0 { "weixin_tenpay_native" } else { "alipay_page" }.into(),
        created_by,
        merchandise_description: "item".into(),
        merchandise_schema_id: Some(1 + i % 2),
        merchandise_record_id: Some(format!("item_{}", i % 4)),
        merchandise_snapshot: "{}".into(),
        ip_address: "127.0.0.1".into(),
    }
}

fn record_lists_match_the_model(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        let ann = s.create_hserve_user(&t, Some("ann"), None, false, NOW).await.unwrap().id;
        let mut records: Vec<(i64, Order, Option<i64>)> = Vec::new();
        for i in 0..30 {
            let o = nth(&t, i);
            let user = (i % 3 == 0).then_some(ann);
            let id = s.insert_payment_record(&o, &charge(&o, &format!("{i:03}"), "wx_pub_qr"), &meta(i, user)).await;
            records.push((id.unwrap(), o, user));
        }
        let refund_status = |o: &Order| match (o.amount_refunded.fen(), o.has_refunds) {
            (r, _) if r > 0 && r == o.amount_paid.fen() => Some("complete"),
            (r, _) if r > 0 => Some("partial"),
            (_, true) if o.refund_reserved.fen() == 0 => Some("failed"),
            _ => None,
        };
        let status = |o: &Order| match o.status {
            OrderStatus::Paid | OrderStatus::Refunded => "success",
            OrderStatus::Created => "pending",
            _ => "closed",
        };
        let text = |field, v: &str| Condition::Field { field, op: Op::Eq, value: Operand::Text(v.into()) };
        let int = |field, op, v| Condition::Field { field, op, value: Operand::Int(v) };
        type Keep = Box<dyn Fn(&Order, &RecordMeta) -> bool>;
        let filters: Vec<(&str, Vec<Condition>, Keep)> = vec![
            ("all", vec![], Box::new(|_, _| true)),
            ("success", vec![text(Field::Status, "success")], Box::new(move |o, _| status(o) == "success")),
            ("pending", vec![text(Field::Status, "pending")], Box::new(move |o, _| status(o) == "pending")),
            (
                "complete",
                vec![text(Field::RefundStatus, "complete")],
                Box::new(move |o, _| refund_status(o) == Some("complete")),
            ),
            (
                "partial",
                vec![text(Field::RefundStatus, "partial")],
                Box::new(move |o, _| refund_status(o) == Some("partial")),
            ),
            (
                "failed",
                vec![text(Field::RefundStatus, "failed")],
                Box::new(move |o, _| refund_status(o) == Some("failed")),
            ),
            (
                "no refund",
                vec![Condition::Field { field: Field::RefundStatus, op: Op::IsNull, value: Operand::Bool(true) }],
                Box::new(move |o, _| refund_status(o).is_none()),
            ),
            (
                "window",
                vec![int(Field::CreatedAt, Op::Gte, NOW + 20), int(Field::CreatedAt, Op::Lt, NOW + 60)],
                Box::new(|o, _| (NOW + 20..NOW + 60).contains(&o.created)),
            ),
            (
                "refunds before",
                vec![text(Field::RefundStatus, "complete"), int(Field::CreatedAt, Op::Lte, NOW + 60)],
                Box::new(move |o, _| refund_status(o) == Some("complete") && o.created <= NOW + 60),
            ),
            ("alipay", vec![text(Field::GatewayType, "alipay")], Box::new(|_, m| m.gateway_type == "alipay")),
            (
                "merchandise",
                vec![text(Field::MerchandiseRecordId, "item_1")],
                Box::new(|_, m| m.merchandise_record_id.as_deref() == Some("item_1")),
            ),
            ("trade_no", vec![text(Field::TradeNo, "co_007")], Box::new(|_, m| m.trade_no == "co_007")),
            (
                "paid window",
                vec![int(Field::PaidAt, Op::Gte, NOW + 20), int(Field::PaidAt, Op::Lte, NOW + 60)],
                Box::new(|o, _| o.time_paid.is_some_and(|p| (NOW + 20..=NOW + 60).contains(&p))),
            ),
        ];
        for (name, condition, keep) in &filters {
            for user in [None, Some(ann)] {
                // The model: newest first by (created, record id).
                let mut want: Vec<(i64, i64)> = records
                    .iter()
                    .enumerate()
                    .filter(|(i, (_, o, by))| user.is_none_or(|u| *by == Some(u)) && keep(o, &meta(*i as i64, *by)))
                    .map(|(_, (id, o, _))| (o.created, *id))
                    .collect();
                want.sort_by(|x, y| y.cmp(x));
                let want: Vec<i64> = want.into_iter().map(|(_, id)| id).collect();
                // Every filter finds some records of the app (not every one some of ann's).
                assert!(user.is_some() || !want.is_empty(), "{name} finds nothing");
                for limit in [1, 4] {
                    let mut got = Vec::new();
                    for offset in (0..).step_by(limit as usize) {
                        let query = RecordQuery {
                            condition: Condition::And(condition.clone()),
                            order_by: vec![],
                            limit,
                            offset,
                        };
                        let (page, total) = s.payment_records(&t, user, &query).await.unwrap();
                        assert_eq!(total, want.len() as i64, "{name} {user:?}: total_count is exact for few records");
                        got.extend(page.iter().map(|r| r.id));
                        if page.len() < limit as usize {
                            break;
                        }
                    }
                    assert_eq!(got, want, "{name} {user:?} by {limit}");
                }
            }
        }
        // -paid_at: the latest payment first, unpaid records last (newest first among them).
        let query = RecordQuery {
            condition: Condition::And(vec![]),
            order_by: vec![(Field::PaidAt, true)],
            limit: 100,
            offset: 0,
        };
        let (page, _) = s.payment_records(&t, None, &query).await.unwrap();
        let mut want: Vec<(Option<i64>, i64)> = records.iter().map(|(id, o, _)| (o.time_paid, *id)).collect();
        // Descending, nulls last; ties by record id, newest first.
        want.sort_by_key(|x| std::cmp::Reverse((x.0.is_some(), x.0, x.1)));
        assert_eq!(
            page.iter().map(|r| r.id).collect::<Vec<_>>(),
            want.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
        );
    });
}

/// `total_count` counts at most `offset + limit + TOTAL_COUNT_AHEAD` records: exact below
/// that, that number (so `next` is still offered) above it.
fn record_count_is_bounded(backend: Backend) {
    let db = Db::open(backend);
    let store: Arc<dyn Store> = db.store.clone();
    db.run(async {
        let a = app(store.as_ref(), "a", 10).await;
        let t = test(&a);
        let n = TOTAL_COUNT_AHEAD + 3;
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..8 {
            let (store, t) = (store.clone(), t.clone());
            writers.spawn(async move {
                for i in (w..n).step_by(8) {
                    let mut o = order(&t, &format!("{i:05}"), 100);
                    o.created = NOW + i;
                    let c = charge(&o, &format!("{i:05}"), "wx_pub_qr");
                    let mut m = meta(i, None);
                    (m.transaction_no, m.trade_no) = (format!("htx_{i}"), format!("co_{i:05}"));
                    store.insert_payment_record(&o, &c, &m).await.unwrap();
                }
            });
        }
        while let Some(done) = writers.join_next().await {
            done.unwrap();
        }
        let (s, t) = (store.as_ref(), &t);
        let count = |limit, offset, condition: Vec<Condition>| {
            let query = RecordQuery { condition: Condition::And(condition), order_by: vec![], limit, offset };
            async move { s.payment_records(t, None, &query).await.unwrap() }
        };
        // More records than the first page's bound: the bound.
        let (page, total) = count(1, 0, vec![]).await;
        assert_eq!((page.len(), total), (1, 1 + TOTAL_COUNT_AHEAD));
        assert_eq!(page[0].order.created, NOW + n - 1, "newest first");
        // Deep enough that the bound passes the end: exact.
        let (_, total) = count(1, 2, vec![]).await;
        assert_eq!(total, n);
        let (_, total) = count(20, 0, vec![]).await;
        assert_eq!(total, n);
        // A short page ends the list (its total needs no count); past the end, counted.
        let (page, total) = count(10, n - 3, vec![]).await;
        assert_eq!((page.len(), total), (3, n));
        let (page, total) = count(10, n + 5, vec![]).await;
        assert_eq!((page.len(), total), (0, n));
        // A filter finding few: exact, whatever the page.
        let recent = vec![Condition::Field { field: Field::CreatedAt, op: Op::Gte, value: Operand::Int(NOW + n - 5) }];
        assert_eq!(count(1, 0, recent).await.1, 5);
    });
}
