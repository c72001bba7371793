//! The faces' storage: 知晓云 users, sessions and payment records; profit sharing; the
//! cashier's replay cache, fee rates, members, wallets and point-of-sale records.

use crate::support::{self, Backend};
use crate::{app, charge, event_types, fen, live, order, paid, test, Db, NOW};
use paygate_domain::objects::{self, OrderView};
use paygate_domain::pos::{Discounts, Settlement};
use paygate_domain::shares::{Receiver, ShareKind, ShareStatus};
use paygate_domain::{ChargeStatus, Mode, OrderStatus, ProblemKind, Scope};
use paygate_store::hserve::{Condition, Field, Op, Operand, RecordMeta, RecordQuery};
use paygate_store::{
    BalanceTransaction, Member, PosMeta, PosRecord, PosRef, RefundOutcome, RefundRequest, SeenSignature, ShareOutcome,
    ShareRequest, ShareReserved, Store, WalletPayment,
};
use serde_json::json;
use std::sync::Arc;

crate::both!(hserve_users_sessions_records, profit_sharing, point_of_sale, concurrent_wallet_payments);

fn meta(n: &str, created_by: Option<i64>) -> RecordMeta {
    RecordMeta {
        transaction_no: format!("htx_{n}"),
        trade_no: format!("co_{n}"),
        gateway_type: "weixin_tenpay".into(),
        trade_type: "weixin_tenpay_native".into(),
        created_by,
        merchandise_description: format!("item {n}"),
        merchandise_schema_id: Some(7),
        merchandise_record_id: None,
        merchandise_snapshot: "{}".into(),
        ip_address: "127.0.0.1".into(),
    }
}

