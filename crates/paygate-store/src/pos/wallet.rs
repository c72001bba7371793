//! Wallet payments: one write transaction that records the envelope's signature, writes the
//! order, charge, record and events, and then — last, so its row lock is held for as short a
//! time as possible — debits the wallet with a conditional update and writes the ledger entry
//! from the balance that update returned. The answer is built from what was written.
//!
//! Payments from one wallet serialize on its row lock, and the lock is held until COMMIT has
//! reached the disk: one payment per commit caps a hot wallet at one payment per fsync. A
//! backend that batches ([`crate::Backend::batches`], PostgreSQL) therefore writes the payments
//! that queue together in one transaction ([`batch`]): each payment's rows first, then one debit
//! per wallet for the payments' total, one multi-row ledger insert, one commit.

use super::{
    emit, insufficient_balance, member, member_scoped, meta_params, replayed, seen_params, PosMeta, PosRecord,
    SeenSignature, INSERT_META, MEMBER_COLUMNS, REMEMBER_SIGNATURE,
};
use crate::coalesce::{BatchFuture, Coalescer, Limits};
use crate::rows::{self, SqlParam};
use crate::sql::{Access, Backend, Tx};
use crate::Result;
use paygate_domain::events::{CHARGE_SUCCEEDED, ORDER_SUCCEEDED};
use paygate_domain::fees::{self, FeeRate};
use paygate_domain::objects::{self, OrderView};
use paygate_domain::{pos, Amount, Charge, Order, Problem, ProblemKind, Scope};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A wallet payment as the core builds it before the member and rate are known: the order
/// (paid), its charge (succeeded, no settlement yet) and the record (no member yet). The store
/// finds the member by `pay_code` and the rate in force inside the payment's transaction.
#[derive(Debug, Clone)]
pub struct WalletPayment {
    pub order: Order,
    pub charge: Charge,
    pub meta: PosMeta,
    pub pay_code: String,
    pub now: i64,
    /// Recorded first in the same transaction; `None` when the request was not signed with one.
    pub seen: Option<SeenSignature>,
}

/// The member a wallet code names and, in the same round trip, the rate of `$4`'s family.
fn member_and_rate_sql() -> &'static str {
    crate::sql::once_sql!(
        "SELECT {MEMBER_COLUMNS}, (SELECT rate_bp FROM fee_rates f \
         WHERE f.app_id = $1 AND f.livemode = $2 AND f.family = $4) \
         FROM members WHERE app_id = $1 AND livemode = $2 AND pay_code = $3"
    )
}

/// The wallet debit: applies only while the balance covers it, whatever ran before; the balance
/// after it, so the ledger entry needs no read under the row lock.
const DEBIT: &str = "UPDATE members SET balance = balance - $4 \
    WHERE app_id = $1 AND livemode = $2 AND id = $3 AND balance >= $4 RETURNING balance";

/// One multi-row insert of ledger entries (8 values each, in [`LedgerEntry::params`]' order).
fn record_payments_sql(n: usize) -> String {
    let rows: Vec<String> = (0..n)
        .map(|i| format!("({})", (1..=8).map(|c| format!("${}", i * 8 + c)).collect::<Vec<_>>().join(", ")))
        .collect();
    format!(
        "INSERT INTO balance_transactions (member_id, app_id, livemode, created, kind, amount, balance_after, \
         reference) VALUES {}",
        rows.join(", ")
    )
}

/// Rolls a lone wallet payment back to just after its signature was recorded.
const SAVEPOINT: &str = "SAVEPOINT wallet_payment";
const ROLLBACK: &str = "ROLLBACK TO SAVEPOINT wallet_payment";

struct LedgerEntry<'a> {
    scope: &'a Scope,
    member_id: i64,
    amount: Amount,
    balance_after: i64,
    charge_id: &'a str,
    now: i64,
}

impl LedgerEntry<'_> {
    fn params(&self) -> [SqlParam; 8] {
        [
            SqlParam::Int(self.member_id),
            SqlParam::Text(self.scope.app_id.clone()),
            SqlParam::Bool(self.scope.mode.is_live()),
            SqlParam::Int(self.now),
            SqlParam::Text("payment".into()),
            SqlParam::Int(-self.amount.fen()),
            SqlParam::Int(self.balance_after),
            SqlParam::Text(self.charge_id.to_string()),
        ]
    }
}

