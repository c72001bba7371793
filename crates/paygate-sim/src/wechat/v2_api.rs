//! API v2: XML in, XML out. Refusals before the signature is checked are `return_code FAIL` and unsigned;
//! business refusals are `result_code FAIL` with `err_code`, signed with the request's sign type.

use super::config::Merchant;
use super::notify::{Delivery, Signing};
use super::state::{Api, BizError, CodeOutcome, Event, NewOrder, NewRefund, Order, Refund, RefundStatus, TradeState};
use super::WechatSim;
use crate::http::{self, Reply, Request};
use hyper::{Method, StatusCode};
use paygate_channels::wechat::v2::{self, Fields, SignType};
use paygate_domain::BeijingTime;
use std::sync::Arc;

fn xml_reply(fields: &Fields) -> Reply {
    http::reply(StatusCode::OK, "text/xml; charset=utf-8", v2::render_xml(fields))
}

/// `return_code FAIL`: the request was not understood or not authentic; never signed.
pub(super) fn fail(message: &str) -> Reply {
    xml_reply(&[("return_code", "FAIL"), ("return_msg", message)].into_iter().collect())
}

pub(super) struct Ctx<'a> {
    pub(super) merchant: &'a Merchant,
    pub(super) fields: &'a Fields,
    pub(super) sign_type: SignType,
}

impl Ctx<'_> {
    fn base(&self) -> Fields {
        let c = &self.merchant.config;
        let mut out: Fields = [("return_code", "SUCCESS"), ("return_msg", "OK")].into_iter().collect();
        out.set("appid", self.fields.get("appid").unwrap_or(&c.appid)).set("mch_id", c.mch_id.as_str());
        out.set_opt("sub_mch_id", self.fields.get("sub_mch_id"));
        out.set("nonce_str", v2::nonce_str());
        out
    }

    fn signed(&self, mut fields: Fields) -> Reply {
        let sign = v2::sign(&fields, &self.merchant.config.api_key, self.sign_type);
        fields.set("sign", sign);
        xml_reply(&fields)
    }

    fn ok(&self, extra: Fields) -> Reply {
        let mut out = self.base();
        out.set("result_code", "SUCCESS");
        for (k, v) in extra.iter() {
            out.set(k, v);
        }
        self.signed(out)
    }

    fn biz_error(&self, e: &BizError) -> Reply {
        let mut out = self.base();
        out.set("result_code", "FAIL").set("err_code", e.code).set("err_code_des", e.message.as_str());
        self.signed(out)
    }
}

/// Reads and authenticates a request; `Err` is the `return_msg` of the unsigned FAIL to send.
fn authenticate<'a>(shared: &'a super::Shared, fields: &'a Fields) -> Result<Ctx<'a>, &'static str> {
    let mch_id = fields.non_empty("mch_id").ok_or("mch_id参数格式错误")?;
    let merchant = shared.books.merchants.get(mch_id).ok_or("商户号mch_id不存在")?;
    let sign_type = SignType::of(fields).map_err(|_| "sign_type参数格式错误")?;
    if fields.non_empty("nonce_str").is_none() {
        return Err("nonce_str参数格式错误");
    }
    v2::verify_with(fields, &merchant.config.api_key, sign_type).map_err(|_| "签名错误")?;
    Ok(Ctx { merchant, fields, sign_type })
}

/// The SYSTEMERROR a fault injects: signed when the request authenticates, as WeChat's would be.
pub(super) fn system_error(sim: &WechatSim, req: &Request) -> Reply {
    let Some(fields) = req.body_text().and_then(|t| v2::parse_xml(t).ok()) else {
        return fail("SYSTEMERROR");
    };
    let shared = sim.lock();
    match authenticate(&shared, &fields) {
        Ok(ctx) => ctx.biz_error(&BizError::new("SYSTEMERROR", 500, "SYSTEM_ERROR", "系统超时")),
        Err(message) => fail(message),
    }
}

