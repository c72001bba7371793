//! WeChat Pay wire protocols. This file: the v2 details the sandbox and the signed faces share (the MD5
//! signature over a JSON object, Beijing `time_end`). `v2`: the XML protocol (MD5/HMAC-SHA256 over ordered
//! string fields, XML, refund `req_info`). `v3`: the JSON protocol (RSA request/response signatures, AEAD
//! notification resources).

pub mod v2;
pub mod v3;

mod error;

pub use error::WechatError;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

/// WeChat Pay v2 `sign` over every non-empty field except `sign` itself.
pub fn sign_v2(fields: &Map<String, Value>, key: &str) -> String {
    let mut plain = canonical(fields);
    plain.push_str("&key=");
    plain.push_str(key);
    hex_upper(&Md5::digest(plain.as_bytes()))
}

/// The string both WeChat v2 and the signed faces (cashier, SaaS query) sign: every non-empty
/// field but `sign`, sorted by name, as `k=v` joined by `&`; non-string values as compact JSON.
pub fn canonical(fields: &Map<String, Value>) -> String {
    let mut pairs: Vec<(&String, String)> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "sign")
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => return None,
                other => other.to_string(),
            };
            (!text.is_empty()).then_some((k, text))
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// `yyyyMMddHHmmss` in Beijing time (UTC+8), as WeChat writes `time_end`.
pub fn beijing_time(unix: i64) -> String {
    paygate_domain::BeijingTime::of(unix).compact()
}

/// The trade type WeChat reports for a Ping++ WeChat channel name.
pub fn trade_type(channel: &str) -> &'static str {
    match channel {
        "wx_pub_qr" | "cb_wx_pub_qr" => "NATIVE",
        "wx_wap" => "MWEB",
        "wx" => "APP",
        "wx_pub_scan" | "cb_wx_pub_scan" => "MICROPAY",
        _ => "JSAPI",
    }
}

#[cfg(test)]
mod robustness_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sign_matches_wechat_documented_example() {
        // WeChat Pay's signature guide: appid wxd930ea5d5a258f4f, key 192006250b4c09247ec02edce69f6a2d.
        let fields = json!({"appid": "wxd930ea5d5a258f4f", "mch_id": "10000100", "device_info": "1000", "body": "test",
            "nonce_str": "ibuaiVcKdpRxkhJA"});
        assert_eq!(
            sign_v2(fields.as_object().unwrap(), "192006250b4c09247ec02edce69f6a2d"),
            "9A0A8659F005D6984697E2CA0A9CF3B7"
        );
    }

    #[test]
    fn time_end_is_beijing_time() {
        assert_eq!(beijing_time(1_584_697_940), "20200320175220");
    }
}
