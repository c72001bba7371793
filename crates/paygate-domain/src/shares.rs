//! Profit sharing (分账): part of what an order was paid goes to receivers. The rules are seed
//! 003's (WeChat direct-merchant sharing, Alipay merchant sharing); the decisions are made here,
//! against the order as it is under the row lock / single writer, and applied by storage with a
//! conditional update that re-checks the same bound.

use crate::{Amount, Order, OrderStatus, Problem, ProblemKind};
use serde::Serialize;
use serde_json::Value;

/// The default upper bound of what may be shared: 30 % (WeChat's default maximum ratio).
pub const DEFAULT_MAX_SHARE_BPS: i64 = 3000;
/// WeChat's and Alipay's limit of receivers in one request.
pub const MAX_RECEIVERS: usize = 50;

/// Rendered as its snake_case name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShareKind {
    /// WeChat 单次分账: shares and ends sharing; the rest of the frozen funds is released.
    WechatSingle,
    /// WeChat 多次分账: more requests may follow, then an explicit finish.
    WechatMulti,
    /// Alipay 商家分账.
    Alipay,
}

impl ShareKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareKind::WechatSingle => "wechat_single",
            ShareKind::WechatMulti => "wechat_multi",
            ShareKind::Alipay => "alipay",
        }
    }
    pub fn parse(param: &str, s: &str) -> Result<ShareKind, Problem> {
        match s {
            "wechat_single" => Ok(ShareKind::WechatSingle),
            "wechat_multi" => Ok(ShareKind::WechatMulti),
            "alipay" => Ok(ShareKind::Alipay),
            other => Err(Problem::invalid(
                param,
                format!("{param} must be 'wechat_single', 'wechat_multi' or 'alipay', got '{other}'."),
            )),
        }
    }
    fn is_wechat(self) -> bool {
        self != ShareKind::Alipay
    }
    fn channel_name(self) -> &'static str {
        if self.is_wechat() {
            "WeChat Pay"
        } else {
            "Alipay"
        }
    }
}

/// Whether a Ping++ channel name pays through WeChat or Alipay.
pub fn is_wechat_channel(channel: &str) -> bool {
    channel.starts_with("wx") || channel.starts_with("cb_wx")
}
pub fn is_alipay_channel(channel: &str) -> bool {
    channel.starts_with("alipay") || channel == "cb_alipay"
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    pub kind: String,
    pub account: String,
    pub amount: Amount,
    pub description: String,
}

impl Receiver {
    /// As objects show it and storage keeps it.
    pub fn to_object(&self) -> ReceiverObject {
        ReceiverObject {
            kind: self.kind.clone(),
            account: self.account.clone(),
            amount: self.amount.fen(),
            description: self.description.clone(),
        }
    }

    pub fn to_json(&self) -> Value {
        crate::objects::to_value(&self.to_object())
    }
}

/// Validates a request's receivers (already parsed from JSON) for `kind`, naming the field of
/// the first bad one (`receivers[2].type`).
pub fn receivers(kind: ShareKind, value: &Value) -> Result<Vec<Receiver>, Problem> {
    let list = value.as_array().ok_or_else(|| {
        Problem::invalid("receivers", "receivers must be a non-empty array of {type, account, amount, description}.")
    })?;
    if list.is_empty() {
        return Err(Problem::invalid("receivers", "receivers must name at least one receiver."));
    }
    if list.len() > MAX_RECEIVERS {
        return Err(Problem::invalid(
            "receivers",
            format!("At most {MAX_RECEIVERS} receivers per request, got {}.", list.len()),
        ));
    }
    let mut out: Vec<Receiver> = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let field = |name: &str| format!("receivers[{i}].{name}");
        let text = |name: &str, max: usize| -> Result<String, Problem> {
            match r.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => crate::validate::text(&field(name), s.trim(), max),
                Some(Value::String(_)) | None | Some(Value::Null) => Err(Problem::missing(&field(name))),
                Some(_) => Err(Problem::invalid(&field(name), format!("{} must be a string.", field(name)))),
            }
        };
        let kind_text = text("type", 32)?;
        check_receiver_type(kind, &kind_text, &field("type"))?;
        let account = text("account", 64)?;
        let amount = match r.get("amount") {
            Some(Value::Number(n)) if n.is_i64() => Amount::positive(&field("amount"), n.as_i64().unwrap_or(0))?,
            Some(Value::Number(_)) => {
                return Err(Problem::invalid(
                    &field("amount"),
                    format!("{} is in fen and must be a positive integer.", field("amount")),
                ))
            }
            None | Some(Value::Null) => return Err(Problem::missing(&field("amount"))),
            Some(_) => {
                return Err(Problem::invalid(
                    &field("amount"),
                    format!("{} must be an integer number of fen.", field("amount")),
                ))
            }
        };
        let description = text("description", 80)?;
        if out.iter().any(|o| o.kind == kind_text && o.account == account) {
            return Err(Problem::invalid(
                &field("account"),
                format!("Receiver {kind_text} {account} appears twice in one request."),
            ));
        }
        out.push(Receiver { kind: kind_text, account, amount, description });
    }
    Ok(out)
}

