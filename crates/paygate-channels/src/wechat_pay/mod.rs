//! The WeChat Pay channel for one merchant account: API v2 (XML, `v2.rs`) or v3 (JSON, `v3.rs`), as the account's
//! `api_version` says. Every answer's signature is checked before anything in it is believed; a timeout, a refused
//! connection or a 5xx is a channel error that leaves the payment (or refund) where it was, never a guess.
//!
//! The base URL is the merchant's (`api_base_url`), so calls go through [`NetPolicy`]: unless the operator allows
//! private targets, every resolved address must be public (the same rule as webhooks), redirects are never followed.

pub(crate) mod bills;
mod certificates;
mod micropay;
pub mod notify;
mod poll;
mod sharing;
mod v2;
pub mod v3;

#[cfg(test)]
mod tests;

pub use micropay::Micropaid;
pub use poll::{RefundQueried, TradeQueried};
pub use sharing::WechatReceiver;

use crate::{Channel, PaymentRequest, PaymentState, RefundResult, ShareResult};
use async_trait::async_trait;
use paygate_domain::accounts::{WechatAccount, WechatApiVersion};
use paygate_domain::shares::ProfitShare;
use paygate_domain::{Amount, Charge, Mode, Problem, ProblemKind, Refund};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

pub(crate) use crate::net::Answer;
pub use crate::net::NetPolicy;
use crate::net::PRIVATE_REFUSAL;

/// The Ping++ channel names this adapter serves.
pub const WECHAT_CHANNELS: [&str; 5] = ["wx", "wx_pub", "wx_pub_qr", "wx_lite", "wx_wap"];

/// The protocol half of an account, checked once when the adapter is built.
pub(crate) enum Protocol {
    V2 { key: SecretString },
    V3(Box<v3::V3Keys>),
}

/// One merchant account as the adapter uses it.
pub struct WechatPayConfig {
    pub mch_id: String,
    pub appid: String,
    pub api_base_url: String,
    /// paygate's app and mode the account belongs to: they name the notification URL.
    pub app_id: String,
    pub mode: Mode,
    /// paygate's public base URL, when the operator set one: refunds name their notification URL under it.
    pub public_url: Option<String>,
    pub net: NetPolicy,
    /// The operator's extra trusted roots for channel endpoints (PEM, `--channel-ca-file`), beside the public ones.
    pub extra_roots_pem: Option<String>,
    pub(crate) protocol: Protocol,
    /// The merchant API certificate (PEM chain) and its key, presented on `/secapi/` (mutual TLS).
    client_identity: Option<(String, SecretString)>,
}

impl WechatPayConfig {
    /// From a checked account. A v3 account verifies WeChat with its WeChat Pay public key (id + PEM) or, without
    /// one, with the platform certificates (`certificates.rs`).
    pub fn from_account(account: &WechatAccount, app_id: &str, mode: Mode, net: NetPolicy) -> Result<Self, Problem> {
        let protocol = match account.api_version {
            WechatApiVersion::V2 => {
                let key = account.api_v2_key.clone().ok_or_else(|| account_problem("api_v2_key is not set"))?;
                Protocol::V2 { key }
            }
            WechatApiVersion::V3 => Protocol::V3(Box::new(v3::V3Keys::from_account(account)?)),
        };
        Ok(WechatPayConfig {
            mch_id: account.mch_id.clone(),
            appid: account.appid.clone(),
            api_base_url: account.api_base_url.trim_end_matches('/').to_string(),
            app_id: app_id.to_string(),
            mode,
            public_url: None,
            net,
            extra_roots_pem: None,
            protocol,
            client_identity: account.client_certificate.clone().zip(account.client_key.clone()),
        })
    }

    /// Where refund results are notified: under the public URL when the operator set one; otherwise WeChat uses
    /// the URL configured on the merchant platform.
    pub fn refund_notify_url(&self) -> Option<String> {
        self.public_url.as_deref().map(|base| self.notify_url(base))
    }

    /// `{base}/notify/wechat[/v3]/{app_id}/{test|live}`: where WeChat sends this account's notifications.
    pub fn notify_url(&self, base_url: &str) -> String {
        let v3 = if matches!(self.protocol, Protocol::V3(_)) { "v3/" } else { "" };
        let mode = if self.mode.is_live() { "live" } else { "test" };
        format!("{}/notify/wechat/{v3}{}/{mode}", base_url.trim_end_matches('/'), self.app_id)
    }
}

pub(crate) fn account_problem(why: &str) -> Problem {
    Problem::new(
        ProblemKind::Channel,
        "channel_account_invalid",
        format!("The WeChat Pay account cannot be used: {why}; set it again (PUT /v1/channel_accounts/wechat)."),
    )
}

