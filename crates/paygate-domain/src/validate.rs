//! Field rules shared by every face. Each check names the field it rejects.

use crate::Problem;
use serde_json::Value;

/// Orders expire at most this long after creation (Ping++ allows up to 15 days).
pub const MAX_EXPIRY_SECONDS: i64 = 15 * 24 * 3600;
/// Default lifetime of an unpaid order.
pub const DEFAULT_EXPIRY_SECONDS: i64 = 24 * 3600;

/// Trimmed text of bounded length with no control characters.
#[track_caller]
pub fn text(param: &str, value: &str, max_chars: usize) -> Result<String, Problem> {
    if value.trim().is_empty() {
        return Err(Problem::invalid(param, format!("{param} must not be empty.")));
    }
    let n = value.chars().count();
    if n > max_chars {
        return Err(Problem::invalid(param, format!("{param} must be at most {max_chars} characters, got {n}.")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Problem::invalid(param, format!("{param} must not contain control characters.")));
    }
    Ok(value.to_string())
}

/// Merchant order numbers travel to every channel, so they use the characters all accept.
#[track_caller]
pub fn merchant_order_no(value: &str) -> Result<String, Problem> {
    let param = "merchant_order_no";
    if value.is_empty() || value.len() > 64 {
        return Err(Problem::invalid(param, "merchant_order_no must be 1 to 64 characters."));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(Problem::invalid(param, "merchant_order_no may contain only letters, digits, '_' and '-'."));
    }
    Ok(value.to_string())
}

#[track_caller]
pub fn client_ip(value: &str) -> Result<String, Problem> {
    value.parse::<std::net::IpAddr>().map(|ip| ip.to_string()).map_err(|_| {
        Problem::invalid("client_ip", format!("client_ip must be an IPv4 or IPv6 address, got '{value}'."))
    })
}

/// Whether a timestamp a client sent is at most `window` seconds away from `now`. `abs_diff`
/// cannot overflow whatever the client sent (`(now - ts).abs()` does for `ts = i64::MIN`).
pub fn within_window(now: i64, ts: i64, window: i64) -> bool {
    now.abs_diff(ts) <= window.unsigned_abs()
}

#[track_caller]
pub fn time_expire(now: i64, value: i64) -> Result<i64, Problem> {
    if value <= now {
        return Err(Problem::invalid("time_expire", "time_expire must be a unix timestamp in the future."));
    }
    if value > now + MAX_EXPIRY_SECONDS {
        return Err(Problem::invalid("time_expire", "time_expire must be at most 15 days from now."));
    }
    Ok(value)
}

/// Stripe's limits: ≤ 50 keys, key ≤ 40 chars, scalar values ≤ 500 chars.
#[track_caller]
pub fn metadata(value: &Value) -> Result<Option<Value>, Problem> {
    let param = "metadata";
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => {
            if map.len() > 50 {
                return Err(Problem::invalid(param, "metadata may have at most 50 keys."));
            }
            for (k, v) in map {
                if k.is_empty() || k.chars().count() > 40 {
                    return Err(Problem::invalid(param, format!("metadata key '{k}' must be 1 to 40 characters.")));
                }
                let len = match v {
                    Value::String(s) => s.chars().count(),
                    Value::Number(_) | Value::Bool(_) | Value::Null => 0,
                    _ => {
                        return Err(Problem::invalid(
                            param,
                            format!("metadata['{k}'] must be a string, number or boolean."),
                        ))
                    }
                };
                if len > 500 {
                    return Err(Problem::invalid(param, format!("metadata['{k}'] must be at most 500 characters.")));
                }
            }
            Ok(Some(value.clone()))
        }
        _ => Err(Problem::invalid(param, "metadata must be an object.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_name_their_field() {
        assert_eq!(merchant_order_no("a b").unwrap_err().param.as_deref(), Some("merchant_order_no"));
        assert!(merchant_order_no("2017081400000006").is_ok());
        assert_eq!(client_ip("300.1.1.1").unwrap_err().param.as_deref(), Some("client_ip"));
        assert_eq!(client_ip("::1").unwrap(), "::1");
        assert!(time_expire(100, 100).is_err());
        assert!(time_expire(100, 100 + MAX_EXPIRY_SECONDS + 1).is_err());
        assert!(text("subject", "   ", 32).is_err());
        assert!(text("subject", &"x".repeat(33), 32).is_err());
        assert!(text("subject", "ok\u{0}", 32).is_err());
        assert!(metadata(&json!([1])).is_err());
        assert!(metadata(&json!({"k": {"nested": 1}})).is_err());
        assert_eq!(metadata(&json!(null)).unwrap(), None);
    }

    #[test]
    fn windows_take_any_client_number() {
        assert!(within_window(1_000, 700, 300) && within_window(1_000, 1_300, 300));
        assert!(!within_window(1_000, 699, 300) && !within_window(1_000, 1_301, 300));
        assert!(!within_window(1_800_000_000, i64::MIN, 300) && !within_window(1_800_000_000, i64::MAX, 300));
        assert!(!within_window(i64::MIN, i64::MAX, 300));
        assert!(time_expire(100, i64::MAX).is_err() && time_expire(100, i64::MIN).is_err());
    }
}
