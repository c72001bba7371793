//! The native object shapes, which are Ping++'s (seed 004's order example is the reference):
//! what `/v1` answers and what events carry as `data.object`. Amounts are fen integers.
//!
//! Each shape is a struct that is both what gets serialized and what the OpenAPI document
//! describes (`utoipa::ToSchema`, derived with the `openapi` feature), so the document cannot
//! drift from the answers. The shapes borrow from the records they show: rendering an order is
//! one pass of serde straight into the answer's bytes, with no copy of its strings or JSON
//! values on the way (the retrieve path's profile: the copies and a `Value` tree in between cost
//! more than the serialization itself).

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

/// The same, straight to the compact JSON text an answer carries (byte for byte what
/// `to_value(object).to_string()` gives, without building the `Value`).
pub fn to_vec(object: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(object).expect("API objects always serialize")
}

/// What the client needs of the newest charge; `{}` before the order has one.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChargeEssentials<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<&'a str>,
    /// Present (possibly null) whenever `channel` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub transaction_no: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub credential: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub extra: Option<&'a Value>,
}

/// A Ping++ order (seed 004), with its charges.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Order))]
pub struct OrderObject<'a> {
    /// 19 decimal digits.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9]{19}$", example = "2011611220000000001"))]
    pub id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "order"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub paid: bool,
    pub refunded: bool,
    pub status: OrderStatus,
    pub app: &'a str,
    pub uid: Option<&'a str>,
    pub available_balance: i64,
    pub merchant_order_no: &'a str,
    pub amount: i64,
    pub actual_amount: i64,
    pub amount_refunded: i64,
    pub amount_paid: i64,
    pub coupon_amount: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cny"))]
    pub currency: &'static str,
    pub subject: &'a str,
    pub body: &'a str,
    pub client_ip: &'a str,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    /// Always null: coupon objects are not supported.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub coupon: Option<&'a Value>,
    pub description: Option<&'a str>,
    /// The merchant's key/value pairs, or null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<&'a Value>,
    pub charge_essentials: ChargeEssentials<'a>,
    pub receipt_app: &'a str,
    pub service_app: &'a str,
    pub available_methods: Vec<&'a str>,
    pub profit_sharing: bool,
    pub amount_shared: i64,
    pub charges: List<ChargeObject<'a>>,
}

impl<'a> OrderObject<'a> {
    pub fn new(view: &'a OrderView) -> OrderObject<'a> {
        let o = &view.order;
        let charge_essentials = match view.charges.first() {
            Some(c) => ChargeEssentials {
                channel: Some(&c.channel),
                transaction_no: Some(c.transaction_no.as_deref()),
                credential: Some(&c.credential),
                extra: Some(&c.extra),
            },
            None => ChargeEssentials::default(),
        };
        OrderObject {
            id: &o.id,
            object: "order",
            created: o.created,
            livemode: o.mode.is_live(),
            paid: o.is_paid(),
            refunded: o.has_refunds,
            status: o.status,
            app: &o.app_id,
            uid: o.uid.as_deref(),
            available_balance: 0,
            merchant_order_no: &o.merchant_order_no,
            amount: o.amount.fen(),
            actual_amount: o.actual_amount.fen(),
            amount_refunded: o.amount_refunded.fen(),
            amount_paid: o.amount_paid.fen(),
            coupon_amount: o.coupon_amount.fen(),
            currency: o.currency.code(),
            subject: &o.subject,
            body: &o.body,
            client_ip: &o.client_ip,
            time_paid: o.time_paid,
            time_expire: o.time_expire,
            coupon: None,
            description: o.description.as_deref(),
            metadata: o.metadata.as_ref(),
            charge_essentials,
            receipt_app: &o.receipt_app,
            service_app: &o.service_app,
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

/// `GET /v1/orders`' page.
pub fn order_list(page: &Page<OrderView>) -> List<OrderObject<'_>> {
    List::new("/v1/orders", page.has_more, page.data.iter().map(OrderObject::new).collect())
}

/// A payment attempt at a channel, with what the client needs to pay (`credential`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Charge))]
pub struct ChargeObject<'a> {
    #[cfg_attr(feature = "openapi", schema(pattern = "^ch_[0-9A-Za-z]{24}$"))]
    pub id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "charge"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub paid: bool,
    /// Refunded in full.
    pub refunded: bool,
    /// Reversed (撤销) by `POST /v1/charges/{id}/reverse`.
    pub reversed: bool,
    pub app: &'a str,
    pub channel: &'a str,
    /// The merchant's order number (`order_no` of `POST /v1/charges`, or the order's
    /// `merchant_order_no`).
    pub order_no: &'a str,
    /// The order this charge pays.
    pub order: &'a str,
    pub client_ip: &'a str,
    pub amount: i64,
    pub amount_settle: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "cny"))]
    pub currency: &'static str,
    pub subject: &'a str,
    pub body: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: &'a Value,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    /// Always null.
    pub time_settle: Option<i64>,
    pub transaction_no: Option<&'a str>,
    /// The charge's refunds where the charge is retrieved by itself; null in nested lists.
    pub refunds: Option<List<RefundObject<'a>>>,
    pub amount_refunded: i64,
    pub failure_code: Option<&'a str>,
    pub failure_msg: Option<&'a str>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: &'a Value,
    /// What the client needs to pay at the channel (test mode: the sandbox page).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: &'a Value,
    pub description: Option<&'a str>,
    pub status: ChargeStatus,
}

