//! Bills as the simulators write them (the format copied literally from crates/paygate-sim, which depends on this
//! crate and so cannot be called from here), as the channels write them, and broken.

use super::*;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::time::Instant;

/// 2026-11-30 10:00:00 Beijing time.
pub(super) const T0: i64 = 1_796_004_000;

pub(super) fn dashed(unix: i64) -> String {
    paygate_domain::BeijingTime::of(unix).dashed()
}

pub(super) fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

// ---- WeChat: crates/paygate-sim/src/wechat/bills.rs, trade_bill (ALL) and gzip_stored, literally -------------

const SIM_HEADER: &str =
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,\
付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,\
商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";
const SIM_SUMMARY: &str =
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额";

fn sim_fee(amount: i64) -> i64 {
    (amount * 6 + 500) / 1000
}

/// `paid`: (n, total fen, at) as payments `4200…n` / `order-n`; `refunds`: (n of the order, amount, at).
fn sim_wechat_bill(paid: &[(u32, i64, i64)], refunds: &[(u32, i64, i64)]) -> String {
    let cell = |v: &str| format!("`{v}");
    let base = |n: u32, state: &str, at: i64| {
        vec![
            cell(&dashed(at)),
            cell("wx8888888888888888"),
            cell("1900000109"),
            cell("0"),
            cell(""),
            cell(&format!("42000000{n:08}")),
            cell(&format!("order-{n}")),
            cell("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"),
            cell("JSAPI"),
            cell(state),
            cell("OTHERS"),
            cell("CNY"),
        ]
    };
    let mut rows = Vec::new();
    let (mut count, mut total, mut refunded, mut fees, mut asked) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for &(n, amount, at) in paid {
        let mut row = base(n, "SUCCESS", at);
        row.extend(
            [yuan(amount), yuan(0), "0".into(), "0".into(), yuan(0), yuan(0), "".into(), "".into()]
                .iter()
                .map(|v| cell(v)),
        );
        row.extend(
            ["会员, 年卡".to_string(), "attach".into(), yuan(sim_fee(amount)), "0.60%".into(), yuan(amount)]
                .iter()
                .map(|v| cell(v)),
        );
        row.extend([cell("0.00"), cell("")]);
        rows.push(row.join(","));
        (count, total, fees) = (count + 1, total + amount, fees + sim_fee(amount));
    }
    for &(n, amount, at) in refunds {
        let mut row = base(n, "REFUND", at);
        row.extend(
            [yuan(0), yuan(0), format!("50300{n:08}"), format!("re-{n}"), yuan(amount), yuan(0)]
                .iter()
                .map(|v| cell(v)),
        );
        row.extend(["ORIGINAL".to_string(), "SUCCESS".into(), "d".into(), "".into()].iter().map(|v| cell(v)));
        row.extend([yuan(-sim_fee(amount)), "0.60%".into(), yuan(0), yuan(amount), "".into()].iter().map(|v| cell(v)));
        rows.push(row.join(","));
        (count, refunded, fees, asked) = (count + 1, refunded + amount, fees - sim_fee(amount), asked + amount);
    }
    let totals = [count.to_string(), yuan(total), yuan(refunded), yuan(0), yuan(fees), yuan(total), yuan(asked)];
    let totals: Vec<String> = totals.iter().map(|v| format!("`{v}")).collect();
    format!("{SIM_HEADER}\r\n{}\r\n{SIM_SUMMARY}\r\n{}\r\n", rows.join("\r\n"), totals.join(","))
}

pub(super) fn crc32(data: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(data);
    crc.sum()
}

/// The simulator's gzip of stored deflate blocks.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xFFFF).peekable();
    while let Some(chunk) = chunks.next() {
        let len = u16::try_from(chunk.len()).unwrap();
        out.push(u8::from(chunks.peek().is_none()));
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend(chunk);
    }
    out.extend(crc32(data).to_le_bytes());
    out.extend(u32::try_from(data.len()).unwrap().to_le_bytes());
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn wechat_err(bytes: &[u8]) -> String {
    parse_wechat_bill(bytes).unwrap_err().to_string()
}

