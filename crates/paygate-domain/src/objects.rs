//! The native object shapes, which are Ping++'s (seed 004's order example is the reference):
//! what `/v1` answers and what events carry as `data.object`. Amounts are fen integers.
//!
//! Each shape is a struct that is both what gets serialized and what the OpenAPI document
//! describes (`utoipa::ToSchema`, derived with the `openapi` feature), so the document cannot
//! drift from the answers.

use crate::paging::Page;
use crate::{Charge, ChargeStatus, Order, OrderStatus, Refund, RefundStatus};
use serde::Serialize;
use serde_json::Value;

/// An order with its charges, newest charge first: what the order endpoints render.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: Order,
    pub charges: Vec<Charge>,
}

/// `{"object": "list", …}`: every list the API answers, of any object.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(title = "List"))]
pub struct List<T> {
    /// Always `list`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "list"))]
    pub object: &'static str,
    pub url: String,
    pub has_more: bool,
    pub data: Vec<T>,
}

impl<T> List<T> {
    pub fn new(url: impl Into<String>, has_more: bool, data: Vec<T>) -> List<T> {
        List { object: "list", url: url.into(), has_more, data }
    }
}

/// Serializes one of the shapes of this module. They hold only strings, numbers, booleans and
/// JSON values with string keys, which always serialize.
pub fn to_value(object: &impl Serialize) -> Value {
    serde_json::to_value(object).expect("API objects always serialize")
}

pub fn list(url: &str, has_more: bool, data: Vec<Value>) -> Value {
    to_value(&List::new(url, has_more, data))
}

/// What the client needs of the newest charge; `{}` before the order has one.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargeEssentials {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Present (possibly null) whenever `channel` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub transaction_no: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub credential: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub extra: Option<Value>,
}

/// A Ping++ order (seed 004), with its charges.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Order))]
pub struct OrderObject {
    /// 19 decimal digits.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{19}$", example = "2011611220000000001"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "order"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub paid: bool,
    pub refunded: bool,
    pub status: OrderStatus,
    pub app: String,
    pub uid: Option<String>,
    pub available_balance: i64,
    pub merchant_order_no: String,
    pub amount: i64,
    pub actual_amount: i64,
    pub amount_refunded: i64,
    pub amount_paid: i64,
    pub coupon_amount: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cny"))]
    pub currency: &'static str,
    pub subject: String,
    pub body: String,
    pub client_ip: String,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    /// Always null: coupon objects are not supported.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub coupon: Option<Value>,
    pub description: Option<String>,
    /// The merchant's key/value pairs, or null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Value>,
    pub charge_essentials: ChargeEssentials,
    pub receipt_app: String,
    pub service_app: String,
    pub available_methods: Vec<String>,
    pub profit_sharing: bool,
    pub amount_shared: i64,
    pub charges: List<ChargeObject>,
}

impl OrderObject {
    pub fn new(view: &OrderView) -> OrderObject {
        let o = &view.order;
        let charge_essentials = match view.charges.first() {
            Some(c) => ChargeEssentials {
                channel: Some(c.channel.clone()),
                transaction_no: Some(c.transaction_no.clone().map_or(Value::Null, Value::String)),
                credential: Some(c.credential.clone()),
                extra: Some(c.extra.clone()),
            },
            None => ChargeEssentials::default(),
        };
        OrderObject {
            id: o.id.clone(),
            object: "order",
            created: o.created,
            livemode: o.mode.is_live(),
            paid: o.is_paid(),
            refunded: o.has_refunds,
            status: o.status,
            app: o.app_id.clone(),
            uid: o.uid.clone(),
            available_balance: 0,
            merchant_order_no: o.merchant_order_no.clone(),
            amount: o.amount.fen(),
            actual_amount: o.actual_amount.fen(),
            amount_refunded: o.amount_refunded.fen(),
            amount_paid: o.amount_paid.fen(),
            coupon_amount: o.coupon_amount.fen(),
            currency: o.currency.code(),
            subject: o.subject.clone(),
            body: o.body.clone(),
            client_ip: o.client_ip.clone(),
            time_paid: o.time_paid,
            time_expire: o.time_expire,
            coupon: None,
            description: o.description.clone(),
            metadata: o.metadata.clone(),
            charge_essentials,
            receipt_app: o.receipt_app.clone(),
            service_app: o.service_app.clone(),
            available_methods: Vec::new(),
            profit_sharing: o.profit_sharing,
            amount_shared: o.share_reserved.fen(),
            charges: List::new("/v1/charges", false, view.charges.iter().map(|c| ChargeObject::new(c, None)).collect()),
        }
    }
}

pub fn order(view: &OrderView) -> Value {
    to_value(&OrderObject::new(view))
}

pub fn orders(page: &Page<OrderView>) -> Value {
    to_value(&List::new("/v1/orders", page.has_more, page.data.iter().map(OrderObject::new).collect()))
}