fn check_receiver_type(kind: ShareKind, t: &str, param: &str) -> Result<(), Problem> {
    let allowed: &[&str] =
        if kind.is_wechat() { &["MERCHANT_ID", "PERSONAL_OPENID"] } else { &["userId", "loginName"] };
    if kind.is_wechat() && t == "PERSONAL_WECHATID" {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "receiver_type_deprecated",
            format!(
                "{param} 'PERSONAL_WECHATID' is deprecated: WeChat no longer shares to personal WeChat ids; \
                 use PERSONAL_OPENID or MERCHANT_ID."
            ),
        )
        .with_param(param));
    }
    if !allowed.contains(&t) {
        return Err(Problem::invalid(
            param,
            format!("{param} for {} sharing must be one of {}, got '{t}'.", kind.channel_name(), allowed.join(", ")),
        ));
    }
    Ok(())
}

pub fn total(receivers: &[Receiver]) -> Result<Amount, Problem> {
    receivers
        .iter()
        .try_fold(Amount::ZERO, |sum, r| sum.checked_add(r.amount))
        .ok_or_else(|| Problem::invalid("receivers", "The receivers' amounts add up to more than any order can hold."))
}

/// The most that may be shared of `order` in all, at `max_bps` of what was paid minus refunds.
pub fn share_limit(order: &Order, max_bps: i64) -> Amount {
    let base = order.refundable().fen() as i128;
    Amount::from_stored((base * max_bps as i128 / 10_000) as i64)
}

/// Whether `order`, paid through `channel`, may share `amount` more now. Storage applies the
/// answer with `RESERVE_SHARE`, which re-checks the same bound in SQL.
pub fn plan_share(
    order: &Order,
    channel: Option<&str>,
    kind: ShareKind,
    amount: Amount,
    max_bps: i64,
) -> Result<(), Problem> {
    let refuse = |code: &'static str, msg: String| Err(Problem::new(ProblemKind::InvalidRequest, code, msg));
    if !matches!(order.status, OrderStatus::Paid | OrderStatus::Refunded) {
        return refuse(
            "order_not_paid",
            format!("Order {} is {}; only a paid order can be shared.", order.id, order.status.as_str()),
        );
    }
    let channel = channel.unwrap_or("");
    let matches_channel = if kind.is_wechat() { is_wechat_channel(channel) } else { is_alipay_channel(channel) };
    if !matches_channel {
        return refuse(
            "share_channel_mismatch",
            format!(
                "Order {} was paid through '{channel}'; {} profit sharing needs an order paid through {}.",
                order.id,
                kind.as_str(),
                kind.channel_name()
            ),
        );
    }
    if kind.is_wechat() && !order.profit_sharing {
        return refuse(
            "profit_sharing_not_enabled",
            format!("Order {} was not created with profit_sharing: true, so WeChat froze no funds to share.", order.id),
        );
    }
    if order.sharing_finished {
        return refuse(
            "sharing_finished",
            format!("Profit sharing of order {} is finished; no more shares can be made.", order.id),
        );
    }
    let limit = share_limit(order, max_bps);
    let after = order.share_reserved.fen() + amount.fen();
    if after > limit.fen() {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "share_exceeds_limit",
            format!(
                "Sharing {} fen would bring order {} to {} fen shared; at most {} fen may be shared \
                 ({}% of the {} fen paid and not refunded).",
                amount.fen(),
                order.id,
                after,
                limit.fen(),
                max_bps as f64 / 100.0,
                order.refundable().fen()
            ),
        )
        .with_param("receivers"));
    }
    Ok(())
}

/// Rendered as its snake_case name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShareStatus {
    Pending,
    Succeeded,
    Failed,
}

