//! `v3::ResponseSignature::from_headers` on any header values (input: Timestamp, Nonce, Signature and Serial on
//! the first four lines, the body after them): never panics; what it accepts gives back headers that read to the
//! same values. `verify` with the fuzz platform key accepts only the signed timestamp, nonce, body and signature
//! bytes (now = the header's time, so the window passes and the signature decides).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v3::ResponseSignature;
use paygate_fuzz::{base64_bytes, signed_response, verifying_key, RESPONSE_BODY};

fuzz_target!(|data: &[u8]| {
    // Signed once per process, checked against the committed seed (see paygate_fuzz).
    let signed = signed_response();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(5, '\n');
    let values: Vec<Option<&str>> = (0..4).map(|_| parts.next()).collect();
    let body = parts.next().unwrap_or("");
    let names = [
        ResponseSignature::TIMESTAMP,
        ResponseSignature::NONCE,
        ResponseSignature::SIGNATURE,
        ResponseSignature::SERIAL,
    ];
    let lookup = |name: &str| names.iter().position(|n| *n == name).and_then(|i| values[i]);
    let Ok(sig) = ResponseSignature::from_headers(lookup) else {
        return;
    };
    let headers = sig.headers();
    let again =
        ResponseSignature::from_headers(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str()))
            .unwrap_or_else(|e| panic!("headers {headers:?} do not read back: {e}"));
    assert_eq!(again, sig, "from_headers -> headers -> from_headers changed a value");

    if sig.verify(verifying_key(), body, sig.timestamp).is_ok() {
        assert_eq!(body, RESPONSE_BODY, "verified another body");
        assert_eq!(sig.timestamp, signed.timestamp, "verified another timestamp");
        assert_eq!(sig.nonce, signed.nonce, "verified another nonce");
        assert_eq!(base64_bytes(&sig.signature), base64_bytes(&signed.signature), "verified another signature");
    }
    // One second outside the window either way is refused.
    let edge = paygate_channels::wechat::v3::MAX_SKEW_SECONDS;
    if let Some(now) = sig.timestamp.checked_add(edge) {
        assert!(sig.verify(verifying_key(), body, now).is_err(), "verified {edge} s late");
    }
});