fn hserve_users_sessions_records(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let (t, l) = (test(&a), live(&a));
        let ann = s.create_hserve_user(&t, Some("ann"), Some("pbkdf2$x"), false, NOW).await.unwrap();
        assert_eq!(
            (ann.username.as_deref(), ann.password_hash.as_deref(), ann.anonymous),
            (Some("ann"), Some("pbkdf2$x"), false)
        );
        let taken = s.create_hserve_user(&t, Some("ann"), None, false, NOW).await.unwrap_err();
        assert_eq!((taken.kind, taken.code), (ProblemKind::Conflict, "username_taken"));
        // Usernames are per scope; anonymous users have none and never collide.
        s.create_hserve_user(&l, Some("ann"), None, false, NOW).await.unwrap();
        let anon1 = s.create_hserve_user(&t, None, None, true, NOW).await.unwrap();
        let anon2 = s.create_hserve_user(&t, None, None, true, NOW).await.unwrap();
        assert_ne!(anon1.id, anon2.id);
        assert_eq!(s.hserve_user_by_name(&t, "ann").await.unwrap().unwrap(), ann);
        assert_ne!(s.hserve_user_by_name(&l, "ann").await.unwrap().unwrap().id, ann.id);
        assert!(s.hserve_user_by_name(&t, "bob").await.unwrap().is_none());
        assert_eq!(s.hserve_user(&t, ann.id).await.unwrap().unwrap(), ann);
        assert!(s.hserve_user(&l, ann.id).await.unwrap().is_none());

        s.create_hserve_session(&[1; 32], &t, ann.id, NOW + 100).await.unwrap();
        assert_eq!(s.hserve_session(&[1; 32], NOW + 99).await.unwrap(), Some((t.clone(), ann.id)));
        assert!(s.hserve_session(&[1; 32], NOW + 100).await.unwrap().is_none(), "expired");
        assert!(s.hserve_session(&[2; 32], NOW).await.unwrap().is_none());
        assert!(s.delete_hserve_session(&[1; 32]).await.unwrap());
        assert!(!s.delete_hserve_session(&[1; 32]).await.unwrap());

        // Records: order + charge + meta in one transaction; the id is the order's seq.
        let mut ids = Vec::new();
        for (n, user) in [("1", Some(ann.id)), ("2", None), ("3", Some(ann.id))] {
            let o = order(&t, n, 100);
            ids.push(s.insert_payment_record(&o, &charge(&o, n, "wx_pub_qr"), &meta(n, user)).await.unwrap());
        }
        assert!(ids[0] < ids[1] && ids[1] < ids[2]);
        // A record whose trade_no is taken writes none of its rows.
        let o = order(&t, "4", 100);
        assert!(s.insert_payment_record(&o, &charge(&o, "4", "wx"), &meta("1", None)).await.is_err());
        assert!(s.order(&t, "o_4").await.unwrap().is_none());

        let everything = RecordQuery { condition: Condition::And(vec![]), order_by: vec![], limit: 2, offset: 0 };
        let (page, total) = s.payment_records(&t, None, &everything).await.unwrap();
        assert_eq!((page.iter().map(|r| r.id).collect::<Vec<_>>(), total), (vec![ids[2], ids[1]], 3));
        let (mine, total) =
            s.payment_records(&t, Some(ann.id), &RecordQuery { offset: 1, ..everything.clone() }).await.unwrap();
        assert_eq!((mine.iter().map(|r| r.id).collect::<Vec<_>>(), total), (vec![ids[0]], 2));
        let by_trade = Condition::Field { field: Field::TradeNo, op: Op::Eq, value: Operand::Text("co_2".into()) };
        let (found, total) =
            s.payment_records(&t, None, &RecordQuery { condition: by_trade, ..everything.clone() }).await.unwrap();
        assert_eq!((found.len(), total, found[0].meta.merchandise_description.as_str()), (1, 1, "item 2"));
        let unsortable = RecordQuery { order_by: vec![(Field::Status, false)], ..everything.clone() };
        assert_eq!(s.payment_records(&t, None, &unsortable).await.unwrap_err().param.as_deref(), Some("order_by"));
        assert_eq!(s.payment_records(&l, None, &everything).await.unwrap().1, 0);

        let by_id = s.payment_record(&t, None, &ids[0].to_string()).await.unwrap().unwrap();
        assert_eq!((by_id.order.id.as_str(), by_id.created_by_name.as_deref()), ("o_1", Some("ann")));
        assert_eq!(s.payment_record(&t, None, "htx_2").await.unwrap().unwrap().id, ids[1]);
        assert_eq!(s.payment_record(&t, None, "co_3").await.unwrap().unwrap().id, ids[2]);
        assert!(s.payment_record(&t, Some(ann.id), "htx_2").await.unwrap().is_none(), "another user's record");
        assert!(s.payment_record(&l, None, "htx_2").await.unwrap().is_none());
        // The core finds the record's charge by the 知晓云 transaction number too.
        assert_eq!(s.find_charge(&t, "htx_2").await.unwrap().unwrap().id, "ch_2");
    });
}

fn share(n: &str, order_id: &str, kind: ShareKind, amount: i64) -> ShareRequest {
    let receiver = Receiver {
        kind: "MERCHANT_ID".into(),
        account: "190001".into(),
        amount: fen(amount),
        description: "cut".into(),
    };
    ShareRequest {
        id: format!("ps_{n}"),
        order_id: order_id.into(),
        kind,
        out_order_no: format!("out_{n}"),
        receivers: vec![receiver],
        amount: fen(amount),
        created: NOW + 20,
    }
}

