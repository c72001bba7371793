//! Apps, keys (rolling included), settings, the signed faces' credentials, health and figures.

use crate::support::{self, Backend};
use crate::{app, key, test, Db, NOW};
use paygate_core::{Clock, Paygate, Policy};
use paygate_domain::{LatePayment, Mode, ProblemKind};
use paygate_store::ExposeSecret;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

crate::both!(apps_and_settings, key_rolling_in_the_store, key_rolling_through_auth);

fn apps_and_settings(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        assert_eq!(s.backend(), if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
        s.ready().await.unwrap();
        // Migrating again is a no-op.
        s.migrate().await.unwrap();

        // A setting is created once; later values never replace it.
        assert_eq!(s.setting("server_secret", b"first").await.unwrap(), b"first");
        assert_eq!(s.setting("server_secret", b"second").await.unwrap(), b"first");

        assert_eq!(s.count_apps().await.unwrap(), 0);
        assert!(s.list_apps().await.unwrap().is_empty());
        let a = app(s, "a", 10).await;
        let b = app(s, "b", 20).await;
        assert_eq!(s.count_apps().await.unwrap(), 2);
        let ids: Vec<_> = s.list_apps().await.unwrap().into_iter().map(|x| x.id).collect();
        assert_eq!(ids, ["app_a", "app_b"]);
        assert_eq!(s.app("app_a").await.unwrap().unwrap(), a);
        assert!(s.app("app_nope").await.unwrap().is_none());
        // The same app id twice is refused, and writes none of the second app's rows.
        let again = s.create_app(&b, &[key(99, Mode::Test)], &[], &[]).await;
        assert!(again.is_err());
        assert!(s.find_api_key(&[99; 32], NOW).await.unwrap().is_none());

        // Keys: each names its app and mode; an unknown hash is nobody's.
        let owner = s.find_api_key(&[11; 32], NOW).await.unwrap().unwrap();
        assert_eq!((owner.app.id.as_str(), owner.mode, owner.expires_at), ("app_a", Mode::Live, None));
        assert_eq!(s.find_api_key(&[20; 32], NOW).await.unwrap().unwrap().app, b);
        assert!(s.find_api_key(&[1; 32], NOW).await.unwrap().is_none());

        // App settings: applied to the app named, false for an unknown app.
        assert!(s.set_app_public_key("app_a", Some("PEM"), None).await.unwrap());
        assert!(!s.set_app_public_key("app_nope", Some("PEM"), None).await.unwrap());
        assert!(s.set_app_late_payment("app_a", LatePayment::Hold).await.unwrap());
        assert!(!s.set_app_late_payment("app_nope", LatePayment::Hold).await.unwrap());
        assert!(s.set_app_max_share("app_a", 5000).await.unwrap());
        assert!(!s.set_app_max_share("app_nope", 5000).await.unwrap());
        let changed = s.app("app_a").await.unwrap().unwrap();
        assert_eq!(
            (changed.public_key_pem.as_deref(), changed.late_payment, changed.max_share_bps),
            (Some("PEM"), LatePayment::Hold, 5000)
        );
        assert!(s.set_app_public_key("app_a", None, None).await.unwrap());
        assert!(s.app("app_a").await.unwrap().unwrap().public_key_pem.is_none());
        // What a key lookup returns follows the app's settings.
        assert_eq!(s.find_api_key(&[10; 32], NOW).await.unwrap().unwrap().app.max_share_bps, 5000);

        // 知晓云 client ids.
        let (found, mode) = s.hserve_client("cl_a_live").await.unwrap().unwrap();
        assert_eq!((found.id.as_str(), mode), ("app_a", Mode::Live));
        assert!(s.hserve_client("cl_nope").await.unwrap().is_none());
        let clients = s.hserve_clients("app_b").await.unwrap();
        assert_eq!(clients, [("cl_b_test".to_string(), Mode::Test), ("cl_b_live".to_string(), Mode::Live)]);
        assert!(s.hserve_clients("app_nope").await.unwrap().is_empty());

        // Signed faces' credentials: the secret round-trips and never shows in Debug.
        let (cred, owner) = s.face_credential("kd_b_test").await.unwrap().unwrap();
        assert_eq!((cred.scope.clone(), owner.id.as_str()), (test(&b), "app_b"));
        assert_eq!(cred.secret.expose_secret(), "secret-of-b-test");
        assert_eq!(cred.token.as_deref(), Some("UTb"));
        assert!(!format!("{cred:?}").contains("secret-of-b"), "{cred:?}");
        assert!(s.face_credential("kd_nope").await.unwrap().is_none());
        let creds = s.face_credentials("app_a").await.unwrap();
        assert_eq!(creds.iter().map(|c| c.public_id.as_str()).collect::<Vec<_>>(), ["kd_a_test", "kd_a_live"]);

        // Pool figures are in range; nothing is waiting on an idle store.
        let pool = s.pool_stats().await.unwrap();
        assert!(pool.in_use >= 0 && pool.idle >= 0 && pool.size == pool.in_use + pool.idle, "{pool:?}");
        assert!(pool.max_size >= 1 && pool.waiting == 0, "{pool:?}");
    });
}

