//! The trade calls: open (precreate / wap / page / app), close, refund (+ refund query), query.

use super::{channel_problem, refusal, AlipayPay};
use crate::alipay::{self, format_yuan, parse_yuan, Response};
use crate::{PaymentRequest, PaymentState, RefundResult};
use paygate_domain::{Charge, Problem, Refund};
use serde_json::{json, Map, Value};

/// Alipay's limit on `subject` (characters).
const SUBJECT_MAX: usize = 256;

/// Opens the payment: alipay_qr asks Alipay (precreate); the others are signed for the payer's client to submit.
pub(super) async fn open(pay: &AlipayPay, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
    let product = match request.channel {
        "alipay_qr" => "FACE_TO_FACE_PAYMENT",
        "alipay_wap" => "QUICK_WAP_WAY",
        "alipay_pc_direct" => "FAST_INSTANT_TRADE_PAY",
        _ => "QUICK_MSECURITY_PAY",
    };
    let subject: String = request.subject.chars().take(SUBJECT_MAX).collect();
    let mut biz = Map::new();
    biz.insert("out_trade_no".into(), json!(request.channel_order_no));
    biz.insert("total_amount".into(), json!(format_yuan(request.amount.fen())));
    biz.insert(
        "subject".into(),
        json!(if subject.is_empty() { request.channel_order_no.to_string() } else { subject }),
    );
    biz.insert("product_code".into(), json!(product));
    if !request.body.is_empty() {
        biz.insert("body".into(), json!(request.body.chars().take(SUBJECT_MAX).collect::<String>()));
    }
    let biz = Value::Object(biz);
    let notify_url = pay.config.notify_url(request.base_url);
    if request.channel == "alipay_qr" {
        let method = "alipay.trade.precreate";
        let params = pay.signed(method, &biz, &[("notify_url", notify_url.as_str())])?;
        let response = pay.call_with(method, params).await?;
        if !response.is_success() {
            let (code, message) = refusal(&response);
            return Err(channel_problem_owned(code, message));
        }
        let qr = response.get("qr_code").filter(|s| !s.is_empty()).ok_or_else(|| {
            channel_problem("channel_unavailable", "Alipay's precreate answer has no qr_code".to_string())
        })?;
        return Ok(json!({"object": "credential", "alipay_qr": qr}));
    }
    let method = match request.channel {
        "alipay_wap" => "alipay.trade.wap.pay",
        "alipay_pc_direct" => "alipay.trade.page.pay",
        _ => "alipay.trade.app.pay",
    };
    let extra = [("notify_url", notify_url.as_str()), ("return_url", return_url(request).unwrap_or(""))];
    let params = pay.signed(method, &biz, &extra)?;
    if request.channel == "alipay" {
        // The order string the Alipay app SDK submits as it is.
        return Ok(json!({"object": "credential", "alipay": {"orderInfo": alipay::encode_form(&params)}}));
    }
    // The signed gateway URL the payer's browser opens (GET; Alipay takes the same parameters as its form).
    Ok(json!({"object": "credential", (request.channel): pay.gateway_link(&params)}))
}

/// Where the payer's browser returns (Ping++ `extra.success_url`, or `extra.return_url`).
fn return_url<'a>(request: &'a PaymentRequest<'_>) -> Option<&'a str> {
    ["success_url", "return_url"].iter().find_map(|k| request.extra.get(*k).and_then(Value::as_str))
}

/// Closes an unpaid trade. A trade Alipay does not know (never scanned) has nothing to close.
pub(super) async fn close(pay: &AlipayPay, charge: &Charge) -> Result<(), Problem> {
    let response = pay.call("alipay.trade.close", &json!({"out_trade_no": charge.channel_order_no})).await?;
    if response.is_success() || response.sub_code.as_deref() == Some("ACQ.TRADE_NOT_EXIST") {
        return Ok(());
    }
    let (code, message) = refusal(&response);
    Err(channel_problem_owned(code, message))
}

/// Refunds `refund.amount` with `out_request_no` = the refund's number (the same on every retry).
pub(super) async fn refund(pay: &AlipayPay, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
    let biz = json!({
        "out_trade_no": charge.channel_order_no,
        "refund_amount": format_yuan(refund.amount.fen()),
        "out_request_no": refund.refund_no,
    });
    let response = match pay.call("alipay.trade.refund", &biz).await {
        Ok(response) => response,
        // Unknown outcome (no answer, 20000): the refund may have happened; the query or notification tells.
        Err(problem) if problem.code == "channel_unavailable" => {
            tracing::warn!(refund = %refund.id, %problem, "Alipay refund outcome unknown; left processing");
            return Ok(RefundResult::Processing);
        }
        Err(problem) => return Err(problem),
    };
    if super::royalty::uncertain(&response) {
        // ACQ.SYSTEM_ERROR: Alipay asks for the same request again; it may have been taken.
        tracing::warn!(refund = %refund.id, "Alipay answered ACQ.SYSTEM_ERROR to a refund; left processing");
        return Ok(RefundResult::Processing);
    }
    if !response.is_success() {
        let (code, message) = refusal(&response);
        return Ok(RefundResult::Failed { code, message });
    }
    let trade_no = response.get("trade_no").map(str::to_string);
    if response.get("fund_change") == Some("Y") {
        return Ok(RefundResult::Succeeded { transaction_no: trade_no });
    }
    refund_query(pay, charge, refund, trade_no).await
}

