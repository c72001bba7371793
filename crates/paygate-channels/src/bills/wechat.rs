//! WeChat Pay's trade bill (v2 `downloadbill`, v3 `tradebill` file): UTF-8 text, gzipped when asked, maybe a
//! BOM, a header line, rows whose every value starts with a backtick (so spreadsheets keep long numbers as
//! text), then a summary block: the line `总交易单数,…` and its totals line.

use super::{fail, numbered_lines, read_capped, Bill, BillError, BillKind, BillRow, BillSummary, Header};
use super::{parse_count, short, Record, MAX_DECOMPRESSED};
use flate2::read::MultiGzDecoder;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BOM: &str = "\u{feff}";

/// Reads a WeChat trade bill: text or gzip (magic 1f 8b), with or without a BOM, CR LF or LF.
pub fn parse_wechat_bill(bytes: &[u8]) -> Result<Bill, BillError> {
    parse_limited(bytes, MAX_DECOMPRESSED)
}

pub(super) fn parse_limited(bytes: &[u8], limit: usize) -> Result<Bill, BillError> {
    let unzipped;
    let data = if bytes.starts_with(&GZIP_MAGIC) {
        unzipped = read_capped(MultiGzDecoder::new(bytes), limit, "gzip")?;
        &unzipped[..]
    } else {
        bytes
    };
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        fail(line, "not UTF-8 text (a WeChat bill is UTF-8)")
    })?;
    parse_text(text.strip_prefix(BOM).unwrap_or(text))
}

/// A line's values. A line that starts with a backtick is split at ",`": every value starts with one, so a comma
/// inside a value (a product name) is not followed by one. Other lines (the headers) are split at commas.
fn fields(line: &str) -> Vec<&str> {
    fn clean(f: &str) -> &str {
        let f = f.trim_matches([' ', '\t']);
        f.strip_prefix('`').unwrap_or(f).trim_matches([' ', '\t'])
    }
    match line.trim_start_matches([' ', '\t']).strip_prefix('`') {
        Some(rest) => rest.split(",`").map(clean).collect(),
        None => line.split(',').map(clean).collect(),
    }
}

/// The columns a bill is read by; refund columns only matter once a REFUND row shows up (a SUCCESS bill has
/// none).
struct Columns {
    time: usize,
    transaction: usize,
    merchant: usize,
    state: usize,
    fee: usize,
    /// 订单金额, or 总金额 in older bills: what the payer's order was for.
    ordered: Option<usize>,
    settled: Option<usize>,
    coupon: Option<usize>,
    refund_id: Option<usize>,
    out_refund_no: Option<usize>,
    refunded: Option<usize>,
    refund_state: Option<usize>,
    refunded_at: Option<usize>,
    /// 申请退款金额: what the merchant asked to refund (what paygate's refund records), coupons included.
    asked: Option<usize>,
}

impl Columns {
    fn of(h: &Header) -> Result<Columns, BillError> {
        let c = Columns {
            time: h.need(&["交易时间"])?,
            transaction: h.need(&["微信订单号"])?,
            merchant: h.need(&["商户订单号"])?,
            state: h.need(&["交易状态"])?,
            fee: h.need(&["手续费"])?,
            ordered: h.find(&["订单金额", "总金额"]),
            settled: h.find(&["应结订单金额"]),
            coupon: h.find(&["代金券金额", "代金券或立减优惠金额"]),
            refund_id: h.find(&["微信退款单号"]),
            out_refund_no: h.find(&["商户退款单号"]),
            refunded: h.find(&["退款金额"]),
            refund_state: h.find(&["退款状态"]),
            refunded_at: h.find(&["退款成功时间"]),
            asked: h.find(&["申请退款金额"]),
        };
        if c.ordered.is_none() && c.settled.is_none() {
            return Err(fail(h.line, "the header has no 订单金额 or 应结订单金额 column"));
        }
        Ok(c)
    }

