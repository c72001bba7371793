//! API v3: JSON in and out, requests authenticated by `Authorization` (the merchant's RSA key), every answer
//! signed with the platform key; notifications carry an AEAD_AES_256_GCM resource.

use super::config::Merchant;
use super::notify::{Delivery, Signing};
use super::state::{Api, BizError, Event, NewOrder, NewRefund, Order, Refund, RefundStatus};
use super::{rfc3339, WechatSim};
use crate::http::{Reply, Request};
use hyper::Method;
use paygate_channels::wechat::v2::SignType;
use paygate_channels::wechat::v3::{random_token, Authorization, RequestParts, Resource};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub(super) fn handle(sim: &Arc<WechatSim>, req: &Request) -> (Reply, Vec<Event>) {
    let now = sim.now();
    let Some(body) = req.body_text() else {
        return (sim.v3_error(400, "PARAM_ERROR", "请求体不是UTF-8"), Vec::new());
    };
    let mchid = match authenticate(sim, req, body) {
        Ok(m) => m,
        Err(message) => return (sim.v3_error(401, "SIGN_ERROR", &message), Vec::new()),
    };
    if req.path == "/v3/billdownload/file" {
        // Bill files are not signed (WeChat's download answers carry no Wechatpay-Signature); the hash is.
        let file = req.query_param("token").and_then(|t| sim.lock().bills.get(t).cloned());
        return match file {
            Some(bytes) => (crate::http::reply(hyper::StatusCode::OK, "application/octet-stream", bytes), Vec::new()),
            None => (sim.v3_error(404, "RESOURCE_NOT_EXISTS", "账单文件不存在或已过期"), Vec::new()),
        };
    }
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let result = match (&req.method, segments.as_slice()) {
        (&Method::POST, ["v3", "pay", "transactions", kind @ ("jsapi" | "native" | "app" | "h5")]) => {
            create(sim, &mchid, kind, body, now)
        }
        (&Method::GET, ["v3", "pay", "transactions", by @ ("id" | "out-trade-no"), id]) => {
            query(sim, req, &mchid, by, id)
        }
        (&Method::POST, ["v3", "pay", "transactions", "out-trade-no", no, "close"]) => {
            close(sim, &mchid, no, body, now)
        }
        (&Method::POST, ["v3", "refund", "domestic", "refunds"]) => refund(sim, &mchid, body, now),
        (&Method::GET, ["v3", "refund", "domestic", "refunds", no]) => {
            let shared = sim.lock();
            match shared.books.find_by_refund(&mchid, no) {
                Some(o) => match o.refunds.iter().find(|r| r.out_refund_no == *no) {
                    Some(r) => Ok((200, refund_json(o, r), Vec::new())),
                    None => Err(refund_not_found()),
                },
                None => Err(refund_not_found()),
            }
        }
        (&Method::GET, ["v3", "bill", "tradebill"]) => trade_bill(sim, req, &mchid),
        (&Method::GET, ["v3", "certificates"]) => certificates(sim, &mchid),
        (_, ["v3", "profitsharing", ..]) => super::v3_sharing::handle(sim, req, &mchid, body, now),
        _ => Err(BizError::new("", 404, "NOT_FOUND", "无可用的平台证书或资源不存在")),
    };
    match result {
        Ok((status, value, events)) => {
            let text = if status == 204 { String::new() } else { value.to_string() };
            (sim.v3_reply(status, &text), events)
        }
        Err(e) => (sim.v3_error(e.status, e.v3_code, &e.message), Vec::new()),
    }
}

/// The platform certificate, sealed under the merchant's APIv3 key.
fn certificates(sim: &Arc<WechatSim>, mchid: &str) -> Result<(u16, Value, Vec<Event>), BizError> {
    let key = sim.lock().books.merchants.get(mchid).map(|m| m.config.api_v3_key.clone()).unwrap_or_default();
    let answer = sim.platform.certificate.answer(&key).map_err(|e| BizError::new("", 500, "SYSTEM_ERROR", e))?;
    Ok((200, answer, Vec::new()))
}

fn refund_not_found() -> BizError {
    BizError::new("REFUNDNOTEXIST", 404, "RESOURCE_NOT_EXISTS", "退款单不存在")
}

