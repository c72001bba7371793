//! The Alipay channel for one Alipay app (OpenAPI `gateway.do`, RSA2): precreate (alipay_qr), wap pay
//! (alipay_wap), page pay (alipay_pc_direct), app pay (alipay); close, refund (confirmed by the refund query when
//! `fund_change` is not `Y`) and query. Every answer is believed only after the signature over its raw
//! `<method>_response` node checks out; a timeout, a refused connection, a non-200 or a 20000 is a channel error
//! that leaves the payment (or refund) where it was, as does a signed answer naming another out_trade_no, trade_no
//! or out_request_no than the request (`same_trade`). Public-key or certificate mode (app_cert_sn and
//! alipay_root_cert_sn on every request; Alipay's key from its certificate, which must chain to a trusted root).
//! Calls go through [`crate::net`] (timeouts and the guard).

mod bills;
mod code;
mod royalty;
mod trade;

#[cfg(test)]
mod tests;

pub use code::{Canceled, CodePaid};
pub use royalty::SettleSeen;
pub use trade::RefundSeen;

use crate::alipay::{self, Params, Response, SigningKey, VerifyingKey};
use crate::net::{self, NetPolicy, PRIVATE_REFUSAL};
use crate::{Channel, PaymentRequest, PaymentState, RefundResult, ShareResult};
use async_trait::async_trait;
use paygate_domain::accounts::AlipayAccount;
use paygate_domain::shares::ProfitShare;
use paygate_domain::{Amount, Charge, Mode, Problem, ProblemKind, Refund};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// The Ping++ channel names this adapter serves.
pub const ALIPAY_CHANNELS: [&str; 4] = ["alipay", "alipay_qr", "alipay_wap", "alipay_pc_direct"];

/// One Alipay app as the adapter uses it.
pub struct AlipayPayConfig {
    /// Alipay's app id (the `app_id` of every request and notification).
    pub alipay_app_id: String,
    /// The merchant's Alipay user id (2088…): notifications must name it when set.
    pub seller_id: String,
    pub gateway_url: String,
    /// paygate's app and mode the account belongs to: they name the notification URL.
    pub app_id: String,
    pub mode: Mode,
    /// paygate's public base URL, when the operator set one: notification URLs are under it.
    pub public_url: Option<String>,
    pub net: NetPolicy,
    /// The operator's extra trusted roots (`--channel-ca-file`): TLS to the gateway, and roots Alipay's
    /// public-key certificate may chain to in certificate mode.
    pub extra_roots_pem: Option<String>,
    app_auth_token: Option<SecretString>,
    app_key: SigningKey,
    alipay_key: VerifyingKey,
    /// Certificate mode: (app_cert_sn, alipay_root_cert_sn), sent with every request.
    cert_sns: Option<(String, String)>,
}

impl AlipayPayConfig {
    /// From a checked account, without extra trusted roots.
    pub fn from_account(account: &AlipayAccount, app_id: &str, mode: Mode, net: NetPolicy) -> Result<Self, Problem> {
        Self::from_account_with_roots(account, app_id, mode, net, None)
    }

    /// From a checked account. Certificate mode (the three certificates set) wins over a public key: Alipay's key
    /// is then the one in its certificate, which must chain to its root bundle or to `extra_roots_pem`.
    pub fn from_account_with_roots(
        account: &AlipayAccount,
        app_id: &str,
        mode: Mode,
        net: NetPolicy,
        extra_roots_pem: Option<&str>,
    ) -> Result<Self, Problem> {
        let app_key = alipay::app_private_key(account.app_private_key.expose_secret())
            .map_err(|e| account_problem(&format!("app_private_key: {e}")))?;
        let certs = (&account.app_public_cert, &account.alipay_public_cert, &account.alipay_root_cert);
        let (alipay_key, cert_sns) = if let (Some(app), Some(alipay), Some(root)) = certs {
            let cert = alipay::cert::CertMode::new(app, alipay, root, extra_roots_pem)
                .map_err(|e| account_problem(&format!("certificate mode: {e}")))?;
            (cert.alipay_key, Some((cert.app_cert_sn, cert.alipay_root_cert_sn)))
        } else {
            let public = account.alipay_public_key.as_deref().ok_or_else(|| {
                account_problem("alipay_public_key is not set (nor the three certificates of certificate mode)")
            })?;
            let key =
                alipay::alipay_public_key(public).map_err(|e| account_problem(&format!("alipay_public_key: {e}")))?;
            (key, None)
        };
        Ok(AlipayPayConfig {
            alipay_app_id: account.app_id.clone(),
            seller_id: account.seller_id.clone(),
            gateway_url: account.gateway_url.clone(),
            app_id: app_id.to_string(),
            mode,
            public_url: None,
            net,
            extra_roots_pem: extra_roots_pem.map(str::to_string),
            app_auth_token: account.app_auth_token.clone(),
            app_key,
            alipay_key,
            cert_sns,
        })
    }

