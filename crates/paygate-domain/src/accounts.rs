//! Channel accounts: a merchant's WeChat Pay or Alipay credentials for one app and mode. One
//! field table per provider says what each field is (an identifier, a URL, a PEM, a secret) and
//! how it is checked and shown, so storage, the API and the CLI handle both providers with the
//! same code; the typed [`WechatAccount`] / [`AlipayAccount`] are what channel adapters read.
//! Secrets are `SecretString`s: no `Debug` or `Display` prints them.

use crate::Problem;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

pub const WECHAT_DEFAULT_API_BASE_URL: &str = "https://api.mch.weixin.qq.com";
pub const ALIPAY_DEFAULT_GATEWAY_URL: &str = "https://openapi.alipay.com/gateway.do";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    Wechat,
    Alipay,
}

impl Provider {
    pub const ALL: [Provider; 2] = [Provider::Wechat, Provider::Alipay];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Wechat => "wechat",
            Provider::Alipay => "alipay",
        }
    }

    #[track_caller]
    pub fn parse(value: &str) -> Result<Provider, Problem> {
        match value {
            "wechat" => Ok(Provider::Wechat),
            "alipay" => Ok(Provider::Alipay),
            _ => Err(Problem::invalid("provider", "provider must be 'wechat' or 'alipay'.")),
        }
    }

    /// Every field an account of this provider can have.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Provider::Wechat => WECHAT_FIELDS,
            Provider::Alipay => ALIPAY_FIELDS,
        }
    }

    pub fn field(self, name: &str) -> Option<&'static Field> {
        self.fields().iter().find(|f| f.name == name)
    }
}

/// What a field holds, which decides how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A merchant or app number: printable ASCII without spaces, at most 64 characters.
    Id,
    /// `http(s)://…`: where the provider's API is (tests point it at the simulator).
    Url,
    /// WeChat's API version: `v2` or `v3`.
    ApiVersion,
    /// Exactly 32 ASCII letters and digits (WeChat's API v2 key).
    Key32Chars,
    /// Exactly 32 bytes of printable ASCII (WeChat's API v3 key, the AEAD key of notifications).
    Key32Bytes,
    /// An opaque secret token (Alipay's app_auth_token).
    Token,
    /// PEM `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    PrivateKeyPem,
    /// PEM `PUBLIC KEY` (SPKI) or `RSA PUBLIC KEY` (PKCS#1).
    PublicKeyPem,
    /// One or more PEM `CERTIFICATE` blocks (a root bundle has several).
    CertificatePem,
}

/// How the public view shows a field that is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// As it is (URLs, the API version).
    Plain,
    /// Only its last four characters, as `<name>_last4`.
    Last4,
    /// Only whether it is set, as `has_<name>`.
    Has,
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    /// Stored encrypted, never shown, never logged.
    pub secret: bool,
    pub shown: Shown,
}

const fn field(name: &'static str, kind: Kind, secret: bool, shown: Shown) -> Field {
    Field { name, kind, secret, shown }
}

use Kind::*;
use Shown::*;

const WECHAT_FIELDS: &[Field] = &[
    field("mch_id", Id, false, Last4),
    field("appid", Id, false, Last4),
    field("api_version", ApiVersion, false, Plain),
    field("api_v2_key", Key32Chars, true, Has),
    field("api_v3_key", Key32Bytes, true, Has),
    field("merchant_serial_no", Id, false, Last4),
    field("merchant_private_key", PrivateKeyPem, true, Has),
    field("platform_certificate", CertificatePem, false, Has),
    field("wechatpay_public_key_id", Id, false, Last4),
    field("wechatpay_public_key", PublicKeyPem, false, Has),
    field("client_certificate", CertificatePem, false, Has),
    field("client_key", PrivateKeyPem, true, Has),
    field("sub_mch_id", Id, false, Last4),
    field("sub_appid", Id, false, Last4),
    field("api_base_url", Url, false, Plain),
];

const ALIPAY_FIELDS: &[Field] = &[
    field("app_id", Id, false, Last4),
    field("app_private_key", PrivateKeyPem, true, Has),
    field("alipay_public_key", PublicKeyPem, false, Has),
    field("app_public_cert", CertificatePem, false, Has),
    field("alipay_public_cert", CertificatePem, false, Has),
    field("alipay_root_cert", CertificatePem, false, Has),
    field("seller_id", Id, false, Last4),
    field("app_auth_token", Token, true, Has),
    field("gateway_url", Url, false, Plain),
];

