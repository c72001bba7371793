//! Reconciliation (对账, issue 14): downloads a channel's bill for a Beijing-time day, matches it against paygate's
//! books ([`matching`], pure), asks the channel about what looks missing here (its answer goes through the normal
//! notification path, so a dropped notification is recovered exactly as a late one would be, events sent once),
//! and saves the run with what it found ([`paygate_store::ReconcileStore`]).
//!
//! Late rows: a paygate payment the day's bill does not show is carried to the next day and flagged missing at the
//! channel only if that day's bill does not show it either (a payment at 23:59:59 is often billed the next day); a
//! bill row whose payment paygate shows on another day is consistent, and remembered so that day does not carry it.

pub mod matching;

use crate::channel_poller::{charge_provider, Synced};
use crate::{Caller, Paygate};
use matching::{Books, Found, LocalPayment, LocalRefund, Matching, Recheck};
use paygate_channels::bills::{parse_alipay_bill, parse_wechat_bill, Bill, BillKind, BillRow};
use paygate_domain::accounts::Provider;
use paygate_domain::ids::IdKind;
use paygate_domain::paging::Page;
use paygate_domain::reconcile::{BillDate, Discrepancy, DiscrepancyKind, DiscrepancyState, Reconciliation};
use paygate_domain::{Charge, ChargeStatus, Problem, ProblemKind, Refund, RefundStatus, Scope};
pub use paygate_store::DiscrepancyFilter;
use paygate_store::{FoundDiscrepancy, NewReconciliation};
use std::collections::HashSet;

/// A run as answered: the saved statement and the discrepancies it reported for the first time.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub reconciliation: Reconciliation,
    pub reported: Vec<Discrepancy>,
}

/// The channels' numbers are at most 64 characters; a bill naming longer ones is not a bill to act on (and a
/// discrepancy keyed by one would not fit the key's index).
fn check_row_ids(rows: &[BillRow]) -> Result<(), Problem> {
    const LONGEST: usize = 128;
    for (i, row) in rows.iter().enumerate() {
        let fields = [&row.transaction_no, &row.merchant_no, &row.refund_id, &row.out_refund_no];
        if fields.iter().any(|f| f.len() > LONGEST) {
            let message = format!("Bill row {} names a number longer than {LONGEST} characters.", i + 1);
            return Err(channel_problem("channel_bad_bill", message));
        }
    }
    Ok(())
}

/// The node's one running reconciliation, released when dropped (a cancelled request included).
struct OneRun<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> OneRun<'a> {
    fn take(flag: &'a std::sync::atomic::AtomicBool) -> Result<OneRun<'a>, Problem> {
        use std::sync::atomic::Ordering;
        if flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return Err(Problem::new(
                ProblemKind::TooManyRequests,
                "reconciliation_running",
                "A reconciliation is running on this node; try again when it has finished.",
            ));
        }
        Ok(OneRun(flag))
    }
}

impl Drop for OneRun<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

fn channel_problem(code: &'static str, message: String) -> Problem {
    Problem::new(ProblemKind::Channel, code, message)
}

impl Paygate {
    /// Reconciles one day of one channel for the scope: download, match, re-query, save. One run at a time per
    /// node (a bill of a busy day is tens of MiB, held whole with its rows and the day's books): another is
    /// answered 429 and tried again later (the daily job at its next check).
    pub async fn reconcile_day(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
    ) -> Result<RunOutcome, Problem> {
        let _running = OneRun::take(&self.reconciling)?;
        self.reconcile_day_alone(scope, provider, date).await
    }

