//! Asking a real channel (WeChat Pay, Alipay) where a payment or refund stands, instead of waiting for its
//! notification: the worker's poller on a backoff (`channel_polls`), and forced syncs at once. What the answer says
//! is recorded through the same core paths as that channel's notification (`payment_notified` / `refund_notified`,
//! Alipay's `settle_notified` / `finish_notified_refund`), so a duplicate changes nothing, a success for a closed
//! order goes paid_after_close, and a refund's success or close finishes it.
//!
//! What is polled: charges opened at WeChat or Alipay (pending after the open call: NOTPAY, USERPAYING,
//! WAIT_BUYER_PAY, or no answer), refunds the channel has not confirmed (WeChat PROCESSING, Alipay without
//! `fund_change=Y` and not yet REFUND_SUCCESS in its refund query) and Alipay royalty settlements left unanswered.
//! Alipay carries out one refund (one settlement) per out_request_no, so when its query says it has none, the very
//! same request is sent again (at most [`RESENDS`] times); only a definite refusal of it fails the refund (its amount
//! is refundable again) or the share (its reservation released). Sandbox charges and refunds are never scheduled,
//! and a scheduled one whose app no longer routes to its channel is dropped. A query that fails leaves everything
//! as it was; the claim already moved the next check on the backoff, so the next round asks again.

use crate::alipay_barcode::{code_wait_over, paid_by_code_at_alipay};
use crate::alipay_notify::ALIPAY;
use crate::channel_routing::{is_alipay_channel, is_wechat_pay_channel, Routed};
use crate::wechat_notify::{NotifyRefusal, Paid, Refunded};
use crate::{Pass, Paygate};
use paygate_channels::alipay_pay::{AlipayPay, CodePaid, RefundSeen, SettleSeen};
use paygate_channels::wechat_pay::{TradeQueried, WechatPay};
use paygate_channels::{RefundResult, ShareResult};
use paygate_domain::shares::{ProfitShare, ShareStatus};
use paygate_domain::{Charge, ChargeStatus, Problem, ProblemKind, Refund, RefundStatus, Scope};
use paygate_store::{ChargeOutcome, PollKind, RefundOutcome, ShareOutcome};
use std::sync::Arc;

/// Seconds between checks: the first 5 s after the payment opened (or the refund was accepted), then 10 s, 30 s,
/// 1 min, 5 min, and every 10 min after that while it stays pending (order expiry ends a payment's polling).
pub const POLL_DELAYS: [i64; 6] = [5, 10, 30, 60, 300, 600];

/// How many poll rounds may send an Alipay refund or settlement again after its query said Alipay has none.
/// Past that it stays pending (still queried) for an operator: something keeps it from reaching Alipay.
pub const RESENDS: i64 = 5;

/// Where a sync left the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    /// The channel's answer was final and is recorded now (through the notification path: a duplicate of what
    /// was recorded meanwhile changes nothing).
    Final,
    /// Already settled here before asking (a notification came first): nothing was asked.
    Settled,
    /// Still pending at the channel.
    Pending,
    /// Not at a real channel (the sandbox): there is nothing to ask.
    NotPolled,
}

impl Paygate {
    /// Puts a charge just opened at a real channel on the poller's schedule. A failure is logged only: the
    /// notification and the order's expiry still settle the charge.
    pub(crate) async fn schedule_charge_poll(&self, scope: &Scope, charge: &Charge) {
        if polled_channel(charge).is_some() {
            self.schedule(PollKind::Charge, scope, &charge.id).await;
        }
    }

    /// Puts a refund the channel has not confirmed (WeChat PROCESSING, Alipay unconfirmed) on the poller's
    /// schedule, when its charge is at WeChat or Alipay.
    pub(crate) async fn schedule_refund_poll(&self, scope: &Scope, refund: &Refund, charge: &Charge) {
        if polled_channel(charge).is_some() {
            self.schedule(PollKind::Refund, scope, &refund.id).await;
        }
    }

