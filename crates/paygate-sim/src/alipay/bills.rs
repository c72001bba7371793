//! Daily / monthly bills: `alipay.data.dataservice.bill.downloadurl.query` answers a URL on this simulator,
//! which serves a ZIP of GBK CSV files laid out as Alipay's (业务明细 and its 汇总 for `trade`, 账务明细 for
//! `signcustomer`). Only days that are over (Beijing time) have bills.

use super::api::{business, invalid, required, seller_id, success, Answer, Call};
use super::files::{gbk, stored_zip};
use super::state::{AliError, Trade};
use crate::recon::{fee, Doctors};
use paygate_channels::alipay::{format_timestamp, format_yuan};
use serde_json::json;

const TRADE_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,\
对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,\
商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

const ACCOUNT_HEADER: &str =
    "账务流水号,业务流水号,商户订单号,商品名称,入账时间,对方账户,收入（元）,支出（元）,账户余额（元）,业务渠道,业务类型,备注";

pub(super) fn download_url(c: &mut Call<'_>) -> Answer {
    let bill_type = required(c.biz, "bill_type")?;
    if bill_type != "trade" && bill_type != "signcustomer" {
        return Err(invalid("bill_type 只支持 trade 或 signcustomer"));
    }
    let date = required(c.biz, "bill_date")?;
    let shape_ok = match date.len() {
        10 => date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-',
        7 => date.as_bytes()[4] == b'-',
        _ => false,
    };
    if !shape_ok || !date.bytes().enumerate().all(|(i, b)| b.is_ascii_digit() || i == 4 || i == 7) {
        return Err(invalid("bill_date 格式为 yyyy-MM-dd 或 yyyy-MM"));
    }
    // A day's bill exists once the day is over; a month's once the month is.
    let today = format_timestamp(c.now);
    if date >= &today[..date.len()] {
        return Err(business(AliError { sub_code: "isp.bill_not_exist", sub_msg: "账单不存在".into() }));
    }
    let seller = seller_id(c);
    let trades: Vec<&Trade> = c.shared.books.trades.iter().filter(|t| t.app_id == c.app_id).collect();
    let lines = trade_lines(&trades, date, &c.shared.doctors);
    let name = |kind: &str| gbk(&format!("{seller}0156_{}_{kind}.csv", date.replace('-', "")));
    let files = if bill_type == "trade" {
        let (detail, summary) = trade_bill(&lines, &seller, date, c.now);
        vec![(name("业务明细"), detail), (name("业务明细(汇总)"), summary)]
    } else {
        vec![(name("账务明细"), account_bill(&lines, &seller, date, c.now))]
    };
    let zip = stored_zip(&files);
    let token = crate::recon::bill_token();
    crate::recon::keep_bill(&mut c.shared.bills, token.clone(), zip);
    let url = format!(
        "{}/sim/alipay/bills/download?bizType={bill_type}&userId={seller}&fileType=csv.zip&bizDates={}&token={token}",
        c.base,
        date.replace('-', "")
    );
    Ok(success(json!({"bill_download_url": url})))
}

/// One line per payment and per refund on `date` (a day or a month prefix), in time order. 服务费 is the 0.6 %
/// fee (half up): taken on a payment (negative), given back on a refund (positive). `doctors` misreport trades on
/// purpose (`/sim/alipay/bills/doctor`).
fn trade_lines(trades: &[&Trade], date: &str, doctors: &Doctors) -> Vec<[String; 25]> {
    let on = |at: i64| format_timestamp(at).starts_with(date);
    let mut lines: Vec<(i64, [String; 25])> = Vec::new();
    for t in trades {
        let doctor = doctors.get(&t.app_id, &t.out_trade_no);
        if doctor.is_some_and(|d| d.omit) {
            continue;
        }
        // Written only for the trades that have a line on this day (a day of a big seeded book is most of them not).
        let created = || format_timestamp(t.created_at);
        let paid = t.paid_at.map(|paid| doctor.and_then(|d| d.at).unwrap_or(paid));
        if let Some(paid) = paid.filter(|p| on(*p)) {
            let amount = format_yuan(doctor.and_then(|d| d.amount).unwrap_or(t.total));
            let fee = format_yuan(-doctor.and_then(|d| d.fee).unwrap_or_else(|| fee(t.total)));
            let settled = format_yuan(t.settled());
            let money = [amount.as_str(), &amount, &fee, &settled];
            lines.push((paid, line(t, "交易", &created(), &format_timestamp(paid), "", money)));
        }
        for r in t.refunds.iter().filter(|r| on(r.at)) {
            let (amount, fee) = (format_yuan(-r.amount), format_yuan(fee(r.amount)));
            let at = format_timestamp(r.at);
            let money = [amount.as_str(), &amount, &fee, "0.00"];
            lines.push((r.at, line(t, "退款", &created(), &at, &r.out_request_no, money)));
        }
    }
    lines.sort_by(|a, b| (a.0, &a.1[0], &a.1[21]).cmp(&(b.0, &b.1[0], &b.1[21])));
    lines.into_iter().map(|(_, l)| l).collect()
}