    async fn reconcile_day_alone(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
    ) -> Result<RunOutcome, Problem> {
        let started = std::time::Instant::now();
        let file = self.download_bill(scope, provider, date).await?;
        let downloaded = started.elapsed();
        let bill = match &file {
            None => Bill { rows: Vec::new(), summary: None },
            Some(bytes) => match provider {
                Provider::Wechat => parse_wechat_bill(bytes),
                Provider::Alipay => parse_alipay_bill(bytes),
            }
            .map_err(|e| {
                channel_problem(
                    "channel_bad_bill",
                    format!("The {} bill of {date} does not read: {e}", provider.as_str()),
                )
            })?,
        };
        check_row_ids(&bill.rows)?;
        let stated_rows = bill.summary.as_ref().map(|summary| summary.rows);
        let previous = self.store.latest_reconciliation(scope, provider, date.previous()).await?;
        let (carried_in, matched_before): (HashSet<String>, HashSet<String>) = match &previous {
            Some(p) => (p.carried.iter().cloned().collect(), p.matched_elsewhere.iter().cloned().collect()),
            None => Default::default(),
        };
        let parsed = started.elapsed();
        let books = self.books_for(scope, provider, date, &bill.rows, &carried_in).await?;
        let read = started.elapsed();
        let mut matching = matching::match_bill(&bill.rows, &books, &carried_in, &matched_before);
        let matched = started.elapsed();
        let found = self.recheck(scope, &mut matching).await;
        // A day's parsed rows and books are as large as the bill: gone before the save holds the file.
        drop((books, bill));
        let mut statement = matching.statement.clone();
        statement.bill_present = file.is_some();
        statement.bill_bytes = file.as_ref().map_or(0, |f| f.len() as i64);
        statement.bill_stated_rows = stated_rows;
        if stated_rows.is_some_and(|n| n != statement.bill_rows) {
            tracing::warn!(app = %scope.app_id, date = %date, stated = ?stated_rows, read = statement.bill_rows,
                "the bill's summary counts other rows than it holds");
        }
        let open = |kind| found.iter().filter(|(f, s)| f.kind == kind && *s == DiscrepancyState::Open).count() as i64;
        statement.missing_locally = open(DiscrepancyKind::MissingLocally);
        statement.missing_at_channel = open(DiscrepancyKind::MissingAtChannel);
        statement.mismatch = open(DiscrepancyKind::Mismatch);
        statement.recovered = found.iter().filter(|(_, s)| *s != DiscrepancyState::Open).count() as i64;
        let mut found_rows = Vec::with_capacity(found.len());
        for (f, state) in found {
            found_rows.push(FoundDiscrepancy {
                id: IdKind::Discrepancy.generate(&crate::random32()?),
                kind: f.kind,
                object_key: f.key,
                details: f.details,
                state,
            });
        }
        let run = NewReconciliation {
            id: IdKind::Reconciliation.generate(&crate::random32()?),
            scope: scope.clone(),
            provider,
            bill_date: date,
            created: self.now(),
            statement,
            carried: matching.carried,
            matched_elsewhere: matching.matched_elsewhere,
            file: file.unwrap_or_default(),
        };
        let (reconciliation, reported) = self.store.save_reconciliation(run, found_rows, matching.consistent).await?;
        tracing::info!(
            app = %scope.app_id, channel = provider.as_str(), date = %date, version = reconciliation.version,
            rows = reconciliation.statement.bill_rows, open = reconciliation.statement.discrepancies(),
            reported = reported.len(), download_ms = downloaded.as_millis() as u64,
            parse_ms = (parsed - downloaded).as_millis() as u64, books_ms = (read - parsed).as_millis() as u64,
            match_ms = (matched - read).as_millis() as u64, total_ms = started.elapsed().as_millis() as u64,
            "reconciliation completed"
        );
        Ok(RunOutcome { reconciliation, reported })
    }

    async fn download_bill(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
    ) -> Result<Option<Vec<u8>>, Problem> {
        let not_configured = || {
            Problem::new(
                ProblemKind::Channel,
                "channel_not_configured",
                format!(
                    "This app has no {} channel account in this mode: there is no bill to reconcile.",
                    provider.as_str()
                ),
            )
        };
        let day = date.to_string();
        match provider {
            Provider::Wechat => {
                self.wechat_adapter(scope).await?.ok_or_else(not_configured)?.download_trade_bill(&day).await
            }
            Provider::Alipay => {
                self.alipay_adapter(scope).await?.ok_or_else(not_configured)?.download_trade_bill(&day).await
            }
        }
    }