fn profit_sharing(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        paid(s, &t, "1", 1000, "wx").await;
        paid(s, &t, "2", 1000, "wx").await;
        let multi = ShareKind::WechatMulti;
        let missing = s.reserve_share(&t, &share("x", "o_nope", multi, 10), 3000).await.unwrap_err();
        assert_eq!(missing.kind, ProblemKind::NotFound);
        let elsewhere = s.reserve_share(&live(&a), &share("x", "o_1", multi, 10), 3000).await.unwrap_err();
        assert_eq!(elsewhere.kind, ProblemKind::NotFound);
        // The cap: 30 % of 1000.
        let over = s.reserve_share(&t, &share("x", "o_1", multi, 301), 3000).await.unwrap_err();
        assert_eq!(over.code, "share_exceeds_limit");
        let new = match s.reserve_share(&t, &share("1", "o_1", multi, 200), 3000).await.unwrap() {
            ShareReserved::New(share) => share,
            other => panic!("{other:?}"),
        };
        assert_eq!((new.status, new.amount), (ShareStatus::Pending, fen(200)));
        // The same request again is the same share; the number for something else is refused.
        let again = s.reserve_share(&t, &share("1", "o_1", multi, 200), 3000).await.unwrap();
        assert!(matches!(again, ShareReserved::Existing(ref e) if e.id == "ps_1"));
        let reused = s.reserve_share(&t, &share("1", "o_2", multi, 50), 3000).await.unwrap_err();
        assert_eq!(reused.code, "out_order_no_reused");
        let over = s.reserve_share(&t, &share("x", "o_1", multi, 101), 3000).await.unwrap_err();
        assert_eq!(over.code, "share_exceeds_limit");
        // Money reserved for sharing cannot be refunded.
        let refund = RefundRequest {
            id: "re_1".into(),
            refund_no: "rn_1".into(),
            order_id: "o_1".into(),
            charge_id: None,
            amount: None,
            description: String::new(),
            metadata: json!({}),
            created: NOW,
        };
        assert_eq!(s.reserve_refund(&t, &refund).await.unwrap_err().code, "profit_shares_unreturned");

        let outcome = ShareOutcome::Succeeded { channel_order_no: "wxs_1".into() };
        assert_eq!(s.finish_share(&t, "ps_nope", &outcome, NOW).await.unwrap_err().kind, ProblemKind::NotFound);
        let done = s.finish_share(&t, "ps_1", &outcome, NOW + 30).await.unwrap();
        assert_eq!((done.status, done.channel_order_no.as_deref()), (ShareStatus::Succeeded, Some("wxs_1")));
        // A second answer changes nothing (and emits nothing).
        let failed = ShareOutcome::Failed { message: "late".into() };
        assert_eq!(s.finish_share(&t, "ps_1", &failed, NOW + 31).await.unwrap().status, ShareStatus::Succeeded);
        // A failed share gives its reservation back.
        s.reserve_share(&t, &share("2", "o_1", multi, 100), 3000).await.unwrap();
        assert_eq!(s.finish_share(&t, "ps_2", &failed, NOW + 32).await.unwrap().failure_msg.as_deref(), Some("late"));
        assert_eq!(s.order(&t, "o_1").await.unwrap().unwrap().share_reserved, fen(200));
        assert_eq!(s.share(&t, "ps_2").await.unwrap().unwrap().status, ShareStatus::Failed);
        assert!(s.share(&live(&a), "ps_2").await.unwrap().is_none());
        let of_order = s.shares_of_order(&t, "o_1").await.unwrap();
        assert_eq!(of_order.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["ps_2", "ps_1"]);

        // Returns: at most what was shared, reserved first, then counted or released.
        assert_eq!(s.reserve_share_return(&t, "ps_nope", None).await.unwrap_err().kind, ProblemKind::NotFound);
        assert!(s.reserve_share_return(&t, "ps_1", Some(fen(201))).await.is_err());
        let (_, amount) = s.reserve_share_return(&t, "ps_1", Some(fen(50))).await.unwrap();
        assert_eq!(amount, fen(50));
        let back = s.finish_share_return(&t, "ps_1", fen(50), false, NOW + 40).await.unwrap();
        assert_eq!((back.return_reserved, back.amount_returned), (fen(0), fen(0)));
        let (_, all) = s.reserve_share_return(&t, "ps_1", None).await.unwrap();
        assert_eq!(all, fen(200));
        let back = s.finish_share_return(&t, "ps_1", all, true, NOW + 41).await.unwrap();
        assert_eq!(back.amount_returned, fen(200));
        assert_eq!(s.order(&t, "o_1").await.unwrap().unwrap().share_reserved, fen(0));
        assert!(s.reserve_share_return(&t, "ps_1", Some(fen(1))).await.is_err(), "nothing left to return");
        s.reserve_refund(&t, &refund).await.unwrap();
        let shared: Vec<_> = event_types(s, &t).await.into_iter().filter(|k| k.starts_with("profit")).collect();
        assert_eq!(shared, ["profit_sharing.succeeded", "profit_sharing.failed", "profit_sharing.returned"]);

        // Finishing sharing ends it: no more shares on that order.
        assert!(s.finish_sharing(&t, "o_nope").await.unwrap().is_none());
        assert!(s.finish_sharing(&t, "o_2").await.unwrap().unwrap().sharing_finished);
        let finished = s.reserve_share(&t, &share("3", "o_2", multi, 10), 3000).await.unwrap_err();
        assert_eq!(finished.code, "sharing_finished");
    });
}

