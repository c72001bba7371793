//! `v2::parse_xml` on any text (what arrives as a v2 notification or answer body): never panics; whatever it
//! accepts has unique `[A-Za-z0-9_]{1,64}` names, at most MAX_FIELDS of them, and renders back to XML that parses
//! to the same fields in the same order (and renders identically again). A message that verifies under the seed's
//! API key signs the same content as the seed notification (fuzz/corpus/v2_parse_xml/pay_notify.xml). A
//! `req_info` field is decrypted and read as XML, as the refund notification handler does, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v2;
use paygate_fuzz::{v2_signed_notification, API_V2_KEY};

fuzz_target!(|data: &[u8]| {
    // Checks once that the committed seed notification verifies, so the tamper check below is not vacuous.
    let seed = v2_signed_notification();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(fields) = v2::parse_xml(text) else {
        return;
    };
    assert!(fields.len() <= v2::MAX_FIELDS, "{} fields accepted", fields.len());
    let mut seen = std::collections::HashSet::new();
    for (name, _) in fields.iter() {
        assert!(
            !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "field name {name:?} accepted"
        );
        assert!(seen.insert(name), "field {name} accepted twice");
    }
    // Starting from the signed seed notification, every mutation the fuzzer makes is a tampered message: it may
    // verify only if what is signed is unchanged (whitespace, comments, CDATA vs text, field order, empty fields).
    if v2::verify(&fields, API_V2_KEY).is_ok() {
        assert_eq!(
            v2::string_to_sign(&fields, API_V2_KEY),
            v2::string_to_sign(seed, API_V2_KEY),
            "a changed notification verified"
        );
        assert_eq!(
            fields.get("sign").map(str::to_ascii_uppercase).as_deref(),
            seed.get("sign"),
            "another sign verified"
        );
    }
    // A refund notification's req_info, opened and read as the notification handler does (the seed
    // refund_notify.xml carries one sealed under API_V2_KEY).
    if let Some(req_info) = fields.get("req_info") {
        if let Ok(inner) = v2::decrypt_req_info(req_info, API_V2_KEY) {
            let _ = v2::parse_xml(&inner);
        }
    }
    let rendered = v2::render_xml(&fields);
    // Rendering wraps every value in CDATA (and splits `]]>`), so it may outgrow the size limit: no round trip then.
    if rendered.len() > v2::MAX_XML_BYTES {
        return;
    }
    let again = v2::parse_xml(&rendered).unwrap_or_else(|e| panic!("rendered XML {rendered:?} does not parse: {e}"));
    assert_eq!(again, fields, "parse -> render -> parse changed the fields");
    assert_eq!(v2::render_xml(&again), rendered, "render is not stable");
});
