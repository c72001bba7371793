//! Which channel serves a payment: the WeChat Pay adapter for WeChat channel names when the app has a WeChat
//! channel account in that mode, the Alipay adapter likewise for Alipay names and an Alipay account, otherwise
//! `Channels::resolve` (test mode → the sandbox, live → a clear `channel_not_configured`). Adapters are built once
//! per account and kept as long as the decrypted account is cached (`ACCOUNT_CACHE_SECONDS`): a changed account is
//! a new `Arc`, so a new adapter.

use crate::Paygate;
use paygate_channels::alipay_pay::{AlipayPay, AlipayPayConfig, ALIPAY_CHANNELS};
use paygate_channels::wechat_pay::{NetPolicy, WechatPay, WechatPayConfig, WECHAT_CHANNELS};
use paygate_channels::{Channel, PaymentRequest};
use paygate_domain::accounts::{ChannelAccount, Provider};
use paygate_domain::ids::IdKind;
use paygate_domain::{Charge, Order, Problem, Scope};
use paygate_store::ChargeOutcome;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A channel call waits at most this long to connect, and this long for the answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(15);
const ADAPTERS_MAX: usize = 10_000;

/// An adapter with the cached account it was built from.
type Built<A> = (Arc<ChannelAccount>, Arc<A>);

/// The channel a payment goes to: a real one records intent first.
pub(crate) enum Routed {
    Wechat(Arc<WechatPay>),
    Alipay(Arc<AlipayPay>),
    Other(Arc<dyn Channel>),
}

impl Routed {
    /// A real channel (intent first), checked without calling it; `None` for the sandbox.
    fn real(&self, request: &PaymentRequest<'_>) -> Option<Result<(), Problem>> {
        match self {
            Routed::Wechat(adapter) => Some(adapter.check_request(request)),
            Routed::Alipay(adapter) => Some(adapter.check_request(request)),
            Routed::Other(_) => None,
        }
    }
}

/// What a charge is opened with.
pub(crate) struct Opening {
    pub channel: String,
    pub channel_order_no: String,
    pub extra: Value,
    pub base_url: String,
}

#[derive(Default)]
pub(crate) struct Adapters {
    wechat: Mutex<HashMap<Scope, Built<WechatPay>>>,
    alipay: Mutex<HashMap<Scope, Built<AlipayPay>>>,
}

/// The adapter built from `account` when it is still the cached one, else a new one (kept for next time).
fn cached<A>(
    map: &Mutex<HashMap<Scope, Built<A>>>,
    scope: &Scope,
    account: Arc<ChannelAccount>,
    build: impl FnOnce(&ChannelAccount) -> Result<A, Problem>,
) -> Result<Arc<A>, Problem> {
    if let Some((cached, adapter)) = map.lock().ok().and_then(|m| m.get(scope).cloned()) {
        if Arc::ptr_eq(&cached, &account) {
            return Ok(adapter);
        }
    }
    let adapter = Arc::new(build(account.as_ref())?);
    if let Ok(mut map) = map.lock() {
        if map.len() >= ADAPTERS_MAX {
            map.clear();
        }
        map.insert(scope.clone(), (account, adapter.clone()));
    }
    Ok(adapter)
}

/// Whether `channel` is a name the Alipay adapter serves.
pub fn is_alipay_channel(channel: &str) -> bool {
    ALIPAY_CHANNELS.contains(&channel)
}

/// Whether `channel` is a name the WeChat Pay adapter serves.
pub fn is_wechat_pay_channel(channel: &str) -> bool {
    WECHAT_CHANNELS.contains(&channel)
}

impl Paygate {
    /// The channel that serves `channel` for the scope's app and mode.
    pub async fn channel_for(&self, scope: &Scope, channel: &str) -> Result<Arc<dyn Channel>, Problem> {
        Ok(match self.route_channel(scope, channel).await? {
            Routed::Wechat(adapter) => adapter,
            Routed::Alipay(adapter) => adapter,
            Routed::Other(channel) => channel,
        })
    }

