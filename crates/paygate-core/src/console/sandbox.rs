//! The console's "pay" button on a test-mode charge: what `POST /v1/sandbox/charges/{id}/pay` does, for the
//! console's admins and support, audited: the entry is written by the settlement's own transaction (with the
//! charge, the order and their events), so the payment and its entry commit together or not at all.

use super::{ConsoleCaller, Permission};
use crate::sandbox::SandboxResult;
use crate::Paygate;
use paygate_domain::ids::OrderId;
use paygate_domain::{Charge, ChargeStatus, Problem, ProblemKind};

impl Paygate {
    /// Completes `charge_id` of `order_id` at the sandbox as paid. The charge must be this order's and still
    /// pending, so a stale page cannot pay another order's charge. The sandbox settles the charge in one
    /// transaction with the order, its events and the audit entry, whose `before` (order, status) and `after`
    /// (status, transaction number) the store fills from what it reads and writes there; a failed pay (the charge
    /// no longer pending under the order's lock) changes nothing and is not audited.
    pub async fn console_sandbox_pay(
        &self,
        who: &ConsoleCaller,
        order_id: &OrderId,
        charge_id: &str,
    ) -> Result<Charge, Problem> {
        who.require(Permission::SandboxPay)?;
        let view = self.order(&who.caller, order_id).await?;
        let charge =
            view.charges.iter().find(|c| c.id == charge_id).ok_or_else(|| Problem::not_found("charge", charge_id))?;
        if charge.status != ChargeStatus::Pending {
            return Err(Problem::new(
                ProblemKind::InvalidRequest,
                "charge_not_pending",
                format!("Charge {} is {}, not pending: there is nothing to pay.", charge.id, charge.status.as_str()),
            ));
        }
        let audit = who.audit("charge.sandbox_pay", &charge.id, self.now());
        let (paid, _) = self.sandbox_pay_audited(&who.caller, &charge.id, SandboxResult::Success, Some(&audit)).await?;
        Ok(paid)
    }
}
