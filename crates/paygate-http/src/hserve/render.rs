//! 知晓云 object shapes (seeds 000 and 003): amounts are yuan strings (`"398.00"`), times unix
//! seconds, statuses `pending`/`success` and refund statuses `complete`/`partial`/`failed`/null.

use super::query::ParsedQuery;
use crate::request::Query;
use paygate_channels::SandboxWechat;
use paygate_core::hserve::{CreatedPayment, Session};
use paygate_domain::shares::ProfitShare;
use paygate_domain::{Amount, OrderStatus, Refund, RefundStatus};
use paygate_store::{HserveUser, PaymentRecord};
use serde_json::{json, Map, Value};

pub fn session(s: &Session) -> Value {
    json!({"token": s.token, "expires_in": s.expires_in, "user_id": s.user.id, "user_info": user(&s.user)})
}

pub fn user(u: &HserveUser) -> Value {
    json!({"id": u.id, "created_at": u.created, "username": u.username, "_anonymous": u.anonymous,
        "_username": u.username})
}

fn status(r: &PaymentRecord) -> &'static str {
    match r.order.status {
        OrderStatus::Created => "pending",
        OrderStatus::Paid | OrderStatus::Refunded => "success",
        OrderStatus::Canceled | OrderStatus::Closed | OrderStatus::PaidAfterClose => "closed",
    }
}

fn refund_status(r: &PaymentRecord) -> Value {
    let o = &r.order;
    if o.amount_paid > Amount::ZERO && o.amount_refunded == o.amount_paid {
        json!("complete")
    } else if o.amount_refunded > Amount::ZERO {
        json!("partial")
    } else if o.has_refunds && o.refund_reserved == Amount::ZERO {
        json!("failed")
    } else {
        Value::Null
    }
}

fn snapshot(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!(text))
}

pub fn record(r: &PaymentRecord) -> Value {
    let gateway_extra_info = match (&r.charge.notification, r.meta.gateway_type.as_str()) {
        (Some(n), "weixin_tenpay") => json!({"wechat_response": n}),
        _ => json!({}),
    };
    json!({
        "id": r.id,
        "created_at": r.order.created,
        "updated_at": r.updated,
        "created_by_id": r.meta.created_by,
        "created_by_name": r.created_by_name,
        "gateway_type": r.meta.gateway_type,
        "gateway_extra_info": gateway_extra_info,
        "ip_address": r.meta.ip_address,
        "merchandise_description": r.meta.merchandise_description,
        "merchandise_record_id": r.meta.merchandise_record_id,
        "merchandise_schema_id": r.meta.merchandise_schema_id,
        "merchandise_snapshot": snapshot(&r.meta.merchandise_snapshot),
        "paid_at": r.order.time_paid,
        "profit_sharing": r.order.profit_sharing,
        "refund_amount": r.order.amount_refunded.yuan(),
        "refund_status": refund_status(r),
        "status": status(r),
        "total_cost": r.order.actual_amount.yuan(),
        "trade_no": r.meta.trade_no,
        "transaction_no": r.meta.transaction_no,
    })
}

