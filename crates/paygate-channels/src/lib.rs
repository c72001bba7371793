//! Payment channels. A channel turns a charge into what the payer's client needs (the
//! credential), closes charges, and moves money back. It never touches storage: the core records
//! what a channel answered.

mod sandbox;

pub use sandbox::Sandbox;

use async_trait::async_trait;
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
    Succeeded { transaction_no: Option<String> },
    Failed { code: String, message: String },
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
    pub fn resolve(&self, mode: Mode, channel: &str) -> Result<Arc<dyn Channel>, Problem> {
        if !PINGPP_CHANNELS.contains(&channel) {
            return Err(Problem::invalid("channel", format!("Unknown channel '{channel}'. Known channels: {}.", PINGPP_CHANNELS.join(", "))));
        }
        match mode {
            Mode::Test => Ok(self.sandbox.clone()),
            Mode::Live => Err(Problem::new(
                ProblemKind::Channel,
                "channel_not_configured",
                format!("Live mode has no payment channel configured for '{channel}'; use a test key to pay through the sandbox."),
            )
            .with_param("channel")),
        }
    }
}
