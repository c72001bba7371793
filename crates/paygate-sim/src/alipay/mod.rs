//! The Alipay side of the OpenAPI gateway (`gateway.do`, RSA2): verifies every request with the app's public
//! key, keeps trades, refunds and royalty settlements under Alipay's rules, signs every answer's
//! `<method>_response` node with its own Alipay key, and sends form-POST async notifications (signed the same
//! way) to the trade's notify_url on Alipay's retry schedule until the answer is exactly `success`. `/sim/alipay/…`
//! is the test's side: pay, fail, scan, pay late, payment codes, faults (see `control.rs`).

mod api;
mod bill_control;
mod bills;
pub mod config;
mod control;
mod files;
mod notify;
mod royalty;
pub mod state;

use crate::http::{self, Outcome, Reply, Request};
use config::{AlipayKey, App, Settings, SimConfig};
use hyper::{Method, StatusCode};
use notify::NotifyRecord;
use paygate_channels::alipay::{self as protocol, Params};
use serde_json::{json, Map, Value};
use state::Books;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;

/// What a fault does to the next calls of a method (or, for `DuplicateNotify`, to the next notifications).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// Carry the call out, then hold the connection and close it without an answer.
    Timeout,
    /// Hold the connection and close it without doing anything.
    Drop,
    /// Answer 20000 (service unavailable: outcome unknown) without doing anything.
    Unknown,
    /// Answer 40004 with this sub_code without doing anything.
    BusinessFailed(String),
    /// Send the next notification twice.
    DuplicateNotify,
    /// Never send the next notification (listed in /sim/alipay/notifications as dropped): the merchant is not
    /// told, as when every one of Alipay's attempts is lost.
    DropNotify,
}

impl FaultKind {
    /// `timeout`, `drop`, `20000`, `40004` (with `sub_code`), `duplicate_notify`, `drop_notify`.
    pub fn parse(kind: &str, sub_code: Option<&str>) -> Option<FaultKind> {
        match kind {
            "timeout" => Some(FaultKind::Timeout),
            "drop" => Some(FaultKind::Drop),
            "20000" | "unknown" => Some(FaultKind::Unknown),
            "40004" => Some(FaultKind::BusinessFailed(sub_code.unwrap_or("ACQ.SYSTEM_ERROR").to_string())),
            "duplicate_notify" => Some(FaultKind::DuplicateNotify),
            "drop_notify" => Some(FaultKind::DropNotify),
            _ => None,
        }
    }

    pub fn is_notify(&self) -> bool {
        matches!(self, FaultKind::DuplicateNotify | FaultKind::DropNotify)
    }
}

#[derive(Debug, Clone)]
pub struct Fault {
    /// The gateway method it applies to (empty: any method; ignored for notify faults).
    pub method: String,
    pub kind: FaultKind,
    pub remaining: u32,
    /// Notify faults only: just the notifications of this out_trade_no (any trade when `None`).
    pub out_trade_no: Option<String>,
}

/// Everything that changes, behind one lock (never held across an await).
pub struct Shared {
    pub books: Books,
    pub settings: Settings,
    pub faults: Vec<Fault>,
    pub notifications: Vec<NotifyRecord>,
    /// Bill ZIP files by download token.
    pub bills: std::collections::HashMap<String, Vec<u8>>,
    /// How bills misreport trades (`/sim/alipay/bills/doctor`), by (app_id, out_trade_no).
    pub doctors: crate::recon::Doctors,
}

/// Something the trade's notify_url must hear about.
#[derive(Debug, Clone)]
pub struct Event {
    pub app_id: String,
    pub trade_no: String,
    /// Set for a refund: its out_request_no (`out_biz_no` of the notification).
    pub out_request_no: Option<String>,
}

pub struct AlipaySim {
    key: AlipayKey,
    shared: Mutex<Shared>,
    /// Seconds added to the system clock (`POST /sim/alipay/clock`).
    clock_offset: AtomicI64,
}

impl AlipaySim {
    pub fn new(config: SimConfig) -> Result<Arc<AlipaySim>, String> {
        let key = AlipayKey::new(&config.alipay_private_key_pem)?;
        let mut books = Books::default();
        for a in config.apps {
            let app = App::new(a)?;
            books.apps.insert(app.config.app_id.clone(), app);
        }
        if config.settings.notify_time_scale == 0 {
            return Err("notify_time_scale must be at least 1".into());
        }
        Ok(Arc::new(AlipaySim {
            key,
            shared: Mutex::new(Shared {
                books,
                settings: config.settings,
                faults: Vec::new(),
                notifications: Vec::new(),
                bills: std::collections::HashMap::new(),
                doctors: crate::recon::Doctors::default(),
            }),
            clock_offset: AtomicI64::new(0),
        }))
    }

