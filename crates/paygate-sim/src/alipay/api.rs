//! `gateway.do`: the common parameters and RSA2 signature of every call, then one function per method. Each
//! answers its node's fields (code 10000 added) or a failure node; the caller signs whichever it is.

use super::state::{
    refuse, timeout_express, AliError, Books, CodeOutcome, Product, Trade, TradeStatus, DEFAULT_TIMEOUT_SECONDS,
};
use super::{fail_node, gateway_error, AlipaySim, Event, Shared};
use crate::http::{reply, Reply, Request};
use hyper::StatusCode;
use paygate_channels::alipay::{self as protocol, format_timestamp, format_yuan, parse_yuan, Params};
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Every method the simulator serves.
pub const METHODS: [&str; 15] = [
    "alipay.trade.precreate",
    "alipay.trade.wap.pay",
    "alipay.trade.page.pay",
    "alipay.trade.app.pay",
    "alipay.trade.pay",
    "alipay.trade.query",
    "alipay.trade.close",
    "alipay.trade.cancel",
    "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query",
    "alipay.trade.royalty.relation.bind",
    "alipay.trade.royalty.relation.unbind",
    "alipay.trade.order.settle",
    "alipay.trade.order.settle.query",
    "alipay.data.dataservice.bill.downloadurl.query",
];

/// The largest single trade Alipay takes: 100 000 000.00 yuan.
const MAX_TOTAL_FEN: i64 = 10_000_000_000;

pub fn known(method: &str) -> bool {
    METHODS.contains(&method)
}

/// A node's fields on success, or a failure node.
pub(super) type Answer = Result<Map<String, Value>, Map<String, Value>>;

pub(super) fn success(fields: Value) -> Map<String, Value> {
    let mut node = Map::new();
    node.insert("code".into(), json!(protocol::CODE_SUCCESS));
    node.insert("msg".into(), json!("Success"));
    if let Value::Object(f) = fields {
        node.extend(f.into_iter().filter(|(_, v)| !v.is_null()));
    }
    node
}

pub(super) fn business(e: AliError) -> Map<String, Value> {
    fail_node(protocol::CODE_BUSINESS_FAILED, "Business Failed", e.sub_code, &e.sub_msg)
}

pub(super) fn invalid(sub_msg: &str) -> Map<String, Value> {
    gateway_error("isv.invalid-parameter", sub_msg)
}

