//! API v2 calls: signed XML out, XML in. An answer is believed only when `return_code` is SUCCESS and its `sign`
//! verifies with the request's sign type; `return_code FAIL` answers are unsigned and say only why the request
//! was refused.

use super::{channel_problem, client_ip, open_id, wall_clock, WechatPay};
use crate::wechat::v2::{self, Fields, SignType};
use crate::{PaymentRequest, RefundResult};
use paygate_domain::{Charge, Problem, Refund};
use serde_json::{json, Map, Value};

/// paygate signs v2 with MD5: the JSAPI/APP client parameters must use the unified order's sign type, and MD5 is
/// the one every WeChat client accepts.
const SIGN_TYPE: SignType = SignType::Md5;

/// What a call ended in.
pub(super) enum Called {
    /// `result_code SUCCESS`: the fields, signature checked.
    Ok(Fields),
    /// `result_code FAIL`: the (signed) err_code and its description.
    Refused { code: String, message: String },
}

/// Signs and sends `fields` to `path`; checks the answer. A transport failure, a 5xx, a non-XML or badly signed
/// answer is an `Err` (nothing known); `return_code FAIL` is an `Err` naming WeChat's reason.
pub(super) async fn call(pay: &WechatPay, key: &str, path: &str, fields: Fields) -> Result<Called, Problem> {
    call_as(pay, key, path, fields, SIGN_TYPE).await
}

/// [`call`] signed with `sign_type` (profit sharing takes HMAC-SHA256 only); the answer is checked the same way.
pub(super) async fn call_as(
    pay: &WechatPay,
    key: &str,
    path: &str,
    mut fields: Fields,
    sign_type: SignType,
) -> Result<Called, Problem> {
    fields.set("appid", pay.config.appid.as_str()).set("mch_id", pay.config.mch_id.as_str());
    fields.set("nonce_str", v2::nonce_str());
    if sign_type != SignType::Md5 {
        fields.set("sign_type", sign_type.as_str());
    }
    let sign = v2::sign(&fields, key, sign_type);
    fields.set("sign", sign);
    let headers = vec![("Content-Type", "text/xml; charset=utf-8".to_string())];
    let answer = pay.send("POST", path, headers, Some(v2::render_xml(&fields))).await.map_err(|u| u.problem())?;
    if answer.status >= 500 {
        return Err(channel_problem("channel_unavailable", format!("WeChat Pay answered HTTP {}.", answer.status)));
    }
    let got = v2::parse_xml(&answer.body).map_err(|e| {
        channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} is not v2 XML: {e}"))
    })?;
    if got.get("return_code") != Some("SUCCESS") {
        let why = got.get("return_msg").unwrap_or("no return_msg");
        if pay.lacks_client_certificate(path) {
            // return_code FAIL: refused before anything was done, for want of the certificate.
            let message = format!("WeChat Pay refused {path}: {why}; {}", super::CLIENT_CERT_MISSING);
            return Err(channel_problem("channel_client_certificate_missing", message));
        }
        return Err(channel_problem("channel_refused", format!("WeChat Pay refused {path}: {why}")));
    }
    v2::verify_with(&got, key, sign_type).map_err(|e| {
        tracing::warn!(path, mch_id = %pay.config.mch_id, "WeChat v2 answer with a bad signature refused");
        channel_problem("channel_bad_signature", format!("WeChat Pay's answer to {path} is not authentic: {e}"))
    })?;
    if got.get("mch_id").is_some_and(|m| m != pay.config.mch_id) {
        return Err(channel_problem(
            "channel_bad_answer",
            format!("WeChat Pay's answer to {path} names another mch_id"),
        ));
    }
    if got.get("result_code") == Some("SUCCESS") {
        return Ok(Called::Ok(got));
    }
    Ok(Called::Refused {
        code: got.get("err_code").unwrap_or("FAIL").to_string(),
        message: got.get("err_code_des").unwrap_or("").to_string(),
    })
}

pub(super) fn refused(path: &str, code: &str, message: &str) -> Problem {
    channel_problem("channel_declined", format!("WeChat Pay {path}: {code} {message}").trim_end().to_string())
}

pub(super) async fn open(pay: &WechatPay, key: &str, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
    let trade_type = crate::wechat::trade_type(request.channel);
    let mut fields: Fields = Fields::new();
    let body = if request.subject.is_empty() { request.body } else { request.subject };
    fields
        .set("body", body.chars().take(40).collect::<String>())
        .set("out_trade_no", request.channel_order_no)
        .set("total_fee", request.amount.fen().to_string())
        .set("spbill_create_ip", client_ip(request.client_ip))
        .set("notify_url", pay.config.notify_url(request.base_url))
        .set("trade_type", trade_type)
        .set("attach", request.charge_id);
    if trade_type == "JSAPI" {
        fields.set("openid", open_id(request)?);
    }
    if super::sharing::wants_sharing(request) {
        fields.set("profit_sharing", "Y");
    }
    let got = match call(pay, key, "/pay/unifiedorder", fields).await? {
        Called::Ok(got) => got,
        Called::Refused { code, message } => return Err(refused("unifiedorder", &code, &message)),
    };
    let need = |name: &str| {
        got.non_empty(name).map(str::to_string).ok_or_else(|| {
            channel_problem("channel_bad_answer", format!("WeChat Pay's unifiedorder answer has no {name}"))
        })
    };
    let detail = match request.channel {
        "wx_pub_qr" => json!(need("code_url")?),
        "wx_wap" => json!(need("mweb_url")?),
        "wx" => app_params(&pay.config.appid, &pay.config.mch_id, &need("prepay_id")?, key),
        _ => jsapi_params(&pay.config.appid, &need("prepay_id")?, key),
    };
    let mut credential = Map::new();
    credential.insert("object".into(), json!("credential"));
    credential.insert(request.channel.to_string(), detail);
    Ok(Value::Object(credential))
}

