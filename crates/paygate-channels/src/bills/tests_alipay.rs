//! Alipay bills: the simulator's (crates/paygate-sim/src/alipay/bills.rs and files.rs, its format copied
//! literally), Alipay's own (deflated, tab-padded), bare CSVs, and broken archives.

use super::tests::{crc32, dashed, yuan, T0};
use super::*;
use flate2::write::DeflateEncoder;
use flate2::Compression;
use std::io::Write;
use std::time::Instant;

const SIM_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,\
对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,\
商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";
const SELLER: &str = "2088102180000000";

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable, "{text}");
    bytes.into_owned()
}

/// 服务费: the simulator's 0.6 %, half up; taken on a payment (negative), given back on a refund.
fn sim_fee(fen: i64) -> i64 {
    (fen * 6 + 500) / 1000
}

/// The simulator's 业务明细 and 汇总 of payments (n, fen, at) and refunds (n of the trade, fen, at).
fn sim_alipay_files(paid: &[(u32, i64, i64)], refunds: &[(u32, i64, i64)]) -> (String, String) {
    let date = "2026-11-30";
    let line = |n: u32, kind: &str, at: i64, amount: &str, request_no: &str, fee: &str| {
        let zero = "0.00";
        let trade_no = format!("2026113022001{n:08}");
        let created = dashed(at - 5);
        let fields = [
            trade_no.as_str(),
            &format!("order-{n}"),
            kind,
            "年卡",
            &created,
            &dashed(at),
            "",
            "",
            "",
            "",
            "buy***@example.com",
            amount,
            amount,
            zero,
            zero,
            zero,
            zero,
            zero,
            "",
            zero,
            zero,
            request_no,
            fee,
            zero,
            "",
        ];
        fields.join(",")
    };
    let mut lines = Vec::new();
    for &(n, fen, at) in paid {
        lines.push(line(n, "交易", at, &yuan(fen), "", &yuan(-sim_fee(fen))));
    }
    for &(n, fen, at) in refunds {
        lines.push(line(n, "退款", at, &yuan(-fen), &format!("re-{n}"), &yuan(sim_fee(fen))));
    }
    let mut text = format!(
        "#支付宝业务明细查询\r\n#账号：[{SELLER}0156]\r\n#起始日期：[{date}]   终止日期：[{date}]\r\n\
         #-----------------------------------------业务明细列表----------------------------------------\r\n\
         {SIM_HEADER}\r\n"
    );
    for l in &lines {
        text.push_str(l);
        text.push_str("\r\n");
    }
    text.push_str(&format!(
        "#-----------------------------------------业务明细列表结束------------------------------------\r\n\
         #交易合计：{}笔，退款合计：{}笔\r\n#导出时间：[{}]\r\n",
        paid.len(),
        refunds.len(),
        dashed(T0 + 86_400)
    ));
    let (total, refunded): (i64, i64) = (paid.iter().map(|p| p.1).sum(), refunds.iter().map(|r| r.1).sum());
    let summary = format!(
        "#支付宝业务明细查询(汇总)\r\n#账号：[{SELLER}0156]\r\n总笔数,订单金额,商家实收,退款金额,实收金额\r\n{},{},{},{},{}\r\n",
        lines.len(),
        yuan(total),
        yuan(total),
        yuan(refunded),
        yuan(total - refunded),
    );
    (text, summary)
}

fn name(kind: &str) -> Vec<u8> {
    gbk(&format!("{SELLER}0156_20261130_{kind}.csv"))
}