/// A channel error: the channel said no, or could not be asked.
pub(crate) fn channel_problem(code: &'static str, message: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::Channel, code, message.into())
}

/// Could not get an answer: nothing is known about what the channel did.
#[derive(Debug)]
pub(crate) struct Unanswered(pub String);

/// What a `/secapi/` failure of an account without a client certificate adds to its message.
pub(crate) const CLIENT_CERT_MISSING: &str = "the account has no client_certificate/client_key, and WeChat Pay's \
     /secapi/ needs the merchant API certificate (mutual TLS): set them (PUT /v1/channel_accounts/wechat)";
/// Part of the reason when the TLS setup (the operator's extra roots, the account's certificate) failed: the call
/// was not made, which is known, not an outage.
const CLIENT_CERT_UNUSABLE: &str = "the TLS setup for WeChat Pay cannot be used";

impl Unanswered {
    pub fn problem(&self) -> Problem {
        if self.0.contains(CLIENT_CERT_UNUSABLE) || self.0.contains("channel_ca_file") {
            return channel_problem("channel_tls_setup", format!("WeChat Pay was not called: {}", self.0));
        }
        // A target the SSRF guard refused was never called: that is known, not an outage.
        if self.0.contains(PRIVATE_REFUSAL) {
            return channel_problem("channel_target_refused", format!("WeChat Pay was not called: {}", self.0));
        }
        channel_problem("channel_unavailable", format!("WeChat Pay did not answer: {}", self.0))
    }
}

pub struct WechatPay {
    pub(crate) config: WechatPayConfig,
    /// Every path but `/secapi/`; `Err`: why the TLS setup (the operator's extra roots) cannot be used.
    agent: Result<ureq::Agent, String>,
    /// `/secapi/` paths: the same, presenting the account's client certificate (`None`: the account has none, the
    /// call goes without and WeChat refuses it; `Err`: why the certificate cannot be used).
    secapi: Option<Result<ureq::Agent, String>>,
}

impl WechatPay {
    pub fn new(config: WechatPayConfig) -> WechatPay {
        let net = config.net;
        let roots = config.extra_roots_pem.as_deref();
        let agent = match roots {
            None => Ok(crate::net::agent(net)),
            Some(_) => {
                crate::net::tls_config(roots, None).map(|tls| crate::net::agent_builder(net).tls_config(tls).build())
            }
        };
        let secapi = config.client_identity.as_ref().map(|(cert, key)| {
            crate::net::tls_config(roots, Some((cert, key.expose_secret())))
                .map(|tls| crate::net::agent_builder(net).tls_config(tls).build())
                .map_err(|why| format!("{CLIENT_CERT_UNUSABLE}: {why}"))
        });
        for why in [Some(&agent), secapi.as_ref()].into_iter().flatten().filter_map(|a| a.as_ref().err()) {
            tracing::error!(mch_id = %config.mch_id, %why, "WeChat Pay TLS setup failed");
        }
        WechatPay { config, agent, secapi }
    }

    /// Sends one request on the blocking pool (`/secapi/` paths with the client certificate). Any status is an
    /// answer; no answer is [`Unanswered`].
    pub(crate) async fn send(
        &self,
        method: &'static str,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: Option<String>,
    ) -> Result<Answer, Unanswered> {
        let secapi = path.starts_with("/secapi/");
        let agent = match &self.secapi {
            Some(with_certificate) if secapi => with_certificate,
            _ => &self.agent,
        };
        let agent = agent.as_ref().map_err(|why| Unanswered(format!("{path}: {why}")))?;
        let url = format!("{}{path}", self.config.api_base_url);
        crate::net::send(agent, method, url, headers, body).await.map_err(|why| {
            // No answer stays no answer (a refund is left pending), but say the likely cause.
            let hint = if secapi && self.secapi.is_none() { format!("; {CLIENT_CERT_MISSING}") } else { String::new() };
            Unanswered(format!("{why}{hint}"))
        })
    }

    /// Whether `path` needs the merchant API certificate the account does not have: WeChat's refusal of such a
    /// call is then named for what it is.
    pub(crate) fn lacks_client_certificate(&self, path: &str) -> bool {
        path.starts_with("/secapi/") && self.secapi.is_none()
    }

