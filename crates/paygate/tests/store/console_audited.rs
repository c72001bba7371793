//! The console's audited changes in the store: a key roll, the app's public key, a fee rate and a sandbox
//! settlement each write their audit entry in the change's own transaction — both or neither. A change that fails
//! or changes nothing writes no entry; the entry's `before` is what the transaction read; `/v1` and the CLI
//! (`audit: None`) write none.

use crate::outbox::endpoint;
use crate::support::{self, Backend};
use crate::{app, charge, key, order, paid, success, test, Db, NOW};
use paygate_domain::paging::Paging;
use paygate_domain::Mode;
use paygate_store::console::{AuditEntry, AuditRecord};
use paygate_store::{SettledCharge, Store};
use serde_json::{json, Value};

crate::both!(audited_changes_commit_with_their_entry);
crate::both!(a_refused_audit_entry_undoes_its_change);

fn entry(app_id: &str, action: &str, object: &str, after: Value) -> AuditEntry {
    AuditEntry {
        app_id: app_id.into(),
        mode: Mode::Test,
        user_id: Some("usr_admin".into()),
        actor: "admin@a.test".into(),
        action: action.into(),
        object_id: object.into(),
        before: None,
        after: Some(after),
        created: NOW,
    }
}

async fn log(s: &dyn Store, app_id: &str) -> Vec<AuditRecord> {
    s.console_audit(app_id, None, 100).await.unwrap()
}

/// The newest entry's action, `before` and `after`.
async fn newest(s: &dyn Store, app_id: &str) -> (String, Option<Value>, Option<Value>) {
    let record = log(s, app_id).await.into_iter().next().expect("an audit entry");
    (record.entry.action, record.entry.before, record.entry.after)
}

fn audited_changes_commit_with_their_entry(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        app(s, "b", 20).await;

        // A key roll: the key, the old keys' expiry and the entry together.
        let roll = entry(&a.id, "api_key.roll", &a.id, json!({ "old_keys_grace_seconds": 60 }));
        assert!(s.roll_api_key(&a.id, &key(30, Mode::Test), NOW + 60, Some(&roll)).await.unwrap());
        assert_eq!(log(s, &a.id).await.len(), 1);
        assert_eq!(newest(s, &a.id).await, ("api_key.roll".into(), None, roll.after.clone()));
        assert!(s.find_api_key(&[30; 32], NOW).await.unwrap().is_some());
        // A roll that fails (the key hash is taken) writes neither the expiry nor the entry …
        assert!(s.roll_api_key(&a.id, &key(30, Mode::Test), NOW + 5, Some(&roll)).await.is_err());
        assert_eq!(s.find_api_key(&[10; 32], NOW).await.unwrap().unwrap().expires_at, Some(NOW + 60));
        assert_eq!(log(s, &a.id).await.len(), 1, "no entry for a failed roll");
        // … nor does one of an app that does not exist.
        assert!(!s.roll_api_key("app_nope", &key(50, Mode::Test), NOW + 5, Some(&roll)).await.unwrap());
        assert_eq!(log(s, &a.id).await.len(), 1);

        // The public key: `before` is the key the transaction replaced.
        let set = |pem: Option<&str>| entry(&a.id, "app.public_key", &a.id, json!({ "public_key_pem": pem }));
        assert!(s.set_app_public_key(&a.id, Some("PEM1"), Some(&set(Some("PEM1")))).await.unwrap());
        let (_, before, after) = newest(s, &a.id).await;
        assert_eq!(
            (before, after),
            (Some(json!({ "public_key_pem": null })), Some(json!({ "public_key_pem": "PEM1" })))
        );
        assert!(s.set_app_public_key(&a.id, None, Some(&set(None))).await.unwrap());
        let (_, before, after) = newest(s, &a.id).await;
        assert_eq!(
            (before, after),
            (Some(json!({ "public_key_pem": "PEM1" })), Some(json!({ "public_key_pem": null })))
        );
        assert!(!s.set_app_public_key("app_nope", Some("PEM"), Some(&set(Some("PEM")))).await.unwrap());
        assert_eq!(log(s, &a.id).await.len(), 3, "no entry for an app that does not exist");

        // A fee rate: `before` is the rate replaced (none at first).
        let scope = test(&a);
        let rate = |bp: i64| entry(&a.id, "fee_rate.set", "wechat", json!({ "rate_bp": bp }));
        s.set_fee_rate(&scope, "wechat", 38, Some(&rate(38))).await.unwrap();
        assert_eq!(newest(s, &a.id).await.1, Some(json!({ "rate_bp": null })));
        s.set_fee_rate(&scope, "wechat", 60, Some(&rate(60))).await.unwrap();
        assert_eq!(newest(s, &a.id).await.1, Some(json!({ "rate_bp": 38 })));
        // A rate the schema refuses (CHECK 0..=10000) changes nothing and writes no entry.
        assert!(s.set_fee_rate(&scope, "wechat", 20_000, Some(&rate(20_000))).await.is_err());
        assert_eq!(s.fee_rate(&scope, "wechat").await.unwrap(), Some(60));
        assert_eq!(log(s, &a.id).await.len(), 5);

        // `/v1` and the CLI pass no entry: their changes are not in the console's log.
        s.set_fee_rate(&scope, "alipay", 55, None).await.unwrap();
        assert!(s.set_app_public_key(&a.id, Some("PEM2"), None).await.unwrap());
        assert!(s.roll_api_key(&a.id, &key(31, Mode::Test), NOW + 60, None).await.unwrap());
        assert_eq!(log(s, &a.id).await.len(), 5);

        // A sandbox settlement: `before` as read under the order's lock, `after` as settled.
        let o = order(&scope, "1", 1_000);
        s.insert_order(&o).await.unwrap();
        s.open_charge(&scope, &charge(&o, "1", "wx_pub")).await.unwrap();
        let pay = entry(&a.id, "charge.sandbox_pay", "ch_1", json!({}));
        let settled = s.settle_charge_audited(&scope, "ch_1", &success("tx_1"), &pay).await.unwrap();
        assert!(matches!(settled, SettledCharge::Settled { .. }), "{settled:?}");
        let (action, before, after) = newest(s, &a.id).await;
        assert_eq!(action, "charge.sandbox_pay");
        assert_eq!(before, Some(json!({ "order": "o_1", "status": "pending" })));
        assert_eq!(after, Some(json!({ "status": "succeeded", "transaction_no": "tx_1" })));
        // Paying it again changes nothing, so nothing is audited.
        let again = s.settle_charge_audited(&scope, "ch_1", &success("tx_2"), &pay).await.unwrap();
        assert!(matches!(again, SettledCharge::NotPending(_)), "{again:?}");
        assert_eq!(log(s, &a.id).await.len(), 6);
        assert!(log(s, "app_b").await.is_empty(), "another app's log is untouched");
    });
}

