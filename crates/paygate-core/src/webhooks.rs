//! Webhook endpoints, events, and how deliveries are signed.
//!
//! Every delivery carries two signatures over the exact body bytes:
//! - `x-pingplusplus-signature`: base64 RSA-SHA256 (PKCS#1 v1.5) by paygate's platform key
//!   (generated once per database; public half from `GET /v1/webhook_public_key` or
//!   `paygate webhook public-key`), as Ping++ sends it;
//! - `Paygate-Signature: t=UNIX,v1=HEX`: HMAC-SHA256 keyed with the endpoint's secret over
//!   `t + "." + body`, so a receiver can refuse stale or replayed deliveries.

use crate::{random32, Caller, Paygate, Policy};
use base64::Engine;
use hmac::{Hmac, Mac};
use paygate_domain::events::{Event, EVENT_TYPES};
use paygate_domain::ids::{EventId, IdKind};
use paygate_domain::paging::{CreatedRange, Page, Paging};
use paygate_domain::Problem;
use paygate_store::console::AuditEntry;
use paygate_store::{DeliveryView, Endpoint, NewEndpoint};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const MAX_URL_LENGTH: usize = 2048;

impl Paygate {
    /// Registers an endpoint; the secret is returned here once and never again.
    pub async fn create_endpoint(
        &self,
        caller: &Caller,
        url: &str,
        types: Option<Vec<String>>,
    ) -> Result<(Endpoint, String), Problem> {
        self.create_endpoint_audited(caller, url, types, None).await
    }