    /// paygate's rows for the day at this channel, the rows of other days the bill names, and the ones the
    /// previous day carried.
    async fn books_for(
        &self,
        scope: &Scope,
        provider: Provider,
        date: BillDate,
        rows: &[BillRow],
        carried_in: &HashSet<String>,
    ) -> Result<Books, Problem> {
        let day = self.store.day_books(scope, date.start(), date.end()).await?;
        let mut books = Books::default();
        let mut at_channel = HashSet::new();
        for charge in day.charges.iter().filter(|c| charge_provider(c) == Some(provider)) {
            at_channel.insert(charge.id.clone());
            books.add_payment(local_payment(charge, true));
        }
        // Refunds whose charge was paid on another day: their charges are read a hundred orders at a time.
        let mut other_orders: Vec<String> =
            day.refunds.iter().filter(|r| !at_channel.contains(&r.charge_id)).map(|r| r.order_id.clone()).collect();
        other_orders.sort();
        other_orders.dedup();
        for orders in other_orders.chunks(100) {
            let charges = self.store.charges_of_orders(scope, orders).await?;
            at_channel.extend(charges.iter().filter(|c| charge_provider(c) == Some(provider)).map(|c| c.id.clone()));
        }
        for refund in day.refunds.iter().filter(|r| at_channel.contains(&r.charge_id)) {
            let in_day = refund.time_succeed.is_some_and(|t| (date.start()..date.end()).contains(&t));
            books.add_refund(local_refund(refund, in_day));
        }
        for row in rows {
            match row.kind {
                BillKind::Payment if books.payment_of(row).is_none() => {
                    if let Some(charge) = self.charge_named(scope, row).await? {
                        books.add_payment(local_payment(&charge, false));
                    }
                }
                BillKind::Refund if !books.refunds.contains_key(&row.out_refund_no) => {
                    if let Some(refund) = self.store.refund_by_no(scope, &row.out_refund_no).await? {
                        books.add_refund(local_refund(&refund, false));
                    }
                }
                _ => {}
            }
        }
        for key in carried_in {
            match key.split_once(':') {
                Some(("payment", no)) if !books.payments.contains_key(no) => {
                    if let Some(charge) = self.store.find_charge(scope, no).await? {
                        books.add_payment(local_payment(&charge, false));
                    }
                }
                Some(("refund", no)) if !books.refunds.contains_key(no) => {
                    if let Some(refund) = self.store.refund_by_no(scope, no).await? {
                        books.add_refund(local_refund(&refund, false));
                    }
                }
                _ => {}
            }
        }
        Ok(books)
    }

    /// The charge a bill row names: by the channel's transaction no., else by the merchant no.
    async fn charge_named(&self, scope: &Scope, row: &BillRow) -> Result<Option<Charge>, Problem> {
        for reference in [&row.transaction_no, &row.merchant_no] {
            if reference.is_empty() {
                continue;
            }
            if let Some(charge) = self.store.find_charge(scope, reference).await? {
                if charge.transaction_no.as_deref() == Some(reference.as_str()) || charge.channel_order_no == *reference
                {
                    return Ok(Some(charge));
                }
            }
        }
        Ok(None)
    }

