//! WeChat Pay notifications into paygate: the core half of `POST /notify/wechat/…`. A notification is trusted only
//! after its signature (v2 `sign`; v3 `Wechatpay-*` headers within 300 s, then AEAD), its mch/app ids and its
//! amount match the account and the charge. A trusted payment success settles the charge through the store's
//! `settle_charge` (a duplicate changes nothing; a closed order goes paid_after_close) and keeps the notification
//! as JSON; a refund result finishes the pending refund through `finish_refund` (idempotent on its status). A v2
//! refund notification is not proof of anything (`req_info` has no integrity check): it only makes paygate ask
//! `/pay/refundquery`, and the signed answer finishes the refund.

use crate::channel_notify::{ours, refuse, Family};
use crate::Paygate;
use paygate_channels::wechat_pay::notify::{self, Notice};
use paygate_channels::wechat_pay::WechatPay;
use paygate_domain::{Refund, Scope};
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
        let key = adapter.v2_key().ok_or_else(|| refuse(400, "this account does not use API v2"))?;
        let (appid, mch_id) = adapter.config_ids();
        let notice = notify::read_v2(body, key, &appid, &mch_id).map_err(|r| refused(&scope, "v2", r))?;
        match notice {
            Notice::Refund(info) => {
                // Not proof (see `notify::read_v2`): only a refund to ask WeChat about; the refund is finished from
                // the signed answer of `/pay/refundquery`, never from what req_info says.
                let refund = self.notified_refund(&scope, &info.out_trade_no, &info.out_refund_no).await?;
                if refund.amount.fen() != info.refund_fee {
                    return Err(refuse(400, "req_info: refund_fee does not equal the refund's amount"));
                }
                match self.sync_wechat_refund(&scope, &refund).await {
                    Ok(_) => Ok(()),
                    Err(problem) => {
                        tracing::warn!(refund = %refund.id, %problem, "refund query after a v2 notification failed");
                        // FAIL: WeChat notifies again, and the poller keeps asking meanwhile.
                        Err(refuse(
                            503,
                            format!("the refund could not be confirmed with WeChat Pay: {}", problem.message),
                        ))
                    }
                }
            }
            Notice::Payment(Some(paid)) => self.payment_notified(&scope, &paid_of(&paid)).await,
            // A failed payment is not final for the order (the payer can try again): acknowledge, change nothing.
            Notice::Payment(None) | Notice::Other(_) => Ok(()),
        }
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
        let (appid, mch_id) = adapter.config_ids();
        if let Some(serial) = header("Wechatpay-Serial") {
            // Certificate mode: a new serial fetches WeChat's certificates first (at most once a minute).
            adapter.learn_platform_serial(&serial).await.map_err(|problem| {
                tracing::warn!(app = %scope.app_id, %problem, "WeChat Pay platform certificates not fetched");
                refuse(503, "the platform certificate named by Wechatpay-Serial could not be fetched")
            })?;
        }
        let notice =
            notify::read_v3(keys, &appid, &mch_id, header, body, wall_clock()).map_err(|r| refused(&scope, "v3", r))?;
        match notice {
            Notice::Payment(Some(paid)) => self.payment_notified(&scope, &paid_of(&paid)).await,
            Notice::Payment(None) => Ok(()),
            Notice::Refund(r) => {
                let refunded = Refunded {
                    out_trade_no: &r.out_trade_no,
                    out_refund_no: &r.out_refund_no,
                    refund_fee: r.refund_fee,
                    status: r.status.as_deref().unwrap_or(""),
                    refund_id: r.refund_id.as_deref(),
                };
                self.refund_notified(&scope, &refunded).await
            }
            Notice::Other(event_type) => {
                tracing::info!(app = %scope.app_id, %event_type, "WeChat v3 notification of no interest");
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

/// A refused notification, logged with its app.
fn refused(scope: &Scope, version: &str, refusal: notify::Refusal) -> NotifyRefusal {
    tracing::warn!(app = %scope.app_id, version, why = %refusal.message, "WeChat notification refused");
    refuse(refusal.status, refusal.message)
}

fn paid_of(paid: &notify::PaidNotice) -> Paid<'_> {
    Paid {
        out_trade_no: &paid.out_trade_no,
        transaction_id: &paid.transaction_id,
        total: paid.total,
        notification: paid.notification.clone(),
    }
}

/// v3 signature windows are WeChat's real time, not paygate's business clock.
fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
