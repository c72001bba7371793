//! What paygate reads of a WeChat Pay notification before it touches the books: the checks that need only the
//! account (v2 `sign` or `req_info` under the API key; v3 `Wechatpay-*` headers within 300 s, then AEAD; the
//! mch/app ids). Pure functions of the body, headers and keys, so `POST /notify/wechat/…` (paygate-core's
//! `wechat_notify`) and the fuzz target `wechat_notification` run the very same code. The amount is checked
//! against the charge afterwards, by the core.

use super::v3::V3Keys;
use crate::wechat::v2::{self, Fields};
use crate::wechat::v3::Resource;
use serde_json::{Map, Value};

/// Why a notification is refused: the status to answer and WeChat's failure message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal { status, message: message.into() }
}

/// A payment success, authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct PaidNotice {
    pub out_trade_no: String,
    pub transaction_id: String,
    pub total: i64,
    /// What is kept with the charge (`wechat_response`).
    pub notification: Value,
}

/// A refund result named by a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotice {
    pub out_trade_no: String,
    pub out_refund_no: String,
    pub refund_fee: i64,
    /// v3 only (`SUCCESS`, `CLOSED`, `ABNORMAL`); a v2 notice carries none, being no proof.
    pub status: Option<String>,
    pub refund_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Signed and for this account; `None`: not a success (acknowledged, nothing changes).
    Payment(Option<PaidNotice>),
    /// v2: decrypted from `req_info`, which has no integrity check: only a refund to ask WeChat about. v3: signed.
    Refund(RefundNotice),
    /// v3: an event of no interest (its type), acknowledged.
    Other(String),
}

/// A v2 notification (XML) for the account (`appid`, `mch_id`, API v2 `key`).
pub fn read_v2(body: &str, key: &str, appid: &str, mch_id: &str) -> Result<Notice, Refusal> {
    let fields = v2::parse_xml(body).map_err(|e| refuse(400, e.to_string()))?;
    if fields.get("return_code") != Some("SUCCESS") {
        return Err(refuse(400, "return_code is not SUCCESS"));
    }
    if fields.get("appid") != Some(appid) || fields.get("mch_id") != Some(mch_id) {
        return Err(refuse(400, "appid or mch_id does not match the account"));
    }
    if let Some(req_info) = fields.non_empty("req_info") {
        // Not proof: req_info is AES-ECB without integrity and the notification has no sign, so blocks of genuine
        // ones can be cut and pasted. It only names a refund to ask WeChat about (`/pay/refundquery`).
        let plain = v2::decrypt_req_info(req_info, key).map_err(|e| refuse(400, e.to_string()))?;
        let xml = plain.replacen("<root>", "<xml>", 1).replacen("</root>", "</xml>", 1);
        let info = v2::parse_xml(&xml).map_err(|e| refuse(400, format!("req_info: {e}")))?;
        let need = |name: &str| info.require(name).map_err(|e| refuse(400, format!("req_info: {e}")));
        return Ok(Notice::Refund(RefundNotice {
            out_trade_no: need("out_trade_no")?.to_string(),
            out_refund_no: need("out_refund_no")?.to_string(),
            refund_fee: int(need("refund_fee")?, "refund_fee")?,
            status: None,
            refund_id: None,
        }));
    }
    v2::verify(&fields, key).map_err(|e| refuse(400, e.to_string()))?;
    if fields.get("result_code") != Some("SUCCESS") {
        // A failed payment is not final for the order (the payer can try again).
        return Ok(Notice::Payment(None));
    }
    let need = |name: &str| fields.require(name).map(str::to_string).map_err(|e| refuse(400, e.to_string()));
    Ok(Notice::Payment(Some(PaidNotice {
        out_trade_no: need("out_trade_no")?,
        transaction_id: need("transaction_id")?,
        total: int(&need("total_fee")?, "total_fee")?,
        notification: fields_json(&fields),
    })))
}

