//! `ConsoleStore`: users (unique email per app), sessions (idle and absolute expiry at their exact bounds, a
//! disabled user, logout), the audit log (cursor, written with its change), the audited refund, and the lookups
//! the console's search and payment page use, each within its scope only.

use crate::support::{self, Backend};
use crate::{app, live, paid, test, Db, NOW};
use paygate_domain::{Mode, ProblemKind};
use paygate_store::console::{AuditEntry, ConsoleUser, NewSession, Role, SessionLimits};
use paygate_store::{RefundRequest, Store};
use serde_json::json;

crate::both!(console_users_sessions_and_audit, console_refund_audit_and_lookups, expired_sessions_are_swept);

const LIMITS: SessionLimits = SessionLimits { idle: 1800, absolute: 43_200 };

fn user(app_id: &str, id: &str, email: &str, role: Role) -> ConsoleUser {
    let password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into();
    ConsoleUser {
        id: id.into(),
        app_id: app_id.into(),
        email: email.into(),
        role,
        password_hash,
        disabled: false,
        created: NOW,
    }
}

fn audit(app_id: &str, action: &str, object: &str, at: i64) -> AuditEntry {
    AuditEntry {
        app_id: app_id.into(),
        mode: Mode::Test,
        user_id: None,
        actor: "cli".into(),
        action: action.into(),
        object_id: object.into(),
        before: None,
        after: Some(json!({ "n": at })),
        created: at,
    }
}

fn session(app_id: &str, user_id: &str, token: u8, at: i64) -> NewSession {
    NewSession {
        token_hash: vec![token; 32],
        user_id: user_id.into(),
        app_id: app_id.into(),
        csrf_token: format!("csrf{token}"),
        created: at,
    }
}

fn console_users_sessions_and_audit(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let (a, b) = (app(s, "a", 10).await, app(s, "b", 20).await);
        let ann = user(&a.id, "usr_ann", "ann@a.test", Role::Support);
        s.create_console_user(&ann, &audit(&a.id, "console_user.create", "usr_ann", NOW)).await.unwrap();
        // The same email in the same app is a conflict (and writes no audit entry); in another app it is another user.
        let again = user(&a.id, "usr_ann2", "ann@a.test", Role::Admin);
        let e = s.create_console_user(&again, &audit(&a.id, "console_user.create", "usr_ann2", NOW)).await;
        assert_eq!(e.unwrap_err().kind, ProblemKind::Conflict);
        let other = user(&b.id, "usr_ann_b", "ann@a.test", Role::Viewer);
        s.create_console_user(&other, &audit(&b.id, "console_user.create", "usr_ann_b", NOW)).await.unwrap();
        assert_eq!(s.console_user(&a.id, "ann@a.test").await.unwrap(), Some(ann.clone()));
        assert_eq!(s.console_user(&b.id, "ann@a.test").await.unwrap().unwrap().role, Role::Viewer);
        assert!(s.console_user(&a.id, "nobody@a.test").await.unwrap().is_none());

        // Idle expiry at its exact bound: used 1 799 s later it lives on; 1 800 s after its last use it is gone.
        s.create_console_session(&session(&a.id, "usr_ann", 1, NOW), LIMITS, &audit(&a.id, "login", "usr_ann", NOW))
            .await
            .unwrap();
        let live_one = s.touch_console_session(&[1; 32], NOW + 1799, LIMITS).await.unwrap().expect("alive");
        assert_eq!(
            (live_one.user, live_one.csrf_token.as_str(), live_one.last_seen),
            (ann.clone(), "csrf1", NOW + 1799)
        );
        // Used again within the minute: answered from a read, `last_seen` not moved (so idle expiry still counts
        // from NOW + 1799).
        let read = s.touch_console_session(&[1; 32], NOW + 1799 + 59, LIMITS).await.unwrap().expect("alive");
        assert_eq!(read.last_seen, NOW + 1799);
        assert!(s.touch_console_session(&[1; 32], NOW + 1799 + 1800, LIMITS).await.unwrap().is_none());
        assert!(s.touch_console_session(&[1; 32], NOW + 1799 + 1, LIMITS).await.unwrap().is_none(), "deleted");
        assert!(s.touch_console_session(&[9; 32], NOW, LIMITS).await.unwrap().is_none(), "unknown token");

        // Absolute expiry: kept busy, it still ends 12 hours after it was made.
        s.create_console_session(&session(&a.id, "usr_ann", 2, NOW), LIMITS, &audit(&a.id, "login", "usr_ann", NOW))
            .await
            .unwrap();
        let mut at = NOW;
        while at + 1700 < NOW + 43_200 {
            at += 1700;
            assert!(s.touch_console_session(&[2; 32], at, LIMITS).await.unwrap().is_some(), "at {}", at - NOW);
        }
        // Used 30 s before its end, then at its end: within the minute (the read path), still ended on time.
        assert!(s.touch_console_session(&[2; 32], NOW + 43_170, LIMITS).await.unwrap().is_some());
        assert!(s.touch_console_session(&[2; 32], NOW + 43_200, LIMITS).await.unwrap().is_none());

        // A disabled user's session opens nothing.
        s.create_console_session(&session(&b.id, "usr_ann_b", 3, NOW), LIMITS, &audit(&b.id, "login", "x", NOW))
            .await
            .unwrap();
        disable(&db.url, "usr_ann_b").await;
        assert!(s.touch_console_session(&[3; 32], NOW + 1, LIMITS).await.unwrap().is_none());

        // Logout: once (with its audit entry); a second time there is nothing to end.
        s.create_console_session(&session(&a.id, "usr_ann", 4, NOW), LIMITS, &audit(&a.id, "login", "usr_ann", NOW))
            .await
            .unwrap();
        assert!(s.end_console_session(&[4; 32], &audit(&a.id, "logout", "usr_ann", NOW + 5)).await.unwrap());
        assert!(!s.end_console_session(&[4; 32], &audit(&a.id, "logout", "usr_ann", NOW + 6)).await.unwrap());
        assert!(s.touch_console_session(&[4; 32], NOW + 7, LIMITS).await.unwrap().is_none());

        // The log: newest first, per app, a cursor on seq; the failed user create left nothing.
        let log = s.console_audit(&a.id, None, 50).await.unwrap();
        let actions: Vec<&str> = log.iter().map(|r| r.entry.action.as_str()).collect();
        assert_eq!(actions, ["logout", "login", "login", "login", "console_user.create"]);
        assert!(log.windows(2).all(|w| w[0].seq > w[1].seq));
        assert_eq!(log[4].entry.after, Some(json!({ "n": NOW })));
        let older = s.console_audit(&a.id, Some(log[1].seq), 2).await.unwrap();
        assert_eq!(older.iter().map(|r| r.seq).collect::<Vec<_>>(), [log[2].seq, log[3].seq]);
        assert!(s.console_audit(&b.id, None, 50).await.unwrap().iter().all(|r| r.entry.app_id == b.id));
    });
}