/// Checks the Authorization header against the merchant's public key; answers the merchant id, or why not.
fn authenticate(sim: &WechatSim, req: &Request, body: &str) -> Result<String, String> {
    let header = req.header("authorization").ok_or("缺少Authorization请求头")?;
    let auth = Authorization::parse(header).map_err(|e| e.to_string())?;
    let key = {
        let shared = sim.lock();
        let merchant = shared.books.merchants.get(&auth.mchid).ok_or("商户号不存在")?;
        if merchant.config.merchant_serial != auth.serial_no {
            return Err("商户证书序列号有误".into());
        }
        merchant.public_key.clone().ok_or("商户未配置API证书公钥")?
    };
    let parts = RequestParts { method: req.method.as_str(), path_and_query: &req.path_and_query(), body };
    auth.verify(&key, &parts, super::wall_clock()).map_err(|e| format!("签名错误: {e}"))?;
    Ok(auth.mchid)
}

pub(super) type Answer = Result<(u16, Value, Vec<Event>), BizError>;

pub(super) fn parse_body(body: &str) -> Result<Map<String, Value>, BizError> {
    match serde_json::from_str::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(BizError::param("请求体不是JSON对象")),
    }
}

pub(super) fn str_at<'a>(v: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, parents) = path.split_last()?;
    let mut cur = v;
    for p in parents {
        cur = cur.get(*p)?.as_object()?;
    }
    cur.get(*last)?.as_str().filter(|s| !s.is_empty())
}

pub(super) fn int_at(v: &Map<String, Value>, path: &[&str]) -> Result<i64, BizError> {
    let (last, parents) = path.split_last().ok_or_else(|| BizError::param("empty path"))?;
    let mut cur = v;
    for p in parents {
        cur = cur.get(*p).and_then(Value::as_object).ok_or_else(|| BizError::param(format!("缺少参数{p}")))?;
    }
    cur.get(*last).and_then(Value::as_i64).ok_or_else(|| BizError::param(format!("{} 必须是整数", path.join("."))))
}

pub(super) fn need<'a>(v: &'a Map<String, Value>, path: &[&str]) -> Result<&'a str, BizError> {
    str_at(v, path).ok_or_else(|| BizError::param(format!("缺少参数{}", path.join("."))))
}

