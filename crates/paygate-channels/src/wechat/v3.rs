//! WeChat Pay API v3: JSON bodies; requests carry `Authorization: WECHATPAY2-SHA256-RSA2048 …` (SHA256withRSA,
//! PKCS#1 v1.5, by the merchant's key), responses and callbacks carry `Wechatpay-Timestamp/-Nonce/-Signature/
//! -Serial` (by the platform's key), and callbacks encrypt their `resource` with AEAD_AES_256_GCM under the
//! merchant's APIv3 key.
//!
//! RSA runs on `ring` (constant-time private-key operations) through `crate::rsa`, shared with Alipay.

use super::WechatError;
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

// The RSA keys are shared with Alipay; they stay nameable here so callers need not change.
pub use crate::rsa::{SigningKey, VerifyingKey};

/// The authorization scheme of every v3 request.
pub const SCHEMA: &str = "WECHATPAY2-SHA256-RSA2048";
/// A signed timestamp further than this from now (either way) is refused.
pub const MAX_SKEW_SECONDS: i64 = 300;
/// The only resource algorithm WeChat uses.
pub const AEAD_ALGORITHM: &str = "AEAD_AES_256_GCM";

/// `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` — what a request's signature covers (BODY empty for GET).
pub fn request_message(method: &str, path_and_query: &str, timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}\n{body}\n")
}

/// `TIMESTAMP\nNONCE\nBODY\n` — what a response's or callback's signature covers.
pub fn response_message(timestamp: i64, nonce: &str, body: &str) -> String {
    format!("{timestamp}\n{nonce}\n{body}\n")
}

/// Refuses a timestamp `MAX_SKEW_SECONDS` or more away from `now` (both unix seconds).
pub fn check_timestamp(timestamp: i64, now: i64) -> Result<(), WechatError> {
    if timestamp.abs_diff(now) >= MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(WechatError::Stale(format!(
            "timestamp {timestamp} is {} s from now; the window is {MAX_SKEW_SECONDS} s",
            timestamp.abs_diff(now)
        )));
    }
    Ok(())
}

/// The parameters of a request's `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub mchid: String,
    pub nonce_str: String,
    pub timestamp: i64,
    pub serial_no: String,
    pub signature: String,
}

impl Authorization {
    /// Signs a request as the merchant `mchid` whose certificate serial is `serial_no`.
    pub fn sign(
        key: &SigningKey,
        mchid: &str,
        serial_no: &str,
        request: &RequestParts<'_>,
        timestamp: i64,
        nonce_str: &str,
    ) -> Result<Authorization, WechatError> {
        let message = request_message(request.method, request.path_and_query, timestamp, nonce_str, request.body);
        Ok(Authorization {
            mchid: mchid.to_string(),
            nonce_str: nonce_str.to_string(),
            timestamp,
            serial_no: serial_no.to_string(),
            signature: key.sign(message.as_bytes())?,
        })
    }

    /// The header value: `WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…"`.
    pub fn header_value(&self) -> String {
        format!(
            "{SCHEMA} mchid=\"{}\",nonce_str=\"{}\",timestamp=\"{}\",serial_no=\"{}\",signature=\"{}\"",
            self.mchid, self.nonce_str, self.timestamp, self.serial_no, self.signature
        )
    }

