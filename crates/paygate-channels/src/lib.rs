//! Payment channels. A channel turns a charge into what the payer's client needs (the
//! credential), closes charges, and moves money back. It never touches storage: the core records
//! what a channel answered.

pub mod alipay;
pub mod alipay_pay;
pub mod bills;
pub mod net;
pub mod rsa;
mod sandbox;
pub mod wechat;
pub mod wechat_pay;

pub use sandbox::{Sandbox, SandboxWechat, HOLD_SECONDS};

use async_trait::async_trait;
use paygate_domain::shares::ProfitShare;
use paygate_domain::{Amount, Charge, Mode, Problem, ProblemKind, Refund, PINGPP_CHANNELS};
use serde_json::Value;
use std::sync::Arc;

/// What a channel needs to open a payment.
#[derive(Debug, Clone)]
pub struct PaymentRequest<'a> {
    pub charge_id: &'a str,
    pub channel: &'a str,
    pub channel_order_no: &'a str,
    pub amount: Amount,
    pub subject: &'a str,
    pub body: &'a str,
    pub client_ip: &'a str,
    pub extra: &'a Value,
    /// This server's public base URL, for pages the payer opens.
    pub base_url: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundResult {
    Succeeded {
        transaction_no: Option<String>,
    },
    Failed {
        code: String,
        message: String,
    },
    /// Accepted; the outcome arrives later (notification or query).
    Processing,
}

#[async_trait]
pub trait Channel: Send + Sync {
    /// Opens the payment at the channel and returns the credential object.
    async fn open(&self, request: &PaymentRequest<'_>) -> Result<Value, Problem>;
    /// Closes an unpaid payment so it can no longer succeed at the channel.
    async fn close(&self, charge: &Charge) -> Result<(), Problem>;
    async fn refund(&self, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem>;
    /// Splits part of a paid charge to receivers; answers the channel's number for the split.
    async fn share(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem>;
    /// Ends sharing of a charge: the channel releases what is still frozen to the merchant.
    async fn finish_sharing(&self, charge: &Charge) -> Result<(), Problem>;
    /// Takes `amount` of a share back from its receivers (分账回退).
    async fn return_share(&self, charge: &Charge, share: &ProfitShare, amount: Amount) -> Result<bool, Problem>;
    /// What the channel notifies when a payment succeeds, kept with the charge (WeChat's
    /// notification for WeChat channels; `None` when the channel sends nothing worth keeping).
    fn payment_notification(&self, charge: &Charge, transaction_no: &str, time_paid: i64) -> Option<Value>;
    /// Asks the channel where a pending payment stands (a cashier's `is_fresh` query).
    async fn query(&self, charge: &Charge, now: i64) -> Result<PaymentState, Problem>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentState {
    Paid,
    /// The payer has not finished (entering a password, USERPAYING).
    Pending,
    Failed {
        code: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareResult {
    Succeeded {
        channel_order_no: String,
    },
    Failed {
        message: String,
    },
    /// Sent, but no answer came (or one that says nothing yet): the channel may have taken it. The share stays
    /// pending and is resolved by asking the channel later, never by guessing.
    Processing {
        why: String,
    },
}

/// Picks the channel that serves a Ping++ channel name in a mode.
pub struct Channels {
    sandbox: Arc<Sandbox>,
}

impl Default for Channels {
    fn default() -> Self {
        Channels { sandbox: Arc::new(Sandbox) }
    }
}

impl Channels {
    pub fn sandbox(&self) -> Arc<Sandbox> {
        self.sandbox.clone()
    }

    pub fn resolve(&self, mode: Mode, channel: &str) -> Result<Arc<dyn Channel>, Problem> {
        if !PINGPP_CHANNELS.contains(&channel) {
            return Err(Problem::invalid(
                "channel",
                format!("Unknown channel '{channel}'. Known channels: {}.", PINGPP_CHANNELS.join(", ")),
            ));
        }
        match mode {
            Mode::Test => Ok(self.sandbox.clone()),
            Mode::Live => Err(Problem::new(
                ProblemKind::Channel,
                "channel_not_configured",
                format!(
                    "Live mode has no payment channel configured for '{channel}'; \
                     use a test key to pay through the sandbox."
                ),
            )
            .with_param("channel")),
        }
    }
}
