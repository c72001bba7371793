//! Alipay's trade bill (`alipay.data.dataservice.bill.downloadurl.query`, bill_type trade): a ZIP (stored or
//! deflated) of GBK CSV files. `…_业务明细.csv` has one line per payment and per refund between `#` comment
//! lines, which end with `#交易合计：N笔，退款合计：M笔`; `…_业务明细(汇总).csv` has the day's totals. Real
//! bills pad values with tabs.

use super::{add, fail, normalise_name, numbered_lines, parse_count, zip, Bill, BillError, BillKind, BillRow};
use super::{BillSummary, Header, MAX_DECOMPRESSED};
use encoding_rs::GBK;
use std::borrow::Cow;

const DETAIL: &str = "业务明细.csv";
const SUMMARY: &str = "业务明细(汇总).csv";

/// Reads an Alipay trade bill: the ZIP as downloaded, or its 业务明细 CSV alone (GBK or UTF-8).
pub fn parse_alipay_bill(bytes: &[u8]) -> Result<Bill, BillError> {
    parse_limited(bytes, MAX_DECOMPRESSED)
}

pub(super) fn parse_limited(bytes: &[u8], limit: usize) -> Result<Bill, BillError> {
    if !(bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")) {
        return parse_detail(&decode(bytes)?, None);
    }
    let entries = zip::entries(bytes)?;
    let names: Vec<String> = entries.iter().map(entry_name).collect();
    let pick = |suffix: &str| -> Result<Option<usize>, BillError> {
        let mut found = names.iter().enumerate().filter(|(_, n)| n.ends_with(suffix)).map(|(i, _)| i);
        match (found.next(), found.next()) {
            (Some(_), Some(_)) => Err(fail(0, format!("the ZIP has more than one …{suffix} file"))),
            (one, _) => Ok(one),
        }
    };
    let detail = pick(DETAIL)?.ok_or_else(|| {
        let listed: Vec<&str> = names.iter().map(String::as_str).collect();
        fail(0, format!("the ZIP has no …{DETAIL} file (it has: {})", listed.join(", ")))
    })?;
    let detail = zip::read(bytes, &entries[detail], limit)?;
    let summary = match pick(SUMMARY)? {
        Some(i) => {
            let text = zip::read(bytes, &entries[i], limit.saturating_sub(detail.len()))?;
            summary_file(&decode(&text).map_err(|e| in_summary(&e))?).map_err(|e| in_summary(&e))?
        }
        None => None,
    };
    parse_detail(&decode(&detail)?, summary)
}

fn in_summary(e: &BillError) -> BillError {
    fail(0, format!("{SUMMARY}: {e}"))
}

/// An entry's name as text: UTF-8 when flagged or valid, else GBK as Alipay writes it; full-width
/// parentheses made ASCII.
fn entry_name(entry: &zip::Entry) -> String {
    let name = match std::str::from_utf8(&entry.name) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) if entry.utf8_name() => String::from_utf8_lossy(&entry.name),
        Err(_) => GBK.decode_without_bom_handling(&entry.name).0,
    };
    normalise_name(&name)
}

/// A CSV file's text: UTF-8 (a BOM dropped) when it is valid UTF-8, else GBK; a byte sequence neither
/// decodes is an error on its line.
fn decode(bytes: &[u8]) -> Result<Cow<'_, str>, BillError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(Cow::Borrowed(text));
    }
    if let Some(text) = GBK.decode_without_bom_handling_and_without_replacement(bytes) {
        return Ok(text);
    }
    // GBK's second bytes are 0x40..=0xFE, so no character spans a newline: decode line by line to say where.
    let line = bytes
        .split(|b| *b == b'\n')
        .position(|l| GBK.decode_without_bom_handling_and_without_replacement(l).is_none())
        .map_or(0, |i| i + 1);
    Err(fail(line, "neither GBK nor UTF-8 text"))
}

/// A CSV line's values, trimmed of the spaces and tabs Alipay pads them with; a value in double quotes may
/// hold commas (the quotes are dropped).
fn fields(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&line[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&line[start..]);
    out.into_iter()
        .map(|f| {
            let f = f.trim_matches([' ', '\t']);
            f.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(f)
        })
        .collect()
}

/// The number after `label` and a colon (full-width or not) in a comment such as `#交易合计：3笔，退款合计：1笔`.
fn count_after(line: &str, label: &str) -> Option<i64> {
    let rest = &line[line.find(label)? + label.len()..];
    let rest = rest.trim_start_matches(['：', ':', ' ']);
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    parse_count(&rest[..end])
}

struct Columns {
    trade_no: usize,
    merchant: usize,
    kind: usize,
    done: usize,
    amount: usize,
    request_no: Option<usize>,
    fee: Option<usize>,
}

