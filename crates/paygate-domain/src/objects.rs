//! The native object shapes, which are Ping++'s (seed 004's order example is the reference):
//! what `/v1` answers and what events carry as `data.object`. Amounts are fen integers.

use crate::paging::Page;
use crate::{Charge, ChargeStatus, Order, Refund, RefundStatus};
use serde_json::{json, Value};

/// An order with its charges, newest charge first: what the order endpoints render.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: Order,
    pub charges: Vec<Charge>,
}

pub fn list(url: &str, has_more: bool, data: Vec<Value>) -> Value {
    json!({"object": "list", "url": url, "has_more": has_more, "data": data})
}

pub fn order(view: &OrderView) -> Value {
    let o = &view.order;
    let charge_essentials = match view.charges.first() {
        Some(c) => {
            json!({"channel": c.channel, "transaction_no": c.transaction_no, "credential": c.credential, "extra": c.extra})
        }
        None => json!({}),
    };
    json!({
        "id": o.id,
        "object": "order",
        "created": o.created,
        "livemode": o.mode.is_live(),
        "paid": o.is_paid(),
        "refunded": o.has_refunds,
        "status": o.status.as_str(),
        "app": o.app_id,
        "uid": o.uid,
        "available_balance": 0,
        "merchant_order_no": o.merchant_order_no,
        "amount": o.amount.fen(),
        "actual_amount": o.actual_amount.fen(),
        "amount_refunded": o.amount_refunded.fen(),
        "amount_paid": o.amount_paid.fen(),
        "coupon_amount": o.coupon_amount.fen(),
        "currency": o.currency.code(),
        "subject": o.subject,
        "body": o.body,
        "client_ip": o.client_ip,
        "time_paid": o.time_paid,
        "time_expire": o.time_expire,
        "coupon": null,
        "description": o.description,
        "metadata": o.metadata,
        "charge_essentials": charge_essentials,
        "receipt_app": o.receipt_app,
        "service_app": o.service_app,
        "available_methods": [],
        "profit_sharing": o.profit_sharing,
        "amount_shared": o.share_reserved.fen(),
        "charges": list("/v1/charges", false, view.charges.iter().map(|c| charge(c, None)).collect()),
    })
}

pub fn orders(page: &Page<OrderView>) -> Value {
    list("/v1/orders", page.has_more, page.data.iter().map(order).collect())
}

/// `refunds`: the charge's refund list when the caller loaded it, else null (nested charges).
pub fn charge(c: &Charge, refunds: Option<&Page<Refund>>) -> Value {
    json!({
        "id": c.id,
        "object": "charge",
        "created": c.created,
        "livemode": c.mode.is_live(),
        "paid": c.status == ChargeStatus::Succeeded,
        "refunded": c.amount_refunded == c.amount,
        "reversed": false,
        "app": c.app_id,
        "channel": c.channel,
        "order_no": c.channel_order_no,
        "order": c.order_id,
        "client_ip": c.client_ip,
        "amount": c.amount.fen(),
        "amount_settle": c.amount.fen(),
        "currency": c.currency.code(),
        "subject": c.subject,
        "body": c.body,
        "extra": c.extra,
        "time_paid": c.time_paid,
        "time_expire": c.time_expire,
        "time_settle": null,
        "transaction_no": c.transaction_no,
        "refunds": refunds.map(|p| refund_list(&format!("/v1/charges/{}/refunds", c.id), p)),
        "amount_refunded": c.amount_refunded.fen(),
        "failure_code": c.failure_code,
        "failure_msg": c.failure_msg,
        "metadata": c.metadata,
        "credential": c.credential,
        "description": c.description,
        "status": c.status.as_str(),
    })
}

pub fn charges(url: &str, charges: &[Charge]) -> Value {
    list(url, false, charges.iter().map(|c| charge(c, None)).collect())
}

pub fn refund(r: &Refund) -> Value {
    json!({
        "id": r.id,
        "object": "refund",
        "order_no": r.refund_no,
        "amount": r.amount.fen(),
        "created": r.created,
        "succeed": r.status == RefundStatus::Succeeded,
        "status": r.status.as_str(),
        "time_succeed": r.time_succeed,
        "description": r.description,
        "failure_code": r.failure_code,
        "failure_msg": r.failure_msg,
        "metadata": r.metadata,
        "charge": r.charge_id,
        "order": r.order_id,
        "transaction_no": r.transaction_no,
        "extra": {},
    })
}

pub fn refund_list(url: &str, page: &Page<Refund>) -> Value {
    list(url, page.has_more, page.data.iter().map(refund).collect())
}
