//! The cashier's scanned WeChat codes through WeChat Pay (MICROPAY, API v2) when the app has a WeChat account in
//! that mode: the payment is recorded first (intent), then the code is charged. A paid answer is recorded through
//! the notification path; USERPAYING (and any answer that says nothing certain) stays PAYING, on the poller's
//! schedule and for the cashier's `is_fresh` query; a refusal (invalid code, no balance …) fails the payment.

use crate::Paygate;
use paygate_channels::wechat_pay::{Micropaid, WechatPay};
use paygate_domain::{Charge, Order, Problem};
use paygate_store::{ChargeOutcome, PosMeta, PosRecord, PosRef};
use serde_json::json;
use std::sync::Arc;

/// The Ping++ channel name of a scanned WeChat code.
pub(crate) const CODE_CHANNEL: &str = "wx_pub_scan";

impl Paygate {
    /// Records the payment, charges `auth_code` at WeChat, and answers the record as it then stands.
    pub(crate) async fn pay_code_at_wechat(
        &self,
        caller: &crate::Caller,
        adapter: Arc<WechatPay>,
        order: Order,
        mut charge: Charge,
        meta: PosMeta,
        auth_code: &str,
    ) -> Result<PosRecord, Problem> {
        let scope = &caller.scope;
        // No sandbox_outcome: that is how a WeChat code payment is told from a sandbox one later.
        charge.extra = json!({});
        let pay_no = meta.pay_no.clone();
        self.store.insert_pos_payment(&order, &charge, &meta).await?;
        match adapter.micropay(&charge, auth_code).await {
            Ok(Micropaid::Paid(trade)) => {
                if let Err(problem) = self.record_trade(scope, &charge, &trade).await {
                    // Paid at WeChat but not recorded now: the poller asks again and records it.
                    tracing::error!(charge = %charge.id, %problem, "a paid payment code was not recorded");
                    self.schedule_charge_poll(scope, &charge).await;
                }
            }
            Ok(Micropaid::Pending { why }) => {
                tracing::info!(charge = %charge.id, why, "payment code pending at WeChat Pay; the poller asks");
                self.schedule_charge_poll(scope, &charge).await;
            }
            Ok(Micropaid::Refused { code, message }) => {
                let failed = ChargeOutcome::Failed { code: format!("wechat_{}", code.to_ascii_lowercase()), message };
                self.store.settle_charge(scope, &charge.id, &failed).await?;
            }
            Err(problem) => {
                let failed = ChargeOutcome::Failed { code: problem.code.to_string(), message: problem.message.clone() };
                self.store.settle_charge(scope, &charge.id, &failed).await?;
                return Err(problem);
            }
        }
        self.store.pos_record(scope, &PosRef::PayNo(pay_no)).await?.ok_or_else(|| Problem::internal("record vanished"))
    }
}
