//! What both simulators add for reconciliation tests: bill doctoring (`POST /sim/…/bills/doctor`: a trade left
//! out of the bill, another amount or fee, another time), bulk seeding of already-paid trades
//! (`POST /sim/…/bills/seed`), a table CRC-32 fast enough for 100 000-row bills, and a bounded store of bill
//! files. Doctoring is kept per (merchant, out_trade_no) and applied when a bill is written, so it changes only
//! bills written after it.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// How one trade's rows are misreported. Fields not set leave the truth.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doctor {
    /// The bill leaves out every row of the trade (a payment the channel never saw).
    pub omit: bool,
    /// The payment row's amount, in fen.
    pub amount: Option<i64>,
    /// The payment row's fee, in fen (the channel's charge; written with the bill's own sign).
    pub fee: Option<i64>,
    /// When the payment row says it happened (and so which day's bill carries it), unix seconds.
    pub at: Option<i64>,
}

/// Doctoring by (merchant id or app id, out_trade_no).
#[derive(Debug, Default)]
pub struct Doctors(HashMap<(String, String), Doctor>);

impl Doctors {
    pub fn get(&self, merchant: &str, out_trade_no: &str) -> Option<&Doctor> {
        if self.0.is_empty() {
            return None;
        }
        self.0.get(&(merchant.to_string(), out_trade_no.to_string()))
    }

    /// Applies a `/bills/doctor` body for `merchant`: fields given replace, `"clear": true` forgets the trade's.
    /// Answers what the trade's doctoring is now.
    pub fn apply(&mut self, merchant: &str, body: &Value) -> Result<Value, String> {
        let no = body
            .get("out_trade_no")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or("out_trade_no is required")?;
        let key = (merchant.to_string(), no.to_string());
        if body.get("clear").and_then(Value::as_bool) == Some(true) {
            self.0.remove(&key);
            return Ok(serde_json::json!({"out_trade_no": no, "doctored": false}));
        }
        let mut doctor = self.0.get(&key).cloned().unwrap_or_default();
        let mut changed = false;
        if let Some(v) = body.get("omit") {
            doctor.omit = v.as_bool().ok_or("omit must be true or false")?;
            changed = true;
        }
        if let Some(v) = body.get("amount") {
            doctor.amount = Some(fen(v, "amount", 1)?);
            changed = true;
        }
        if let Some(v) = body.get("fee") {
            doctor.fee = Some(fen(v, "fee", 0)?);
            changed = true;
        }
        if let Some(v) = body.get("at") {
            doctor.at = Some(unix(v, "at")?);
            changed = true;
        }
        if !changed {
            return Err("say what to change: omit, amount, fee or at (or clear)".into());
        }
        let view = serde_json::json!({"out_trade_no": no, "doctored": true, "omit": doctor.omit,
            "amount": doctor.amount, "fee": doctor.fee, "at": doctor.at});
        self.0.insert(key, doctor);
        Ok(view)
    }
}

/// The largest amount a bill row may carry: 100 000 000.00 yuan (both channels' single-trade limit).
pub const MAX_FEN: i64 = 10_000_000_000;

/// An integer of fen from `min` to [`MAX_FEN`].
pub fn fen(v: &Value, name: &str, min: i64) -> Result<i64, String> {
    v.as_i64()
        .filter(|n| (min..=MAX_FEN).contains(n))
        .ok_or_else(|| format!("{name} must be an integer of fen from {min} to {MAX_FEN}"))
}

/// Unix seconds from 2000 to 2099 (bills are Beijing days; nothing else is a plausible payment time).
pub fn unix(v: &Value, name: &str) -> Result<i64, String> {
    v.as_i64()
        .filter(|n| (946_684_800..4_102_444_800).contains(n))
        .ok_or_else(|| format!("{name} must be unix seconds (2000 to 2099)"))
}

/// One row of a `/bills/seed` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRow {
    pub out_trade_no: String,
    /// WeChat transaction_id / Alipay trade_no; made up when absent.
    pub channel_no: Option<String>,
    pub amount: i64,
    pub paid_at: i64,
}

/// The most rows one seed call takes.
pub const MAX_SEED_ROWS: usize = 1_000_000;

/// An order number as both channels accept it: 1 to 64 of `[A-Za-z0-9_-|*@.]` (a comma would break the CSV).
fn order_no(v: Option<&Value>, name: &str, at: usize) -> Result<Option<String>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(None) };
    let s = v.as_str().ok_or_else(|| format!("rows[{at}].{name} must be a string"))?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@' | b'.'));
    if !ok {
        return Err(format!("rows[{at}].{name} must be 1 to 64 of [A-Za-z0-9_-|*@.]"));
    }
    Ok(Some(s.to_string()))
}

