//! Daily trade bills, as WeChat writes them: a CSV whose every value starts with a backtick, amounts in yuan
//! with two decimals, then a summary. v2 `downloadbill` answers the text; v3 `tradebill` answers a download URL
//! and the file's SHA1, optionally gzipped (stored blocks: valid gzip without a compression crate).

use super::state::{Order, Refund, RefundStatus};
use crate::recon::{crc32, fee, Doctor, Doctors};
use paygate_domain::BeijingTime;

const HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,\
付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,\
商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SUMMARY: &str = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

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

/// One row of a bill before it is written: when, and what.
struct Entry<'a> {
    at: i64,
    order: &'a Order,
    /// `None`: the payment row.
    refund: Option<&'a Refund>,
    doctor: Option<&'a Doctor>,
}

/// The bill of one merchant's day; `None` when nothing happened that day (WeChat: "No Bill Exist"). Payments are
/// billed on the day they were paid; refunds on the day they succeeded, or, while still PROCESSING, on the day
/// they were applied for (退款状态 PROCESSING, as WeChat bills them). `doctors` misreport trades on purpose
/// (`/sim/wechat/bills/doctor`). Rows are in time order.
pub fn trade_bill<'a>(
    orders: impl Iterator<Item = &'a Order>,
    day: (i64, i64, i64),
    bill_type: &str,
    doctors: &'a Doctors,
) -> Option<String> {
    let payments = matches!(bill_type, "ALL" | "SUCCESS");
    let refunds = matches!(bill_type, "ALL" | "REFUND");
    let mut entries = Vec::new();
    for o in orders {
        let doctor = doctors.get(&o.mch_id, &o.out_trade_no);
        if doctor.is_some_and(|d| d.omit) {
            continue;
        }
        if payments {
            let at = o.paid_at.map(|paid| doctor.and_then(|d| d.at).unwrap_or(paid));
            if let Some(at) = at.filter(|at| on_day(*at, day)) {
                entries.push(Entry { at, order: o, refund: None, doctor });
            }
        }
        if refunds {
            for r in &o.refunds {
                let at = match r.status {
                    RefundStatus::Success => r.success_at,
                    RefundStatus::Processing => Some(r.created_at),
                    RefundStatus::Closed | RefundStatus::Abnormal => None,
                };
                if let Some(at) = at.filter(|at| on_day(*at, day)) {
                    entries.push(Entry { at, order: o, refund: Some(r), doctor });
                }
            }
        }
    }
    if entries.is_empty() {
        return None;
    }
    entries.sort_by(|a, b| {
        let refund_id = |e: &Entry<'a>| e.refund.map(|r| r.refund_id.as_str());
        (a.at, a.order.transaction_id.as_str(), refund_id(a)).cmp(&(
            b.at,
            b.order.transaction_id.as_str(),
            refund_id(b),
        ))
    });
    let (mut paid, mut refunded, mut fees, mut ordered, mut asked) = (0i64, 0i64, 0i64, 0i64, 0i64);
    let mut text = String::with_capacity(HEADER.len() + entries.len() * 320);
    text.push_str(HEADER);
    text.push_str("\r\n");
    for e in &entries {
        let o = e.order;
        let state = if e.refund.is_some() { "REFUND" } else { "SUCCESS" };
        let cells: [&str; 12] = [
            &BeijingTime::of(e.at).dashed(),
            &o.appid,
            &o.mch_id,
            "0",
            "",
            &o.transaction_id,
            &o.out_trade_no,
            &o.openid,
            &o.trade_type,
            state,
            "OTHERS",
            "CNY",
        ];
        for c in cells {
            push_cell(&mut text, c);
        }
        let (description, attach) = (plain(&o.description), plain(&o.attach));
        match e.refund {
            None => {
                let amount = e.doctor.and_then(|d| d.amount).unwrap_or(o.total);
                let fee = e.doctor.and_then(|d| d.fee).unwrap_or_else(|| fee(o.total));
                let (amount_text, fee_text) = (yuan(amount), yuan(fee));
                for c in [&amount_text, "0.00", "0", "0", "0.00", "0.00", "", "", &description, &attach, &fee_text] {
                    push_cell(&mut text, c);
                }
                for c in ["0.60%", &amount_text, "0.00", ""] {
                    push_cell(&mut text, c);
                }
                paid += amount;
                fees += fee;
                ordered += amount;
            }
            Some(r) => {
                let (amount_text, fee_text) = (yuan(r.amount), yuan(-fee(r.amount)));
                let status = r.status.as_str();
                for c in ["0.00", "0.00", &r.refund_id, &r.out_refund_no, &amount_text, "0.00", "ORIGINAL", status] {
                    push_cell(&mut text, c);
                }
                for c in [&description, &attach, &fee_text, "0.60%", "0.00", &amount_text, ""] {
                    push_cell(&mut text, c);
                }
                refunded += r.amount;
                fees -= fee(r.amount);
                asked += r.amount;
            }
        }
        // Every cell is followed by a comma; the row is not.
        text.pop();
        text.push_str("\r\n");
    }
    let count = entries.len().to_string();
    let totals = [count, yuan(paid), yuan(refunded), yuan(0), yuan(fees), yuan(ordered), yuan(asked)];
    let totals: Vec<String> = totals.iter().map(|v| format!("`{v}")).collect();
    text.push_str(SUMMARY);
    text.push_str("\r\n");
    text.push_str(&totals.join(","));
    text.push_str("\r\n");
    Some(text)
}