async fn record_payments(tx: &mut dyn Tx, entries: &[LedgerEntry<'_>]) -> Result<()> {
    let params: Vec<SqlParam> = entries.iter().flat_map(LedgerEntry::params).collect();
    tx.exec(&record_payments_sql(entries.len()), &params).await.map(|_| ())
}

fn unknown_code() -> Problem {
    Problem::invalid("auth_code", "No member has this payment code.")
}

/// Records the signature; false for a replay (nothing written).
async fn remember(tx: &mut dyn Tx, seen: &Option<SeenSignature>) -> Result<bool> {
    match seen {
        Some(seen) => Ok(tx.exec(REMEMBER_SIGNATURE, &seen_params(seen)).await? == 1),
        None => Ok(true),
    }
}

/// A payment whose rows are written, its debit still to come.
struct Written {
    record: PosRecord,
    scope: Scope,
    member_id: i64,
    now: i64,
}

impl Written {
    /// What the wallet pays: the order less its discounts.
    fn debit(&self) -> Amount {
        self.record.order.actual_amount
    }

    fn ledger_entry(&self, balance_after: i64) -> LedgerEntry<'_> {
        LedgerEntry {
            scope: &self.scope,
            member_id: self.member_id,
            amount: self.debit(),
            balance_after,
            charge_id: &self.record.charge.id,
            now: self.now,
        }
    }

    /// The answer: what was written, with the wallet's balance after this payment's debit.
    fn answer(mut self, balance_after: i64) -> PosRecord {
        if let Some(m) = self.record.member.as_mut() {
            m.balance = Amount::from_stored(balance_after);
        }
        self.record
    }
}

/// Finds the member and the rate, settles the charge at that rate and writes the order, charge,
/// record and success events (carrying what was written: nothing is read back). `None`: no
/// member has the code, and nothing was written.
async fn write_rows(tx: &mut dyn Tx, p: WalletPayment) -> Result<Option<Written>> {
    let WalletPayment { order, mut charge, mut meta, pay_code, now, .. } = p;
    let scope = Scope { app_id: order.app_id.clone(), mode: order.mode };
    let family = rows::with(rows::scoped(&scope, &pay_code), [SqlParam::Text(fees::family(&charge.channel).into())]);
    let found = tx.query_opt(member_and_rate_sql(), &family, |r| Ok((member(r)?, r.opt_int(7)?))).await?;
    let Some((member, rate_bp)) = found else { return Ok(None) };
    let rate = FeeRate::basis_points("rate_bp", rate_bp.unwrap_or(0))?;
    let settlement =
        pos::settle(order.amount, &meta.discounts, rate, meta.pre_fee_subsidy, meta.fee_subsidy_party.clone());
    (charge.member_id, meta.member_id, charge.settlement) =
        (Some(member.id), Some(member.id), Some(settlement.to_json()));
    tx.exec(rows::insert_order_sql(), &rows::order_params(&order)).await?;
    tx.exec(rows::insert_charge_sql(), &rows::charge_params(&charge)).await?;
    tx.exec(INSERT_META, &meta_params(&order, &meta)).await?;
    emit(tx, &scope, CHARGE_SUCCEEDED, objects::charge(&charge, None), now).await?;
    let view = OrderView { order: order.clone(), charges: vec![charge.clone()] };
    emit(tx, &scope, ORDER_SUCCEEDED, objects::order(&view), now).await?;
    let member_id = member.id;
    Ok(Some(Written { record: PosRecord { order, charge, meta, member: Some(member) }, scope, member_id, now }))
}

/// One payment in its own transaction. `Ok(Err(_))` is a refusal that keeps the signature: an
/// unknown code, or a balance that does not cover it (its rows are rolled back to the savepoint
/// taken after the signature). A replay is an error: its transaction writes nothing.
pub(super) async fn one(tx: &mut dyn Tx, p: WalletPayment) -> Result<Result<PosRecord>> {
    // First, so that a concurrent replay waits here holding nothing.
    if !remember(tx, &p.seen).await? {
        return Err(replayed());
    }
    let signed = p.seen.is_some();
    if signed {
        tx.batch(SAVEPOINT).await?;
    }
    let Some(written) = write_rows(tx, p).await? else { return Ok(Err(unknown_code())) };
    // Last: the payers of one wallet queue on its row lock, held from here to COMMIT.
    let debit = member_scoped(&written.scope, written.member_id, [SqlParam::Int(written.debit().fen())]);
    let Some(balance) = tx.query_opt(DEBIT, &debit, |r| r.int(0)).await? else {
        if signed {
            tx.batch(ROLLBACK).await?;
        }
        return Ok(Err(insufficient_balance(written.member_id, written.debit())));
    };
    record_payments(tx, &[written.ledger_entry(balance)]).await?;
    Ok(Ok(written.answer(balance)))
}