    /// Asks the channel about each finding that may be a lost notification or an unfinished refund; a finding
    /// the answer makes consistent is kept as resolved automatically. A failed query leaves it open.
    async fn recheck(&self, scope: &Scope, matching: &mut Matching) -> Vec<(Found, DiscrepancyState)> {
        let mut out = Vec::with_capacity(matching.found.len());
        for found in std::mem::take(&mut matching.found) {
            let state = match (&found.recheck, &found.row) {
                (Some(recheck), Some(row)) => match self.ask_again(scope, recheck, row).await {
                    Ok(true) => {
                        matching.consistent.insert(found.key.clone());
                        DiscrepancyState::ResolvedAutomatically
                    }
                    Ok(false) => DiscrepancyState::Open,
                    Err(problem) => {
                        tracing::warn!(key = %found.key, %problem, "reconciliation re-query failed");
                        DiscrepancyState::Open
                    }
                },
                _ => DiscrepancyState::Open,
            };
            out.push((found, state));
        }
        out
    }

    /// Re-queries through the poller's sync (the notification path) and says whether the row now matches.
    async fn ask_again(&self, scope: &Scope, recheck: &Recheck, row: &BillRow) -> Result<bool, Problem> {
        match recheck {
            Recheck::Charge(id) => {
                let Some(charge) = self.store.charge(scope, id).await? else { return Ok(false) };
                self.sync_charge_now(scope, &charge).await?;
                let Some(charge) = self.store.charge(scope, id).await? else { return Ok(false) };
                let local = local_payment(&charge, false);
                Ok(local.paid && matching::payment_differences(row, &local).is_empty())
            }
            Recheck::Refund(id) => {
                let Some(refund) = self.store.refund(scope, id).await? else { return Ok(false) };
                // Only a pending refund is asked about (its sync asks the channel; a final one's would not).
                if refund.status != RefundStatus::Pending
                    || self.sync_refund_now(scope, &refund).await? != Synced::Final
                {
                    return Ok(false);
                }
                let Some(refund) = self.store.refund(scope, id).await? else { return Ok(false) };
                // The channel's signed answer ended it here now: consistent when that end is what the bill shows,
                // or the bill still showed it in flight (the answer is newer than the bill).
                let billed = matching::refund_state(&row.status);
                Ok(refund.amount.fen() == row.amount && (billed == refund.status || billed == RefundStatus::Pending))
            }
        }
    }

    // ---- what the API shows ----

    pub async fn reconcile(&self, caller: &Caller, provider: Provider, date: BillDate) -> Result<RunOutcome, Problem> {
        self.reconcile_day(&caller.scope, provider, date).await
    }

    pub async fn reconciliations(
        &self,
        caller: &Caller,
        provider: Option<Provider>,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Reconciliation>, Problem> {
        self.store.reconciliations(&caller.scope, provider, limit, starting_after).await
    }

    pub async fn reconciliation(&self, caller: &Caller, id: &str) -> Result<Reconciliation, Problem> {
        self.store
            .reconciliation(&caller.scope, id)
            .await?
            .ok_or_else(|| Problem::not_found("reconciliation", id).with_param("id"))
    }

    pub async fn reconciliation_bill(&self, caller: &Caller, id: &str) -> Result<Vec<u8>, Problem> {
        self.store
            .reconciliation_file(&caller.scope, id)
            .await?
            .ok_or_else(|| Problem::not_found("reconciliation", id).with_param("id"))
    }

    pub async fn discrepancies(
        &self,
        caller: &Caller,
        filter: &DiscrepancyFilter,
        limit: i64,
        starting_after: Option<&str>,
    ) -> Result<Page<Discrepancy>, Problem> {
        if let Some(id) = &filter.reconciliation_id {
            self.reconciliation(caller, id).await?;
        }
        self.store.discrepancies(&caller.scope, filter, limit, starting_after).await
    }

    /// A person resolves an open discrepancy with a note; resolving one already resolved is a 409.
    pub async fn resolve_discrepancy(&self, caller: &Caller, id: &str, note: &str) -> Result<Discrepancy, Problem> {
        self.resolve_discrepancy_audited(caller, id, note, None).await
    }

    /// [`Paygate::resolve_discrepancy`] with a console user's audit entry written in the same transaction.
    pub(crate) async fn resolve_discrepancy_audited(
        &self,
        caller: &Caller,
        id: &str,
        note: &str,
        audit: Option<&paygate_store::console::AuditEntry>,
    ) -> Result<Discrepancy, Problem> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 1000 {
            return Err(Problem::invalid("note", "note must say how it was resolved (1 to 1000 characters)."));
        }
        match self.store.resolve_discrepancy(&caller.scope, id, note, self.now(), audit).await? {
            None => Err(Problem::not_found("reconciliation_discrepancy", id).with_param("id")),
            Some((d, true)) => Ok(d),
            Some((d, false)) => Err(Problem::conflict(
                "discrepancy_resolved",
                format!("Discrepancy {} is already {}.", d.id, d.state.as_str()),
            )),
        }
    }
}

