//! Webhook endpoints, events, and how deliveries are signed.
//!
//! Every delivery carries two signatures over the exact body bytes:
//! - `x-pingplusplus-signature`: base64 RSA-SHA256 (PKCS#1 v1.5) by paygate's platform key
//!   (generated once per database; public half from `GET /v1/webhook_public_key` or
//!   `paygate webhook public-key`), as Ping++ sends it;
//! - `Paygate-Signature: t=UNIX,v1=HEX`: HMAC-SHA256 keyed with the endpoint's secret over
//!   `t + "." + body`, so a receiver can refuse stale or replayed deliveries.

use crate::{random32, Caller, Paygate};
use base64::Engine;
use hmac::{Hmac, Mac};
use paygate_domain::events::{Event, EVENT_TYPES};
use paygate_domain::ids::IdKind;
use paygate_domain::paging::{CreatedRange, Page, Paging};
use paygate_domain::Problem;
use paygate_store::{DeliveryView, Endpoint, NewEndpoint};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;

pub const MAX_URL_LENGTH: usize = 2048;

impl Paygate {
    /// Registers an endpoint; the secret is returned here once and never again.
    pub async fn create_endpoint(&self, caller: &Caller, url: &str, types: Option<Vec<String>>) -> Result<(Endpoint, String), Problem> {
        validate_url(url)?;
        if let Some(types) = &types {
            if types.is_empty() {
                return Err(Problem::invalid("events", "events must name at least one event type, or be omitted for all."));
            }
            if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
                return Err(Problem::invalid("events", format!("Unknown event type '{bad}'. Known types: {}.", EVENT_TYPES.join(", "))));
            }
        }
        let secret = format!("whsec_{}", &paygate_domain::ids::generate_secret_key(false, &random32()?)[8..]);
        let endpoint = NewEndpoint {
            id: IdKind::Endpoint.generate(&random32()?),
            scope: caller.scope.clone(),
            created: self.now(),
            url: url.to_string(),
            secret: secret.clone(),
            types: types.map(|mut t| {
                t.sort();
                t.dedup();
                t
            }),
        };
        self.store.create_endpoint(&endpoint).await?;
        let view = Endpoint { id: endpoint.id, created: endpoint.created, livemode: caller.scope.mode.is_live(), url: endpoint.url, types: endpoint.types };
        Ok((view, secret))
    }

    pub async fn endpoints(&self, caller: &Caller) -> Result<Vec<Endpoint>, Problem> {
        self.store.endpoints(&caller.scope).await
    }

    pub async fn delete_endpoint(&self, caller: &Caller, id: &str) -> Result<(), Problem> {
        if !self.store.delete_endpoint(&caller.scope, id).await? {
            return Err(Problem::not_found("webhook endpoint", id));
        }
        Ok(())
    }

    pub async fn event(&self, caller: &Caller, id: &str) -> Result<Event, Problem> {
        if !IdKind::Event.matches(id) {
            return Err(Problem::not_found("event", id));
        }
        self.store.event(&caller.scope, id).await?.ok_or_else(|| Problem::not_found("event", id))
    }

    pub async fn events(&self, caller: &Caller, kind: Option<&str>, created: &CreatedRange, paging: &Paging) -> Result<Page<Event>, Problem> {
        if let Some(k) = kind {
            if !EVENT_TYPES.contains(&k) {
                return Err(Problem::invalid("type", format!("Unknown event type '{k}'.")));
            }
        }
        self.store.list_events(&caller.scope, kind, created, paging).await
    }

    pub async fn deliveries(&self, caller: &Caller, event_id: &str) -> Result<Vec<DeliveryView>, Problem> {
        self.event(caller, event_id).await?;
        self.store.deliveries(&caller.scope, event_id).await
    }

    /// Queues the event again for every endpoint subscribed to it now.
    pub async fn resend_event(&self, caller: &Caller, event_id: &str) -> Result<u64, Problem> {
        self.event(caller, event_id).await?;
        self.store.resend_event(&caller.scope, event_id, self.now()).await
    }

    /// paygate's platform signing key, created once per database (nodes racing at first use
    /// agree on whichever was stored first).
    pub async fn platform_key(&self) -> Result<rsa::RsaPrivateKey, Problem> {
        if let Some(key) = self.platform_key.get() {
            return Ok(key);
        }
        let fresh = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(Problem::internal)?;
        let pem = fresh.to_pkcs8_pem(LineEnding::LF).map_err(Problem::internal)?;
        let stored = self.store.setting("platform_rsa_key", pem.as_bytes()).await?;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(std::str::from_utf8(&stored).map_err(Problem::internal)?).map_err(Problem::internal)?;
        self.platform_key.set(key.clone());
        Ok(key)
    }

    pub async fn platform_public_key_pem(&self) -> Result<String, Problem> {
        self.platform_key().await?.to_public_key().to_public_key_pem(LineEnding::LF).map_err(Problem::internal)
    }

}

/// The headers that sign one delivery of `body` at time `t` (CPU-bound: call it off the
/// async threads when signing many).
pub fn webhook_signatures(platform_key: &rsa::RsaPrivateKey, body: &[u8], secret: &str, t: i64) -> Vec<(&'static str, String)> {
    let rsa_sig = base64::engine::general_purpose::STANDARD.encode(SigningKey::<Sha256>::new(platform_key.clone()).sign(body).to_bytes());
    vec![("x-pingplusplus-signature", rsa_sig), ("paygate-signature", format!("t={t},v1={}", hmac_hex(secret, t, body)))]
}

pub fn hmac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn validate_url(url: &str) -> Result<(), Problem> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split(['/', '?', '#']).next()).unwrap_or("");
    if rest.is_none() || host.is_empty() || host.contains('@') || url.len() > MAX_URL_LENGTH || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Problem::invalid("url", format!("url must be an http:// or https:// URL with a host, at most {MAX_URL_LENGTH} characters.")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls_must_be_http_with_a_host() {
        for bad in ["ftp://x", "http://", "https:///path", "javascript:alert(1)", "http://user@host/", "http://a b/"] {
            assert!(super::validate_url(bad).is_err(), "{bad}");
        }
        assert!(super::validate_url("https://example.com/hooks?x=1").is_ok());
        assert!(super::validate_url("http://127.0.0.1:9000/").is_ok());
    }
}