    /// `{base}/notify/alipay/{app_id}/{test|live}`: where Alipay sends this account's notifications. The
    /// operator's public URL wins over the request's base URL.
    pub fn notify_url(&self, base_url: &str) -> String {
        let base = self.public_url.as_deref().unwrap_or(base_url);
        let mode = if self.mode.is_live() { "live" } else { "test" };
        format!("{}/notify/alipay/{}/{mode}", base.trim_end_matches('/'), self.app_id)
    }
}

pub(crate) fn account_problem(why: &str) -> Problem {
    Problem::new(
        ProblemKind::Channel,
        "channel_account_invalid",
        format!("The Alipay account cannot be used: {why}; set it again (PUT /v1/channel_accounts/alipay)."),
    )
}

pub(crate) fn channel_problem(code: &'static str, message: impl Into<String>) -> Problem {
    Problem::new(ProblemKind::Channel, code, message.into())
}

pub struct AlipayPay {
    pub(crate) config: AlipayPayConfig,
    agent: ureq::Agent,
}

impl AlipayPay {
    pub fn new(config: AlipayPayConfig) -> AlipayPay {
        let agent = match config.extra_roots_pem.as_deref().map(|roots| net::tls_config(Some(roots), None)) {
            Some(Ok(tls)) => net::agent_builder(config.net).tls_config(tls).build(),
            Some(Err(why)) => {
                // The gateway is still reached through the public roots: a private one fails its TLS check.
                tracing::error!(app_id = %config.alipay_app_id, %why, "Alipay TLS extra roots unusable");
                net::agent(config.net)
            }
            None => net::agent(config.net),
        };
        AlipayPay { config, agent }
    }

    /// Whether the account is in certificate mode (requests name app_cert_sn and alipay_root_cert_sn).
    pub fn cert_sns(&self) -> Option<(&str, &str)> {
        self.config.cert_sns.as_ref().map(|(app, root)| (app.as_str(), root.as_str()))
    }

    /// (Alipay app_id, seller_id): what every notification must name (seller_id when not empty).
    pub fn ids(&self) -> (&str, &str) {
        (&self.config.alipay_app_id, &self.config.seller_id)
    }

    /// Checks an async notification's signature (without `sign` and `sign_type`) with the Alipay public key.
    pub fn verify_notify(&self, params: &Params) -> Result<(), alipay::AlipayError> {
        alipay::verify_notify(params, &self.config.alipay_key)
    }

    /// Where a refund stands at Alipay (`alipay.trade.fastpay.refund.query`): a refund notification is
    /// believed through this, since its `refund_fee` is the trade's total refunded, not this refund's amount.
    pub async fn refund_status(&self, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        trade::refund_query(self, charge, refund, None).await
    }

    /// The refund query telling a refund Alipay never got ([`RefundSeen::Missing`]) from one it has.
    pub async fn refund_seen(&self, charge: &Charge, refund: &Refund) -> Result<RefundSeen, Problem> {
        trade::refund_seen(self, charge, refund).await
    }

    /// Sends a refund again with its own out_request_no (Alipay carries out one refund per out_request_no, so
    /// this is the same refund): only after the refund query said Alipay has none.
    pub async fn refund_again(&self, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        trade::refund(self, charge, refund).await
    }

    /// What can be refused without asking Alipay: the core checks it before recording the charge.
    pub fn check_request(&self, request: &PaymentRequest<'_>) -> Result<(), Problem> {
        if !ALIPAY_CHANNELS.contains(&request.channel) {
            return Err(Problem::invalid("channel", format!("{} is not an Alipay channel.", request.channel)));
        }
        if !(request.extra.is_object() || request.extra.is_null()) {
            return Err(Problem::invalid("extra", "extra must be an object."));
        }
        Ok(())
    }

    /// The signed parameters of a call (common parameters, biz_content, the account's app_auth_token).
    /// `extra`: notify_url, return_url (empty values are left out).
    pub(crate) fn signed(&self, method: &str, biz: &Value, extra: &[(&str, &str)]) -> Result<Params, Problem> {
        let token = self.config.app_auth_token.as_ref().map(|t| t.expose_secret().to_string()).unwrap_or_default();
        let mut all = vec![("app_auth_token", token.as_str())];
        if let Some((app_cert_sn, root_cert_sn)) = &self.config.cert_sns {
            all.push(("app_cert_sn", app_cert_sn));
            all.push(("alipay_root_cert_sn", root_cert_sn));
        }
        all.extend_from_slice(extra);
        // Alipay judges the timestamp against its real time, whatever paygate's business clock says.
        let now = crate::wechat_pay::wall_clock();
        Ok(alipay::build_request(&self.config.alipay_app_id, method, biz, &all, now, &self.config.app_key)?)
    }

    /// The gateway URL a payer's browser opens (wap / page pay as GET): the signed parameters in the query.
    pub(crate) fn gateway_link(&self, params: &Params) -> String {
        let sep = if self.config.gateway_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{}", self.config.gateway_url, alipay::encode_form(params))
    }

