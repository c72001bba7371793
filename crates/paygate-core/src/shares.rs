//! Profit sharing: reserve in the database first (under the order lock / single writer), then
//! ask the channel, then record its answer — the refund pattern. Returns work the same way.

use crate::{random32, Caller, Paygate};
use paygate_channels::ShareResult;
use paygate_domain::ids::{IdKind, OrderId, ProfitShareId};
use paygate_domain::objects::OrderView;
use paygate_domain::shares::{self, ProfitShare, ShareKind};
use paygate_domain::{validate, Amount, Charge, Order, Problem, ProblemKind};
use paygate_store::{ShareOutcome, ShareRequest, ShareReserved};
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct ShareInput {
    pub kind: ShareKind,
    /// As sent: validated by the domain's receiver rules.
    pub receivers: Value,
    /// The merchant's number for this request; the same number is the same request.
    pub out_order_no: Option<String>,
}

impl Paygate {
    pub async fn share_order(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        input: ShareInput,
    ) -> Result<ProfitShare, Problem> {
        let view = self.order(caller, order_id).await?;
        let order = &view.order;
        let receivers = shares::receivers(input.kind, &input.receivers)?;
        let amount = shares::total(&receivers)?;
        let out_order_no = match input.out_order_no {
            Some(n) => validate::merchant_order_no(&n).map_err(|p| {
                Problem::invalid("out_order_no", p.message.replace("merchant_order_no", "out_order_no"))
            })?,
            None => format!("P{}", crate::random_alnum(31)?),
        };
        let request = ShareRequest {
            id: IdKind::ProfitShare.generate(&random32()?),
            order_id: order.id.clone(),
            kind: input.kind,
            out_order_no,
            receivers,
            amount,
            created: self.now(),
        };
        let share = match self.store.reserve_share(&caller.scope, &request, caller.app.max_share_bps).await? {
            ShareReserved::Existing(share) => return Ok(share),
            ShareReserved::New(share) => share,
        };
        let charge = paid_charge(&view)?;
        let answer = match self.channel_of(charge).await {
            Ok(channel) => channel.share(charge, &share).await,
            Err(e) => Err(e),
        };
        let outcome = match answer {
            Ok(ShareResult::Processing { why }) => {
                // Maybe taken: it stays pending (its amount reserved) until the poller's query settles it.
                tracing::warn!(share = %share.id, %why, "share outcome unknown; left pending for the poller");
                self.schedule_share_poll(&caller.scope, &share, charge).await;
                return Ok(share);
            }
            Ok(ShareResult::Succeeded { channel_order_no }) => ShareOutcome::Succeeded { channel_order_no },
            Ok(ShareResult::Failed { message }) => ShareOutcome::Failed { message },
            Err(problem) => ShareOutcome::Failed { message: problem.message },
        };
        let share = self.store.finish_share(&caller.scope, &share.id, &outcome, self.now()).await?;
        if let ShareOutcome::Failed { message } = outcome {
            return Err(Problem::new(
                ProblemKind::Channel,
                "share_failed",
                format!("The channel refused profit share {}: {message}", share.id),
            ));
        }
        Ok(share)
    }

    /// Ends WeChat multi-sharing (完结分账): what was not shared is released to the merchant.
    pub async fn finish_sharing(&self, caller: &Caller, order_id: &OrderId) -> Result<Order, Problem> {
        let view = self.order(caller, order_id).await?;
        let order = &view.order;
        if !order.profit_sharing {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "profit_sharing_not_enabled",
                format!(
                    "Order {} was not created with profit_sharing: true; there is no WeChat sharing to finish.",
                    order.id
                ),
            ));
        }
        let charge = paid_charge(&view)?;
        self.channel_of(charge).await?.finish_sharing(charge).await?;
        self.store.finish_sharing(&caller.scope, &order.id).await?.ok_or_else(|| Problem::not_found("order", order_id))
    }

    /// Takes (part of) a share back from its receivers (分账回退), so the order can be refunded.
    pub async fn return_share(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        share_id: &ProfitShareId,
        amount: Option<i64>,
    ) -> Result<ProfitShare, Problem> {
        let share = self.share_of_order(caller, order_id, share_id).await?;
        let amount = amount.map(|a| Amount::positive("amount", a)).transpose()?;
        let (share, amount) = self.store.reserve_share_return(&caller.scope, &share.id, amount).await?;
        let view = self.order(caller, order_id).await?;
        let charge = paid_charge(&view)?;
        let returned = match self.channel_of(charge).await {
            Ok(channel) => channel.return_share(charge, &share, amount).await.unwrap_or(false),
            Err(_) => false,
        };
        let share = self.store.finish_share_return(&caller.scope, &share.id, amount, returned, self.now()).await?;
        if !returned {
            return Err(Problem::new(
                ProblemKind::Channel,
                "share_return_failed",
                format!("The channel did not return {} fen of share {}.", amount.fen(), share.id),
            ));
        }
        Ok(share)
    }

    pub async fn shares_of_order(&self, caller: &Caller, order_id: &OrderId) -> Result<Vec<ProfitShare>, Problem> {
        let order = self.order(caller, order_id).await?.order;
        self.store.shares_of_order(&caller.scope, &order.id).await
    }

    pub async fn share_of_order(
        &self,
        caller: &Caller,
        order_id: &OrderId,
        share_id: &ProfitShareId,
    ) -> Result<ProfitShare, Problem> {
        self.store
            .share(&caller.scope, share_id)
            .await?
            .filter(|s| s.order_id == order_id.as_str())
            .ok_or_else(|| Problem::not_found("profit_sharing", share_id))
    }

    pub async fn set_app_max_share(&self, app_id: &str, percent: i64) -> Result<(), Problem> {
        if !(0..=100).contains(&percent) {
            return Err(Problem::invalid("percent", "The maximum share must be between 0 and 100 percent."));
        }
        if !self.store.set_app_max_share(app_id, percent * 100).await? {
            return Err(Problem::not_found("app", app_id));
        }
        self.keys.clear_cache()
    }
}

/// The charge that paid the order (an order is paid by at most one).
fn paid_charge(view: &OrderView) -> Result<&Charge, Problem> {
    view.charges.iter().find(|c| c.status == paygate_domain::ChargeStatus::Succeeded).ok_or_else(|| {
        Problem::new(
            ProblemKind::InvalidRequest,
            "order_not_paid",
            format!("Order {} has no successful payment.", view.order.id),
        )
    })
}
