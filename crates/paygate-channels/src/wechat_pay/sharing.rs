//! Profit sharing through WeChat Pay (分账). Receivers are added and removed by the merchant, explicitly (v2
//! `/pay/profitsharingaddreceiver` / `removereceiver`, v3 `/v3/profitsharing/receivers/add` / `delete`; adding one
//! already added changes nothing at WeChat); a split (v2 `/secapi/pay/profitsharing` single or
//! `multiprofitsharing`, v3 `/v3/profitsharing/orders` with `unfreeze_unsplit`) to a receiver not added, or removed
//! since, is refused by WeChat, and that refusal is the merchant's answer: paygate never adds one behind their back,
//! so a removed receiver stays removed. v2 sharing is signed HMAC-SHA256 only.
//! SYSTEMERROR / FREQUENCY_LIMITED (or no answer) on a split: WeChat may have taken it, so it is queried before
//! any resend (same out_order_no = same request). Only orders opened with profit sharing can be shared: the core
//! marks their charge's extra (`profit_sharing: true`) and `open` passes it on.

use super::{channel_problem, v2, v3, Protocol, WechatPay};
use crate::wechat::v2::{Fields, SignType};
use crate::{PaymentRequest, ShareResult};
use paygate_domain::shares::{ProfitShare, ShareKind};
use paygate_domain::{Amount, Charge, Problem};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

/// A receiver as the merchant adds it at WeChat (添加分账接收方); the core checked the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatReceiver {
    /// `MERCHANT_ID` or `PERSONAL_OPENID`.
    pub kind: String,
    pub account: String,
    /// WeChat's relation of the receiver to the merchant (`PARTNER`, `STORE`, …, `CUSTOM`).
    pub relation_type: String,
    /// Required by WeChat when `relation_type` is `CUSTOM`.
    pub custom_relation: Option<String>,
    /// The receiver's full name (a merchant's registered name): required by WeChat for `MERCHANT_ID`.
    pub name: Option<String>,
}

/// WeChat's answer when a split names a receiver that is not added: said so, with how to add it.
const NOT_ADDED_HINT: &str = "the receiver must be added to the WeChat Pay account first \
     (POST /v1/profit_sharing_receivers)";

/// Whether the payment is to be opened for profit sharing.
pub(crate) fn wants_sharing(request: &PaymentRequest<'_>) -> bool {
    request.extra.get("profit_sharing").and_then(Value::as_bool) == Some(true)
}

fn transaction_id(charge: &Charge) -> Result<&str, Problem> {
    charge
        .transaction_no
        .as_deref()
        .ok_or_else(|| channel_problem("channel_not_paid", "The charge has no WeChat transaction_id to share from."))
}

/// Not known whether WeChat took the request: query before any resend.
fn uncertain(code: &str) -> bool {
    matches!(code, "SYSTEMERROR" | "FREQUENCY_LIMITED" | "SYSTEM_ERROR")
}

async fn v2_call(pay: &WechatPay, key: &str, path: &str, fields: Fields) -> Result<v2::Called, Problem> {
    v2::call_as(pay, key, path, fields, SignType::HmacSha256).await
}