/// An account's fields as stored: the public ones (the `config` JSON) and the secrets (the
/// encrypted part). Only fields that are set are present.
#[derive(Debug, Clone, Default)]
pub struct AccountFields {
    pub public: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretString>,
}

/// A change to an account: fields to set, fields to remove. A field not named keeps what is
/// stored — so a secret may be omitted to keep it.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub set: AccountFields,
    pub clear: BTreeSet<String>,
}

impl AccountPatch {
    /// From a JSON object: a string sets the field, `null` removes it, an absent field is kept.
    /// A field the provider does not have is refused (a misspelt key would otherwise be lost
    /// silently). Messages name the field and never repeat a value.
    pub fn from_json(provider: Provider, body: &Map<String, Value>) -> Result<AccountPatch, Problem> {
        let mut patch = AccountPatch::default();
        for (name, value) in body {
            let Some(field) = provider.field(name) else {
                return Err(Problem::invalid(
                    name,
                    format!("{name} is not a field of a {} account.", provider.as_str()),
                ));
            };
            match value {
                Value::Null => {
                    patch.clear.insert(name.clone());
                }
                Value::String(text) if field.secret => {
                    patch.set.secrets.insert(name.clone(), SecretString::from(text.clone()));
                }
                Value::String(text) => {
                    patch.set.public.insert(name.clone(), text.clone());
                }
                _ => return Err(Problem::invalid(name, format!("{name} must be a string (or null to remove it)."))),
            }
        }
        Ok(patch)
    }

    /// Checks every field this patch sets, on its own (the whole account is checked after merging).
    pub fn check_fields(&self, provider: Provider) -> Result<(), Problem> {
        for (name, value) in &self.set.public {
            check_field(provider, name, value)?;
        }
        for (name, value) in &self.set.secrets {
            check_field(provider, name, value.expose_secret())?;
        }
        Ok(())
    }
}

impl AccountFields {
    pub fn apply(&mut self, patch: AccountPatch) {
        for name in &patch.clear {
            self.public.remove(name);
            self.secrets.remove(name);
        }
        self.public.extend(patch.set.public);
        self.secrets.extend(patch.set.secrets);
    }

    fn text(&self, name: &str) -> Option<String> {
        self.public.get(name).cloned()
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.secrets.get(name).cloned()
    }
}

/// Which secrets are set and the public fields: the view of a stored account that needs no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    pub provider: Provider,
    pub public: BTreeMap<String, String>,
    pub secrets_set: BTreeSet<String>,
}

