//! Daily trade bills, as WeChat writes them: a CSV whose every value starts with a backtick, amounts in yuan
//! with two decimals, then a summary. v2 `downloadbill` answers the text; v3 `tradebill` answers a download URL
//! and the file's SHA1, optionally gzipped (stored blocks: valid gzip without a compression crate).

use super::state::{Order, RefundStatus};
use paygate_domain::BeijingTime;

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,\
付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,\
商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY: &str = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

/// The fee WeChat keeps: 0.6 %, half up, in fen.
fn fee(amount: i64) -> i64 {
    (amount * 6 + 500) / 1000
}

/// Fen as yuan with two decimals, without floats.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

fn on_day(unix: i64, day: (i64, i64, i64)) -> bool {
    let t = BeijingTime::of(unix);
    (t.year, t.month, t.day) == day
}

/// Parses `yyyyMMdd` (v2) or `yyyy-MM-dd` (v3).
pub fn parse_day(s: &str) -> Option<(i64, i64, i64)> {
    let digits: String = s.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i64>().ok();
    Some((n(0..4)?, n(4..6)?, n(6..8)?))
}

/// The bill of one merchant's day; `None` when nothing happened that day (WeChat: "No Bill Exist").
pub fn trade_bill<'a>(
    orders: impl Iterator<Item = &'a Order>,
    day: (i64, i64, i64),
    bill_type: &str,
) -> Option<String> {
    let mut rows = Vec::new();
    let (mut count, mut paid, mut refunded, mut fees, mut ordered, mut asked) = (0i64, 0i64, 0i64, 0i64, 0i64, 0i64);
    for o in orders {
        let cell = |v: &str| format!("`{v}");
        let base = |state: &str, at: i64| {
            vec![
                cell(&BeijingTime::of(at).dashed()),
                cell(&o.appid),
                cell(&o.mch_id),
                cell("0"),
                cell(""),
                cell(&o.transaction_id),
                cell(&o.out_trade_no),
                cell(&o.openid),
                cell(&o.trade_type),
                cell(state),
                cell("OTHERS"),
                cell("CNY"),
            ]
        };
        if let Some(at) = o.paid_at.filter(|at| on_day(*at, day)) {
            if matches!(bill_type, "ALL" | "SUCCESS") {
                let mut row = base("SUCCESS", at);
                row.extend(
                    [yuan(o.total), yuan(0), "0".into(), "0".into(), yuan(0), yuan(0), "".into(), "".into()]
                        .iter()
                        .map(|v| cell(v)),
                );
                row.extend(
                    [o.description.clone(), o.attach.clone(), yuan(fee(o.total)), "0.60%".into(), yuan(o.total)]
                        .iter()
                        .map(|v| cell(v)),
                );
                row.extend([cell("0.00"), cell("")]);
                rows.push(row.join(","));
                count += 1;
                paid += o.total;
                fees += fee(o.total);
                ordered += o.total;
            }
        }
        for r in o.refunds.iter().filter(|r| r.status == RefundStatus::Success) {
            let Some(at) = r.success_at.filter(|at| on_day(*at, day)) else { continue };
            if !matches!(bill_type, "ALL" | "REFUND") {
                continue;
            }
            let mut row = base("REFUND", at);
            row.extend(
                [yuan(0), yuan(0), r.refund_id.clone(), r.out_refund_no.clone(), yuan(r.amount), yuan(0)]
                    .iter()
                    .map(|v| cell(v)),
            );
            row.extend(
                ["ORIGINAL".to_string(), "SUCCESS".into(), o.description.clone(), o.attach.clone()]
                    .iter()
                    .map(|v| cell(v)),
            );
            row.extend(
                [yuan(-fee(r.amount)), "0.60%".into(), yuan(0), yuan(r.amount), "".into()].iter().map(|v| cell(v)),
            );
            rows.push(row.join(","));
            count += 1;
            refunded += r.amount;
            fees -= fee(r.amount);
            asked += r.amount;
        }
    }
    if rows.is_empty() {
        return None;
    }
    let totals = [count.to_string(), yuan(paid), yuan(refunded), yuan(0), yuan(fees), yuan(ordered), yuan(asked)];
    let totals: Vec<String> = totals.iter().map(|v| format!("`{v}")).collect();
    Some(format!("{HEADER}\r\n{}\r\n{SUMMARY}\r\n{}\r\n", rows.join("\r\n"), totals.join(",")))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A gzip file of `data` in stored (uncompressed) deflate blocks.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xFFFF).peekable();
    if chunks.peek().is_none() {
        out.extend([1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = u8::from(chunks.peek().is_none());
        // Chunks are at most 0xFFFF bytes, so the length fits u16.
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(last);
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(chunk);
    }
    out.extend(crc32(data).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_without_floats() {
        assert_eq!(
            (yuan(1), yuan(100), yuan(123_456), yuan(-5)),
            ("0.01".into(), "1.00".into(), "1234.56".into(), "-0.05".into())
        );
        assert_eq!(parse_day("2026-11-30"), Some((2026, 11, 30)));
        assert_eq!(parse_day("20261130"), Some((2026, 11, 30)));
        assert_eq!(parse_day("2026-1-30"), None);
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
