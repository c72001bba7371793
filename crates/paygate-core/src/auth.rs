//! Secret keys: generated random, stored only as HMAC-SHA256 under a per-database secret (a
//! fast keyed hash: the keys are random, so a slow password hash would buy nothing and cost every
//! request). Lookups by hash, then a short-lived in-memory cache. A rolled key keeps working
//! until its `expires_at`, and no cache entry outlives the key it vouches for.

use crate::{random32, Paygate};
use hmac::{Hmac, Mac};
use paygate_domain::ids::{generate_secret_key, IdKind};
use paygate_domain::{App, Mode, Problem, Scope};
use paygate_store::console::AuditEntry;
use paygate_store::ApiKeyRecord;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

/// How long an authenticated key is trusted without asking the database again. A roll clears
/// this node's cache at once; another node may trust an old key it cached before the roll for
/// up to this long, so a grace period of at least this long keeps every node exact.
pub const CACHE_SECONDS: i64 = 30;
const CACHE_MAX: usize = 10_000;
/// The longest grace a rolled key may get: 30 days.
pub const MAX_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// An authenticated caller: every lookup it makes is confined to `scope`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub app: App,
    pub scope: Scope,
}

#[derive(Debug, Clone)]
pub struct NewAppKeys {
    pub app: App,
    pub test_secret_key: String,
    pub live_secret_key: String,
    /// The app's 知晓云 client ids (`X-Hydrogen-Client-ID`), one per mode.
    pub hserve_clients: Vec<(String, Mode)>,
    /// The signed faces' credentials (cashier `open_app_id`/secret/token, SaaS `accessid`/key).
    pub credentials: Vec<paygate_store::FaceCredential>,
}

pub(crate) struct KeyHasher {
    /// HMAC-SHA256 already keyed with the secret: each hash clones it and hashes only the key
    /// (the keying's two SHA-256 blocks are done once, not per request).
    keyed: Hmac<Sha256>,
    /// Hash → (caller, trusted until): the cache's life or the key's expiry, whichever is first.
    cache: Mutex<HashMap<[u8; 32], (Caller, i64)>>,
}

impl KeyHasher {
    pub(crate) fn new(secret: Vec<u8>) -> KeyHasher {
        let keyed = Hmac::<Sha256>::new_from_slice(&secret).expect("HMAC takes any key length");
        KeyHasher { keyed, cache: Mutex::new(HashMap::new()) }
    }

    /// Forgets every cached caller: an app's settings changed.
    pub(crate) fn clear_cache(&self) -> Result<(), Problem> {
        self.cache.lock().map_err(|_| Problem::internal("auth cache poisoned"))?.clear();
        Ok(())
    }

