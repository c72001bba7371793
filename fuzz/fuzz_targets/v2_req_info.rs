//! `v2::decrypt_req_info` (a refund notification's AES-256-ECB `req_info`): never panics on any text or key, and
//! what it opens reads with `parse_xml` without panicking (as the notification handler does); what
//! `encrypt_req_info` seals opens to the same text; with another key, or any changed ciphertext byte, it does
//! not open to the original text.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v2;

#[derive(Arbitrary, Debug)]
struct Input {
    raw: String,
    plain: String,
    key: String,
    other_key: String,
    flip_at: u16,
    flip_bits: u8,
}

fuzz_target!(|input: Input| {
    if let Ok(text) = v2::decrypt_req_info(&input.raw, &input.key) {
        let _ = v2::parse_xml(&text);
    }
    let sealed = v2::encrypt_req_info(&input.plain, &input.key);
    assert_eq!(v2::decrypt_req_info(&sealed, &input.key).as_deref(), Ok(input.plain.as_str()), "round trip");
    if input.other_key != input.key {
        assert_ne!(
            v2::decrypt_req_info(&sealed, &input.other_key).ok().as_deref(),
            Some(input.plain.as_str()),
            "opened under another key"
        );
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(&sealed).expect("encrypt_req_info writes base64");
    let at = usize::from(input.flip_at) % bytes.len();
    bytes[at] ^= input.flip_bits.max(1);
    assert_ne!(
        v2::decrypt_req_info(&engine.encode(&bytes), &input.key).ok().as_deref(),
        Some(input.plain.as_str()),
        "a changed ciphertext opened to the original"
    );
});
