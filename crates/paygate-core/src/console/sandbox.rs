//! The console's "pay" button on a test-mode charge: what `POST /v1/sandbox/charges/{id}/pay` does, for the
//! console's admins and support, audited.

use super::{ConsoleCaller, Permission};
use crate::sandbox::SandboxResult;
use crate::Paygate;
use paygate_domain::ids::OrderId;
use paygate_domain::{Charge, ChargeStatus, Problem, ProblemKind};

impl Paygate {
    /// Completes `charge_id` of `order_id` at the sandbox as paid. The charge must be this order's and still
    /// pending, so a stale page cannot pay another order's charge. The sandbox settles the charge in its own
    /// transaction (with the order and its events); the audit entry follows it, and a failed pay changes
    /// nothing and is not audited.
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
        let (paid, _) = self.sandbox_pay(&who.caller, &charge.id, SandboxResult::Success).await?;
        let mut audit = who.audit("charge.sandbox_pay", &paid.id, self.now());
        audit.before = Some(serde_json::json!({ "order": order_id.to_string(), "status": "pending" }));
        audit.after = Some(serde_json::json!({
            "status": paid.status.as_str(),
            "transaction_no": paid.transaction_no,
        }));
        self.store.append_console_audit(&audit).await?;
        Ok(paid)
    }
}
