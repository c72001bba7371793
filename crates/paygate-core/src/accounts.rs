//! Channel accounts: set, show, remove and rekey a merchant's WeChat Pay / Alipay credentials,
//! and hand a channel adapter the decrypted account. The secrets are sealed with
//! [`crate::secret_box`] (AES-256-GCM under the operator's master key, the row's app, mode and
//! provider as associated data) and only the sealed form reaches the store.
//!
//! The per-database `server_secret` (API-key hashing) is deliberately not a master key: it lives
//! in the same database as the ciphertexts, so a copy of the database would carry its own key.

use crate::secret_box::{no_master_key, MasterKeys, Sealed};
use crate::{Caller, Pass, Paygate};
use paygate_domain::accounts::{AccountFields, AccountPatch, AccountSummary, ChannelAccount, Kind, Provider};
use paygate_domain::{Problem, ProblemKind, Scope};
use paygate_store::{ExposeSecret, SecretString, StoredAccount};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// How long a node uses a decrypted account without reading the database again: a change or
/// removal made on another node is seen everywhere within this long (at once on the node that
/// made it). The same bound as API keys and the signed faces' credentials.
pub const ACCOUNT_CACHE_SECONDS: i64 = crate::auth::CACHE_SECONDS;
const ACCOUNT_CACHE_MAX: usize = 10_000;
/// Concurrent updates of one account are re-read and re-applied this many times, then refused.
const PUT_ATTEMPTS: usize = 3;
/// Rows re-sealed per read during a rekey.
const REKEY_PAGE: i64 = 100;

type CacheKey = (Scope, Provider);

/// What a node keeps for channel accounts: the master keys and the decrypted-account cache.
#[derive(Default)]
pub(crate) struct AccountKeys {
    master: RwLock<Arc<MasterKeys>>,
    cache: Mutex<HashMap<CacheKey, (Arc<ChannelAccount>, i64)>>,
}

impl AccountKeys {
    fn forget(&self, key: Option<&CacheKey>) {
        if let Ok(mut cache) = self.cache.lock() {
            match key {
                Some(key) => {
                    cache.remove(key);
                }
                None => cache.clear(),
            }
        }
    }
}

/// An account as the API and the CLI show it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    pub scope: Scope,
    pub summary: AccountSummary,
    pub created: i64,
    pub updated: i64,
    /// The master key its secrets are sealed under (an id, not key material).
    pub key_id: String,
}

impl AccountView {
    /// `{object, provider, livemode, created, updated, <shown fields>}`.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("object".into(), json!("channel_account"));
        out.insert("provider".into(), json!(self.summary.provider.as_str()));
        out.insert("app".into(), json!(self.scope.app_id));
        out.insert("livemode".into(), json!(self.scope.mode.is_live()));
        out.insert("created".into(), json!(self.created));
        out.insert("updated".into(), json!(self.updated));
        out.extend(self.summary.shown());
        out
    }
}

/// What the row's ciphertext is bound to: a copy in another row does not open.
fn aad(scope: &Scope, provider: Provider) -> Vec<u8> {
    format!("paygate/channel_account/v1\n{}\n{}\n{}", scope.app_id, scope.mode.name(), provider.as_str()).into_bytes()
}

fn summary(stored: &StoredAccount) -> Result<AccountSummary, Problem> {
    let bad = || Problem::internal("channel_accounts.config has an unexpected shape");
    let public: BTreeMap<String, String> =
        serde_json::from_value(stored.config.get("public").cloned().unwrap_or(json!({}))).map_err(|_| bad())?;
    let secrets_set: BTreeSet<String> =
        serde_json::from_value(stored.config.get("secrets").cloned().unwrap_or(json!([]))).map_err(|_| bad())?;
    Ok(AccountSummary { provider: stored.provider, public, secrets_set })
}

fn view(stored: &StoredAccount) -> Result<AccountView, Problem> {
    Ok(AccountView {
        scope: stored.scope.clone(),
        summary: summary(stored)?,
        created: stored.created,
        updated: stored.updated,
        key_id: stored.key_id.clone(),
    })
}

fn sealed(stored: &StoredAccount) -> Sealed {
    Sealed { key_id: stored.key_id.clone(), nonce: stored.nonce.clone(), ciphertext: stored.ciphertext.clone() }
}

/// The stored account's fields, its secrets decrypted.
fn open(keys: &MasterKeys, stored: &StoredAccount) -> Result<AccountFields, Problem> {
    let plaintext = keys.open(&sealed(stored), &aad(&stored.scope, stored.provider))?;
    let secrets: BTreeMap<String, String> = serde_json::from_slice(&plaintext)
        .map_err(|_| Problem::internal("a channel account's decrypted secrets are not a JSON object"))?;
    let secrets = secrets.into_iter().map(|(k, v)| (k, SecretString::from(v))).collect();
    Ok(AccountFields { public: summary(stored)?.public, secrets })
}

