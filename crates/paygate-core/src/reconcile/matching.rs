//! The matching of one day's bill against paygate's books: pure (no database, no channel), so every outcome is
//! decided here and tested without either. The caller gathers the books (the day's rows, the rows of other days the
//! bill names, the rows the previous day carried) and acts on the result (re-queries, then saves).
//!
//! Keys: a payment is `payment:<merchant no>` (paygate's `channel_order_no`, unique), a refund
//! `refund:<merchant refund no>`. Bill payments are found by the channel's transaction no., falling back to the
//! merchant no.; refunds by the merchant refund no.

use paygate_channels::bills::{BillKind, BillRow};
use paygate_domain::reconcile::{DiscrepancyKind, Statement};
use paygate_domain::RefundStatus;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// paygate's view of one charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPayment {
    pub charge_id: String,
    pub channel_order_no: String,
    pub transaction_no: Option<String>,
    pub amount: i64,
    /// Whether paygate shows the money as taken (the charge succeeded).
    pub paid: bool,
    pub status: String,
    /// The channel fee paygate computed, when the merchant told paygate its rate (else there is nothing to compare).
    pub fee: Option<i64>,
    pub time_paid: Option<i64>,
    /// Paid on the day being reconciled (else loaded because the bill or the previous day named it).
    pub in_day: bool,
}

/// paygate's view of one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRefund {
    pub refund_id: String,
    pub refund_no: String,
    pub transaction_no: Option<String>,
    pub amount: i64,
    pub status: RefundStatus,
    /// Succeeded on the day being reconciled.
    pub in_day: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Books {
    /// By merchant no. (`channel_order_no`).
    pub payments: HashMap<String, LocalPayment>,
    /// Transaction no. → merchant no.
    pub by_transaction: HashMap<String, String>,
    /// By merchant refund no.
    pub refunds: HashMap<String, LocalRefund>,
}

impl Books {
    pub fn add_payment(&mut self, p: LocalPayment) {
        if let Some(t) = &p.transaction_no {
            self.by_transaction.insert(t.clone(), p.channel_order_no.clone());
        }
        self.payments.insert(p.channel_order_no.clone(), p);
    }

    pub fn add_refund(&mut self, r: LocalRefund) {
        self.refunds.insert(r.refund_no.clone(), r);
    }

    /// The payment a bill row names: by transaction no. first, then by merchant no.
    pub fn payment_of(&self, row: &BillRow) -> Option<&LocalPayment> {
        self.by_transaction
            .get(&row.transaction_no)
            .and_then(|no| self.payments.get(no))
            .or_else(|| self.payments.get(&row.merchant_no))
    }
}

pub fn payment_key(merchant_no: &str) -> String {
    format!("payment:{merchant_no}")
}

pub fn refund_key(refund_no: &str) -> String {
    format!("refund:{refund_no}")
}

/// What to ask the channel before a discrepancy is reported open: its answer goes through the normal notification
/// path, and a row that is then consistent is reported resolved automatically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recheck {
    Charge(String),
    Refund(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub kind: DiscrepancyKind,
    pub key: String,
    pub details: Value,
    pub recheck: Option<Recheck>,
    /// The bill row, kept to compare again after a re-query.
    pub row: Option<BillRow>,
}

#[derive(Debug, Clone, Default)]
pub struct Matching {
    pub statement: Statement,
    pub consistent: HashSet<String>,
    pub found: Vec<Found>,
    pub carried: Vec<String>,
    pub matched_elsewhere: Vec<String>,
}

/// How a refund stands, in one vocabulary for both sides.
pub fn refund_state(channel_status: &str) -> RefundStatus {
    match channel_status {
        "SUCCESS" => RefundStatus::Succeeded,
        // WeChat: PROCESSING; anything unknown is not taken for an end.
        "REFUNDCLOSE" | "CLOSED" | "ABNORMAL" | "CHANGE" | "FAIL" | "FAILED" => RefundStatus::Failed,
        _ => RefundStatus::Pending,
    }
}

fn row_json(row: &BillRow) -> Value {
    serde_json::to_value(row).unwrap_or(Value::Null)
}

fn payment_json(p: &LocalPayment) -> Value {
    json!({"charge": p.charge_id, "status": p.status, "amount": p.amount, "transaction_no": p.transaction_no,
           "fee": p.fee, "time_paid": p.time_paid})
}

fn refund_json(r: &LocalRefund) -> Value {
    json!({"refund": r.refund_id, "status": r.status.as_str(), "amount": r.amount, "transaction_no": r.transaction_no})
}

/// What a row costs the merchant in fees: a payment's fee, given back (negative) on a refund. Channels sign the
/// column differently (WeChat: fee positive, refunds negative; Alipay: 服务费 taken as negative), so the sign is
/// the row's kind, the size the bill's.
pub fn fee_cost(row: &BillRow) -> i64 {
    let size = row.fee.saturating_abs();
    match row.kind {
        BillKind::Payment => size,
        BillKind::Refund => -size,
    }
}

