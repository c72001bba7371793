//! `v3::Authorization::parse` on any header value: never panics; what it accepts renders (`header_value`) and
//! parses back to the same parameters. `Authorization::verify` with the fuzz platform key accepts a parsed header
//! for the seed request only with the signed timestamp, nonce and signature bytes; and the seed's signed
//! `Authorization` is refused for any other request body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v3::{Authorization, RequestParts};
use paygate_fuzz::{base64_bytes, request_parts, signed_request, verifying_key, REQUEST_BODY};

fuzz_target!(|data: &[u8]| {
    // Signed once per process, checked against the committed seed (see paygate_fuzz).
    let signed = signed_request();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(auth) = Authorization::parse(text) {
        let again = Authorization::parse(&auth.header_value())
            .unwrap_or_else(|e| panic!("rendered {:?} does not parse: {e}", auth.header_value()));
        assert_eq!(again, auth, "parse -> header_value -> parse changed the parameters");
        // Now = the header's own time, so the window passes and the signature decides.
        if auth.verify(verifying_key(), &request_parts(), auth.timestamp).is_ok() {
            assert_eq!(auth.timestamp, signed.timestamp, "verified with another timestamp");
            assert_eq!(auth.nonce_str, signed.nonce_str, "verified with another nonce");
            assert_eq!(base64_bytes(&auth.signature), base64_bytes(&signed.signature), "verified another signature");
        }
    }
    // The input as the body of the signed request.
    let request = RequestParts { body: text, ..request_parts() };
    if signed.verify(verifying_key(), &request, signed.timestamp).is_ok() {
        assert_eq!(text, REQUEST_BODY, "a signature verified for another body");
    }
});