/// Seals the secrets; the public part and the secret names go to `config`.
fn seal(
    keys: &MasterKeys,
    scope: &Scope,
    provider: Provider,
    fields: &AccountFields,
) -> Result<(Value, Sealed), Problem> {
    let secrets: BTreeMap<&str, &str> = fields.secrets.iter().map(|(k, v)| (k.as_str(), v.expose_secret())).collect();
    let plaintext = secrecy::zeroize::Zeroizing::new(serde_json::to_vec(&secrets).map_err(Problem::internal)?);
    let sealed = keys.seal(&aad(scope, provider), &plaintext)?;
    let config = json!({"public": fields.public, "secrets": fields.secrets.keys().collect::<Vec<_>>()});
    Ok((config, sealed))
}

/// Beyond the shape the domain checks: RSA keys must parse as RSA keys, so a wrong key is refused
/// when it is set, not at the first payment.
fn check_key_material(provider: Provider, patch: &AccountPatch) -> Result<(), Problem> {
    use rsa::pkcs1::DecodeRsaPrivateKey;
    use rsa::pkcs8::DecodePrivateKey;
    for (name, value) in &patch.set.secrets {
        let rsa_key = provider.field(name).is_some_and(|f| f.kind == Kind::PrivateKeyPem) && name != "client_key";
        let pem = value.expose_secret().trim();
        if rsa_key
            && rsa::RsaPrivateKey::from_pkcs8_pem(pem).is_err()
            && rsa::RsaPrivateKey::from_pkcs1_pem(pem).is_err()
        {
            return Err(Problem::invalid(
                name,
                format!("{name} is not a readable RSA private key (PKCS#8 or PKCS#1)."),
            ));
        }
    }
    for (name, value) in &patch.set.public {
        if provider.field(name).is_some_and(|f| f.kind == Kind::PublicKeyPem)
            && crate::signature::parse_public_key(value).is_err()
        {
            return Err(Problem::invalid(name, format!("{name} is not a readable RSA public key.")));
        }
    }
    Ok(())
}

fn concurrent_update() -> Problem {
    Problem::conflict("channel_account_busy", "The channel account was changed by another request meanwhile; retry.")
}

impl Paygate {
    /// The operator's master keys (current first); replaces any set before and forgets every
    /// decrypted account this node cached.
    pub fn set_master_keys(&self, keys: MasterKeys) {
        if let Some(current) = keys.current_id() {
            tracing::info!(current, keys = ?keys.ids(), "channel-account master keys configured");
        }
        if let Ok(mut master) = self.accounts.master.write() {
            *master = Arc::new(keys);
        }
        self.accounts.forget(None);
    }

    pub fn master_keys(&self) -> Arc<MasterKeys> {
        self.accounts.master.read().map(|k| k.clone()).unwrap_or_default()
    }

    /// Creates or changes the caller's account of `provider`: fields the patch sets replace,
    /// fields it clears go, others (a secret omitted) are kept; the result must be a whole valid
    /// account. Refused when no master key is configured: secrets are never stored in clear.
    pub async fn set_channel_account(
        &self,
        caller: &Caller,
        provider: Provider,
        patch: AccountPatch,
    ) -> Result<AccountView, Problem> {
        let keys = self.master_keys();
        if keys.is_empty() {
            return Err(no_master_key());
        }
        patch.check_fields(provider)?;
        check_key_material(provider, &patch)?;
        let scope = &caller.scope;
        for _ in 0..PUT_ATTEMPTS {
            let existing = self.store.channel_account(scope, provider).await?;
            let mut fields = match &existing {
                Some(stored) => open(&keys, stored)?,
                None => AccountFields::default(),
            };
            fields.apply(patch.clone());
            ChannelAccount::from_fields(provider, &fields)?;
            let (config, sealed) = seal(&keys, scope, provider, &fields)?;
            let now = self.now();
            let stored = StoredAccount {
                scope: scope.clone(),
                provider,
                config,
                ciphertext: sealed.ciphertext,
                nonce: sealed.nonce,
                key_id: sealed.key_id,
                created: existing.as_ref().map_or(now, |e| e.created),
                updated: existing.as_ref().map_or(now, |e| now.max(e.created)),
            };
            if self.store.put_channel_account(&stored, existing.as_ref().map(|e| e.nonce.as_slice())).await? {
                self.accounts.forget(Some(&(scope.clone(), provider)));
                tracing::info!(app = %scope.app_id, mode = scope.mode.name(), provider = provider.as_str(),
                    key_id = %stored.key_id, "channel account set");
                return view(&stored);
            }
        }
        Err(concurrent_update())
    }

    pub async fn channel_account_view(&self, caller: &Caller, provider: Provider) -> Result<AccountView, Problem> {
        match self.store.channel_account(&caller.scope, provider).await? {
            Some(stored) => view(&stored),
            None => Err(Problem::not_found("channel account", provider.as_str())),
        }
    }