impl AccountSummary {
    /// What the API and the CLI show: plain fields as they are, identifiers as their last four
    /// characters (`mch_id_last4`), certificates, public keys and secrets only as `has_<name>`.
    pub fn shown(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for f in self.provider.fields() {
            let value = self.public.get(f.name);
            match f.shown {
                Plain => {
                    out.insert(f.name.to_string(), value.map_or(Value::Null, |v| Value::String(v.clone())));
                }
                Last4 => {
                    let last4 = value.map(|v| v.chars().skip(v.chars().count().saturating_sub(4)).collect::<String>());
                    out.insert(format!("{}_last4", f.name), last4.map_or(Value::Null, Value::String));
                }
                Has => {
                    let set = value.is_some() || self.secrets_set.contains(f.name);
                    out.insert(format!("has_{}", f.name), Value::Bool(set));
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WechatApiVersion {
    V2,
    V3,
}

/// A WeChat Pay merchant account, checked: what the adapter signs and verifies with.
#[derive(Debug, Clone)]
pub struct WechatAccount {
    pub mch_id: String,
    pub appid: String,
    pub api_version: WechatApiVersion,
    pub api_v2_key: Option<SecretString>,
    pub api_v3_key: Option<SecretString>,
    pub merchant_serial_no: Option<String>,
    pub merchant_private_key: Option<SecretString>,
    pub platform_certificate: Option<String>,
    pub wechatpay_public_key_id: Option<String>,
    pub wechatpay_public_key: Option<String>,
    /// With `client_key`: the merchant's certificate for `/secapi/` mutual TLS.
    pub client_certificate: Option<String>,
    pub client_key: Option<SecretString>,
    /// Service-provider mode: the sub-merchant paid through this account.
    pub sub_mch_id: Option<String>,
    pub sub_appid: Option<String>,
    /// v2 and v3 (`WECHAT_DEFAULT_API_BASE_URL` unless set).
    pub api_base_url: String,
}

/// An Alipay open-platform app, checked.
#[derive(Debug, Clone)]
pub struct AlipayAccount {
    pub app_id: String,
    pub app_private_key: SecretString,
    /// Public-key mode; otherwise the three certificates (certificate mode).
    pub alipay_public_key: Option<String>,
    pub app_public_cert: Option<String>,
    pub alipay_public_cert: Option<String>,
    pub alipay_root_cert: Option<String>,
    pub seller_id: String,
    /// Service-provider mode (third-party app authorisation).
    pub app_auth_token: Option<SecretString>,
    pub gateway_url: String,
}

#[derive(Debug, Clone)]
pub enum ChannelAccount {
    Wechat(WechatAccount),
    Alipay(AlipayAccount),
}

impl ChannelAccount {
    pub fn provider(&self) -> Provider {
        match self {
            ChannelAccount::Wechat(_) => Provider::Wechat,
            ChannelAccount::Alipay(_) => Provider::Alipay,
        }
    }

    /// Checks a whole account (every field, then what must go together) and types it.
    pub fn from_fields(provider: Provider, fields: &AccountFields) -> Result<ChannelAccount, Problem> {
        for (name, value) in &fields.public {
            check_field(provider, name, value)?;
        }
        for (name, value) in &fields.secrets {
            check_field(provider, name, value.expose_secret())?;
        }
        match provider {
            Provider::Wechat => wechat(fields).map(ChannelAccount::Wechat),
            Provider::Alipay => alipay(fields).map(ChannelAccount::Alipay),
        }
    }
}

fn required<T>(value: Option<T>, name: &str, why: &str) -> Result<T, Problem> {
    value.ok_or_else(|| {
        Problem::new(crate::ProblemKind::InvalidRequest, "missing_parameter", format!("{name} is required{why}."))
            .with_param(name)
    })
}

fn together(fields: &AccountFields, a: &str, b: &str) -> Result<(), Problem> {
    let has = |n: &str| fields.public.contains_key(n) || fields.secrets.contains_key(n);
    match (has(a), has(b)) {
        (true, false) => required(None::<()>, b, &format!(" with {a}")),
        (false, true) => required(None::<()>, a, &format!(" with {b}")),
        _ => Ok(()),
    }
}

fn wechat(f: &AccountFields) -> Result<WechatAccount, Problem> {
    let api_version = match f.public.get("api_version").map(String::as_str) {
        None | Some("v3") => WechatApiVersion::V3,
        Some(_) => WechatApiVersion::V2,
    };
    together(f, "client_certificate", "client_key")?;
    together(f, "wechatpay_public_key_id", "wechatpay_public_key")?;
    if f.public.contains_key("sub_appid") && !f.public.contains_key("sub_mch_id") {
        required(None::<()>, "sub_mch_id", " with sub_appid")?;
    }
    let account = WechatAccount {
        mch_id: required(f.text("mch_id"), "mch_id", "")?,
        appid: required(f.text("appid"), "appid", "")?,
        api_version,
        api_v2_key: f.secret("api_v2_key"),
        api_v3_key: f.secret("api_v3_key"),
        merchant_serial_no: f.text("merchant_serial_no"),
        merchant_private_key: f.secret("merchant_private_key"),
        platform_certificate: f.text("platform_certificate"),
        wechatpay_public_key_id: f.text("wechatpay_public_key_id"),
        wechatpay_public_key: f.text("wechatpay_public_key"),
        client_certificate: f.text("client_certificate"),
        client_key: f.secret("client_key"),
        sub_mch_id: f.text("sub_mch_id"),
        sub_appid: f.text("sub_appid"),
        api_base_url: f.text("api_base_url").unwrap_or_else(|| WECHAT_DEFAULT_API_BASE_URL.into()),
    };
    match account.api_version {
        WechatApiVersion::V2 => {
            required(account.api_v2_key.as_ref(), "api_v2_key", " for api_version v2")?;
        }
        WechatApiVersion::V3 => {
            let why = " for api_version v3";
            required(account.api_v3_key.as_ref(), "api_v3_key", why)?;
            required(account.merchant_serial_no.as_ref(), "merchant_serial_no", why)?;
            required(account.merchant_private_key.as_ref(), "merchant_private_key", why)?;
            // Without the WeChat Pay public key, WeChat is verified with its platform certificates: the one set
            // here if any, and those fetched from `/v3/certificates` (opened with the APIv3 key).
        }
    }
    Ok(account)
}

fn alipay(f: &AccountFields) -> Result<AlipayAccount, Problem> {
    let certs = ["app_public_cert", "alipay_public_cert", "alipay_root_cert"];
    let cert_mode = certs.iter().any(|c| f.public.contains_key(*c));
    if cert_mode {
        for c in certs {
            required(f.text(c), c, " in certificate mode (with the other two certificates)")?;
        }
    } else {
        required(f.text("alipay_public_key"), "alipay_public_key", " (or the three public-key certificates)")?;
    }
    Ok(AlipayAccount {
        app_id: required(f.text("app_id"), "app_id", "")?,
        app_private_key: required(f.secret("app_private_key"), "app_private_key", "")?,
        alipay_public_key: f.text("alipay_public_key"),
        app_public_cert: f.text("app_public_cert"),
        alipay_public_cert: f.text("alipay_public_cert"),
        alipay_root_cert: f.text("alipay_root_cert"),
        seller_id: required(f.text("seller_id"), "seller_id", "")?,
        app_auth_token: f.secret("app_auth_token"),
        gateway_url: f.text("gateway_url").unwrap_or_else(|| ALIPAY_DEFAULT_GATEWAY_URL.into()),
    })
}

/// One field's value on its own. Never repeats the value in the message.
#[track_caller]
pub fn check_field(provider: Provider, name: &str, value: &str) -> Result<(), Problem> {
    let Some(field) = provider.field(name) else {
        return Err(Problem::invalid(name, format!("{name} is not a field of a {} account.", provider.as_str())));
    };
    let bad = |rule: &str| Err(Problem::invalid(name, format!("{name} {rule}.")));
    match field.kind {
        Id => {
            if value.is_empty() || value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return bad("must be 1 to 64 printable ASCII characters without spaces");
            }
        }
        Url => {
            let ok = (value.starts_with("https://") || value.starts_with("http://"))
                && value.len() <= 512
                && value.bytes().all(|b| b.is_ascii_graphic())
                && value.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
            if !ok {
                return bad("must be an http:// or https:// URL");
            }
        }
        ApiVersion => {
            if value != "v2" && value != "v3" {
                return bad("must be 'v2' or 'v3'");
            }
        }
        Key32Chars => {
            if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad("must be exactly 32 letters and digits");
            }
        }
        Key32Bytes => {
            if value.len() != 32 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return bad("must be exactly 32 bytes of printable ASCII");
            }
        }
        Token => {
            if value.is_empty() || value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return bad("must be 1 to 256 printable ASCII characters without spaces");
            }
        }
        PrivateKeyPem => {
            if !pem_blocks(value).is_some_and(|b| b.len() == 1 && matches!(b[0].0, "PRIVATE KEY" | "RSA PRIVATE KEY")) {
                return bad("must be a PEM private key (BEGIN PRIVATE KEY, PKCS#8, or BEGIN RSA PRIVATE KEY, PKCS#1)");
            }
        }
        PublicKeyPem => {
            if !pem_blocks(value).is_some_and(|b| b.len() == 1 && matches!(b[0].0, "PUBLIC KEY" | "RSA PUBLIC KEY")) {
                return bad("must be a PEM public key (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY)");
            }
        }
        CertificatePem => {
            let ok = pem_blocks(value).is_some_and(|blocks| {
                !blocks.is_empty()
                    && blocks.iter().all(|(label, der)| *label == "CERTIFICATE" && der.first() == Some(&0x30))
            });
            if !ok {
                return bad("must be one or more PEM certificates (BEGIN CERTIFICATE)");
            }
        }
    }
    Ok(())
}

/// The blocks of a PEM text: `(label, DER bytes)`; `None` when it is not well-formed PEM
/// (unbalanced markers, bad base64, text outside the blocks other than whitespace).
pub fn pem_blocks(text: &str) -> Option<Vec<(&str, Vec<u8>)>> {
    let mut blocks = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let after_begin = rest.strip_prefix("-----BEGIN ")?;
        let (label, after_label) = after_begin.split_once("-----")?;
        let end = format!("-----END {label}-----");
        let (body, after) = after_label.split_once(end.as_str())?;
        // RFC 7468 explanatory headers (PKCS#1 encrypted keys) are not supported: keys are plain.
        if body.contains(':') {
            return None;
        }
        let der = base64_decode(body)?;
        if der.is_empty() {
            return None;
        }
        blocks.push((label, der));
        rest = after.trim_start();
    }
    Some(blocks)
}