    /// Binds `addr` and serves on a background task; answers the bound address.
    pub async fn start(self: &Arc<Self>, addr: &str) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), String> {
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("--listen {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("--listen {addr}: {e}"))?;
        let sim = self.clone();
        let task = tokio::spawn(http::serve(listener, None, move |req| {
            let sim = sim.clone();
            async move { sim.handle(req).await }
        }));
        Ok((local, task))
    }

    /// The Alipay public key (PEM, SubjectPublicKeyInfo) apps verify answers and notifications with.
    pub fn alipay_public_key_pem(&self) -> &str {
        &self.key.public_key_pem
    }

    /// The business clock: payment, refund and close times. `POST /sim/alipay/clock` moves it.
    pub fn now(&self) -> i64 {
        crate::wechat::wall_clock() + self.clock_offset.load(Ordering::Relaxed)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        // A handler that panicked mid-change leaves books a test will look at anyway; keep serving.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One request: `/sim/…` for the test, `/gateway.do` for apps. Faults apply first.
    pub async fn handle(self: Arc<Self>, req: Request) -> Outcome {
        if req.path.starts_with("/sim/") {
            return Outcome::Reply(control::handle(&self, &req));
        }
        if req.path != "/gateway.do" {
            return Outcome::Reply(http::reply(StatusCode::NOT_FOUND, "text/plain", "not found"));
        }
        if req.method != Method::GET && req.method != Method::POST {
            return Outcome::Reply(http::reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET or POST"));
        }
        let params = match gateway_params(&req) {
            Ok(p) => p,
            Err(e) => return Outcome::Reply(self.respond("", gateway_error("isv.invalid-parameter", &e))),
        };
        let method = params.get("method").cloned().unwrap_or_default();
        let (fault, hold) = {
            let mut shared = self.lock();
            let hold = Duration::from_millis(shared.settings.timeout_ms);
            let fault = shared
                .faults
                .iter_mut()
                .find(|f| !f.kind.is_notify() && (f.method.is_empty() || f.method == method) && f.remaining > 0);
            let kind = fault.map(|f| {
                f.remaining -= 1;
                f.kind.clone()
            });
            shared.faults.retain(|f| f.remaining > 0);
            (kind, hold)
        };
        match &fault {
            Some(FaultKind::Drop) => return Outcome::Drop(hold),
            Some(FaultKind::Unknown) => {
                let node = fail_node("20000", "Service Currently Unavailable", "aop.unknow-error", "系统繁忙");
                return Outcome::Reply(self.respond(&method, node));
            }
            Some(FaultKind::BusinessFailed(sub)) => {
                let node = fail_node("40004", "Business Failed", sub, "模拟的业务失败");
                return Outcome::Reply(self.respond(&method, node));
            }
            _ => {}
        }
        let (reply, events) = api::handle(&self, &req, &params);
        for event in events {
            self.dispatch(event);
        }
        match fault {
            Some(FaultKind::Timeout) => Outcome::Drop(hold),
            _ => Outcome::Reply(reply),
        }
    }

    /// `{"<method>_response": node, "sign": "…"}` (or `error_response` when no method is known), the node's
    /// exact text signed with the Alipay key.
    pub(crate) fn respond(&self, method: &str, node: Map<String, Value>) -> Reply {
        let name = if method.is_empty() || !api::known(method) {
            protocol::ERROR_RESPONSE.to_string()
        } else {
            protocol::response_node_name(method)
        };
        let text = Value::Object(node).to_string();
        // Certificate mode: the answer names the Alipay certificate that signed it (outside the signed node).
        let cert_sn = self.lock().settings.alipay_cert_sn.clone();
        let cert_sn =
            if cert_sn.is_empty() { String::new() } else { format!(",\"alipay_cert_sn\":{}", json!(cert_sn)) };
        let body = match self.key.signing.sign(text.as_bytes()) {
            Ok(sign) => format!("{{\"{name}\":{text}{cert_sn},\"sign\":\"{sign}\"}}"),
            Err(e) => {
                tracing::error!(error = %e, "signing an answer failed");
                format!("{{\"{name}\":{text}}}")
            }
        };
        http::reply(StatusCode::OK, "application/json;charset=utf-8", body)
    }

    /// Builds the notification of an event and hands it to the notifier (nothing when the trade has no
    /// notify_url).
    pub(crate) fn dispatch(self: &Arc<Self>, event: Event) {
        let delivery = {
            let shared = self.lock();
            match notify::build(self, &shared.books, &event) {
                Some(d) => d,
                None => return,
            }
        };
        notify::submit(self, delivery);
    }

    pub(crate) fn sign_notify(&self, params: &mut Params) {
        if let Err(e) = protocol::sign_notify(params, &self.key.signing) {
            tracing::error!(error = %e, "signing a notification failed");
        }
    }
}

/// The request's parameters: the query (GET, or the common parameters SDKs put there) and the urlencoded body;
/// a name in both is refused.
fn gateway_params(req: &Request) -> Result<Params, String> {
    let mut params = protocol::parse_form(req.query.as_bytes()).map_err(|e| format!("query: {e}"))?;
    let form = req
        .header("content-type")
        .is_none_or(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if req.method == Method::POST && !req.body.is_empty() && form {
        for (k, v) in protocol::parse_form(&req.body).map_err(|e| format!("body: {e}"))? {
            if params.insert(k.clone(), v).is_some() {
                return Err(format!("{k} is both in the query and the body"));
            }
        }
    }
    Ok(params)
}

/// `http://HOST` as the caller reached this simulator (QR codes, pages and bill URLs point back here); a Host
/// with anything but host/port characters is not echoed into URLs and pages.
pub(crate) fn base_url(req: &Request) -> String {
    let host = req.header("host").filter(|h| {
        !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'[' | b']'))
    });
    format!("http://{}", host.unwrap_or("127.0.0.1"))
}

/// A failure node: `code`, `msg`, `sub_code`, `sub_msg`.
pub(crate) fn fail_node(code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Map<String, Value> {
    let v = json!({"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg});
    v.as_object().cloned().unwrap_or_default()
}

/// 40002 Invalid Arguments.
pub(crate) fn gateway_error(sub_code: &str, sub_msg: &str) -> Map<String, Value> {
    fail_node("40002", "Invalid Arguments", sub_code, sub_msg)
}