pub(super) fn text<'a>(biz: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    biz.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub(super) fn required<'a>(biz: &'a Map<String, Value>, name: &str) -> Result<&'a str, Map<String, Value>> {
    text(biz, name).ok_or_else(|| gateway_error("isv.missing-parameter", &format!("缺少必选参数: {name}")))
}

pub(super) fn amount(biz: &Map<String, Value>, name: &str) -> Result<i64, Map<String, Value>> {
    parse_yuan(required(biz, name)?).map_err(|e| invalid(&format!("{name}: {e}")))
}

/// The app, the signature, the charset and `biz_content`; then the method.
pub(super) fn handle(sim: &Arc<AlipaySim>, req: &Request, params: &Params) -> (Reply, Vec<Event>) {
    let method = params.get("method").map(String::as_str).unwrap_or("");
    if !known(method) {
        let sub = if method.is_empty() { "isv.missing-method" } else { "isv.invalid-method" };
        return (sim.respond("", gateway_error(sub, &format!("不存在的方法名: {method}"))), Vec::new());
    }
    let checked = check(sim, params);
    let (app_id, biz) = match checked {
        Ok(v) => v,
        Err(node) => return (sim.respond(method, node), Vec::new()),
    };
    let mut events = Vec::new();
    let now = sim.now();
    let base = super::base_url(req);
    let answer = {
        let mut shared = sim.lock();
        events.extend(expired(&mut shared.books, now));
        let mut c = Call { shared: &mut shared, app_id: &app_id, biz: &biz, params, now, base: &base };
        match method {
            "alipay.trade.precreate" => precreate(&mut c),
            "alipay.trade.wap.pay" | "alipay.trade.page.pay" => {
                let product = if method == "alipay.trade.wap.pay" { Product::Wap } else { Product::Page };
                match open(&mut c, product, true) {
                    Ok(i) => return (pay_page(&c.shared.books.trades[i], &base), events),
                    Err(node) => Err(node),
                }
            }
            "alipay.trade.app.pay" => app_pay(&mut c),
            "alipay.trade.pay" => barcode_pay(&mut c, &mut events),
            "alipay.trade.query" => query(&mut c),
            "alipay.trade.close" => close(&mut c, &mut events),
            "alipay.trade.cancel" => cancel(&mut c, &mut events),
            "alipay.trade.refund" => refund(&mut c, &mut events),
            "alipay.trade.fastpay.refund.query" => refund_query(&mut c),
            "alipay.trade.royalty.relation.bind" => super::royalty::bind(&mut c, true),
            "alipay.trade.royalty.relation.unbind" => super::royalty::bind(&mut c, false),
            "alipay.trade.order.settle" => super::royalty::settle(&mut c),
            "alipay.trade.order.settle.query" => super::royalty::settle_query(&mut c),
            _ => super::bills::download_url(&mut c),
        }
    };
    let node = match answer {
        Ok(fields) => fields,
        Err(node) => node,
    };
    (sim.respond(method, node), events)
}

/// Trades whose time ran out close now (time only moves when someone looks); the events of those notified.
pub(super) fn expired(books: &mut Books, now: i64) -> Vec<Event> {
    let seen = books.expire(now);
    seen.into_iter().map(|(app_id, trade_no)| Event { app_id, trade_no, out_request_no: None }).collect()
}

/// One call's context.
pub(super) struct Call<'a> {
    pub shared: &'a mut Shared,
    pub app_id: &'a str,
    pub biz: &'a Map<String, Value>,
    pub params: &'a Params,
    pub now: i64,
    /// `http://host` of this simulator as the caller reached it (for QR codes, pages, bill URLs).
    pub base: &'a str,
}

fn check(sim: &AlipaySim, params: &Params) -> Result<(String, Map<String, Value>), Map<String, Value>> {
    let app_id = params.get("app_id").filter(|s| !s.is_empty());
    let app_id = app_id.ok_or_else(|| gateway_error("isv.missing-app-id", "缺少AppID参数"))?;
    let (key, sns) = {
        let shared = sim.lock();
        let app = shared.books.apps.get(app_id);
        let key = app.map(|a| a.public_key.clone());
        let sns = (shared.settings.app_cert_sn.clone(), shared.settings.alipay_root_cert_sn.clone());
        (key.ok_or_else(|| gateway_error("isv.invalid-app-id", "无效的AppID参数"))?, sns)
    };
    // Certificate mode: the certificates the request names must be the ones the app uploaded.
    for (name, want) in [("app_cert_sn", &sns.0), ("alipay_root_cert_sn", &sns.1)] {
        if !want.is_empty() && params.get(name) != Some(want) {
            return Err(gateway_error(&format!("isv.invalid-{}", name.replace('_', "-")), &format!("{name} 不匹配")));
        }
    }
    if params.get("charset").is_some_and(|c| !c.eq_ignore_ascii_case(protocol::CHARSET)) {
        return Err(gateway_error("isv.invalid-charset", "字符集只支持utf-8"));
    }
    if let Err(e) = protocol::verify_request(params, &key) {
        let content = protocol::request_content(params);
        return Err(gateway_error(
            "isv.invalid-signature",
            &format!(
                "验签出错 ({e})，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}"
            ),
        ));
    }
    for name in ["timestamp", "version"] {
        if params.get(name).is_none_or(|v| v.is_empty()) {
            return Err(gateway_error("isv.missing-parameter", &format!("缺少必选参数: {name}")));
        }
    }
    if let Some(ts) = params.get("timestamp") {
        protocol::parse_timestamp(ts).map_err(|e| gateway_error("isv.invalid-timestamp", &e.to_string()))?;
    }
    let biz = match params.get("biz_content").map(|b| serde_json::from_str::<Value>(b)) {
        None => Map::new(),
        Some(Ok(Value::Object(m))) => m,
        Some(_) => return Err(invalid("biz_content 不是JSON对象")),
    };
    Ok((app_id.clone(), biz))
}

