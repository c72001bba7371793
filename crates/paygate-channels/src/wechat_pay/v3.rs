//! API v3 calls: JSON signed with the merchant's RSA key (`Authorization`), every answer's `Wechatpay-*` headers
//! verified within the 300 s window with the key its serial names: the account's WeChat Pay public key, or a
//! platform certificate (`certificates.rs`, fetched when the serial is new).

use super::certificates::PlatformKeys;
use super::{account_problem, channel_problem, client_ip, open_id, wall_clock, Answer, WechatPay};
use crate::wechat::v3::{random_token, Authorization, RequestParts, ResponseSignature, SigningKey};
use crate::{PaymentRequest, RefundResult};
use paygate_domain::accounts::WechatAccount;
use paygate_domain::{Charge, Problem, Refund};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

/// A v3 account's keys, parsed once.
pub struct V3Keys {
    pub(crate) signing: SigningKey,
    pub(crate) serial_no: String,
    pub(crate) api_v3_key: SecretString,
    pub(crate) platform: PlatformKeys,
}

impl V3Keys {
    pub(crate) fn from_account(account: &WechatAccount) -> Result<V3Keys, Problem> {
        let private =
            account.merchant_private_key.as_ref().ok_or_else(|| account_problem("no merchant_private_key"))?;
        let signing = SigningKey::from_pem(private.expose_secret())
            .map_err(|e| account_problem(&format!("merchant_private_key: {e}")))?;
        let platform = PlatformKeys::from_account(account)?;
        Ok(V3Keys {
            signing,
            serial_no: account.merchant_serial_no.clone().ok_or_else(|| account_problem("no merchant_serial_no"))?,
            api_v3_key: account.api_v3_key.clone().ok_or_else(|| account_problem("no api_v3_key"))?,
            platform,
        })
    }

    pub fn api_v3_key(&self) -> &[u8] {
        self.api_v3_key.expose_secret().as_bytes()
    }

    /// Checks the `Wechatpay-*` headers of an answer or a callback: the serial, the window, the signature.
    pub fn verify_signed(
        &self,
        header: impl Fn(&str) -> Option<String>,
        body: &str,
        now: i64,
    ) -> Result<(), crate::wechat::WechatError> {
        let values: Vec<(String, Option<String>)> = [
            ResponseSignature::TIMESTAMP,
            ResponseSignature::NONCE,
            ResponseSignature::SIGNATURE,
            ResponseSignature::SERIAL,
        ]
        .iter()
        .map(|n| (n.to_string(), header(n)))
        .collect();
        let lookup = |name: &str| values.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref());
        let sig = ResponseSignature::from_headers(lookup)?;
        sig.verify(&self.platform.key_for(&sig.serial)?, body, now)
    }
}

/// Signs and sends one request; answers (status, JSON body) once the answer's signature verifies. A transport
/// failure or 5xx is `channel_unavailable` (nothing known).
pub(super) async fn call(
    pay: &WechatPay,
    keys: &V3Keys,
    method: &'static str,
    path: &str,
    body: Option<Value>,
) -> Result<(u16, Value), Problem> {
    call_with(pay, keys, method, path, body, Vec::new()).await
}

/// [`call`] with more request headers (`Wechatpay-Serial` when a field is encrypted with the platform key).
pub(super) async fn call_with(
    pay: &WechatPay,
    keys: &V3Keys,
    method: &'static str,
    path: &str,
    body: Option<Value>,
    extra: Vec<(&'static str, String)>,
) -> Result<(u16, Value), Problem> {
    let answer = send_signed(pay, keys, method, path, body, extra).await?;
    if let Some(serial) = answer.header(ResponseSignature::SERIAL) {
        pay.learn_platform_serial(serial).await?;
    }
    keys.verify_signed(|n| answer.header(n).map(str::to_string), &answer.body, wall_clock()).map_err(|e| {
        tracing::warn!(path, mch_id = %pay.config.mch_id, "WeChat v3 answer with a bad signature refused");
        channel_problem("channel_bad_signature", format!("WeChat Pay's answer to {path} is not authentic: {e}"))
    })?;
    let value = if answer.body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&answer.body)
            .map_err(|_| channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} is not JSON")))?
    };
    Ok((answer.status, value))
}