#[test]
fn wechat_reads_the_simulators_bill_plain_and_gzipped() {
    let text = sim_wechat_bill(&[(1, 1_000, T0), (2, 1, T0 + 61)], &[(1, 300, T0 + 3600)]);
    let bill = parse_wechat_bill(text.as_bytes()).unwrap();
    assert_eq!(
        bill.rows,
        vec![
            BillRow {
                kind: BillKind::Payment,
                transaction_no: "4200000000000001".into(),
                merchant_no: "order-1".into(),
                refund_id: String::new(),
                out_refund_no: String::new(),
                amount: 1_000,
                fee: 6,
                status: "SUCCESS".into(),
                at: T0,
            },
            BillRow {
                amount: 1,
                fee: 0,
                at: T0 + 61,
                transaction_no: "4200000000000002".into(),
                merchant_no: "order-2".into(),
                ..bill.rows[0].clone()
            },
            BillRow {
                kind: BillKind::Refund,
                transaction_no: "4200000000000001".into(),
                merchant_no: "order-1".into(),
                refund_id: "5030000000001".into(),
                out_refund_no: "re-1".into(),
                amount: 300,
                fee: -2,
                status: "SUCCESS".into(),
                at: T0 + 3600,
            },
        ]
    );
    assert_eq!(bill.summary, Some(BillSummary { rows: 3, paid: 1_001, refunded: 300, fees: 4 }));
    assert_eq!(parse_wechat_bill(&gzip_stored(text.as_bytes())).unwrap(), bill, "v3 gzip, stored blocks");
    assert_eq!(parse_wechat_bill(&gzip(text.as_bytes())).unwrap(), bill, "gzip, deflated");
    let bom_lf = format!("\u{feff}{}", text.replace("\r\n", "\n"));
    assert_eq!(parse_wechat_bill(bom_lf.as_bytes()).unwrap(), bill, "BOM and LF");
}

/// A v3 tradebill (ALL) as WeChat writes it: BOM, backticks, a coupon, a refund still processing, a comma in a
/// product name, LF line ends.
const REAL_V3: &str = "\u{feff}交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,\
交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,\
商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注
`2026-11-30 09:15:02,`wx2421b1c4370ec43b,`1230000109,`0,`,`4200001789202611301234567890,`ch_a1b2c3d4e5f6,\
`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`CMB_CREDIT,`CNY,`88.00,`12.00,`0,`0,`0.00,`0.00,`,`,\
`年卡, 自动续费,`,`0.53,`0.60%,`100.00,`0.00,`
`2026-11-30 21:40:59,`wx2421b1c4370ec43b,`1230000109,`0,`,`4200001789202611301234567890,`ch_a1b2c3d4e5f6,\
`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`CMB_CREDIT,`CNY,`0.00,`0.00,`50300908092026113012345678901,\
`re_0001,`20.00,`0.00,`ORIGINAL,`PROCESSING,`年卡,`,`-0.12,`0.60%,`0.00,`20.00,`
总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
`2,`88.00,`20.00,`0.00,`0.41,`100.00,`20.00
";

/// WeChat's documented sample of an older SUCCESS bill: 总金额, 代金券或立减优惠金额, amounts such as `0.0` and
/// `0`, no refund columns.
const REAL_V2_OLD: &str =
    "交易时间,公众账号ID,商户号,子商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,\
付款银行,货币种类,总金额,代金券或立减优惠金额,商品名称,商户数据包,手续费,费率\r
`2014-11-10 16:33:45,`wx2421b1c4370ec43b,`10000100,`0,`1000,`1001690740201411100005734289,`1415640626,\
`085e9858e3ba5186aafcbaed1,`MICROPAY,`SUCCESS,`OTHERS,`CNY,`0.01,`0.0,`被扫支付测试,`订单额外描述,`0,`0.60%\r
总交易单数,总交易额,总退款金额,总代金券或立减优惠退款金额,手续费总金额\r
`1,`0.01,`0.00,`0.00,`0\r
";

