//! Events and the webhook retry schedule. Pure: callers pass the clock and the jitter.

use serde::Serialize;
use serde_json::Value;

pub const ORDER_SUCCEEDED: &str = "order.succeeded";
pub const CHARGE_SUCCEEDED: &str = "charge.succeeded";
pub const ORDER_CANCELED: &str = "order.canceled";
pub const ORDER_CLOSED: &str = "order.closed";
pub const ORDER_PAID_AFTER_CLOSE: &str = "order.paid_after_close";
pub const REFUND_SUCCEEDED: &str = "refund.succeeded";
pub const REFUND_FAILED: &str = "refund.failed";
pub const PROFIT_SHARING_SUCCEEDED: &str = "profit_sharing.succeeded";
pub const PROFIT_SHARING_FAILED: &str = "profit_sharing.failed";
pub const PROFIT_SHARING_RETURNED: &str = "profit_sharing.returned";

pub const EVENT_TYPES: &[&str] = &[
    ORDER_SUCCEEDED,
    CHARGE_SUCCEEDED,
    ORDER_CANCELED,
    ORDER_CLOSED,
    ORDER_PAID_AFTER_CLOSE,
    REFUND_SUCCEEDED,
    REFUND_FAILED,
    PROFIT_SHARING_SUCCEEDED,
    PROFIT_SHARING_FAILED,
    PROFIT_SHARING_RETURNED,
    crate::reconcile::RECONCILIATION_COMPLETED,
    crate::reconcile::RECONCILIATION_DISCREPANCY,
];

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub app_id: String,
    pub mode: crate::Mode,
    pub created: i64,
    pub kind: String,
    /// The object as it was when the event happened, in its native shape.
    pub object: Value,
    /// Deliveries not yet delivered or given up.
    pub pending_webhooks: i64,
}

/// An event as the API shows it and webhooks deliver it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Event))]
pub struct EventObject {
    #[cfg_attr(feature = "openapi", schema(pattern = "^evt_[0-9A-Za-z]{24}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "event"))]
    pub object: &'static str,
    /// One of the event types, e.g. `order.succeeded`.
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub pending_webhooks: i64,
    /// Always null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub request: Option<Value>,
    pub data: EventData,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventData {
    /// The object as it was when the event happened (an order, charge, refund or profit share).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub object: Value,
}

impl Event {
    pub fn to_object(&self) -> EventObject {
        EventObject {
            id: self.id.clone(),
            object: "event",
            kind: self.kind.clone(),
            created: self.created,
            livemode: self.mode.is_live(),
            pending_webhooks: self.pending_webhooks,
            request: None,
            data: EventData { object: self.object.clone() },
        }
    }

    pub fn render(&self) -> Value {
        crate::objects::to_value(&self.to_object())
    }
}

/// Seconds to wait after attempt 1, 2, … 15 fails (DaxPay's ~24 h schedule): 16 attempts in all.
pub const RETRY_SCHEDULE: [i64; 15] =
    [15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600];
pub const MAX_ATTEMPTS: i64 = RETRY_SCHEDULE.len() as i64 + 1;
/// A receiver's Retry-After is honoured up to this long.
pub const MAX_RETRY_AFTER: i64 = 6 * 3600;

/// When to try again after `attempts_made` failed attempts, or `None` when it is time to give up.
/// `jitter` (0..=255) adds up to 10 % so that retries of many events spread out; a receiver's
/// `Retry-After` moves the next attempt later, never earlier.
pub fn next_attempt_delay(attempts_made: i64, retry_after: Option<i64>, jitter: u8) -> Option<i64> {
    let idx = usize::try_from(attempts_made.checked_sub(1)?).ok()?;
    let base = *RETRY_SCHEDULE.get(idx)?;
    let delay = base + base * i64::from(jitter) / 2550;
    Some(delay.max(retry_after.unwrap_or(0).clamp(0, MAX_RETRY_AFTER)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_sixteen_attempts_over_about_a_day() {
        let total: i64 = RETRY_SCHEDULE.iter().sum();
        assert!((20 * 3600..=26 * 3600).contains(&total), "{total}");
        assert_eq!(next_attempt_delay(1, None, 0), Some(15));
        assert_eq!(next_attempt_delay(1, None, 255), Some(16));
        assert_eq!(next_attempt_delay(15, None, 0), Some(21600));
        assert_eq!(next_attempt_delay(16, None, 0), None);
        assert_eq!(next_attempt_delay(0, None, 0), None);
        assert_eq!(next_attempt_delay(1, Some(120), 0), Some(120));
        assert_eq!(next_attempt_delay(4, Some(5), 0), Some(180));
        assert_eq!(next_attempt_delay(1, Some(99_999_999), 0), Some(MAX_RETRY_AFTER));
    }
}
