//! Reconciliation (对账, issue 14): a channel's daily bill against paygate's books for the same Beijing-time day.
//! The objects the API shows (a run's statement, a discrepancy) and the day they are about; the matching itself
//! lives with the bills it reads (`paygate-core`'s `reconcile`).

use crate::accounts::Provider;
use crate::{Mode, Problem, BEIJING_OFFSET_SECONDS};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const RECONCILIATION_COMPLETED: &str = "reconciliation.completed";
pub const RECONCILIATION_DISCREPANCY: &str = "reconciliation.discrepancy";

/// A Beijing-time calendar day, as the channels' bills name them (`yyyy-MM-dd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BillDate {
    pub year: i64,
    pub month: i64,
    pub day: i64,
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days-from-civil; the inverse of [`crate::civil`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl BillDate {
    /// `yyyy-MM-dd`, a real calendar day between 2000 and 2999; `param` names the field in the error.
    pub fn parse(param: &str, s: &str) -> Result<BillDate, Problem> {
        let bad = || Problem::invalid(param, format!("{param} must be a day as yyyy-MM-dd, got '{s}'."));
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<i64, Problem> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<i64>().map_err(|_| bad())
        };
        let date = BillDate { year: num(0..4)?, month: num(5..7)?, day: num(8..10)? };
        // A day that does not exist (2026-02-30) comes back as another day.
        if !(2000..3000).contains(&date.year) || BillDate::of(date.start()) != date {
            return Err(bad());
        }
        Ok(date)
    }

    /// The Beijing day `unix` falls on.
    pub fn of(unix: i64) -> BillDate {
        let t = crate::BeijingTime::of(unix);
        BillDate { year: t.year, month: t.month, day: t.day }
    }

    /// The unix time the day begins (00:00:00 Beijing); it ends 86 400 s later.
    pub fn start(self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400 - BEIJING_OFFSET_SECONDS
    }

    pub fn end(self) -> i64 {
        self.start() + 86_400
    }

    pub fn next(self) -> BillDate {
        BillDate::of(self.end())
    }

    pub fn previous(self) -> BillDate {
        BillDate::of(self.start() - 1)
    }
}

impl std::fmt::Display for BillDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Count and amount (fen) of one side's rows of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Totals {
    pub count: i64,
    pub amount: i64,
}

impl Totals {
    pub fn add(&mut self, amount: i64) {
        self.count = self.count.saturating_add(1);
        self.amount = self.amount.saturating_add(amount);
    }
}

/// How one run ended: totals by kind for both sides, fees, and how many rows ended in each outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Statement {
    /// Payments paygate shows as paid that day / the bill's successful payment rows.
    pub paygate_payments: Totals,
    pub channel_payments: Totals,
    /// Refunds paygate shows as succeeded that day / the bill's refund rows.
    pub paygate_refunds: Totals,
    pub channel_refunds: Totals,
    /// The channel's fees on the bill (fen; refunds return fee as negative rows) and paygate's computed ones.
    pub channel_fees: i64,
    pub paygate_fees: i64,
    pub bill_rows: i64,
    pub consistent: i64,
    /// paygate rows the bill did not show yet: looked for in the next day's bill before they are flagged.
    pub carried: i64,
    pub missing_locally: i64,
    pub missing_at_channel: i64,
    pub mismatch: i64,
    /// Rows missing locally that asking the channel settled through the normal notification path.
    pub recovered: i64,
    /// Whether the channel had a bill for the day (no bill = nothing happened there).
    pub bill_present: bool,
    pub bill_bytes: i64,
    /// The rows the bill says it holds (its summary), beside `bill_rows` read: a difference is worth a look.
    #[serde(default)]
    pub bill_stated_rows: Option<i64>,
}

impl Statement {
    pub fn discrepancies(&self) -> i64 {
        self.missing_locally.saturating_add(self.missing_at_channel).saturating_add(self.mismatch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DiscrepancyKind {
    /// Money at the channel that paygate does not show as paid (or refunded).
    MissingLocally,
    /// paygate shows it paid (refunded); the channel's bills have no such success.
    MissingAtChannel,
    /// Both have it; amount, status or fee differ.
    Mismatch,
}

impl DiscrepancyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::MissingLocally => "missing_locally",
            DiscrepancyKind::MissingAtChannel => "missing_at_channel",
            DiscrepancyKind::Mismatch => "mismatch",
        }
    }