    /// Reads a header value; every parameter must be present once, quoted, and the schema must match.
    pub fn parse(header: &str) -> Result<Authorization, WechatError> {
        let bad = |m: String| WechatError::Malformed(format!("Authorization: {m}"));
        if header.len() > 4096 {
            return Err(bad("longer than 4096 bytes".into()));
        }
        let rest = header
            .trim()
            .strip_prefix(SCHEMA)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(|| bad(format!("schema is not {SCHEMA}")))?;
        let (mut mchid, mut nonce, mut ts, mut serial, mut sig) = (None, None, None, None, None);
        for part in rest.split(',') {
            let (name, value) =
                part.trim().split_once('=').ok_or_else(|| bad(format!("'{part}' is not name=\"value\"")))?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or_else(|| bad(format!("{name} is not quoted")))?;
            let slot = match name {
                "mchid" => &mut mchid,
                "nonce_str" => &mut nonce,
                "timestamp" => &mut ts,
                "serial_no" => &mut serial,
                "signature" => &mut sig,
                // Parameters WeChat may add later do not break reading.
                _ => continue,
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(bad(format!("{name} appears twice")));
            }
        }
        let need = |v: Option<String>, name: &str| {
            v.filter(|v| !v.is_empty()).ok_or_else(|| bad(format!("{name} is missing")))
        };
        let ts = need(ts, "timestamp")?;
        Ok(Authorization {
            mchid: need(mchid, "mchid")?,
            nonce_str: need(nonce, "nonce_str")?,
            timestamp: ts.parse().map_err(|_| bad(format!("timestamp '{ts}' is not an integer")))?,
            serial_no: need(serial, "serial_no")?,
            signature: need(sig, "signature")?,
        })
    }

    /// Checks this authorization against the request it came with: the 300 s window, then the signature.
    pub fn verify(&self, key: &VerifyingKey, request: &RequestParts<'_>, now: i64) -> Result<(), WechatError> {
        check_timestamp(self.timestamp, now)?;
        let message =
            request_message(request.method, request.path_and_query, self.timestamp, &self.nonce_str, request.body);
        Ok(key.verify(message.as_bytes(), &self.signature)?)
    }
}

/// What a request signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// `GET`, `POST`, … uppercase.
    pub method: &'a str,
    /// The path and query exactly as sent (`/v3/pay/transactions/id/420…?mchid=190…`).
    pub path_and_query: &'a str,
    /// The body exactly as sent; empty for GET.
    pub body: &'a str,
}

/// The `Wechatpay-*` headers of a response or callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseSignature {
    /// `Wechatpay-Timestamp`
    pub timestamp: i64,
    /// `Wechatpay-Nonce`
    pub nonce: String,
    /// `Wechatpay-Signature`
    pub signature: String,
    /// `Wechatpay-Serial`: the platform certificate serial or public key id that signed.
    pub serial: String,
}

impl ResponseSignature {
    pub const TIMESTAMP: &'static str = "Wechatpay-Timestamp";
    pub const NONCE: &'static str = "Wechatpay-Nonce";
    pub const SIGNATURE: &'static str = "Wechatpay-Signature";
    pub const SERIAL: &'static str = "Wechatpay-Serial";

    /// Signs `body` as the platform key `serial`.
    pub fn sign(key: &SigningKey, serial: &str, body: &str, timestamp: i64, nonce: &str) -> Result<Self, WechatError> {
        Ok(ResponseSignature {
            timestamp,
            nonce: nonce.to_string(),
            signature: key.sign(response_message(timestamp, nonce, body).as_bytes())?,
            serial: serial.to_string(),
        })
    }

    /// Reads the four headers through `header(name)` (any case handling is the caller's lookup).
    pub fn from_headers<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Result<Self, WechatError> {
        let need = |name: &str| {
            header(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| WechatError::Malformed(format!("header {name} is missing")))
        };
        let ts = need(Self::TIMESTAMP)?;
        Ok(ResponseSignature {
            timestamp: ts
                .parse()
                .map_err(|_| WechatError::Malformed(format!("header {} '{ts}' is not an integer", Self::TIMESTAMP)))?,
            nonce: need(Self::NONCE)?.to_string(),
            signature: need(Self::SIGNATURE)?.to_string(),
            serial: need(Self::SERIAL)?.to_string(),
        })
    }

    /// The headers as (name, value) pairs, to set on a response.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (Self::TIMESTAMP, self.timestamp.to_string()),
            (Self::NONCE, self.nonce.clone()),
            (Self::SIGNATURE, self.signature.clone()),
            (Self::SERIAL, self.serial.clone()),
        ]
    }

    /// Checks the window, then the signature of `body`. Choosing `key` by `serial` is the caller's job.
    pub fn verify(&self, key: &VerifyingKey, body: &str, now: i64) -> Result<(), WechatError> {
        check_timestamp(self.timestamp, now)?;
        Ok(key.verify(response_message(self.timestamp, &self.nonce, body).as_bytes(), &self.signature)?)
    }
}