    /// Puts a share whose settlement went unanswered on the poller's schedule, when its charge is at Alipay.
    pub(crate) async fn schedule_share_poll(&self, scope: &Scope, share: &ProfitShare, charge: &Charge) {
        if polled_channel(charge) == Some(Polled::Alipay) {
            self.schedule(PollKind::Share, scope, &share.id).await;
        }
    }

    async fn schedule(&self, kind: PollKind, scope: &Scope, id: &str) {
        let now = self.now();
        if let Err(problem) = self.store.schedule_poll(kind, scope, id, now, now + POLL_DELAYS[0]).await {
            tracing::warn!(kind = kind.as_str(), id, %problem, "could not schedule the channel poll");
        }
    }

    /// One poller round: claims the checks due now (at most `limit`; each claim moves its next check on the
    /// backoff first, so two nodes never both ask) and asks the channel about each, one failure never stopping the
    /// others. `done` counts the objects whose answer was final (their schedule ends).
    pub async fn poll_channels(&self, limit: i64) -> Result<Pass, Problem> {
        let mut pass = Pass::default();
        for due in self.store.claim_due_polls(self.now(), limit, &POLL_DELAYS).await? {
            let synced = match due.kind {
                PollKind::Charge => match self.store.charge(&due.scope, &due.id).await {
                    Ok(Some(charge)) => self.sync_charge_now(&due.scope, &charge).await,
                    Ok(None) => Ok(Synced::NotPolled),
                    Err(problem) => Err(problem),
                },
                PollKind::Refund => match self.store.refund(&due.scope, &due.id).await {
                    Ok(Some(refund)) => self.sync_refund(&due.scope, &refund, due.attempts).await,
                    Ok(None) => Ok(Synced::NotPolled),
                    Err(problem) => Err(problem),
                },
                PollKind::Share => self.sync_alipay_share(&due.scope, &due.id, due.attempts).await,
            };
            match synced {
                Ok(Synced::Pending) => {}
                Ok(done) => {
                    if done == Synced::Final {
                        pass.done += 1;
                    }
                    if let Err(problem) = self.store.end_poll(due.kind, &due.id).await {
                        pass.failed.push((due.id, problem));
                    }
                }
                Err(problem) => pass.failed.push((due.id, problem)),
            }
        }
        Ok(pass)
    }

    /// Asks WeChat where `charge`'s payment stands and records a final answer as its notification would be.
    /// A charge already settled is final without asking. A closed charge is asked about only with `closed_too`
    /// (the poller's last look after a close: money that arrived anyway goes paid_after_close).
    pub async fn sync_wechat_charge(
        &self,
        scope: &Scope,
        charge: &Charge,
        closed_too: bool,
    ) -> Result<Synced, Problem> {
        if !worth_asking(charge, closed_too) {
            return Ok(Synced::Settled);
        }
        let Some(adapter) = self.wechat_of(scope, charge).await? else {
            return Ok(Synced::NotPolled);
        };
        let trade = adapter.query_trade(charge).await?;
        self.record_trade(scope, charge, &trade).await
    }

    /// Records what WeChat reported about `charge`'s payment (a query's or a payment code's answer).
    pub(crate) async fn record_trade(
        &self,
        scope: &Scope,
        charge: &Charge,
        trade: &TradeQueried,
    ) -> Result<Synced, Problem> {
        match trade.state.as_str() {
            "SUCCESS" | "REFUND" => {
                let missing = |name: &str| {
                    Problem::new(
                        ProblemKind::Channel,
                        "channel_bad_answer",
                        format!("WeChat Pay reports the payment as paid without {name}."),
                    )
                };
                let transaction_id = trade.transaction_id.as_deref().ok_or_else(|| missing("transaction_id"))?;
                let paid = Paid {
                    out_trade_no: &charge.channel_order_no,
                    transaction_id,
                    total: trade.total.ok_or_else(|| missing("the total"))?,
                    notification: trade.answer.clone(),
                };
                self.payment_notified(scope, &paid).await.map_err(|r| refused("WeChat Pay", r))?;
                Ok(Synced::Final)
            }
            _ if charge.status == ChargeStatus::Closed => Ok(Synced::Final),
            "CLOSED" | "REVOKED" | "PAYERROR" => {
                let state = trade.state.as_str();
                let failed = ChargeOutcome::Failed {
                    code: format!("wechat_{}", state.to_ascii_lowercase()),
                    message: format!("WeChat Pay reports the payment as {state}."),
                };
                self.store.settle_charge(scope, &charge.id, &failed).await?;
                Ok(Synced::Final)
            }
            // NOTPAY, USERPAYING, ACCEPT and anything new: not a result yet.
            _ => Ok(Synced::Pending),
        }
    }

