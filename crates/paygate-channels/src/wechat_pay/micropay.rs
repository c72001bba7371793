//! Payment codes (付款码, MICROPAY): the cashier scans the payer's code and WeChat Pay charges it at once. API v2
//! `/pay/micropay` only: WeChat's API v3 has no payment-code payment for direct merchants, and the simulator
//! serves none. SUCCESS is paid (signed answer, amount checked by the core); USERPAYING, SYSTEMERROR, BANKERROR or
//! no answer at all leave the payment pending for the poller to ask about (`/pay/orderquery`); anything else is
//! a refusal (an invalid or expired code, not enough balance …).

use super::{channel_problem, client_ip, poll::TradeQueried, v2, Protocol, WechatPay};
use crate::wechat::v2::Fields;
use paygate_domain::{Charge, Problem};
use secrecy::ExposeSecret;
use serde_json::Value;

/// What a payment-code payment ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Micropaid {
    Paid(TradeQueried),
    /// Not known yet (the payer is entering a password, or WeChat could not say): ask again later.
    Pending {
        why: String,
    },
    Refused {
        code: String,
        message: String,
    },
}

impl WechatPay {
    /// Charges the payer's `auth_code` for `charge` (its out_trade_no, amount and subject).
    pub async fn micropay(&self, charge: &Charge, auth_code: &str) -> Result<Micropaid, Problem> {
        let Protocol::V2 { key } = &self.config.protocol else {
            return Err(channel_problem(
                "channel_unsupported",
                "Payment codes need a WeChat Pay API v2 account (WeChat's API v3 has no MICROPAY).",
            ));
        };
        let subject = if charge.subject.is_empty() { &charge.body } else { &charge.subject };
        let mut fields = Fields::new();
        fields
            .set("body", subject.chars().take(40).collect::<String>())
            .set("out_trade_no", charge.channel_order_no.as_str())
            .set("total_fee", charge.amount.fen().to_string())
            .set("spbill_create_ip", client_ip(&charge.client_ip))
            .set("auth_code", auth_code)
            .set("attach", charge.id.as_str());
        match v2::call(self, key.expose_secret(), "/pay/micropay", fields).await {
            Ok(v2::Called::Ok(got)) => {
                let total = got.non_empty("total_fee").and_then(|t| t.parse::<i64>().ok());
                let mut answer: serde_json::Map<String, Value> =
                    got.iter().map(|(k, v)| (k.to_string(), Value::String(v.into()))).collect();
                answer.insert("trade_state".into(), Value::String("SUCCESS".into()));
                Ok(Micropaid::Paid(TradeQueried {
                    state: "SUCCESS".into(),
                    transaction_id: got.non_empty("transaction_id").map(str::to_string),
                    total,
                    answer: Value::Object(answer),
                }))
            }
            Ok(v2::Called::Refused { code, message }) => {
                Ok(if matches!(code.as_str(), "USERPAYING" | "SYSTEMERROR" | "BANKERROR") {
                    Micropaid::Pending { why: code }
                } else {
                    Micropaid::Refused { code, message }
                })
            }
            // Refused before reaching WeChat (the address guard): nothing happened there.
            Err(problem) if problem.code == "channel_target_refused" => Err(problem),
            // No answer, a 5xx, an answer not to be believed: WeChat may have charged the code; ask, never guess.
            Err(problem) => Ok(Micropaid::Pending { why: problem.message }),
        }
    }
}
