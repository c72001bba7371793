//! Point of sale: what a cashier does around seed 001's query — take a scanned payment code
//! (WeChat, Alipay, or a member's wallet code), query (optionally asking the channel again),
//! refund and reverse (撤销) — plus members and their wallets, fee rates, the settlement computed
//! when any payment succeeds, and the signed envelopes of the cashier and SaaS faces.

use crate::orders::{pending_charge, OrderInput};
use crate::refunds::RefundInput;
use crate::sandbox::SandboxResult;
use crate::{random32, Caller, Paygate};
use hmac::{Hmac, Mac};
use paygate_channels::{wechat, PaymentState};
use paygate_domain::fees::{self, FeeRate};
use paygate_domain::ids::IdKind;
use paygate_domain::ids::OrderId;
use paygate_domain::pos::{self, Discounts, Settlement};
use paygate_domain::{Amount, App, Charge, ChargeStatus, Order, OrderStatus, Problem, ProblemKind, Refund, Scope};
use paygate_store::{
    BalanceTransaction, ExposeSecret, FaceCredential, Member, PosMeta, PosRecord, PosRef, SeenSignature, WalletPayment,
};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Signed envelopes older or newer than this are refused (seconds).
pub const TIMESTAMP_WINDOW: i64 = 300;
/// How long a node trusts a signing credential (and its app) it looked up without asking the
/// database again: a credential changed or removed in the database stops working on every
/// node within this long. The same bound as API keys ([`crate::auth::CACHE_SECONDS`]).
pub const CREDENTIAL_CACHE_SECONDS: i64 = crate::auth::CACHE_SECONDS;
const CREDENTIAL_CACHE_MAX: usize = 10_000;
/// How often a node drops expired signatures from the replay cache (seconds). Never inside a
/// payment's transaction: concurrent deletes of the same rows would queue the payments on them.
const FORGET_EVERY: i64 = 10;

/// What a node keeps in memory for the signed faces.
#[derive(Default)]
pub(crate) struct SignedFaces {
    /// Public id → credential, its app and until when they are trusted. Only known ids are
    /// kept, so unknown ones cannot fill it.
    credentials: Mutex<HashMap<String, (FaceCredential, App, i64)>>,
    /// When this node last forgot expired signatures.
    forgot_at: AtomicI64,
}

/// A fresh cashier credential and SaaS credential for one app and mode.
pub(crate) fn new_credentials(scope: &Scope) -> Result<Vec<FaceCredential>, Problem> {
    Ok(vec![
        FaceCredential {
            public_id: format!("kd{}", crate::random_digits(14)?),
            face: "cashier".into(),
            scope: scope.clone(),
            secret: crate::hex(&random32()?[..16]).into(),
            token: Some(format!("UT{}", crate::hex(&random32()?[..16]).to_uppercase())),
        },
        FaceCredential {
            public_id: format!("ac{}", crate::random_alnum(14)?.to_lowercase()),
            face: "saas".into(),
            scope: scope.clone(),
            secret: crate::hex(&random32()?[..16]).to_uppercase().into(),
            token: None,
        },
    ])
}

/// How a signed envelope is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignType {
    /// `lowercase hex MD5(canonical + "&key=" + secret)` (cashier) — uppercase on the SaaS face.
    Md5,
    /// `lowercase hex HMAC-SHA256(secret, canonical)`.
    HmacSha256,
}

impl SignType {
    pub fn parse(s: &str) -> Result<SignType, Problem> {
        match s.to_ascii_uppercase().as_str() {
            "MD5" => Ok(SignType::Md5),
            "HMAC-SHA256" | "HMAC_SHA256" | "HMACSHA256" => Ok(SignType::HmacSha256),
            other => {
                Err(Problem::invalid("sign_type", format!("sign_type must be MD5 or HMAC-SHA256, got '{other}'.")))
            }
        }
    }
}

