//! Refunds: reserve in the database first, then ask the channel, then record its answer.
//! Two refunds can never both pass the reservation for the same fen.

use crate::{random32, Caller, Paygate};
use paygate_channels::RefundResult;
use paygate_domain::ids::{ChargeId, IdKind, OrderId, RefundId};
use paygate_domain::paging::Page;
use paygate_domain::{validate, Amount, Problem, Refund};
use paygate_store::console::AuditEntry;
use paygate_store::{RefundOutcome, RefundRequest};
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct RefundInput {
    /// `None`: everything still refundable.
    pub amount: Option<i64>,
    pub description: Option<String>,
    pub metadata: Value,
}

impl Paygate {
    /// Refunds an order (its successful charge) or, with `charge_id`, that charge.
    pub async fn refund(
        &self,
        caller: &Caller,
        order_id: Option<&OrderId>,
        charge_id: Option<&ChargeId>,
        input: RefundInput,
    ) -> Result<Refund, Problem> {
        self.refund_audited(caller, order_id, charge_id, input, None).await
    }

    /// [`Paygate::refund`], with `audit` (the console's) written by the reservation's transaction.
    pub(crate) async fn refund_audited(
        &self,
        caller: &Caller,
        order_id: Option<&OrderId>,
        charge_id: Option<&ChargeId>,
        input: RefundInput,
        audit: Option<AuditEntry>,
    ) -> Result<Refund, Problem> {
        let order_id = match (order_id, charge_id) {
            (Some(o), _) => o.to_string(),
            (None, Some(c)) => self.charge(caller, c, None).await?.order_id,
            (None, None) => return Err(Problem::missing("charge")),
        };
        let amount = input.amount.map(|a| Amount::positive("amount", a)).transpose()?;
        let description = match input.description.as_deref() {
            Some(d) => validate::text("description", d, 255)?,
            None => String::new(),
        };
        let metadata = validate::metadata(&input.metadata)?.unwrap_or(Value::Object(Default::default()));
        let random = random32()?;
        let request = RefundRequest {
            id: IdKind::Refund.generate(&random),
            refund_no: format!("rf{}", &IdKind::Refund.generate(&random32()?)[3..]),
            order_id,
            charge_id: charge_id.map(ChargeId::to_string),
            amount,
            description,
            metadata,
            created: self.now(),
        };
        let refund = match &audit {
            Some(audit) => self.store.reserve_refund_audited(&caller.scope, &request, audit).await?,
            None => self.store.reserve_refund(&caller.scope, &request).await?,
        };
        let charge = self
            .store
            .charge(&caller.scope, &refund.charge_id)
            .await?
            .ok_or_else(|| Problem::internal("refunded charge vanished"))?;
        let answer = match self.channel_of(&charge).await {
            Ok(channel) => channel.refund(&charge, &refund).await,
            Err(e) => Err(e),
        };
        let outcome = match answer {
            Ok(RefundResult::Processing) => {
                self.schedule_refund_poll(&caller.scope, &refund, &charge).await;
                return Ok(refund);
            }
            Ok(RefundResult::Succeeded { transaction_no }) => {
                RefundOutcome::Succeeded { transaction_no, time_succeed: self.now() }
            }
            Ok(RefundResult::Failed { code, message }) => RefundOutcome::Failed { code, message },
            Err(problem) => RefundOutcome::Failed { code: "channel_error".into(), message: problem.message },
        };
        self.store.finish_refund(&caller.scope, &refund.id, &outcome).await
    }

    pub async fn refunds(
        &self,
        caller: &Caller,
        order_id: Option<&OrderId>,
        charge_id: Option<&ChargeId>,
        limit: i64,
    ) -> Result<Page<Refund>, Problem> {
        if let Some(o) = order_id {
            self.order(caller, o).await?;
        }
        if let Some(c) = charge_id {
            self.charge(caller, c, None).await?;
        }
        self.store.refunds(&caller.scope, order_id.map(OrderId::as_str), charge_id.map(ChargeId::as_str), limit).await
    }

    /// A refund by id, only within the given order or charge.
    pub async fn refund_by_id(
        &self,
        caller: &Caller,
        id: &RefundId,
        order_id: Option<&OrderId>,
        charge_id: Option<&ChargeId>,
    ) -> Result<Refund, Problem> {
        self.store
            .refund(&caller.scope, id)
            .await?
            .filter(|r| {
                order_id.is_none_or(|o| r.order_id == o.as_str()) && charge_id.is_none_or(|c| r.charge_id == c.as_str())
            })
            .ok_or_else(|| Problem::not_found("refund", id))
    }
}