    /// Asks WeChat where a pending refund stands; SUCCESS and REFUNDCLOSE / CLOSED finish it.
    pub async fn sync_wechat_refund(&self, scope: &Scope, refund: &Refund) -> Result<Synced, Problem> {
        if refund.status != RefundStatus::Pending {
            return Ok(Synced::Settled);
        }
        let charge = self
            .store
            .charge(scope, &refund.charge_id)
            .await?
            .ok_or_else(|| Problem::internal("a refund's charge vanished"))?;
        let Some(adapter) = self.wechat_of(scope, &charge).await? else {
            return Ok(Synced::NotPolled);
        };
        let queried = adapter.query_refund(refund).await?;
        let refunded = Refunded {
            out_trade_no: &charge.channel_order_no,
            out_refund_no: &refund.refund_no,
            refund_fee: queried.refund_fee,
            status: &queried.status,
            refund_id: queried.refund_id.as_deref(),
        };
        self.refund_notified(scope, &refunded).await.map_err(|r| refused("WeChat Pay", r))?;
        Ok(match queried.status.as_str() {
            "SUCCESS" | "REFUNDCLOSE" | "CLOSED" => Synced::Final,
            _ => Synced::Pending,
        })
    }

    /// Asks the charge's channel (a poller round, a reconciliation's re-query): closed charges get their last look
    /// too.
    pub(crate) async fn sync_charge_now(&self, scope: &Scope, charge: &Charge) -> Result<Synced, Problem> {
        match polled_channel(charge) {
            Some(Polled::Alipay) => self.sync_alipay_charge(scope, charge, true).await,
            Some(Polled::Wechat) => self.sync_wechat_charge(scope, charge, true).await,
            None => Ok(Synced::NotPolled),
        }
    }

    /// Asks the refund's channel at once (a reconciliation's re-query).
    pub(crate) async fn sync_refund_now(&self, scope: &Scope, refund: &Refund) -> Result<Synced, Problem> {
        // A re-query only asks: sending a lost Alipay refund again is the poller's (bounded) business.
        self.sync_refund(scope, refund, RESENDS).await
    }

    /// A pending refund's round: asked at the channel of its charge.
    async fn sync_refund(&self, scope: &Scope, refund: &Refund, attempts: i64) -> Result<Synced, Problem> {
        if refund.status != RefundStatus::Pending {
            return Ok(Synced::Settled);
        }
        let charge = self
            .store
            .charge(scope, &refund.charge_id)
            .await?
            .ok_or_else(|| Problem::internal("a refund's charge vanished"))?;
        match polled_channel(&charge) {
            Some(Polled::Alipay) => self.sync_alipay_refund(scope, refund, &charge, attempts).await,
            _ => self.sync_wechat_refund(scope, refund).await,
        }
    }