/// Standard base64 with padding, whitespace ignored.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(4) {
        return None;
    }
    let value = |c: u8| -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let mut out = Vec::with_capacity(digits.len() / 4 * 3);
    let chunks = digits.chunks(4).count();
    for (i, chunk) in digits.chunks(4).enumerate() {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && i + 1 != chunks) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBAA==\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIBAA==\n-----END PRIVATE KEY-----\n";

    fn patch(provider: Provider, body: Value) -> Result<AccountPatch, Problem> {
        AccountPatch::from_json(provider, body.as_object().unwrap())
    }

    #[test]
    fn base64_and_pem() {
        assert_eq!(base64_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64_decode("TWE=").unwrap(), b"Ma");
        assert_eq!(base64_decode("TQ==").unwrap(), b"M");
        assert!(base64_decode("TQ=a").is_none());
        assert!(base64_decode("TQ").is_none());
        assert_eq!(pem_blocks(CERT).unwrap()[0].0, "CERTIFICATE");
        assert_eq!(pem_blocks(&format!("{CERT}{CERT}")).unwrap().len(), 2);
        assert!(pem_blocks("-----BEGIN CERTIFICATE-----\nMIIBAA==\n").is_none());
        assert!(pem_blocks("junk").is_none());
    }

    #[test]
    fn a_v3_account_needs_its_keys_and_names_what_is_missing() {
        let mut fields = AccountFields::default();
        fields.apply(patch(Provider::Wechat, json!({"mch_id": "1900000109", "appid": "wxd678efh567hg6787"})).unwrap());
        let err = ChannelAccount::from_fields(Provider::Wechat, &fields).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("api_v3_key"));
        let body = json!({"api_v3_key": "short", "merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A72"});
        let err = patch(Provider::Wechat, body.clone()).unwrap().check_fields(Provider::Wechat).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("api_v3_key"));
        assert!(!err.message.contains("short"), "the value is never repeated");
        let body = json!({"api_v3_key": "a".repeat(32), "merchant_serial_no": "5157F0", "merchant_private_key": KEY,
            "platform_certificate": CERT});
        fields.apply(patch(Provider::Wechat, body).unwrap());
        let account = ChannelAccount::from_fields(Provider::Wechat, &fields).unwrap();
        let ChannelAccount::Wechat(w) = &account else { panic!("wechat") };
        assert_eq!(w.api_base_url, WECHAT_DEFAULT_API_BASE_URL);
        assert!(!format!("{account:?}").contains(&"a".repeat(32)), "Debug redacts secrets");
        // Omitting a secret keeps it; null removes it.
        fields.apply(patch(Provider::Wechat, json!({"sub_mch_id": "1900000110"})).unwrap());
        assert!(fields.secrets.contains_key("api_v3_key"));
        fields.apply(patch(Provider::Wechat, json!({"client_key": KEY})).unwrap());
        let err = ChannelAccount::from_fields(Provider::Wechat, &fields).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("client_certificate"));
    }

    #[test]
    fn unknown_fields_and_bad_pem_are_refused_by_name() {
        let err = patch(Provider::Alipay, json!({"mch_id": "1"})).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("mch_id"));
        let err = patch(Provider::Wechat, json!({"platform_certificate": "not pem"}))
            .unwrap()
            .check_fields(Provider::Wechat)
            .unwrap_err();
        assert_eq!(err.param.as_deref(), Some("platform_certificate"));
        assert_eq!(Provider::parse("paypal").unwrap_err().param.as_deref(), Some("provider"));
    }

    #[test]
    fn the_view_shows_no_secret() {
        let summary = AccountSummary {
            provider: Provider::Wechat,
            public: [("mch_id".to_string(), "1900000109".to_string())].into(),
            secrets_set: ["api_v3_key".to_string()].into(),
        };
        let shown = summary.shown();
        assert_eq!(shown["mch_id_last4"], "0109");
        assert_eq!(shown["has_api_v3_key"], true);
        assert_eq!(shown["has_api_v2_key"], false);
        assert!(!shown.contains_key("mch_id"));
    }
}
