use super::*;

fn pay_row(no: &str, txn: &str, amount: i64, fee: i64) -> BillRow {
    BillRow {
        kind: BillKind::Payment,
        transaction_no: txn.into(),
        merchant_no: no.into(),
        refund_id: String::new(),
        out_refund_no: String::new(),
        amount,
        fee,
        status: "SUCCESS".into(),
        at: 1_796_054_400,
    }
}

fn refund_row(no: &str, refund_no: &str, amount: i64, status: &str) -> BillRow {
    BillRow {
        kind: BillKind::Refund,
        refund_id: format!("5030{refund_no}"),
        out_refund_no: refund_no.into(),
        status: status.into(),
        fee: 0,
        ..pay_row(no, &format!("4200{no}"), amount, 0)
    }
}

fn paid(no: &str, amount: i64, fee: Option<i64>, in_day: bool) -> LocalPayment {
    LocalPayment {
        charge_id: format!("ch_{no}"),
        channel_order_no: no.into(),
        transaction_no: Some(format!("4200{no}")),
        amount,
        paid: true,
        status: "succeeded".into(),
        fee,
        time_paid: Some(1_796_054_500),
        in_day,
    }
}

fn refund(no: &str, amount: i64, status: RefundStatus, in_day: bool) -> LocalRefund {
    LocalRefund { refund_id: format!("re_{no}"), refund_no: no.into(), transaction_no: None, amount, status, in_day }
}

fn books(payments: Vec<LocalPayment>, refunds: Vec<LocalRefund>) -> Books {
    let mut b = Books::default();
    payments.into_iter().for_each(|p| b.add_payment(p));
    refunds.into_iter().for_each(|r| b.add_refund(r));
    b
}

fn none() -> HashSet<String> {
    HashSet::new()
}

fn kinds(m: &Matching) -> Vec<(DiscrepancyKind, String)> {
    m.found.iter().map(|f| (f.kind, f.key.clone())).collect()
}

#[test]
fn a_day_that_agrees_is_consistent_with_both_sides_totalled() {
    let b = books(
        vec![paid("A", 100, Some(1), true), paid("B", 250, None, true)],
        vec![refund("R1", 40, RefundStatus::Succeeded, true)],
    );
    let rows = [pay_row("A", "4200A", 100, 1), pay_row("B", "4200B", 250, 2), refund_row("A", "R1", 40, "SUCCESS")];
    let m = match_bill(&rows, &b, &none(), &none());
    assert!(m.found.is_empty(), "{:?}", m.found);
    assert!(m.carried.is_empty());
    assert_eq!(m.statement.consistent, 3);
    assert_eq!(m.statement.paygate_payments, paygate_domain::reconcile::Totals { count: 2, amount: 350 });
    assert_eq!(m.statement.channel_payments, m.statement.paygate_payments);
    assert_eq!((m.statement.paygate_refunds.amount, m.statement.channel_refunds.amount), (40, 40));
    assert_eq!(m.statement.channel_fees, 3);
    assert_eq!(m.statement.discrepancies(), 0);
}

#[test]
fn each_kind_of_discrepancy_is_found_once_with_its_kind() {
    let mut pending = paid("LOST", 300, None, false);
    pending.paid = false;
    pending.status = "pending".into();
    pending.transaction_no = None;
    let b = books(
        vec![paid("AMT", 100, None, true), paid("FEE", 1000, Some(6), true), pending],
        vec![refund("SLOW", 50, RefundStatus::Pending, false)],
    );
    let rows = [
        pay_row("AMT", "4200AMT", 101, 1),
        pay_row("FEE", "4200FEE", 1000, 9),
        pay_row("LOST", "4200LOST", 300, 2),
        pay_row("GHOST", "4200GHOST", 70, 0),
        refund_row("AMT", "SLOW", 50, "PROCESSING"),
    ];
    let m = match_bill(&rows, &b, &none(), &none());
    assert_eq!(
        kinds(&m),
        vec![
            (DiscrepancyKind::Mismatch, "payment:AMT".into()),
            (DiscrepancyKind::Mismatch, "payment:FEE".into()),
            (DiscrepancyKind::MissingLocally, "payment:LOST".into()),
            (DiscrepancyKind::MissingLocally, "payment:GHOST".into()),
            (DiscrepancyKind::Mismatch, "refund:SLOW".into()),
        ]
    );
    assert_eq!(m.found[0].details["fields"], json!(["amount"]));
    assert_eq!(m.found[1].details["fields"], json!(["fee"]));
    // The lost notification and the unfinished refund are asked about again; the unknown payment cannot be.
    assert_eq!(m.found[2].recheck, Some(Recheck::Charge("ch_LOST".into())));
    assert_eq!(m.found[3].recheck, None);
    assert_eq!(m.found[4].recheck, Some(Recheck::Refund("re_SLOW".into())));
    assert_eq!((m.statement.missing_locally, m.statement.mismatch), (2, 3));
}

