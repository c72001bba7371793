//! API v2 profit sharing (HMAC-SHA256 only; `v2_api` checks that). `receiver` / `receivers` are JSON strings
//! inside the XML, as at WeChat.

use super::sharing::{Receiver, ShareKind, ShareOrder, ShareRequest};
use super::state::BizError;
use super::v2_api::{int_field, required, Ctx};
use super::Shared;
use paygate_channels::wechat::v2::Fields;
use paygate_domain::BeijingTime;
use serde_json::{json, Value};

pub(super) const PATHS: [&str; 8] = [
    "/pay/profitsharingaddreceiver",
    "/pay/profitsharingremovereceiver",
    "/secapi/pay/profitsharing",
    "/secapi/pay/multiprofitsharing",
    "/secapi/pay/profitsharingfinish",
    "/pay/profitsharingquery",
    "/secapi/pay/profitsharingreturn",
    "/pay/profitsharingreturnquery",
];

fn json_field(fields: &Fields, name: &str) -> Result<Value, BizError> {
    serde_json::from_str(required(fields, name)?).map_err(|_| BizError::param(format!("{name}不是合法的JSON")))
}

fn text(v: &Value, name: &str) -> String {
    v.get(name).and_then(Value::as_str).unwrap_or("").to_string()
}

pub(super) fn handle(shared: &mut Shared, ctx: &Ctx<'_>, path: &str, now: i64) -> Result<Fields, BizError> {
    let f = ctx.fields;
    let mch_id = ctx.merchant.config.mch_id.clone();
    let cap = shared.settings.share_max_ratio_bps;
    match path {
        "/pay/profitsharingaddreceiver" | "/pay/profitsharingremovereceiver" => {
            let r = json_field(f, "receiver")?;
            let receiver = Receiver {
                kind: text(&r, "type"),
                account: text(&r, "account"),
                name: text(&r, "name"),
                relation_type: text(&r, "relation_type"),
            };
            if path.ends_with("addreceiver") {
                shared.sharing.add_receiver(&mch_id, receiver)?;
            } else if !shared.sharing.remove_receiver(&mch_id, &receiver.kind, &receiver.account) {
                return Err(BizError::new("RECEIVER_INVALID", 400, "RECEIVER_INVALID", "分账接收方不存在"));
            }
            Ok([("receiver", r.to_string())].into_iter().collect())
        }
        "/secapi/pay/profitsharing" | "/secapi/pay/multiprofitsharing" | "/secapi/pay/profitsharingfinish" => {
            let tx = required(f, "transaction_id")?;
            let out_order_no = required(f, "out_order_no")?;
            if out_order_no.len() > 64
                || !out_order_no.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
            {
                return Err(BizError::param("out_order_no参数格式错误"));
            }
            let (kind, lines) = if path.ends_with("finish") {
                int_field(f, "amount")?;
                (ShareKind::Finish, Vec::new())
            } else {
                let receivers = json_field(f, "receivers")?;
                let list = receivers.as_array().ok_or_else(|| BizError::param("receivers必须是JSON数组"))?;
                let mut lines = Vec::new();
                for r in list {
                    let amount = r
                        .get("amount")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| BizError::param("receivers.amount 必须是整数（分）"))?;
                    lines.push((text(r, "type"), text(r, "account"), amount, text(r, "description")));
                }
                let kind = if path.contains("multi") { ShareKind::Multi } else { ShareKind::Single };
                (kind, lines)
            };
            let order = shared.books.find(&mch_id, Some(tx), None).ok_or_else(BizError::not_found)?.clone();
            let req = ShareRequest { out_order_no: out_order_no.to_string(), kind, lines };
            let share = shared.sharing.share(&order, req, cap, now)?;
            Ok(share_fields(share))
        }
        "/pay/profitsharingquery" => {
            required(f, "transaction_id")?;
            let share = shared
                .sharing
                .find(&mch_id, required(f, "out_order_no")?)
                .ok_or_else(|| BizError::new("ORDER_NOT_EXIST", 404, "RESOURCE_NOT_EXISTS", "分账单不存在"))?;
            Ok(share_fields(share))
        }
        "/secapi/pay/profitsharingreturn" => {
            let share_ref = f.non_empty("order_id").or_else(|| f.non_empty("out_order_no"));
            let share_ref = share_ref.ok_or_else(|| BizError::param("order_id和out_order_no必须填写一个"))?;
            if f.get("return_account_type") != Some("MERCHANT_ID") {
                return Err(BizError::param("return_account_type只支持MERCHANT_ID"));
            }
            let back = shared.sharing.give_back(
                &mch_id,
                share_ref,
                required(f, "out_return_no")?,
                required(f, "return_account")?,
                int_field(f, "return_amount")?,
                f.get("description").unwrap_or(""),
                now,
            )?;
            Ok(return_fields(back))
        }
        _ => {
            let back = shared
                .sharing
                .find_return(&mch_id, required(f, "out_return_no")?)
                .ok_or_else(|| BizError::new("ORDER_NOT_EXIST", 404, "RESOURCE_NOT_EXISTS", "回退单不存在"))?;
            Ok(return_fields(back))
        }
    }
}

fn share_fields(s: &ShareOrder) -> Fields {
    let time = BeijingTime::of(s.created_at).compact();
    let receivers: Vec<Value> = s
        .lines
        .iter()
        .map(|l| {
            json!({"type": l.kind, "account": l.account, "amount": l.amount, "description": l.description,
                "result": "SUCCESS", "finish_time": time, "detail_id": l.detail_id})
        })
        .collect();
    // The simulator settles every share at once.
    let status = "FINISHED";
    [
        ("transaction_id", s.transaction_id.as_str()),
        ("out_order_no", s.out_order_no.as_str()),
        ("order_id", s.order_id.as_str()),
        ("status", status),
        ("receivers", Value::Array(receivers).to_string().as_str()),
    ]
    .into_iter()
    .collect()
}

fn return_fields(r: &super::sharing::ShareReturn) -> Fields {
    let time = BeijingTime::of(r.created_at).compact();
    let amount = r.amount.to_string();
    [
        ("order_id", r.order_id.as_str()),
        ("out_order_no", r.out_order_no.as_str()),
        ("out_return_no", r.out_return_no.as_str()),
        ("return_no", r.return_no.as_str()),
        ("return_account_type", "MERCHANT_ID"),
        ("return_account", r.return_account.as_str()),
        ("return_amount", amount.as_str()),
        ("description", r.description.as_str()),
        ("result", "SUCCESS"),
        ("finish_time", time.as_str()),
    ]
    .into_iter()
    .collect()
}
