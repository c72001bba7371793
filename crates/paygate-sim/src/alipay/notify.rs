//! Async notifications: a form POST (`trade_status_sync`) signed with the Alipay key, one task per
//! notification, retried on Alipay's schedule (scaled by `notify_time_scale`) until the merchant answers
//! exactly `success`; the duplicate fault sends one twice.

use super::config::NOTIFY_SCHEDULE_SECONDS;
use super::state::Books;
use super::{AlipaySim, Event, FaultKind};
use paygate_channels::alipay::{self as protocol, format_timestamp, format_yuan, Params};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    /// Signed, in the clear; URL-encoded at each send.
    pub params: Params,
    pub out_trade_no: String,
    pub out_biz_no: Option<String>,
}

/// What `/sim/alipay/notifications` shows of one notification.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyRecord {
    pub id: usize,
    pub url: String,
    pub out_trade_no: String,
    pub out_biz_no: Option<String>,
    pub trade_status: String,
    pub attempts: u32,
    pub delivered: bool,
    /// The HTTP status of the last attempt (0: no answer).
    pub last_status: u16,
    pub last_error: Option<String>,
    /// The form body as sent.
    pub body: String,
}

/// The signed notification of `event`, from the trade as it is now; `None` without a notify_url.
pub(super) fn build(sim: &AlipaySim, books: &Books, event: &Event) -> Option<Delivery> {
    let t = books.trades.iter().find(|t| t.app_id == event.app_id && t.trade_no == event.trade_no)?;
    if t.notify_url.is_empty() {
        return None;
    }
    let app = books.apps.get(&t.app_id)?;
    let now = sim.now();
    let mut p = Params::new();
    let mut set = |k: &str, v: String| {
        // Alipay sends no empty fields (and some SDKs sign empty ones, so sending them would break them).
        if !v.is_empty() {
            p.insert(k.to_string(), v);
        }
    };
    set("notify_time", format_timestamp(now));
    set("notify_type", "trade_status_sync".into());
    set("notify_id", paygate_channels::wechat::v3::random_token(34));
    set("app_id", t.app_id.clone());
    set("auth_app_id", t.app_id.clone());
    set("charset", protocol::CHARSET.into());
    set("version", "1.0".into());
    set("trade_no", t.trade_no.clone());
    set("out_trade_no", t.out_trade_no.clone());
    set("buyer_id", t.buyer_id.clone());
    set("buyer_logon_id", t.buyer_logon_id.clone());
    set("seller_id", app.config.seller_id.clone());
    set("trade_status", t.status.as_str().into());
    set("total_amount", format_yuan(t.total));
    set("subject", t.subject.clone());
    set("body", t.body.clone());
    set("gmt_create", format_timestamp(t.created_at));
    if let Some(paid) = t.paid_at {
        set("receipt_amount", format_yuan(t.total));
        set("buyer_pay_amount", format_yuan(t.total));
        set("invoice_amount", format_yuan(t.total));
        set("point_amount", "0.00".into());
        set("gmt_payment", format_timestamp(paid));
        set(
            "fund_bill_list",
            format!("[{{\"amount\":\"{}\",\"fundChannel\":\"ALIPAYACCOUNT\"}}]", format_yuan(t.total)),
        );
    }
    if let Some(closed) = t.closed_at {
        set("gmt_close", format_timestamp(closed));
    }
    if let Some(no) = &event.out_request_no {
        let r = t.refunds.iter().find(|r| &r.out_request_no == no)?;
        set("out_biz_no", no.clone());
        set("refund_fee", format_yuan(t.refunded()));
        set("gmt_refund", format_timestamp(r.at));
    }
    sim.sign_notify(&mut p);
    Some(Delivery {
        url: t.notify_url.clone(),
        params: p,
        out_trade_no: t.out_trade_no.clone(),
        out_biz_no: event.out_request_no.clone(),
    })
}

/// Queues a notification, applying a duplicate or drop fault.
pub(super) fn submit(sim: &Arc<AlipaySim>, delivery: Delivery) {
    let fault = {
        let mut shared = sim.lock();
        let fault = shared.faults.iter_mut().find(|f| {
            f.kind.is_notify()
                && f.remaining > 0
                && f.out_trade_no.as_ref().is_none_or(|no| *no == delivery.out_trade_no)
        });
        let kind = fault.map(|f| {
            f.remaining -= 1;
            f.kind.clone()
        });
        shared.faults.retain(|f| f.remaining > 0);
        kind
    };
    match fault {
        Some(FaultKind::DropNotify) => {
            let id = record(sim, &delivery);
            if let Some(rec) = sim.lock().notifications.get_mut(id) {
                rec.last_error = Some("dropped by a drop_notify fault: never sent".into());
            }
        }
        Some(FaultKind::DuplicateNotify) => {
            start(sim, delivery.clone());
            start(sim, delivery);
        }
        _ => start(sim, delivery),
    }
}

/// Lists a notification in `/sim/alipay/notifications`; answers its id.
fn record(sim: &AlipaySim, delivery: &Delivery) -> usize {
    let mut shared = sim.lock();
    let id = shared.notifications.len();
    shared.notifications.push(NotifyRecord {
        id,
        url: delivery.url.clone(),
        out_trade_no: delivery.out_trade_no.clone(),
        out_biz_no: delivery.out_biz_no.clone(),
        trade_status: delivery.params.get("trade_status").cloned().unwrap_or_default(),
        attempts: 0,
        delivered: false,
        last_status: 0,
        last_error: None,
        body: protocol::encode_form(&delivery.params),
    });
    id
}

fn start(sim: &Arc<AlipaySim>, delivery: Delivery) {
    let body = protocol::encode_form(&delivery.params);
    let id = record(sim, &delivery);
    let sim = sim.clone();
    tokio::spawn(async move { run(sim, id, delivery.url, body).await });
}

async fn run(sim: Arc<AlipaySim>, id: usize, url: String, body: String) {
    let mut delays = NOTIFY_SCHEDULE_SECONDS.iter();
    loop {
        let (scale, timeout_ms) = {
            let s = &sim.lock().settings;
            (s.notify_time_scale.max(1), s.notify_timeout_ms)
        };
        let (u, b) = (url.clone(), body.clone());
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let sent = tokio::task::spawn_blocking(move || crate::http::post(&u, content_type, &[], &b, timeout_ms)).await;
        let (status, answer, error) = match sent {
            Ok(Ok((status, answer))) => (status, answer, None),
            Ok(Err(e)) => (0, String::new(), Some(e)),
            Err(e) => (0, String::new(), Some(e.to_string())),
        };
        // Alipay wants exactly `success`; anything else, even with a 200, is a failure.
        let delivered = status == 200 && answer == protocol::NOTIFY_ACK;
        {
            let mut shared = sim.lock();
            if let Some(rec) = shared.notifications.get_mut(id) {
                rec.attempts += 1;
                rec.delivered = delivered;
                rec.last_status = status;
                rec.last_error = error.or_else(|| (!delivered).then(|| format!("answer: {answer:.200}")));
            }
        }
        if delivered {
            return;
        }
        let Some(delay) = delays.next() else {
            tracing::warn!(%url, "notification given up after Alipay's last retry");
            return;
        };
        tracing::info!(%url, status, "notification not accepted; will retry");
        tokio::time::sleep(Duration::from_millis(delay * 1000 / scale)).await;
    }
}