    pub(crate) fn hash(&self, key: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn hint(key: &str) -> String {
    key.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect()
}

impl Paygate {
    /// Creates an app with fresh test and live keys; the keys are returned once, never stored.
    pub async fn create_app(&self, name: &str, public_key_pem: Option<String>) -> Result<NewAppKeys, Problem> {
        let name = paygate_domain::validate::text("name", name, 64)?;
        if let Some(pem) = &public_key_pem {
            crate::signature::parse_public_key(pem)?;
        }
        let app = App {
            id: IdKind::App.generate(&random32()?),
            name,
            created: self.now(),
            public_key_pem,
            late_payment: Default::default(),
            max_share_bps: paygate_domain::shares::DEFAULT_MAX_SHARE_BPS,
        };
        let test_secret_key = generate_secret_key(false, &random32()?);
        let live_secret_key = generate_secret_key(true, &random32()?);
        let keys = [(&test_secret_key, Mode::Test), (&live_secret_key, Mode::Live)].map(|(key, mode)| ApiKeyRecord {
            key_hash: self.keys.hash(key).to_vec(),
            mode,
            hint: hint(key),
        });
        let hserve_clients =
            vec![(crate::hex(&random32()?[..10]), Mode::Test), (crate::hex(&random32()?[..10]), Mode::Live)];
        let mut credentials = Vec::new();
        for mode in [Mode::Test, Mode::Live] {
            credentials.extend(crate::pos::new_credentials(&Scope { app_id: app.id.clone(), mode })?);
        }
        self.store.create_app(&app, &keys, &hserve_clients, &credentials).await?;
        Ok(NewAppKeys { app, test_secret_key, live_secret_key, hserve_clients, credentials })
    }

    pub async fn set_app_public_key(&self, app_id: &str, pem: Option<&str>) -> Result<(), Problem> {
        self.set_app_public_key_audited(app_id, pem, None).await
    }

    /// With the console's `audit` entry, written by the change's own transaction.
    pub(crate) async fn set_app_public_key_audited(
        &self,
        app_id: &str,
        pem: Option<&str>,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Problem> {
        if let Some(pem) = pem {
            crate::signature::parse_public_key(pem)?;
        }
        if !self.store.set_app_public_key(app_id, pem, audit).await? {
            return Err(Problem::not_found("app", app_id));
        }
        self.keys.clear_cache()
    }

    /// Resolves a secret key to its app and mode. Unknown keys and malformed keys get the same
    /// answer; the key itself never appears in an error or a log.
    pub async fn authenticate(&self, secret_key: &str) -> Result<Caller, Problem> {
        if !(secret_key.starts_with("sk_test_") || secret_key.starts_with("sk_live_")) || secret_key.len() > 128 {
            return Err(Problem::authentication(
                "Invalid API key provided. Use a secret key (sk_test_… or sk_live_…).",
            ));
        }
        let hash = self.keys.hash(secret_key);
        let now = self.now();
        if let Some((caller, until)) =
            self.keys.cache.lock().map_err(|_| Problem::internal("auth cache poisoned"))?.get(&hash)
        {
            if now < *until {
                return Ok(caller.clone());
            }
        }
        let owner = self
            .store
            .find_api_key(&hash, now)
            .await?
            .ok_or_else(|| Problem::authentication("Invalid API key provided."))?;
        let caller = Caller { scope: Scope { app_id: owner.app.id.clone(), mode: owner.mode }, app: owner.app };
        let until = owner.expires_at.map_or(now + CACHE_SECONDS, |expiry| expiry.min(now + CACHE_SECONDS));
        let mut cache = self.keys.cache.lock().map_err(|_| Problem::internal("auth cache poisoned"))?;
        if cache.len() >= CACHE_MAX {
            cache.clear();
        }
        cache.insert(hash, (caller.clone(), until));
        Ok(caller)
    }
}

impl Paygate {
    /// Every app, oldest first (`paygate app list`).
    pub async fn list_apps(&self) -> Result<Vec<App>, Problem> {
        self.store.list_apps().await
    }

    /// A new secret key for the app's `mode`, returned once (only its hash is stored). The
    /// mode's current keys keep working for `grace_seconds` more, then stop (a key already
    /// due to stop sooner keeps its time). Key and expiry are written in one transaction.
    pub async fn roll_api_key(&self, app_id: &str, mode: Mode, grace_seconds: i64) -> Result<String, Problem> {
        self.roll_api_key_audited(app_id, mode, grace_seconds, None).await
    }

    /// With the console's `audit` entry, written by the roll's own transaction.
    pub(crate) async fn roll_api_key_audited(
        &self,
        app_id: &str,
        mode: Mode,
        grace_seconds: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<String, Problem> {
        if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(Problem::invalid(
                "grace",
                format!("The grace period must be between 0 and {MAX_GRACE_SECONDS} seconds."),
            ));
        }
        let key = generate_secret_key(mode.is_live(), &random32()?);
        let record = ApiKeyRecord { key_hash: self.keys.hash(&key).to_vec(), mode, hint: hint(&key) };
        if !self.store.roll_api_key(app_id, &record, self.now() + grace_seconds, audit).await? {
            return Err(Problem::not_found("app", app_id));
        }
        // This node stops trusting the old keys' cached entries now; they are looked up again.
        self.keys.clear_cache()?;
        Ok(key)
    }

    pub async fn set_app_late_payment(&self, app_id: &str, policy: paygate_domain::LatePayment) -> Result<(), Problem> {
        if !self.store.set_app_late_payment(app_id, policy).await? {
            return Err(Problem::not_found("app", app_id));
        }
        self.keys.clear_cache()
    }
}

impl Paygate {
    /// The operator's CLI acts as an app directly (it has the database, not the key).
    pub async fn caller_for(&self, app_id: &str, mode: Mode) -> Result<Caller, Problem> {
        let app = self.store.app(app_id).await?.ok_or_else(|| Problem::not_found("app", app_id))?;
        Ok(Caller { scope: Scope { app_id: app.id.clone(), mode }, app })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_hash_is_hmac_sha256_under_the_secret() {
        // RFC 4231 test case 2: stored hashes must not change with how the HMAC is computed.
        let hasher = super::KeyHasher::new(b"Jefe".to_vec());
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        for _ in 0..2 {
            assert_eq!(crate::hex(&hasher.hash("what do ya want for nothing?")), expected);
        }
    }
}