pub fn sign(fields: &Map<String, Value>, secret: &str, sign_type: SignType) -> String {
    match sign_type {
        SignType::Md5 => wechat::sign_v2(fields, secret).to_lowercase(),
        SignType::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
            mac.update(wechat::canonical(fields).as_bytes());
            crate::hex(&mac.finalize().into_bytes())
        }
    }
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A scanned payment code, by its shape: WeChat codes are 18 digits starting 10–15, Alipay codes
/// 16–24 digits starting 25–30, member wallet codes 18 digits starting 99.
fn code_kind(code: &str) -> Result<&'static str, Problem> {
    let all_digits = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit());
    let prefix: u32 = code.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    match (all_digits, code.len(), prefix) {
        (true, 18, 10..=15) => Ok("wechat"),
        (true, 16..=24, 25..=30) => Ok("alipay"),
        (true, 18, 99) => Ok("member"),
        _ => Err(Problem::invalid("auth_code", "auth_code is not a WeChat, Alipay or member payment code.")),
    }
}

/// A cashier's scanned-code payment request.
#[derive(Debug, Clone, Default)]
pub struct CodePayment {
    pub out_trade_no: String,
    pub total_fee: i64,
    pub auth_code: String,
    pub subject: Option<String>,
    pub attach: String,
    pub discounts: Discounts,
    pub pre_fee_subsidy: Option<i64>,
    pub fee_subsidy_party: Option<String>,
    pub goods_detail: Value,
}

/// A signed request as a face received it.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// `cashier` or `saas`.
    pub face: &'a str,
    pub public_id: &'a str,
    /// Every field but `sign`.
    pub fields: &'a Map<String, Value>,
    pub signature: Option<&'a str>,
    pub sign_type: SignType,
    /// Checked against the window (and the replay cache) when the face sends one.
    pub timestamp: Option<i64>,
    pub token: Option<&'a str>,
}

impl Paygate {
    /// Checks a signed envelope: known public id of the right face, fresh timestamp (when the
    /// face sends one), token, signature (constant time), and that the signature is new.
    pub async fn verify_envelope(&self, e: &Envelope<'_>) -> Result<(Caller, FaceCredential), Problem> {
        let (caller, cred, seen) = self.check_envelope(e).await?;
        if let Some(seen) = seen {
            self.remember(&seen).await?;
        }
        Ok((caller, cred))
    }

    /// [`Paygate::verify_envelope`] but for the replay cache: the signature (when the envelope
    /// has a timestamp) is returned for the operation to record in its own transaction
    /// ([`Paygate::pay_by_code`]), or through [`Paygate::refused`] when it fails before that.
    pub async fn check_envelope(
        &self,
        e: &Envelope<'_>,
    ) -> Result<(Caller, FaceCredential, Option<SeenSignature>), Problem> {
        let Envelope { face, public_id, fields, signature, sign_type, timestamp, token } = e.clone();
        let id_field = if face == "cashier" { "open_app_id" } else { "accessid" };
        let now = self.now();
        let (cred, app) = self
            .face_credential(public_id, now)
            .await?
            .filter(|(c, _)| c.face == face)
            .ok_or_else(|| Problem::authentication(format!("Unknown {id_field}.")).with_param(id_field))?;
        let signature = signature.filter(|s| !s.is_empty()).ok_or_else(|| {
            Problem::authentication("The request is not signed: sign is required.").with_param("sign")
        })?;
        if let Some(ts) = timestamp {
            if !paygate_domain::validate::within_window(now, ts, TIMESTAMP_WINDOW) {
                return Err(Problem::authentication(format!(
                    "timestamp {ts} is outside the {TIMESTAMP_WINDOW}-second window around the server time {now}."
                ))
                .with_param("timestamp"));
            }
        }
        if let Some(expected) = &cred.token {
            if !token.is_some_and(|t| same(t, expected)) {
                return Err(
                    Problem::authentication("The token does not belong to this open_app_id.").with_param("token")
                );
            }
        }
        let mut computed = sign(fields, cred.secret.expose_secret(), sign_type);
        if face == "saas" {
            computed = computed.to_uppercase();
        }
        if !same(&computed, signature) {
            return Err(Problem::authentication("The signature does not match the request.").with_param("sign"));
        }
        let seen = timestamp.map(|_| SeenSignature { public_id: public_id.into(), sign: signature.into(), at: now });
        Ok((Caller { scope: cred.scope.clone(), app }, cred, seen))
    }