    /// As [`Paygate::channel_for`], telling a real channel (which needs the intent recorded first) apart.
    pub(crate) async fn route_channel(&self, scope: &Scope, channel: &str) -> Result<Routed, Problem> {
        if is_wechat_pay_channel(channel) {
            if let Some(adapter) = self.wechat_adapter(scope).await? {
                return Ok(Routed::Wechat(adapter));
            }
        }
        if is_alipay_channel(channel) {
            if let Some(adapter) = self.alipay_adapter(scope).await? {
                return Ok(Routed::Alipay(adapter));
            }
        }
        self.channels.resolve(scope.mode, channel).map(Routed::Other)
    }

    /// The pending charge a face records for `order`. Through a real channel it is the intent only (checked
    /// without calling the channel, a placeholder credential): [`Paygate::complete_charge`] opens it once it is
    /// recorded. Through the sandbox the payment is opened here, as before (it has no side effects).
    pub(crate) async fn prepare_charge(
        &self,
        routed: &Routed,
        order: &Order,
        opening: Opening,
    ) -> Result<Charge, Problem> {
        let Opening { channel, channel_order_no, extra, base_url } = opening;
        if let Routed::Other(sandbox) = routed {
            let sandbox = sandbox.as_ref();
            return self.charge_at_channel(order, sandbox, channel, channel_order_no, extra, &base_url).await;
        }
        let charge_id = IdKind::Charge.generate(&crate::random32()?);
        let mut extra = if extra.is_null() { Value::Object(Default::default()) } else { extra };
        if order.profit_sharing && matches!(routed, Routed::Wechat(_)) {
            // WeChat shares only orders opened for it (profit_sharing=Y / settle_info.profit_sharing).
            if let Some(map) = extra.as_object_mut() {
                map.insert("profit_sharing".into(), Value::Bool(true));
            }
        }
        let charge = crate::orders::pending_charge(
            order,
            charge_id,
            channel,
            channel_order_no,
            extra,
            json!({"object": "credential"}),
            self.now(),
        );
        routed.real(&request_of(&charge, &base_url)).unwrap_or(Ok(()))?;
        Ok(charge)
    }

    /// After the charge from [`Paygate::prepare_charge`] is recorded: through a real channel, opens the payment
    /// and stores its credential on the still-pending charge. A refusal marks the charge failed; no answer at
    /// all (timeout, 5xx) leaves it pending — WeChat may hold the order, and a notification, a query or the
    /// order's expiry settles it.
    pub(crate) async fn complete_charge(
        &self,
        scope: &Scope,
        routed: &Routed,
        charge: Charge,
        base_url: &str,
    ) -> Result<Charge, Problem> {
        let adapter: &dyn Channel = match routed {
            Routed::Wechat(adapter) => adapter.as_ref(),
            Routed::Alipay(adapter) => adapter.as_ref(),
            Routed::Other(_) => return Ok(charge),
        };
        match adapter.open(&request_of(&charge, base_url)).await {
            Ok(credential) => {
                self.schedule_charge_poll(scope, &charge).await;
                if !self.store.set_pending_credential(scope, &charge.id, &credential).await? {
                    tracing::info!(charge = %charge.id, "charge moved on before its credential was stored");
                }
                Ok(Charge { credential, ..charge })
            }
            Err(problem) if problem.code == "channel_unavailable" => {
                tracing::warn!(charge = %charge.id, %problem, "channel did not answer; the charge stays pending");
                self.schedule_charge_poll(scope, &charge).await;
                Err(problem)
            }
            Err(problem) => {
                let failed = ChargeOutcome::Failed { code: problem.code.to_string(), message: problem.message.clone() };
                if let Err(e) = self.store.settle_charge(scope, &charge.id, &failed).await {
                    tracing::error!(charge = %charge.id, problem = %e, "a refused charge could not be marked failed");
                }
                Err(problem)
            }
        }
    }

