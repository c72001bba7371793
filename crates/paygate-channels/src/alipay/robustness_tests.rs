//! Every parser of what Alipay (or anyone posing as it) sends answers an error, never a panic: arbitrary text,
//! and mutations of well-formed input.

use super::*;
use proptest::prelude::*;

const APP_PUB: &str = include_str!("testdata/app_pub.pem");
const BODY: &str =
    r#"{"alipay_trade_query_response":{"code":"10000","msg":"Success","s":"a\"}{","n":[1,{"x":[]}]},"sign":"AAAA"}"#;
const FORM: &str = "notify_type=trade_status_sync&sign=abc%2B%3D&subject=a+b%E4%B8%AD&total_amount=0.01&sign_type=RSA2";

fn mutate(base: &str, at: usize, insert: &str, cut: usize) -> String {
    let mut s: Vec<char> = base.chars().collect();
    let at = at % (s.len() + 1);
    let end = (at + cut).min(s.len());
    s.splice(at..end, insert.chars());
    s.into_iter().collect()
}

fn all(text: &str, key: &VerifyingKey) {
    let _ = Response::parse(text, "alipay.trade.query", key);
    let _ = extract_node(text, "alipay_trade_query_response");
    let _ = parse_form(text.as_bytes());
    let _ = percent_decode(text, true);
    let _ = parse_yuan(text);
    let _ = parse_timestamp(text);
    if let Ok(p) = parse_form(text.as_bytes()) {
        let _ = verify_notify(&p, key);
        let _ = verify_request(&p, key);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic(text in "\\PC{0,200}") {
        all(&text, &VerifyingKey::from_pem(APP_PUB).unwrap());
    }

    #[test]
    fn mutated_input_never_panics(
        at in 0usize..200,
        insert in "[{}\\[\\]\"\\\\%+=&:,. 0-9a-z\u{4e2d}]{0,6}",
        cut in 0usize..6,
    ) {
        let key = VerifyingKey::from_pem(APP_PUB).unwrap();
        all(&mutate(BODY, at, &insert, cut), &key);
        all(&mutate(FORM, at, &insert, cut), &key);
    }

    #[test]
    fn yuan_round_trips(fen in 0i64..100_000_000_000_000_000) {
        prop_assert_eq!(parse_yuan(&format_yuan(fen)).unwrap(), fen);
    }

    #[test]
    fn timestamps_round_trip(unix in -2_000_000_000i64..8_000_000_000) {
        prop_assert_eq!(parse_timestamp(&format_timestamp(unix)).unwrap(), unix);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed(depth in 60usize..5000) {
        let (open, close) = ("[".repeat(depth), "]".repeat(depth));
        let body = format!("{{\"alipay_trade_query_response\":{open}{close},\"sign\":\"x\"}}");
        let _ = extract_node(&body, "alipay_trade_query_response");
    }
}