/// Makes every insert into the audit log fail, as a full disk or a broken constraint would.
async fn refuse_audit_entries(url: &str) {
    match url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            conn.execute_batch(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON console_audit BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        }
        None => {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS \
                     $$ BEGIN RAISE EXCEPTION 'refused'; END $$; \
                     CREATE TRIGGER refuse_audit BEFORE INSERT ON console_audit \
                     FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
                )
                .await
                .unwrap();
        }
    }
}

/// Both or neither, from the other side: when the entry cannot be written, each audited change is undone with it
/// (a change committed first and audited after would pass every other test here and fail this one).
fn a_refused_audit_entry_undoes_its_change(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        let a = app(s, "a", 10).await;
        let scope = test(&a);
        s.set_fee_rate(&scope, "wechat", 38, None).await.unwrap();
        let hook = |n: &str| endpoint(n, &scope, None);
        s.create_endpoint(&hook("kept"), None).await.unwrap();
        paid(s, &scope, "1", 1_000, "wx_pub").await;
        let paging = Paging::Cursor { limit: 100, starting_after: None, ending_before: None };
        let event = s.list_events(&scope, None, &Default::default(), &paging).await.unwrap().data[0].id.clone();
        let deliveries = s.deliveries(&scope, &event).await.unwrap().len();
        let o = order(&scope, "2", 500);
        s.insert_order(&o).await.unwrap();
        s.open_charge(&scope, &charge(&o, "2", "wx_pub")).await.unwrap();

        refuse_audit_entries(&db.url).await;
        let e = |action: &str| entry(&a.id, action, &a.id, json!({}));
        assert!(s.roll_api_key(&a.id, &key(30, Mode::Test), NOW + 60, Some(&e("api_key.roll"))).await.is_err());
        assert!(s.find_api_key(&[30; 32], NOW).await.unwrap().is_none(), "the new key was not kept");
        assert_eq!(s.find_api_key(&[10; 32], NOW).await.unwrap().unwrap().expires_at, None, "nor the old one's end");
        assert!(s.set_app_public_key(&a.id, Some("PEM"), Some(&e("app.public_key"))).await.is_err());
        assert_eq!(s.app(&a.id).await.unwrap().unwrap().public_key_pem, None);
        assert!(s.set_fee_rate(&scope, "wechat", 60, Some(&e("fee_rate.set"))).await.is_err());
        assert_eq!(s.fee_rate(&scope, "wechat").await.unwrap(), Some(38));
        assert!(s.create_endpoint(&hook("new"), Some(&e("webhook_endpoint.create"))).await.is_err());
        assert!(s.delete_endpoint(&scope, "we_kept", Some(&e("webhook_endpoint.delete"))).await.is_err());
        assert!(s.set_endpoint_disabled(&scope, "we_kept", true, Some(&e("webhook_endpoint.disable"))).await.is_err());
        let endpoints = s.endpoints(&scope).await.unwrap();
        assert_eq!(endpoints.iter().map(|e| (e.id.as_str(), e.disabled)).collect::<Vec<_>>(), [("we_kept", false)]);
        assert!(s.resend_event(&scope, &event, NOW + 5, Some(&e("event.resend"))).await.is_err());
        assert_eq!(s.deliveries(&scope, &event).await.unwrap().len(), deliveries, "no delivery queued");
        assert!(s.settle_charge_audited(&scope, "ch_2", &success("tx_2"), &e("charge.sandbox_pay")).await.is_err());
        assert_eq!(s.charge(&scope, "ch_2").await.unwrap().unwrap().status, paygate_domain::ChargeStatus::Pending);
        assert!(log(s, &a.id).await.is_empty());
    });
}