pub(super) fn handle(sim: &Arc<WechatSim>, req: &Request) -> (Reply, Vec<Event>) {
    let known = [
        "/pay/unifiedorder",
        "/pay/micropay",
        "/pay/orderquery",
        "/pay/closeorder",
        "/secapi/pay/refund",
        "/pay/refundquery",
        "/pay/downloadbill",
        "/secapi/pay/reverse",
    ];
    let sharing = super::v2_sharing::PATHS.contains(&req.path.as_str());
    if !known.contains(&req.path.as_str()) && !sharing {
        return (http::reply(StatusCode::NOT_FOUND, "text/plain", "not found"), Vec::new());
    }
    if req.method != Method::POST {
        return (fail("请使用post方法"), Vec::new());
    }
    let Some(fields) = req.body_text().and_then(|t| v2::parse_xml(t).ok()) else {
        return (fail("XML格式错误"), Vec::new());
    };
    let now = sim.now();
    let mut shared = sim.lock();
    let settings = shared.settings.clone();
    let ctx = match authenticate(&shared, &fields) {
        Ok(ctx) => ctx,
        Err(message) => return (fail(message), Vec::new()),
    };
    if let Some(appid) = fields.non_empty("appid") {
        if appid != ctx.merchant.config.appid {
            return (
                ctx.biz_error(&BizError::new("APPID_MCHID_NOT_MATCH", 400, "", "appid和mch_id不匹配")),
                Vec::new(),
            );
        }
    }
    // The context borrows the books; work on a copy of what it needs and answer after.
    let merchant = ctx.merchant.clone();
    let ctx = Ctx { merchant: &merchant, fields: &fields, sign_type: ctx.sign_type };
    let mch_id = merchant.config.mch_id.clone();
    if req.path == "/pay/downloadbill" {
        return (download_bill(&shared, &ctx), Vec::new());
    }
    if sharing {
        if ctx.sign_type != SignType::HmacSha256 {
            return (fail("分账接口仅支持HMAC-SHA256签名"), Vec::new());
        }
        let result = super::v2_sharing::handle(&mut shared, &ctx, &req.path, now);
        return (result.map_or_else(|e| ctx.biz_error(&e), |extra| ctx.ok(extra)), Vec::new());
    }
    let books = &mut shared.books;
    let result: Result<(Fields, Vec<Event>), BizError> = match req.path.as_str() {
        "/pay/unifiedorder" => unified_order(books, &ctx, now),
        "/pay/micropay" => micropay(books, &ctx, now),
        "/pay/orderquery" => books
            .find(&mch_id, fields.get("transaction_id"), fields.get("out_trade_no"))
            .map(|o| (order_fields(o), Vec::new()))
            .ok_or_else(BizError::not_found),
        "/pay/closeorder" => {
            let no = fields.non_empty("out_trade_no").unwrap_or("");
            books.close(&mch_id, no, now, &settings).map(|()| (Fields::new(), Vec::new()))
        }
        "/secapi/pay/refund" => refund(books, &ctx, now, &settings),
        "/secapi/pay/reverse" => books
            .reverse(&mch_id, fields.get("transaction_id"), fields.get("out_trade_no"), now)
            .map(|recall| ([("recall", if recall { "Y" } else { "N" })].into_iter().collect(), Vec::new())),
        _ => refund_query(books, &ctx),
    };
    let reply = match &result {
        Ok((extra, _)) => ctx.ok(extra.clone()),
        Err(e) => ctx.biz_error(e),
    };
    (reply, result.map(|(_, events)| events).unwrap_or_default())
}

pub(super) fn int_field(fields: &Fields, name: &str) -> Result<i64, BizError> {
    let v = fields.non_empty(name).ok_or_else(|| BizError::param(format!("缺少参数{name}")))?;
    v.parse::<i64>().map_err(|_| BizError::param(format!("{name}参数格式错误")))
}

pub(super) fn required<'a>(fields: &'a Fields, name: &str) -> Result<&'a str, BizError> {
    fields.non_empty(name).ok_or_else(|| BizError::param(format!("缺少参数{name}")))
}

fn new_order(ctx: &Ctx<'_>, trade_type: &str) -> Result<NewOrder, BizError> {
    let f = ctx.fields;
    required(f, "body")?;
    required(f, "spbill_create_ip")?;
    Ok(NewOrder {
        api: Api::V2,
        mch_id: ctx.merchant.config.mch_id.clone(),
        appid: ctx.merchant.config.appid.clone(),
        out_trade_no: required(f, "out_trade_no")?.to_string(),
        sign_type: ctx.sign_type,
        trade_type: trade_type.to_string(),
        total: int_field(f, "total_fee")?,
        description: f.get("body").unwrap_or("").to_string(),
        attach: f.get("attach").unwrap_or("").to_string(),
        notify_url: f.get("notify_url").unwrap_or("").to_string(),
        openid: f.get("openid").unwrap_or("").to_string(),
        profit_sharing: f.get("profit_sharing") == Some("Y"),
    })
}

