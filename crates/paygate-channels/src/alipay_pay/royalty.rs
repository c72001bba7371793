//! Royalty (分账) through the profit-sharing core: the receivers are bound to the app first
//! (`alipay.trade.royalty.relation.bind`, idempotent), then `alipay.trade.order.settle` splits the paid trade
//! with the share's out_order_no as `out_request_no` (Alipay treats a retry with identical parameters as the same
//! settlement). The cap (30 % by default) is the core's rule, checked before the channel is asked.
//!
//! A settle without an answer (no reply, 20000, ACQ.SYSTEM_ERROR) may have been carried out: the share stays
//! pending and the poller asks `alipay.trade.order.settle.query` (by out_request_no and trade_no) before anything is
//! sent again; only when Alipay says it has no such settlement is the very same settle sent again.

use super::{channel_problem, refusal, AlipayPay};
use crate::alipay::{format_yuan, parse_yuan, Response};
use crate::ShareResult;
use paygate_domain::shares::ProfitShare;
use paygate_domain::{Charge, Problem};
use serde_json::{json, Value};

/// Alipay settles at most this many receivers per synchronous request.
const RECEIVERS_MAX: usize = 5;

pub(super) async fn share(pay: &AlipayPay, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
    let Some(trade_no) = charge.transaction_no.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(ShareResult::Failed { message: "the charge has no Alipay trade_no".into() });
    };
    if share.receivers.len() > RECEIVERS_MAX {
        let message = format!("Alipay settles at most {RECEIVERS_MAX} receivers per request");
        return Ok(ShareResult::Failed { message });
    }
    let list: Vec<Value> =
        share.receivers.iter().map(|r| json!({"type": r.kind, "account": r.account, "memo": r.description})).collect();
    let bind = json!({"receiver_list": list, "out_request_no": format!("B{}", share.out_order_no)});
    let bound = pay.call("alipay.trade.royalty.relation.bind", &bind).await?;
    if !bound.is_success() {
        let (code, message) = refusal(&bound);
        return Ok(ShareResult::Failed { message: format!("binding the receivers: {message} ({code})") });
    }
    let parameters: Vec<Value> = share
        .receivers
        .iter()
        .map(|r| {
            json!({"royalty_type": "transfer", "trans_in_type": r.kind, "trans_in": r.account,
                "amount": format_yuan(r.amount.fen()), "desc": r.description})
        })
        .collect();
    let settle = json!({"out_request_no": share.out_order_no, "trade_no": trade_no, "royalty_parameters": parameters});
    let settled = match pay.call("alipay.trade.order.settle", &settle).await {
        Ok(settled) => settled,
        Err(problem) if problem.code == "channel_unavailable" => {
            tracing::warn!(share = %share.id, %problem, "Alipay settle outcome unknown; left pending");
            return Ok(ShareResult::Processing { why: problem.message });
        }
        Err(problem) => return Err(problem),
    };
    if uncertain(&settled) {
        let (code, message) = refusal(&settled);
        return Ok(ShareResult::Processing { why: format!("{message} ({code})") });
    }
    if !settled.is_success() {
        let (code, message) = refusal(&settled);
        return Ok(ShareResult::Failed { message: format!("{message} ({code})") });
    }
    match settled.get("settle_no").filter(|s| !s.is_empty()) {
        Some(settle_no) => Ok(ShareResult::Succeeded { channel_order_no: settle_no.to_string() }),
        None => Ok(ShareResult::Failed { message: "Alipay's settle answer has no settle_no".into() }),
    }
}

/// A 40004 that is not a refusal: Alipay asks for the same request again (ACQ.SYSTEM_ERROR), so it may have been
/// taken.
pub(super) fn uncertain(response: &Response) -> bool {
    response.sub_code.as_deref() == Some("ACQ.SYSTEM_ERROR")
}

/// What `alipay.trade.order.settle.query` says about a share's settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleSeen {
    /// Every receiver's part went through. `channel_order_no`: the query names no settle_no, so the
    /// out_request_no Alipay echoes is kept.
    Settled { channel_order_no: String },
    /// Alipay took the settlement and a receiver's part failed.
    Failed { message: String },
    /// Taken, not finished (PROCESSING), or the query itself had no definite answer.
    Pending,
    /// Alipay has no settlement under this out_request_no: it never arrived, and the same settle may be sent.
    Missing,
}