/// `keys=a,b` keeps only those fields; `keys=-a` drops them.
pub fn select_keys(object: Value, keys: Option<&str>) -> Value {
    let (Some(keys), Value::Object(map)) = (keys, &object) else { return object };
    let names: Vec<&str> = keys.split(',').map(str::trim).filter(|k| !k.is_empty()).collect();
    let (drop, keep): (Vec<&str>, Vec<&str>) = names.iter().partition(|k| k.starts_with('-'));
    let drop: Vec<&str> = drop.iter().map(|k| &k[1..]).collect();
    let out: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| (keep.is_empty() || keep.contains(&k.as_str())) && !drop.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

pub fn record_list(records: &[PaymentRecord], total: i64, q: &ParsedQuery, raw: &Query) -> Value {
    let (limit, offset) = (q.query.limit, q.query.offset);
    let link = |offset: i64| {
        let mut url = format!("/hserve/v2.2/idp/pay/order/?limit={limit}&offset={offset}");
        for (k, v) in raw.0.iter().filter(|(k, _)| k != "limit" && k != "offset") {
            url.push_str(&format!("&{}={}", encode(k), encode(v)));
        }
        url
    };
    // `offset` is the client's number (up to i64::MAX): checked, never wrapped.
    let next = offset.checked_add(limit).filter(|n| *n < total).map(link);
    let previous = (offset > 0).then(|| link(offset.saturating_sub(limit).max(0)));
    json!({
        "meta": {"limit": limit, "next": next, "offset": offset, "previous": previous, "total_count": total},
        "objects": records.iter().map(|r| select_keys(record(r), q.keys.as_deref())).collect::<Vec<_>>(),
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What `payWithWechat/payWithAlipay/payWithQQ` resolve with: the record's numbers and what
/// the gateway type needs to pay (QR content, a redirect URL, or JSAPI parameters).
pub fn created_payment(c: &CreatedPayment) -> Value {
    let r = &c.record;
    let mut out = Map::new();
    if let Some(Value::Object(params)) = &c.jsapi {
        out.extend(params.clone());
    }
    out.insert("id".into(), json!(r.id));
    out.insert("trade_no".into(), json!(r.meta.trade_no));
    out.insert("transaction_no".into(), json!(r.meta.transaction_no));
    out.insert("status".into(), json!(status(r)));
    out.insert("total_cost".into(), json!(r.order.actual_amount.yuan()));
    out.insert("gateway_type".into(), json!(r.meta.trade_type));
    match r.meta.trade_type.as_str() {
        "weixin_tenpay_native" | "qpay_native" => {
            out.insert("code_url".into(), json!(c.pay_url));
        }
        "weixin_tenpay_wap" => {
            out.insert("mweb_url".into(), json!(c.pay_url));
        }
        "alipay_wap" | "alipay_page" => {
            out.insert("payment_url".into(), json!(c.pay_url));
        }
        _ => {
            out.insert("pay_url".into(), json!(c.pay_url));
        }
    }
    Value::Object(out)
}

/// `BaaS.refund`'s answer (seed 003).
pub fn refund(refund: &Refund, record: &PaymentRecord) -> Value {
    let status = match refund.status {
        RefundStatus::Succeeded => "succeed",
        RefundStatus::Failed => "failed",
        RefundStatus::Pending => "pending",
    };
    json!({
        "id": refund.id,
        "order_id": record.id,
        "refund_amount": refund.amount.yuan(),
        "refund_no": refund.refund_no,
        "status": status,
        "memo": refund.description,
        "error_msg": refund.failure_msg.clone().unwrap_or_default(),
        "refund_status": refund_status(record),
        "trade_no": record.meta.trade_no,
        "transaction_no": record.meta.transaction_no,
    })
}

/// Seed 003's WeChat profit-sharing answer.
pub fn wechat_share_answer(record: &PaymentRecord, share: Option<&ProfitShare>) -> Value {
    let id = SandboxWechat::of(&record.order.app_id);
    json!({
        "return_code": "SUCCESS",
        "appid": id.appid,
        "mch_id": id.mch_id,
        "trade_no": record.meta.trade_no,
        "wechat_order_no": share.and_then(|s| s.channel_order_no.clone()),
        "profit_sharing_id": share.map(|s| s.id.clone()),
        "out_order_no": share.map(|s| s.out_order_no.clone()),
    })
}

/// Seed 003's Alipay profit-sharing answer (`return_code` "10000" is Alipay's success code).
pub fn alipay_share_answer(record: &PaymentRecord, share: &ProfitShare) -> Value {
    json!({"return_code": "10000", "trade_no": record.meta.trade_no, "profit_sharing_id": share.id,
        "out_order_no": share.out_order_no})
}
