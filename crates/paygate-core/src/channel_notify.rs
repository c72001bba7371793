//! What a channel's authenticated notification (or a query that found the same) does in the books, for every
//! real channel (WeChat Pay, Alipay): a payment success settles the charge through the store's `settle_charge`
//! (a duplicate changes nothing; a closed order goes paid_after_close, then `after_late_payment`) and keeps the
//! notification as JSON; a refund result finishes the pending refund through `finish_refund` (idempotent on
//! its status). Authentication is each channel's own (`wechat_notify.rs`, `alipay_notify.rs`).

use crate::Paygate;
use paygate_domain::{Charge, ChargeStatus, Mode, Problem, RefundStatus, Scope};
use paygate_store::{ChargeOutcome, RefundOutcome, SettledCharge};
use serde_json::Value;

/// Why a notification was not taken: the HTTP status to answer and the channel's failure message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRefusal {
    pub status: u16,
    pub message: String,
}

pub(crate) fn refuse(status: u16, message: impl Into<String>) -> NotifyRefusal {
    NotifyRefusal { status, message: message.into() }
}

/// A failure on our side (the database): the channel should retry, so a 5xx.
pub(crate) fn ours(problem: Problem) -> NotifyRefusal {
    tracing::error!(%problem, "channel notification not recorded");
    refuse(500, "temporarily unable to record the notification")
}

/// The app and mode a notification path names (`…/{app_id}/{test|live}`); anything else is a 404.
pub(crate) fn notify_scope(app_id: &str, mode: &str) -> Result<Scope, NotifyRefusal> {
    let mode = match mode {
        "test" => Mode::Test,
        "live" => Mode::Live,
        _ => return Err(refuse(404, "mode must be test or live")),
    };
    let plausible = app_id.starts_with("app_")
        && app_id.len() <= 64
        && app_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !plausible {
        return Err(refuse(404, "no such app"));
    }
    Ok(Scope { app_id: app_id.to_string(), mode })
}

/// The channel family of the account that authenticated a notification.
#[derive(Clone, Copy)]
pub(crate) struct Family {
    /// Which channel names its notifications may settle.
    pub serves: fn(&str) -> bool,
    /// Failure codes' prefix (`wechat`, `alipay`) and the name in messages.
    pub code: &'static str,
    pub name: &'static str,
}

/// A notification's facts about a payment, after it was authenticated.
pub(crate) struct Paid<'a> {
    pub out_trade_no: &'a str,
    pub transaction_id: &'a str,
    pub total: i64,
    pub notification: Value,
}

/// A refund result, after authentication.
pub(crate) struct Refunded<'a> {
    pub out_trade_no: &'a str,
    pub out_refund_no: &'a str,
    pub refund_fee: i64,
    /// `SUCCESS`, `REFUNDCLOSE` / `CLOSED`, or anything else (left pending).
    pub status: &'a str,
    pub refund_id: Option<&'a str>,
}

impl Paygate {
    /// The charge of `family` that `out_trade_no` names, or a 404 refusal.
    pub(crate) async fn notified_charge(
        &self,
        scope: &Scope,
        family: Family,
        out_trade_no: &str,
    ) -> Result<Charge, NotifyRefusal> {
        let charge = self.store.find_charge(scope, out_trade_no).await.map_err(ours)?;
        charge
            .filter(|c| c.channel_order_no == out_trade_no && (family.serves)(&c.channel))
            .ok_or_else(|| refuse(404, "out_trade_no names no charge of this channel"))
    }

    pub(crate) async fn settle_notified(
        &self,
        scope: &Scope,
        family: Family,
        paid: &Paid<'_>,
    ) -> Result<(), NotifyRefusal> {
        let charge = self.notified_charge(scope, family, paid.out_trade_no).await?;
        if paid.total != charge.amount.fen() {
            tracing::warn!(charge = %charge.id, notified = paid.total, "notification of another amount refused");
            return Err(refuse(400, "total does not equal the charge's amount"));
        }
        if charge.status == ChargeStatus::Succeeded {
            // A duplicate (channels resend until acknowledged): already recorded.
            return Ok(());
        }
        let settlement = Some(self.settlement_for(scope, &charge).await.map_err(ours)?.to_json());
        let outcome = ChargeOutcome::Succeeded {
            transaction_no: paid.transaction_id.to_string(),
            time_paid: self.now(),
            notification: Some(paid.notification.clone()),
            settlement,
        };
        let settled = match self.store.settle_charge(scope, &charge.id, &outcome).await {
            Ok(settled) => settled,
            // Paid twice (a superseded charge's QR code): not recordable yet (see ARCHITECTURE, deliberately
            // absent); refused so the channel keeps the record and retries, and said loudly for the operator.
            Err(problem) if problem.code == "order_already_paid" => {
                tracing::error!(charge = %charge.id, %problem, "channel payment for an order already paid");
                return Err(refuse(409, "the order was already paid by another charge"));
            }
            Err(problem) => return Err(ours(problem)),
        };
        match settled {
            SettledCharge::Settled { order, .. } => {
                if let Err(problem) = self.after_late_payment(scope, order).await {
                    tracing::warn!(charge = %charge.id, %problem, "automatic refund failed; the worker retries it");
                }
            }
            SettledCharge::NotPending(now) => {
                if now.status != ChargeStatus::Succeeded {
                    tracing::warn!(charge = %now.id, status = now.status.as_str(),
                        "channel reports a payment for a charge that is no longer pending");
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn finish_notified_refund(
        &self,
        scope: &Scope,
        family: Family,
        refunded: &Refunded<'_>,
    ) -> Result<(), NotifyRefusal> {
        let charge = self.notified_charge(scope, family, refunded.out_trade_no).await?;
        let refunds = self.store.refunds(scope, None, Some(&charge.id), 100).await.map_err(ours)?;
        let refund = refunds
            .data
            .into_iter()
            .find(|r| r.refund_no == refunded.out_refund_no)
            .ok_or_else(|| refuse(404, "out_refund_no names no refund of this charge"))?;
        if refund.amount.fen() != refunded.refund_fee {
            tracing::warn!(refund = %refund.id, "refund notification with another amount refused");
            return Err(refuse(400, "refund amount does not equal the refund's amount"));
        }
        if refund.status != RefundStatus::Pending {
            return Ok(());
        }
        let outcome = match refunded.status {
            "SUCCESS" => RefundOutcome::Succeeded {
                transaction_no: refunded.refund_id.map(str::to_string),
                time_succeed: self.now(),
            },
            "REFUNDCLOSE" | "CLOSED" => RefundOutcome::Failed {
                code: format!("{}_refund_closed", family.code),
                message: format!("{} closed the refund.", family.name),
            },
            // CHANGE / ABNORMAL need the merchant's action at the channel; PROCESSING is not a result yet.
            _ => return Ok(()),
        };
        self.store.finish_refund(scope, &refund.id, &outcome).await.map_err(ours)?;
        Ok(())
    }
}