    /// Asks Alipay (`alipay.trade.query`) where `charge`'s trade stands and records a final answer as its
    /// notification would be: TRADE_SUCCESS / TRADE_FINISHED settle it, TRADE_CLOSED fails it; a code payment
    /// still waiting past the wait is canceled (`alipay.trade.cancel`). `closed_too` as for WeChat: a closed charge
    /// gets a last look (money that arrived anyway goes paid_after_close).
    pub async fn sync_alipay_charge(
        &self,
        scope: &Scope,
        charge: &Charge,
        closed_too: bool,
    ) -> Result<Synced, Problem> {
        if !worth_asking(charge, closed_too) {
            return Ok(Synced::Settled);
        }
        let Some(adapter) = self.alipay_of(scope, charge).await? else {
            return Ok(Synced::NotPolled);
        };
        let trade = adapter.query_code(charge).await?;
        if matches!(trade, CodePaid::Pending { .. }) && code_wait_over(charge, self.now()) {
            return self.cancel_alipay_code(scope, charge, &adapter).await;
        }
        self.record_alipay_trade(scope, charge, trade).await
    }

    /// Asks Alipay's refund query about a refund it has not confirmed; REFUND_SUCCESS with the refund's amount
    /// finishes it through the refund notification's path. A refund Alipay says it has none of (its request was
    /// lost: 20000, no answer) is sent again with the same out_request_no; a definite refusal of that fails it
    /// through the refund-failure path (the amount is refundable again). Anything else is still pending.
    async fn sync_alipay_refund(
        &self,
        scope: &Scope,
        refund: &Refund,
        charge: &Charge,
        attempts: i64,
    ) -> Result<Synced, Problem> {
        let Some(adapter) = self.alipay_of(scope, charge).await? else {
            return Ok(Synced::NotPolled);
        };
        let transaction_no = match adapter.refund_seen(charge, refund).await? {
            RefundSeen::Done { transaction_no } => transaction_no,
            RefundSeen::Pending => return Ok(Synced::Pending),
            RefundSeen::Missing if attempts >= RESENDS => {
                tracing::warn!(refund = %refund.id, attempts, "Alipay still has no such refund; not sent again");
                return Ok(Synced::Pending);
            }
            RefundSeen::Missing => match adapter.refund_again(charge, refund).await? {
                RefundResult::Succeeded { transaction_no } => transaction_no,
                RefundResult::Processing => return Ok(Synced::Pending),
                RefundResult::Failed { code, message } => {
                    tracing::warn!(refund = %refund.id, %code, "Alipay refused the refund sent again; failed");
                    self.store.finish_refund(scope, &refund.id, &RefundOutcome::Failed { code, message }).await?;
                    return Ok(Synced::Final);
                }
            },
        };
        let refunded = Refunded {
            out_trade_no: &charge.channel_order_no,
            out_refund_no: &refund.refund_no,
            refund_fee: refund.amount.fen(),
            status: "SUCCESS",
            refund_id: transaction_no.as_deref(),
        };
        self.finish_notified_refund(scope, ALIPAY, &refunded).await.map_err(|r| refused("Alipay", r))?;
        Ok(Synced::Final)
    }

    /// A share whose Alipay settlement was not answered: the settle query first; "no such settlement" sends the
    /// same settlement again (at most [`RESENDS`] rounds); a definite answer finishes the share (a failure releases
    /// its reservation).
    async fn sync_alipay_share(&self, scope: &Scope, share_id: &str, attempts: i64) -> Result<Synced, Problem> {
        let Some(share) = self.store.share(scope, share_id).await? else {
            return Ok(Synced::NotPolled);
        };
        if share.status != ShareStatus::Pending {
            return Ok(Synced::Settled);
        }
        let charges = self.store.charges_of_order(scope, &share.order_id).await?;
        let Some(charge) = charges.iter().find(|c| c.status == ChargeStatus::Succeeded) else {
            return Ok(Synced::NotPolled);
        };
        let Some(adapter) = self.alipay_of(scope, charge).await? else {
            return Ok(Synced::NotPolled);
        };
        let outcome = match adapter.settle_status(charge, &share).await? {
            SettleSeen::Settled { channel_order_no } => ShareOutcome::Succeeded { channel_order_no },
            SettleSeen::Failed { message } => ShareOutcome::Failed { message },
            SettleSeen::Pending => return Ok(Synced::Pending),
            SettleSeen::Missing if attempts >= RESENDS => {
                tracing::warn!(share = %share.id, attempts, "Alipay still has no such settlement; not sent again");
                return Ok(Synced::Pending);
            }
            SettleSeen::Missing => match adapter.settle_again(charge, &share).await? {
                ShareResult::Succeeded { channel_order_no } => ShareOutcome::Succeeded { channel_order_no },
                ShareResult::Failed { message } => ShareOutcome::Failed { message },
                ShareResult::Processing { .. } => return Ok(Synced::Pending),
            },
        };
        self.store.finish_share(scope, &share.id, &outcome, self.now()).await?;
        Ok(Synced::Final)
    }