fn pos_meta(n: &str, member_id: Option<i64>) -> PosMeta {
    PosMeta {
        pay_no: format!("m_{n}"),
        out_trade_no: "shop-1".into(),
        attach: format!("attach {n}"),
        discounts: Discounts::default(),
        pre_fee_subsidy: None,
        fee_subsidy_party: None,
        member_id,
        auth_code_kind: if member_id.is_some() { "member".into() } else { "wechat".into() },
        reversed: false,
        goods_detail: json!([]),
    }
}

/// A refused wallet payment `n` left no order, record, event, debit or ledger entry.
async fn nothing_written(s: &dyn Store, t: &Scope, member: i64, n: &str) {
    assert!(s.order(t, &format!("o_{n}")).await.unwrap().is_none());
    assert!(s.pos_meta(t, &PosRef::PayNo(format!("m_{n}"))).await.unwrap().is_none());
    assert_eq!(s.member(t, member).await.unwrap().unwrap().balance, fen(150));
    assert!(event_types(s, t).await.is_empty());
    assert_eq!(s.balance_transactions(t, member, 10).await.unwrap().len(), 1, "the top-up only");
}

fn point_of_sale(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let (t, l) = (test(&a), live(&a));
        // The replay cache: a signature once; old ones are forgotten.
        let seen = |id: &str, sign: &str, at: i64| SeenSignature { public_id: id.into(), sign: sign.into(), at };
        assert!(s.remember_signature(&seen("kd_a_test", "sig1", NOW)).await.unwrap());
        assert!(!s.remember_signature(&seen("kd_a_test", "sig1", NOW + 1)).await.unwrap());
        assert!(s.remember_signature(&seen("kd_a_live", "sig1", NOW + 1)).await.unwrap());
        assert_eq!(s.forget_signatures(NOW + 1).await.unwrap(), 1, "only the one received before");
        assert!(s.remember_signature(&seen("kd_a_test", "sig1", NOW + 700)).await.unwrap());
        assert!(!s.remember_signature(&seen("kd_a_live", "sig1", NOW + 700)).await.unwrap());

        assert_eq!(s.fee_rate(&t, "wechat").await.unwrap(), None);
        s.set_fee_rate(&t, "wechat", 38, None).await.unwrap();
        s.set_fee_rate(&t, "wechat", 60, None).await.unwrap();
        assert_eq!(
            (s.fee_rate(&t, "wechat").await.unwrap(), s.fee_rate(&l, "wechat").await.unwrap()),
            (Some(60), None)
        );

        let member = |no: &str, code: &str| Member {
            id: 0,
            created: NOW,
            member_no: no.into(),
            phone: "13800000000".into(),
            name: "Mei".into(),
            pay_code: code.into(),
            balance: fen(0),
        };
        let mei = s.create_member(&t, &member("M1", "PC1")).await.unwrap();
        let taken = s.create_member(&t, &member("M1", "PC2")).await.unwrap_err();
        assert_eq!((taken.kind, taken.code), (ProblemKind::Conflict, "member_no_taken"));
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap(), mei);
        assert!(s.member(&l, mei.id).await.unwrap().is_none());
        assert_eq!(s.member_by_pay_code(&t, "PC1").await.unwrap().unwrap().id, mei.id);
        assert!(s.member_by_pay_code(&l, "PC1").await.unwrap().is_none());
        assert_eq!(s.top_up(&t, 999_999, fen(10), "t0", NOW).await.unwrap_err().kind, ProblemKind::NotFound);
        assert_eq!(s.top_up(&l, mei.id, fen(10), "t0", NOW).await.unwrap_err().kind, ProblemKind::NotFound);
        assert_eq!(s.top_up(&t, mei.id, fen(150), "t1", NOW).await.unwrap().balance, fen(150));

        // A scanned-code payment: order, pending charge and record together; found four ways.
        let o = order(&t, "1", 100);
        s.insert_pos_payment(&o, &charge(&o, "1", "wx"), &pos_meta("1", None)).await.unwrap();
        for by in [PosRef::PayNo("m_1".into()), PosRef::OrderNo("o_1".into()), PosRef::ChannelTradeNo("co_1".into())] {
            let record = s.pos_record(&t, &by).await.unwrap().unwrap();
            assert_eq!((record.order.id.as_str(), record.charge.id.as_str(), record.member), ("o_1", "ch_1", None));
        }
        assert!(s.pos_record(&l, &PosRef::PayNo("m_1".into())).await.unwrap().is_none());
        assert!(s.pos_meta(&t, &PosRef::PayNo("m_nope".into())).await.unwrap().is_none());

        // A wallet payment: the store finds the member by code and the rate in its transaction.
        s.set_fee_rate(&t, "balance", 100, None).await.unwrap();
        let wallet = |n: &str, amount: i64, code: &str, seen: Option<SeenSignature>| {
            let mut o = order(&t, n, amount);
            (o.status, o.amount_paid, o.time_paid) = (OrderStatus::Paid, o.actual_amount, Some(NOW + 5));
            let mut c = charge(&o, n, "balance");
            (c.status, c.time_paid, c.transaction_no) = (ChargeStatus::Succeeded, Some(NOW + 5), Some(format!("w{n}")));
            WalletPayment { order: o, charge: c, meta: pos_meta(n, None), pay_code: code.into(), now: NOW + 5, seen }
        };
        let unknown = s.wallet_payment(&wallet("2", 100, "PC-nobody", None)).await.unwrap_err();
        assert_eq!((unknown.kind, unknown.param.as_deref()), (ProblemKind::InvalidRequest, Some("auth_code")));
        let mut other_mode = wallet("2", 100, "PC1", None);
        (other_mode.order.mode, other_mode.charge.mode) = (Mode::Live, Mode::Live);
        let unknown = s.wallet_payment(&other_mode).await.unwrap_err();
        assert_eq!(unknown.param.as_deref(), Some("auth_code"), "a test-mode wallet is not live-mode's");
        nothing_written(s, &t, mei.id, "2").await;
        // One the wallet does not cover writes nothing but its signature, which is used up.
        let short = s.wallet_payment(&wallet("3", 200, "PC1", Some(seen("kd_a_test", "w3", NOW + 5)))).await;
        assert_eq!(short.unwrap_err().code, "insufficient_balance");
        nothing_written(s, &t, mei.id, "3").await;
        assert!(!s.remember_signature(&seen("kd_a_test", "w3", NOW + 6)).await.unwrap(), "kept");
        // One it covers: paid at once, settled at the rate, debited, recorded, events written,
        // and answered with what the database now holds.
        let w4 = s.wallet_payment(&wallet("4", 100, "PC1", Some(seen("kd_a_test", "w4", NOW + 5)))).await.unwrap();
        let member = w4.member.clone().unwrap();
        assert_eq!((member.id, member.balance), (mei.id, fen(50)));
        let settlement = w4.charge.settlement.as_ref().and_then(Settlement::from_json).unwrap();
        assert_eq!((settlement.rate.bp(), settlement.channel.fee, settlement.channel.received), (100, fen(1), fen(99)));
        let stored = s.pos_record(&t, &PosRef::PayNo("m_4".into())).await.unwrap().unwrap();
        assert_eq!(
            (&stored.order, &stored.charge, &stored.meta, &stored.member),
            (&w4.order, &w4.charge, &w4.meta, &w4.member)
        );
        assert_eq!(event_types(s, &t).await, ["charge.succeeded", "order.succeeded"]);
        let paging = paygate_domain::paging::Paging::Cursor { limit: 10, starting_after: None, ending_before: None };
        let events = s.list_events(&t, None, &Default::default(), &paging).await.unwrap().data;
        let view = OrderView { order: stored.order.clone(), charges: vec![stored.charge.clone()] };
        assert_eq!(events[0].object, objects::order(&view), "the event carries the order as stored");
        assert_eq!(events[1].object, objects::charge(&stored.charge, None));
        // Its envelope again is a replay: refused, and nothing more is written.
        let replay = s.wallet_payment(&wallet("5", 10, "PC1", Some(seen("kd_a_test", "w4", NOW + 6)))).await;
        assert_eq!(replay.unwrap_err().param.as_deref(), Some("sign"));
        assert!(s.order(&t, "o_5").await.unwrap().is_none());
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap().balance, fen(50));
        // The latest record for a reused out_trade_no, with its member.
        let latest = s.pos_record(&t, &PosRef::OutTradeNo("shop-1".into())).await.unwrap().unwrap();
        assert_eq!((latest.order.id.as_str(), latest.member.map(|m| m.id)), ("o_4", Some(mei.id)));

        // Refunding a wallet payment credits the wallet in the refund's transaction.
        let refund = RefundRequest {
            id: "re_3".into(),
            refund_no: "rn_3".into(),
            order_id: "o_4".into(),
            charge_id: None,
            amount: Some(fen(30)),
            description: String::new(),
            metadata: json!({}),
            created: NOW + 6,
        };
        s.reserve_refund(&t, &refund).await.unwrap();
        let done = RefundOutcome::Succeeded { transaction_no: None, time_succeed: NOW + 7 };
        s.finish_refund(&t, "re_3", &done).await.unwrap();
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap().balance, fen(80));
        let ledger = s.balance_transactions(&t, mei.id, 10).await.unwrap();
        let entries: Vec<_> = ledger.iter().map(|b| (b.kind.as_str(), b.amount, b.balance_after.fen())).collect();
        assert_eq!(entries, [("refund", 30, 80), ("payment", -100, 50), ("topup", 150, 150)]);
        assert_eq!(s.balance_transactions(&t, mei.id, 1).await.unwrap().len(), 1);
        assert!(s.balance_transactions(&l, mei.id, 10).await.unwrap().is_empty());

        // Reversal marks the record only.
        assert!(!s.pos_meta(&t, &PosRef::PayNo("m_1".into())).await.unwrap().unwrap().reversed);
        s.mark_reversed(&t, "o_1").await.unwrap();
        assert!(s.pos_meta(&t, &PosRef::PayNo("m_1".into())).await.unwrap().unwrap().reversed);
    });
}