/// The JSAPI (公众号 / 小程序) parameters the client passes to `WeixinJSBridge` / `wx.requestPayment`, signed.
pub(super) fn jsapi_params(appid: &str, prepay_id: &str, key: &str) -> Value {
    let (time, nonce) = (wall_clock().to_string(), v2::nonce_str());
    let package = format!("prepay_id={prepay_id}");
    let fields: Fields = [
        ("appId", appid),
        ("timeStamp", time.as_str()),
        ("nonceStr", nonce.as_str()),
        ("package", package.as_str()),
        ("signType", SIGN_TYPE.as_str()),
    ]
    .into_iter()
    .collect();
    let pay_sign = v2::sign(&fields, key, SIGN_TYPE);
    json!({"appId": appid, "timeStamp": time, "nonceStr": nonce, "package": package,
        "signType": SIGN_TYPE.as_str(), "paySign": pay_sign})
}

/// The APP SDK's `PayReq`, signed over WeChat's lowercase names.
pub(super) fn app_params(appid: &str, mch_id: &str, prepay_id: &str, key: &str) -> Value {
    let (time, nonce) = (wall_clock().to_string(), v2::nonce_str());
    let fields: Fields = [
        ("appid", appid),
        ("partnerid", mch_id),
        ("prepayid", prepay_id),
        ("package", "Sign=WXPay"),
        ("noncestr", nonce.as_str()),
        ("timestamp", time.as_str()),
    ]
    .into_iter()
    .collect();
    let sign = v2::sign(&fields, key, SIGN_TYPE);
    json!({"appId": appid, "partnerId": mch_id, "prepayId": prepay_id, "packageValue": "Sign=WXPay",
        "nonceStr": nonce, "timeStamp": time, "sign": sign})
}

pub(super) async fn close(pay: &WechatPay, key: &str, charge: &Charge) -> Result<(), Problem> {
    let fields: Fields = [("out_trade_no", charge.channel_order_no.as_str())].into_iter().collect();
    match call(pay, key, "/pay/closeorder", fields).await? {
        Called::Ok(_) => Ok(()),
        // Already closed at WeChat: what was asked for.
        Called::Refused { code, .. } if code == "ORDERCLOSED" => Ok(()),
        Called::Refused { code, message } => Err(refused("closeorder", &code, &message)),
    }
}

pub(super) async fn refund(
    pay: &WechatPay,
    key: &str,
    charge: &Charge,
    refund: &Refund,
) -> Result<RefundResult, Problem> {
    let mut fields: Fields = [
        ("out_trade_no", charge.channel_order_no.clone()),
        ("out_refund_no", refund.refund_no.clone()),
        ("total_fee", charge.amount.fen().to_string()),
        ("refund_fee", refund.amount.fen().to_string()),
    ]
    .into_iter()
    .collect();
    fields.set_opt("notify_url", pay.config.refund_notify_url().as_deref());
    Ok(match call(pay, key, "/secapi/pay/refund", fields).await {
        // WeChat's SUCCESS means accepted: the notification (or a query) says when the money moved.
        Ok(Called::Ok(_)) => RefundResult::Processing,
        // Not known whether WeChat took it: keep it pending; a retry with the same out_refund_no is the same refund.
        Ok(Called::Refused { code, .. }) if matches!(code.as_str(), "SYSTEMERROR" | "FREQUENCY_LIMITED") => {
            RefundResult::Processing
        }
        Ok(Called::Refused { code, message }) => {
            RefundResult::Failed { code: format!("wechat_{}", code.to_ascii_lowercase()), message }
        }
        Err(p) if p.code == "channel_unavailable" => {
            tracing::warn!(refund = %refund.id, problem = %p, "WeChat refund outcome unknown; left pending");
            RefundResult::Processing
        }
        Err(p) => return Err(p),
    })
}

/// The order's `trade_state`.
pub(super) async fn query(pay: &WechatPay, key: &str, charge: &Charge) -> Result<String, Problem> {
    let fields: Fields = [("out_trade_no", charge.channel_order_no.as_str())].into_iter().collect();
    match call(pay, key, "/pay/orderquery", fields).await? {
        Called::Ok(got) => {
            let state = got.require("trade_state").map_err(Problem::from)?.to_string();
            if state == "SUCCESS" && got.get("total_fee") != Some(charge.amount.fen().to_string().as_str()) {
                return Err(channel_problem("channel_amount_mismatch", "WeChat Pay reports another total_fee"));
            }
            Ok(state)
        }
        Called::Refused { code, message } => Err(refused("orderquery", &code, &message)),
    }
}
