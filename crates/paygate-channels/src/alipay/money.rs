//! Alipay writes money as yuan strings with at most two decimals and times as `yyyy-MM-dd HH:mm:ss` in
//! Beijing time. Both are parsed exactly here: no floats, checked arithmetic, anything else refused.

use super::AlipayError;

/// The most digits before the decimal point: 10^15 yuan already exceeds anything Alipay moves, and keeps
/// `yuan * 100 + fen` far inside i64.
const MAX_INTEGER_DIGITS: usize = 15;

/// A yuan string (`"0.01"`, `"12.3"`, `"88"`) → fen. Refuses signs, exponents, spaces, more than two decimals,
/// an empty integer or fraction part, and values past `MAX_INTEGER_DIGITS`.
pub fn parse_yuan(text: &str) -> Result<i64, AlipayError> {
    let bad = |why: &str| AlipayError::Value(format!("amount '{}' {why}", shorten(text)));
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("is not a non-negative decimal number of yuan"));
    }
    if int.len() > MAX_INTEGER_DIGITS {
        return Err(bad("is too large"));
    }
    let mut fen: i64 = 0;
    for b in int.bytes() {
        fen =
            fen.checked_mul(10).and_then(|v| v.checked_add(i64::from(b - b'0'))).ok_or_else(|| bad("is too large"))?;
    }
    fen = fen.checked_mul(100).ok_or_else(|| bad("is too large"))?;
    if let Some(frac) = frac {
        if frac.is_empty() || frac.len() > 2 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("must have one or two digits after the decimal point"));
        }
        let mut digits = frac.bytes().map(|b| i64::from(b - b'0'));
        let tenths = digits.next().unwrap_or(0);
        let hundredths = digits.next().unwrap_or(0);
        fen = fen.checked_add(tenths * 10 + hundredths).ok_or_else(|| bad("is too large"))?;
    }
    Ok(fen)
}

/// Fen → the yuan string Alipay expects (`1` → `"0.01"`, `1230` → `"12.30"`).
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Unix seconds → `yyyy-MM-dd HH:mm:ss` in Beijing time (UTC+8), Alipay's `timestamp` and `gmt_*` fields.
pub fn format_timestamp(unix: i64) -> String {
    paygate_domain::BeijingTime::of(unix).dashed()
}

/// `yyyy-MM-dd HH:mm:ss` in Beijing time → unix seconds; exactly that shape, every field in range.
pub fn parse_timestamp(text: &str) -> Result<i64, AlipayError> {
    let bad = || AlipayError::Value(format!("time '{}' is not yyyy-MM-dd HH:mm:ss", shorten(text)));
    let b = text.as_bytes();
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, AlipayError> {
        let part = &b[from..to];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(part.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad());
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - 8 * 3600)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// At most 40 characters of untrusted text for a message.
pub(crate) fn shorten(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}