/// Compares a bill's payment row with paygate's paid charge: the fields that differ (empty = consistent).
pub fn payment_differences(row: &BillRow, p: &LocalPayment) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if row.status != "SUCCESS" {
        fields.push("status");
    }
    if row.amount != p.amount {
        fields.push("amount");
    }
    if p.fee.is_some_and(|fee| fee != fee_cost(row)) {
        fields.push("fee");
    }
    if p.transaction_no.as_deref().is_some_and(|t| !row.transaction_no.is_empty() && t != row.transaction_no) {
        fields.push("transaction_no");
    }
    fields
}

/// What one bill row says against the books, before any re-query.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Both sides agree: the key's open discrepancies (of any kind) are resolved by this run.
    Consistent(String),
    /// A row that moved no money and that paygate has nothing against (a revoked or closed payment, a closed
    /// refund paygate never made): seen, so not carried, but no evidence that closes anything.
    Neutral(String),
    Found(Box<Found>),
}

/// Judges one bill row against the books.
pub fn judge_row(row: &BillRow, books: &Books) -> Verdict {
    match row.kind {
        BillKind::Payment => judge_payment(row, books),
        BillKind::Refund => judge_refund(row, books),
    }
}

fn judge_payment(row: &BillRow, books: &Books) -> Verdict {
    let local = books.payment_of(row);
    let key = payment_key(local.map_or(&row.merchant_no, |p| &p.channel_order_no));
    let found = |kind, recheck, fields: &[&str]| {
        Verdict::Found(Box::new(Found {
            kind,
            key: key.clone(),
            details: json!({"channel": row_json(row), "paygate": local.map(payment_json), "fields": fields}),
            recheck,
            row: Some(row.clone()),
        }))
    };
    let success = row.status == "SUCCESS";
    match local {
        // A success at the channel paygate does not show: usually a lost notification.
        None if success => found(DiscrepancyKind::MissingLocally, None, &[]),
        None => Verdict::Neutral(key),
        // Asked again: the signed answer goes through the notification path.
        Some(p) if !p.paid && success => {
            found(DiscrepancyKind::MissingLocally, Some(Recheck::Charge(p.charge_id.clone())), &["status"])
        }
        Some(p) if !p.paid => Verdict::Neutral(key),
        Some(p) => {
            let fields = payment_differences(row, p);
            if fields.is_empty() {
                Verdict::Consistent(key)
            } else {
                found(DiscrepancyKind::Mismatch, None, &fields)
            }
        }
    }
}

fn judge_refund(row: &BillRow, books: &Books) -> Verdict {
    let key = refund_key(&row.out_refund_no);
    let local = books.refunds.get(&row.out_refund_no);
    let found = |kind, recheck, fields: &[&str]| {
        Verdict::Found(Box::new(Found {
            kind,
            key: key.clone(),
            details: json!({"channel": row_json(row), "paygate": local.map(refund_json), "fields": fields}),
            recheck,
            row: Some(row.clone()),
        }))
    };
    let channel = refund_state(&row.status);
    let Some(r) = local else {
        return match channel {
            RefundStatus::Failed => Verdict::Neutral(key),
            _ => found(DiscrepancyKind::MissingLocally, None, &[]),
        };
    };
    if row.amount != r.amount {
        return found(DiscrepancyKind::Mismatch, None, &["amount"]);
    }
    // Only a refund still pending here is asked about again: a final one is not asked (the sync would answer
    // "settled" without asking), so a disagreement with it stays open for a person.
    let recheck = (r.status == RefundStatus::Pending).then(|| Recheck::Refund(r.refund_id.clone()));
    match (channel, r.status) {
        (RefundStatus::Succeeded, RefundStatus::Succeeded) | (RefundStatus::Failed, RefundStatus::Failed) => {
            Verdict::Consistent(key)
        }
        // Refunded at the channel, pending here: a lost refund notification.
        (RefundStatus::Succeeded, RefundStatus::Pending) => {
            found(DiscrepancyKind::MissingLocally, recheck, &["status"])
        }
        // Still processing at the channel (never taken for a failure: money may still go out), or ended
        // otherwise on one side: reported until both sides show the same end.
        _ => found(DiscrepancyKind::Mismatch, recheck, &["status"]),
    }
}