/// A callback's encrypted `resource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub algorithm: String,
    pub ciphertext: String,
    #[serde(default)]
    pub associated_data: String,
    pub nonce: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

impl Resource {
    /// Encrypts `plaintext` (the resource JSON) under the APIv3 key.
    pub fn seal(
        api_v3_key: &[u8],
        nonce: &str,
        associated_data: &str,
        plaintext: &[u8],
        original_type: &str,
    ) -> Result<Resource, WechatError> {
        Ok(Resource {
            algorithm: AEAD_ALGORITHM.to_string(),
            ciphertext: aead_encrypt(api_v3_key, nonce, associated_data, plaintext)?,
            associated_data: associated_data.to_string(),
            nonce: nonce.to_string(),
            original_type: Some(original_type.to_string()),
        })
    }

    /// Decrypts the resource; refuses any algorithm but AEAD_AES_256_GCM.
    pub fn open(&self, api_v3_key: &[u8]) -> Result<Vec<u8>, WechatError> {
        if self.algorithm != AEAD_ALGORITHM {
            return Err(WechatError::Malformed(format!(
                "resource.algorithm '{}' is not {AEAD_ALGORITHM}",
                self.algorithm
            )));
        }
        aead_decrypt(api_v3_key, &self.nonce, &self.associated_data, &self.ciphertext)
    }
}

fn cipher(api_v3_key: &[u8]) -> Result<Aes256Gcm, WechatError> {
    Aes256Gcm::new_from_slice(api_v3_key)
        .map_err(|_| WechatError::Key(format!("the APIv3 key is {} bytes, not 32", api_v3_key.len())))
}

fn gcm_nonce(nonce: &str) -> Result<&Nonce<aes_gcm::aead::consts::U12>, WechatError> {
    if nonce.len() != 12 {
        return Err(WechatError::Malformed(format!("resource.nonce is {} bytes, not 12", nonce.len())));
    }
    Ok(Nonce::from_slice(nonce.as_bytes()))
}

/// AEAD_AES_256_GCM: base64 of ciphertext with the 16-byte tag at its end.
pub fn aead_encrypt(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String, WechatError> {
    let sealed = cipher(api_v3_key)?
        .encrypt(gcm_nonce(nonce)?, Payload { msg: plaintext, aad: associated_data.as_bytes() })
        .map_err(|_| WechatError::Decrypt("AEAD encryption failed".into()))?;
    Ok(STANDARD.encode(sealed))
}

/// Opens [`aead_encrypt`]'s output; a wrong key, nonce, associated data or any changed byte is refused.
pub fn aead_decrypt(
    api_v3_key: &[u8],
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>, WechatError> {
    let data = STANDARD
        .decode(ciphertext_b64.trim())
        .map_err(|_| WechatError::Malformed("resource.ciphertext is not base64".into()))?;
    if data.len() < 16 {
        return Err(WechatError::Malformed("resource.ciphertext is shorter than its 16-byte tag".into()));
    }
    cipher(api_v3_key)?
        .decrypt(gcm_nonce(nonce)?, Payload { msg: &data, aad: associated_data.as_bytes() })
        .map_err(|_| WechatError::Decrypt("resource does not decrypt (wrong APIv3 key or tampered data)".into()))
}

/// `n` characters of `[0-9A-Za-z]` from the system's secure random source (nonces).
pub fn random_token(n: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut seed = [0u8; 32];
    // The system source failing is not something a caller can act on; a zero seed would repeat nonces, so
    // fall back to the clock mixed in rather than a constant.
    if SystemRandom::new().fill(&mut seed).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        seed[..16].copy_from_slice(&t.to_le_bytes());
    }
    paygate_domain::ids::random_chars(ALPHABET, n, &seed)
}

#[cfg(test)]
#[path = "v3_tests.rs"]
mod tests;
