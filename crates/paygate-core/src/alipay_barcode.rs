//! The cashier's scanned Alipay codes through Alipay (`alipay.trade.pay`) when the app has an Alipay account in
//! that mode: the payment is recorded first (intent), then the code is charged. A paid answer is recorded through
//! the notification path (the shared settle, so a later notification changes nothing); WAIT (10003) or no answer
//! stays PAYING, on the poller's schedule, until a query (the poller's, or `is_fresh`) or Alipay's notification
//! settles it; a refusal fails the payment. One still unresolved [`CODE_WAIT_SECONDS`] after it was recorded is
//! canceled (`alipay.trade.cancel`, after a last query: Alipay's pattern), so a payer cannot confirm it later.

use crate::alipay_notify::ALIPAY;
use crate::channel_notify::Paid;
use crate::channel_poller::{refused, Synced};
use crate::Paygate;
use paygate_channels::alipay_pay::{AlipayPay, Canceled, CodePaid};
use paygate_domain::{Charge, ChargeStatus, Order, Problem, Scope};
use paygate_store::{ChargeOutcome, PosMeta, PosRecord, PosRef};
use serde_json::json;
use std::sync::Arc;

/// The Ping++ channel name of a scanned Alipay code.
pub(crate) const CODE_CHANNEL: &str = "alipay_scan";

/// How long a code payment may stay unresolved before it is canceled (Alipay: query for about 30 s, then cancel).
pub(crate) const CODE_WAIT_SECONDS: i64 = 30;

/// Whether a pending code payment at Alipay has waited long enough to be canceled.
pub(crate) fn code_wait_over(charge: &Charge, now: i64) -> bool {
    paid_by_code_at_alipay(charge)
        && charge.status == ChargeStatus::Pending
        && now.saturating_sub(charge.created) >= CODE_WAIT_SECONDS
}

/// Whether a charge is a scanned Alipay code charged at Alipay (the sandbox's carry `sandbox_outcome`).
pub(crate) fn paid_by_code_at_alipay(charge: &Charge) -> bool {
    charge.channel == CODE_CHANNEL && charge.extra.get("sandbox_outcome").is_none()
}

impl Paygate {
    /// Records the payment, charges `auth_code` at Alipay, and answers the record as it then stands.
    pub(crate) async fn pay_code_at_alipay(
        &self,
        caller: &crate::Caller,
        adapter: Arc<AlipayPay>,
        order: Order,
        mut charge: Charge,
        meta: PosMeta,
        auth_code: &str,
    ) -> Result<PosRecord, Problem> {
        let scope = &caller.scope;
        // No sandbox_outcome: that is how an Alipay code payment is told from a sandbox one later.
        charge.extra = json!({});
        let pay_no = meta.pay_no.clone();
        self.store.insert_pos_payment(&order, &charge, &meta).await?;
        match adapter.pay_code(&charge, auth_code).await {
            Ok(result) => match self.record_alipay_trade(scope, &charge, result).await {
                Ok(Synced::Pending) => self.schedule_charge_poll(scope, &charge).await,
                Ok(_) => {}
                Err(problem) => {
                    // Alipay's answer not recorded now: the poller asks again and records it.
                    tracing::error!(charge = %charge.id, %problem, "an Alipay code payment's answer was not recorded");
                    self.schedule_charge_poll(scope, &charge).await;
                }
            },
            Err(problem) => {
                let failed = ChargeOutcome::Failed { code: problem.code.to_string(), message: problem.message.clone() };
                self.store.settle_charge(scope, &charge.id, &failed).await?;
                return Err(problem);
            }
        }
        self.store.pos_record(scope, &PosRef::PayNo(pay_no)).await?.ok_or_else(|| Problem::internal("record vanished"))
    }

    /// Cancels a code payment still unresolved past the wait. Closed (or refunded in full, when it was paid
    /// meanwhile) fails the charge; no answer or `retry_flag` Y leaves it pending: the next round queries first.
    pub(crate) async fn cancel_alipay_code(
        &self,
        scope: &Scope,
        charge: &Charge,
        adapter: &AlipayPay,
    ) -> Result<Synced, Problem> {
        let message = match adapter.cancel_code(charge).await? {
            Canceled::Retry { why } => {
                tracing::info!(charge = %charge.id, why, "Alipay cancel not done yet");
                return Ok(Synced::Pending);
            }
            Canceled::Closed => {
                format!("The payer did not confirm within {CODE_WAIT_SECONDS} s; the payment was canceled at Alipay.")
            }
            Canceled::Refunded => "Paid while being canceled: Alipay refunded it in full and closed it.".to_string(),
        };
        let failed = ChargeOutcome::Failed { code: "alipay_trade_canceled".into(), message };
        self.store.settle_charge(scope, &charge.id, &failed).await?;
        Ok(Synced::Final)
    }

    /// `is_fresh` for a pending Alipay code payment: asks Alipay and records what it says. `false` when the
    /// charge is not one (the caller goes on as before).
    pub(crate) async fn refresh_alipay_code(&self, scope: &Scope, charge: &Charge) -> Result<bool, Problem> {
        if !paid_by_code_at_alipay(charge) || charge.status != ChargeStatus::Pending {
            return Ok(false);
        }
        match self.sync_alipay_charge(scope, charge, false).await {
            Ok(Synced::NotPolled) => return Ok(false),
            Ok(_) => {}
            // Not known now: the payment is answered as recorded (PAYING); the poller asks again.
            Err(problem) => tracing::warn!(charge = %charge.id, %problem, "is_fresh: Alipay query failed"),
        }
        Ok(true)
    }

    /// Records what Alipay said about `charge`'s trade (a payment code's answer or a trade query's) as its
    /// notification would be: paid settles it, refused (or TRADE_CLOSED) fails it. A closed charge is only ever
    /// moved by money (paid_after_close).
    pub(crate) async fn record_alipay_trade(
        &self,
        scope: &Scope,
        charge: &Charge,
        result: CodePaid,
    ) -> Result<Synced, Problem> {
        match result {
            CodePaid::Paid { trade_no, total, answer } => {
                let paid = Paid {
                    out_trade_no: &charge.channel_order_no,
                    transaction_id: &trade_no,
                    total,
                    notification: answer,
                };
                self.settle_notified(scope, ALIPAY, &paid).await.map_err(|r| refused("Alipay", r))?;
                Ok(Synced::Final)
            }
            _ if charge.status == ChargeStatus::Closed => Ok(Synced::Final),
            CodePaid::Pending { why } => {
                tracing::info!(charge = %charge.id, why, "payment pending at Alipay");
                Ok(Synced::Pending)
            }
            CodePaid::Refused { code, message } => {
                let failed = ChargeOutcome::Failed { code, message };
                self.store.settle_charge(scope, &charge.id, &failed).await?;
                Ok(Synced::Final)
            }
        }
    }
}