    /// What can be refused without asking WeChat: the core checks it before recording the charge.
    pub fn check_request(&self, request: &PaymentRequest<'_>) -> Result<(), Problem> {
        if !WECHAT_CHANNELS.contains(&request.channel) {
            return Err(Problem::invalid("channel", format!("{} is not a WeChat Pay channel.", request.channel)));
        }
        if !(request.extra.is_object() || request.extra.is_null()) {
            return Err(Problem::invalid("extra", "extra must be an object."));
        }
        if matches!(request.channel, "wx_pub" | "wx_lite") {
            open_id(request)?;
        }
        Ok(())
    }

    /// The part of the URL the v3 signature covers: the path (with any base path) and query.
    pub(crate) fn signed_path(&self, path: &str) -> String {
        let base = &self.config.api_base_url;
        let after_scheme = base.split_once("://").map_or(base.as_str(), |(_, rest)| rest);
        let base_path = after_scheme.find('/').map_or("", |at| &after_scheme[at..]);
        format!("{base_path}{path}")
    }
}

#[async_trait]
impl Channel for WechatPay {
    async fn open(&self, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
        self.check_request(request)?;
        match &self.config.protocol {
            Protocol::V2 { key } => v2::open(self, key.expose_secret(), request).await,
            Protocol::V3(keys) => v3::open(self, keys, request).await,
        }
    }

    async fn close(&self, charge: &Charge) -> Result<(), Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => v2::close(self, key.expose_secret(), charge).await,
            Protocol::V3(keys) => v3::close(self, keys, charge).await,
        }
    }

    async fn refund(&self, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        match &self.config.protocol {
            Protocol::V2 { key } => v2::refund(self, key.expose_secret(), charge, refund).await,
            Protocol::V3(keys) => v3::refund(self, keys, charge, refund).await,
        }
    }

    async fn share(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
        self.share_at_wechat(charge, share).await
    }

    async fn finish_sharing(&self, charge: &Charge) -> Result<(), Problem> {
        self.finish_at_wechat(charge).await
    }

    async fn return_share(&self, _charge: &Charge, share: &ProfitShare, amount: Amount) -> Result<bool, Problem> {
        self.return_at_wechat(share, amount).await
    }

    /// The real notification is kept when it arrives (`POST /notify/wechat/…`); nothing is made up here.
    fn payment_notification(&self, _charge: &Charge, _transaction_no: &str, _time_paid: i64) -> Option<Value> {
        None
    }

    async fn query(&self, charge: &Charge, _now: i64) -> Result<PaymentState, Problem> {
        let state = match &self.config.protocol {
            Protocol::V2 { key } => v2::query(self, key.expose_secret(), charge).await?,
            Protocol::V3(keys) => v3::query(self, keys, charge).await?,
        };
        Ok(trade_state(&state))
    }
}

/// A WeChat `trade_state` as paygate sees a payment.
pub(crate) fn trade_state(state: &str) -> PaymentState {
    match state {
        "SUCCESS" | "REFUND" => PaymentState::Paid,
        "NOTPAY" | "USERPAYING" | "ACCEPT" => PaymentState::Pending,
        other => PaymentState::Failed {
            code: format!("wechat_{}", other.to_ascii_lowercase()),
            message: format!("WeChat Pay reports the payment as {other}."),
        },
    }
}

/// The payer's IP as WeChat wants it (required; a face without one sends 127.0.0.1, as WeChat's samples do).
pub(crate) fn client_ip(ip: &str) -> &str {
    if ip.is_empty() {
        "127.0.0.1"
    } else {
        ip
    }
}

/// `extra.open_id` (Ping++'s name), required for JSAPI payments (wx_pub, wx_lite).
pub(crate) fn open_id<'a>(request: &'a PaymentRequest<'_>) -> Result<&'a str, Problem> {
    request
        .extra
        .get("open_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Problem::invalid("extra.open_id", format!("extra.open_id is required for {}.", request.channel)))
}

/// Unix seconds of the system clock: client signatures and v3 windows are judged against WeChat's real time,
/// whatever paygate's business clock says.
pub(crate) fn wall_clock() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl WechatPay {
    /// The v2 API key, for checking this account's notifications (`None` for a v3 account without one).
    pub fn v2_key(&self) -> Option<&str> {
        match &self.config.protocol {
            Protocol::V2 { key } => Some(key.expose_secret()),
            Protocol::V3(_) => None,
        }
    }

    /// The v3 keys, for checking and decrypting this account's v3 notifications.
    pub fn v3_keys(&self) -> Option<&v3::V3Keys> {
        match &self.config.protocol {
            Protocol::V3(keys) => Some(keys),
            Protocol::V2 { .. } => None,
        }
    }
}

impl WechatPay {
    /// (appid, mch_id) of the account: what every notification must name.
    pub fn config_ids(&self) -> (String, String) {
        (self.config.appid.clone(), self.config.mch_id.clone())
    }
}