/// A v3 callback (JSON) for the account: headers by name, checked against `now` (WeChat's real time).
pub fn read_v3(
    keys: &V3Keys,
    appid: &str,
    mch_id: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &str,
    now: i64,
) -> Result<Notice, Refusal> {
    keys.verify_signed(header, body, now).map_err(|e| refuse(401, e.to_string()))?;
    let event: Value = serde_json::from_str(body).map_err(|_| refuse(400, "body is not JSON"))?;
    let event_type = event.get("event_type").and_then(Value::as_str).unwrap_or("");
    let resource: Resource = event
        .get("resource")
        .cloned()
        .and_then(|r| serde_json::from_value(r).ok())
        .ok_or_else(|| refuse(400, "resource is missing or malformed"))?;
    let plain = resource.open(keys.api_v3_key()).map_err(|e| refuse(400, e.to_string()))?;
    let data: Value = serde_json::from_slice(&plain).map_err(|_| refuse(400, "resource is not JSON"))?;
    let text = |name: &str| {
        data.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| refuse(400, format!("resource.{name} is missing")))
    };
    if text("mchid")? != mch_id {
        return Err(refuse(400, "mchid does not match the account"));
    }
    let amount = |name: &str| {
        data.pointer(&format!("/amount/{name}"))
            .and_then(Value::as_i64)
            .ok_or_else(|| refuse(400, format!("resource.amount.{name} is missing")))
    };
    match event_type {
        "TRANSACTION.SUCCESS" => {
            if text("appid")? != appid {
                return Err(refuse(400, "appid does not match the account"));
            }
            if text("trade_state")? != "SUCCESS" {
                return Ok(Notice::Payment(None));
            }
            let mut kept = Map::new();
            kept.insert("event_type".into(), Value::String(event_type.to_string()));
            kept.insert("id".into(), event.get("id").cloned().unwrap_or(Value::Null));
            kept.insert("resource".into(), data.clone());
            Ok(Notice::Payment(Some(PaidNotice {
                out_trade_no: text("out_trade_no")?,
                transaction_id: text("transaction_id")?,
                total: amount("total")?,
                notification: Value::Object(kept),
            })))
        }
        "REFUND.SUCCESS" | "REFUND.CLOSED" | "REFUND.ABNORMAL" => Ok(Notice::Refund(RefundNotice {
            out_trade_no: text("out_trade_no")?,
            out_refund_no: text("out_refund_no")?,
            refund_fee: amount("refund")?,
            status: Some(text("refund_status")?),
            refund_id: data.get("refund_id").and_then(Value::as_str).map(str::to_string),
        })),
        other => Ok(Notice::Other(other.to_string())),
    }
}

fn int(text: &str, name: &str) -> Result<i64, Refusal> {
    text.parse::<i64>().map_err(|_| refuse(400, format!("{name} is not an integer")))
}