    /// The Alipay adapter serving `charge` for the scope, or `None` (the sandbox, or not an Alipay channel).
    async fn alipay_of(&self, scope: &Scope, charge: &Charge) -> Result<Option<Arc<AlipayPay>>, Problem> {
        if paid_by_code_at_alipay(charge) {
            return self.alipay_adapter(scope).await;
        }
        if !is_alipay_channel(&charge.channel) {
            return Ok(None);
        }
        Ok(match self.route_channel(scope, &charge.channel).await? {
            Routed::Alipay(adapter) => Some(adapter),
            Routed::Wechat(_) | Routed::Other(_) => None,
        })
    }

    /// The WeChat adapter serving `charge` for the scope, or `None` (the sandbox, or not a WeChat channel).
    async fn wechat_of(&self, scope: &Scope, charge: &Charge) -> Result<Option<Arc<WechatPay>>, Problem> {
        if paid_by_code_at_wechat(charge) {
            return self.wechat_adapter(scope).await;
        }
        if !is_wechat_pay_channel(&charge.channel) {
            return Ok(None);
        }
        Ok(match self.route_channel(scope, &charge.channel).await? {
            Routed::Wechat(adapter) => Some(adapter),
            Routed::Alipay(_) | Routed::Other(_) => None,
        })
    }
}

/// A cashier's scanned WeChat code paid through WeChat Pay (MICROPAY): `wx_pub_scan` without the sandbox's
/// `sandbox_outcome` (the sandbox's scanned-code charges carry it; a WeChat one never does).
pub(crate) fn paid_by_code_at_wechat(charge: &Charge) -> bool {
    charge.channel == crate::wechat_micropay::CODE_CHANNEL && charge.extra.get("sandbox_outcome").is_none()
}

/// Which channel a charge's poll asks: WeChat Pay or Alipay, by its channel name (or scanned code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Polled {
    Wechat,
    Alipay,
}

/// The provider whose channel took `charge`'s payment (WeChat Pay or Alipay), by its channel name or scanned code.
pub(crate) fn charge_provider(charge: &Charge) -> Option<paygate_domain::accounts::Provider> {
    use paygate_domain::accounts::Provider;
    polled_channel(charge).map(|p| match p {
        Polled::Wechat => Provider::Wechat,
        Polled::Alipay => Provider::Alipay,
    })
}

fn polled_channel(charge: &Charge) -> Option<Polled> {
    if is_wechat_pay_channel(&charge.channel) || paid_by_code_at_wechat(charge) {
        Some(Polled::Wechat)
    } else if is_alipay_channel(&charge.channel) || paid_by_code_at_alipay(charge) {
        Some(Polled::Alipay)
    } else {
        None
    }
}

/// What the notification path refused (another amount, an order paid twice, the database) as a channel error.
pub(crate) fn refused(channel: &str, refusal: NotifyRefusal) -> Problem {
    let code = if refusal.status >= 500 { "channel_sync_unrecorded" } else { "channel_sync_refused" };
    Problem::new(ProblemKind::Channel, code, format!("{channel}'s answer was not recorded: {}", refusal.message))
}

/// Whether a channel is still asked about `charge`: a pending one always, a closed one only for the last look
/// after a close (`closed_too`); anything else is settled here already.
fn worth_asking(charge: &Charge, closed_too: bool) -> bool {
    match charge.status {
        ChargeStatus::Pending => true,
        ChargeStatus::Closed => closed_too,
        _ => false,
    }
}
