//! Royalty (分账) through the profit-sharing core: the receivers are bound to the app first
//! (`alipay.trade.royalty.relation.bind`, idempotent), then `alipay.trade.order.settle` splits the paid trade
//! with the share's out_order_no as `out_request_no` (Alipay treats a retry with identical parameters as the same
//! settlement). The cap (30 % by default) is the core's rule, checked before the channel is asked.

use super::{refusal, AlipayPay};
use crate::alipay::format_yuan;
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
    let settled = pay.call("alipay.trade.order.settle", &settle).await?;
    if !settled.is_success() {
        let (code, message) = refusal(&settled);
        return Ok(ShareResult::Failed { message: format!("{message} ({code})") });
    }
    match settled.get("settle_no").filter(|s| !s.is_empty()) {
        Some(settle_no) => Ok(ShareResult::Succeeded { channel_order_no: settle_no.to_string() }),
        None => Ok(ShareResult::Failed { message: "Alipay's settle answer has no settle_no".into() }),
    }
}