/// paygate's view of a charge for matching: the fee is compared only when the merchant told paygate its rate.
pub(crate) fn local_payment(charge: &Charge, in_day: bool) -> LocalPayment {
    let settlement = charge.settlement.as_ref();
    let rate_set = settlement.and_then(|s| s["rate_bp"].as_i64()).is_some_and(|bp| bp > 0);
    LocalPayment {
        charge_id: charge.id.clone(),
        channel_order_no: charge.channel_order_no.clone(),
        transaction_no: charge.transaction_no.clone(),
        amount: charge.amount.fen(),
        paid: charge.status == ChargeStatus::Succeeded,
        status: charge.status.as_str().to_string(),
        fee: if rate_set { settlement.and_then(|s| s["channel_fee"].as_i64()) } else { None },
        time_paid: charge.time_paid,
        in_day,
    }
}

fn local_refund(refund: &Refund, in_day: bool) -> LocalRefund {
    LocalRefund {
        refund_id: refund.id.clone(),
        refund_no: refund.refund_no.clone(),
        transaction_no: refund.transaction_no.clone(),
        amount: refund.amount.fen(),
        status: refund.status,
        in_day,
    }
}

impl Paygate {
    /// The daily job: once the Beijing time of day has passed `at_seconds` (seconds after midnight), reconciles
    /// yesterday for every app, mode and channel account that has no run of that day yet. A day whose run fails
    /// (no answer, a bill not ready) is tried again at the next call; the worker calls this every few minutes.
    pub async fn reconcile_due(&self, at_seconds: i64) -> Result<crate::Pass, Problem> {
        let now = self.now();
        let today = BillDate::of(now);
        let mut pass = crate::Pass::default();
        if now - today.start() < at_seconds {
            return Ok(pass);
        }
        let yesterday = today.previous();
        for app in self.store.list_apps().await? {
            for mode in [paygate_domain::Mode::Test, paygate_domain::Mode::Live] {
                let scope = Scope { app_id: app.id.clone(), mode };
                for account in self.store.channel_accounts(&scope).await? {
                    let provider = account.provider;
                    if self.store.latest_reconciliation(&scope, provider, yesterday).await?.is_some() {
                        continue;
                    }
                    match self.reconcile_day(&scope, provider, yesterday).await {
                        Ok(_) => pass.done += 1,
                        Err(problem) => {
                            let mode_name = if mode.is_live() { "live" } else { "test" };
                            let item = format!("{} {mode_name} {} {yesterday}", app.id, provider.as_str());
                            pass.failed.push((item, problem));
                        }
                    }
                }
            }
        }
        Ok(pass)
    }
}

#[cfg(test)]
mod tests {
    use super::OneRun;

    #[test]
    fn one_reconciliation_at_a_time_per_node() {
        let flag = std::sync::atomic::AtomicBool::new(false);
        let first = OneRun::take(&flag).unwrap();
        let refused = OneRun::take(&flag).err().unwrap();
        assert_eq!(
            (refused.code, refused.kind),
            ("reconciliation_running", paygate_domain::ProblemKind::TooManyRequests)
        );
        drop(first);
        assert!(OneRun::take(&flag).is_ok(), "released when the run ends, however it ends");
    }
}
