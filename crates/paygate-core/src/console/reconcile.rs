//! The console's reconciliation actions (issue 14): running a day and resolving a discrepancy, each checked
//! against the user's role and audited. Reading runs and discrepancies is `/v1`'s own calls with `who.caller`.

use super::{ConsoleCaller, Permission};
use crate::reconcile::RunOutcome;
use crate::Paygate;
use paygate_domain::accounts::Provider;
use paygate_domain::reconcile::{BillDate, Discrepancy};
use paygate_domain::Problem;

impl Paygate {
    /// Runs `date` of `provider` as `/v1/reconciliations` does, for admins and support. The run downloads the
    /// channel's bill and saves its statement in its own transaction; the audit entry follows the saved run
    /// (a run that fails changes nothing and is not audited).
    pub async fn console_reconcile(
        &self,
        who: &ConsoleCaller,
        provider: Provider,
        date: BillDate,
    ) -> Result<RunOutcome, Problem> {
        who.require(Permission::Reconcile)?;
        if date.start() >= self.now() {
            return Err(Problem::invalid("date", format!("{date} has not begun: there is no bill for it yet.")));
        }
        let outcome = self.reconcile(&who.caller, provider, date).await?;
        let run = &outcome.reconciliation;
        let mut audit = who.audit("reconciliation.run", &run.id, self.now());
        audit.after = Some(serde_json::json!({
            "channel": provider.as_str(),
            "bill_date": date.to_string(),
            "version": run.version,
            "result": run.result(),
            "discrepancies": run.statement.discrepancies(),
            "reported": outcome.reported.len(),
        }));
        self.store.append_console_audit(&audit).await?;
        Ok(outcome)
    }

    /// Resolves an open discrepancy with a note (admins only), the audit entry in the resolution's transaction.
    pub async fn console_resolve_discrepancy(
        &self,
        who: &ConsoleCaller,
        id: &str,
        note: &str,
    ) -> Result<Discrepancy, Problem> {
        who.require(Permission::Administer)?;
        let mut audit = who.audit("reconciliation_discrepancy.resolve", id, self.now());
        audit.before = Some(serde_json::json!({ "state": "open" }));
        audit.after = Some(serde_json::json!({ "state": "resolved_manually", "note": note.trim() }));
        self.resolve_discrepancy_audited(&who.caller, id, note, Some(&audit)).await
    }
}

#[cfg(test)]
mod tests {
    use super::Permission;
    use paygate_store::console::Role;

    #[test]
    fn admins_and_support_reconcile_only_admins_resolve() {
        let run = [Role::Admin, Role::Support, Role::Viewer].map(|r| Permission::Reconcile.allowed(r));
        assert_eq!(run, [true, true, false]);
        let resolve = [Role::Admin, Role::Support, Role::Viewer].map(|r| Permission::Administer.allowed(r));
        assert_eq!(resolve, [true, false, false]);
    }
}