    pub fn parse(param: &str, s: &str) -> Result<DiscrepancyKind, Problem> {
        match s {
            "missing_locally" => Ok(DiscrepancyKind::MissingLocally),
            "missing_at_channel" => Ok(DiscrepancyKind::MissingAtChannel),
            "mismatch" => Ok(DiscrepancyKind::Mismatch),
            _ => Err(Problem::invalid(
                param,
                format!("{param} must be missing_locally, missing_at_channel or mismatch, got '{s}'."),
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DiscrepancyState {
    Open,
    /// A later run (or the re-query of this one) found the row consistent.
    ResolvedAutomatically,
    /// A person resolved it with a note.
    ResolvedManually,
}

impl DiscrepancyState {
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyState::Open => "open",
            DiscrepancyState::ResolvedAutomatically => "resolved_automatically",
            DiscrepancyState::ResolvedManually => "resolved_manually",
        }
    }

    pub fn parse(param: &str, s: &str) -> Result<DiscrepancyState, Problem> {
        match s {
            "open" => Ok(DiscrepancyState::Open),
            "resolved_automatically" => Ok(DiscrepancyState::ResolvedAutomatically),
            "resolved_manually" => Ok(DiscrepancyState::ResolvedManually),
            _ => Err(Problem::invalid(
                param,
                format!("{param} must be open, resolved_automatically or resolved_manually, got '{s}'."),
            )),
        }
    }
}

/// One run over one day's bill (a rerun of the day is a new version).
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciliation {
    pub id: String,
    pub app_id: String,
    pub mode: Mode,
    pub provider: Provider,
    pub bill_date: BillDate,
    pub version: i64,
    pub created: i64,
    pub statement: Statement,
    /// Keys of paygate rows carried to the next day, and of other days' rows this bill showed.
    pub carried: Vec<String>,
    pub matched_elsewhere: Vec<String>,
}

impl Reconciliation {
    pub fn result(&self) -> &'static str {
        if self.statement.discrepancies() == 0 {
            "consistent"
        } else {
            "discrepancies"
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "object": "reconciliation",
            "app": self.app_id,
            "livemode": self.mode.is_live(),
            "channel": self.provider.as_str(),
            "bill_date": self.bill_date.to_string(),
            "version": self.version,
            "created": self.created,
            "result": self.result(),
            "statement": self.statement,
        })
    }
}

/// Something a run found wrong, kept once per (channel, kind, row key) however many runs see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Discrepancy {
    pub id: String,
    pub app_id: String,
    pub mode: Mode,
    pub provider: Provider,
    pub reconciliation_id: String,
    pub bill_date: BillDate,
    pub kind: DiscrepancyKind,
    /// `payment:<merchant no>` or `refund:<merchant refund no>`.
    pub object_key: String,
    /// What each side showed, and which fields differ.
    pub details: Value,
    pub state: DiscrepancyState,
    pub resolution_note: Option<String>,
    pub created: i64,
    pub resolved: Option<i64>,
}

impl Discrepancy {
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "id": self.id,
            "object": "reconciliation_discrepancy",
            "app": self.app_id,
            "livemode": self.mode.is_live(),
            "channel": self.provider.as_str(),
            "reconciliation": self.reconciliation_id,
            "bill_date": self.bill_date.to_string(),
            "kind": self.kind,
            "key": self.object_key,
            "details": self.details,
            "state": self.state,
            "resolution_note": self.resolution_note,
            "created": self.created,
            "resolved": self.resolved,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_begin_at_beijing_midnight() {
        let d = BillDate::parse("date", "2026-12-01").unwrap();
        // 2026-12-01 00:00:00 +08:00 = 2026-11-30 16:00:00 UTC.
        assert_eq!(d.start(), 1_796_054_400);
        assert_eq!(BillDate::of(d.start()), d);
        assert_eq!(BillDate::of(d.start() - 1).to_string(), "2026-11-30");
        assert_eq!(d.next().to_string(), "2026-12-02");
        assert_eq!(BillDate::parse("date", "2024-03-01").unwrap().previous().to_string(), "2024-02-29");
        assert_eq!(BillDate::parse("date", "2026-12-31").unwrap().next().to_string(), "2027-01-01");
    }

    #[test]
    fn impossible_days_are_refused_naming_the_field() {
        for bad in ["2026-02-30", "2026-13-01", "2026-1-01", "20261201", "", "2026-12-0x", "1999-01-01", "+026-12-01"] {
            let err = BillDate::parse("bill_date", bad).unwrap_err();
            assert!(err.message.contains("bill_date"), "{bad}: {}", err.message);
        }
    }
}
