//! WeChat Pay notifications into paygate: the core half of `POST /notify/wechat/…`. A notification is trusted only
//! after its signature (v2 `sign`; v3 `Wechatpay-*` headers within 300 s, then AEAD), its mch/app ids and its
//! amount match the account and the charge. A trusted payment success settles the charge through the store's
//! `settle_charge` (a duplicate changes nothing; a closed order goes paid_after_close) and keeps the notification
//! as JSON; a refund result finishes the pending refund through `finish_refund` (idempotent on its status). A v2
//! refund notification is not proof of anything (`req_info` has no integrity check): it only makes paygate ask
//! `/pay/refundquery`, and the signed answer finishes the refund.

use crate::channel_notify::{ours, refuse, Family};
use crate::Paygate;
use paygate_channels::wechat::v2::{self, Fields};
use paygate_channels::wechat::v3::Resource;
use paygate_channels::wechat_pay::WechatPay;
use paygate_domain::{Refund, Scope};
use serde_json::{Map, Value};
use std::sync::Arc;

pub use crate::channel_notify::NotifyRefusal;
pub(crate) use crate::channel_notify::{Paid, Refunded};

const WECHAT: Family = Family { serves: serves_wechat, code: "wechat", name: "WeChat Pay" };

/// WeChat's channel names, and the cashier's scanned WeChat codes (paid through MICROPAY when the app has a WeChat
/// account: only WeChat knows their out_trade_no, so only an authenticated WeChat answer can name one).
fn serves_wechat(channel: &str) -> bool {
    crate::channel_routing::is_wechat_pay_channel(channel) || channel == crate::wechat_micropay::CODE_CHANNEL
}

impl Paygate {
    async fn notify_adapter(&self, app_id: &str, mode: &str) -> Result<(Scope, Arc<WechatPay>), NotifyRefusal> {
        let scope = crate::channel_notify::notify_scope(app_id, mode)?;
        match self.wechat_adapter(&scope).await {
            Ok(Some(adapter)) => Ok((scope, adapter)),
            Ok(None) => Err(refuse(404, "no WeChat Pay account for this app and mode")),
            Err(problem) => Err(ours(problem)),
        }
    }

    /// `POST /notify/wechat/{app_id}/{mode}`: a v2 payment (signed) or refund (`req_info`) notification.
    pub async fn wechat_notify_v2(&self, app_id: &str, mode: &str, body: &str) -> Result<(), NotifyRefusal> {
        let (scope, adapter) = self.notify_adapter(app_id, mode).await?;
        let key = adapter.v2_key().ok_or_else(|| refuse(400, "this account does not use API v2"))?.to_string();
        let fields = v2::parse_xml(body).map_err(|e| refuse(400, e.to_string()))?;
        if fields.get("return_code") != Some("SUCCESS") {
            return Err(refuse(400, "return_code is not SUCCESS"));
        }
        let config = &adapter.config_ids();
        if fields.get("appid") != Some(config.0.as_str()) || fields.get("mch_id") != Some(config.1.as_str()) {
            tracing::warn!(app = %scope.app_id, "WeChat v2 notification for another appid/mch_id refused");
            return Err(refuse(400, "appid or mch_id does not match the account"));
        }
        if let Some(req_info) = fields.non_empty("req_info") {
            // Not proof: req_info is AES-ECB without integrity and the notification has no sign, so blocks of
            // genuine ones can be cut and pasted. It only names a refund to ask WeChat about (`/pay/refundquery`);
            // the refund is finished from that signed answer, never from what req_info says.
            let plain = v2::decrypt_req_info(req_info, &key).map_err(|e| refuse(400, e.to_string()))?;
            let xml = plain.replacen("<root>", "<xml>", 1).replacen("</root>", "</xml>", 1);
            let info = v2::parse_xml(&xml).map_err(|e| refuse(400, format!("req_info: {e}")))?;
            let need = |name: &str| info.require(name).map_err(|e| refuse(400, format!("req_info: {e}")));
            let refund = self.notified_refund(&scope, need("out_trade_no")?, need("out_refund_no")?).await?;
            if refund.amount.fen() != int(need("refund_fee")?, "refund_fee")? {
                return Err(refuse(400, "req_info: refund_fee does not equal the refund's amount"));
            }
            return match self.sync_wechat_refund(&scope, &refund).await {
                Ok(_) => Ok(()),
                Err(problem) => {
                    tracing::warn!(refund = %refund.id, %problem, "refund query after a v2 notification failed");
                    // FAIL: WeChat notifies again, and the poller keeps asking meanwhile.
                    Err(refuse(503, format!("the refund could not be confirmed with WeChat Pay: {}", problem.message)))
                }
            };
        }
        v2::verify(&fields, &key).map_err(|e| {
            tracing::warn!(app = %scope.app_id, "WeChat v2 notification with a bad signature refused");
            refuse(400, e.to_string())
        })?;
        if fields.get("result_code") != Some("SUCCESS") {
            // A failed payment is not final for the order (the payer can try again): acknowledge, change nothing.
            return Ok(());
        }
        let need = |name: &str| fields.require(name).map_err(|e| refuse(400, e.to_string()));
        let paid = Paid {
            out_trade_no: need("out_trade_no")?,
            transaction_id: need("transaction_id")?,
            total: int(need("total_fee")?, "total_fee")?,
            notification: fields_json(&fields),
        };
        self.payment_notified(&scope, &paid).await
    }