#[test]
fn a_payment_the_bill_does_not_show_is_carried_once_then_missing_at_the_channel() {
    let b = books(vec![paid("LATE", 100, None, true)], vec![]);
    let day1 = match_bill(&[], &b, &none(), &none());
    assert!(day1.found.is_empty());
    assert_eq!(day1.carried, vec!["payment:LATE".to_string()]);
    assert_eq!(day1.statement.carried, 1);

    // Next day, billed late: consistent, nothing flagged.
    let carried: HashSet<String> = day1.carried.iter().cloned().collect();
    let next = books(vec![paid("LATE", 100, None, false)], vec![]);
    let day2 = match_bill(&[pay_row("LATE", "4200LATE", 100, 0)], &next, &carried, &none());
    assert!(day2.found.is_empty(), "{:?}", day2.found);
    assert!(day2.consistent.contains("payment:LATE"));
    assert_eq!(day2.matched_elsewhere, vec!["payment:LATE".to_string()]);

    // Next day, still not billed: missing at the channel, not carried again.
    let day2 = match_bill(&[], &next, &carried, &none());
    assert_eq!(kinds(&day2), vec![(DiscrepancyKind::MissingAtChannel, "payment:LATE".into())]);
    assert!(day2.carried.is_empty());
}

#[test]
fn a_row_the_previous_bill_showed_is_not_carried() {
    // Paid here at 00:00:01, billed by the channel the day before.
    let b = books(vec![paid("EARLY", 100, None, true)], vec![]);
    let before: HashSet<String> = ["payment:EARLY".to_string()].into();
    let m = match_bill(&[], &b, &none(), &before);
    assert!(m.found.is_empty() && m.carried.is_empty());
    assert!(m.consistent.contains("payment:EARLY"));
}

#[test]
fn refunds_compare_status_without_taking_processing_for_a_failure() {
    let b = books(
        vec![],
        vec![
            refund("OK", 10, RefundStatus::Succeeded, true),
            refund("LOSTNOTE", 20, RefundStatus::Pending, false),
            refund("CLOSED", 30, RefundStatus::Failed, false),
            refund("WRONG", 40, RefundStatus::Succeeded, true),
        ],
    );
    let rows = [
        refund_row("X", "OK", 10, "SUCCESS"),
        refund_row("X", "LOSTNOTE", 20, "SUCCESS"),
        refund_row("X", "CLOSED", 30, "REFUNDCLOSE"),
        refund_row("X", "WRONG", 40, "PROCESSING"),
    ];
    let m = match_bill(&rows, &b, &none(), &none());
    assert_eq!(
        kinds(&m),
        vec![
            (DiscrepancyKind::MissingLocally, "refund:LOSTNOTE".into()),
            (DiscrepancyKind::Mismatch, "refund:WRONG".into()),
        ]
    );
    assert!(m.consistent.contains("refund:OK") && m.consistent.contains("refund:CLOSED"));
}

#[test]
fn payments_are_found_by_transaction_no_before_merchant_no() {
    let b = books(vec![paid("OURS", 100, None, true)], vec![]);
    // The bill's merchant no. is blank (or different); the transaction no. names our charge.
    let m = match_bill(&[pay_row("", "4200OURS", 100, 0)], &b, &none(), &none());
    assert!(m.found.is_empty(), "{:?}", m.found);
    assert!(m.consistent.contains("payment:OURS"));
}

#[test]
fn a_final_refund_the_bill_contradicts_is_never_asked_about_and_stays_open() {
    // paygate says refunded; WeChat's bill says the refund was closed (money never went out): a person must look.
    let b = books(vec![], vec![refund("DONE", 30, RefundStatus::Succeeded, true)]);
    let m = match_bill(&[refund_row("X", "DONE", 30, "REFUNDCLOSE")], &b, &none(), &none());
    assert_eq!(kinds(&m), vec![(DiscrepancyKind::Mismatch, "refund:DONE".into())]);
    assert_eq!(m.found[0].recheck, None, "a final refund's sync asks nothing: no re-query may resolve it");
}

#[test]
fn rows_that_moved_no_money_are_seen_but_prove_nothing() {
    let mut closed = paid("OPEN", 100, None, false);
    closed.paid = false;
    let b = books(vec![closed], vec![]);
    let mut revoked = pay_row("OPEN", "4200OPEN", 100, 0);
    revoked.status = "REVOKED".into();
    let mut unknown = pay_row("NOBODY", "4200NOBODY", 100, 0);
    unknown.status = "CLOSED".into();
    let m = match_bill(&[revoked, unknown], &b, &none(), &none());
    assert!(m.found.is_empty() && m.carried.is_empty());
    assert!(m.consistent.is_empty(), "neutral rows resolve no open discrepancy: {:?}", m.consistent);
    assert_eq!(judge_row(&refund_row("X", "NEVER", 5, "REFUNDCLOSE"), &b), Verdict::Neutral("refund:NEVER".into()));
}