/// Matches a day's bill against the books. `carried_in`: keys the previous day's run carried (they are flagged
/// missing at the channel now if this bill does not show them either); `matched_before`: keys of this day's
/// rows that the previous day's bill already showed.
pub fn match_bill(
    rows: &[BillRow],
    books: &Books,
    carried_in: &HashSet<String>,
    matched_before: &HashSet<String>,
) -> Matching {
    let mut m = Matching::default();
    let mut seen = HashSet::new();
    for row in rows {
        let s = &mut m.statement;
        s.bill_rows += 1;
        s.channel_fees = s.channel_fees.saturating_add(fee_cost(row));
        match row.kind {
            BillKind::Payment if row.status == "SUCCESS" => s.channel_payments.add(row.amount),
            BillKind::Refund if refund_state(&row.status) == RefundStatus::Succeeded => {
                s.channel_refunds.add(row.amount)
            }
            _ => {}
        }
        match judge_row(row, books) {
            Verdict::Consistent(key) => {
                let other_day = match row.kind {
                    BillKind::Payment => books.payment_of(row).is_some_and(|p| !p.in_day),
                    BillKind::Refund => books.refunds.get(&row.out_refund_no).is_some_and(|r| !r.in_day),
                };
                if other_day {
                    m.matched_elsewhere.push(key.clone());
                }
                seen.insert(key.clone());
                m.consistent.insert(key);
            }
            Verdict::Neutral(key) => {
                seen.insert(key);
            }
            Verdict::Found(found) => {
                seen.insert(found.key.clone());
                m.found.push(*found);
            }
        }
    }
    let mut payments: Vec<&LocalPayment> = books.payments.values().collect();
    payments.sort_by(|a, b| (a.time_paid, &a.channel_order_no).cmp(&(b.time_paid, &b.channel_order_no)));
    for p in payments {
        let key = payment_key(&p.channel_order_no);
        if p.in_day && p.paid {
            let s = &mut m.statement;
            s.paygate_payments.add(p.amount);
            s.paygate_fees = s.paygate_fees.saturating_add(p.fee.unwrap_or(0));
        }
        let ours = p.paid && (p.in_day || carried_in.contains(&key));
        if !ours || seen.contains(&key) {
            continue;
        }
        settle_unseen(&mut m, key, carried_in, matched_before, || payment_json(p));
    }
    let mut refunds: Vec<&LocalRefund> = books.refunds.values().collect();
    refunds.sort_by(|a, b| a.refund_no.cmp(&b.refund_no));
    for r in refunds {
        let key = refund_key(&r.refund_no);
        let succeeded = r.status == RefundStatus::Succeeded;
        if r.in_day && succeeded {
            m.statement.paygate_refunds.add(r.amount);
        }
        let ours = succeeded && (r.in_day || carried_in.contains(&key));
        if !ours || seen.contains(&key) {
            continue;
        }
        settle_unseen(&mut m, key, carried_in, matched_before, || refund_json(r));
    }
    // A carried key whose row paygate no longer shows at all: still nothing at the channel.
    let mut missing: Vec<&String> = carried_in
        .iter()
        .filter(|k| !seen.contains(*k) && !m.found.iter().any(|f| &f.key == *k) && !m.consistent.contains(*k))
        .filter(|k| !books_have(books, k))
        .collect();
    missing.sort();
    for key in missing {
        m.found.push(Found {
            kind: DiscrepancyKind::MissingAtChannel,
            key: key.clone(),
            details: json!({"channel": null, "paygate": null, "fields": []}),
            recheck: None,
            row: None,
        });
    }
    m.statement.consistent = m.consistent.len() as i64;
    m.statement.carried = m.carried.len() as i64;
    count_found(&mut m);
    m
}

fn books_have(books: &Books, key: &str) -> bool {
    match key.split_once(':') {
        Some(("payment", no)) => books.payments.contains_key(no),
        Some(("refund", no)) => books.refunds.contains_key(no),
        _ => false,
    }
}

/// A paygate row this bill did not show: matched by the previous day's bill, carried to the next day, or — when
/// the previous day already carried it — missing at the channel.
fn settle_unseen(
    m: &mut Matching,
    key: String,
    carried_in: &HashSet<String>,
    matched_before: &HashSet<String>,
    local: impl Fn() -> Value,
) {
    if matched_before.contains(&key) {
        m.consistent.insert(key);
    } else if carried_in.contains(&key) {
        m.found.push(Found {
            kind: DiscrepancyKind::MissingAtChannel,
            key,
            details: json!({"channel": null, "paygate": local(), "fields": []}),
            recheck: None,
            row: None,
        });
    } else {
        m.carried.push(key);
    }
}

/// The statement's counts by kind, from what was found.
pub fn count_found(m: &mut Matching) {
    let count = |kind| m.found.iter().filter(|f| f.kind == kind).count() as i64;
    m.statement.missing_locally = count(DiscrepancyKind::MissingLocally);
    m.statement.missing_at_channel = count(DiscrepancyKind::MissingAtChannel);
    m.statement.mismatch = count(DiscrepancyKind::Mismatch);
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