    /// `POST /notify/wechat/v3/{app_id}/{mode}`: a v3 callback (`TRANSACTION.SUCCESS`, `REFUND.*`).
    pub async fn wechat_notify_v3(
        &self,
        app_id: &str,
        mode: &str,
        header: impl Fn(&str) -> Option<String>,
        body: &str,
    ) -> Result<(), NotifyRefusal> {
        let (scope, adapter) = self.notify_adapter(app_id, mode).await?;
        let keys = adapter.v3_keys().ok_or_else(|| refuse(400, "this account does not use API v3"))?;
        keys.verify_signed(header, body, wall_clock()).map_err(|e| {
            tracing::warn!(app = %scope.app_id, code = e.code(), "WeChat v3 notification refused");
            refuse(401, e.to_string())
        })?;
        let event: Value = serde_json::from_str(body).map_err(|_| refuse(400, "body is not JSON"))?;
        let event_type = event.get("event_type").and_then(Value::as_str).unwrap_or("");
        let resource: Resource = event
            .get("resource")
            .cloned()
            .and_then(|r| serde_json::from_value(r).ok())
            .ok_or_else(|| refuse(400, "resource is missing or malformed"))?;
        let plain = resource.open(keys.api_v3_key()).map_err(|e| refuse(400, e.to_string()))?;
        let data: Value = serde_json::from_slice(&plain).map_err(|_| refuse(400, "resource is not JSON"))?;
        let text = |name: &str| {
            data.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .ok_or_else(|| refuse(400, format!("resource.{name} is missing")))
        };
        let (appid, mch_id) = adapter.config_ids();
        if text("mchid")? != mch_id {
            tracing::warn!(app = %scope.app_id, "WeChat v3 notification for another mchid refused");
            return Err(refuse(400, "mchid does not match the account"));
        }
        let amount = |name: &str| {
            data.pointer(&format!("/amount/{name}"))
                .and_then(Value::as_i64)
                .ok_or_else(|| refuse(400, format!("resource.amount.{name} is missing")))
        };
        match event_type {
            "TRANSACTION.SUCCESS" => {
                if text("appid")? != appid {
                    return Err(refuse(400, "appid does not match the account"));
                }
                if text("trade_state")? != "SUCCESS" {
                    return Ok(());
                }
                let mut kept = Map::new();
                kept.insert("event_type".into(), Value::String(event_type.to_string()));
                kept.insert("id".into(), event.get("id").cloned().unwrap_or(Value::Null));
                kept.insert("resource".into(), data.clone());
                let paid = Paid {
                    out_trade_no: text("out_trade_no")?,
                    transaction_id: text("transaction_id")?,
                    total: amount("total")?,
                    notification: Value::Object(kept),
                };
                self.payment_notified(&scope, &paid).await
            }
            "REFUND.SUCCESS" | "REFUND.CLOSED" | "REFUND.ABNORMAL" => {
                let refunded = Refunded {
                    out_trade_no: text("out_trade_no")?,
                    out_refund_no: text("out_refund_no")?,
                    refund_fee: amount("refund")?,
                    status: text("refund_status")?,
                    refund_id: data.get("refund_id").and_then(Value::as_str),
                };
                self.refund_notified(&scope, &refunded).await
            }
            other => {
                tracing::info!(app = %scope.app_id, event_type = other, "WeChat v3 notification of no interest");
                Ok(())
            }
        }
    }

    /// A WeChat payment, authenticated (a notification or the poller's query): settles through the shared path.
    pub(crate) async fn payment_notified(&self, scope: &Scope, paid: &Paid<'_>) -> Result<(), NotifyRefusal> {
        self.settle_notified(scope, WECHAT, paid).await
    }

    /// The refund a v2 refund notification names (by out_trade_no and out_refund_no), or a 404 refusal.
    async fn notified_refund(
        &self,
        scope: &Scope,
        out_trade_no: &str,
        out_refund_no: &str,
    ) -> Result<Refund, NotifyRefusal> {
        let charge = self.notified_charge(scope, WECHAT, out_trade_no).await?;
        let refunds = self.store.refunds(scope, None, Some(&charge.id), 100).await.map_err(ours)?;
        refunds
            .data
            .into_iter()
            .find(|r| r.refund_no == out_refund_no)
            .ok_or_else(|| refuse(404, "out_refund_no names no refund of this charge"))
    }

    /// A WeChat refund result, authenticated: finishes the refund through the shared path.
    pub(crate) async fn refund_notified(&self, scope: &Scope, refunded: &Refunded<'_>) -> Result<(), NotifyRefusal> {
        self.finish_notified_refund(scope, WECHAT, refunded).await
    }
}

fn int(text: &str, name: &str) -> Result<i64, NotifyRefusal> {
    text.parse::<i64>().map_err(|_| refuse(400, format!("{name} is not an integer")))
}

/// The notification as kept with the charge: its fields as a JSON object, in the order they came.
fn fields_json(fields: &Fields) -> Value {
    Value::Object(fields.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect())
}

/// v3 signature windows are WeChat's real time, not paygate's business clock.
fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
