//! The WeChat Pay side of API v2 (XML) and v3 (JSON): verifies every request's signature, keeps orders and
//! refunds under WeChat's rules, signs its answers, and notifies the merchant (v2 signed XML, `req_info`
//! encrypted for refunds; v3 signed JSON with an AEAD resource), retrying on WeChat's schedule. `/sim/…` is the
//! test's side: pay, fail, settle refunds, inject faults (see `control.rs`).

mod bill_control;
mod bills;
mod certificate;
pub mod config;
mod control;
mod notify;
mod page;
pub mod sharing;
pub mod state;
mod v2_api;
mod v2_sharing;
mod v3_api;
mod v3_sharing;

use crate::http::{self, Outcome, Reply, Request};
use config::{Merchant, Platform, Settings, SimConfig};
use hyper::StatusCode;
use notify::{Delivery, NotifyRecord};
use paygate_channels::wechat::v3::{random_token, ResponseSignature};
use state::{Api, Books, Event};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

/// What a fault does to the next requests of a path (or, for the notify kinds, to the next notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Carry the request out, then hold the connection and close it without an answer.
    Timeout,
    /// Hold the connection and close it without doing anything.
    Drop,
    /// Answer SYSTEMERROR (v2) / 500 SYSTEM_ERROR (v3) without doing anything.
    SystemError,
    /// Send the next notification twice.
    DuplicateNotify,
    /// Hold the next notification until the one after it has been sent.
    ReorderNotify,
    /// Never send the next notification (listed in /sim/wechat/notifications as dropped): the merchant is not
    /// told, as when WeChat's notification is lost for good.
    DropNotify,
}

impl FaultKind {
    pub fn parse(s: &str) -> Option<FaultKind> {
        match s {
            "timeout" => Some(FaultKind::Timeout),
            "drop" => Some(FaultKind::Drop),
            "systemerror" => Some(FaultKind::SystemError),
            "duplicate_notify" => Some(FaultKind::DuplicateNotify),
            "reorder_notify" => Some(FaultKind::ReorderNotify),
            "drop_notify" => Some(FaultKind::DropNotify),
            _ => None,
        }
    }

    fn is_notify(self) -> bool {
        matches!(self, FaultKind::DuplicateNotify | FaultKind::ReorderNotify | FaultKind::DropNotify)
    }
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub path: String,
    pub kind: FaultKind,
    pub remaining: u32,
    /// Notify faults only: just the notifications of this order (any order when `None`).
    pub out_trade_no: Option<String>,
}

/// Everything that changes, behind one lock (never held across an await).
pub struct Shared {
    pub books: Books,
    pub sharing: sharing::Sharing,
    pub settings: Settings,
    pub faults: Vec<Fault>,
    pub notifications: Vec<NotifyRecord>,
    /// A notification a reorder fault holds back.
    held: Option<Delivery>,
    /// v3 bill files by download token.
    pub bills: std::collections::HashMap<String, Vec<u8>>,
    /// How bills misreport trades (`/sim/wechat/bills/doctor`), by (mch_id, out_trade_no).
    pub doctors: crate::recon::Doctors,
}

pub struct WechatSim {
    platform: Platform,
    shared: Mutex<Shared>,
    /// Seconds added to the system clock (`POST /sim/wechat/clock`), so tests can pass WeChat's time rules.
    clock_offset: AtomicI64,
    /// HTTPS (with client certificates for /secapi/ when a client CA is configured).
    tls: Option<http::TlsAcceptor>,
    /// Whether /secapi/ requires a verified client certificate.
    secapi_needs_cert: bool,
    /// v3 signatures name the platform certificate's serial (else the public key id).
    certificate_mode: bool,
}

impl WechatSim {
    pub fn new(config: SimConfig) -> Result<Arc<WechatSim>, String> {
        let platform = Platform::new(&config.platform_private_key_pem, &config.public_key_id)?;
        let mut books = Books::default();
        for m in config.merchants {
            let merchant = Merchant::new(m)?;
            books.merchants.insert(merchant.config.mch_id.clone(), merchant);
        }
        let tls = match &config.tls {
            Some(t) => Some(http::tls_acceptor(&t.cert_pem, &t.key_pem, t.client_ca_pem.as_deref())?),
            None => None,
        };
        let secapi_needs_cert = config.tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        let certificate_mode = config.platform_certificates;
        if config.settings.notify_time_scale == 0 {
            return Err("notify_time_scale must be at least 1".into());
        }
        Ok(Arc::new(WechatSim {
            platform,
            shared: Mutex::new(Shared {
                books,
                sharing: sharing::Sharing::default(),
                settings: config.settings,
                faults: Vec::new(),
                notifications: Vec::new(),
                held: None,
                bills: std::collections::HashMap::new(),
                doctors: crate::recon::Doctors::default(),
            }),
            clock_offset: AtomicI64::new(0),
            tls,
            secapi_needs_cert,
            certificate_mode,
        }))
    }

    /// Binds `addr` and serves on a background task; answers the bound address.
    pub async fn start(self: &Arc<Self>, addr: &str) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("--listen {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("--listen {addr}: {e}"))?;
        let sim = self.clone();
        let tls = self.tls.clone();
        let task = tokio::spawn(http::serve(listener, tls, move |req| {
            let sim = sim.clone();
            async move { sim.handle(req).await }
        }));
        Ok((local, task))
    }