    pub async fn channel_account_views(&self, caller: &Caller) -> Result<Vec<AccountView>, Problem> {
        self.store.channel_accounts(&caller.scope).await?.iter().map(view).collect()
    }

    pub async fn remove_channel_account(&self, caller: &Caller, provider: Provider) -> Result<(), Problem> {
        let removed = self.store.delete_channel_account(&caller.scope, provider).await?;
        self.accounts.forget(Some(&(caller.scope.clone(), provider)));
        if !removed {
            return Err(Problem::not_found("channel account", provider.as_str()));
        }
        tracing::info!(app = %caller.scope.app_id, mode = caller.scope.mode.name(), provider = provider.as_str(),
            "channel account removed");
        Ok(())
    }

    /// The decrypted account a channel adapter signs with, cached for [`ACCOUNT_CACHE_SECONDS`].
    /// A missing account or one that cannot be decrypted is a channel error naming why.
    pub async fn channel_account(&self, scope: &Scope, provider: Provider) -> Result<Arc<ChannelAccount>, Problem> {
        self.channel_account_if_set(scope, provider).await?.ok_or_else(|| {
            Problem::new(
                ProblemKind::Channel,
                "channel_account_missing",
                format!(
                    "No {} account is set for this app in {} mode (PUT /v1/channel_accounts/{}).",
                    provider.as_str(),
                    scope.mode.name(),
                    provider.as_str()
                ),
            )
        })
    }

    /// As [`Paygate::channel_account`], `None` when the scope has no such account (routing then falls back to
    /// the sandbox); an account that exists but cannot be opened or used is still an error.
    pub async fn channel_account_if_set(
        &self,
        scope: &Scope,
        provider: Provider,
    ) -> Result<Option<Arc<ChannelAccount>>, Problem> {
        let key = (scope.clone(), provider);
        let now = self.now();
        if let Some((account, until)) = self.accounts.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            if until > now {
                return Ok(Some(account));
            }
        }
        let Some(stored) = self.store.channel_account(scope, provider).await? else {
            return Ok(None);
        };
        let fields = open(&self.master_keys(), &stored).inspect_err(|p| {
            tracing::error!(app = %scope.app_id, mode = scope.mode.name(), provider = provider.as_str(),
                key_id = %stored.key_id, problem = %p, "channel account cannot be decrypted");
        })?;
        // A stored account that no longer passes the checks is the merchant's to fix, not the payer's
        // request's: a channel error, not a 400 naming a field the request never had.
        let account = Arc::new(ChannelAccount::from_fields(provider, &fields).map_err(|p| {
            Problem::new(
                ProblemKind::Channel,
                "channel_account_invalid",
                format!("The stored {} account is not usable ({}); set it again.", provider.as_str(), p.message),
            )
        })?);
        if let Ok(mut cache) = self.accounts.cache.lock() {
            if cache.len() >= ACCOUNT_CACHE_MAX {
                cache.retain(|_, (_, until)| *until > now);
                if cache.len() >= ACCOUNT_CACHE_MAX {
                    cache.clear();
                }
            }
            cache.insert(key, (account.clone(), now + ACCOUNT_CACHE_SECONDS));
        }
        Ok(Some(account))
    }

    /// Re-seals every account not under the current master key with it: each row one conditional
    /// update on its old key id and nonce (a row changed meanwhile is left as it is and reported).
    /// A row that cannot be opened (its key is not configured, or it was altered) is reported and
    /// the rest go on.
    pub async fn rekey_channel_accounts(&self) -> Result<Pass, Problem> {
        let keys = self.master_keys();
        let current = keys.current_id().ok_or_else(no_master_key)?.to_string();
        let mut pass = Pass::default();
        let mut after = (String::new(), false, String::new());
        loop {
            let page = self.store.channel_accounts_not_under(&current, &after, REKEY_PAGE).await?;
            let Some(last) = page.last() else { break };
            after = (last.scope.app_id.clone(), last.scope.mode.is_live(), last.provider.as_str().to_string());
            for old in page {
                let item = format!("{}/{}/{}", old.scope.app_id, old.scope.mode.name(), old.provider.as_str());
                let resealed = async {
                    let fields = open(&keys, &old)?;
                    let (_, sealed) = seal(&keys, &old.scope, old.provider, &fields)?;
                    let new = StoredAccount {
                        ciphertext: sealed.ciphertext,
                        nonce: sealed.nonce,
                        key_id: sealed.key_id,
                        ..old.clone()
                    };
                    if self.store.reseal_channel_account(&new, &old.key_id, &old.nonce).await? {
                        Ok(())
                    } else {
                        Err(concurrent_update())
                    }
                }
                .await;
                match resealed {
                    Ok(()) => {
                        self.accounts.forget(Some(&(old.scope.clone(), old.provider)));
                        pass.done += 1;
                    }
                    Err(problem) => pass.failed.push((item, problem)),
                }
            }
        }
        Ok(pass)
    }
}
