//! Completing sandbox payments: what a payer pressing "pay" or "fail" does in test mode.

use crate::{Caller, Pass, Paygate};
use paygate_channels::Channel;
use paygate_domain::ids::OrderId;
use paygate_domain::{Charge, Order, Problem, ProblemKind, Scope};
use paygate_store::console::AuditEntry;
use paygate_store::{ChargeOutcome, SettledCharge};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxResult {
    Success,
    Fail,
}

impl SandboxResult {
    pub fn parse(value: &str) -> Result<SandboxResult, Problem> {
        match value {
            "success" => Ok(SandboxResult::Success),
            "fail" => Ok(SandboxResult::Fail),
            other => Err(Problem::invalid("result", format!("result must be 'success' or 'fail', got '{other}'."))),
        }
    }
}

impl Paygate {
    /// Completes a test-mode charge of the caller's app, found by charge id or any number a
    /// face shows for it (channel order number, transaction number).
    pub async fn sandbox_pay(
        &self,
        caller: &Caller,
        reference: &str,
        result: SandboxResult,
    ) -> Result<(Charge, Order), Problem> {
        self.sandbox_pay_audited(caller, reference, result, None).await
    }

    /// With the console's `audit` entry, written by the settlement's own transaction (only when it settles).
    pub(crate) async fn sandbox_pay_audited(
        &self,
        caller: &Caller,
        reference: &str,
        result: SandboxResult,
        audit: Option<&AuditEntry>,
    ) -> Result<(Charge, Order), Problem> {
        if caller.scope.mode.is_live() {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "sandbox_test_mode_only",
                "The sandbox completes test-mode charges only; use a test secret key.",
            ));
        }
        let charge = self
            .store
            .find_charge(&caller.scope, reference)
            .await?
            .ok_or_else(|| Problem::not_found("charge", reference))?;
        self.settle_sandbox_audited(&caller.scope, &charge, result, audit).await
    }

    /// The operator's `paygate sandbox pay`: any app's test-mode charge.
    pub async fn sandbox_pay_any(&self, reference: &str, result: SandboxResult) -> Result<(Charge, Order), Problem> {
        let charge = self
            .store
            .find_test_charge(reference)
            .await?
            .ok_or_else(|| Problem::not_found("test-mode charge", reference))?;
        let scope = Scope { app_id: charge.app_id.clone(), mode: charge.mode };
        self.settle_sandbox(&scope, &charge, result).await
    }

    pub(crate) async fn settle_sandbox(
        &self,
        scope: &Scope,
        charge: &Charge,
        result: SandboxResult,
    ) -> Result<(Charge, Order), Problem> {
        self.settle_sandbox_audited(scope, charge, result, None).await
    }

    async fn settle_sandbox_audited(
        &self,
        scope: &Scope,
        charge: &Charge,
        result: SandboxResult,
        audit: Option<&AuditEntry>,
    ) -> Result<(Charge, Order), Problem> {
        let outcome = match result {
            SandboxResult::Success => {
                let digits = crate::random_digits(24)?;
                // WeChat transaction ids are 28 digits starting 4200; others get a visible sandbox prefix.
                let transaction_no = if paygate_domain::shares::is_wechat_channel(&charge.channel) {
                    format!("4200{digits}")
                } else {
                    format!("sbx{}", &digits[..20])
                };
                let time_paid = self.now();
                let notification = self.channels.sandbox().payment_notification(charge, &transaction_no, time_paid);
                let settlement = Some(self.settlement_for(scope, charge).await?.to_json());
                ChargeOutcome::Succeeded { transaction_no, time_paid, notification, settlement }
            }
            SandboxResult::Fail => ChargeOutcome::Failed {
                code: "sandbox_declined".into(),
                message: "The payer declined the payment in the sandbox.".into(),
            },
        };
        let settled = match audit {
            Some(audit) => self.store.settle_charge_audited(scope, &charge.id, &outcome, audit).await?,
            None => self.store.settle_charge(scope, &charge.id, &outcome).await?,
        };
        match settled {
            SettledCharge::Settled { charge, order } => {
                // The payment is committed. Returning late money is a follow-up that the worker
                // retries, so its failure is logged, never answered as if the payment failed.
                let order = match self.after_late_payment(scope, order.clone()).await {
                    Ok(order) => order,
                    Err(problem) => {
                        let id = &order.id;
                        tracing::warn!(order = %id, %problem, "automatic refund failed; the worker retries it");
                        order
                    }
                };
                Ok((charge, order))
            }
            SettledCharge::NotPending(charge) => Err(Problem::new(
                ProblemKind::InvalidRequest,
                "charge_not_pending",
                format!(
                    "Charge {} is {}; only a pending (or, as a late payment, a closed) charge can be completed.",
                    charge.id,
                    charge.status.as_str()
                ),
            )),
        }
    }
}

impl Paygate {
    /// Money that arrived after its order was closed or canceled goes straight back, unless the
    /// app chose to hold it for review. Either way the order stays `paid_after_close` and an
    /// `order.paid_after_close` event (written with the settlement) says so.
    pub async fn after_late_payment(&self, scope: &Scope, order: Order) -> Result<Order, Problem> {
        if order.status != paygate_domain::OrderStatus::PaidAfterClose
            || order.refundable() == paygate_domain::Amount::ZERO
        {
            return Ok(order);
        }
        let app = self.store.app(&scope.app_id).await?.ok_or_else(|| Problem::internal("order without app"))?;
        if app.late_payment == paygate_domain::LatePayment::Hold {
            return Ok(order);
        }
        let caller = Caller { app, scope: scope.clone() };
        let input = crate::refunds::RefundInput {
            amount: None,
            description: Some("Automatic refund: paid after the order was closed".into()),
            metadata: serde_json::Value::Null,
        };
        match self.refund(&caller, Some(&OrderId::from_stored(order.id.clone())), None, input).await {
            Ok(_) => {}
            // The payer's request and the worker's safety net both get here for the same late
            // payment; the reservation lets exactly one of them refund. For the other, the money
            // is already on its way back: that is done, not an error.
            Err(problem) if problem.code == "nothing_to_refund" => {}
            Err(problem) => return Err(problem),
        }
        self.store.order(scope, &order.id).await?.ok_or_else(|| Problem::internal("order vanished"))
    }
}

impl Paygate {
    /// Refunds late money that a crash left unreturned (the refund normally follows the late
    /// payment at once). One order's failure is reported in the pass and does not stop the
    /// others; the next pass tries it again.
    pub async fn refund_unreturned_late_payments(&self, limit: i64) -> Result<Pass, Problem> {
        let mut pass = Pass::default();
        for (scope, id) in self.store.late_payments_to_refund(limit).await? {
            let refunded = async {
                match self.store.order(&scope, &id).await? {
                    Some(order) => self.after_late_payment(&scope, order).await.map(|_| ()),
                    None => Ok(()),
                }
            };
            match refunded.await {
                Ok(()) => pass.done += 1,
                Err(problem) => pass.failed.push((id, problem)),
            }
        }
        Ok(pass)
    }
}