/// Disables a user behind the store's back: no store method does it yet (the console's user admin will).
async fn disable(url: &str, user_id: &str) {
    let sql = format!("UPDATE console_users SET disabled = TRUE WHERE id = '{user_id}'");
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            conn.execute_batch(&sql).unwrap();
        }
        None => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client.batch_execute(&sql).await.unwrap();
        }
    }
}

fn console_refund_audit_and_lookups(backend: Backend) {
    let db = Db::open(backend);
    let s: &dyn Store = db.store.as_ref();
    db.run(async {
        let (a, b) = (app(s, "a", 10).await, app(s, "b", 20).await);
        let (order, charge) = paid(s, &test(&a), "m-1", 1_000, "wx_pub").await;
        let request = |id: &str, amount| RefundRequest {
            id: id.into(),
            refund_no: format!("rf{id}"),
            order_id: order.id.clone(),
            charge_id: None,
            amount: Some(paygate_domain::Amount::from_stored(amount)),
            description: "damaged".into(),
            metadata: json!({}),
            created: NOW + 10,
        };
        let entry = AuditEntry {
            user_id: Some("usr_x".into()),
            actor: "x@a.test".into(),
            ..audit(&a.id, "refund.create", &order.id, NOW + 10)
        };
        let refund = s.reserve_refund_audited(&test(&a), &request("re_1", 300), &entry).await.unwrap();
        assert_eq!(refund.amount.fen(), 300);
        let log = s.console_audit(&a.id, None, 10).await.unwrap();
        let written = &log[0].entry;
        assert_eq!((written.object_id.as_str(), written.actor.as_str()), ("re_1", "x@a.test"));
        assert_eq!(written.before.as_ref().unwrap()["order"]["refund_reserved"], 0);
        assert_eq!(written.after.as_ref().unwrap()["order"]["refund_reserved"], 300);
        assert_eq!(written.after.as_ref().unwrap()["refund"]["id"], "re_1");
        // A refused reservation writes no audit entry: the entry and the change are one transaction.
        let e = s.reserve_refund_audited(&test(&a), &request("re_2", 800), &entry).await.unwrap_err();
        assert_ne!(e.kind, ProblemKind::Internal, "{e}");
        assert_eq!(s.console_audit(&a.id, None, 10).await.unwrap().len(), 1);
        // Another app's scope cannot refund this order, nor see it.
        assert!(s.reserve_refund_audited(&test(&b), &request("re_3", 100), &entry).await.is_err());
        assert!(s.console_audit(&b.id, None, 10).await.unwrap().is_empty());

        // Search lookups, scoped.
        assert_eq!(
            s.order_id_by_merchant_no(&test(&a), &order.merchant_order_no).await.unwrap(),
            Some(order.id.clone())
        );
        assert!(s.order_id_by_merchant_no(&live(&a), &order.merchant_order_no).await.unwrap().is_none());
        assert!(s.order_id_by_merchant_no(&test(&b), &order.merchant_order_no).await.unwrap().is_none());

        // The payment's events by their objects' ids: the order's and the charge's, newest first; none elsewhere.
        let ids = vec![order.id.clone(), charge.id.clone(), "re_1".to_string()];
        let events = s.events_of_objects(&test(&a), &ids, 50).await.unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert!(kinds.contains(&"charge.succeeded") && kinds.contains(&"order.succeeded"), "{kinds:?}");
        assert_eq!(s.events_of_objects(&test(&a), &ids, 1).await.unwrap().len(), 1);
        assert!(s.events_of_objects(&test(&b), &ids, 50).await.unwrap().is_empty());
        assert!(s.events_of_objects(&live(&a), &ids, 50).await.unwrap().is_empty());
        assert!(s.events_of_objects(&test(&a), &[], 50).await.unwrap().is_empty());
    });
}