fn create(sim: &Arc<WechatSim>, mchid: &str, kind: &str, body: &str, now: i64) -> Answer {
    let v = parse_body(body)?;
    if need(&v, &["mchid"])? != mchid {
        return Err(BizError::param("mchid与请求头中的商户号不一致"));
    }
    let appid = need(&v, &["appid"])?;
    let trade_type = match kind {
        "jsapi" => "JSAPI",
        "native" => "NATIVE",
        "app" => "APP",
        _ => "MWEB",
    };
    if kind == "jsapi" {
        need(&v, &["payer", "openid"])?;
    }
    if kind == "h5" {
        need(&v, &["scene_info", "payer_client_ip"])?;
    }
    let new = NewOrder {
        api: Api::V3,
        mch_id: mchid.to_string(),
        appid: appid.to_string(),
        out_trade_no: need(&v, &["out_trade_no"])?.to_string(),
        sign_type: SignType::Md5,
        trade_type: trade_type.to_string(),
        total: int_at(&v, &["amount", "total"])?,
        description: need(&v, &["description"])?.to_string(),
        attach: str_at(&v, &["attach"]).unwrap_or("").to_string(),
        notify_url: need(&v, &["notify_url"])?.to_string(),
        openid: str_at(&v, &["payer", "openid"]).unwrap_or("").to_string(),
        profit_sharing: v.get("settle_info").and_then(|s| s.get("profit_sharing")).and_then(Value::as_bool)
            == Some(true),
    };
    let mut shared = sim.lock();
    if shared.books.merchants.get(mchid).is_none_or(|m| m.config.appid != appid) {
        return Err(BizError::new("APPID_MCHID_NOT_MATCH", 400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"));
    }
    let order = shared.books.create(new, now)?;
    let answer = match kind {
        "native" => json!({"code_url": format!("weixin://wxpay/bizpayurl?pr={}", &order.prepay_id[2..])}),
        "h5" => json!({"h5_url": format!(
            "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id={}&package=1", order.prepay_id)}),
        _ => json!({"prepay_id": order.prepay_id}),
    };
    Ok((200, answer, Vec::new()))
}

fn query(sim: &Arc<WechatSim>, req: &Request, mchid: &str, by: &str, id: &str) -> Answer {
    if req.query_param("mchid") != Some(mchid) {
        return Err(BizError::param("mchid参数与请求头中的商户号不一致"));
    }
    let shared = sim.lock();
    let order = match by {
        "id" => shared.books.find(mchid, Some(id), None),
        _ => shared.books.find(mchid, None, Some(id)),
    }
    .ok_or_else(BizError::not_found)?;
    Ok((200, order_json(order), Vec::new()))
}

pub(super) fn order_json(o: &Order) -> Value {
    let mut v = json!({
        "appid": o.appid,
        "mchid": o.mch_id,
        "out_trade_no": o.out_trade_no,
        "trade_state": o.state.as_str(),
        "trade_state_desc": o.state.desc(),
        "attach": o.attach,
        "amount": {"total": o.total, "currency": "CNY", "payer_currency": "CNY"},
    });
    if o.is_paid() {
        v["transaction_id"] = json!(o.transaction_id);
        v["trade_type"] = json!(o.trade_type);
        v["bank_type"] = json!("OTHERS");
        v["success_time"] = json!(rfc3339(o.paid_at.unwrap_or(o.created_at)));
        v["payer"] = json!({"openid": o.openid});
        v["amount"]["payer_total"] = json!(o.total);
    }
    v
}

fn close(sim: &Arc<WechatSim>, mchid: &str, no: &str, body: &str, now: i64) -> Answer {
    let v = parse_body(body)?;
    if need(&v, &["mchid"])? != mchid {
        return Err(BizError::param("mchid与请求头中的商户号不一致"));
    }
    let mut shared = sim.lock();
    let settings = shared.settings.clone();
    shared.books.close(mchid, no, now, &settings)?;
    Ok((204, Value::Null, Vec::new()))
}

fn refund(sim: &Arc<WechatSim>, mchid: &str, body: &str, now: i64) -> Answer {
    let v = parse_body(body)?;
    let (tx, no) = (str_at(&v, &["transaction_id"]), str_at(&v, &["out_trade_no"]));
    if tx.is_none() && no.is_none() {
        return Err(BizError::param("transaction_id和out_trade_no必须填写一个"));
    }
    if str_at(&v, &["amount", "currency"]).is_some_and(|c| c != "CNY") {
        return Err(BizError::param("amount.currency 只支持CNY"));
    }
    let new = NewRefund {
        api: Api::V3,
        mch_id: mchid.to_string(),
        transaction_id: tx.map(str::to_string),
        out_trade_no: no.map(str::to_string),
        out_refund_no: need(&v, &["out_refund_no"])?.to_string(),
        total: int_at(&v, &["amount", "total"])?,
        amount: int_at(&v, &["amount", "refund"])?,
        notify_url: str_at(&v, &["notify_url"]).unwrap_or("").to_string(),
        reason: str_at(&v, &["reason"]).unwrap_or("").to_string(),
    };
    let mut shared = sim.lock();
    let settings = shared.settings.clone();
    let (refund, event) = shared.books.refund(new, now, &settings)?;
    let order = shared.books.find(mchid, tx, no).ok_or_else(BizError::not_found)?;
    Ok((200, refund_json(order, &refund), event.into_iter().collect()))
}

fn refund_json(o: &Order, r: &Refund) -> Value {
    let mut v = json!({
        "refund_id": r.refund_id,
        "out_refund_no": r.out_refund_no,
        "transaction_id": o.transaction_id,
        "out_trade_no": o.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(r.created_at),
        "status": r.status.as_str(),
        "funds_account": "UNAVAILABLE",
        "amount": {
            "total": o.total, "refund": r.amount, "payer_total": o.total, "payer_refund": r.amount,
            "settlement_refund": r.amount, "settlement_total": o.total, "discount_refund": 0, "currency": "CNY",
            "refund_fee": 0
        },
        "promotion_detail": [],
    });
    if let Some(at) = r.success_at {
        v["success_time"] = json!(rfc3339(at));
    }
    v
}

fn notice(
    sim: &WechatSim,
    merchant: &Merchant,
    event_type: &str,
    summary: &str,
    original_type: &str,
    plain: &Value,
) -> Option<String> {
    let key = merchant.config.api_v3_key.as_bytes();
    let resource =
        match Resource::seal(key, &random_token(12), original_type, plain.to_string().as_bytes(), original_type) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(mch_id = %merchant.config.mch_id, error = %e, "cannot encrypt a v3 notification");
                return None;
            }
        };
    let body = json!({
        "id": format!("EV-{}", random_token(24)),
        "create_time": rfc3339(sim.now()),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": resource,
    });
    Some(body.to_string())
}