fn key_rolling_in_the_store(backend: Backend) {
    let db = Db::open(backend);
    let s = db.store.as_ref();
    db.run(async {
        app(s, "a", 10).await;
        app(s, "b", 20).await;
        assert!(!s.roll_api_key("app_nope", &key(50, Mode::Test), NOW + 60, None).await.unwrap());
        assert!(s.find_api_key(&[50; 32], NOW).await.unwrap().is_none());

        assert!(s.roll_api_key("app_a", &key(30, Mode::Test), NOW + 60, None).await.unwrap());
        // The old test key works until the grace ends, then not; the new one does not expire.
        let old = s.find_api_key(&[10; 32], NOW + 59).await.unwrap().unwrap();
        assert_eq!(old.expires_at, Some(NOW + 60));
        assert!(s.find_api_key(&[10; 32], NOW + 60).await.unwrap().is_none());
        let new = s.find_api_key(&[30; 32], NOW + 10_000).await.unwrap().unwrap();
        assert_eq!((new.app.id.as_str(), new.mode, new.expires_at), ("app_a", Mode::Test, None));
        // Other mode and other app untouched.
        assert_eq!(s.find_api_key(&[11; 32], NOW + 10_000).await.unwrap().unwrap().expires_at, None);
        assert_eq!(s.find_api_key(&[20; 32], NOW + 10_000).await.unwrap().unwrap().expires_at, None);

        // Rolling again never extends a key already expiring: the first key keeps NOW + 60.
        assert!(s.roll_api_key("app_a", &key(31, Mode::Test), NOW + 600, None).await.unwrap());
        assert_eq!(s.find_api_key(&[10; 32], NOW).await.unwrap().unwrap().expires_at, Some(NOW + 60));
        assert_eq!(s.find_api_key(&[30; 32], NOW).await.unwrap().unwrap().expires_at, Some(NOW + 600));
        assert_eq!(s.find_api_key(&[31; 32], NOW + 10_000).await.unwrap().unwrap().expires_at, None);
        // A key hash already stored is refused, writing nothing (the other keys keep their time).
        assert!(s.roll_api_key("app_a", &key(31, Mode::Test), NOW + 5, None).await.is_err());
        assert_eq!(s.find_api_key(&[30; 32], NOW).await.unwrap().unwrap().expires_at, Some(NOW + 600));
    });
}

struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The core's roll: a real key, its grace, and the 30 s auth cache capped at a key's expiry.
fn key_rolling_through_auth(backend: Backend) {
    let db = Db::open(backend);
    let clock = Arc::new(TestClock(AtomicI64::new(NOW)));
    db.run(async {
        let app = Paygate::start(db.store.clone(), clock.clone(), Policy::default()).await.expect("paygate starts");
        let a = app.create_app("a", None).await.unwrap();
        let b = app.create_app("b", None).await.unwrap();
        assert_eq!(app.list_apps().await.unwrap().len(), 2);
        // The old key is cached from here on.
        assert_eq!(app.authenticate(&a.test_secret_key).await.unwrap().app.id, a.app.id);

        assert_eq!(app.roll_api_key("app_nope", Mode::Test, 60).await.unwrap_err().kind, ProblemKind::NotFound);
        assert_eq!(app.roll_api_key(&a.app.id, Mode::Test, -1).await.unwrap_err().kind, ProblemKind::InvalidRequest);
        let new = app.roll_api_key(&a.app.id, Mode::Test, 60).await.unwrap();
        assert!(new.starts_with("sk_test_") && new != a.test_secret_key);
        let caller = app.authenticate(&new).await.unwrap();
        assert_eq!((caller.app.id.as_str(), caller.scope.mode), (a.app.id.as_str(), Mode::Test));

        // Within the grace the old key works (and is cached again, capped at its expiry) …
        clock.0.store(NOW + 50, Ordering::SeqCst);
        app.authenticate(&a.test_secret_key).await.unwrap();
        // … and from its expiry on it is refused, though the cache would otherwise hold 30 s.
        clock.0.store(NOW + 60, Ordering::SeqCst);
        let refused = app.authenticate(&a.test_secret_key).await.unwrap_err();
        assert_eq!(refused.kind, ProblemKind::Authentication);
        // The new key, the app's live key and the other app are unaffected.
        app.authenticate(&new).await.unwrap();
        app.authenticate(&a.live_secret_key).await.unwrap();
        assert_eq!(app.authenticate(&b.test_secret_key).await.unwrap().app.id, b.app.id);
    });
}