    /// [`Paygate::create_endpoint`], writing `audit` (the console's) in the same transaction.
    pub(crate) async fn create_endpoint_audited(
        &self,
        caller: &Caller,
        url: &str,
        types: Option<Vec<String>>,
        audit: Option<&AuditEntry>,
    ) -> Result<(Endpoint, String), Problem> {
        validate_url(url, &self.policy)?;
        if let Some(types) = &types {
            if types.is_empty() {
                return Err(Problem::invalid(
                    "events",
                    "events must name at least one event type, or be omitted for all.",
                ));
            }
            if let Some(bad) = types.iter().find(|t| !EVENT_TYPES.contains(&t.as_str())) {
                return Err(Problem::invalid(
                    "events",
                    format!("Unknown event type '{bad}'. Known types: {}.", EVENT_TYPES.join(", ")),
                ));
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
        self.store.create_endpoint(&endpoint, audit).await?;
        Ok((endpoint.view(), secret))
    }

    pub async fn endpoints(&self, caller: &Caller) -> Result<Vec<Endpoint>, Problem> {
        self.store.endpoints(&caller.scope).await
    }

    pub async fn delete_endpoint(&self, caller: &Caller, id: &str) -> Result<(), Problem> {
        self.delete_endpoint_audited(caller, id, None).await
    }

    /// [`Paygate::delete_endpoint`], writing `audit` (the console's) in the same transaction.
    pub(crate) async fn delete_endpoint_audited(
        &self,
        caller: &Caller,
        id: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<(), Problem> {
        if !self.store.delete_endpoint(&caller.scope, id, audit).await? {
            return Err(Problem::not_found("webhook endpoint", id));
        }
        Ok(())
    }

    /// Disables (no new deliveries; those still pending are failed) or enables an endpoint, as
    /// `POST /v1/webhook_endpoints/{id}` with `disabled` does; the endpoint as it now is.
    pub async fn set_endpoint_disabled(&self, caller: &Caller, id: &str, disabled: bool) -> Result<Endpoint, Problem> {
        self.set_endpoint_disabled_audited(caller, id, disabled, None).await
    }

    /// [`Paygate::set_endpoint_disabled`], writing `audit` (the console's) in the same transaction when the state
    /// changes.
    pub(crate) async fn set_endpoint_disabled_audited(
        &self,
        caller: &Caller,
        id: &str,
        disabled: bool,
        audit: Option<&AuditEntry>,
    ) -> Result<Endpoint, Problem> {
        self.store
            .set_endpoint_disabled(&caller.scope, id, disabled, audit)
            .await?
            .ok_or_else(|| Problem::not_found("webhook endpoint", id))
    }

    pub async fn event(&self, caller: &Caller, id: &EventId) -> Result<Event, Problem> {
        self.store.event(&caller.scope, id).await?.ok_or_else(|| Problem::not_found("event", id))
    }

    pub async fn events(
        &self,
        caller: &Caller,
        kind: Option<&str>,
        created: &CreatedRange,
        paging: &Paging,
    ) -> Result<Page<Event>, Problem> {
        if let Some(k) = kind {
            if !EVENT_TYPES.contains(&k) {
                return Err(Problem::invalid("type", format!("Unknown event type '{k}'.")));
            }
        }
        self.store.list_events(&caller.scope, kind, created, paging).await
    }

    pub async fn deliveries(&self, caller: &Caller, event_id: &EventId) -> Result<Vec<DeliveryView>, Problem> {
        self.event(caller, event_id).await?;
        self.store.deliveries(&caller.scope, event_id).await
    }

    /// Queues the event again for every endpoint subscribed to it now. Takes the id as text: the
    /// CLI passes what the operator typed, so this is where it is parsed.
    pub async fn resend_event(&self, caller: &Caller, event_id: &str) -> Result<u64, Problem> {
        self.resend_event_audited(caller, event_id, None).await
    }

    /// [`Paygate::resend_event`], writing `audit` (the console's) in the same transaction.
    pub(crate) async fn resend_event_audited(
        &self,
        caller: &Caller,
        event_id: &str,
        audit: Option<&AuditEntry>,
    ) -> Result<u64, Problem> {
        // Parsed here for its 404 (a malformed id is an unknown one); the store's transaction finds the event.
        EventId::parse(event_id)?;
        self.store.resend_event(&caller.scope, event_id, self.now(), audit).await
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
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(std::str::from_utf8(&stored).map_err(Problem::internal)?)
            .map_err(Problem::internal)?;
        self.platform_key.set(key.clone());
        Ok(key)
    }

    pub async fn platform_public_key_pem(&self) -> Result<String, Problem> {
        self.platform_key().await?.to_public_key().to_public_key_pem(LineEnding::LF).map_err(Problem::internal)
    }
}

/// The headers that sign one delivery of `body` at time `t` (CPU-bound: call it off the
/// async threads when signing many).
pub fn webhook_signatures(
    platform_key: &rsa::RsaPrivateKey,
    body: &[u8],
    secret: &str,
    t: i64,
) -> Vec<(&'static str, String)> {
    let rsa_sig = base64::engine::general_purpose::STANDARD
        .encode(SigningKey::<Sha256>::new(platform_key.clone()).sign(body).to_bytes());
    vec![
        ("x-pingplusplus-signature", rsa_sig),
        ("paygate-signature", format!("t={t},v1={}", hmac_hex(secret, t, body))),
    ]
}

pub fn hmac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn validate_url(url: &str, policy: &Policy) -> Result<(), Problem> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let host = rest.and_then(|r| r.split(['/', '?', '#']).next()).unwrap_or("");
    let bad = || {
        let rule = format!("url must be an http:// or https:// URL with a host, at most {MAX_URL_LENGTH} characters.");
        Problem::invalid("url", rule)
    };
    let odd = url.chars().any(|c| c.is_whitespace() || c.is_control());
    if rest.is_none() || host.is_empty() || host.contains('@') || url.len() > MAX_URL_LENGTH || odd {
        return Err(bad());
    }
    // Judged as the sender will read it: the `url` crate (which ureq uses) normalises hosts,
    // so `2130706433`, `0x7f.1` and `[::ffff:127.0.0.1]` are all 127.0.0.1 here.
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad());
    }
    if !policy.webhook_allow_private {
        if let Some(why) = private_host(&parsed) {
            return Err(Problem::invalid(
                "url",
                format!(
                    "url must point to a public address: {why}. (An operator can allow private addresses \
                     for local development with PAYGATE_WEBHOOK_ALLOW_PRIVATE=1.)"
                ),
            ));
        }
    }
    Ok(())
}

