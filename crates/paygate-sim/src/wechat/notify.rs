//! Sending notifications: one task per notification, retried on WeChat's schedule (scaled by
//! `notify_time_scale`) until the merchant answers exactly what WeChat wants; duplicate and reorder faults.

use super::config::NOTIFY_SCHEDULE_SECONDS;
use super::{FaultKind, WechatSim};
use paygate_channels::wechat::v2;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// The body is signed already (payment) or carries no signature (refund).
    V2,
    /// Signed afresh with the platform key at every attempt, so a retry's timestamp is current.
    V3,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub kind: &'static str,
    pub url: String,
    pub body: String,
    pub signing: Signing,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
}

impl Delivery {
    pub fn new(
        kind: &'static str,
        url: &str,
        body: String,
        signing: Signing,
        out_trade_no: &str,
        out_refund_no: Option<&str>,
    ) -> Delivery {
        Delivery {
            kind,
            url: url.to_string(),
            body,
            signing,
            out_trade_no: out_trade_no.to_string(),
            out_refund_no: out_refund_no.map(str::to_string),
        }
    }
}

/// What `/sim/wechat/notifications` shows of one notification.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyRecord {
    pub id: usize,
    pub kind: &'static str,
    pub api: &'static str,
    pub url: String,
    pub out_trade_no: String,
    pub out_refund_no: Option<String>,
    pub attempts: u32,
    pub delivered: bool,
    /// The HTTP status of the last attempt (0: no answer).
    pub last_status: u16,
    pub last_error: Option<String>,
    /// The body of the first attempt (v3: before per-attempt signing, the body never changes).
    pub body: String,
}

/// Queues a notification, applying any notify fault.
pub(super) fn submit(sim: &Arc<WechatSim>, delivery: Delivery) {
    let (fault, held, hold_ms) = {
        let mut shared = sim.lock();
        let fault = shared.faults.iter_mut().find(|f| {
            f.kind.is_notify()
                && f.remaining > 0
                && f.out_trade_no.as_ref().is_none_or(|no| *no == delivery.out_trade_no)
        });
        let fault = fault.map(|f| {
            f.remaining -= 1;
            f.kind
        });
        shared.faults.retain(|f| f.remaining > 0);
        let held = shared.held.take();
        (fault, held, shared.settings.reorder_hold_ms)
    };
    match fault {
        Some(FaultKind::DropNotify) => dropped(sim, &delivery),
        Some(FaultKind::ReorderNotify) => {
            // Hold this one back; it goes after the next notification or after the hold time.
            sim.lock().held = Some(delivery);
            let sim = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                let late = sim.lock().held.take();
                if let Some(late) = late {
                    start(&sim, late);
                }
            });
        }
        Some(FaultKind::DuplicateNotify) => {
            start(sim, delivery.clone());
            start(sim, delivery);
        }
        _ => start(sim, delivery),
    }
    if let Some(held) = held {
        let sim = sim.clone();
        tokio::spawn(async move {
            // After the newer one has had its first attempt.
            tokio::time::sleep(Duration::from_millis(100)).await;
            start(&sim, held);
        });
    }
}

/// Lists a notification a drop fault swallowed: never attempted, never delivered.
fn dropped(sim: &WechatSim, delivery: &Delivery) {
    let mut shared = sim.lock();
    let id = shared.notifications.len();
    shared.notifications.push(NotifyRecord {
        id,
        kind: delivery.kind,
        api: if delivery.signing == Signing::V3 { "v3" } else { "v2" },
        url: delivery.url.clone(),
        out_trade_no: delivery.out_trade_no.clone(),
        out_refund_no: delivery.out_refund_no.clone(),
        attempts: 0,
        delivered: false,
        last_status: 0,
        last_error: Some("dropped by a drop_notify fault: never sent".into()),
        body: delivery.body.clone(),
    });
}

fn start(sim: &Arc<WechatSim>, delivery: Delivery) {
    let id = {
        let mut shared = sim.lock();
        let id = shared.notifications.len();
        shared.notifications.push(NotifyRecord {
            id,
            kind: delivery.kind,
            api: if delivery.signing == Signing::V3 { "v3" } else { "v2" },
            url: delivery.url.clone(),
            out_trade_no: delivery.out_trade_no.clone(),
            out_refund_no: delivery.out_refund_no.clone(),
            attempts: 0,
            delivered: false,
            last_status: 0,
            last_error: None,
            body: delivery.body.clone(),
        });
        id
    };
    let sim = sim.clone();
    tokio::spawn(async move { run(sim, id, delivery).await });
}

async fn run(sim: Arc<WechatSim>, id: usize, delivery: Delivery) {
    let mut delays = NOTIFY_SCHEDULE_SECONDS.iter();
    loop {
        let (scale, timeout_ms) = {
            let s = &sim.lock().settings;
            (s.notify_time_scale.max(1), s.notify_timeout_ms)
        };
        let headers = match delivery.signing {
            Signing::V3 => sim.sign_v3(&delivery.body).into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            Signing::V2 => Vec::new(),
        };
        let content_type = if delivery.signing == Signing::V3 { "application/json" } else { "text/xml" };
        let (url, body) = (delivery.url.clone(), delivery.body.clone());
        let sent =
            tokio::task::spawn_blocking(move || crate::http::post(&url, content_type, &headers, &body, timeout_ms))
                .await;
        let (status, answer, error) = match sent {
            Ok(Ok((status, answer))) => (status, answer, None),
            Ok(Err(e)) => (0, String::new(), Some(e)),
            Err(e) => (0, String::new(), Some(e.to_string())),
        };
        let delivered = match delivery.signing {
            Signing::V3 => status == 200 || status == 204,
            Signing::V2 => status == 200 && v2_success(&answer),
        };
        {
            let mut shared = sim.lock();
            if let Some(rec) = shared.notifications.get_mut(id) {
                rec.attempts += 1;
                rec.delivered = delivered;
                rec.last_status = status;
                rec.last_error = error.clone().or_else(|| (!delivered).then(|| format!("answer: {answer:.200}")));
            }
        }
        if delivered {
            return;
        }
        tracing::info!(url = %delivery.url, status, "notification not accepted; will retry");
        let Some(delay) = delays.next() else {
            tracing::warn!(url = %delivery.url, "notification given up after WeChat's last retry");
            return;
        };
        tokio::time::sleep(Duration::from_millis(delay * 1000 / scale)).await;
    }
}

/// WeChat's rule for a v2 reply: `return_code` SUCCESS (and `return_msg` OK when present).
fn v2_success(answer: &str) -> bool {
    match v2::parse_xml(answer.trim()) {
        Ok(f) => f.get("return_code") == Some("SUCCESS") && f.get("return_msg").is_none_or(|m| m == "OK"),
        Err(_) => false,
    }
}
