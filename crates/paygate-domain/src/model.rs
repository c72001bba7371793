//! The objects paygate keeps and the states they move through.
//!
//! Transitions are *decided* here (which from-states allow an action) and *applied* by storage as
//! conditional updates on exactly those from-states, so a concurrent change can never slip between
//! the check and the write.

use crate::{Amount, Currency};
use serde_json::Value;

/// Test or live. A key of one mode never sees objects of the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn is_live(self) -> bool {
        self == Mode::Live
    }
    /// `test` or `live`, as operators read it.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
    pub fn from_live(live: bool) -> Mode {
        if live {
            Mode::Live
        } else {
            Mode::Test
        }
    }
}

/// Who is asking: every storage lookup is filtered by this, so another app's object is
/// indistinguishable from one that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub app_id: String,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    pub created: i64,
    /// PEM of the merchant's RSA public key; when set, requests must be signed.
    pub public_key_pem: Option<String>,
    pub late_payment: LatePayment,
    /// The most profit sharing may take of what was paid (minus refunds), in basis points.
    pub max_share_bps: i64,
}

/// What paygate does with money that arrives after an order was closed or canceled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LatePayment {
    /// Refund it automatically (the default).
    #[default]
    Refund,
    /// Keep it for the merchant to review and refund by hand.
    Hold,
}

impl LatePayment {
    pub fn as_str(self) -> &'static str {
        match self {
            LatePayment::Refund => "refund",
            LatePayment::Hold => "hold",
        }
    }
    pub fn parse(s: &str) -> Option<LatePayment> {
        match s {
            "refund" => Some(LatePayment::Refund),
            "hold" => Some(LatePayment::Hold),
            _ => None,
        }
    }
}

/// Rendered as its snake_case name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Paid,
    Canceled,
    Refunded,
    /// Expired unpaid and closed at the channel.
    Closed,
    /// Money arrived after the order was closed or canceled: never a normal success.
    PaidAfterClose,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "created",
            OrderStatus::Paid => "paid",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::Closed => "closed",
            OrderStatus::PaidAfterClose => "paid_after_close",
        }
    }
    pub fn parse(s: &str) -> Option<OrderStatus> {
        Some(match s {
            "created" => OrderStatus::Created,
            "paid" => OrderStatus::Paid,
            "canceled" => OrderStatus::Canceled,
            "refunded" => OrderStatus::Refunded,
            "closed" => OrderStatus::Closed,
            "paid_after_close" => OrderStatus::PaidAfterClose,
            _ => return None,
        })
    }
    /// Only an unpaid order can be canceled or paid.
    pub fn accepts_payment(self) -> bool {
        self == OrderStatus::Created
    }
    /// Money can go back only from an order that took money.
    pub fn accepts_refund(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Refunded | OrderStatus::PaidAfterClose)
    }
    /// A normal, successful sale (what a merchant may fulfil). Late money is not one.
    pub fn is_sale(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Refunded)
    }
    /// Closed or canceled before any money arrived.
    pub fn is_ended_unpaid(self) -> bool {
        matches!(self, OrderStatus::Canceled | OrderStatus::Closed)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: String,
    pub app_id: String,
    pub mode: Mode,
    pub created: i64,
    pub status: OrderStatus,
    pub uid: Option<String>,
    pub merchant_order_no: String,
    pub amount: Amount,
    pub coupon_amount: Amount,
    pub actual_amount: Amount,
    pub amount_paid: Amount,
    /// Succeeded refunds only.
    pub amount_refunded: Amount,
    /// Pending + succeeded refunds: what is no longer refundable. `amount_paid - refund_reserved`
    /// is the refundable remainder; storage keeps `refund_reserved <= amount_paid` in one statement.
    pub refund_reserved: Amount,
    /// True once any refund was requested, whatever its outcome (seed 004's `refunded` filter).
    pub has_refunds: bool,
    pub currency: Currency,
    pub subject: String,
    pub body: String,
    pub client_ip: String,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub receipt_app: String,
    pub service_app: String,
    /// Created for WeChat profit sharing (the channel then freezes the funds for sharing).
    pub profit_sharing: bool,
    /// Pending + succeeded profit shares not yet returned. A refund needs this to be zero.
    pub share_reserved: Amount,
    /// No more shares: a WeChat single share ended it, or the merchant finished it.
    pub sharing_finished: bool,
}