/// A ZIP of `files` as the simulator's `stored_zip` writes it, or with deflated entries as Alipay's are.
fn zip(files: &[(Vec<u8>, Vec<u8>)], deflate: bool) -> Vec<u8> {
    let (mut out, mut central) = (Vec::new(), Vec::new());
    for (name, data) in files {
        let packed = if deflate {
            let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        } else {
            data.clone()
        };
        let offset = u32::try_from(out.len()).unwrap();
        let (crc, size, packed_size) =
            (crc32(data), u32::try_from(data.len()).unwrap(), u32::try_from(packed.len()).unwrap());
        let (method, name_len) = (if deflate { 8u16 } else { 0 }, u16::try_from(name.len()).unwrap());
        let fixed = |v: &mut Vec<u8>| {
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&method.to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
            v.extend_from_slice(&0x0021u16.to_le_bytes());
            v.extend_from_slice(&crc.to_le_bytes());
            v.extend_from_slice(&packed_size.to_le_bytes());
            v.extend_from_slice(&size.to_le_bytes());
            v.extend_from_slice(&name_len.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&20u16.to_le_bytes());
        fixed(&mut out);
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&packed);
        central.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes());
        fixed(&mut central);
        central.extend_from_slice(&[0u8; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name);
    }
    let count = u16::try_from(files.len()).unwrap();
    let (cd_offset, cd_size) = (u32::try_from(out.len()).unwrap(), u32::try_from(central.len()).unwrap());
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

fn sim_zip(paid: &[(u32, i64, i64)], refunds: &[(u32, i64, i64)], deflate: bool) -> Vec<u8> {
    let (detail, summary) = sim_alipay_files(paid, refunds);
    zip(&[(name("业务明细"), gbk(&detail)), (name("业务明细(汇总)"), gbk(&summary))], deflate)
}

fn alipay_err(bytes: &[u8]) -> String {
    parse_alipay_bill(bytes).unwrap_err().to_string()
}

#[test]
fn alipay_reads_the_simulators_stored_zip() {
    let bytes = sim_zip(&[(1, 1_000, T0), (2, 1, T0 + 61)], &[(1, 300, T0 + 3600)], false);
    let bill = parse_alipay_bill(&bytes).unwrap();
    assert_eq!(
        bill.rows[0],
        BillRow {
            kind: BillKind::Payment,
            transaction_no: "202611302200100000001".into(),
            merchant_no: "order-1".into(),
            refund_id: String::new(),
            out_refund_no: String::new(),
            amount: 1_000,
            fee: -6,
            status: "SUCCESS".into(),
            at: T0,
        }
    );
    assert_eq!((bill.rows[1].amount, bill.rows[1].fee, bill.rows[1].at), (1, 0, T0 + 61));
    assert_eq!(
        bill.rows[2],
        BillRow {
            kind: BillKind::Refund,
            out_refund_no: "re-1".into(),
            amount: 300,
            fee: 2,
            at: T0 + 3600,
            ..bill.rows[0].clone()
        }
    );
    assert_eq!(bill.summary, Some(BillSummary { rows: 3, paid: 1_001, refunded: 300, fees: -4 }));
    assert_eq!(parse_alipay_bill(&sim_zip(&[(1, 1_000, T0), (2, 1, T0 + 61)], &[(1, 300, T0 + 3600)], true)), Ok(bill));
}

/// 业务明细 as Alipay writes it: values padded with tabs, a service fee, a trailing comma, dates in 年月日 in the
/// comments.
const REAL_DETAIL: &str = "#支付宝业务明细查询\r
#账号：[20881021800000000156]\r
#起始日期：[2026年11月30日 00:00:00]   终止日期：[2026年12月01日 00:00:00]\r
#-----------------------------------------业务明细列表----------------------------------------\r
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,\
商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,\
卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\r
2026113022001404560512345678\t,ch_a1b2c3d4e5f6\t,交易\t,年卡\t,2026-11-30 09:59:50\t,2026-11-30 10:00:00\t,\t,\t,\t,\t,\
138****1234\t,100.00\t,100.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,\t,-0.60\t,0.00\t,\t,\r
2026113022001404560512345678\t,ch_a1b2c3d4e5f6\t,退款\t,年卡\t,2026-11-30 09:59:50\t,2026-11-30 12:00:00\t,\t,\t,\t,\t,\
138****1234\t,-20.00\t,-20.00\t,0.00\t,0.00\t,0.00\t,0.00\t,0.00\t,\t,0.00\t,0.00\t,re_0001\t,0.12\t,0.00\t,\t,\r
#-----------------------------------------业务明细列表结束------------------------------------\r
#交易合计：1笔，退款合计：1笔\r
#导出时间：[2026年12月01日 09:04:10]\r
";

#[test]
fn alipay_reads_a_real_deflated_bill_and_bare_csvs() {
    let summary = "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,服务费（元）\r\n合计,,1,1,80.00,-0.48\r\n";
    let files = [(name("业务明细"), gbk(REAL_DETAIL)), (name("业务明细(汇总)"), gbk(summary))];
    let bill = parse_alipay_bill(&zip(&files, true)).unwrap();
    let (paid, refund) = (&bill.rows[0], &bill.rows[1]);
    assert_eq!((paid.kind, paid.amount, paid.fee, paid.at), (BillKind::Payment, 10_000, -60, T0));
    assert_eq!(
        (paid.transaction_no.as_str(), paid.merchant_no.as_str()),
        ("2026113022001404560512345678", "ch_a1b2c3d4e5f6")
    );
    assert_eq!((refund.kind, refund.amount, refund.fee), (BillKind::Refund, 2_000, 12));
    assert_eq!((refund.out_refund_no.as_str(), refund.refund_id.as_str()), ("re_0001", ""));
    // This 汇总 layout states no refunded total: money comes from the rows, the count from 交易合计.
    assert_eq!(bill.summary, Some(BillSummary { rows: 2, paid: 10_000, refunded: 2_000, fees: -48 }));
    let alone = parse_alipay_bill(&gbk(REAL_DETAIL)).unwrap();
    assert_eq!(alone.rows, bill.rows, "a bare GBK CSV");
    let utf8 = format!("\u{feff}{REAL_DETAIL}");
    assert_eq!(parse_alipay_bill(utf8.as_bytes()).unwrap(), alone, "a bare UTF-8 CSV with a BOM");
    let empty_day = REAL_DETAIL.lines().filter(|l| !l.starts_with("2026")).collect::<Vec<_>>().join("\n");
    let empty = parse_alipay_bill(&zip(&[(name("业务明细"), gbk(&empty_day))], false)).unwrap();
    assert_eq!((empty.rows.len(), empty.summary.unwrap().rows), (0, 2), "as the bill states it");
}

#[test]
fn alipay_refuses_bad_bills_clearly() {
    let (detail, summary) = sim_alipay_files(&[(1, 1_000, T0)], &[(1, 300, T0)]);
    let with = |from: &str, to: &str| {
        assert!(detail.contains(from), "{from}");
        gbk(&detail.replacen(from, to, 1))
    };
    assert_eq!(
        alipay_err(&with(",10.00,10.00,", ",10.001,10.00,")),
        "line 6: 订单金额(元) '10.001' is not yuan with two decimals"
    );
    assert_eq!(
        alipay_err(&with(",10.00,10.00,", ",-10.00,10.00,")),
        "line 6: 订单金额(元) '-10.00' is negative on a 交易 (payment) line"
    );
    assert_eq!(alipay_err(&with(",交易,", ",冻结,")), "line 6: 业务类型 '冻结' is neither 交易 nor 退款");
    assert_eq!(alipay_err(&with("完成时间", "结束时间")), "line 5: the header has no 完成时间 column");
    assert_eq!(alipay_err(&with(",年卡,", ",")), "line 6: 24 fields, but the header has 25");
    assert!(alipay_err(&with("2026-11-30 10:00:00", "2026/11/30 10:00")).starts_with("line 6: 完成时间 '2026/11/30"));
    let mut bad_gbk = gbk(&detail);
    let at = bad_gbk.windows(7).position(|w| w == b"order-1").unwrap();
    bad_gbk[at] = 0x81;
    bad_gbk[at + 1] = 0x0a - 1;
    assert_eq!(alipay_err(&bad_gbk), "line 6: neither GBK nor UTF-8 text");
    assert_eq!(alipay_err(b"garbage"), "line 1: the header has no 支付宝交易号 column");
    assert_eq!(
        alipay_err(b"#only\r\n#comments"),
        "no header line (支付宝交易号,商户订单号,…): not an Alipay 业务明细 file"
    );

    let good = zip(&[(name("业务明细"), gbk(&detail)), (name("业务明细(汇总)"), gbk(&summary))], true);
    assert!(alipay_err(&good[..good.len() / 2]).starts_with("the ZIP archive is damaged"));
    assert!(alipay_err(&good[..good.len() - 1]).starts_with("the ZIP archive is damaged"));
    let only_summary = zip(&[(name("业务明细(汇总)"), gbk(&summary))], false);
    assert_eq!(
        alipay_err(&only_summary),
        "the ZIP has no …业务明细.csv file (it has: 20881021800000000156_20261130_业务明细(汇总).csv)"
    );
    let mut flipped = zip(&[(name("业务明细"), gbk(&detail))], false);
    let at = flipped.windows(7).position(|w| w == b"order-1").unwrap();
    flipped[at] = b'O';
    assert_eq!(alipay_err(&flipped), "the ZIP archive is damaged: an entry's CRC-32 does not match its content");
    let stored = zip(&[(name("业务明细"), gbk(&detail))], false);
    assert!(alipay::parse_limited(&stored, 100).unwrap_err().message.contains("more than 100 bytes"));
    let bomb = zip(&[(name("业务明细"), vec![b'#'; 1 << 20])], true);
    assert!(bomb.len() < 4096);
    assert!(alipay::parse_limited(&bomb, 1 << 16).unwrap_err().message.contains("more than 65536 bytes"));
    assert!(alipay_err(b"PK\x03\x04\x00\x00").starts_with("the ZIP archive is damaged"));
    assert!(
        !alipay_err(b"PK\x05\x06\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").is_empty()
    );
}

#[test]
fn alipay_parses_a_hundred_thousand_rows() {
    let paid: Vec<(u32, i64, i64)> = (0..90_000).map(|n| (n, i64::from(n % 5_000) + 1, T0 + i64::from(n))).collect();
    let refunds: Vec<(u32, i64, i64)> = (0..10_000).map(|n| (n, 1, T0 + 90_000)).collect();
    let bytes = sim_zip(&paid, &refunds, true);
    let started = Instant::now();
    let bill = parse_alipay_bill(&bytes).unwrap();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("alipay: 100 000 rows ({} bytes zipped) in {:?}", bytes.len(), started.elapsed());
    }
    assert_eq!(bill.rows.len(), 100_000);
    assert_eq!(bill.rows.iter().filter(|r| r.kind == BillKind::Refund).count(), 10_000);
    assert_eq!(bill.summary.unwrap().rows, 100_000);
}