/// Opens (or finds again) the trade `out_trade_no`: a paid or closed one refuses, a different amount is a
/// tampered repeat.
pub(super) fn open(c: &mut Call<'_>, product: Product, scanned: bool) -> Result<usize, Map<String, Value>> {
    let biz = c.biz;
    let out_trade_no = required(biz, "out_trade_no")?;
    if out_trade_no.len() > 64 {
        return Err(invalid("out_trade_no 长度不能超过64"));
    }
    let total = amount(biz, "total_amount")?;
    if !(1..=MAX_TOTAL_FEN).contains(&total) {
        return Err(invalid("total_amount 必须在 0.01 和 100000000.00 之间"));
    }
    let subject = required(biz, "subject")?;
    let expires_at = match (text(biz, "time_expire"), text(biz, "timeout_express")) {
        (Some(at), _) => match protocol::parse_timestamp(at) {
            Ok(at) if at > c.now => at,
            _ => return Err(invalid("time_expire 格式为 yyyy-MM-dd HH:mm:ss 且晚于现在")),
        },
        (None, Some(t)) => {
            timeout_express(t, c.now).ok_or_else(|| invalid("timeout_express 取值范围：1m～15d，或 1c"))?
        }
        (None, None) => c.now + DEFAULT_TIMEOUT_SECONDS,
    };
    let books = &mut c.shared.books;
    if let Some(i) = books.find_index(c.app_id, None, Some(out_trade_no)) {
        let t = &mut books.trades[i];
        let fail = match t.status {
            TradeStatus::Success | TradeStatus::Finished => Some(("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")),
            TradeStatus::Closed => Some(("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")),
            _ if t.total != total => Some(("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")),
            _ => None,
        };
        if let Some((code, msg)) = fail {
            return Err(business(AliError { sub_code: code, sub_msg: msg.into() }));
        }
        t.scanned |= scanned;
        return Ok(i);
    }
    let trade_no = books.next_no(c.now, "2200");
    let param = |name: &str| c.params.get(name).cloned().unwrap_or_default();
    books.trades.push(Trade {
        app_id: c.app_id.to_string(),
        out_trade_no: out_trade_no.to_string(),
        trade_no,
        product,
        total,
        subject: subject.to_string(),
        body: text(biz, "body").unwrap_or("").to_string(),
        notify_url: param("notify_url"),
        return_url: param("return_url"),
        auth_code: String::new(),
        buyer_id: String::new(),
        buyer_logon_id: String::new(),
        status: TradeStatus::WaitBuyerPay,
        scanned,
        created_at: c.now,
        paid_at: None,
        closed_at: None,
        late: false,
        expires_at,
        refunds: Vec::new(),
        settles: Vec::new(),
    });
    Ok(books.trades.len() - 1)
}

/// The trade a call names by trade_no (wins) or out_trade_no.
fn find(c: &Call<'_>) -> Result<usize, Map<String, Value>> {
    if text(c.biz, "trade_no").is_none() && text(c.biz, "out_trade_no").is_none() {
        return Err(gateway_error("isv.missing-parameter", "out_trade_no 和 trade_no 不能同时为空"));
    }
    let visible = c.shared.settings.visible_before_scan;
    c.shared.books.visible(c.app_id, text(c.biz, "trade_no"), text(c.biz, "out_trade_no"), visible).map_err(business)
}

fn precreate(c: &mut Call<'_>) -> Answer {
    let i = open(c, Product::Precreate, false)?;
    let t = &c.shared.books.trades[i];
    Ok(success(json!({"out_trade_no": t.out_trade_no, "qr_code": format!("{}/sim/alipay/qr/{}", c.base, t.trade_no)})))
}

