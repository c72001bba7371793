//! Daily trade bills of the channels, read into one normalised shape for reconciliation (issue 14). A bill is
//! untrusted input downloaded from the channel: every number goes through checked arithmetic, decompression is
//! capped, and anything unexpected is a `BillError` naming the line and column, never a panic.
//!
//! Columns are found by their header name, never by position: WeChat's bill types (ALL, SUCCESS, REFUND) and its
//! older layouts have different columns, and Alipay has added columns over the years.

mod alipay;
mod wechat;
mod zip;

pub use alipay::parse_alipay_bill;
pub use wechat::parse_wechat_bill;

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BillKind {
    Payment,
    Refund,
}

/// One row of a channel's daily bill, normalised. Money in fen (i64), never floats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BillRow {
    pub kind: BillKind,
    /// WeChat 微信订单号 / Alipay 支付宝交易号 (of the payment, also on refund rows).
    pub transaction_no: String,
    /// WeChat 商户订单号 / Alipay 商户订单号: paygate's charges.channel_order_no.
    pub merchant_no: String,
    /// Refund rows: WeChat 微信退款单号 (channel refund id); empty for Alipay and for payments.
    pub refund_id: String,
    /// Refund rows: WeChat 商户退款单号 / Alipay 退款批次号/请求号 (paygate's refunds.refund_no).
    pub out_refund_no: String,
    /// Payment: the amount paid (WeChat 订单金额, else 应结订单金额 + 代金券金额; Alipay 订单金额（元）).
    /// Refund: the amount asked, positive (WeChat 申请退款金额, else 退款金额; Alipay abs(订单金额)).
    pub amount: i64,
    /// The channel's fee for this row in fen, as the bill signs it (WeChat refunds negative; Alipay 服务费).
    pub fee: i64,
    /// "SUCCESS" for a paid payment / succeeded refund; otherwise WeChat's 交易状态/退款状态 upper-case
    /// ("PROCESSING", "REFUNDCLOSE", "REVOKED", …). Alipay rows are "SUCCESS".
    pub status: String,
    /// When it happened (WeChat 交易时间, or 退款成功时间 on refund rows of bills that have it; Alipay 完成时间),
    /// Beijing time, as unix seconds.
    pub at: i64,
}

/// The totals the bill states about itself (WeChat's 总交易单数 block; Alipay's 交易合计 line and 汇总 file).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BillSummary {
    pub rows: i64,
    pub paid: i64,
    pub refunded: i64,
    pub fees: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub rows: Vec<BillRow>,
    pub summary: Option<BillSummary>,
}

/// Why a bill could not be read; names the line (1-based) and column where it can. Line 0: the file as a
/// whole (a damaged gzip or ZIP, a missing entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for BillError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for BillError {}

/// The most bytes a bill may decompress to. A real day of a busy merchant is tens of MiB; past this it is a
/// compression bomb or not a bill, and memory is what the check protects.
pub const MAX_DECOMPRESSED: usize = 512 << 20;

fn fail(line: usize, message: impl Into<String>) -> BillError {
    BillError { line, message: message.into() }
}

/// At most 40 characters of untrusted text for an error message.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Reads a decompressing `reader` to its end, refusing more than `limit` bytes (`what` names the format).
fn read_capped(reader: impl Read, limit: usize, what: &str) -> Result<Vec<u8>, BillError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(|e| fail(0, format!("the {what} data is damaged: {e}")))?;
    if out.len() > limit {
        return Err(fail(0, format!("the {what} data decompresses to more than {limit} bytes")));
    }
    Ok(out)
}

/// Yuan as the bills write it (`12.30`, `-0.06`; also `0` and `0.0` as WeChat's older bills do) → fen, exactly:
/// no floats, at most two decimals, a sign only where `signed`, checked arithmetic.
fn parse_fen(text: &str, signed: bool) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) if signed => (true, rest),
        Some(_) => return None,
        None => (false, text),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.len() <= 2 => (i, f),
        Some(_) => return None,
        None => (digits, ""),
    };
    if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut fen = 0i64;
    for b in int.bytes() {
        fen = fen.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    let mut frac = frac.bytes().map(|b| i64::from(b - b'0'));
    let cents = frac.next().unwrap_or(0) * 10 + frac.next().unwrap_or(0);
    fen = fen.checked_mul(100)?.checked_add(cents)?;
    Some(if negative { -fen } else { fen })
}