    pub fn public_key_id(&self) -> &str {
        &self.platform.public_key_id
    }

    pub fn public_key_pem(&self) -> &str {
        &self.platform.public_key_pem
    }

    /// The platform certificate (PEM) and its serial.
    pub fn platform_certificate(&self) -> (&str, &str) {
        (&self.platform.certificate.pem, &self.platform.certificate.serial)
    }

    /// The business clock: order ages, payment and refund times. `POST /sim/wechat/clock` moves it.
    pub fn now(&self) -> i64 {
        wall_clock() + self.clock_offset.load(Ordering::Relaxed)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        // A handler that panicked mid-change leaves books a test will look at anyway; keep serving.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request: `/sim/…` for the test, `/v3/…` JSON, everything else v2 XML. Faults apply first.
    pub async fn handle(self: Arc<Self>, req: Request) -> Outcome {
        if req.path.starts_with("/sim/") {
            return Outcome::Reply(control::handle(&self, &req));
        }
        if req.path.starts_with("/secapi/") && self.secapi_needs_cert && !req.client_cert {
            // WeChat refuses /secapi/ without the merchant's API certificate before reading the request.
            return Outcome::Reply(v2_api::fail("证书错误：/secapi/ 需要商户API证书（双向TLS）"));
        }
        let (fault, hold) = {
            let mut shared = self.lock();
            let hold = Duration::from_millis(shared.settings.timeout_ms);
            let fault = shared.faults.iter_mut().find(|f| !f.kind.is_notify() && f.path == req.path && f.remaining > 0);
            let kind = fault.map(|f| {
                f.remaining -= 1;
                f.kind
            });
            shared.faults.retain(|f| f.remaining > 0);
            (kind, hold)
        };
        match fault {
            Some(FaultKind::Drop) => return Outcome::Drop(hold),
            Some(FaultKind::SystemError) => {
                return Outcome::Reply(if req.path.starts_with("/v3/") {
                    self.v3_error(500, "SYSTEM_ERROR", "系统错误")
                } else {
                    v2_api::system_error(&self, &req)
                })
            }
            _ => {}
        }
        let (reply, events) =
            if req.path.starts_with("/v3/") { v3_api::handle(&self, &req) } else { v2_api::handle(&self, &req) };
        for event in events {
            self.dispatch(event);
        }
        match fault {
            Some(FaultKind::Timeout) => Outcome::Drop(hold),
            _ => Outcome::Reply(reply),
        }
    }

    /// Builds the notification of an event in its order's protocol and hands it to the notifier.
    pub(crate) fn dispatch(self: &Arc<Self>, event: Event) {
        let delivery = {
            let shared = self.lock();
            let (mch_id, out_trade_no) = match &event {
                Event::Paid { mch_id, out_trade_no } | Event::Refunded { mch_id, out_trade_no, .. } => {
                    (mch_id, out_trade_no)
                }
            };
            let (Some(order), Some(merchant)) =
                (shared.books.order(mch_id, out_trade_no), shared.books.merchants.get(mch_id))
            else {
                return;
            };
            let refund = match &event {
                Event::Refunded { out_refund_no, .. } => {
                    order.refunds.iter().find(|r| &r.out_refund_no == out_refund_no)
                }
                Event::Paid { .. } => None,
            };
            let api = refund.map(|r| r.api).unwrap_or(order.api);
            let built = match (api, refund) {
                (Api::V2, None) => v2_api::payment_notice(order, merchant),
                (Api::V2, Some(r)) => v2_api::refund_notice(order, r, merchant),
                (Api::V3, None) => v3_api::payment_notice(self, order, merchant),
                (Api::V3, Some(r)) => v3_api::refund_notice(self, order, r, merchant),
            };
            match built {
                Some(d) => d,
                None => return,
            }
        };
        notify::submit(self, delivery);
    }

    /// The `Wechatpay-*` headers for `body`, signed now with the platform key.
    pub(crate) fn sign_v3(&self, body: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048".to_string())];
        let serial =
            if self.certificate_mode { &self.platform.certificate.serial } else { &self.platform.public_key_id };
        match ResponseSignature::sign(&self.platform.signing, serial, body, wall_clock(), &random_token(32)) {
            Ok(sig) => headers.extend(sig.headers()),
            Err(e) => tracing::error!(error = %e, "signing a v3 answer failed"),
        }
        headers
    }

    /// A signed v3 answer.
    pub(crate) fn v3_reply(&self, status: u16, body: &str) -> Reply {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut reply = http::reply(status, "application/json", body.to_string());
        if body.is_empty() {
            reply.headers_mut().remove(hyper::header::CONTENT_TYPE);
        }
        for (name, value) in self.sign_v3(body) {
            if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
                reply.headers_mut().insert(name, v);
            }
        }
        reply
    }

    pub(crate) fn v3_error(&self, status: u16, code: &str, message: &str) -> Reply {
        self.v3_reply(status, &serde_json::json!({"code": code, "message": message}).to_string())
    }
}

/// The real clock: v3 signature timestamps, whose 300 s window the other side checks against its own clock.
pub fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// RFC 3339 in Beijing time, as v3 writes `success_time` and `create_time`.
pub fn rfc3339(unix: i64) -> String {
    let t = paygate_domain::BeijingTime::of(unix);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+08:00", t.year, t.month, t.day, t.hour, t.minute, t.second)
}
