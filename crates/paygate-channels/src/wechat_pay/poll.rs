//! What the poller and forced syncs ask WeChat Pay: where a payment stands (with what a notification would have
//! said: transaction id, total, the answer's fields) and where a refund stands. Only signed answers are believed
//! (`v2::call`, `v3::call`); a failed call is an error that leaves everything as it was.

use super::{channel_problem, v2, v3, Protocol, WechatPay};
use crate::wechat::v2::Fields;
use paygate_domain::{Charge, Problem, Refund};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

/// A payment as WeChat reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct TradeQueried {
    /// `trade_state`: SUCCESS, REFUND, NOTPAY, USERPAYING, CLOSED, REVOKED, PAYERROR (v3 adds ACCEPT).
    pub state: String,
    pub transaction_id: Option<String>,
    /// `total_fee` (v2) / `amount.total` (v3), in fen.
    pub total: Option<i64>,
    /// The answer as kept with a charge that it settles (v2: its fields in order; v3: the JSON).
    pub answer: Value,
}

/// A refund as WeChat reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQueried {
    /// v2 `refund_status_$n` (SUCCESS, REFUNDCLOSE, PROCESSING, CHANGE) / v3 `status` (… CLOSED, ABNORMAL).
    pub status: String,
    pub refund_fee: i64,
    pub refund_id: Option<String>,
}

impl WechatPay {
    /// `/pay/orderquery` / `GET /v3/pay/transactions/out-trade-no/{no}` by the charge's out_trade_no.
    pub async fn query_trade(&self, charge: &Charge) -> Result<TradeQueried, Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let fields: Fields = [("out_trade_no", charge.channel_order_no.as_str())].into_iter().collect();
                let got = match v2::call(self, key.expose_secret(), "/pay/orderquery", fields).await? {
                    v2::Called::Ok(got) => got,
                    v2::Called::Refused { code, message } => return Err(v2::refused("orderquery", &code, &message)),
                };
                same_trade("orderquery", got.get("out_trade_no"), &charge.channel_order_no)?;
                same_trade("orderquery", got.get("mch_id"), &self.config.mch_id)?;
                let state = got.require("trade_state").map_err(Problem::from)?.to_string();
                let total = got.non_empty("total_fee").map(parse_fen).transpose()?;
                let answer = Value::Object(got.iter().map(|(k, v)| (k.to_string(), Value::String(v.into()))).collect());
                Ok(TradeQueried {
                    state,
                    transaction_id: got.non_empty("transaction_id").map(str::to_string),
                    total,
                    answer,
                })
            }
            Protocol::V3(keys) => {
                let path = format!(
                    "/v3/pay/transactions/out-trade-no/{}?mchid={}",
                    charge.channel_order_no, self.config.mch_id
                );
                let (status, got) = v3::call(self, keys, "GET", &path, None).await?;
                if status != 200 {
                    return Err(v3::declined(&path, status, &got));
                }
                let text = |name: &str| got.get(name).and_then(Value::as_str);
                same_trade(&path, text("out_trade_no"), &charge.channel_order_no)?;
                same_trade(&path, text("mchid"), &self.config.mch_id)?;
                let state = v3::text_at(&got, "trade_state", &path)?.to_string();
                let transaction_id =
                    got.get("transaction_id").and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_string);
                let total = got.pointer("/amount/total").and_then(Value::as_i64);
                let mut kept = Map::new();
                kept.insert("source".into(), Value::String("query".into()));
                kept.insert("resource".into(), got);
                Ok(TradeQueried { state, transaction_id, total, answer: Value::Object(kept) })
            }
        }
    }

    /// `/pay/refundquery` / `GET /v3/refund/domestic/refunds/{out_refund_no}` by the refund's number.
    pub async fn query_refund(&self, refund: &Refund) -> Result<RefundQueried, Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let fields: Fields = [("out_refund_no", refund.refund_no.as_str())].into_iter().collect();
                let got = match v2::call(self, key.expose_secret(), "/pay/refundquery", fields).await? {
                    v2::Called::Ok(got) => got,
                    v2::Called::Refused { code, message } => return Err(v2::refused("refundquery", &code, &message)),
                };
                // The refunds are numbered from 0; ours is the one that names our out_refund_no.
                let count = got.non_empty("refund_count").map(parse_fen).transpose()?.unwrap_or(0).clamp(0, 50);
                let at = (0..count)
                    .find(|i| got.get(&format!("out_refund_no_{i}")) == Some(refund.refund_no.as_str()))
                    .ok_or_else(|| {
                        channel_problem("channel_bad_answer", "WeChat Pay's refundquery answer omits the refund")
                    })?;
                let need = |name: String| {
                    got.non_empty(&name).map(str::to_string).ok_or_else(|| {
                        channel_problem("channel_bad_answer", format!("WeChat Pay's refundquery answer has no {name}"))
                    })
                };
                Ok(RefundQueried {
                    status: need(format!("refund_status_{at}"))?,
                    refund_fee: parse_fen(&need(format!("refund_fee_{at}"))?)?,
                    refund_id: got.non_empty(&format!("refund_id_{at}")).map(str::to_string),
                })
            }
            Protocol::V3(keys) => {
                let path = format!("/v3/refund/domestic/refunds/{}", refund.refund_no);
                let (status, got) = v3::call(self, keys, "GET", &path, None).await?;
                if status != 200 {
                    return Err(v3::declined(&path, status, &got));
                }
                same_trade(&path, got.get("out_refund_no").and_then(Value::as_str), &refund.refund_no)?;
                let refund_fee = got.pointer("/amount/refund").and_then(Value::as_i64).ok_or_else(|| {
                    channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} has no amount.refund"))
                })?;
                Ok(RefundQueried {
                    status: v3::text_at(&got, "status", &path)?.to_string(),
                    refund_fee,
                    refund_id: got.get("refund_id").and_then(Value::as_str).map(str::to_string),
                })
            }
        }
    }
}

/// A signed answer naming another order, refund or merchant than the one asked about is not about this one (a
/// v2 signature has no timestamp: an old answer about another trade would verify), so it is not believed.
fn same_trade(what: &str, answered: Option<&str>, asked: &str) -> Result<(), Problem> {
    match answered.filter(|a| !a.is_empty()) {
        Some(a) if a != asked => Err(channel_problem(
            "channel_bad_answer",
            format!("WeChat Pay's answer to {what} names '{a}', not '{asked}': not believed"),
        )),
        _ => Ok(()),
    }
}

fn parse_fen(text: &str) -> Result<i64, Problem> {
    text.parse::<i64>().map_err(|_| {
        channel_problem("channel_bad_answer", format!("WeChat Pay answered a non-integer amount '{text}'"))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_about_another_trade_are_not_believed() {
        assert!(super::same_trade("orderquery", Some("A1"), "A1").is_ok());
        assert!(
            super::same_trade("orderquery", None, "A1").is_ok(),
            "an answer that names nothing is checked elsewhere"
        );
        let err = super::same_trade("orderquery", Some("B2"), "A1").unwrap_err();
        assert_eq!(err.code, "channel_bad_answer");
        assert!(err.message.contains("B2") && err.message.contains("A1"), "{}", err.message);
    }
}