/// What the Alipay app answers the app after `alipay.trade.app.pay` (the app submits the order string here).
fn app_pay(c: &mut Call<'_>) -> Answer {
    let i = open(c, Product::App, true)?;
    let t = &c.shared.books.trades[i];
    let seller = seller_id(c);
    Ok(success(json!({"out_trade_no": t.out_trade_no, "trade_no": t.trade_no,
        "total_amount": format_yuan(t.total), "seller_id": seller})))
}

pub(super) fn seller_id(c: &Call<'_>) -> String {
    c.shared.books.apps.get(c.app_id).map(|a| a.config.seller_id.clone()).unwrap_or_default()
}

/// Pay by payment code: the code's outcome (`/sim/alipay/codes`) decides; unknown codes pay.
fn barcode_pay(c: &mut Call<'_>, events: &mut Vec<Event>) -> Answer {
    let auth_code = required(c.biz, "auth_code")?.to_string();
    let outcome = c.shared.books.codes.get(&auth_code).copied().unwrap_or(CodeOutcome::Pay);
    if outcome == CodeOutcome::Fail {
        return Err(business(AliError {
            sub_code: "ACQ.PAYMENT_AUTH_CODE_INVALID",
            sub_msg: "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款".into(),
        }));
    }
    let i = open(c, Product::Barcode, true)?;
    let now = c.now;
    let t = &mut c.shared.books.trades[i];
    t.auth_code = auth_code;
    if outcome == CodeOutcome::Wait {
        let mut node = fail_node("10003", "Order success pay inprocess", "", "");
        node.remove("sub_code");
        node.remove("sub_msg");
        node.insert("out_trade_no".into(), json!(t.out_trade_no));
        node.insert("trade_no".into(), json!(t.trade_no));
        node.insert("total_amount".into(), json!(format_yuan(t.total)));
        return Ok(node);
    }
    Books::mark_paid(t, now);
    events.push(Event { app_id: t.app_id.clone(), trade_no: t.trade_no.clone(), out_request_no: None });
    let t = &c.shared.books.trades[i];
    let mut node = success(trade_fields(t));
    node.insert("gmt_payment".into(), json!(format_timestamp(now)));
    node.insert("fund_bill_list".into(), json!([{"fund_channel": "ALIPAYACCOUNT", "amount": format_yuan(t.total)}]));
    Ok(node)
}

/// What `alipay.trade.query` and `alipay.trade.pay` show of a trade.
fn trade_fields(t: &Trade) -> Value {
    let paid = t.is_paid();
    json!({
        "trade_no": t.trade_no,
        "out_trade_no": t.out_trade_no,
        "buyer_logon_id": (!t.buyer_logon_id.is_empty()).then_some(&t.buyer_logon_id),
        "buyer_user_id": (!t.buyer_id.is_empty()).then_some(&t.buyer_id),
        "total_amount": format_yuan(t.total),
        "receipt_amount": paid.then(|| format_yuan(t.total)),
        "buyer_pay_amount": paid.then(|| format_yuan(t.total)),
    })
}

fn query(c: &mut Call<'_>) -> Answer {
    let i = find(c)?;
    let t = &c.shared.books.trades[i];
    let mut node = success(trade_fields(t));
    node.insert("trade_status".into(), json!(t.status.as_str()));
    if let Some(at) = t.paid_at {
        node.insert("send_pay_date".into(), json!(format_timestamp(at)));
    }
    Ok(node)
}

fn close(c: &mut Call<'_>, events: &mut Vec<Event>) -> Answer {
    let i = find(c)?;
    let now = c.now;
    let t = &mut c.shared.books.trades[i];
    if t.status != TradeStatus::WaitBuyerPay {
        return Err(business(AliError {
            sub_code: "ACQ.TRADE_STATUS_ERROR",
            sub_msg: format!("交易状态不合法: {}", t.status.as_str()),
        }));
    }
    t.status = TradeStatus::Closed;
    t.closed_at = Some(now);
    events.push(Event { app_id: t.app_id.clone(), trade_no: t.trade_no.clone(), out_request_no: None });
    Ok(success(json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no})))
}