fn unified_order(books: &mut super::state::Books, ctx: &Ctx<'_>, now: i64) -> Result<(Fields, Vec<Event>), BizError> {
    let trade_type = required(ctx.fields, "trade_type")?;
    if !["JSAPI", "NATIVE", "APP", "MWEB"].contains(&trade_type) {
        return Err(BizError::param("trade_type参数格式错误"));
    }
    required(ctx.fields, "notify_url")?;
    if trade_type == "JSAPI" && ctx.fields.non_empty("openid").is_none() && ctx.fields.non_empty("sub_openid").is_none()
    {
        return Err(BizError::param("trade_type=JSAPI时（即JSAPI支付），必须传入openid"));
    }
    let order = books.create(new_order(ctx, trade_type)?, now)?;
    let mut out: Fields = [("trade_type", trade_type), ("prepay_id", order.prepay_id.as_str())].into_iter().collect();
    match trade_type {
        "NATIVE" => out.set("code_url", format!("weixin://wxpay/bizpayurl?pr={}", &order.prepay_id[2..])),
        "MWEB" => out.set(
            "mweb_url",
            format!("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={}&package=1", order.prepay_id),
        ),
        _ => &mut out,
    };
    Ok((out, Vec::new()))
}

fn micropay(books: &mut super::state::Books, ctx: &Ctx<'_>, now: i64) -> Result<(Fields, Vec<Event>), BizError> {
    let code = required(ctx.fields, "auth_code")?.to_string();
    let order = books.create(new_order(ctx, "MICROPAY")?, now)?;
    let (mch_id, no) = (order.mch_id.clone(), order.out_trade_no.clone());
    match books.codes.get(&code).copied().unwrap_or(CodeOutcome::Success) {
        CodeOutcome::Success => {
            books.pay(&mch_id, None, Some(&no), false, now)?;
            let order = books.order(&mch_id, &no).ok_or_else(BizError::not_found)?;
            let mut out = paid_fields(order);
            out.set("out_trade_no", no.as_str()).set("attach", order.attach.as_str());
            Ok((out, Vec::new()))
        }
        CodeOutcome::UserPaying => {
            books.set_unpaid_state(&mch_id, None, Some(&no), TradeState::UserPaying)?;
            Err(BizError::new("USERPAYING", 400, "USERPAYING", "需要用户输入支付密码"))
        }
        CodeOutcome::Fail => {
            books.set_unpaid_state(&mch_id, None, Some(&no), TradeState::PayError)?;
            Err(BizError::new("AUTH_CODE_INVALID", 400, "AUTH_CODE_INVALID", "付款码无效，请重新扫码"))
        }
    }
}

/// What a paid order's query, micropay answer and notification share.
fn paid_fields(o: &Order) -> Fields {
    let time_end = BeijingTime::of(o.paid_at.unwrap_or(o.created_at)).compact();
    let total = o.total.to_string();
    [
        ("openid", o.openid.as_str()),
        ("is_subscribe", "N"),
        ("trade_type", o.trade_type.as_str()),
        ("bank_type", "OTHERS"),
        ("total_fee", total.as_str()),
        ("fee_type", "CNY"),
        ("cash_fee", total.as_str()),
        ("cash_fee_type", "CNY"),
        ("transaction_id", o.transaction_id.as_str()),
        ("time_end", time_end.as_str()),
    ]
    .into_iter()
    .collect()
}

fn order_fields(o: &Order) -> Fields {
    let mut out = if o.is_paid() { paid_fields(o) } else { Fields::new() };
    out.set("out_trade_no", o.out_trade_no.as_str())
        .set("trade_type", o.trade_type.as_str())
        .set("total_fee", o.total.to_string())
        .set("fee_type", "CNY")
        .set("trade_state", o.state.as_str())
        .set("trade_state_desc", o.state.desc());
    out.set_opt("attach", Some(&o.attach));
    out
}