impl<'a> ChargeObject<'a> {
    /// `refunds`: the charge's refund list when the caller loaded it, else null (nested charges).
    pub fn new(c: &'a Charge, refunds: Option<&'a Page<Refund>>) -> ChargeObject<'a> {
        ChargeObject {
            id: &c.id,
            object: "charge",
            created: c.created,
            livemode: c.mode.is_live(),
            paid: c.status == ChargeStatus::Succeeded,
            refunded: c.amount_refunded == c.amount,
            reversed: c.reversed,
            app: &c.app_id,
            channel: &c.channel,
            order_no: &c.order_no,
            order: &c.order_id,
            client_ip: &c.client_ip,
            amount: c.amount.fen(),
            amount_settle: c.amount.fen(),
            currency: c.currency.code(),
            subject: &c.subject,
            body: &c.body,
            extra: &c.extra,
            time_paid: c.time_paid,
            time_expire: c.time_expire,
            time_settle: None,
            transaction_no: c.transaction_no.as_deref(),
            refunds: refunds.map(|p| refund_page(format!("/v1/charges/{}/refunds", c.id), p)),
            amount_refunded: c.amount_refunded.fen(),
            failure_code: c.failure_code.as_deref(),
            failure_msg: c.failure_msg.as_deref(),
            metadata: &c.metadata,
            credential: &c.credential,
            description: c.description.as_deref(),
            status: c.status,
        }
    }
}

pub fn charge(c: &Charge, refunds: Option<&Page<Refund>>) -> Value {
    to_value(&ChargeObject::new(c, refunds))
}

/// A list of charges, none with its refunds.
pub fn charge_list<'a>(url: &str, charges: &'a [Charge]) -> List<ChargeObject<'a>> {
    List::new(url, false, charges.iter().map(|c| ChargeObject::new(c, None)).collect())
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Refund))]
pub struct RefundObject<'a> {
    #[cfg_attr(feature = "openapi", schema(pattern = "^re_[0-9A-Za-z]{24}$"))]
    pub id: &'a str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "refund"))]
    pub object: &'static str,
    /// The refund number sent to the channel.
    pub order_no: &'a str,
    pub amount: i64,
    pub created: i64,
    pub succeed: bool,
    pub status: RefundStatus,
    pub time_succeed: Option<i64>,
    pub description: &'a str,
    pub failure_code: Option<&'a str>,
    pub failure_msg: Option<&'a str>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: &'a Value,
    pub charge: &'a str,
    pub order: &'a str,
    pub transaction_no: Option<&'a str>,
    /// Always `{}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub extra: Value,
}

impl<'a> RefundObject<'a> {
    pub fn new(r: &'a Refund) -> RefundObject<'a> {
        RefundObject {
            id: &r.id,
            object: "refund",
            order_no: &r.refund_no,
            amount: r.amount.fen(),
            created: r.created,
            succeed: r.status == RefundStatus::Succeeded,
            status: r.status,
            time_succeed: r.time_succeed,
            description: &r.description,
            failure_code: r.failure_code.as_deref(),
            failure_msg: r.failure_msg.as_deref(),
            metadata: &r.metadata,
            charge: &r.charge_id,
            order: &r.order_id,
            transaction_no: r.transaction_no.as_deref(),
            extra: Value::Object(Default::default()),
        }
    }
}

pub fn refund(r: &Refund) -> Value {
    to_value(&RefundObject::new(r))
}

/// A page of refunds as a list object.
pub fn refund_page(url: impl Into<String>, page: &Page<Refund>) -> List<RefundObject<'_>> {
    List::new(url, page.has_more, page.data.iter().map(RefundObject::new).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Amount, Currency, Mode, Order};
    use serde_json::json;