impl WechatPay {
    pub(super) async fn share_at_wechat(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
        let tx = transaction_id(charge)?;
        let receivers: Vec<Value> = share
            .receivers
            .iter()
            .map(|r| {
                json!({"type": r.kind, "account": r.account, "amount": r.amount.fen(), "description": r.description})
            })
            .collect();
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let key = key.expose_secret();
                let path = if share.kind == ShareKind::WechatMulti {
                    "/secapi/pay/multiprofitsharing"
                } else {
                    "/secapi/pay/profitsharing"
                };
                let fields = || -> Fields {
                    [
                        ("transaction_id", tx.to_string()),
                        ("out_order_no", share.out_order_no.clone()),
                        ("receivers", Value::Array(receivers.clone()).to_string()),
                    ]
                    .into_iter()
                    .collect()
                };
                let mut resent = false;
                loop {
                    let answer = v2_call(self, key, path, fields()).await;
                    let code = match &answer {
                        Ok(v2::Called::Ok(got)) => return Ok(shared_as(got.get("order_id"))),
                        Ok(v2::Called::Refused { code, message }) if !uncertain(code) => {
                            return Ok(ShareResult::Failed { message: refusal(code, message) })
                        }
                        Ok(v2::Called::Refused { code, .. }) => code.clone(),
                        Err(p) if p.code == "channel_unavailable" => p.code.to_string(),
                        Err(_) => return answer.map(|_| ShareResult::Failed { message: String::new() }),
                    };
                    // Did WeChat take it? Ask before sending it again.
                    let query: Fields =
                        [("transaction_id", tx.to_string()), ("out_order_no", share.out_order_no.clone())]
                            .into_iter()
                            .collect();
                    if let Ok(v2::Called::Ok(got)) = v2_call(self, key, "/pay/profitsharingquery", query).await {
                        return Ok(shared_as(got.get("order_id")));
                    }
                    if resent {
                        return Err(channel_problem(
                            "channel_unavailable",
                            format!("WeChat Pay {path}: {code}; the share's outcome is not known yet"),
                        ));
                    }
                    resent = true;
                }
            }
            Protocol::V3(keys) => {
                let body = json!({"appid": self.config.appid, "transaction_id": tx, "out_order_no": share.out_order_no,
                    "receivers": receivers, "unfreeze_unsplit": share.kind != ShareKind::WechatMulti});
                let query = format!("/v3/profitsharing/orders/{}?transaction_id={tx}", share.out_order_no);
                let mut resent = false;
                loop {
                    let answer = v3::call(self, keys, "POST", "/v3/profitsharing/orders", Some(body.clone())).await;
                    match &answer {
                        Ok((200, got)) => return Ok(shared_as(got.get("order_id").and_then(Value::as_str))),
                        Ok((status, got)) => {
                            let code = got.get("code").and_then(Value::as_str).unwrap_or("");
                            if !uncertain(code) && *status < 500 {
                                let why = v3::declined("/v3/profitsharing/orders", *status, got);
                                let message = if code == "RECEIVER_INVALID" {
                                    format!("{}; {NOT_ADDED_HINT}", why.message)
                                } else {
                                    why.message
                                };
                                return Ok(ShareResult::Failed { message });
                            }
                        }
                        Err(p) if p.code == "channel_unavailable" => {}
                        Err(_) => return answer.map(|_| ShareResult::Failed { message: String::new() }),
                    }
                    if let Ok((200, got)) = v3::call(self, keys, "GET", &query, None).await {
                        return Ok(shared_as(got.get("order_id").and_then(Value::as_str)));
                    }
                    if resent {
                        return Err(channel_problem(
                            "channel_unavailable",
                            "WeChat Pay /v3/profitsharing/orders: the share's outcome is not known yet",
                        ));
                    }
                    resent = true;
                }
            }
        }
    }

    /// Adds a receiver at WeChat (添加分账接收方). Adding one already there changes nothing at WeChat.
    pub async fn add_receiver(&self, r: &WechatReceiver) -> Result<(), Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let mut receiver = json!({"type": r.kind, "account": r.account, "relation_type": r.relation_type});
                if let Some(name) = &r.name {
                    receiver["name"] = json!(name);
                }
                if let Some(custom) = &r.custom_relation {
                    receiver["custom_relation"] = json!(custom);
                }
                let path = "/pay/profitsharingaddreceiver";
                let fields: Fields = [("receiver", receiver.to_string())].into_iter().collect();
                match v2_call(self, key.expose_secret(), path, fields).await? {
                    v2::Called::Ok(_) => Ok(()),
                    v2::Called::Refused { code, message } => Err(v2::refused(path, &code, &message)),
                }
            }
            Protocol::V3(keys) => {
                let mut body = json!({"appid": self.config.appid, "type": r.kind, "account": r.account,
                    "relation_type": r.relation_type});
                if let Some(custom) = &r.custom_relation {
                    body["custom_relation"] = json!(custom);
                }
                let mut headers = Vec::new();
                if let Some(name) = &r.name {
                    // v3 takes the name only encrypted with the platform key the header names.
                    let (serial, key) = self.encryption_key(keys).await?;
                    let sealed = key.encrypt_oaep_sha1(name.as_bytes()).map_err(|e| {
                        super::account_problem(&format!("the platform key cannot encrypt the receiver's name: {e}"))
                    })?;
                    body["name"] = json!(sealed);
                    headers.push(("Wechatpay-Serial", serial));
                }
                let path = "/v3/profitsharing/receivers/add";
                match v3::call_with(self, keys, "POST", path, Some(body), headers).await? {
                    (200, _) => Ok(()),
                    (status, got) => Err(v3::declined(path, status, &got)),
                }
            }
        }
    }

    /// Removes a receiver at WeChat (删除分账接收方): WeChat refuses splits to it from then on.
    pub async fn remove_receiver(&self, kind: &str, account: &str) -> Result<(), Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let receiver = json!({"type": kind, "account": account});
                let path = "/pay/profitsharingremovereceiver";
                let fields: Fields = [("receiver", receiver.to_string())].into_iter().collect();
                match v2_call(self, key.expose_secret(), path, fields).await? {
                    v2::Called::Ok(_) => Ok(()),
                    v2::Called::Refused { code, message } => Err(v2::refused(path, &code, &message)),
                }
            }
            Protocol::V3(keys) => {
                let body = json!({"appid": self.config.appid, "type": kind, "account": account});
                let path = "/v3/profitsharing/receivers/delete";
                match v3::call(self, keys, "POST", path, Some(body)).await? {
                    (200, _) => Ok(()),
                    (status, got) => Err(v3::declined(path, status, &got)),
                }
            }
        }
    }

    /// Ends sharing: what is still frozen goes to the merchant (v2 profitsharingfinish, v3 orders/unfreeze).
    pub(super) async fn finish_at_wechat(&self, charge: &Charge) -> Result<(), Problem> {
        let tx = transaction_id(charge)?;
        let out_order_no = format!("finish{}", charge.id.replace('_', ""));
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let fields: Fields = [
                    ("transaction_id", tx.to_string()),
                    ("out_order_no", out_order_no),
                    ("amount", "0".to_string()),
                    ("description", "分账已完成".to_string()),
                ]
                .into_iter()
                .collect();
                match v2_call(self, key.expose_secret(), "/secapi/pay/profitsharingfinish", fields).await? {
                    v2::Called::Ok(_) => Ok(()),
                    v2::Called::Refused { code, message } => Err(v2::refused("profitsharingfinish", &code, &message)),
                }
            }
            Protocol::V3(keys) => {
                let body = json!({"transaction_id": tx, "out_order_no": out_order_no, "description": "分账已完成"});
                let path = "/v3/profitsharing/orders/unfreeze";
                match v3::call(self, keys, "POST", path, Some(body)).await? {
                    (200, _) => Ok(()),
                    (status, got) => Err(v3::declined(path, status, &got)),
                }
            }
        }
    }

    /// Takes `amount` of a share back (分账回退) from its first merchant receiver (WeChat returns only from
    /// MERCHANT_ID receivers). The return's number is the share's and its reserved total, so a retry is the same
    /// request.
    pub(super) async fn return_at_wechat(&self, share: &ProfitShare, amount: Amount) -> Result<bool, Problem> {
        let from = share.receivers.iter().find(|r| r.kind == "MERCHANT_ID").ok_or_else(|| {
            channel_problem("channel_declined", "WeChat Pay returns shares only from MERCHANT_ID receivers")
        })?;
        let out_return_no = format!("{}r{}", share.id.replace('_', ""), share.return_reserved.fen());
        match &self.config.protocol {
            Protocol::V2 { key } => {
                let fields: Fields = [
                    ("out_order_no", share.out_order_no.clone()),
                    ("out_return_no", out_return_no),
                    ("return_account_type", "MERCHANT_ID".to_string()),
                    ("return_account", from.account.clone()),
                    ("return_amount", amount.fen().to_string()),
                    ("description", "分账回退".to_string()),
                ]
                .into_iter()
                .collect();
                match v2_call(self, key.expose_secret(), "/secapi/pay/profitsharingreturn", fields).await? {
                    v2::Called::Ok(got) => Ok(got.get("result") != Some("FAILED")),
                    v2::Called::Refused { code, message } => Err(v2::refused("profitsharingreturn", &code, &message)),
                }
            }
            Protocol::V3(keys) => {
                let body = json!({"out_order_no": share.out_order_no, "out_return_no": out_return_no,
                    "return_mchid": from.account, "amount": amount.fen(), "description": "分账回退"});
                let path = "/v3/profitsharing/return-orders";
                match v3::call(self, keys, "POST", path, Some(body)).await? {
                    (200, got) => Ok(got.get("result").and_then(Value::as_str) != Some("FAILED")),
                    (status, got) => Err(v3::declined(path, status, &got)),
                }
            }
        }
    }
}

/// A v2 refusal of a split as the merchant reads it.
fn refusal(code: &str, message: &str) -> String {
    let text = format!("{code} {message}").trim().to_string();
    if code == "RECEIVER_INVALID" {
        format!("{text}; {NOT_ADDED_HINT}")
    } else {
        text
    }
}

fn shared_as(order_id: Option<&str>) -> ShareResult {
    ShareResult::Succeeded { channel_order_no: order_id.unwrap_or_default().to_string() }
}
