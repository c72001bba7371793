//! `alipay::parse_yuan` and `format_yuan`. Any text: never panics; what it accepts is exactly
//! `[0-9]{1,15}(\.[0-9]{1,2})?` (no sign, exponent, space or third decimal) and is worth what a reference reading
//! gives, and `format_yuan` of the result reads back to it. The first 8 bytes as fen: `format_yuan` writes
//! `<yuan>.<2 digits>`, which reads back to the same fen when 0 <= fen < 10^17 and is refused otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::alipay::{format_yuan, parse_yuan};

/// 15 integer digits and two decimals.
const LIMIT: i64 = 100_000_000_000_000_000;

fn reference(text: &str) -> Option<i64> {
    let (int, frac) = text.split_once('.').map_or((text, None), |(i, f)| (i, Some(f)));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 15 || !digits(int) {
        return None;
    }
    let frac = match frac {
        None => "00".to_string(),
        Some(f) if (1..=2).contains(&f.len()) && digits(f) => format!("{f:0<2}"),
        Some(_) => return None,
    };
    format!("{int}{frac}").parse().ok()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let parsed = parse_yuan(text).ok();
        assert_eq!(parsed, reference(text), "parse_yuan({text:?})");
        if let Some(fen) = parsed {
            assert!((0..LIMIT).contains(&fen));
            assert_eq!(parse_yuan(&format_yuan(fen)).ok(), Some(fen), "format_yuan({fen}) does not read back");
        }
    }
    if let Some(bytes) = data.get(..8) {
        let fen = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let text = format_yuan(fen);
        let expected =
            format!("{}{}.{:02}", if fen < 0 { "-" } else { "" }, fen.unsigned_abs() / 100, fen.unsigned_abs() % 100);
        assert_eq!(text, expected, "format_yuan({fen})");
        let back = parse_yuan(&text).ok();
        if (0..LIMIT).contains(&fen) {
            assert_eq!(back, Some(fen), "format_yuan({fen}) = {text:?} does not read back");
        } else {
            assert_eq!(back, None, "parse_yuan accepted {text:?}");
        }
    }
});