/// `alipay.trade.fastpay.refund.query`: REFUND_SUCCESS with the same amount is done; anything else is pending.
pub(super) async fn refund_query(
    pay: &AlipayPay,
    charge: &Charge,
    refund: &Refund,
    trade_no: Option<String>,
) -> Result<RefundResult, Problem> {
    let biz = json!({"out_trade_no": charge.channel_order_no, "out_request_no": refund.refund_no});
    let response = match pay.call("alipay.trade.fastpay.refund.query", &biz).await {
        Ok(response) if response.is_success() => response,
        _ => return Ok(RefundResult::Processing),
    };
    let amount = response.get("refund_amount").and_then(|a| parse_yuan(a).ok());
    if response.get("refund_status") == Some("REFUND_SUCCESS") && amount == Some(refund.amount.fen()) {
        return Ok(RefundResult::Succeeded { transaction_no: trade_no });
    }
    Ok(RefundResult::Processing)
}

/// What Alipay's refund query says about one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundSeen {
    /// Refunded with the refund's amount.
    Done { transaction_no: Option<String> },
    /// Alipay answered, and it has no refund under this out_request_no: the refund request never arrived (or was
    /// not carried out), so the same request may be sent again.
    Missing,
    /// Anything else (another amount, a status that is not a result): nothing is decided.
    Pending,
}

/// `alipay.trade.fastpay.refund.query` telling a refund Alipay has not got from one it has. Alipay answers 10000
/// without refund fields for an out_request_no it does not know; a 40004 is not that answer (the query itself
/// failed), and neither is no answer: both are `Pending`.
pub(super) async fn refund_seen(pay: &AlipayPay, charge: &Charge, refund: &Refund) -> Result<RefundSeen, Problem> {
    let biz = json!({"out_trade_no": charge.channel_order_no, "out_request_no": refund.refund_no});
    let response = match pay.call("alipay.trade.fastpay.refund.query", &biz).await {
        Ok(response) => response,
        Err(problem) if problem.code == "channel_unavailable" => return Ok(RefundSeen::Pending),
        Err(problem) => return Err(problem),
    };
    if !response.is_success() {
        return Ok(RefundSeen::Pending);
    }
    let Some(amount) = response.get("refund_amount").filter(|a| !a.is_empty()) else {
        return Ok(RefundSeen::Missing);
    };
    let status = response.get("refund_status").unwrap_or("");
    // Alipay documents an empty refund_status with refund data as a successful refund, like REFUND_SUCCESS.
    if (status.is_empty() || status == "REFUND_SUCCESS") && parse_yuan(amount).ok() == Some(refund.amount.fen()) {
        return Ok(RefundSeen::Done { transaction_no: response.get("trade_no").map(str::to_string) });
    }
    Ok(RefundSeen::Pending)
}

/// `alipay.trade.query` as paygate sees a payment: paid only with the charge's amount.
pub(super) async fn query(pay: &AlipayPay, charge: &Charge) -> Result<PaymentState, Problem> {
    let response = pay.call("alipay.trade.query", &json!({"out_trade_no": charge.channel_order_no})).await?;
    if !response.is_success() {
        if response.sub_code.as_deref() == Some("ACQ.TRADE_NOT_EXIST") {
            // Not scanned yet: Alipay learns of a precreated trade only when the buyer scans it.
            return Ok(PaymentState::Pending);
        }
        let (code, message) = refusal(&response);
        return Err(channel_problem_owned(code, message));
    }
    Ok(trade_state(&response, charge))
}

pub(crate) fn trade_state(response: &Response, charge: &Charge) -> PaymentState {
    match response.get("trade_status").unwrap_or("") {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => {
            let total = response.get("total_amount").and_then(|a| parse_yuan(a).ok());
            if total == Some(charge.amount.fen()) {
                PaymentState::Paid
            } else {
                tracing::error!(charge = %charge.id, "Alipay reports a paid trade of another amount");
                PaymentState::Failed {
                    code: "alipay_amount_mismatch".into(),
                    message: "Alipay reports the trade paid with another amount.".into(),
                }
            }
        }
        "WAIT_BUYER_PAY" => PaymentState::Pending,
        other => PaymentState::Failed {
            code: format!("alipay_{}", other.to_ascii_lowercase()),
            message: format!("Alipay reports the trade as {other}."),
        },
    }
}

fn channel_problem_owned(code: String, message: String) -> Problem {
    // Problem codes are &'static str: the sub_code goes into the message, the code names the family.
    channel_problem("channel_refused", format!("Alipay refused: {message} ({code})"))
}