    fn row(&self, r: &Record<'_>) -> Result<BillRow, BillError> {
        let state = r.text(self.state).to_ascii_uppercase();
        let refund_col = |col: Option<usize>, name: &str| {
            col.ok_or_else(|| fail(r.line, format!("a REFUND row, but the header has no {name} column")))
        };
        let mut row = BillRow {
            kind: BillKind::Payment,
            transaction_no: r.text(self.transaction).to_string(),
            merchant_no: r.text(self.merchant).to_string(),
            refund_id: String::new(),
            out_refund_no: String::new(),
            amount: 0,
            fee: r.fen(self.fee, true)?,
            status: state.clone(),
            at: r.time(self.time)?,
        };
        if state == "REFUND" {
            row.kind = BillKind::Refund;
            row.refund_id = r.text(refund_col(self.refund_id, "微信退款单号")?).to_string();
            row.out_refund_no = r.text(refund_col(self.out_refund_no, "商户退款单号")?).to_string();
            // The amount asked (as paygate records a refund), like 订单金额 for payments; 退款金额 leaves out the
            // part a coupon paid. Older layouts without 申请退款金额 give 退款金额.
            let refunded = r.fen(refund_col(self.refunded, "退款金额")?, false)?;
            row.amount = match self.asked.filter(|c| !r.text(*c).is_empty()) {
                Some(col) => r.fen(col, false)?,
                None => refunded,
            };
            row.status = r.text(refund_col(self.refund_state, "退款状态")?).to_ascii_uppercase();
            if let Some(col) = self.refunded_at.filter(|c| !r.text(*c).is_empty()) {
                row.at = r.time(col)?;
            }
        } else {
            row.amount = match self.ordered.filter(|c| !r.text(*c).is_empty()) {
                Some(col) => r.fen(col, false)?,
                None => {
                    let settled = self.settled.ok_or_else(|| fail(r.line, "no 订单金额 and no 应结订单金额"))?;
                    r.sum(r.fen(settled, false)?, r.fen_or_zero(self.coupon, false)?)?
                }
            };
        }
        Ok(row)
    }
}

/// The summary's totals line under its `总交易单数,…` header.
fn summary(head: &Header, line: usize, text: &str) -> Result<BillSummary, BillError> {
    let r = head.record(line, fields(text))?;
    let rows = head.need(&["总交易单数"])?;
    Ok(BillSummary {
        rows: parse_count(r.text(rows)).ok_or_else(|| r.bad(rows, "is not a count"))?,
        paid: r.fen(head.need(&["订单总金额", "总交易额", "应结订单总金额"])?, false)?,
        refunded: r.fen(head.need(&["退款总金额", "总退款金额"])?, false)?,
        fees: r.fen(head.need(&["手续费总金额"])?, true)?,
    })
}

fn parse_text(text: &str) -> Result<Bill, BillError> {
    let mut lines = numbered_lines(text).filter(|(_, l)| !l.trim().is_empty());
    let (n, first) = lines.next().ok_or_else(|| fail(0, "the bill is empty"))?;
    let header = Header::new(n, &fields(first));
    let columns = Columns::of(&header)?;
    let mut rows = Vec::new();
    let mut stated = None;
    while let Some((n, line)) = lines.next() {
        let values = fields(line);
        if values.first() == Some(&"总交易单数") {
            let head = Header::new(n, &values);
            let (n, totals) = lines.next().ok_or_else(|| fail(n, "the summary has no totals line"))?;
            stated = Some(summary(&head, n, totals)?);
            if let Some((n, extra)) = lines.next() {
                return Err(fail(n, format!("'{}' after the summary", short(extra))));
            }
            break;
        }
        rows.push(columns.row(&header.record(n, values)?)?);
    }
    // A bill whose summary is missing was cut short: say so rather than reconcile half a day.
    let stated = stated.ok_or_else(|| fail(0, "the bill has no summary (总交易单数) block: truncated?"))?;
    Ok(Bill { rows, summary: Some(stated) })
}
