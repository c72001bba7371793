//! The `/v1` request bodies as types. Deserialized by [`crate::request::typed_body`], which
//! names the offending field on every error; the same types describe the bodies in the OpenAPI
//! document, so the document says what the server reads. Constraints given to the document are
//! the ones the core enforces (a request the document refuses is refused by the server too).
//! Fields not listed are ignored, as they always were (SDKs may send more).

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
#[cfg(feature = "openapi")]
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, SchemaType, Type};

/// A JSON integer: `1.5`, `"100"` and numbers beyond i64 are refused, naming the field
/// (money is integer fen; no float ever reaches the money path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        struct IntVisitor;
        impl Visitor<'_> for IntVisitor {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v).map(Int).map_err(|_| E::custom("is too large"))
            }
        }
        deserializer.deserialize_i64(IntVisitor)
    }
}

/// `Option<Int>` as a plain `Option<i64>`.
pub fn opt(v: Option<Int>) -> Option<i64> {
    v.map(|i| i.0)
}

// Lists the core checks against, shown as `enum`s: the document takes them from the same
// constants, so a channel or event type added there is documented too.
#[cfg(feature = "openapi")]
fn one_of(values: &[&str]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied())).build()
}

#[cfg(feature = "openapi")]
fn pingpp_channel() -> Object {
    one_of(paygate_domain::PINGPP_CHANNELS)
}

#[cfg(feature = "openapi")]
fn fee_family() -> Object {
    one_of(paygate_domain::fees::FAMILIES)
}

#[cfg(feature = "openapi")]
fn event_types() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(one_of(paygate_domain::events::EVENT_TYPES))
        .min_items(Some(1))
        .build()
}

/// `POST /v1/orders`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateOrder {
    /// The caller's own app id; another app's is answered 404.
    pub app: String,
    /// Unique per app: letters, digits, `_` and `-`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9A-Za-z_-]{1,64}$"))]
    pub merchant_order_no: String,
    /// Fen.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64))]
    pub amount: Int,
    /// Fen taken off `amount`; less than `amount`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000_000_i64))]
    pub coupon_amount: Option<Int>,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[cC][nN][yY]$", example = "cny"))]
    pub currency: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32))]
    pub subject: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub body: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub uid: Option<String>,
    /// IPv4 or IPv6; the peer's address when absent.
    pub client_ip: Option<String>,
    /// Unix seconds, in the future and at most 15 days away; 24 h from now when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub time_expire: Option<Int>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub description: Option<String>,
    /// At most 50 keys of 1–40 characters; values are strings (≤ 500 characters), numbers,
    /// booleans or null.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Value,
    /// This app's id (sub-apps are not supported).
    pub receipt_app: Option<String>,
    /// This app's id (sub-apps are not supported).
    pub service_app: Option<String>,
    /// WeChat profit sharing will be requested for this order.
    pub profit_sharing: Option<bool>,
}

/// `POST /v1/charges`: Ping++'s charge request.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateCharge {
    /// The merchant's order number, unique per app: letters, digits, `_` and `-`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9A-Za-z_-]{1,64}$"))]
    pub order_no: String,
    /// `{"id": app_id}`: the caller's own app; another app's is answered 404.
    pub app: AppRef,
    /// A Ping++ channel name; test mode pays all of them through the sandbox.
    #[cfg_attr(feature = "openapi", schema(schema_with = pingpp_channel))]
    pub channel: String,
    /// Fen.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64))]
    pub amount: Int,
    /// IPv4 or IPv6; the peer's address when absent.
    pub client_ip: Option<String>,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[cC][nN][yY]$", example = "cny"))]
    pub currency: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32))]
    pub subject: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub body: String,
    /// Channel-specific parameters, kept with the charge.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub extra: Value,
    /// Unix seconds, in the future and at most 15 days away; 24 h from now when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub time_expire: Option<Int>,
    /// As an order's `metadata`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Value,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub description: Option<String>,
}

/// `{"id": …}`: how Ping++'s charge request names its app.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppRef {
    pub id: String,
}

/// `POST /v1/charges/{id}/reverse` takes no fields (Ping++'s SDKs send `{}`).
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReverseCharge {}

/// The one update an order takes: `{"status": "canceled"}`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateOrder {
    #[cfg_attr(feature = "openapi", schema(value_type = OrderUpdateStatus))]
    pub status: Option<String>,
}

/// What `PUT /v1/orders/{id}` may set `status` to.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the document only; the handler matches the string.
pub enum OrderUpdateStatus {
    Canceled,
}

/// `POST /v1/orders/{id}/pay`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PayOrder {
    /// A Ping++ channel name; test mode pays all of them through the sandbox.
    #[cfg_attr(feature = "openapi", schema(schema_with = pingpp_channel))]
    pub channel: String,
    /// Must equal the order's `actual_amount` (no split payments).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub charge_amount: Option<Int>,
    /// Channel-specific parameters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub extra: Value,
}

/// `POST /v1/orders/{id}/order_refunds` and `POST /v1/charges/{id}/refunds`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRefund {
    /// Fen; everything still refundable when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
    pub amount: Option<Int>,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub description: Option<String>,
    /// As an order's `metadata`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Value,
}

/// `POST /v1/sandbox/charges/{reference}/pay`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SandboxPay {
    /// `success` when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<SandboxOutcome>))]
    pub result: Option<String>,
}

#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the document only; the core parses the string.
pub enum SandboxOutcome {
    Success,
    Fail,
}