/// Signs and sends one request; any answer below 500, its signature not checked yet.
pub(super) async fn send_signed(
    pay: &WechatPay,
    keys: &V3Keys,
    method: &'static str,
    path: &str,
    body: Option<Value>,
    extra: Vec<(&'static str, String)>,
) -> Result<Answer, Problem> {
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let signed_path = pay.signed_path(path);
    let parts = RequestParts { method, path_and_query: &signed_path, body: &text };
    let auth = Authorization::sign(
        &keys.signing,
        &pay.config.mch_id,
        &keys.serial_no,
        &parts,
        wall_clock(),
        &random_token(32),
    )
    .map_err(Problem::from)?;
    let mut headers = vec![("Authorization", auth.header_value()), ("Accept", "application/json".to_string())];
    headers.extend(extra);
    if method != "GET" {
        headers.push(("Content-Type", "application/json".to_string()));
    }
    let body = (method != "GET").then_some(text);
    let answer: Answer = pay.send(method, path, headers, body).await.map_err(|u| u.problem())?;
    if answer.status >= 500 {
        return Err(channel_problem("channel_unavailable", format!("WeChat Pay answered HTTP {}.", answer.status)));
    }
    Ok(answer)
}

pub(super) fn declined(path: &str, status: u16, value: &Value) -> Problem {
    let code = value.get("code").and_then(Value::as_str).unwrap_or("");
    let message = value.get("message").and_then(Value::as_str).unwrap_or("");
    channel_problem("channel_declined", format!("WeChat Pay {path} (HTTP {status}): {code} {message}"))
}

pub(super) fn text_at<'a>(value: &'a Value, name: &str, path: &str) -> Result<&'a str, Problem> {
    value
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| channel_problem("channel_bad_answer", format!("WeChat Pay's answer to {path} has no {name}")))
}

pub(super) async fn open(pay: &WechatPay, keys: &V3Keys, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
    let kind = match request.channel {
        "wx_pub_qr" => "native",
        "wx_wap" => "h5",
        "wx" => "app",
        _ => "jsapi",
    };
    let description = if request.subject.is_empty() { request.body } else { request.subject };
    let mut body = json!({
        "appid": pay.config.appid,
        "mchid": pay.config.mch_id,
        "description": description.chars().take(127).collect::<String>(),
        "out_trade_no": request.channel_order_no,
        "attach": request.charge_id,
        "notify_url": pay.config.notify_url(request.base_url),
        "amount": {"total": request.amount.fen(), "currency": "CNY"},
    });
    match kind {
        "jsapi" => body["payer"] = json!({"openid": open_id(request)?}),
        "h5" => {
            body["scene_info"] = json!({"payer_client_ip": client_ip(request.client_ip), "h5_info": {"type": "Wap"}})
        }
        _ => {}
    }
    let path = format!("/v3/pay/transactions/{kind}");
    if super::sharing::wants_sharing(request) {
        body["settle_info"] = json!({"profit_sharing": true});
    }
    let (status, got) = call(pay, keys, "POST", &path, Some(body)).await?;
    if status != 200 {
        return Err(declined(&path, status, &got));
    }
    let detail = match kind {
        "native" => json!(text_at(&got, "code_url", &path)?),
        "h5" => json!(text_at(&got, "h5_url", &path)?),
        "app" => app_params(keys, &pay.config.appid, &pay.config.mch_id, text_at(&got, "prepay_id", &path)?)?,
        _ => jsapi_params(keys, &pay.config.appid, text_at(&got, "prepay_id", &path)?)?,
    };
    let mut credential = Map::new();
    credential.insert("object".into(), json!("credential"));
    credential.insert(request.channel.to_string(), detail);
    Ok(Value::Object(credential))
}

/// JSAPI client parameters: `paySign` = RSA over `appId\ntimeStamp\nnonceStr\npackage\n`.
pub(super) fn jsapi_params(keys: &V3Keys, appid: &str, prepay_id: &str) -> Result<Value, Problem> {
    let (time, nonce) = (wall_clock().to_string(), random_token(32));
    let package = format!("prepay_id={prepay_id}");
    let pay_sign = keys.signing.sign(format!("{appid}\n{time}\n{nonce}\n{package}\n").as_bytes())?;
    Ok(json!({"appId": appid, "timeStamp": time, "nonceStr": nonce, "package": package, "signType": "RSA",
        "paySign": pay_sign}))
}