    /// The answer to a request refused after its envelope was checked: its signature is used
    /// up all the same (a replay of it is refused as one, whatever the first answer was).
    pub async fn refused(&self, seen: Option<SeenSignature>, problem: Problem) -> Problem {
        match seen {
            Some(seen) => self.remember(&seen).await.err().unwrap_or(problem),
            None => problem,
        }
    }

    /// Records a signature in the replay cache; a replay is refused.
    async fn remember(&self, seen: &SeenSignature) -> Result<(), Problem> {
        self.forget_old_signatures(seen.at).await?;
        match self.store.remember_signature(seen).await? {
            true => Ok(()),
            false => Err(paygate_store::pos::replayed()),
        }
    }

    /// A signature is remembered for twice the window: one received earlier can no longer have
    /// a timestamp inside the window. One request in `FORGET_EVERY` seconds per node does it.
    async fn forget_old_signatures(&self, now: i64) -> Result<(), Problem> {
        let last = self.signed.forgot_at.load(Ordering::Relaxed);
        if now - last < FORGET_EVERY
            || self.signed.forgot_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return Ok(());
        }
        self.store.forget_signatures(now - 2 * TIMESTAMP_WINDOW).await.map(|_| ())
    }

    /// A signing credential and its app, from this node's cache while it is trusted.
    async fn face_credential(&self, public_id: &str, now: i64) -> Result<Option<(FaceCredential, App)>, Problem> {
        let poisoned = || Problem::internal("credential cache poisoned");
        if let Some((cred, app, until)) = self.signed.credentials.lock().map_err(|_| poisoned())?.get(public_id) {
            if now < *until {
                return Ok(Some((cred.clone(), app.clone())));
            }
        }
        let Some((cred, app)) = self.store.face_credential(public_id).await? else { return Ok(None) };
        let mut cache = self.signed.credentials.lock().map_err(|_| poisoned())?;
        if cache.len() >= CREDENTIAL_CACHE_MAX {
            cache.clear();
        }
        cache.insert(public_id.to_string(), (cred.clone(), app.clone(), now + CREDENTIAL_CACHE_SECONDS));
        Ok(Some((cred, app)))
    }

    /// The rate in force now for a channel's family (0 when none was set).
    async fn fee_rate(&self, scope: &Scope, channel: &str) -> Result<FeeRate, Problem> {
        FeeRate::basis_points("rate_bp", self.store.fee_rate(scope, fees::family(channel)).await?.unwrap_or(0))
    }

    /// The settlement of `charge` as it succeeds now: the app's fee rate for its channel family,
    /// and, for point-of-sale payments, the order's discounts and pre-declared subsidy. The payer
    /// pays the origin minus the discounts, so the origin is the charge plus them.
    pub(crate) async fn settlement_for(&self, scope: &Scope, charge: &Charge) -> Result<Settlement, Problem> {
        let rate = self.fee_rate(scope, &charge.channel).await?;
        Ok(match self.store.pos_meta(scope, &PosRef::ChannelTradeNo(charge.channel_order_no.clone())).await? {
            Some(m) => {
                let origin = charge
                    .amount
                    .checked_add(m.discounts.total())
                    .ok_or_else(|| Problem::internal("discounts overflow the order amount"))?;
                pos::settle(origin, &m.discounts, rate, m.pre_fee_subsidy, m.fee_subsidy_party)
            }
            None => pos::settle(charge.amount, &Discounts::default(), rate, None, None),
        })
    }

    pub async fn set_fee_rate(&self, caller: &Caller, family: &str, rate_bp: i64) -> Result<(), Problem> {
        self.set_fee_rate_audited(caller, family, rate_bp, None).await
    }

    /// With the console's `audit` entry, written by the change's own transaction.
    pub(crate) async fn set_fee_rate_audited(
        &self,
        caller: &Caller,
        family: &str,
        rate_bp: i64,
        audit: Option<&paygate_store::console::AuditEntry>,
    ) -> Result<(), Problem> {
        if !fees::FAMILIES.contains(&family) {
            return Err(Problem::invalid(
                "channel",
                format!("channel must be one of {}, got '{family}'.", fees::FAMILIES.join(", ")),
            ));
        }
        let rate = FeeRate::basis_points("rate_bp", rate_bp)?;
        self.store.set_fee_rate(&caller.scope, family, rate.bp(), audit).await
    }

    /// A scanned-code payment: WeChat/Alipay through their channel (the sandbox in test mode),
    /// a member code through the wallet, all or nothing. `seen` is the envelope's signature
    /// ([`Paygate::check_envelope`]): a wallet payment records it in its own transaction, a
    /// channel payment before anything else, and a payment refused earlier records it alone.
    pub async fn pay_by_code(
        &self,
        caller: &Caller,
        input: CodePayment,
        peer_ip: &str,
        seen: Option<SeenSignature>,
    ) -> Result<PosRecord, Problem> {
        let (order, charge, meta) = match self.code_payment(caller, &input, peer_ip) {
            Ok(planned) => planned,
            Err(problem) => return Err(self.refused(seen, problem).await),
        };
        if meta.auth_code_kind == "member" {
            // One write transaction that answers from what it wrote: no read before or after.
            let now = self.now();
            if seen.is_some() {
                self.forget_old_signatures(now).await?;
            }
            let payment = WalletPayment { order, charge, meta, pay_code: input.auth_code, now, seen };
            return self.store.wallet_payment(&payment).await;
        }
        if let Some(seen) = &seen {
            self.remember(seen).await?;
        }
        if meta.auth_code_kind == "wechat" {
            if let Some(adapter) = self.wechat_adapter(&caller.scope).await? {
                return self.pay_code_at_wechat(caller, adapter, order, charge, meta, &input.auth_code).await;
            }
        }
        if meta.auth_code_kind == "alipay" {
            if let Some(adapter) = self.alipay_adapter(&caller.scope).await? {
                return self.pay_code_at_alipay(caller, adapter, order, charge, meta, &input.auth_code).await;
            }
        }
        self.channel_for(&caller.scope, &charge.channel).await?;
        self.store.insert_pos_payment(&order, &charge, &meta).await?;
        // A channel payment is asked about at once, as a cashier does after a scan; what is
        // still in progress stays PAYING until a later (fresh) query.
        self.pos_record(caller, &PosRef::PayNo(meta.pay_no), true).await
    }

    /// The checked order, charge and record of a scanned-code payment. A wallet payment's are
    /// built paid; the store adds the member and the settlement, which it reads in the
    /// payment's transaction.
    fn code_payment(
        &self,
        caller: &Caller,
        input: &CodePayment,
        peer_ip: &str,
    ) -> Result<(Order, Charge, PosMeta), Problem> {
        let kind = code_kind(&input.auth_code)?;
        let origin = Amount::positive("total_fee", input.total_fee)?;
        input.discounts.check(origin)?;
        let out_trade_no = paygate_domain::validate::merchant_order_no(&input.out_trade_no)
            .map_err(|p| Problem::invalid("out_trade_no", p.message.replace("merchant_order_no", "out_trade_no")))?;
        let attach = paygate_domain::validate::text("attach", &input.attach, 127).or_else(|e| {
            if input.attach.is_empty() {
                Ok(String::new())
            } else {
                Err(e)
            }
        })?;
        let pre_fee_subsidy =
            input.pre_fee_subsidy.map(|v| Amount::non_negative("pre_fee_subsidy_amount", v)).transpose()?;
        if !(input.goods_detail.is_array() || input.goods_detail.is_null()) {
            return Err(Problem::invalid("goods_detail", "goods_detail must be a list."));
        }
        let channel = match kind {
            "wechat" => "wx_pub_scan",
            "alipay" => "alipay_scan",
            _ => "balance",
        };
        let pay_no = format!("6{}", crate::random_digits(17)?);
        let subject = input.subject.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "收银台付款".into());
        let mut order = self.new_order(
            caller,
            OrderInput {
                merchant_order_no: pay_no.clone(),
                amount: origin.fen(),
                coupon_amount: Some(input.discounts.total().fen()),
                currency: "cny".into(),
                body: subject.clone(),
                subject,
                ..Default::default()
            },
            peer_ip,
        )?;
        let meta = PosMeta {
            pay_no,
            out_trade_no,
            attach,
            discounts: input.discounts.clone(),
            pre_fee_subsidy,
            fee_subsidy_party: input.fee_subsidy_party.clone(),
            member_id: None,
            auth_code_kind: kind.to_string(),
            reversed: false,
            goods_detail: if input.goods_detail.is_null() { json!([]) } else { input.goods_detail.clone() },
        };
        // The sandbox decides by the code's last four digits (docs/cashier.md).
        let outcome = match &input.auth_code[input.auth_code.len() - 4..] {
            "0000" => "held",
            "9999" => "abandoned",
            "4444" => "declined",
            _ => "paid",
        };
        let extra = if kind == "member" { json!({}) } else { json!({"sandbox_outcome": outcome}) };
        let channel_order_no = format!("{}{}", order.id, crate::random_digits(6)?);
        let mut charge = pending_charge(
            &order,
            IdKind::Charge.generate(&random32()?),
            channel.to_string(),
            channel_order_no,
            extra,
            json!({"object": "credential"}),
            self.now(),
        );
        if kind == "member" {
            // The wallet moves money itself: paid in the transaction that debits it.
            let now = self.now();
            charge.status = ChargeStatus::Succeeded;
            charge.transaction_no = Some(format!("wlt{}", crate::random_digits(20)?));
            charge.time_paid = Some(now);
            order.status = OrderStatus::Paid;
            order.amount_paid = order.actual_amount;
            order.time_paid = Some(now);
        }
        Ok((order, charge, meta))
    }

    /// A point-of-sale payment; with `fresh`, a pending one is first asked about at its channel.
    pub async fn pos_record(&self, caller: &Caller, by: &PosRef, fresh: bool) -> Result<PosRecord, Problem> {
        let (param, value) = match by {
            PosRef::PayNo(v) => ("pay_no", v),
            PosRef::OutTradeNo(v) => ("out_trade_no", v),
            PosRef::OrderNo(v) => ("order_no", v),
            PosRef::ChannelTradeNo(v) => ("channel_trade_no", v),
        };
        let record = self
            .store
            .pos_record(&caller.scope, by)
            .await?
            .ok_or_else(|| Problem::not_found("order", value).with_param(param))?;
        if fresh && record.charge.status == ChargeStatus::Pending && record.order.status == OrderStatus::Created {
            // At Alipay: asked at once, recorded as its notification would be.
            if self.refresh_alipay_code(&caller.scope, &record.charge).await? {
                let again = self.store.pos_record(&caller.scope, by).await?;
                return again.ok_or_else(|| Problem::internal("record vanished"));
            }
            // At WeChat: asked at once through the poller's path (recorded as its notification would be).
            match self.sync_wechat_charge(&caller.scope, &record.charge, false).await {
                Ok(crate::channel_poller::Synced::NotPolled) => {}
                Ok(_) => {
                    let again = self.store.pos_record(&caller.scope, by).await?;
                    return again.ok_or_else(|| Problem::internal("record vanished"));
                }
                Err(problem) => {
                    // Not known now: the payment is answered as recorded (PAYING); the poller asks again.
                    tracing::warn!(charge = %record.charge.id, %problem, "is_fresh: WeChat Pay query failed");
                    return Ok(record);
                }
            }
            let channel = self.channel_of(&record.charge).await?;
            let result = match channel.query(&record.charge, self.now()).await? {
                PaymentState::Paid => Some(SandboxResult::Success),
                PaymentState::Failed { .. } => Some(SandboxResult::Fail),
                PaymentState::Pending => None,
            };
            if let Some(result) = result {
                // Already settled by a concurrent query or notification: that is fine.
                let _ = self.settle_sandbox(&caller.scope, &record.charge, result).await;
            }
            return self.store.pos_record(&caller.scope, by).await?.ok_or_else(|| Problem::internal("record vanished"));
        }
        Ok(record)
    }

    pub async fn pos_refund(
        &self,
        caller: &Caller,
        by: &PosRef,
        amount: Option<i64>,
        reason: Option<String>,
    ) -> Result<(Refund, PosRecord), Problem> {
        let record = self.pos_record(caller, by, false).await?;
        let input = RefundInput { amount, description: reason, metadata: Value::Null };
        let refund = self.refund(caller, Some(&OrderId::from_stored(record.order.id.clone())), None, input).await?;
        Ok((refund, self.pos_record(caller, by, false).await?))
    }

    /// 撤销: a payment still in progress is closed; a paid one is refunded in full.
    pub async fn pos_reverse(&self, caller: &Caller, by: &PosRef) -> Result<PosRecord, Problem> {
        let record = self.pos_record(caller, by, false).await?;
        match record.order.status {
            OrderStatus::Created => {
                self.cancel_order(caller, &OrderId::from_stored(record.order.id.clone())).await?;
            }
            OrderStatus::Paid if record.order.refund_reserved == Amount::ZERO => {
                let input =
                    RefundInput { amount: None, description: Some("撤销 (reversal)".into()), metadata: Value::Null };
                self.refund(caller, Some(&OrderId::from_stored(record.order.id.clone())), None, input).await?;
            }
            _ => {
                return Err(Problem::new(
                    ProblemKind::InvalidRequest,
                    "not_reversible",
                    format!(
                        "Payment {} is {} and can no longer be reversed; refund it instead.",
                        record.meta.pay_no,
                        record.order.status.as_str()
                    ),
                ))
            }
        }
        self.store.mark_reversed(&caller.scope, &record.order.id).await?;
        self.pos_record(caller, by, false).await
    }

    pub async fn create_member(
        &self,
        caller: &Caller,
        member_no: &str,
        phone: &str,
        name: &str,
    ) -> Result<Member, Problem> {
        let member = Member {
            id: 0,
            created: self.now(),
            member_no: paygate_domain::validate::text("member_no", member_no, 32)?,
            phone: paygate_domain::validate::text("phone", phone, 20)?,
            name: paygate_domain::validate::text("name", name, 64)?,
            pay_code: format!("99{}", crate::random_digits(16)?),
            balance: Amount::ZERO,
        };
        self.store.create_member(&caller.scope, &member).await
    }

    pub async fn member(&self, caller: &Caller, id: &str) -> Result<Member, Problem> {
        let id_num = id.parse::<i64>().map_err(|_| Problem::not_found("member", id))?;
        self.store.member(&caller.scope, id_num).await?.ok_or_else(|| Problem::not_found("member", id))
    }

    pub async fn top_up(&self, caller: &Caller, id: &str, amount: i64) -> Result<Member, Problem> {
        let member = self.member(caller, id).await?;
        let amount = Amount::positive("amount", amount)?;
        let reference = format!("topup_{}", crate::random_alnum(20)?);
        self.store.top_up(&caller.scope, member.id, amount, &reference, self.now()).await
    }

    pub async fn balance_transactions(
        &self,
        caller: &Caller,
        id: &str,
        limit: i64,
    ) -> Result<Vec<BalanceTransaction>, Problem> {
        let member = self.member(caller, id).await?;
        self.store.balance_transactions(&caller.scope, member.id, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_told_apart_by_shape() {
        assert_eq!(code_kind("134567890123456789").unwrap(), "wechat");
        assert_eq!(code_kind("280000000000000000").unwrap(), "alipay");
        assert_eq!(code_kind("990000000000000001").unwrap(), "member");
        for bad in ["", "12345", "190000000000000000", "13456789012345678x"] {
            assert_eq!(code_kind(bad).unwrap_err().param.as_deref(), Some("auth_code"), "{bad}");
        }
    }

    #[test]
    fn both_sign_types_cover_every_field() {
        let mut fields = Map::new();
        fields.insert("open_app_id".into(), json!("kd100020200220"));
        fields.insert("biz_content".into(), json!("{\"pay_no\":\"1\"}"));
        let md5 = sign(&fields, "secret", SignType::Md5);
        assert_eq!(md5, wechat::sign_v2(&fields, "secret").to_lowercase());
        let hmac = sign(&fields, "secret", SignType::HmacSha256);
        assert_eq!(hmac.len(), 64);
        fields.insert("biz_content".into(), json!("{\"pay_no\":\"2\"}"));
        assert_ne!(sign(&fields, "secret", SignType::Md5), md5);
        assert_ne!(sign(&fields, "secret", SignType::HmacSha256), hmac);
    }
}