/// `POST /v1/orders/{id}/profit_sharings`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateProfitSharing {
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = paygate_domain::shares::ShareKind))]
    pub kind: String,
    /// 1 to 50 receivers; each `type` + `account` at most once. Checked by the domain's
    /// receiver rules, which name the field (`receivers[2].amount`).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Vec<paygate_domain::shares::ReceiverObject>, min_items = 1, max_items = 50)
    )]
    pub receivers: Value,
    /// The merchant's number for this request: the same number is the same request.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9A-Za-z_-]{1,64}$"))]
    pub out_order_no: Option<String>,
}

/// `POST /v1/orders/{id}/profit_sharings/{ps}/returns`.
#[derive(Debug, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnProfitSharing {
    /// Fen; the whole share when absent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>, minimum = 1))]
    pub amount: Option<Int>,
}

/// `POST /v1/members`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateMember {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 32))]
    pub member_no: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 20))]
    pub phone: String,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
}

/// `POST /v1/members/{id}/topups`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopUp {
    /// Fen.
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 1, maximum = 10_000_000_000_i64))]
    pub amount: Int,
}

/// `POST /v1/fee_rates`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetFeeRate {
    /// The channel family the rate applies to.
    #[cfg_attr(feature = "openapi", schema(schema_with = fee_family))]
    pub channel: String,
    /// Basis points (1/100 of a percent).
    #[cfg_attr(feature = "openapi", schema(value_type = i64, minimum = 0, maximum = 10_000))]
    pub rate_bp: Int,
}

/// `POST /v1/webhook_endpoints`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateWebhookEndpoint {
    /// An `https`/`http` URL of a public address.
    pub url: String,
    /// Event types to send; every type when absent.
    #[cfg_attr(feature = "openapi", schema(schema_with = event_types))]
    pub events: Option<Vec<String>>,
}

/// `POST /v1/webhook_endpoints/{id}`: disables or enables the endpoint.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateWebhookEndpoint {
    /// `true`: send the endpoint nothing new (its pending deliveries are failed; resend them after enabling);
    /// `false`: send it events again.
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::typed_body;
    use paygate_domain::Problem;

    fn refused<T: serde::de::DeserializeOwned + fmt::Debug>(body: &str) -> Problem {
        typed_body::<T>(body.as_bytes()).expect_err(body)
    }

    const ORDER: &str = r#""app": "app_1", "merchant_order_no": "m1", "currency": "cny", "subject": "s", "body": "b""#;

    #[test]
    fn money_is_integer_fen_and_errors_name_the_field() {
        for (amount, message) in [
            ("1.5", "amount must be an integer."),
            ("\"100\"", "amount must be an integer."),
            ("18446744073709551615", "amount is too large."),
            ("true", "amount must be an integer."),
        ] {
            let p = refused::<CreateOrder>(&format!(r#"{{{ORDER}, "amount": {amount}}}"#));
            assert_eq!(
                (p.code, p.param.as_deref(), p.message.as_str()),
                ("invalid_parameter", Some("amount"), message)
            );
        }
        let ok: CreateOrder = typed_body(format!(r#"{{{ORDER}, "amount": -3, "extra": 1}}"#).as_bytes()).unwrap();
        assert_eq!(ok.amount, Int(-3), "range is the core's to check; unknown fields are ignored");
        let p = refused::<CreateOrder>(&format!(r#"{{{ORDER}, "amount": 1, "coupon_amount": 0.5}}"#));
        assert_eq!(p.param.as_deref(), Some("coupon_amount"));
    }

    #[test]
    fn missing_null_and_mistyped_fields_are_named() {
        let p = refused::<CreateOrder>(&format!("{{{ORDER}}}"));
        assert_eq!((p.code, p.param.as_deref()), ("missing_parameter", Some("amount")));
        let p = refused::<CreateOrder>(&format!(r#"{{{ORDER}, "amount": 1, "subject": null}}"#));
        assert_eq!((p.code, p.param.as_deref()), ("missing_parameter", Some("subject")));
        let p = refused::<CreateOrder>(&format!(r#"{{{ORDER}, "amount": 1, "uid": 5}}"#));
        assert_eq!((p.param.as_deref(), p.message.as_str()), (Some("uid"), "uid must be a string."));
        let p = refused::<CreateOrder>(&format!(r#"{{{ORDER}, "amount": 1, "profit_sharing": "yes"}}"#));
        assert_eq!(p.param.as_deref(), Some("profit_sharing"));
        let p = refused::<CreateWebhookEndpoint>(r#"{"url": "https://e.com", "events": ["order.succeeded", 1]}"#);
        assert_eq!(p.param.as_deref(), Some("events[1]"));
        let p = refused::<CreateWebhookEndpoint>(r#"{"url": "https://e.com", "events": "order.succeeded"}"#);
        assert_eq!((p.param.as_deref(), p.message.as_str()), (Some("events"), "events must be an array."));
    }

    #[test]
    fn the_body_itself_is_checked_first() {
        for body in ["{", "[1]", "\"x\"", "{\"amount\": 1e400}"] {
            let p = refused::<CreateRefund>(body);
            assert_eq!((p.code, p.param), ("invalid_json", None), "{body}");
        }
        let p = refused::<CreateRefund>(r#"{"amount": 1, "metadata": {"note": "x\u0000"}}"#);
        assert_eq!(p.param.as_deref(), Some("metadata.note"));
        let empty: SandboxPay = typed_body(b"  ").unwrap();
        assert_eq!(empty.result, None);
        let null_metadata: CreateRefund = typed_body(br#"{"metadata": null}"#).unwrap();
        assert!(null_metadata.metadata.is_null());
    }
}