/// APP client parameters: `sign` = RSA over `appid\ntimestamp\nnoncestr\nprepayid\n`.
pub(super) fn app_params(keys: &V3Keys, appid: &str, mch_id: &str, prepay_id: &str) -> Result<Value, Problem> {
    let (time, nonce) = (wall_clock().to_string(), random_token(32));
    let sign = keys.signing.sign(format!("{appid}\n{time}\n{nonce}\n{prepay_id}\n").as_bytes())?;
    Ok(json!({"appId": appid, "partnerId": mch_id, "prepayId": prepay_id, "packageValue": "Sign=WXPay",
        "nonceStr": nonce, "timeStamp": time, "sign": sign}))
}

pub(super) async fn close(pay: &WechatPay, keys: &V3Keys, charge: &Charge) -> Result<(), Problem> {
    let path = format!("/v3/pay/transactions/out-trade-no/{}/close", charge.channel_order_no);
    let (status, got) = call(pay, keys, "POST", &path, Some(json!({"mchid": pay.config.mch_id}))).await?;
    match status {
        200 | 204 => Ok(()),
        _ => Err(declined(&path, status, &got)),
    }
}

pub(super) async fn refund(
    pay: &WechatPay,
    keys: &V3Keys,
    charge: &Charge,
    refund: &Refund,
) -> Result<RefundResult, Problem> {
    let path = "/v3/refund/domestic/refunds";
    let mut body = json!({
        "out_trade_no": charge.channel_order_no,
        "out_refund_no": refund.refund_no,
        "amount": {"refund": refund.amount.fen(), "total": charge.amount.fen(), "currency": "CNY"},
    });
    if let Some(url) = pay.config.refund_notify_url() {
        body["notify_url"] = json!(url);
    }
    let (status, got) = match call(pay, keys, "POST", path, Some(body)).await {
        Ok(answer) => answer,
        // Not known whether WeChat took it: keep it pending; the same out_refund_no is the same refund.
        Err(p) if p.code == "channel_unavailable" => {
            tracing::warn!(refund = %refund.id, problem = %p, "WeChat refund outcome unknown; left pending");
            return Ok(RefundResult::Processing);
        }
        Err(p) => return Err(p),
    };
    if status != 200 {
        let code = got.get("code").and_then(Value::as_str).unwrap_or("FAIL");
        if matches!(code, "SYSTEM_ERROR" | "FREQUENCY_LIMITED") {
            return Ok(RefundResult::Processing);
        }
        let message = got.get("message").and_then(Value::as_str).unwrap_or("").to_string();
        return Ok(RefundResult::Failed { code: format!("wechat_{}", code.to_ascii_lowercase()), message });
    }
    Ok(match got.get("status").and_then(Value::as_str) {
        Some("SUCCESS") => {
            RefundResult::Succeeded { transaction_no: got.get("refund_id").and_then(Value::as_str).map(str::to_string) }
        }
        Some("CLOSED") => RefundResult::Failed {
            code: "wechat_refund_closed".into(),
            message: "WeChat Pay closed the refund.".into(),
        },
        _ => RefundResult::Processing,
    })
}

pub(super) async fn query(pay: &WechatPay, keys: &V3Keys, charge: &Charge) -> Result<String, Problem> {
    let path = format!("/v3/pay/transactions/out-trade-no/{}?mchid={}", charge.channel_order_no, pay.config.mch_id);
    let (status, got) = call(pay, keys, "GET", &path, None).await?;
    if status != 200 {
        return Err(declined(&path, status, &got));
    }
    let state = text_at(&got, "trade_state", &path)?.to_string();
    if state == "SUCCESS" && got.pointer("/amount/total").and_then(Value::as_i64) != Some(charge.amount.fen()) {
        return Err(channel_problem("channel_amount_mismatch", "WeChat Pay reports another amount.total"));
    }
    Ok(state)
}