/// A payment attempt at a channel, with what the client needs to pay (`credential`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Charge))]
pub struct ChargeObject {
    #[cfg_attr(feature = "openapi", schema(pattern = "^ch_[0-9A-Za-z]{24}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "charge"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub paid: bool,
    /// Refunded in full.
    pub refunded: bool,
    /// Reversed (撤销) by `POST /v1/charges/{id}/reverse`.
    pub reversed: bool,
    pub app: String,
    pub channel: String,
    /// The merchant's order number (`order_no` of `POST /v1/charges`, or the order's
    /// `merchant_order_no`).
    pub order_no: String,
    /// The order this charge pays.
    pub order: String,
    pub client_ip: String,
    pub amount: i64,
    pub amount_settle: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cny"))]
    pub currency: &'static str,
    pub subject: String,
    pub body: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Value,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    /// Always null.
    pub time_settle: Option<i64>,
    pub transaction_no: Option<String>,
    /// The charge's refunds where the charge is retrieved by itself; null in nested lists.
    pub refunds: Option<List<RefundObject>>,
    pub amount_refunded: i64,
    pub failure_code: Option<String>,
    pub failure_msg: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
    /// What the client needs to pay at the channel (test mode: the sandbox page).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: Value,
    pub description: Option<String>,
    pub status: ChargeStatus,
}

impl ChargeObject {
    /// `refunds`: the charge's refund list when the caller loaded it, else null (nested charges).
    pub fn new(c: &Charge, refunds: Option<&Page<Refund>>) -> ChargeObject {
        ChargeObject {
            id: c.id.clone(),
            object: "charge",
            created: c.created,
            livemode: c.mode.is_live(),
            paid: c.status == ChargeStatus::Succeeded,
            refunded: c.amount_refunded == c.amount,
            reversed: c.reversed,
            app: c.app_id.clone(),
            channel: c.channel.clone(),
            order_no: c.order_no.clone(),
            order: c.order_id.clone(),
            client_ip: c.client_ip.clone(),
            amount: c.amount.fen(),
            amount_settle: c.amount.fen(),
            currency: c.currency.code(),
            subject: c.subject.clone(),
            body: c.body.clone(),
            extra: c.extra.clone(),
            time_paid: c.time_paid,
            time_expire: c.time_expire,
            time_settle: None,
            transaction_no: c.transaction_no.clone(),
            refunds: refunds.map(|p| refund_page(&format!("/v1/charges/{}/refunds", c.id), p)),
            amount_refunded: c.amount_refunded.fen(),
            failure_code: c.failure_code.clone(),
            failure_msg: c.failure_msg.clone(),
            metadata: c.metadata.clone(),
            credential: c.credential.clone(),
            description: c.description.clone(),
            status: c.status,
        }
    }
}

pub fn charge(c: &Charge, refunds: Option<&Page<Refund>>) -> Value {
    to_value(&ChargeObject::new(c, refunds))
}

pub fn charges(url: &str, charges: &[Charge]) -> Value {
    to_value(&List::new(url, false, charges.iter().map(|c| ChargeObject::new(c, None)).collect()))
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Refund))]
pub struct RefundObject {
    #[cfg_attr(feature = "openapi", schema(pattern = "^re_[0-9A-Za-z]{24}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "refund"))]
    pub object: &'static str,
    /// The refund number sent to the channel.
    pub order_no: String,
    pub amount: i64,
    pub created: i64,
    pub succeed: bool,
    pub status: RefundStatus,
    pub time_succeed: Option<i64>,
    pub description: String,
    pub failure_code: Option<String>,
    pub failure_msg: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
    pub charge: String,
    pub order: String,
    pub transaction_no: Option<String>,
    /// Always `{}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Value,
}

impl RefundObject {
    pub fn new(r: &Refund) -> RefundObject {
        RefundObject {
            id: r.id.clone(),
            object: "refund",
            order_no: r.refund_no.clone(),
            amount: r.amount.fen(),
            created: r.created,
            succeed: r.status == RefundStatus::Succeeded,
            status: r.status,
            time_succeed: r.time_succeed,
            description: r.description.clone(),
            failure_code: r.failure_code.clone(),
            failure_msg: r.failure_msg.clone(),
            metadata: r.metadata.clone(),
            charge: r.charge_id.clone(),
            order: r.order_id.clone(),
            transaction_no: r.transaction_no.clone(),
            extra: Value::Object(Default::default()),
        }
    }
}

pub fn refund(r: &Refund) -> Value {
    to_value(&RefundObject::new(r))
}

fn refund_page(url: &str, page: &Page<Refund>) -> List<RefundObject> {
    List::new(url, page.has_more, page.data.iter().map(RefundObject::new).collect())
}

pub fn refund_list(url: &str, page: &Page<Refund>) -> Value {
    to_value(&refund_page(url, page))
}