/// `money`: 订单金额, 商家实收, 服务费, 分润 (yuan).
fn line(t: &Trade, kind: &str, created: &str, done: &str, request_no: &str, money: [&str; 4]) -> [String; 25] {
    let [amount, received, fee, royalty] = money;
    let s = |v: &str| v.replace([',', '\n', '\r'], " ");
    let zero = || "0.00".to_string();
    [
        t.trade_no.clone(),
        s(&t.out_trade_no),
        kind.into(),
        s(&t.subject),
        created.into(),
        done.into(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        t.buyer_logon_id.clone(),
        amount.into(),
        received.into(),
        zero(),
        zero(),
        zero(),
        zero(),
        zero(),
        String::new(),
        zero(),
        zero(),
        s(request_no),
        fee.into(),
        royalty.into(),
        String::new(),
    ]
}

fn trade_bill(lines: &[[String; 25]], seller: &str, date: &str, now: i64) -> (Vec<u8>, Vec<u8>) {
    let paid = lines.iter().filter(|l| l[2] == "交易").count();
    let mut text = format!(
        "#支付宝业务明细查询\r\n#账号：[{seller}0156]\r\n#起始日期：[{date}]   终止日期：[{date}]\r\n\
         #-----------------------------------------业务明细列表----------------------------------------\r\n\
         {TRADE_HEADER}\r\n"
    );
    for l in lines {
        text.push_str(&l.join(","));
        text.push_str("\r\n");
    }
    text.push_str(&format!(
        "#-----------------------------------------业务明细列表结束------------------------------------\r\n\
         #交易合计：{paid}笔，退款合计：{}笔\r\n#导出时间：[{}]\r\n",
        lines.len() - paid,
        format_timestamp(now)
    ));
    // Refund lines carry negative amounts; the summary states every total as a positive one.
    let sum = |kind: &str, col: usize| -> i64 {
        let yuan = |l: &[String; 25]| paygate_channels::alipay::parse_yuan(l[col].trim_start_matches('-')).ok();
        lines.iter().filter(|l| l[2] == kind).filter_map(yuan).sum()
    };
    let refunds = sum("退款", 11);
    let summary = format!(
        "#支付宝业务明细查询(汇总)\r\n#账号：[{seller}0156]\r\n总笔数,订单金额,商家实收,退款金额,实收金额\r\n{},{},{},{},{}\r\n",
        lines.len(),
        format_yuan(sum("交易", 11)),
        format_yuan(sum("交易", 12)),
        format_yuan(refunds),
        format_yuan(sum("交易", 12) - refunds),
    );
    (gbk(&text), gbk(&summary))
}

fn account_bill(lines: &[[String; 25]], seller: &str, date: &str, now: i64) -> Vec<u8> {
    let mut text = format!(
        "#支付宝账务明细查询\r\n#账号：[{seller}0156]\r\n#起始日期：[{date}]   终止日期：[{date}]\r\n\
         #-----------------------------------------账务明细列表----------------------------------------\r\n\
         {ACCOUNT_HEADER}\r\n"
    );
    let (mut balance, mut n) = (0i64, 0u64);
    let (mut income, mut spent) = (0i64, 0i64);
    for l in lines {
        let fen = paygate_channels::alipay::parse_yuan(l[11].trim_start_matches('-')).unwrap_or(0);
        let refund = l[11].starts_with('-');
        balance += if refund { -fen } else { fen };
        if refund {
            spent += fen;
        } else {
            income += fen;
        }
        n += 1;
        let (inc, out) =
            if refund { ("0.00".to_string(), format_yuan(fen)) } else { (format_yuan(fen), "0.00".into()) };
        let kind = if refund { "交易退款" } else { "在线支付" };
        text.push_str(&format!(
            "{:0>20},{},{},{},{},{},{inc},{out},{},{},{kind},\r\n",
            n,
            l[0],
            l[1],
            l[3],
            l[5],
            l[10],
            format_yuan(balance),
            "支付宝"
        ));
    }
    text.push_str(&format!(
        "#-----------------------------------------账务明细列表结束------------------------------------\r\n\
         #收入合计：{}元，支出合计：{}元\r\n#导出时间：[{}]\r\n",
        format_yuan(income),
        format_yuan(spent),
        format_timestamp(now)
    ));
    gbk(&text)
}