/// A count (`总交易单数`, `12笔`'s digits): ASCII digits, checked.
fn parse_count(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.bytes().try_fold(0i64, |n, b| n.checked_mul(10)?.checked_add(i64::from(b - b'0')))
}

/// Lines numbered from 1, CR LF or LF, without their line ending.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n').enumerate().map(|(i, l)| (i + 1, l.strip_suffix('\r').unwrap_or(l)))
}

/// Full-width parentheses as ASCII: Alipay writes `（元）`, a re-saved file may have `(元)`.
fn normalise_name(name: &str) -> String {
    name.trim().replace('（', "(").replace('）', ")")
}

/// A bill's header line: which column each name is in.
struct Header {
    line: usize,
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Header {
    fn new(line: usize, fields: &[&str]) -> Header {
        let names: Vec<String> = fields.iter().map(|f| normalise_name(f)).collect();
        let mut index = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            index.entry(name.clone()).or_insert(i);
        }
        Header { line, names, index }
    }

    /// The first of `names` (aliases across bill layouts) the header has.
    fn find(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| self.index.get(&normalise_name(n)).copied())
    }

    fn need(&self, names: &[&str]) -> Result<usize, BillError> {
        self.find(names).ok_or_else(|| fail(self.line, format!("the header has no {} column", names.join(" or "))))
    }

    /// The fields of a row, checked against the header: as many, or more only when the extra ones are empty
    /// (a trailing comma).
    fn record<'a>(&'a self, line: usize, fields: Vec<&'a str>) -> Result<Record<'a>, BillError> {
        let extra_filled = fields.iter().skip(self.names.len()).any(|f| !f.is_empty());
        if fields.len() < self.names.len() || extra_filled {
            return Err(fail(line, format!("{} fields, but the header has {}", fields.len(), self.names.len())));
        }
        Ok(Record { header: self, line, fields })
    }
}

/// One row's fields, read with errors that name the line and the column.
struct Record<'a> {
    header: &'a Header,
    line: usize,
    fields: Vec<&'a str>,
}

impl Record<'_> {
    fn text(&self, col: usize) -> &str {
        self.fields.get(col).copied().unwrap_or("")
    }

    fn bad(&self, col: usize, why: &str) -> BillError {
        let name = self.header.names.get(col).map_or("?", String::as_str);
        fail(self.line, format!("{name} '{}' {why}", short(self.text(col))))
    }

    fn fen(&self, col: usize, signed: bool) -> Result<i64, BillError> {
        parse_fen(self.text(col), signed).ok_or_else(|| {
            self.bad(
                col,
                if signed { "is not yuan with two decimals" } else { "is not non-negative yuan with two decimals" },
            )
        })
    }

    /// An amount column that may be empty (then 0).
    fn fen_or_zero(&self, col: Option<usize>, signed: bool) -> Result<i64, BillError> {
        match col {
            Some(c) if !self.text(c).is_empty() => self.fen(c, signed),
            _ => Ok(0),
        }
    }

    fn time(&self, col: usize) -> Result<i64, BillError> {
        crate::alipay::parse_timestamp(self.text(col))
            .map_err(|_| self.bad(col, "is not a Beijing time yyyy-MM-dd HH:mm:ss"))
    }

    fn sum(&self, a: i64, b: i64) -> Result<i64, BillError> {
        a.checked_add(b).ok_or_else(|| fail(self.line, "the amounts add up past what fen can hold"))
    }
}

/// Adds `value` into a running total, refusing overflow (the bill is untrusted).
fn add(total: &mut i64, value: i64, line: usize) -> Result<(), BillError> {
    *total = total.checked_add(value).ok_or_else(|| fail(line, "the totals add up past what fen can hold"))?;
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_alipay;