    fn amount(fen: i64) -> Amount {
        Amount::positive("amount", fen).unwrap()
    }

    fn view() -> (OrderView, Page<Refund>) {
        let text = "s \"q\" \\ 你好 \u{2028} \u{7f}";
        let order = Order {
            id: "2011611220000000001".into(),
            app_id: "app_1".into(),
            mode: Mode::Test,
            created: 1,
            status: OrderStatus::Paid,
            uid: Some("u1".into()),
            merchant_order_no: "m-1".into(),
            amount: amount(1000),
            coupon_amount: amount(100),
            actual_amount: amount(900),
            amount_paid: amount(900),
            amount_refunded: amount(50),
            refund_reserved: amount(50),
            has_refunds: true,
            currency: Currency::parse("currency", "cny").unwrap(),
            subject: text.into(),
            body: "b".into(),
            client_ip: "127.0.0.1".into(),
            time_paid: Some(2),
            time_expire: 3,
            description: None,
            metadata: Some(json!({"k": "v", "n": 1.5, "z": -7})),
            receipt_app: "app_1".into(),
            service_app: "app_1".into(),
            profit_sharing: false,
            share_reserved: Amount::ZERO,
            sharing_finished: false,
        };
        let charge = |id: &str, transaction_no: Option<&str>| Charge {
            id: id.into(),
            order_id: order.id.clone(),
            app_id: "app_1".into(),
            mode: Mode::Test,
            created: 1,
            status: ChargeStatus::Succeeded,
            channel: "wx_pub".into(),
            channel_order_no: "c".into(),
            amount: amount(900),
            amount_refunded: amount(50),
            currency: Currency::parse("currency", "cny").unwrap(),
            client_ip: "127.0.0.1".into(),
            subject: text.into(),
            body: "b".into(),
            extra: json!({"open_id": "o1"}),
            credential: json!({"object": "credential", "wx_pub": {"url": "http://x/?a=1&b=2"}}),
            time_paid: Some(2),
            time_expire: 3,
            transaction_no: transaction_no.map(str::to_string),
            failure_code: None,
            failure_msg: Some("m".into()),
            metadata: json!({}),
            description: Some("d".into()),
            notification: None,
            settlement: None,
            member_id: None,
            order_no: "m-1".into(),
            reversed: false,
        };
        let refund = Refund {
            id: "re_1".into(),
            order_id: order.id.clone(),
            charge_id: "ch_2".into(),
            app_id: "app_1".into(),
            mode: Mode::Test,
            created: 4,
            status: RefundStatus::Succeeded,
            amount: amount(50),
            refund_no: "r1".into(),
            description: text.into(),
            metadata: json!({"why": "x"}),
            time_succeed: Some(5),
            transaction_no: None,
            failure_code: None,
            failure_msg: None,
        };
        let charges = vec![charge("ch_2", None), charge("ch_1", Some("t1"))];
        (OrderView { order, charges }, Page { data: vec![refund], has_more: false })
    }

    fn same(object: &impl Serialize) {
        assert_eq!(to_vec(object), to_value(object).to_string().into_bytes());
    }

    /// Answers are serialized straight to bytes, events through `to_value`: the two must be the
    /// same JSON text, byte for byte (field order, escapes, nulls, numbers).
    #[test]
    fn answers_and_events_render_the_same_bytes() {
        let (view, refunds) = view();
        same(&OrderObject::new(&view));
        same(&ChargeObject::new(&view.charges[0], Some(&refunds)));
        same(&RefundObject::new(&refunds.data[0]));
        same(&List::new("/v1/orders", true, vec![OrderObject::new(&view)]));
        let text = String::from_utf8(to_vec(&OrderObject::new(&view))).unwrap();
        assert!(text.starts_with(r#"{"id":"2011611220000000001","object":"order","created":1,"#), "{text}");
        assert!(text.contains(r#""charge_essentials":{"channel":"wx_pub","transaction_no":null,"credential":{"#));
        assert!(text.contains(r#""description":null,"metadata":{"k":"v","n":1.5,"z":-7},"#), "{text}");
    }
}