impl Order {
    pub fn refundable(&self) -> Amount {
        self.amount_paid.checked_sub(self.refund_reserved).unwrap_or(Amount::ZERO)
    }
    pub fn is_paid(&self) -> bool {
        self.status.is_sale()
    }
}

/// Rendered as its snake_case name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Pending,
    Succeeded,
    Failed,
    /// Superseded by a newer charge or by cancelation of the order; closed at the channel.
    Closed,
}

impl ChargeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::Pending => "pending",
            ChargeStatus::Succeeded => "succeeded",
            ChargeStatus::Failed => "failed",
            ChargeStatus::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<ChargeStatus> {
        Some(match s {
            "pending" => ChargeStatus::Pending,
            "succeeded" => ChargeStatus::Succeeded,
            "failed" => ChargeStatus::Failed,
            "closed" => ChargeStatus::Closed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
    pub order_id: String,
    pub app_id: String,
    pub mode: Mode,
    pub created: i64,
    pub status: ChargeStatus,
    pub channel: String,
    /// The number the channel knows this payment by (sent to it as out_trade_no).
    pub channel_order_no: String,
    pub amount: Amount,
    pub amount_refunded: Amount,
    pub currency: Currency,
    pub client_ip: String,
    pub subject: String,
    pub body: String,
    pub extra: Value,
    pub credential: Value,
    pub time_paid: Option<i64>,
    pub time_expire: i64,
    pub transaction_no: Option<String>,
    pub failure_code: Option<String>,
    pub failure_msg: Option<String>,
    pub metadata: Value,
    pub description: Option<String>,
    /// What the channel reported when the payment succeeded (WeChat's payment notification).
    pub notification: Option<Value>,
    /// The settlement of a succeeded charge: fee, subsidy, discounts ([`crate::pos::Settlement`]).
    pub settlement: Option<Value>,
    /// The member whose wallet paid (balance payments).
    pub member_id: Option<i64>,
    /// The merchant's number of the order this charge pays (its `merchant_order_no`): Ping++'s
    /// `order_no` of a charge.
    pub order_no: String,
    /// Reversed (撤销) through `POST /v1/charges/{id}/reverse`: closed unpaid, or refunded in full.
    pub reversed: bool,
}

/// Rendered as its snake_case name (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Succeeded,
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<RefundStatus> {
        Some(match s {
            "pending" => RefundStatus::Pending,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub order_id: String,
    pub charge_id: String,
    pub app_id: String,
    pub mode: Mode,
    pub created: i64,
    pub status: RefundStatus,
    pub amount: Amount,
    /// The refund number sent to the channel (out_refund_no): retries reuse it.
    pub refund_no: String,
    pub description: String,
    pub metadata: Value,
    pub time_succeed: Option<i64>,
    pub transaction_no: Option<String>,
    pub failure_code: Option<String>,
    pub failure_msg: Option<String>,
}

/// Every Ping++ channel name the sandbox serves in test mode.
pub const PINGPP_CHANNELS: &[&str] = &[
    "alipay",
    "alipay_wap",
    "alipay_pc_direct",
    "alipay_qr",
    "alipay_scan",
    "alipay_lite",
    "wx",
    "wx_pub",
    "wx_pub_qr",
    "wx_wap",
    "wx_lite",
    "wx_pub_scan",
    "upacp",
    "upacp_wap",
    "upacp_pc",
    "applepay_upacp",
    "cp_b2b",
    "qpay",
    "qpay_pub",
    "jdpay_wap",
    "cmb_wallet",
    "bfb_wap",
    "yeepay_wap",
    "isv_qr",
    "isv_scan",
    "isv_wap",
    "isv_lite",
    "ccb_pay",
    "ccb_qr",
    "cmpay",
    "coolcredit",
    "cb_alipay",
    "cb_wx",
    "cb_wx_pub",
    "cb_wx_pub_qr",
    "cb_wx_pub_scan",
    "paypal",
    "balance",
];

/// How much a refund request takes, decided against the order as it is *under the row lock or
/// single writer*: storage calls this inside its transaction and then applies the result with a
/// conditional update that re-checks the same bound.
pub fn plan_refund(
    order: &Order,
    charge: Option<&Charge>,
    requested: Option<Amount>,
) -> Result<Amount, crate::Problem> {
    use crate::Problem;
    if !order.status.accepts_refund() {
        return Err(Problem::new(
            crate::ProblemKind::InvalidRequest,
            "order_not_paid",
            format!("Order {} has not been paid, so it cannot be refunded.", order.id),
        ));
    }
    if let Some(charge) = charge {
        if charge.status != ChargeStatus::Succeeded {
            return Err(Problem::new(
                crate::ProblemKind::InvalidRequest,
                "charge_not_paid",
                format!("Charge {} has not succeeded, so it cannot be refunded.", charge.id),
            ));
        }
    }
    if order.share_reserved > Amount::ZERO {
        return Err(Problem::new(
            crate::ProblemKind::InvalidRequest,
            "profit_shares_unreturned",
            format!(
                "Order {} has {} fen shared with profit-sharing receivers; \
                 return the shares (分账回退) first, then refund.",
                order.id,
                order.share_reserved.fen()
            ),
        ));
    }
    let refundable = order.refundable();
    if refundable == Amount::ZERO {
        return Err(Problem::new(
            crate::ProblemKind::InvalidRequest,
            "nothing_to_refund",
            format!("Order {} has nothing left to refund.", order.id),
        )
        .with_param("amount"));
    }
    match requested {
        None => Ok(refundable),
        Some(amount) if amount > refundable => Err(Problem::new(
            crate::ProblemKind::InvalidRequest,
            "refund_exceeds_refundable",
            format!(
                "Refund amount {} exceeds the {} fen still refundable on order {}.",
                amount.fen(),
                refundable.fen(),
                order.id
            ),
        )
        .with_param("amount")),
        Some(amount) => Ok(amount),
    }
}

/// Whether a new charge may be opened on `order` at `now`.
pub fn check_payable(order: &Order, now: i64) -> Result<(), crate::Problem> {
    use crate::{Problem, ProblemKind};
    if !order.status.accepts_payment() {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "order_not_payable",
            format!("Order {} is {} and cannot be paid.", order.id, order.status.as_str()),
        ));
    }
    if order.time_expire <= now {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "order_expired",
            format!("Order {} expired at {} and cannot be paid.", order.id, order.time_expire),
        ));
    }
    Ok(())
}

/// What a channel's success or failure does to a charge and its order, decided under the order
/// lock / single writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleDecision {
    /// The charge succeeded and pays the order normally.
    Paid,
    /// The charge succeeded after its order was closed or canceled: money to return or review.
    PaidAfterClose,
    /// The charge failed; the order stays payable.
    Failed,
    /// Nothing to change (already settled, or a failure report for a closed charge).
    NotPending,
}

pub fn plan_settlement(order: &Order, charge: &Charge, succeeded: bool) -> Result<SettleDecision, crate::Problem> {
    use crate::{Problem, ProblemKind};
    match (charge.status, succeeded) {
        (ChargeStatus::Pending, false) => Ok(SettleDecision::Failed),
        (ChargeStatus::Pending | ChargeStatus::Closed, true) => match order.status {
            OrderStatus::Created => Ok(SettleDecision::Paid),
            s if s.is_ended_unpaid() => Ok(SettleDecision::PaidAfterClose),
            _ => Err(Problem::new(
                ProblemKind::Conflict,
                "order_already_paid",
                format!(
                    "Order {} was already paid by another charge; charge {} cannot also pay it.",
                    order.id, charge.id
                ),
            )),
        },
        _ => Ok(SettleDecision::NotPending),
    }
}