/// The notification as kept with the charge: its fields as a JSON object, in the order they came.
fn fields_json(fields: &Fields) -> Value {
    Value::Object(fields.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::v2::SignType;
    use crate::wechat::v3::{ResponseSignature, SigningKey};
    use crate::wechat_pay::{NetPolicy, WechatPay, WechatPayConfig};
    use paygate_domain::accounts::{WechatAccount, WechatApiVersion};
    use paygate_domain::Mode;
    use serde_json::json;
    use std::time::Duration;

    const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
    const V3_KEY: &str = "v3KeyV3KeyV3KeyV3KeyV3KeyV3Key12";
    const NOW: i64 = 1_700_000_000;

    /// A v3 adapter whose WeChat Pay public key is `platform`'s, and `platform`'s PEM to sign with.
    fn v3_pay() -> (WechatPay, String) {
        use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
        let platform = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let private = platform.to_pkcs8_pem(LineEnding::LF).unwrap().to_string();
        let public = platform.to_public_key().to_public_key_pem(LineEnding::LF).unwrap();
        let account = WechatAccount {
            mch_id: "10000100".into(),
            appid: "wxd930ea5d5a258f4f".into(),
            api_version: WechatApiVersion::V3,
            api_v2_key: None,
            api_v3_key: Some(V3_KEY.to_string().into()),
            merchant_serial_no: Some("SERIAL1".into()),
            merchant_private_key: Some(private.clone().into()),
            platform_certificate: None,
            wechatpay_public_key_id: Some("PUB_KEY_ID_1".into()),
            wechatpay_public_key: Some(public),
            client_certificate: None,
            client_key: None,
            sub_mch_id: None,
            sub_appid: None,
            api_base_url: "https://api.mch.weixin.qq.com".into(),
        };
        let net = NetPolicy {
            allow_private: false,
            is_public: |_| true,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        let config = WechatPayConfig::from_account(&account, "app_x", Mode::Test, net).unwrap();
        (WechatPay::new(config), private)
    }

    fn v2_body(total: &str, mch_id: &str, tamper: bool) -> String {
        let mut f: Fields = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wxd930ea5d5a258f4f"),
            ("mch_id", mch_id),
            ("out_trade_no", "T1"),
            ("transaction_id", "4200001"),
            ("total_fee", total),
        ]
        .into_iter()
        .collect();
        f.set("sign", v2::sign(&f, KEY, SignType::Md5));
        if tamper {
            f.set("total_fee", "1");
        }
        v2::render_xml(&f)
    }

    #[test]
    fn v2_payment_is_read_only_when_signed_for_the_account() {
        let read = |body: &str| read_v2(body, KEY, "wxd930ea5d5a258f4f", "10000100");
        let Ok(Notice::Payment(Some(paid))) = read(&v2_body("101", "10000100", false)) else { panic!() };
        assert_eq!((paid.out_trade_no.as_str(), paid.total), ("T1", 101));
        assert_eq!(paid.notification["transaction_id"], "4200001");
        assert_eq!(read(&v2_body("101", "10000100", true)).unwrap_err().status, 400, "tampered");
        let other = read(&v2_body("101", "10000999", false)).unwrap_err();
        assert!(other.message.contains("mch_id"), "{other:?}");
        assert_eq!(read(&v2_body("1x", "10000100", false)).unwrap_err().message, "total_fee is not an integer");
        assert_eq!(read("<xml><a>").unwrap_err().status, 400);
    }

    fn v3_event(
        private: &str,
        plain: &serde_json::Value,
        event_type: &str,
        at: i64,
    ) -> (String, Vec<(String, String)>) {
        let resource =
            Resource::seal(V3_KEY.as_bytes(), "nonce1234567", "transaction", plain.to_string().as_bytes(), "t")
                .unwrap();
        let body = json!({"id": "EV-1", "event_type": event_type, "resource": resource}).to_string();
        let sig =
            ResponseSignature::sign(&SigningKey::from_pem(private).unwrap(), "PUB_KEY_ID_1", &body, at, "n1").unwrap();
        (body, sig.headers().into_iter().map(|(n, v)| (n.to_string(), v)).collect())
    }

    #[test]
    fn v3_callbacks_are_read_only_when_signed_fresh_and_for_the_account() {
        let (pay, private) = v3_pay();
        let keys = pay.v3_keys().unwrap();
        let read = |(body, headers): &(String, Vec<(String, String)>)| {
            let lookup = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
            read_v3(keys, "wxd930ea5d5a258f4f", "10000100", lookup, body, NOW)
        };
        let paid = json!({"mchid": "10000100", "appid": "wxd930ea5d5a258f4f", "out_trade_no": "T1",
            "transaction_id": "4200001", "trade_state": "SUCCESS", "amount": {"total": 101}});
        let Ok(Notice::Payment(Some(p))) = read(&v3_event(&private, &paid, "TRANSACTION.SUCCESS", NOW)) else {
            panic!()
        };
        assert_eq!((p.total, &p.notification["resource"]["out_trade_no"]), (101, &json!("T1")));
        let stale = read(&v3_event(&private, &paid, "TRANSACTION.SUCCESS", NOW - 301)).unwrap_err();
        assert_eq!(stale.status, 401, "{stale:?}");
        let (body, headers) = v3_event(&private, &paid, "TRANSACTION.SUCCESS", NOW);
        let forged = read(&(body.replace("EV-1", "EV-2"), headers)).unwrap_err();
        assert_eq!(forged.status, 401, "{forged:?}");
        let other_mch = json!({"mchid": "10000999", "appid": "wxd930ea5d5a258f4f"});
        let refused = read(&v3_event(&private, &other_mch, "TRANSACTION.SUCCESS", NOW)).unwrap_err();
        assert!(refused.message.contains("mchid"), "{refused:?}");
        let refund = json!({"mchid": "10000100", "out_trade_no": "T1", "out_refund_no": "R1", "refund_id": "5001",
            "refund_status": "SUCCESS", "amount": {"refund": 50}});
        let Ok(Notice::Refund(r)) = read(&v3_event(&private, &refund, "REFUND.SUCCESS", NOW)) else { panic!() };
        assert_eq!((r.refund_fee, r.status.as_deref()), (50, Some("SUCCESS")));
    }
}