/// The rows of a seed body; `channel_field` is `transaction_id` (WeChat) or `trade_no` (Alipay). Duplicate
/// out_trade_no or channel numbers within the body are refused.
pub fn seed_rows(body: &Value, channel_field: &str) -> Result<Vec<SeedRow>, String> {
    let rows = body.get("rows").and_then(Value::as_array).ok_or("rows must be an array")?;
    if rows.is_empty() || rows.len() > MAX_SEED_ROWS {
        return Err(format!("rows must have 1 to {MAX_SEED_ROWS} rows"));
    }
    let mut out = Vec::with_capacity(rows.len());
    let mut seen_no = std::collections::HashSet::with_capacity(rows.len());
    let mut seen_channel = std::collections::HashSet::new();
    for (at, row) in rows.iter().enumerate() {
        let out_trade_no = order_no(row.get("out_trade_no"), "out_trade_no", at)?
            .ok_or_else(|| format!("rows[{at}].out_trade_no is required"))?;
        let channel_no = order_no(row.get(channel_field), channel_field, at)?;
        let amount = fen(row.get("amount").unwrap_or(&Value::Null), &format!("rows[{at}].amount"), 1)?;
        let paid_at = unix(row.get("paid_at").unwrap_or(&Value::Null), &format!("rows[{at}].paid_at"))?;
        if !seen_no.insert(out_trade_no.clone()) {
            return Err(format!("rows[{at}].out_trade_no {out_trade_no} appears twice"));
        }
        if let Some(c) = &channel_no {
            if !seen_channel.insert(c.clone()) {
                return Err(format!("rows[{at}].{channel_field} {c} appears twice"));
            }
        }
        out.push(SeedRow { out_trade_no, channel_no, amount, paid_at });
    }
    Ok(out)
}

/// The fee both simulators charge: 0.6 %, half up, in fen (amounts are bounded by [`MAX_FEN`], so no overflow).
pub fn fee(amount: i64) -> i64 {
    (amount.saturating_mul(6) + 500) / 1000
}

const fn crc_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC_TABLE: [u32; 256] = crc_table();

/// CRC-32 (IEEE, reflected; gzip and ZIP), a byte at a time from a table: a 100 000-row bill is tens of MiB.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The most bill files a simulator keeps for download (the oldest go first): a 100 000-row bill is tens of MiB.
pub const MAX_BILL_FILES: usize = 16;

static BILL_SEQ: AtomicU64 = AtomicU64::new(0);

/// A download token that sorts by age (a running number, then randomness), so the oldest file can be dropped.
pub fn bill_token() -> String {
    let n = BILL_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{n:012}{}", paygate_channels::wechat::v3::random_token(20))
}

/// Keeps `file` under `token`, dropping the oldest files beyond [`MAX_BILL_FILES`].
pub fn keep_bill(bills: &mut HashMap<String, Vec<u8>>, token: String, file: Vec<u8>) {
    while bills.len() >= MAX_BILL_FILES {
        let Some(oldest) = bills.keys().min().cloned() else { break };
        bills.remove(&oldest);
    }
    bills.insert(token, file);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn doctoring_merges_and_clears_and_refuses_nonsense() {
        let mut d = Doctors::default();
        d.apply("m", &json!({"out_trade_no": "o1", "amount": 99})).unwrap();
        d.apply("m", &json!({"out_trade_no": "o1", "fee": 0})).unwrap();
        assert_eq!(d.get("m", "o1"), Some(&Doctor { omit: false, amount: Some(99), fee: Some(0), at: None }));
        assert_eq!(d.get("other", "o1"), None);
        d.apply("m", &json!({"out_trade_no": "o1", "clear": true})).unwrap();
        assert_eq!(d.get("m", "o1"), None);
        for bad in [
            json!({"omit": true}),
            json!({"out_trade_no": "o1"}),
            json!({"out_trade_no": "o1", "amount": 0}),
            json!({"out_trade_no": "o1", "amount": 1.5}),
            json!({"out_trade_no": "o1", "fee": -1}),
            json!({"out_trade_no": "o1", "at": "2026-11-30"}),
            json!({"out_trade_no": "o1", "omit": "yes"}),
        ] {
            assert!(d.apply("m", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_rows_are_checked_whole() {
        let ok = json!({"rows": [{"out_trade_no": "a1", "amount": 100, "paid_at": 1_764_000_000},
            {"out_trade_no": "a2", "trade_no": "T2", "amount": 1, "paid_at": 1_764_000_001}]});
        let rows = seed_rows(&ok, "trade_no").unwrap();
        assert_eq!(rows[1].channel_no.as_deref(), Some("T2"));
        for bad in [
            json!({"rows": []}),
            json!({"rows": [{"out_trade_no": "a,1", "amount": 1, "paid_at": 1_764_000_000}]}),
            json!({"rows": [{"out_trade_no": "a1", "amount": 0, "paid_at": 1_764_000_000}]}),
            json!({"rows": [{"out_trade_no": "a1", "amount": 1}]}),
            json!({"rows": [{"out_trade_no": "a1", "amount": 1, "paid_at": 1}, {"out_trade_no": "a1"}]}),
            json!({"rows": [{"out_trade_no": "a1", "amount": 1, "paid_at": 1_764_000_000},
                {"out_trade_no": "a1", "amount": 1, "paid_at": 1_764_000_000}]}),
        ] {
            assert!(seed_rows(&bad, "trade_no").is_err(), "{bad}");
        }
    }

    #[test]
    fn bill_files_are_bounded_and_the_oldest_goes() {
        let mut bills = HashMap::new();
        let first = bill_token();
        keep_bill(&mut bills, first.clone(), vec![1]);
        for _ in 0..MAX_BILL_FILES {
            keep_bill(&mut bills, bill_token(), vec![2]);
        }
        assert_eq!(bills.len(), MAX_BILL_FILES);
        assert!(!bills.contains_key(&first));
    }
}
