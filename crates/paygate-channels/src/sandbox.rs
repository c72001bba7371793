//! The sandbox: test mode's channel for every Ping++ channel name. A payment completes when
//! someone presses pay/fail on its page or calls `POST /v1/sandbox/charges/{id}/pay`.
//! Refunds, profit shares and their returns succeed at once. For WeChat channel names it keeps
//! the payment notification WeChat Pay v2 would send, signed with the app's sandbox key.

use crate::wechat;
use crate::{Channel, PaymentRequest, PaymentState, RefundResult, ShareResult};
use async_trait::async_trait;
use paygate_domain::shares::{is_wechat_channel, ProfitShare};
use paygate_domain::{Amount, Charge, Problem, Refund};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub struct Sandbox;

/// What the sandbox channel does with a scanned-code payment (`extra.sandbox_outcome`), as a
/// real channel keeps its own state: `paid` at once, `declined`, `held` (the payer enters a
/// password; paid [`HOLD_SECONDS`] later), or `abandoned` (never paid). A query answers from it,
/// so a payment whose result was not recorded (a crash) is found again by asking.
pub const HOLD_SECONDS: i64 = 5;

/// The WeChat identity the sandbox gives an app: stable, derived from the app id, test-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxWechat {
    pub appid: String,
    pub mch_id: String,
    /// The v2 signing key of the sandbox merchant (documented: test mode only).
    pub key: String,
}

impl SandboxWechat {
    pub fn of(app_id: &str) -> SandboxWechat {
        let digest = Sha256::digest(format!("paygate-sandbox-wechat:{app_id}").as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let digits: String = digest.iter().take(9).map(|b| char::from(b'0' + b % 10)).collect();
        SandboxWechat { appid: format!("wx{}", &hex[..16]), mch_id: format!("1{digits}"), key: hex[32..64].to_string() }
    }
}

impl Sandbox {
    pub fn pay_page_url(base_url: &str, charge_id: &str) -> String {
        format!("{base_url}/sandbox/charges/{charge_id}")
    }

    /// A short number derived from `seed`: stable for the same input, digits only.
    fn digits(seed: &str, n: usize) -> String {
        Sha256::digest(seed.as_bytes()).iter().cycle().take(n).map(|b| char::from(b'0' + b % 10)).collect()
    }
}

#[async_trait]
impl Channel for Sandbox {
    async fn open(&self, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
        if !(request.extra.is_object() || request.extra.is_null()) {
            return Err(Problem::invalid("extra", "extra must be an object."));
        }
        let url = Sandbox::pay_page_url(request.base_url, request.charge_id);
        let mut credential = serde_json::Map::new();
        credential.insert("object".into(), json!("credential"));
        credential.insert(request.channel.to_string(), json!(url));
        Ok(Value::Object(credential))
    }

    async fn close(&self, _charge: &Charge) -> Result<(), Problem> {
        Ok(())
    }

    async fn refund(&self, _charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        Ok(RefundResult::Succeeded { transaction_no: Some(format!("sandbox_{}", refund.refund_no)) })
    }

    async fn share(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
        let prefix = if is_wechat_channel(&charge.channel) { "3008450740201" } else { "2020" };
        Ok(ShareResult::Succeeded { channel_order_no: format!("{prefix}{}", Sandbox::digits(&share.id, 15)) })
    }

    async fn finish_sharing(&self, _charge: &Charge) -> Result<(), Problem> {
        Ok(())
    }

    async fn return_share(&self, _charge: &Charge, _share: &ProfitShare, _amount: Amount) -> Result<bool, Problem> {
        Ok(true)
    }

    async fn query(&self, charge: &Charge, now: i64) -> Result<PaymentState, Problem> {
        Ok(match charge.extra.get("sandbox_outcome").and_then(Value::as_str) {
            Some("paid") => PaymentState::Paid,
            Some("held") if now >= charge.created + HOLD_SECONDS => PaymentState::Paid,
            Some("declined") => PaymentState::Failed {
                code: "sandbox_declined".into(),
                message: "The payer's code was declined in the sandbox.".into(),
            },
            _ => PaymentState::Pending,
        })
    }

    fn payment_notification(&self, charge: &Charge, transaction_no: &str, time_paid: i64) -> Option<Value> {
        if !is_wechat_channel(&charge.channel) {
            return None;
        }
        let id = SandboxWechat::of(&charge.app_id);
        let fen = charge.amount.fen().to_string();
        let mut fields = Map::new();
        for (k, v) in [
            ("appid", id.appid.as_str()),
            ("bank_type", "OTHERS"),
            ("cash_fee", &fen),
            ("fee_type", "CNY"),
            ("is_subscribe", "N"),
            ("mch_id", &id.mch_id),
            ("nonce_str", &charge.id[3..]),
            ("openid", &format!("o{}", &Sandbox::digits(&charge.order_id, 27))),
            ("out_trade_no", &charge.channel_order_no),
            ("result_code", "SUCCESS"),
            ("return_code", "SUCCESS"),
            ("time_end", &wechat::beijing_time(time_paid)),
            ("total_fee", &fen),
            ("trade_type", wechat::trade_type(&charge.channel)),
            ("transaction_id", transaction_no),
        ] {
            fields.insert(k.to_string(), json!(v));
        }
        let sign = wechat::sign_v2(&fields, &id.key);
        fields.insert("sign".into(), json!(sign));
        Some(Value::Object(fields))
    }
}
