//! Alipay OpenAPI (`gateway.do`) wire protocol, RSA2 only. `sign`: the signed string of requests and async
//! notifications, signing and verifying, the urlencoded wire form and its strict parser. `response`: the raw
//! `<method>_response` node cut out of a response body by brace matching (never re-serialised) and verified.
//! `money`: yuan strings ↔ integer fen, and Alipay's `yyyy-MM-dd HH:mm:ss` Beijing timestamps.
//!
//! RSA is `crate::rsa` (ring), shared with WeChat Pay v3; app private keys may be PKCS#1 or PKCS#8 PEM.

pub mod cert;
mod error;
pub mod money;
pub mod response;
pub mod sign;

pub use crate::rsa::{SigningKey, VerifyingKey};
pub use error::AlipayError;
pub use money::{format_timestamp, format_yuan, parse_timestamp, parse_yuan};
pub use response::{extract_node, response_node_name, Response, ERROR_RESPONSE};
pub use sign::{
    build_request, encode_form, notify_content, page_form, parse_form, percent_decode, request_content, sign_notify,
    sign_request, url_encode, verify_notify, verify_request, Params, MAX_FORM_BYTES, MAX_FORM_FIELDS,
};

/// The only signature type paygate speaks (SHA256withRSA).
pub const SIGN_TYPE: &str = "RSA2";
/// The only charset paygate sends and accepts.
pub const CHARSET: &str = "utf-8";
/// `code` of a successful call.
pub const CODE_SUCCESS: &str = "10000";
/// `code` of "service unavailable": the outcome is unknown, query before acting.
pub const CODE_UNKNOWN: &str = "20000";
/// `code` of a business failure (see `sub_code`, e.g. `ACQ.TRADE_NOT_EXIST`).
pub const CODE_BUSINESS_FAILED: &str = "40004";
/// The exact body a merchant answers a notification with so Alipay stops retrying.
pub const NOTIFY_ACK: &str = "success";

#[cfg(test)]
mod robustness_tests;
/// An app private key as Alipay's key tool gives it: PEM (PKCS#1 or PKCS#8), or the bare base64 body of either.
pub fn app_private_key(text: &str) -> Result<SigningKey, AlipayError> {
    if text.contains("-----BEGIN") {
        return Ok(SigningKey::from_pem(text)?);
    }
    let body = text.trim();
    SigningKey::from_pem(&pem("PRIVATE KEY", body))
        .or_else(|_| SigningKey::from_pem(&pem("RSA PRIVATE KEY", body)))
        .map_err(|_| AlipayError::Key("app private key is neither PKCS#8 nor PKCS#1 RSA (PEM or base64)".into()))
}

/// The Alipay public key as the open platform shows it: PEM, or the bare base64 SubjectPublicKeyInfo.
pub fn alipay_public_key(text: &str) -> Result<VerifyingKey, AlipayError> {
    if text.contains("-----BEGIN") {
        return Ok(VerifyingKey::from_pem(text)?);
    }
    let body = text.trim();
    VerifyingKey::from_pem(&pem("PUBLIC KEY", body))
        .or_else(|_| VerifyingKey::from_pem(&pem("RSA PUBLIC KEY", body)))
        .map_err(|_| AlipayError::Key("Alipay public key is not an RSA public key (PEM or base64)".into()))
}

fn pem(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

#[cfg(test)]
mod tests;