/// Cancel (撤销): unpaid → closed; paid → the rest refunded and closed; already closed → closed again.
fn cancel(c: &mut Call<'_>, events: &mut Vec<Event>) -> Answer {
    let found = c.shared.books.find_index(c.app_id, text(c.biz, "trade_no"), text(c.biz, "out_trade_no"));
    let i = found
        .ok_or_else(|| business(AliError { sub_code: "ACQ.TRADE_NOT_EXIST", sub_msg: "交易不存在".into() }))?;
    let now = c.now;
    let t = &mut c.shared.books.trades[i];
    let action = match t.status {
        TradeStatus::WaitBuyerPay => {
            t.status = TradeStatus::Closed;
            t.closed_at = Some(now);
            "close"
        }
        TradeStatus::Success => {
            let rest = t.total - t.refunded() - t.settled();
            Books::refund(t, rest, "cancel", "撤销", now).map_err(business)?;
            t.status = TradeStatus::Closed;
            t.closed_at = Some(now);
            events.push(Event {
                app_id: t.app_id.clone(),
                trade_no: t.trade_no.clone(),
                out_request_no: Some("cancel".into()),
            });
            "refund"
        }
        TradeStatus::Closed => "close",
        TradeStatus::Finished => return refuse("ACQ.TRADE_STATUS_ERROR", "交易已完结").map_err(business),
    };
    Ok(success(json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "retry_flag": "N", "action": action})))
}

fn refund(c: &mut Call<'_>, events: &mut Vec<Event>) -> Answer {
    let i = find(c)?;
    let amount = amount(c.biz, "refund_amount")?;
    let now = c.now;
    let t = &mut c.shared.books.trades[i];
    let out_request_no = text(c.biz, "out_request_no").unwrap_or(&t.out_trade_no).to_string();
    let reason = text(c.biz, "refund_reason").unwrap_or("");
    let moved = Books::refund(t, amount, &out_request_no, reason, now).map_err(business)?;
    let at = t.refunds.iter().find(|r| r.out_request_no == out_request_no).map_or(now, |r| r.at);
    if moved {
        events.push(Event {
            app_id: t.app_id.clone(),
            trade_no: t.trade_no.clone(),
            out_request_no: Some(out_request_no),
        });
    }
    Ok(success(json!({
        "trade_no": t.trade_no, "out_trade_no": t.out_trade_no, "buyer_logon_id": t.buyer_logon_id,
        "fund_change": if moved { "Y" } else { "N" }, "refund_fee": format_yuan(t.refunded()),
        "send_back_fee": format_yuan(amount), "gmt_refund_pay": format_timestamp(at), "buyer_user_id": t.buyer_id,
    })))
}

fn refund_query(c: &mut Call<'_>) -> Answer {
    let i = find(c)?;
    let t = &c.shared.books.trades[i];
    let out_request_no = text(c.biz, "out_request_no").unwrap_or(&t.out_trade_no);
    let mut node = success(json!({"trade_no": t.trade_no, "out_trade_no": t.out_trade_no,
        "out_request_no": out_request_no}));
    // An unknown out_request_no is still 10000, without refund fields: Alipay's way of saying "no such refund".
    if let Some(r) = t.refunds.iter().find(|r| r.out_request_no == out_request_no) {
        node.insert("total_amount".into(), json!(format_yuan(t.total)));
        node.insert("refund_amount".into(), json!(format_yuan(r.amount)));
        node.insert("refund_status".into(), json!("REFUND_SUCCESS"));
        node.insert("gmt_refund_pay".into(), json!(format_timestamp(r.at)));
        if !r.reason.is_empty() {
            node.insert("refund_reason".into(), json!(r.reason));
        }
    }
    Ok(node)
}

/// The cashier page a wap/page pay request lands on: the trade and a button that pays it.
fn pay_page(t: &Trade, base: &str) -> Reply {
    let page = super::control::pay_page_html(t, base);
    reply(StatusCode::OK, "text/html; charset=utf-8", page)
}