fn refund(
    books: &mut super::state::Books,
    ctx: &Ctx<'_>,
    now: i64,
    settings: &super::config::Settings,
) -> Result<(Fields, Vec<Event>), BizError> {
    let f = ctx.fields;
    if f.non_empty("transaction_id").is_none() && f.non_empty("out_trade_no").is_none() {
        return Err(BizError::param("transaction_id和out_trade_no必须填写一个"));
    }
    let (refund, event) = books.refund(
        NewRefund {
            api: Api::V2,
            mch_id: ctx.merchant.config.mch_id.clone(),
            transaction_id: f.non_empty("transaction_id").map(str::to_string),
            out_trade_no: f.non_empty("out_trade_no").map(str::to_string),
            out_refund_no: required(f, "out_refund_no")?.to_string(),
            total: int_field(f, "total_fee")?,
            amount: int_field(f, "refund_fee")?,
            notify_url: f.get("notify_url").unwrap_or("").to_string(),
            reason: f.get("refund_desc").unwrap_or("").to_string(),
        },
        now,
        settings,
    )?;
    let order = books
        .find(&ctx.merchant.config.mch_id, f.get("transaction_id"), f.get("out_trade_no"))
        .ok_or_else(BizError::not_found)?;
    let (amount, total) = (refund.amount.to_string(), order.total.to_string());
    let out = [
        ("transaction_id", order.transaction_id.as_str()),
        ("out_trade_no", order.out_trade_no.as_str()),
        ("out_refund_no", refund.out_refund_no.as_str()),
        ("refund_id", refund.refund_id.as_str()),
        ("refund_fee", amount.as_str()),
        ("settlement_refund_fee", amount.as_str()),
        ("total_fee", total.as_str()),
        ("cash_fee", total.as_str()),
        ("cash_refund_fee", amount.as_str()),
        ("coupon_refund_fee", "0"),
        ("refund_channel", ""),
    ]
    .into_iter()
    .collect();
    Ok((out, event.into_iter().collect()))
}

fn refund_query(books: &mut super::state::Books, ctx: &Ctx<'_>) -> Result<(Fields, Vec<Event>), BizError> {
    let f = ctx.fields;
    let mch_id = &ctx.merchant.config.mch_id;
    let one = f.non_empty("out_refund_no").or_else(|| f.non_empty("refund_id"));
    let order = match one {
        Some(no) => books.find_by_refund(mch_id, no),
        None => books.find(mch_id, f.get("transaction_id"), f.get("out_trade_no")),
    };
    let not_found = || BizError::new("REFUNDNOTEXIST", 404, "RESOURCE_NOT_EXISTS", "退款订单查询失败");
    let order = order.ok_or_else(not_found)?;
    let refunds: Vec<&Refund> =
        order.refunds.iter().filter(|r| one.is_none_or(|no| r.out_refund_no == no || r.refund_id == no)).collect();
    if refunds.is_empty() {
        return Err(not_found());
    }
    let mut out: Fields =
        [("transaction_id", order.transaction_id.as_str()), ("out_trade_no", order.out_trade_no.as_str())]
            .into_iter()
            .collect();
    out.set("total_fee", order.total.to_string())
        .set("cash_fee", order.total.to_string())
        .set("refund_count", refunds.len().to_string());
    for (i, r) in refunds.iter().enumerate() {
        out.set(format!("out_refund_no_{i}"), r.out_refund_no.as_str())
            .set(format!("refund_id_{i}"), r.refund_id.as_str())
            .set(format!("refund_channel_{i}"), "ORIGINAL")
            .set(format!("refund_fee_{i}"), r.amount.to_string())
            .set(format!("settlement_refund_fee_{i}"), r.amount.to_string())
            .set(format!("refund_status_{i}"), v2_refund_status(r.status))
            .set(format!("refund_account_{i}"), "REFUND_SOURCE_UNSETTLED_FUNDS")
            .set(format!("refund_recv_accout_{i}"), "支付用户的零钱");
        if let Some(at) = r.success_at {
            out.set(format!("refund_success_time_{i}"), BeijingTime::of(at).dashed());
        }
    }
    Ok((out, Vec::new()))
}

fn v2_refund_status(s: RefundStatus) -> &'static str {
    match s {
        RefundStatus::Processing => "PROCESSING",
        RefundStatus::Success => "SUCCESS",
        RefundStatus::Closed => "REFUNDCLOSE",
        RefundStatus::Abnormal => "CHANGE",
    }
}