    /// The channel of an existing charge.
    pub(crate) async fn channel_of(&self, charge: &Charge) -> Result<Arc<dyn Channel>, Problem> {
        let scope = Scope { app_id: charge.app_id.clone(), mode: charge.mode };
        if crate::channel_poller::paid_by_code_at_wechat(charge) {
            // A payment code paid at WeChat is refunded and closed there, whatever the channel name routes to.
            if let Some(adapter) = self.wechat_adapter(&scope).await? {
                return Ok(adapter);
            }
        }
        if crate::alipay_barcode::paid_by_code_at_alipay(charge) {
            // Likewise a payment code charged at Alipay (alipay_scan is no channel name of the adapter).
            if let Some(adapter) = self.alipay_adapter(&scope).await? {
                return Ok(adapter);
            }
        }
        self.channel_for(&scope, &charge.channel).await
    }

    /// The app's WeChat Pay adapter in the scope's mode, or `None` when it has no WeChat account. An account that
    /// exists but cannot be used is an error, never a silent fall back to the sandbox.
    pub async fn wechat_adapter(&self, scope: &Scope) -> Result<Option<Arc<WechatPay>>, Problem> {
        let Some(account) = self.channel_account_if_set(scope, Provider::Wechat).await? else {
            return Ok(None);
        };
        let net = self.channel_net();
        let public_url = self.policy.public_url.clone();
        let adapter = cached(&self.adapters.wechat, scope, account, |account| {
            let ChannelAccount::Wechat(wechat) = account else {
                return Err(Problem::internal("a WeChat channel account of another provider"));
            };
            let mut config = WechatPayConfig::from_account(wechat, &scope.app_id, scope.mode, net)?;
            config.public_url = public_url;
            config.extra_roots_pem = self.policy.channel_ca_pem.clone();
            Ok(WechatPay::new(config))
        })?;
        Ok(Some(adapter))
    }

    /// The app's Alipay adapter in the scope's mode, or `None` when it has no Alipay account (as for WeChat).
    pub async fn alipay_adapter(&self, scope: &Scope) -> Result<Option<Arc<AlipayPay>>, Problem> {
        let Some(account) = self.channel_account_if_set(scope, Provider::Alipay).await? else {
            return Ok(None);
        };
        let net = self.channel_net();
        let public_url = self.policy.public_url.clone();
        let adapter = cached(&self.adapters.alipay, scope, account, |account| {
            let ChannelAccount::Alipay(alipay) = account else {
                return Err(Problem::internal("an Alipay channel account of another provider"));
            };
            let roots = self.policy.channel_ca_pem.as_deref();
            let mut config = AlipayPayConfig::from_account_with_roots(alipay, &scope.app_id, scope.mode, net, roots)?;
            config.public_url = public_url;
            Ok(AlipayPay::new(config))
        })?;
        Ok(Some(adapter))
    }

    /// How adapters call channels: the operator's private-target switch, webhooks' idea of public, timeouts.
    fn channel_net(&self) -> NetPolicy {
        NetPolicy {
            allow_private: self.policy.channel_allow_private,
            is_public: crate::webhooks::is_public_address,
            connect_timeout: CONNECT_TIMEOUT,
            read_timeout: READ_TIMEOUT,
        }
    }
}

/// What the channel is asked to open for a recorded charge.
fn request_of<'a>(charge: &'a Charge, base_url: &'a str) -> PaymentRequest<'a> {
    PaymentRequest {
        charge_id: &charge.id,
        channel: &charge.channel,
        channel_order_no: &charge.channel_order_no,
        amount: charge.amount,
        subject: &charge.subject,
        body: &charge.body,
        client_ip: &charge.client_ip,
        extra: &charge.extra,
        base_url,
    }
}
