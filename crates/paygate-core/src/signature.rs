//! Ping++ request signatures: base64 RSA-SHA256 (PKCS#1 v1.5) by the merchant's private key over
//! `BODY + REQUEST_URI + TIMESTAMP`, checked against the app's registered public key.

use base64::Engine;
use paygate_domain::Problem;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::Sha256;

/// Requests signed longer ago (or further ahead) than this are refused as stale.
pub const MAX_SKEW_SECONDS: i64 = 300;

pub fn parse_public_key(pem: &str) -> Result<RsaPublicKey, Problem> {
    RsaPublicKey::from_public_key_pem(pem.trim()).or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim())).map_err(|_| {
        Problem::invalid(
            "public_key",
            "The public key must be an RSA public key in PEM form (BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY).",
        )
    })
}

/// Checks the two Ping++ headers. `request_uri` is the path with its query exactly as sent.
pub fn verify_request(
    public_key_pem: &str,
    body: &[u8],
    request_uri: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: i64,
) -> Result<(), Problem> {
    let timestamp = timestamp.ok_or_else(|| {
        Problem::authentication(
            "This app requires signed requests: the Pingplusplus-Request-Timestamp header is missing.",
        )
    })?;
    let signature = signature.ok_or_else(|| {
        Problem::authentication("This app requires signed requests: the Pingplusplus-Signature header is missing.")
    })?;
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Problem::authentication("Pingplusplus-Request-Timestamp must be a unix timestamp in seconds."))?;
    if !paygate_domain::validate::within_window(now, ts, MAX_SKEW_SECONDS) {
        return Err(Problem::authentication(format!(
            "The request timestamp is more than {MAX_SKEW_SECONDS} seconds away from the server's time; \
             the request is refused as stale."
        )));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| Problem::authentication("Pingplusplus-Signature is not valid base64."))?;
    let sig = Signature::try_from(raw.as_slice())
        .map_err(|_| Problem::authentication("Pingplusplus-Signature is malformed."))?;
    let key = VerifyingKey::<Sha256>::new(
        parse_public_key(public_key_pem).map_err(|_| Problem::internal("stored public key does not parse"))?,
    );
    let mut message = Vec::with_capacity(body.len() + request_uri.len() + timestamp.len());
    message.extend_from_slice(body);
    message.extend_from_slice(request_uri.as_bytes());
    message.extend_from_slice(timestamp.trim().as_bytes());
    key.verify(&message, &sig)
        .map_err(|_| Problem::authentication("Pingplusplus-Signature does not verify against the app's public key."))
}
