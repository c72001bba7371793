//! Every parser of what a channel (or anyone posing as one) sends answers an error, never a panic: arbitrary
//! text, and mutations of well-formed input.

use super::{v2, v3};
use proptest::prelude::*;

const XML: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><total_fee>1</total_fee></xml>";
const AUTH: &str =
    "WECHATPAY2-SHA256-RSA2048 mchid=\"1\",nonce_str=\"n\",timestamp=\"5\",serial_no=\"s\",signature=\"x\"";

fn mutate(base: &str, at: usize, insert: &str, cut: usize) -> String {
    let mut s: Vec<char> = base.chars().collect();
    let at = at % (s.len() + 1);
    let end = (at + cut).min(s.len());
    s.splice(at..end, insert.chars());
    s.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic(text in "\\PC{0,200}") {
        let _ = v2::parse_xml(&text);
        let _ = v2::decrypt_req_info(&text, "key");
        let _ = v3::Authorization::parse(&text);
        let _ = v3::aead_decrypt(&[7; 32], "123456789012", "", &text);
        let _ = v3::VerifyingKey::from_pem(&text);
        let _ = v3::SigningKey::from_pem(&text);
        let _ = v3::ResponseSignature::from_headers(|_| Some(text.as_str()));
    }

    #[test]
    fn mutated_messages_never_panic(
        at in 0usize..120,
        insert in "[<>!\\[\\]&;=\",a-zA-Z0-9 ]{0,12}",
        cut in 0usize..8,
    ) {
        let xml = mutate(XML, at, &insert, cut);
        if let Ok(fields) = v2::parse_xml(&xml) {
            // Whatever parses renders back to the same fields.
            prop_assert_eq!(v2::parse_xml(&v2::render_xml(&fields)).ok(), Some(fields));
        }
        let _ = v3::Authorization::parse(&mutate(AUTH, at, &insert, cut));
    }
}