fn parse_detail(text: &str, stated: Option<Stated>) -> Result<Bill, BillError> {
    let mut header: Option<(Header, Columns)> = None;
    let mut rows = Vec::new();
    let mut counted = None;
    for (n, line) in numbered_lines(text) {
        let line = line.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if let (Some(paid), Some(refunds)) = (count_after(line, "交易合计"), count_after(line, "退款合计"))
            {
                counted = Some(paid.checked_add(refunds).ok_or_else(|| fail(n, "the counts overflow"))?);
            }
            continue;
        }
        let Some((head, cols)) = &header else {
            let head = Header::new(n, &fields(line));
            let cols = Columns {
                trade_no: head.need(&["支付宝交易号"])?,
                merchant: head.need(&["商户订单号"])?,
                kind: head.need(&["业务类型"])?,
                done: head.need(&["完成时间"])?,
                amount: head.need(&["订单金额（元）"])?,
                request_no: head.find(&["退款批次号/请求号"]),
                fee: head.find(&["服务费（元）"]),
            };
            header = Some((head, cols));
            continue;
        };
        let r = head.record(n, fields(line))?;
        let amount = r.fen(cols.amount, true)?;
        let mut row = BillRow {
            kind: BillKind::Payment,
            transaction_no: r.text(cols.trade_no).to_string(),
            merchant_no: r.text(cols.merchant).to_string(),
            refund_id: String::new(),
            out_refund_no: String::new(),
            amount,
            fee: r.fen_or_zero(cols.fee, true)?,
            status: "SUCCESS".into(),
            at: r.time(cols.done)?,
        };
        match r.text(cols.kind) {
            "交易" if amount >= 0 => {}
            "交易" => return Err(r.bad(cols.amount, "is negative on a 交易 (payment) line")),
            "退款" => {
                row.kind = BillKind::Refund;
                row.amount = amount.checked_abs().ok_or_else(|| r.bad(cols.amount, "is out of range"))?;
                let col = cols.request_no.ok_or_else(|| fail(n, "a 退款 line, but no 退款批次号/请求号 column"))?;
                row.out_refund_no = r.text(col).to_string();
            }
            _ => return Err(r.bad(cols.kind, "is neither 交易 nor 退款")),
        }
        rows.push(row);
    }
    if header.is_none() {
        return Err(fail(0, "no header line (支付宝交易号,商户订单号,…): not an Alipay 业务明细 file"));
    }
    let summary = summarise(&rows, counted, stated)?;
    Ok(Bill { rows, summary })
}

/// What the 汇总 file states, when it states paid and refunded amounts.
struct Stated {
    rows: Option<i64>,
    paid: i64,
    refunded: i64,
    fees: Option<i64>,
}

/// The bill's own totals: the count from `#交易合计…` (or the 汇总's 总笔数), money from the 汇总 file when it
/// states it. What the bill does not state is summed from the rows, so it never disagrees with them.
fn summarise(rows: &[BillRow], counted: Option<i64>, stated: Option<Stated>) -> Result<Option<BillSummary>, BillError> {
    let Some(count) = counted.or(stated.as_ref().and_then(|s| s.rows)) else { return Ok(None) };
    let mut summed = BillSummary { rows: count, ..BillSummary::default() };
    for row in rows {
        let total = if row.kind == BillKind::Payment { &mut summed.paid } else { &mut summed.refunded };
        add(total, row.amount, 0)?;
        add(&mut summed.fees, row.fee, 0)?;
    }
    Ok(Some(match stated {
        Some(s) => BillSummary { rows: count, paid: s.paid, refunded: s.refunded, fees: s.fees.unwrap_or(summed.fees) },
        None => summed,
    }))
}

/// The 汇总 file's totals line, when its header names 订单金额 and 退款金额 (what the simulator writes); `None`
/// for a layout that does not state both.
fn summary_file(text: &str) -> Result<Option<Stated>, BillError> {
    let mut lines = numbered_lines(text).filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    let Some((n, first)) = lines.next() else { return Ok(None) };
    let head = Header::new(n, &fields(first));
    let (Some(paid), Some(refunded)) =
        (head.find(&["订单金额", "订单金额（元）"]), head.find(&["退款金额", "退款金额（元）"]))
    else {
        return Ok(None);
    };
    let Some((n, totals)) = lines.next() else { return Err(fail(n, "no totals line under the header")) };
    let r = head.record(n, fields(totals))?;
    let rows = match head.find(&["总笔数"]) {
        Some(col) => Some(parse_count(r.text(col)).ok_or_else(|| r.bad(col, "is not a count"))?),
        None => None,
    };
    let fees = match head.find(&["服务费", "服务费（元）"]) {
        Some(col) => Some(r.fen(col, true)?),
        None => None,
    };
    Ok(Some(Stated { rows, paid: r.fen(paid, true)?, refunded: r.fen(refunded, true)?, fees }))
}
