//! Alipay's async notifications into paygate: the core half of `POST /notify/alipay/{app_id}/{test|live}`. A
//! notification (urlencoded form) is trusted only after its RSA2 signature (over every non-empty field but `sign`
//! and `sign_type`) checks out with the account's Alipay public key, its `app_id` is the account's, its
//! `seller_id` is the account's (when the account names one) and its `total_amount` is the charge's amount.
//! TRADE_SUCCESS / TRADE_FINISHED settle the charge through the shared path (`channel_notify.rs`); a refund
//! notification (`out_biz_no`, `gmt_refund`) is confirmed by the refund query, since its `refund_fee` is the
//! trade's total refunded, then finishes the refund through the same shared path.

use crate::channel_notify::{notify_scope, ours, refuse, Family, NotifyRefusal, Paid, Refunded};
use crate::Paygate;
use paygate_channels::alipay::{self, Params};
use paygate_channels::alipay_pay::AlipayPay;
use paygate_channels::RefundResult;
use paygate_domain::{RefundStatus, Scope};
use serde_json::Value;
use std::sync::Arc;

pub(crate) const ALIPAY: Family = Family { serves: serves_alipay, code: "alipay", name: "Alipay" };

/// Alipay's channel names, and the cashier's scanned Alipay codes (charged at Alipay when the app has an account).
fn serves_alipay(channel: &str) -> bool {
    crate::channel_routing::is_alipay_channel(channel) || channel == crate::alipay_barcode::CODE_CHANNEL
}

impl Paygate {
    /// `POST /notify/alipay/{app_id}/{mode}` with the raw form body. `Ok` means answer exactly `success`.
    pub async fn alipay_notify(&self, app_id: &str, mode: &str, body: &[u8]) -> Result<(), NotifyRefusal> {
        let scope = notify_scope(app_id, mode)?;
        let adapter = match self.alipay_adapter(&scope).await {
            Ok(Some(adapter)) => adapter,
            Ok(None) => return Err(refuse(404, "no Alipay account for this app and mode")),
            Err(problem) => return Err(ours(problem)),
        };
        let params = alipay::parse_form(body).map_err(|e| refuse(400, e.to_string()))?;
        adapter.verify_notify(&params).map_err(|e| {
            tracing::warn!(app = %scope.app_id, code = e.code(), "Alipay notification with a bad signature refused");
            refuse(400, e.to_string())
        })?;
        let (alipay_app_id, seller_id) = adapter.ids();
        if params.get("app_id").map(String::as_str) != Some(alipay_app_id) {
            tracing::warn!(app = %scope.app_id, "Alipay notification for another app_id refused");
            return Err(refuse(400, "app_id does not match the account"));
        }
        if !seller_id.is_empty() && params.get("seller_id").map(String::as_str) != Some(seller_id) {
            tracing::warn!(app = %scope.app_id, "Alipay notification for another seller_id refused");
            return Err(refuse(400, "seller_id does not match the account"));
        }
        let need = |name: &str| {
            params
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| refuse(400, format!("{name} is missing")))
        };
        let out_trade_no = need("out_trade_no")?;
        if let Some(out_biz_no) = params.get("out_biz_no").filter(|v| !v.is_empty()) {
            return self.alipay_refund_notified(&scope, &adapter, out_trade_no, out_biz_no).await;
        }
        match need("trade_status")? {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let total =
                    alipay::parse_yuan(need("total_amount")?).map_err(|e| refuse(400, format!("total_amount: {e}")))?;
                let paid = Paid { out_trade_no, transaction_id: need("trade_no")?, total, notification: kept(&params) };
                self.settle_notified(&scope, ALIPAY, &paid).await
            }
            // WAIT_BUYER_PAY is not final; TRADE_CLOSED of an unpaid trade: the order's expiry closes it here.
            _ => Ok(()),
        }
    }

    /// A refund notification: the refund `out_biz_no` names, confirmed by Alipay's refund query.
    async fn alipay_refund_notified(
        &self,
        scope: &Scope,
        adapter: &Arc<AlipayPay>,
        out_trade_no: &str,
        out_biz_no: &str,
    ) -> Result<(), NotifyRefusal> {
        let charge = self.notified_charge(scope, ALIPAY, out_trade_no).await?;
        let refunds = self.store.refunds(scope, None, Some(&charge.id), 100).await.map_err(ours)?;
        let Some(refund) = refunds.data.into_iter().find(|r| r.refund_no == out_biz_no) else {
            // A refund made at Alipay's console, not through paygate: nothing of ours to finish.
            tracing::info!(charge = %charge.id, "Alipay refund notification for a refund paygate did not make");
            return Ok(());
        };
        if refund.status != RefundStatus::Pending {
            return Ok(());
        }
        let transaction_no = match adapter.refund_status(&charge, &refund).await {
            Ok(RefundResult::Succeeded { transaction_no }) => transaction_no,
            // Not confirmed (yet): Alipay retries the notification until acknowledged.
            Ok(_) => return Err(refuse(409, "the refund is not confirmed by Alipay's refund query yet")),
            Err(problem) => {
                tracing::warn!(refund = %refund.id, %problem, "Alipay refund query failed");
                return Err(refuse(409, "the refund could not be confirmed with Alipay yet"));
            }
        };
        let refunded = Refunded {
            out_trade_no,
            out_refund_no: out_biz_no,
            refund_fee: refund.amount.fen(),
            status: "SUCCESS",
            refund_id: transaction_no.as_deref(),
        };
        self.finish_notified_refund(scope, ALIPAY, &refunded).await
    }
}

/// The notification as kept with the charge: its fields but the signature.
fn kept(params: &Params) -> Value {
    Value::Object(
        params
            .iter()
            .filter(|(k, _)| k.as_str() != "sign")
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}