impl AlipayPay {
    /// Binds (`bind`) or unbinds royalty receivers — (type, account) — to the Alipay app
    /// (`alipay.trade.royalty.relation.bind` / `.unbind`). Alipay settles only to bound receivers, so an unbound
    /// one is refused by the next settle naming it. A refusal is `channel_refused`; no answer `channel_unavailable`
    /// (both idempotent at Alipay: call again).
    pub async fn royalty_relation(
        &self,
        bind: bool,
        receivers: &[(&str, &str)],
        out_request_no: &str,
    ) -> Result<(), Problem> {
        let list: Vec<Value> =
            receivers.iter().map(|(kind, account)| json!({"type": kind, "account": account})).collect();
        let method = if bind { "alipay.trade.royalty.relation.bind" } else { "alipay.trade.royalty.relation.unbind" };
        let answer = self.call(method, &json!({"receiver_list": list, "out_request_no": out_request_no})).await?;
        if !answer.is_success() {
            let (code, message) = refusal(&answer);
            return Err(channel_problem("channel_refused", format!("Alipay refused {method}: {message} ({code})")));
        }
        Ok(())
    }

    /// Where a pending share's settlement stands at Alipay. No answer is an error: nothing is decided on it.
    pub async fn settle_status(&self, charge: &Charge, share: &ProfitShare) -> Result<SettleSeen, Problem> {
        let Some(trade_no) = charge.transaction_no.as_deref().filter(|t| !t.is_empty()) else {
            return Ok(SettleSeen::Missing);
        };
        let biz = json!({"out_request_no": share.out_order_no, "trade_no": trade_no});
        let answer = self.call("alipay.trade.order.settle.query", &biz).await?;
        if !answer.is_success() {
            return Ok(if uncertain(&answer) { SettleSeen::Pending } else { SettleSeen::Missing });
        }
        settle_seen(&answer, share)
    }

    /// Sends the share's settlement again, unchanged (same out_request_no and receivers: the same settlement at
    /// Alipay). Only after [`AlipayPay::settle_status`] said `Missing`.
    pub async fn settle_again(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
        self::share(self, charge, share).await
    }
}

/// The settle query's details: any FAIL fails the share, all SUCCESS with the share's amount settles it.
pub(super) fn settle_seen(answer: &Response, share: &ProfitShare) -> Result<SettleSeen, Problem> {
    let details = answer.fields.get("royalty_detail_list").and_then(Value::as_array).cloned().unwrap_or_default();
    if details.is_empty() {
        return Ok(SettleSeen::Missing);
    }
    let field = |d: &Value, name: &str| d.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(failed) = details.iter().find(|d| field(d, "state") == "FAIL") {
        let why = [field(failed, "error_desc"), field(failed, "error_code")].join(" ");
        let message = format!("Alipay failed the settlement to {}: {}", field(failed, "trans_in"), why.trim());
        return Ok(SettleSeen::Failed { message });
    }
    if !details.iter().all(|d| field(d, "state") == "SUCCESS") {
        return Ok(SettleSeen::Pending);
    }
    let mut total: i64 = 0;
    for d in &details {
        let fen = parse_yuan(&field(d, "amount"))
            .map_err(|e| channel_problem("channel_bad_answer", format!("Alipay's settle detail amount: {e}")))?;
        total = total
            .checked_add(fen)
            .ok_or_else(|| channel_problem("channel_bad_answer", "Alipay's settle details overflow".to_string()))?;
    }
    if total != share.amount.fen() {
        return Err(channel_problem(
            "channel_bad_answer",
            format!("Alipay settled {total} fen under {}, the share is {} fen", share.out_order_no, share.amount.fen()),
        ));
    }
    let no = answer.get("out_request_no").filter(|s| !s.is_empty()).unwrap_or(&share.out_order_no);
    Ok(SettleSeen::Settled { channel_order_no: no.to_string() })
}