/// The worker's sweep: idle and absolute expiry at their exact bounds, a live session kept, batches bounded.
fn expired_sessions_are_swept(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let ann = user(&a.id, "usr_ann", "ann@a.test", Role::Support);
        s.create_console_user(&ann, &audit(&a.id, "console_user.create", "usr_ann", NOW)).await.unwrap();
        let login = |token: u8, at: i64| {
            let (new, entry) = (session(&a.id, "usr_ann", token, at), audit(&a.id, "login", "x", at));
            async move { s.create_console_session(&new, LIMITS, &entry).await }
        };
        // 1 is left idle; 2 is used 100 s later, so it outlives 1 by 100 s.
        login(1, NOW).await.unwrap();
        login(2, NOW).await.unwrap();
        assert!(s.touch_console_session(&[2; 32], NOW + 100, LIMITS).await.unwrap().is_some());
        assert_eq!(s.delete_expired_console_sessions(NOW + 1799, LIMITS, 10).await.unwrap(), 0, "not yet");
        assert_eq!(s.delete_expired_console_sessions(NOW + 1800, LIMITS, 10).await.unwrap(), 1, "1 at its bound");
        assert!(s.touch_console_session(&[2; 32], NOW + 1850, LIMITS).await.unwrap().is_some(), "2 is kept");

        // Kept busy, 2 still goes at its absolute bound (12 hours after it was made).
        let mut at = NOW + 1850;
        while at + 1700 < NOW + 43_200 {
            at += 1700;
            assert!(s.touch_console_session(&[2; 32], at, LIMITS).await.unwrap().is_some());
        }
        assert_eq!(s.delete_expired_console_sessions(NOW + 43_199, LIMITS, 10).await.unwrap(), 0);
        assert_eq!(s.delete_expired_console_sessions(NOW + 43_200, LIMITS, 10).await.unwrap(), 1);

        // A backlog goes a batch at a time.
        let later = NOW + 50_000;
        for token in 3..8 {
            login(token, later).await.unwrap();
        }
        let sweep = |at: i64| s.delete_expired_console_sessions(at, LIMITS, 2);
        let passes = [sweep(later + 1800).await, sweep(later + 1800).await, sweep(later + 1800).await];
        assert_eq!(passes.map(Result::unwrap), [2, 2, 1]);
        assert_eq!(sweep(later + 1800).await.unwrap(), 0);
    });
}
