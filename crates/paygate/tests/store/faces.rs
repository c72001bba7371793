//! The faces' storage: 知晓云 users, sessions and payment records; profit sharing; the
//! cashier's replay cache, fee rates, members, wallets and point-of-sale records.

use crate::support::{self, Backend};
use crate::{app, charge, event_types, fen, live, order, paid, test, Db, NOW};
use paygate_domain::pos::Discounts;
use paygate_domain::shares::{Receiver, ShareKind, ShareStatus};
use paygate_domain::{ChargeStatus, OrderStatus, ProblemKind};
use paygate_store::hserve::{Condition, Field, Op, Operand, RecordMeta, RecordQuery};
use paygate_store::{Member, PosMeta, PosRef, RefundOutcome, RefundRequest, ShareOutcome, ShareRequest, ShareReserved};
use serde_json::json;

crate::both!(hserve_users_sessions_records, profit_sharing, point_of_sale);

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

fn point_of_sale(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let (t, l) = (test(&a), live(&a));
        // The replay cache: a signature once; old ones are forgotten.
        assert!(s.remember_signature("kd_a_test", "sig1", NOW, NOW - 600).await.unwrap());
        assert!(!s.remember_signature("kd_a_test", "sig1", NOW + 1, NOW - 600).await.unwrap());
        assert!(s.remember_signature("kd_a_live", "sig1", NOW + 1, NOW - 600).await.unwrap());
        assert!(s.remember_signature("kd_a_test", "sig1", NOW + 700, NOW + 100).await.unwrap());

        assert_eq!(s.fee_rate(&t, "wechat").await.unwrap(), None);
        s.set_fee_rate(&t, "wechat", 38).await.unwrap();
        s.set_fee_rate(&t, "wechat", 60).await.unwrap();
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

        // A wallet that does not cover the payment writes nothing at all.
        let mut big = order(&t, "2", 200);
        big.status = OrderStatus::Paid;
        big.amount_paid = big.actual_amount;
        let mut big_charge = charge(&big, "2", "balance");
        (big_charge.status, big_charge.member_id) = (ChargeStatus::Succeeded, Some(mei.id));
        let short = s.insert_wallet_payment(&big, &big_charge, &pos_meta("2", Some(mei.id)), NOW).await.unwrap_err();
        assert_eq!(short.code, "insufficient_balance");
        assert!(s.order(&t, "o_2").await.unwrap().is_none());
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap().balance, fen(150));
        // One it covers: paid at once, the debit recorded, events written.
        let mut w = order(&t, "3", 100);
        (w.status, w.amount_paid) = (OrderStatus::Paid, w.actual_amount);
        let mut wc = charge(&w, "3", "balance");
        (wc.status, wc.member_id) = (ChargeStatus::Succeeded, Some(mei.id));
        s.insert_wallet_payment(&w, &wc, &pos_meta("3", Some(mei.id)), NOW + 5).await.unwrap();
        assert_eq!(s.member(&t, mei.id).await.unwrap().unwrap().balance, fen(50));
        // The latest record for a reused out_trade_no, with its member.
        let latest = s.pos_record(&t, &PosRef::OutTradeNo("shop-1".into())).await.unwrap().unwrap();
        assert_eq!((latest.order.id.as_str(), latest.member.map(|m| m.id)), ("o_3", Some(mei.id)));
        assert_eq!(event_types(s, &t).await, ["charge.succeeded", "order.succeeded"]);

        // Refunding a wallet payment credits the wallet in the refund's transaction.
        let refund = RefundRequest {
            id: "re_3".into(),
            refund_no: "rn_3".into(),
            order_id: "o_3".into(),
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