impl ShareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Pending => "pending",
            ShareStatus::Succeeded => "succeeded",
            ShareStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<ShareStatus> {
        Some(match s {
            "pending" => ShareStatus::Pending,
            "succeeded" => ShareStatus::Succeeded,
            "failed" => ShareStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfitShare {
    pub id: String,
    pub order_id: String,
    pub app_id: String,
    pub mode: crate::Mode,
    pub created: i64,
    pub kind: ShareKind,
    pub out_order_no: String,
    pub status: ShareStatus,
    pub amount: Amount,
    /// Pending + succeeded returns; `amount_returned` counts the succeeded ones.
    pub return_reserved: Amount,
    pub amount_returned: Amount,
    pub receivers: Vec<Receiver>,
    /// The channel's number for this share (WeChat's order_id, shown as `wechat_order_no`).
    pub channel_order_no: Option<String>,
    pub failure_msg: Option<String>,
}

/// A receiver as requests name it and profit-sharing objects show it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ShareReceiver))]
pub struct ReceiverObject {
    /// WeChat: `MERCHANT_ID` or `PERSONAL_OPENID`; Alipay: `userId` or `loginName`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32))]
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub account: String,
    /// Fen, at least 1.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub amount: i64,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 80))]
    pub description: String,
}

/// A profit share (分账) of an order.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ProfitSharing))]
pub struct ProfitSharingObject {
    #[cfg_attr(feature = "openapi", schema(pattern = "^ps_[0-9A-Za-z]{24}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "profit_sharing"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub order: String,
    #[serde(rename = "type")]
    pub kind: ShareKind,
    pub out_order_no: String,
    pub status: ShareStatus,
    pub amount: i64,
    pub amount_returned: i64,
    pub receivers: Vec<ReceiverObject>,
    pub channel_order_no: Option<String>,
    pub failure_msg: Option<String>,
}

impl ProfitShare {
    pub fn to_object(&self) -> ProfitSharingObject {
        ProfitSharingObject {
            id: self.id.clone(),
            object: "profit_sharing",
            created: self.created,
            livemode: self.mode.is_live(),
            order: self.order_id.clone(),
            kind: self.kind,
            out_order_no: self.out_order_no.clone(),
            status: self.status,
            amount: self.amount.fen(),
            amount_returned: self.amount_returned.fen(),
            receivers: self.receivers.iter().map(Receiver::to_object).collect(),
            channel_order_no: self.channel_order_no.clone(),
            failure_msg: self.failure_msg.clone(),
        }
    }

    pub fn to_json(&self) -> Value {
        crate::objects::to_value(&self.to_object())
    }
}

/// Reads receivers back from storage (they were validated on the way in).
pub fn stored_receivers(text: &str) -> Vec<Receiver> {
    let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    value
        .as_array()
        .map(|list| {
            list.iter()
                .map(|r| Receiver {
                    kind: r["type"].as_str().unwrap_or_default().to_string(),
                    account: r["account"].as_str().unwrap_or_default().to_string(),
                    amount: Amount::from_stored(r["amount"].as_i64().unwrap_or(0)),
                    description: r["description"].as_str().unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How much of a share a return request takes: all that is not yet returned by default.
pub fn plan_return(share: &ProfitShare, requested: Option<Amount>) -> Result<Amount, Problem> {
    if share.status != ShareStatus::Succeeded {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "share_not_returnable",
            format!("Profit share {} is {}; only a succeeded share can be returned.", share.id, share.status.as_str()),
        ));
    }
    let left = share.amount.checked_sub(share.return_reserved).unwrap_or(Amount::ZERO);
    match requested {
        _ if left == Amount::ZERO => Err(Problem::new(
            ProblemKind::InvalidRequest,
            "share_already_returned",
            format!("Profit share {} has been returned in full.", share.id),
        )),
        None => Ok(left),
        Some(a) if a > left => Err(Problem::invalid(
            "amount",
            format!("Return amount {} exceeds the {} fen of share {} not yet returned.", a.fen(), left.fen(), share.id),
        )),
        Some(a) => Ok(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn receiver_rules_name_their_field() {
        let ok = receivers(
            ShareKind::WechatMulti,
            &json!([{"type": "PERSONAL_OPENID", "account": "o1", "amount": 10, "description": "d"}]),
        )
        .unwrap();
        assert_eq!(ok[0].amount.fen(), 10);
        let cases = [
            (
                ShareKind::WechatSingle,
                json!([{"type": "PERSONAL_WECHATID", "account": "a", "amount": 1, "description": "d"}]),
                "receivers[0].type",
                "deprecated",
            ),
            (
                ShareKind::WechatSingle,
                json!([{"type": "userId", "account": "a", "amount": 1, "description": "d"}]),
                "receivers[0].type",
                "MERCHANT_ID",
            ),
            (
                ShareKind::Alipay,
                json!([{"type": "MERCHANT_ID", "account": "a", "amount": 1, "description": "d"}]),
                "receivers[0].type",
                "userId",
            ),
            (
                ShareKind::Alipay,
                json!([{"type": "userId", "account": "a", "amount": 1.5, "description": "d"}]),
                "receivers[0].amount",
                "integer",
            ),
            (
                ShareKind::Alipay,
                json!([{"type": "userId", "account": "a", "amount": 0, "description": "d"}]),
                "receivers[0].amount",
                "positive",
            ),
            (
                ShareKind::Alipay,
                json!([{"type": "userId", "account": "a", "amount": 1}]),
                "receivers[0].description",
                "description",
            ),
            (ShareKind::Alipay, json!([]), "receivers", "at least one"),
        ];
        for (kind, value, param, words) in cases {
            let p = receivers(kind, &value).unwrap_err();
            assert_eq!(p.param.as_deref(), Some(param), "{value}");
            assert!(p.message.contains(words), "{} lacks {words}", p.message);
        }
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"type": "userId", "account": format!("a{i}"), "amount": 1, "description": "d"}))
            .collect();
        assert!(receivers(ShareKind::Alipay, &Value::Array(many)).unwrap_err().message.contains("At most 50"));
    }
}