#[test]
fn wechat_reads_real_bills_of_both_layouts() {
    let bill = parse_wechat_bill(REAL_V3.as_bytes()).unwrap();
    assert_eq!(bill.rows.len(), 2);
    let (paid, refund) = (&bill.rows[0], &bill.rows[1]);
    assert_eq!((paid.kind, paid.amount, paid.fee, paid.status.as_str()), (BillKind::Payment, 10_000, 53, "SUCCESS"));
    assert_eq!(paid.at, T0 - 2_698, "2026-11-30 09:15:02 Beijing");
    assert_eq!(
        (refund.kind, refund.amount, refund.fee, refund.status.as_str()),
        (BillKind::Refund, 2_000, -12, "PROCESSING")
    );
    assert_eq!(
        (refund.refund_id.as_str(), refund.out_refund_no.as_str(), refund.merchant_no.as_str()),
        ("50300908092026113012345678901", "re_0001", "ch_a1b2c3d4e5f6")
    );
    assert_eq!(bill.summary, Some(BillSummary { rows: 2, paid: 10_000, refunded: 2_000, fees: 41 }));

    let old = parse_wechat_bill(REAL_V2_OLD.as_bytes()).unwrap();
    assert_eq!((old.rows.len(), old.rows[0].amount, old.rows[0].fee), (1, 1, 0));
    assert_eq!(old.rows[0].transaction_no, "1001690740201411100005734289");
    assert_eq!(old.summary, Some(BillSummary { rows: 1, paid: 1, refunded: 0, fees: 0 }));
}

#[test]
fn wechat_settled_plus_coupon_when_no_order_amount() {
    let text = "交易时间,微信订单号,商户订单号,交易状态,应结订单金额,代金券金额,手续费\n\
                `2026-11-30 10:00:00,`42,`o1,`SUCCESS,`8.50,`1.50,`0.06\n\
                总交易单数,应结订单总金额,退款总金额,手续费总金额\n`1,`8.50,`0.00,`0.06\n";
    let bill = parse_wechat_bill(text.as_bytes()).unwrap();
    assert_eq!((bill.rows[0].amount, bill.rows[0].at), (1_000, T0));
    assert_eq!(bill.summary.unwrap().paid, 850, "as the bill states it");
}

#[test]
fn wechat_refuses_bad_bills_clearly() {
    let good = sim_wechat_bill(&[(1, 1_000, T0)], &[(1, 300, T0)]);
    let with = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1)
    };
    assert_eq!(
        wechat_err(with("`0.60%,`10.00,", "`0.60%,`1.234,").as_bytes()),
        "line 2: 订单金额 '1.234' is not non-negative yuan with two decimals"
    );
    assert_eq!(
        wechat_err(with("`3.00,`0.00,`ORIGINAL", "`-3.00,`0.00,`ORIGINAL").as_bytes()),
        "line 3: 退款金额 '-3.00' is not non-negative yuan with two decimals"
    );
    assert!(wechat_err(with("`0.06,", "`92233720368547758.08,").as_bytes()).starts_with("line 2: 手续费 '9223"));
    assert_eq!(
        wechat_err(with("2026-11-30 10:00:00", "2026-11-31 10:00:00").as_bytes()),
        "line 2: 交易时间 '2026-11-31 10:00:00' is not a Beijing time yyyy-MM-dd HH:mm:ss"
    );
    assert_eq!(wechat_err(with("微信订单号,", "订单号,").as_bytes()), "line 1: the header has no 微信订单号 column");
    assert_eq!(wechat_err(with(",`CNY,", ",").as_bytes()), "line 2: 26 fields, but the header has 27");
    let cut = &good[..good.find("总交易单数").unwrap()];
    assert_eq!(wechat_err(cut.as_bytes()), "the bill has no summary (总交易单数) block: truncated?");
    assert_eq!(wechat_err(format!("{good}`1,`2\r\n").as_bytes()), "line 6: '`1,`2' after the summary");
    let mut latin = good.as_bytes().to_vec();
    let at = good.find("order-1").unwrap();
    latin[at] = 0xff;
    assert_eq!(wechat_err(&latin), "line 2: not UTF-8 text (a WeChat bill is UTF-8)");
    let zipped = gzip(good.as_bytes());
    assert!(wechat_err(&zipped[..zipped.len() - 9]).starts_with("the gzip data is damaged"));
    assert!(wechat_err(&zipped[..zipped.len() / 2]).starts_with("the gzip data is damaged"));
    assert!(wechat::parse_limited(&zipped, 100).unwrap_err().message.contains("more than 100 bytes"));
    assert_eq!(wechat_err(b""), "the bill is empty");
    assert_eq!(
        wechat_err(b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg>No Bill Exist</return_msg></xml>"),
        "line 1: the header has no 交易时间 column"
    );
    assert!(!wechat_err(&[0x1f, 0x8b, 0, 1, 2, 3, 0xff, 0xfe]).is_empty());
}

