//! `v3::check_timestamp` over all of i64: never panics (no overflow near the ends), and accepts exactly the
//! timestamps less than MAX_SKEW_SECONDS from now, either way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_channels::wechat::v3::{check_timestamp, MAX_SKEW_SECONDS};

fuzz_target!(|pair: (i64, i64)| {
    let (timestamp, now) = pair;
    let within = (i128::from(timestamp) - i128::from(now)).abs() < i128::from(MAX_SKEW_SECONDS);
    assert_eq!(check_timestamp(timestamp, now).is_ok(), within, "timestamp {timestamp}, now {now}");
});