/// A wallet payment `n` of `amount` by code, signed `sign` (paid at [`NOW`]).
fn wallet_payment(t: &Scope, n: &str, amount: i64, code: &str, sign: &str) -> WalletPayment {
    let mut o = order(t, n, amount);
    (o.status, o.amount_paid, o.time_paid) = (OrderStatus::Paid, o.actual_amount, Some(NOW));
    let mut c = charge(&o, n, "balance");
    (c.status, c.time_paid, c.transaction_no) = (ChargeStatus::Succeeded, Some(NOW), Some(format!("w{n}")));
    let seen = Some(SeenSignature { public_id: "kd_a_test".into(), sign: sign.into(), at: NOW });
    WalletPayment { order: o, charge: c, meta: pos_meta(n, None), pay_code: code.into(), now: NOW, seen }
}

/// Runs the payments at once (on PostgreSQL those that queue are written in one transaction).
async fn pay_all(s: &Arc<dyn Store>, payments: Vec<WalletPayment>) -> Vec<paygate_store::Result<PosRecord>> {
    let tasks: Vec<_> = payments
        .into_iter()
        .map(|p| {
            let s = s.clone();
            tokio::spawn(async move { s.wallet_payment(&p).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

/// Concurrent wallet payments of two wallets, with a replay, an unknown code, and wallets that
/// cover only some of what is asked: each payment answered for itself, every debit in the
/// ledger in order, and the debits adding up to the balance change exactly.
fn concurrent_wallet_payments(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let t = test(&a);
        let new_member = |no: &str, code: &str| Member {
            id: 0,
            created: NOW,
            member_no: no.into(),
            phone: "1".into(),
            name: no.into(),
            pay_code: code.into(),
            balance: fen(0),
        };
        let mei = s.create_member(&t, &new_member("M1", "PC1")).await.unwrap();
        let bo = s.create_member(&t, &new_member("M2", "PC2")).await.unwrap();
        s.top_up(&t, mei.id, fen(1000), "t1", NOW).await.unwrap();
        s.top_up(&t, bo.id, fen(100), "t2", NOW).await.unwrap();
        let mut payments: Vec<WalletPayment> =
            (10..18).map(|n| wallet_payment(&t, &n.to_string(), n, "PC1", &format!("s{n}"))).collect();
        payments.push(wallet_payment(&t, "20", 30, "PC2", "s20"));
        payments.push(wallet_payment(&t, "21", 30, "PC2", "s21"));
        payments.push(wallet_payment(&t, "22", 5, "PC-nobody", "s22"));
        payments.push(wallet_payment(&t, "23", 5, "PC1", "s10"));
        let answers = pay_all(&db.store, payments).await;
        let outcome = |a: &paygate_store::Result<PosRecord>| match a {
            Ok(r) => r.order.id.clone(),
            Err(p) => p.param.clone().unwrap_or_default(),
        };
        let outcomes: Vec<String> = answers.iter().map(outcome).collect();
        let expected: Vec<String> = (11..18).chain(20..22).map(|n| format!("o_{n}")).collect();
        assert_eq!((&outcomes[1..10], outcomes[10].as_str()), (&expected[..], "auth_code"), "{outcomes:?}");
        // Payments 10 and 23 came with the same signature: whichever came first is paid.
        let (first, replay) = (outcomes[0].as_str(), outcomes[11].as_str());
        assert!([(first, replay)] == [("o_10", "sign")] || [(first, replay)] == [("sign", "o_23")], "{outcomes:?}");
        let pc1: i64 = answers
            .iter()
            .flatten()
            .filter(|r| r.member.as_ref().unwrap().id == mei.id)
            .map(|r| r.order.amount.fen())
            .sum();
        assert_eq!(pc1, (10..18).sum::<i64>() - if first == "sign" { 10 - 5 } else { 0 });
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap().balance, fen(1000 - pc1));
        assert_eq!(s.member(&t, bo.id).await.unwrap().unwrap().balance, fen(40));
        assert_eq!(event_types(s, &t).await.len(), 2 * 10);
        // Every answer carries the balance its own debit left, which is what its ledger entry says.
        let ledger = s.balance_transactions(&t, mei.id, 100).await.unwrap();
        for record in answers.iter().flatten().filter(|r| r.member.as_ref().unwrap().id == mei.id) {
            let entry = ledger.iter().find(|e| e.reference == record.charge.id).unwrap();
            assert_eq!(Some(entry.balance_after), record.member.as_ref().map(|m| m.balance));
        }
        assert_chained(&s.balance_transactions(&t, mei.id, 100).await.unwrap());

        // Bo has 40: of four payments of 15, two fit; the others are refused alone and keep
        // their signatures.
        let payments = (30..34).map(|n| wallet_payment(&t, &n.to_string(), 15, "PC2", &format!("s{n}"))).collect();
        let answers = pay_all(&db.store, payments).await;
        let codes: Vec<&str> = answers.iter().map(|a| a.as_ref().map_or_else(|p| p.code, |_| "paid")).collect();
        assert_eq!(codes.iter().filter(|c| **c == "paid").count(), 2, "{codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == "insufficient_balance").count(), 2, "{codes:?}");
        assert_eq!(s.member(&t, bo.id).await.unwrap().unwrap().balance, fen(10));
        let ledger = s.balance_transactions(&t, bo.id, 100).await.unwrap();
        assert_eq!(ledger.len(), 1 + 2 + 2);
        assert_chained(&ledger);
        for n in 30..34 {
            let seen = SeenSignature { public_id: "kd_a_test".into(), sign: format!("s{n}"), at: NOW };
            assert!(!s.remember_signature(&seen).await.unwrap(), "s{n} is used up");
        }
    });
}

/// Newest first, as the store lists it: each entry is the one before it plus its amount.
fn assert_chained(ledger: &[BalanceTransaction]) {
    let oldest_first: Vec<_> = ledger.iter().rev().collect();
    assert_eq!(oldest_first[0].kind, "topup");
    for pair in oldest_first.windows(2) {
        assert_eq!(pair[0].balance_after.fen() + pair[1].amount, pair[1].balance_after.fen(), "{ledger:?}");
    }
}