#[test]
fn amounts_parse_exactly() {
    let cases = [("0", Some(0)), ("0.0", Some(0)), ("12.3", Some(1_230)), ("12.34", Some(1_234)), ("1.234", None)];
    for (text, fen) in cases {
        assert_eq!(parse_fen(text, false), fen, "{text}");
    }
    for bad in ["", ".", "1.", ".5", "+1.00", "1,00", "1.0a", " 1.00", "1e2", "--1.00"] {
        assert_eq!(parse_fen(bad, true), None, "{bad}");
    }
    assert_eq!((parse_fen("-0.06", true), parse_fen("-0.06", false)), (Some(-6), None));
    assert_eq!(parse_fen("92233720368547758.07", false), Some(i64::MAX));
    assert_eq!(parse_fen("92233720368547758.08", false), None);
    assert_eq!(parse_fen("99999999999999999999999.00", false), None);
}

#[test]
fn wechat_parses_a_hundred_thousand_rows() {
    let paid: Vec<(u32, i64, i64)> = (0..90_000).map(|n| (n, i64::from(n % 5_000) + 1, T0 + i64::from(n))).collect();
    let refunds: Vec<(u32, i64, i64)> = (0..10_000).map(|n| (n, 1, T0 + 90_000)).collect();
    let text = gzip(sim_wechat_bill(&paid, &refunds).as_bytes());
    let started = Instant::now();
    let bill = parse_wechat_bill(&text).unwrap();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("wechat: 100 000 rows ({} bytes gzipped) in {:?}", text.len(), started.elapsed());
    }
    assert_eq!(bill.rows.len(), 100_000);
    assert_eq!(bill.rows.iter().filter(|r| r.kind == BillKind::Refund).count(), 10_000);
    assert_eq!(bill.summary.unwrap().rows, 100_000);
}

/// The fuzz targets' seeds are bills (else the fuzzer starts from input refused at the first line).
#[test]
fn fuzz_seeds_parse() {
    let text = parse_wechat_bill(include_bytes!("../../../../fuzz/corpus/bill_wechat/sim_all.txt")).unwrap();
    let gz = parse_wechat_bill(include_bytes!("../../../../fuzz/corpus/bill_wechat/sim_all.txt.gz")).unwrap();
    assert_eq!((text.rows.len(), &text), (2, &gz));
    let zip = parse_alipay_bill(include_bytes!("../../../../fuzz/corpus/bill_alipay/sim_stored.zip")).unwrap();
    let csv = parse_alipay_bill(include_bytes!("../../../../fuzz/corpus/bill_alipay/real_padded.csv")).unwrap();
    assert_eq!((zip.rows.len(), &zip.rows), (2, &csv.rows));
    assert_eq!(zip.summary, Some(BillSummary { rows: 2, paid: 1_000, refunded: 300, fees: 0 }));
}