/// Why the host of `url` is not one paygate may call on a merchant's behalf, or `None`. Names
/// other than `localhost` are judged again after DNS resolution, at every send.
fn private_host(url: &url::Url) -> Option<String> {
    let ip = match url.host()? {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            return (name == "localhost" || name.ends_with(".localhost")).then(|| format!("{name} is this host"));
        }
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
    };
    (!is_public_address(ip)).then(|| format!("{ip} is a loopback, private, link-local or otherwise non-public address"))
}

/// Whether paygate may send webhooks to `ip` without the operator's explicit permission: a
/// globally routable unicast address. Not: loopback, private (RFC 1918), CGNAT, link-local
/// (cloud metadata lives at 169.254.169.254), unique-local, unspecified, "this network",
/// multicast, broadcast, reserved, benchmarking and documentation ranges, nor the IPv6 forms
/// that carry such an IPv4 address (IPv4-mapped, -compatible, -translated, NAT64, 6to4).
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let reserved = a == 0 // "this network", 0.0.0.0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 169 && b == 254) // link-local
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF assignments, TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224; // multicast, reserved, 255.255.255.255
    !reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let reserved = s[0] == 0 // ::, ::1 and the rest of ::/16 not handled as embedded IPv4
        || (s[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only 100::/64
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1); // local-use NAT64 64:ff9b:1::/48
    !reserved
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),      // IPv4-mapped ::ffff:a.b.c.d
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),      // IPv4-translated ::ffff:0:a.b.c.d
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),           // IPv4-compatible ::a.b.c.d (and ::, ::1)
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low), // NAT64 64:ff9b::a.b.c.d
        [0x2002, high, low16, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low16))), // 6to4
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_host() {
        let open = Policy { webhook_allow_private: true, ..Policy::default() };
        let malformed = ["ftp://x", "http://", "https:///path", "javascript:alert(1)", "http://user@host/"];
        for bad in malformed.into_iter().chain(["http://a b/", "http://[::1/"]) {
            assert!(validate_url(bad, &open).is_err(), "{bad}");
        }
        assert!(validate_url("https://example.com/hooks?x=1", &open).is_ok());
        assert!(validate_url("http://127.0.0.1:9000/", &open).is_ok(), "the operator allowed private addresses");
    }

    #[test]
    fn private_hosts_are_refused_in_every_spelling() {
        let strict = Policy::default();
        for bad in [
            "http://127.0.0.1:18099/admin",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://10.0.0.1/",
            "http://172.16.0.1/",
            "http://172.31.255.255/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/",
            "http://0/",
            "http://100.64.0.1/",
            "http://224.0.0.1/",
            "http://255.255.255.255/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fd00::1]/",
            "http://[fc00::1]/",
            "http://[fe80::1]/",
            "http://[ff02::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a00:1]/",
            "http://[2002:c0a8:101::1]/",
            "http://[::127.0.0.1]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost:8080/",
        ] {
            let err = validate_url(bad, &strict).expect_err(bad);
            assert_eq!(err.param.as_deref(), Some("url"), "{bad}");
        }
        for good in [
            "https://example.com/hooks",
            "http://8.8.8.8/",
            "http://172.32.0.1/",
            "http://100.128.0.1/",
            "http://[2606:4700::1111]/",
            "http://[::ffff:8.8.8.8]/",
            "https://localhost.example.com/",
        ] {
            assert!(validate_url(good, &strict).is_ok(), "{good}");
        }
    }
}
