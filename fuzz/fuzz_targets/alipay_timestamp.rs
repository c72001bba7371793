//! `alipay::parse_timestamp` and `format_timestamp`. Any text: never panics; what it accepts is in the one
//! canonical `yyyy-MM-dd HH:mm:ss` spelling, so `format_timestamp` of the result gives the text back. The first 8
//! bytes as unix seconds: inside years 0000..=9999 (Beijing time) `format_timestamp` reads back to the same
//! second; outside them its text is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::alipay::{format_timestamp, parse_timestamp};
use std::sync::OnceLock;

fn range() -> &'static std::ops::RangeInclusive<i64> {
    static RANGE: OnceLock<std::ops::RangeInclusive<i64>> = OnceLock::new();
    RANGE.get_or_init(|| {
        let first = parse_timestamp("0000-01-01 00:00:00").expect("year 0 parses");
        let last = parse_timestamp("9999-12-31 23:59:59").expect("year 9999 parses");
        assert_eq!(first, -62_167_219_200 - 8 * 3600, "0000-01-01 00:00:00 +08:00");
        assert_eq!(last, 253_402_300_799 - 8 * 3600, "9999-12-31 23:59:59 +08:00");
        first..=last
    })
}

fuzz_target!(|data: &[u8]| {
    let range = range();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(unix) = parse_timestamp(text) {
            assert!(range.contains(&unix));
            assert_eq!(format_timestamp(unix), text, "parse_timestamp({text:?}) = {unix}, not canonical");
        }
    }
    if let Some(bytes) = data.get(..8) {
        let unix = i64::from_le_bytes(bytes.try_into().expect("8 bytes"));
        let text = format_timestamp(unix);
        let back = parse_timestamp(&text).ok();
        if range.contains(&unix) {
            assert_eq!(back, Some(unix), "format_timestamp({unix}) = {text:?} does not read back");
        } else {
            assert_eq!(back, None, "parse_timestamp accepted {text:?} for {unix}");
        }
    }
});