    /// One gateway call: the answer verified over its raw node. A business refusal (40004…) is `Ok` with its
    /// code; no answer, a non-200, a bad signature or 20000 (outcome unknown) is `channel_unavailable`.
    pub(crate) async fn call(&self, method: &str, biz: &Value) -> Result<Response, Problem> {
        self.call_with(method, self.signed(method, biz, &[])?).await
    }

    /// As [`AlipayPay::call`] with parameters already signed.
    pub(crate) async fn call_with(&self, method: &str, params: Params) -> Result<Response, Problem> {
        let headers = vec![("Content-Type", "application/x-www-form-urlencoded;charset=utf-8".to_string())];
        let url = self.config.gateway_url.clone();
        let answer = match net::send(&self.agent, "POST", url, headers, Some(alipay::encode_form(&params))).await {
            Ok(answer) => answer,
            Err(why) if why.contains(PRIVATE_REFUSAL) => {
                return Err(channel_problem("channel_target_refused", format!("Alipay was not called: {why}")))
            }
            Err(why) => return Err(channel_problem("channel_unavailable", format!("Alipay did not answer: {why}"))),
        };
        if answer.status != 200 {
            return Err(channel_problem("channel_unavailable", format!("Alipay answered HTTP {}", answer.status)));
        }
        let response = Response::parse(&answer.body, method, &self.config.alipay_key).map_err(|e| {
            tracing::warn!(method, code = e.code(), "Alipay answer refused");
            channel_problem("channel_unavailable", format!("Alipay's answer to {method} was not trusted: {e}"))
        })?;
        if response.code == alipay::CODE_UNKNOWN {
            return Err(channel_problem("channel_unavailable", format!("Alipay answered 20000 to {method}")));
        }
        if let Err(why) = same_trade(&params, &response) {
            tracing::error!(method, %why, "Alipay answer about another trade refused");
            return Err(channel_problem(
                "channel_unavailable",
                format!("Alipay's answer to {method} was not trusted: {why}"),
            ));
        }
        Ok(response)
    }
}

/// The numbers a node may echo, checked against what the request named.
const ECHOED: [&str; 3] = ["out_trade_no", "trade_no", "out_request_no"];

/// Alipay signs the answer node, not the request it answers: a validly signed answer about another trade (a
/// replayed body, a confused proxy) verifies all the same. So a node that names one of [`ECHOED`] must name what
/// the request's `biz_content` named; a number the request did not send, or the node does not echo, is not compared.
pub(crate) fn same_trade(params: &Params, response: &Response) -> Result<(), String> {
    let biz = params.get("biz_content").and_then(|b| serde_json::from_str::<Value>(b).ok()).unwrap_or(Value::Null);
    for name in ECHOED {
        let (Some(asked), Some(got)) = (biz.get(name).and_then(Value::as_str), response.fields.get(name)) else {
            continue;
        };
        if got.as_str() != Some(asked) {
            return Err(format!("the answer names {name} {got}, the request {asked}"));
        }
    }
    Ok(())
}

/// A refusal as paygate reports it: `alipay_` + the sub_code (or code), with Alipay's message.
pub(crate) fn refusal(response: &Response) -> (String, String) {
    let code = response.sub_code.as_deref().unwrap_or(&response.code);
    let code = format!("alipay_{}", code.to_ascii_lowercase().replace('.', "_"));
    let message = response.sub_msg.clone().unwrap_or_else(|| response.msg.clone());
    (code, message)
}

#[async_trait]
impl Channel for AlipayPay {
    async fn open(&self, request: &PaymentRequest<'_>) -> Result<Value, Problem> {
        self.check_request(request)?;
        trade::open(self, request).await
    }

    async fn close(&self, charge: &Charge) -> Result<(), Problem> {
        trade::close(self, charge).await
    }

    async fn refund(&self, charge: &Charge, refund: &Refund) -> Result<RefundResult, Problem> {
        trade::refund(self, charge, refund).await
    }

    async fn share(&self, charge: &Charge, share: &ProfitShare) -> Result<ShareResult, Problem> {
        royalty::share(self, charge, share).await
    }

    async fn finish_sharing(&self, _charge: &Charge) -> Result<(), Problem> {
        Err(not_yet("finishing royalty"))
    }

    async fn return_share(&self, _charge: &Charge, _share: &ProfitShare, _amount: Amount) -> Result<bool, Problem> {
        Err(not_yet("returning a royalty"))
    }

    /// The real notification is kept when it arrives (`POST /notify/alipay/…`); nothing is made up here.
    fn payment_notification(&self, _charge: &Charge, _transaction_no: &str, _time_paid: i64) -> Option<Value> {
        None
    }

    async fn query(&self, charge: &Charge, _now: i64) -> Result<PaymentState, Problem> {
        trade::query(self, charge).await
    }
}

fn not_yet(what: &str) -> Problem {
    channel_problem("channel_unsupported", format!("{what} through Alipay is not supported by paygate yet."))
}