pub(super) fn payment_notice(sim: &WechatSim, order: &Order, merchant: &Merchant) -> Option<Delivery> {
    let body = notice(sim, merchant, "TRANSACTION.SUCCESS", "支付成功", "transaction", &order_json(order))?;
    Some(Delivery::new("payment", &order.notify_url, body, Signing::V3, &order.out_trade_no, None))
}

pub(super) fn refund_notice(sim: &WechatSim, order: &Order, r: &Refund, merchant: &Merchant) -> Option<Delivery> {
    let url = if r.notify_url.is_empty() { &merchant.config.refund_notify_url } else { &r.notify_url };
    if url.is_empty() {
        return None;
    }
    let (event_type, summary) = match r.status {
        RefundStatus::Success => ("REFUND.SUCCESS", "退款成功"),
        RefundStatus::Closed => ("REFUND.CLOSED", "退款关闭"),
        _ => ("REFUND.ABNORMAL", "退款异常"),
    };
    let mut plain = json!({
        "mchid": order.mch_id,
        "out_trade_no": order.out_trade_no,
        "transaction_id": order.transaction_id,
        "out_refund_no": r.out_refund_no,
        "refund_id": r.refund_id,
        "refund_status": r.status.as_str(),
        "user_received_account": "支付用户零钱",
        "amount": {"total": order.total, "refund": r.amount, "payer_total": order.total, "payer_refund": r.amount},
    });
    if let Some(at) = r.success_at {
        plain["success_time"] = json!(rfc3339(at));
    }
    let body = notice(sim, merchant, event_type, summary, "refund", &plain)?;
    Some(Delivery::new("refund", url, body, Signing::V3, &order.out_trade_no, Some(&r.out_refund_no)))
}

fn trade_bill(sim: &Arc<WechatSim>, req: &Request, mchid: &str) -> Answer {
    let day = req
        .query_param("bill_date")
        .and_then(super::bills::parse_day)
        .ok_or_else(|| BizError::param("bill_date 必须是 yyyy-MM-dd"))?;
    let bill_type = req.query_param("bill_type").unwrap_or("ALL");
    if !["ALL", "SUCCESS", "REFUND"].contains(&bill_type) {
        return Err(BizError::param("bill_type 必须是 ALL, SUCCESS 或 REFUND"));
    }
    let mut shared = sim.lock();
    let orders = shared.books.orders().filter(|o| o.mch_id == mchid);
    let text = super::bills::trade_bill(orders, day, bill_type, &shared.doctors)
        .ok_or_else(|| BizError::new("NO_STATEMENT_EXIST", 400, "NO_STATEMENT_EXIST", "要下载的账单不存在"))?;
    let hash = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, text.as_bytes());
    let hash: String = hash.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let file = if req.query_param("tar_type") == Some("GZIP") {
        super::bills::gzip_stored(text.as_bytes())
    } else {
        text.into()
    };
    let token = crate::recon::bill_token();
    crate::recon::keep_bill(&mut shared.bills, token.clone(), file);
    let host = req.header("host").unwrap_or("api.mch.weixin.qq.com");
    // The file is served where the call came in: over TLS when the simulator serves HTTPS.
    let scheme = if sim.tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{host}/v3/billdownload/file?token={token}");
    Ok((200, json!({"hash_type": "SHA1", "hash_value": hash, "download_url": url}), Vec::new()))
}
