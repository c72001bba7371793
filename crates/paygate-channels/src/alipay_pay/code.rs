//! The cashier's scanned Alipay payment codes: `alipay.trade.pay` (scene bar_code), the trade query that
//! resolves one still in progress, and `alipay.trade.cancel` for one still unresolved past the wait (Alipay's
//! pattern for code payments: query, then cancel). Only a signed Alipay answer says a code payment was paid.

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

/// What `alipay.trade.cancel` (撤销) did to a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canceled {
    /// Closed at Alipay with no money taken: it was unpaid, or Alipay never had it.
    Closed,
    /// It had been paid meanwhile: Alipay refunded it in full and closed it (`action` refund).
    Refunded,
    /// Not done yet (no answer, 20000, ACQ.SYSTEM_ERROR, `retry_flag` Y): query, then cancel again.
    Retry { why: String },
}

impl AlipayPay {
    /// Cancels a code payment whose outcome is still unknown: Alipay closes it if unpaid, refunds it in full if
    /// paid. A definite refusal (a finished trade) is an error.
    pub async fn cancel_code(&self, charge: &Charge) -> Result<Canceled, Problem> {
        let biz = json!({"out_trade_no": charge.channel_order_no});
        let response = match self.call("alipay.trade.cancel", &biz).await {
            Ok(response) => response,
            Err(problem) if problem.code == "channel_unavailable" => {
                return Ok(Canceled::Retry { why: problem.message });
            }
            Err(problem) => return Err(problem),
        };
        if response.get("retry_flag") == Some("Y") || super::royalty::uncertain(&response) {
            return Ok(Canceled::Retry { why: format!("Alipay asks to cancel again ({})", response.code) });
        }
        if !response.is_success() {
            if response.sub_code.as_deref() == Some("ACQ.TRADE_NOT_EXIST") {
                return Ok(Canceled::Closed);
            }
            let (code, message) = refusal(&response);
            return Err(super::channel_problem("channel_refused", format!("Alipay refused: {message} ({code})")));
        }
        Ok(if response.get("action") == Some("refund") { Canceled::Refunded } else { Canceled::Closed })
    }
}

fn paid(response: &Response) -> Option<CodePaid> {
    let trade_no = response.get("trade_no").filter(|s| !s.is_empty())?.to_string();
    let total = parse_yuan(response.get("total_amount")?).ok()?;
    Some(CodePaid::Paid { trade_no, total, answer: Value::Object(response.fields.clone()) })
}