/// A backtick, the value, a comma.
fn push_cell(text: &mut String, value: &str) {
    text.push('`');
    text.push_str(value);
    text.push(',');
}

/// A merchant's free text without what would break a CSV row.
fn plain(text: &str) -> String {
    text.replace([',', '\r', '\n', '`'], " ")
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
    use super::super::config::Settings;
    use super::super::state::{Api, Books, NewRefund};
    use super::*;
    use crate::recon::SeedRow;

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

    /// 2026-11-30 12:00 Beijing.
    const NOON: i64 = 1_796_011_200;

    fn books() -> Books {
        let mut books = Books::default();
        let rows = [("p1", 10_000), ("p2", 10_000), ("p3", 555)].map(|(no, amount)| SeedRow {
            out_trade_no: no.into(),
            channel_no: None,
            amount,
            paid_at: NOON,
        });
        books.seed_paid("m", "wx1", rows.to_vec()).unwrap();
        books
    }

    fn refund(books: &mut Books, no: &str, amount: i64, hold: bool, at: i64) {
        let settings = Settings { hold_refunds: hold, ..Settings::default() };
        let req = NewRefund {
            api: Api::V2,
            mch_id: "m".into(),
            transaction_id: None,
            out_trade_no: Some("p1".into()),
            out_refund_no: no.into(),
            total: 10_000,
            amount,
            notify_url: String::new(),
            reason: String::new(),
        };
        books.refund(req, at, &settings).unwrap();
    }

    fn rows(bill: &str) -> Vec<Vec<&str>> {
        bill.lines().skip(1).take_while(|l| !l.starts_with("总交易单数")).map(|l| l.split(',').collect()).collect()
    }

    #[test]
    fn processing_refunds_are_billed_the_day_they_were_applied_and_the_summary_adds_up() {
        let mut books = books();
        refund(&mut books, "held", 1_000, true, NOON + 60);
        refund(&mut books, "done", 2_000, false, NOON + 120);
        let doctors = Doctors::default();
        let bill = trade_bill(books.orders(), (2026, 11, 30), "ALL", &doctors).unwrap();
        let rows = rows(&bill);
        assert_eq!(rows.len(), 5, "{bill}");
        assert!(rows.iter().all(|r| r.len() == 27 && r.iter().all(|c| c.starts_with('`'))), "{bill}");
        let times: Vec<&str> = rows.iter().map(|r| r[0]).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order: {times:?}");
        let held = rows.iter().find(|r| r[15] == "`held").unwrap();
        assert_eq!((held[9], held[16], held[19], held[22]), ("`REFUND", "`10.00", "`PROCESSING", "`-0.06"));
        let done = rows.iter().find(|r| r[15] == "`done").unwrap();
        assert_eq!(done[19], "`SUCCESS");
        // 3 payments (100 + 100 + 5.55, fees 0.60 + 0.60 + 0.03) and 2 refunds (10 + 20, fees -0.06 - 0.12).
        let summary = bill.lines().last().unwrap();
        assert_eq!(summary, "`5,`205.55,`30.00,`0.00,`1.05,`205.55,`30.00");
        // Settled a day later, the held refund leaves this day's bill for the next one.
        books.settle_refund("m", "held", RefundStatus::Success, NOON + 86_400).unwrap();
        assert_eq!(rows_of(&books, &doctors, (2026, 11, 30)), 4);
        assert_eq!(rows_of(&books, &doctors, (2026, 12, 1)), 1);
        let closed = trade_bill(books.orders(), (2026, 11, 29), "ALL", &doctors);
        assert_eq!(closed, None, "No Bill Exist");
    }

    fn rows_of(books: &Books, doctors: &Doctors, day: (i64, i64, i64)) -> usize {
        trade_bill(books.orders(), day, "ALL", doctors).map_or(0, |b| rows(&b).len())
    }

    #[test]
    fn doctored_trades_are_left_out_rewritten_or_moved() {
        let mut books = books();
        refund(&mut books, "r1", 1_000, false, NOON + 60);
        let mut doctors = Doctors::default();
        let apply = |d: &mut Doctors, v: serde_json::Value| d.apply("m", &v).unwrap();
        apply(&mut doctors, serde_json::json!({"out_trade_no": "p1", "omit": true}));
        apply(&mut doctors, serde_json::json!({"out_trade_no": "p2", "amount": 9_000, "fee": 0}));
        apply(&mut doctors, serde_json::json!({"out_trade_no": "p3", "at": NOON - 12 * 3600 - 1}));
        let bill = trade_bill(books.orders(), (2026, 11, 30), "ALL", &doctors).unwrap();
        let rows = rows(&bill);
        assert_eq!(rows.len(), 1, "p1 and its refund omitted, p3 moved: {bill}");
        assert_eq!((rows[0][6], rows[0][12], rows[0][22], rows[0][24]), ("`p2", "`90.00", "`0.00", "`90.00"));
        assert!(bill.ends_with("`1,`90.00,`0.00,`0.00,`0.00,`90.00,`0.00\r\n"), "{bill}");
        let before = trade_bill(books.orders(), (2026, 11, 29), "ALL", &doctors).unwrap();
        assert!(before.contains("`2026-11-29 23:59:59,") && before.contains("`p3,"), "{before}");
        // Only what is doctored changes; clearing restores the truth.
        apply(&mut doctors, serde_json::json!({"out_trade_no": "p1", "clear": true}));
        assert_eq!(rows_of(&books, &doctors, (2026, 11, 30)), 3);
    }
}