/// The payment notification: the paid order's fields, signed with the order's sign type.
pub(super) fn payment_notice(order: &Order, merchant: &Merchant) -> Option<Delivery> {
    if order.notify_url.is_empty() {
        return None;
    }
    let mut fields: Fields = [("return_code", "SUCCESS"), ("return_msg", "OK")].into_iter().collect();
    fields
        .set("appid", order.appid.as_str())
        .set("mch_id", order.mch_id.as_str())
        .set("nonce_str", v2::nonce_str())
        .set("result_code", "SUCCESS");
    if order.sign_type == SignType::HmacSha256 {
        fields.set("sign_type", "HMAC-SHA256");
    }
    for (k, v) in paid_fields(order).iter() {
        fields.set(k, v);
    }
    fields.set("out_trade_no", order.out_trade_no.as_str());
    fields.set_opt("attach", Some(&order.attach));
    let sign = v2::sign(&fields, &merchant.config.api_key, order.sign_type);
    fields.set("sign", sign);
    Some(Delivery::new("payment", &order.notify_url, v2::render_xml(&fields), Signing::V2, &order.out_trade_no, None))
}

/// The refund notification: unsigned, its details in `req_info` (AES-256-ECB under the MD5 of the API key).
pub(super) fn refund_notice(order: &Order, refund: &Refund, merchant: &Merchant) -> Option<Delivery> {
    // The refund request's notify_url, else the one the merchant configured (WeChat's merchant platform setting).
    let url = if refund.notify_url.is_empty() { &merchant.config.refund_notify_url } else { &refund.notify_url };
    if url.is_empty() {
        return None;
    }
    let mut info: Fields = [
        ("transaction_id", order.transaction_id.as_str()),
        ("out_trade_no", order.out_trade_no.as_str()),
        ("refund_id", refund.refund_id.as_str()),
        ("out_refund_no", refund.out_refund_no.as_str()),
    ]
    .into_iter()
    .collect();
    info.set("total_fee", order.total.to_string())
        .set("settlement_total_fee", order.total.to_string())
        .set("refund_fee", refund.amount.to_string())
        .set("settlement_refund_fee", refund.amount.to_string())
        .set("refund_status", v2_refund_status(refund.status))
        .set("refund_recv_accout", "支付用户的零钱")
        .set("refund_account", "REFUND_SOURCE_RECHARGE_FUNDS")
        .set("refund_request_source", "API");
    if let Some(at) = refund.success_at {
        info.set("success_time", BeijingTime::of(at).dashed());
    }
    // req_info's plaintext is a <root> document, not <xml>.
    let plain = v2::render_xml(&info).replacen("<xml>", "<root>", 1);
    let plain = format!("{}</root>", plain.strip_suffix("</xml>").unwrap_or(&plain));
    let fields: Fields = [
        ("return_code", "SUCCESS"),
        ("appid", order.appid.as_str()),
        ("mch_id", order.mch_id.as_str()),
        ("nonce_str", v2::nonce_str().as_str()),
        ("req_info", v2::encrypt_req_info(&plain, &merchant.config.api_key).as_str()),
    ]
    .into_iter()
    .collect();
    Some(Delivery::new(
        "refund",
        url,
        v2::render_xml(&fields),
        Signing::V2,
        &order.out_trade_no,
        Some(&refund.out_refund_no),
    ))
}

/// `downloadbill`: the bill as text (or gzip with `tar_type=GZIP`), unsigned; XML FAIL when there is none.
fn download_bill(shared: &super::Shared, ctx: &Ctx<'_>) -> Reply {
    let no_bill = |msg: &str, code: &str| {
        xml_reply(&[("return_code", "FAIL"), ("return_msg", msg), ("error_code", code)].into_iter().collect())
    };
    let Some(day) = ctx.fields.get("bill_date").and_then(super::bills::parse_day) else {
        return no_bill("invalid bill_date", "20001");
    };
    let bill_type = ctx.fields.non_empty("bill_type").unwrap_or("ALL");
    if !["ALL", "SUCCESS", "REFUND", "REVOKED", "RECHARGE_REFUND"].contains(&bill_type) {
        return no_bill("invalid bill_type", "20001");
    }
    let mch_id = &ctx.merchant.config.mch_id;
    let orders = shared.books.orders().filter(|o| &o.mch_id == mch_id);
    match super::bills::trade_bill(orders, day, bill_type, &shared.doctors) {
        None => no_bill("No Bill Exist", "20002"),
        Some(text) if ctx.fields.get("tar_type") == Some("GZIP") => {
            http::reply(StatusCode::OK, "application/x-gzip", super::bills::gzip_stored(text.as_bytes()))
        }
        Some(text) => http::reply(StatusCode::OK, "text/plain; charset=utf-8", text),
    }
}
