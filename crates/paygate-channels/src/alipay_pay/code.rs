//! The cashier's scanned Alipay payment codes: `alipay.trade.pay` (scene bar_code), and the trade query that
//! resolves one still in progress. Only a signed Alipay answer says a code payment was paid.

use super::{refusal, AlipayPay};
use crate::alipay::{format_yuan, parse_yuan, Response};
use paygate_domain::{Charge, Problem};
use serde_json::{json, Value};

/// Alipay's "order success pay inprocess": the payer is confirming on the phone (WAIT_BUYER_PAY).
const CODE_IN_PROCESS: &str = "10003";

/// What a code payment (or the query of one) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodePaid {
    /// Paid: Alipay's trade number and the amount it says was paid (fen), and its answer node as sent.
    Paid { trade_no: String, total: i64, answer: Value },
    /// Not final (the payer confirms, or the outcome is unknown): asked again later.
    Pending { why: String },
    /// Refused or closed: the payment failed.
    Refused { code: String, message: String },
}

impl AlipayPay {
    /// Charges a scanned payment code. No answer (or 20000) is `Pending`: the payment may have gone through.
    pub async fn pay_code(&self, charge: &Charge, auth_code: &str) -> Result<CodePaid, Problem> {
        let subject =
            if charge.subject.is_empty() { charge.channel_order_no.as_str() } else { charge.subject.as_str() };
        let biz = json!({
            "out_trade_no": charge.channel_order_no,
            "scene": "bar_code",
            "auth_code": auth_code,
            "subject": subject,
            "total_amount": format_yuan(charge.amount.fen()),
        });
        let response = match self.call("alipay.trade.pay", &biz).await {
            Ok(response) => response,
            Err(problem) if problem.code == "channel_unavailable" => {
                return Ok(CodePaid::Pending { why: problem.message });
            }
            Err(problem) => return Err(problem),
        };
        if response.is_success() {
            return Ok(paid(&response).unwrap_or_else(|| CodePaid::Pending { why: "paid without a trade_no".into() }));
        }
        if response.code == CODE_IN_PROCESS {
            return Ok(CodePaid::Pending { why: "the payer is confirming (10003)".into() });
        }
        if response.code == crate::alipay::CODE_BUSINESS_FAILED {
            let (code, message) = refusal(&response);
            return Ok(CodePaid::Refused { code, message });
        }
        Ok(CodePaid::Pending { why: format!("Alipay answered {}", response.code) })
    }

    /// Where a code payment (or any other trade: the poller asks this too) stands (`alipay.trade.query`). A trade
    /// Alipay does not know yet (a QR code not scanned) is pending.
    pub async fn query_code(&self, charge: &Charge) -> Result<CodePaid, Problem> {
        let response = self.call("alipay.trade.query", &json!({"out_trade_no": charge.channel_order_no})).await?;
        if !response.is_success() {
            let why = format!("query answered {}", response.sub_code.as_deref().unwrap_or(&response.code));
            return Ok(CodePaid::Pending { why });
        }
        Ok(match response.get("trade_status").unwrap_or("") {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                paid(&response).unwrap_or_else(|| CodePaid::Pending { why: "paid without a trade_no".into() })
            }
            "TRADE_CLOSED" => {
                CodePaid::Refused { code: "alipay_trade_closed".into(), message: "Alipay closed the trade.".into() }
            }
            other => CodePaid::Pending { why: format!("trade_status {other}") },
        })
    }
}

fn paid(response: &Response) -> Option<CodePaid> {
    let trade_no = response.get("trade_no").filter(|s| !s.is_empty())?.to_string();
    let total = parse_yuan(response.get("total_amount")?).ok()?;
    Some(CodePaid::Paid { trade_no, total, answer: Value::Object(response.fields.clone()) })
}