/// Why a batch is rolled back and its payments run one by one: a wallet does not cover the
/// total of its payments in the batch (each alone decides which of them it covers).
fn batch_does_not_fit() -> Problem {
    Problem::new(ProblemKind::Conflict, "wallet_batch_does_not_fit", "A wallet does not cover its batch.")
}

/// Several payments in one transaction. Signatures first (in one order for every batch, so two
/// batches never wait on each other's), then each payment's rows, then the wallets in the order
/// of their ids (the one lock order across batches and nodes): one conditional debit per wallet
/// for its payments' total, then every ledger entry in one insert, then COMMIT. Replays and
/// unknown codes are answered from inside the batch; a wallet that does not cover its total
/// fails the batch ([`batch_does_not_fit`]), which is then run one payment at a time.
async fn batch(tx: &mut dyn Tx, payments: Vec<WalletPayment>) -> Result<Vec<Result<PosRecord>>> {
    let mut answers: Vec<Option<Result<PosRecord>>> = payments.iter().map(|_| None).collect();
    let mut by_signature: Vec<usize> = (0..payments.len()).collect();
    by_signature.sort_by(|a, b| {
        let key = |i: &usize| payments[*i].seen.as_ref().map(|s| (s.public_id.clone(), s.sign.clone()));
        key(a).cmp(&key(b))
    });
    for i in by_signature {
        if !remember(tx, &payments[i].seen).await? {
            answers[i] = Some(Err(replayed()));
        }
    }
    let mut written = Vec::new();
    for (i, p) in payments.into_iter().enumerate() {
        if answers[i].is_none() {
            match write_rows(tx, p).await? {
                Some(w) => written.push((i, w)),
                None => answers[i] = Some(Err(unknown_code())),
            }
        }
    }
    // Each wallet's payments, in the order they came, under the wallets' id order.
    let mut wallets: BTreeMap<(i64, &str, bool), Vec<usize>> = BTreeMap::new();
    for (k, (_, w)) in written.iter().enumerate() {
        wallets.entry((w.member_id, w.scope.app_id.as_str(), w.scope.mode.is_live())).or_default().push(k);
    }
    let mut balances = vec![0; written.len()];
    for ((member_id, _, _), mine) in &wallets {
        let total: i64 = mine.iter().map(|k| written[*k].1.debit().fen()).sum();
        let debit = member_scoped(&written[mine[0]].1.scope, *member_id, [SqlParam::Int(total)]);
        let Some(mut balance) = tx.query_opt(DEBIT, &debit, |r| r.int(0)).await? else {
            return Err(batch_does_not_fit());
        };
        // The ledger reads as if they were debited one by one, in the order they came.
        balance += total;
        for k in mine {
            balance -= written[*k].1.debit().fen();
            balances[*k] = balance;
        }
    }
    let entries: Vec<LedgerEntry> = written.iter().zip(&balances).map(|((_, w), b)| w.ledger_entry(*b)).collect();
    if !entries.is_empty() {
        record_payments(tx, &entries).await?;
    }
    for ((i, w), balance) in written.into_iter().zip(balances) {
        answers[i] = Some(Ok(w.answer(balance)));
    }
    Ok(answers.into_iter().map(|a| a.unwrap_or_else(|| Err(Problem::internal("a payment left unanswered")))).collect())
}

/// A lone payment's job: its refusals are answers, and its transaction commits the signature.
async fn run_one<B: Backend>(db: &B, payment: WalletPayment) -> Result<PosRecord> {
    db.run(Access::Write, move |tx| Box::pin(one(tx, payment))).await?
}

/// Batches of wallet payments for a backend that batches: a batch of one is a lone payment; a
/// batch that fails for any reason but the database being away is run one payment at a time,
/// so that a payment fails only for its own reasons.
pub fn coalescer<B: Backend>(db: Arc<B>, limits: Limits) -> Coalescer<WalletPayment, PosRecord> {
    Coalescer::new(limits, move |payments: Vec<WalletPayment>| -> BatchFuture<PosRecord> {
        let db = db.clone();
        Box::pin(async move {
            let payments = match <[WalletPayment; 1]>::try_from(payments) {
                Ok([payment]) => return vec![run_one(&*db, payment).await],
                Err(payments) => payments,
            };
            let all = payments.clone();
            match db.run(Access::Write, move |tx| Box::pin(batch(tx, all))).await {
                Ok(answers) => answers,
                Err(e) if e.kind == ProblemKind::Unavailable => payments.iter().map(|_| Err(e.clone())).collect(),
                Err(_) => {
                    let mut answers = Vec::with_capacity(payments.len());
                    for payment in payments {
                        answers.push(run_one(&*db, payment).await);
                    }
                    answers
                }
            }
        })
    })
}
