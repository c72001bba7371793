//! `alipay::parse_form` and `percent_decode` on any bytes (an async-notify POST body, or a `gateway.do` request at
//! the simulator): never panic; `percent_decode` agrees with a strict reference decoder; what `parse_form` accepts
//! stays within its limits, has non-empty NUL-free names and survives `encode_form` -> `parse_form` unchanged.
//! A form that passes `verify_notify` (or `verify_request`) under the fuzz key signs the same content with the
//! same signature bytes as the seed notify (or request) in fuzz/corpus/alipay_form/: any mutation of what is
//! signed is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::alipay::{self, MAX_FORM_BYTES, MAX_FORM_FIELDS};
use paygate_fuzz::alipay::{signed_notify, signed_request, verifying_key};
use paygate_fuzz::base64_bytes;

/// `%XX` with exactly two hex digits, `+` as a space when asked; anything else is a bad escape.
fn reference_decode(text: &str, plus_as_space: bool) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let digit = |h: u8| (h as char).to_digit(16).map(|d| d as u8);
                out.push(digit(hex[0])? * 16 + digit(hex[1])?);
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fuzz_target!(|data: &[u8]| {
    // Checks once that the committed seeds verify, so the tamper checks below are not vacuous.
    let (notify, request) = (signed_notify(), signed_request());
    let form = alipay::parse_form(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert!(form.is_err(), "a body that is not UTF-8 parsed");
        return;
    };
    for plus in [false, true] {
        let ours = alipay::percent_decode(text, plus).ok();
        assert_eq!(ours, reference_decode(text, plus), "percent_decode({text:?}, {plus}) disagrees");
        if let Some(decoded) = ours {
            assert_eq!(alipay::percent_decode(&alipay::url_encode(&decoded), plus).ok(), Some(decoded));
        }
    }
    let Ok(params) = form else {
        return;
    };
    assert!(data.len() <= MAX_FORM_BYTES && params.len() <= MAX_FORM_FIELDS, "a form past the limits parsed");
    for name in params.keys() {
        assert!(!name.is_empty() && !name.contains('\0'), "field name {name:?} accepted");
    }
    let encoded = alipay::encode_form(&params);
    if encoded.len() <= MAX_FORM_BYTES {
        let again = alipay::parse_form(encoded.as_bytes())
            .unwrap_or_else(|e| panic!("encoded form {encoded:?} does not parse: {e}"));
        assert_eq!(again, params, "parse -> encode -> parse changed the fields");
    }

    let sign_of = |p: &alipay::Params| p.get("sign").and_then(|s| base64_bytes(s));
    if alipay::verify_notify(&params, verifying_key()).is_ok() {
        assert_eq!(alipay::notify_content(&params), alipay::notify_content(notify), "a changed notify verified");
        assert_eq!(sign_of(&params), sign_of(notify), "another notify signature verified");
    }
    if alipay::verify_request(&params, verifying_key()).is_ok() {
        assert_eq!(alipay::request_content(&params), alipay::request_content(request), "a changed request verified");
        assert_eq!(sign_of(&params), sign_of(request), "another request signature verified");
    }
});
