//! The 知晓云 (MinCloud `hserve`) use cases: the app found by its client id, end users with
//! sessions, payments made by an end user, their records, and the server-side refund. The face
//! parses and renders; the money paths are the core's own (orders, charges, refunds).

use crate::orders::OrderInput;
use crate::refunds::RefundInput;
use crate::{hex, random32, random_alnum, Caller, Paygate};
use hmac::{Hmac, Mac};
use paygate_channels::wechat;
use paygate_channels::SandboxWechat;
use paygate_domain::ids::OrderId;
use paygate_domain::{Amount, Problem, ProblemKind, Refund, Scope};
use paygate_store::{HserveUser, PaymentRecord, RecordMeta, RecordQuery};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How long a session token is valid: 30 days, 知晓云's default.
pub const SESSION_SECONDS: i64 = 30 * 24 * 3600;
const PBKDF2_ROUNDS: u32 = 60_000;

/// Who is calling the hserve face.
#[derive(Debug, Clone)]
pub enum HserveCaller {
    /// An end user with a session: sees and acts only on their own records.
    User { caller: Caller, user_id: i64 },
    /// The app's server (cloud function) with its secret key: sees the whole app.
    Server(Caller),
}

impl HserveCaller {
    pub fn caller(&self) -> &Caller {
        match self {
            HserveCaller::User { caller, .. } | HserveCaller::Server(caller) => caller,
        }
    }
    pub fn user(&self) -> Option<i64> {
        match self {
            HserveCaller::User { user_id, .. } => Some(*user_id),
            HserveCaller::Server(_) => None,
        }
    }
    fn server(&self) -> Result<&Caller, Problem> {
        match self {
            HserveCaller::Server(caller) => Ok(caller),
            HserveCaller::User { .. } => Err(Problem::new(
                ProblemKind::Authentication,
                "server_key_required",
                "Refunds and profit sharing are server operations: call them with the app's secret key \
                 (Authorization: Bearer sk_…), not a user session.",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_in: i64,
    pub user: HserveUser,
}

/// A payment as the SDK's `payWithWechat/payWithAlipay/payWithQQ` sends it.
#[derive(Debug, Clone)]
pub struct PaymentInput {
    pub gateway_type: String,
    /// Yuan, as the decimal text the client sent.
    pub total_cost: String,
    pub merchandise_description: String,
    pub merchandise_schema_id: Option<i64>,
    pub merchandise_record_id: Option<String>,
    pub merchandise_snapshot: Value,
    pub profit_sharing: bool,
    /// The payer's openid under the WeChat account's appid: what `weixin_tenpay_js` (JSAPI) through the real
    /// WeChat Pay adapter needs. 知晓云 takes it from the user's WeChat login; users here have no WeChat login, so
    /// the client sends it (`openid` in the order request).
    pub openid: Option<String>,
}

/// A created payment and what the client needs to pay it.
#[derive(Debug, Clone)]
pub struct CreatedPayment {
    pub record: PaymentRecord,
    /// The sandbox page the payer opens (QR content, redirect URL).
    pub pay_url: String,
    /// WeChat JSAPI parameters for `getBrandWCPayRequest` (weixin_tenpay_js only).
    pub jsapi: Option<Value>,
}

/// How `BaaS.refund` names the order.
#[derive(Debug, Clone)]
pub enum RecordRef {
    Id(i64),
    TradeNo(String),
    TransactionNo(String),
}

/// The gateway families records show and are filtered by; a filter also takes an exact type.
pub const GATEWAY_FAMILIES: &[&str] = &["weixin_tenpay", "alipay", "qpay"];

/// Whether a `gateway_type` filter value names something a record can have.
pub fn is_gateway_filter(value: &str) -> bool {
    GATEWAY_FAMILIES.contains(&value) || gateway(value).is_ok()
}

/// Gateway type → (family shown and filtered, Ping++ channel the core pays through).
pub fn gateway(gateway_type: &str) -> Result<(&'static str, &'static str), Problem> {
    Ok(match gateway_type {
        "weixin_tenpay_js" => ("weixin_tenpay", "wx_pub"),
        "weixin_tenpay_native" => ("weixin_tenpay", "wx_pub_qr"),
        "weixin_tenpay_wap" => ("weixin_tenpay", "wx_wap"),
        "alipay_wap" => ("alipay", "alipay_wap"),
        "alipay_page" => ("alipay", "alipay_pc_direct"),
        "qpay_native" => ("qpay", "qpay"),
        other => {
            return Err(Problem::invalid(
                "gateway_type",
                format!(
                    "gateway_type must be one of weixin_tenpay_js, weixin_tenpay_native, weixin_tenpay_wap, \
                     alipay_wap, alipay_page, qpay_native; got '{other}'."
                ),
            ))
        }
    })
}

impl Paygate {
    /// The app (and mode) a 知晓云 client id belongs to.
    pub async fn hserve_client(&self, client_id: &str) -> Result<Caller, Problem> {
        let (app, mode) = self
            .store
            .hserve_client(client_id)
            .await?
            .ok_or_else(|| Problem::authentication("Unknown X-Hydrogen-Client-ID."))?;
        Ok(Caller { scope: Scope { app_id: app.id.clone(), mode }, app })
    }

    /// `Authorization: Hydrogen-r1 <session token>` (or the app's secret key for server calls),
    /// checked against the client id when one is sent.
    pub async fn hserve_authenticate(&self, client_id: Option<&str>, token: &str) -> Result<HserveCaller, Problem> {
        let client = match client_id {
            Some(id) => Some(self.hserve_client(id).await?),
            None => None,
        };
        let belongs = |scope: &Scope| client.as_ref().is_none_or(|c| &c.scope == scope);
        if token.starts_with("sk_") {
            let caller = self.authenticate(token).await?;
            if !belongs(&caller.scope) {
                return Err(Problem::authentication(
                    "The secret key does not belong to this client id's app and mode.",
                ));
            }
            return Ok(HserveCaller::Server(caller));
        }
        let (scope, user_id) = self
            .store
            .hserve_session(&self.keys.hash(token), self.now())
            .await?
            .filter(|(scope, _)| belongs(scope))
            .ok_or_else(|| Problem::authentication("The session is invalid or has expired; log in again."))?;
        let app = self.store.app(&scope.app_id).await?.ok_or_else(|| Problem::internal("session without app"))?;
        Ok(HserveCaller::User { caller: Caller { app, scope }, user_id })
    }

    pub async fn hserve_register(&self, client: &Caller, username: &str, password: &str) -> Result<Session, Problem> {
        let username = paygate_domain::validate::text("username", username, 64)?;
        if password.chars().count() < 6 || password.len() > 128 {
            return Err(Problem::invalid("password", "password must be 6 to 128 characters."));
        }
        let hash = hash_password(password)?;
        let user =
            self.store.create_hserve_user(&client.scope, Some(&username), Some(&hash), false, self.now()).await?;
        self.new_session(&client.scope, user).await
    }

    /// Throttled per client id and per username (see [`crate::throttle`]): a refused attempt
    /// costs no password hash, and a success clears the username's earlier typos.
    pub async fn hserve_login(&self, client: &Caller, username: &str, password: &str) -> Result<Session, Problem> {
        let wrong =
            || Problem::new(ProblemKind::Authentication, "invalid_credentials", "Invalid username or password.");
        let attempt = self.logins.begin(&client.scope, username, self.now())?;
        let user = self.store.hserve_user_by_name(&client.scope, username).await;
        // Hash even for an unknown user, so response time does not reveal which names exist.
        let user = user.map(|user| {
            let unknown = || format!("pbkdf2-sha256${PBKDF2_ROUNDS}$00$00");
            let record = user.as_ref().and_then(|u| u.password_hash.clone()).unwrap_or_else(unknown);
            user.filter(|_| verify_password(password, &record))
        });
        // An error of ours (the database) is not the caller's failure.
        self.logins.finish(attempt, !matches!(user, Ok(None)), self.now());
        match user? {
            Some(user) => self.new_session(&client.scope, user).await,
            None => Err(wrong()),
        }
    }

    pub async fn hserve_anonymous_login(&self, client: &Caller) -> Result<Session, Problem> {
        let user = self.store.create_hserve_user(&client.scope, None, None, true, self.now()).await?;
        self.new_session(&client.scope, user).await
    }

    pub async fn hserve_logout(&self, token: &str) -> Result<(), Problem> {
        self.store.delete_hserve_session(&self.keys.hash(token)).await?;
        Ok(())
    }

    async fn new_session(&self, scope: &Scope, user: HserveUser) -> Result<Session, Problem> {
        let token = hex(&random32()?);
        self.store.create_hserve_session(&self.keys.hash(&token), scope, user.id, self.now() + SESSION_SECONDS).await?;
        Ok(Session { token, expires_in: SESSION_SECONDS, user })
    }

    /// A user reads only their own profile; the server reads any of the app's users.
    pub async fn hserve_user(&self, caller: &HserveCaller, id: i64) -> Result<HserveUser, Problem> {
        if caller.user().is_some_and(|u| u != id) {
            return Err(Problem::not_found("user", &id.to_string()));
        }
        self.store
            .hserve_user(&caller.caller().scope, id)
            .await?
            .ok_or_else(|| Problem::not_found("user", &id.to_string()))
    }

    /// Creates the order and opens its charge at the channel, stored in one transaction.
    pub async fn hserve_pay(
        &self,
        caller: &HserveCaller,
        input: PaymentInput,
        base_url: &str,
        peer_ip: &str,
    ) -> Result<CreatedPayment, Problem> {
        let (family, channel) = gateway(&input.gateway_type)?;
        if input.profit_sharing && family != "weixin_tenpay" {
            return Err(Problem::invalid(
                "profit_sharing",
                "profit_sharing applies to WeChat payments (weixin_tenpay_*) only.",
            ));
        }
        let amount = Amount::parse_yuan("total_cost", &input.total_cost)?;
        // May be empty (seed 000's example is); otherwise the rules of any text, naming the field.
        let description = match input.merchandise_description.trim() {
            "" => String::new(),
            _ => paygate_domain::validate::text("merchandise_description", &input.merchandise_description, 128)?,
        };
        if let Some(r) = &input.merchandise_record_id {
            paygate_domain::validate::text("merchandise_record_id", r, 64)?;
        }
        let snapshot = match &input.merchandise_snapshot {
            Value::Null => "{}".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if snapshot.len() > 8192 {
            return Err(Problem::invalid("merchandise_snapshot", "merchandise_snapshot must be at most 8 KiB."));
        }
        let trade_no = random_alnum(32)?;
        let client = caller.caller();
        let subject: String =
            if description.is_empty() { "知晓云支付".to_string() } else { description.chars().take(32).collect() };
        let order = self.new_order(
            client,
            OrderInput {
                merchant_order_no: trade_no.clone(),
                amount: amount.fen(),
                currency: "cny".into(),
                subject,
                body: if description.is_empty() { "知晓云支付".into() } else { description.clone() },
                uid: caller.user().map(|u| u.to_string()),
                profit_sharing: input.profit_sharing,
                ..Default::default()
            },
            peer_ip,
        )?;
        let routed = self.route_channel(&client.scope, channel).await?;
        let real_wechat = matches!(routed, crate::channel_routing::Routed::Wechat(_));
        let extra = match (input.gateway_type.as_str(), real_wechat) {
            ("weixin_tenpay_js", true) => json!({"open_id": payer_openid(input.openid.as_deref())?}),
            _ => Value::Null,
        };
        let opening = crate::channel_routing::Opening {
            channel: channel.to_string(),
            channel_order_no: trade_no.clone(),
            extra,
            base_url: base_url.to_string(),
        };
        // A real channel is called only once the intent is recorded (prepare → record → complete).
        let charge = self.prepare_charge(&routed, &order, opening).await?;
        let meta = RecordMeta {
            transaction_no: random_alnum(32)?,
            trade_no,
            gateway_type: family.to_string(),
            trade_type: input.gateway_type.clone(),
            created_by: caller.user(),
            merchandise_description: description,
            merchandise_schema_id: input.merchandise_schema_id,
            merchandise_record_id: input.merchandise_record_id,
            merchandise_snapshot: snapshot,
            ip_address: order.client_ip.clone(),
        };
        let id = self.store.insert_payment_record(&order, &charge, &meta).await?;
        let charge = self.complete_charge(&client.scope, &routed, charge, base_url).await?;
        let pay_url = charge.credential.get(channel).and_then(Value::as_str).unwrap_or_default().to_string();
        // Through WeChat Pay, the parameters WeChat's prepay_id was signed into; the sandbox makes its own.
        let real_jsapi = charge.credential.get(channel).filter(|p| real_wechat && p.is_object()).cloned();
        let jsapi = (input.gateway_type == "weixin_tenpay_js")
            .then(|| real_jsapi.unwrap_or_else(|| jsapi_parameters(&order.app_id, &charge.id, self.now())));
        // Read back: the stored record is what every later read shows (creator's name, times).
        let record = self.hserve_record(caller, &id.to_string()).await?;
        Ok(CreatedPayment { record, pay_url, jsapi })
    }

    pub async fn hserve_records(
        &self,
        caller: &HserveCaller,
        query: &RecordQuery,
    ) -> Result<(Vec<PaymentRecord>, i64), Problem> {
        self.store.payment_records(&caller.caller().scope, caller.user(), query).await
    }

    /// By 知晓云 transaction number, trade number or record id; a user sees only their own.
    pub async fn hserve_record(&self, caller: &HserveCaller, reference: &str) -> Result<PaymentRecord, Problem> {
        self.store
            .payment_record(&caller.caller().scope, caller.user(), reference)
            .await?
            .ok_or_else(|| Problem::not_found("order", reference))
    }

    /// `BaaS.refund`: by order id, trade_no or transaction_no; everything left by default.
    pub async fn hserve_refund(
        &self,
        caller: &HserveCaller,
        by: RecordRef,
        amount: Option<Amount>,
        memo: Option<String>,
    ) -> Result<(Refund, PaymentRecord), Problem> {
        let server = caller.server()?;
        let record = self.record_by(caller, &by).await?;
        let input = RefundInput { amount: amount.map(Amount::fen), description: memo, metadata: Value::Null };
        let refund = self.refund(server, Some(&OrderId::from_stored(record.order.id.clone())), None, input).await?;
        let record = self.hserve_record(caller, &record.id.to_string()).await?;
        Ok((refund, record))
    }

    pub async fn record_by(&self, caller: &HserveCaller, by: &RecordRef) -> Result<PaymentRecord, Problem> {
        let (param, reference) = match by {
            RecordRef::Id(id) => ("order_id", id.to_string()),
            RecordRef::TradeNo(t) => ("trade_no", t.clone()),
            RecordRef::TransactionNo(t) => ("transaction_no", t.clone()),
        };
        let record = self.hserve_record(caller, &reference).await.map_err(|p| p.with_param(param))?;
        let matches = match by {
            RecordRef::Id(id) => record.id == *id,
            RecordRef::TradeNo(t) => &record.meta.trade_no == t,
            RecordRef::TransactionNo(t) => &record.meta.transaction_no == t,
        };
        if !matches {
            return Err(Problem::not_found("order", &reference).with_param(param));
        }
        Ok(record)
    }

    /// A server-side share of a record named by trade_no, through the native sharing core.
    /// `appid` is the WeChat app the merchant believes it shares from: it must be the one the
    /// payment was made with (in test mode, the app's sandbox WeChat identity).
    pub async fn hserve_share(
        &self,
        caller: &HserveCaller,
        trade_no: &str,
        appid: Option<&str>,
        input: crate::shares::ShareInput,
    ) -> Result<(paygate_domain::shares::ProfitShare, PaymentRecord), Problem> {
        let server = caller.server()?.clone();
        if input.kind != paygate_domain::shares::ShareKind::Alipay {
            let expected = SandboxWechat::of(&server.app.id).appid;
            match appid {
                None => return Err(Problem::missing("appid")),
                Some(a) if a != expected => {
                    return Err(Problem::invalid(
                        "appid",
                        format!(
                            "appid '{a}' is not the WeChat app this merchant's payments are made with ({expected})."
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        let record = self.record_by(caller, &RecordRef::TradeNo(trade_no.to_string())).await?;
        let share = self.share_order(&server, &OrderId::from_stored(record.order.id.clone()), input).await?;
        Ok((share, record))
    }

    pub fn hserve_server(&self, caller: &HserveCaller) -> Result<Caller, Problem> {
        caller.server().cloned()
    }
}

/// The parameters `WeixinJSBridge.invoke('getBrandWCPayRequest', …)` takes, signed (MD5) with
/// the app's sandbox WeChat key.
/// The payer's openid for a JSAPI payment: required, and as WeChat writes openids.
fn payer_openid(openid: Option<&str>) -> Result<&str, Problem> {
    let openid = openid.map(str::trim).filter(|o| !o.is_empty()).ok_or_else(|| {
        Problem::invalid(
            "openid",
            "weixin_tenpay_js pays through WeChat Pay JSAPI, which needs the payer's openid under the WeChat \
             account's appid: send openid with the order (users here have no WeChat login to take it from).",
        )
    })?;
    if openid.len() > 128 || !openid.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) {
        return Err(Problem::invalid("openid", "openid must be 1 to 128 letters, digits, '_' or '-'."));
    }
    Ok(openid)
}

fn jsapi_parameters(app_id: &str, charge_id: &str, now: i64) -> Value {
    let id = SandboxWechat::of(app_id);
    let mut fields = Map::new();
    fields.insert("appId".into(), json!(id.appid));
    fields.insert("timeStamp".into(), json!(now.to_string()));
    fields.insert("nonceStr".into(), json!(&charge_id[3..]));
    fields.insert("package".into(), json!(format!("prepay_id=wx{}", &charge_id[3..])));
    fields.insert("signType".into(), json!("MD5"));
    let sign = wechat::sign_v2(&fields, &id.key);
    fields.insert("paySign".into(), json!(sign));
    Value::Object(fields)
}

/// `pbkdf2-sha256$ROUNDS$SALT$HASH` (hex): passwords are chosen by people, so unlike API keys
/// they get a slow, salted hash.
fn hash_password(password: &str) -> Result<String, Problem> {
    let salt = random32()?;
    let hash = pbkdf2(password.as_bytes(), &salt[..16], PBKDF2_ROUNDS);
    Ok(format!("pbkdf2-sha256${PBKDF2_ROUNDS}${}${}", hex(&salt[..16]), hex(&hash)))
}

fn verify_password(password: &str, record: &str) -> bool {
    let parts: Vec<&str> = record.split('$').collect();
    let [_, rounds, salt, hash] = parts.as_slice() else { return false };
    let (Ok(rounds), Some(salt), Some(hash)) = (rounds.parse::<u32>(), unhex(salt), unhex(hash)) else { return false };
    let computed = pbkdf2(password.as_bytes(), &salt, rounds.min(1_000_000));
    computed.len() == hash.len() && bool::from(computed.ct_eq(&hash))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect()
}

/// PBKDF2-HMAC-SHA256, one 32-byte block (RFC 8018 §5.2).
fn pbkdf2(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 32] {
    let mac = Hmac::<Sha256>::new_from_slice(password).expect("HMAC takes any key length");
    let mut u = {
        let mut m = mac.clone();
        m.update(salt);
        m.update(&1u32.to_be_bytes());
        m.finalize().into_bytes()
    };
    let mut out: [u8; 32] = u.into();
    for _ in 1..rounds {
        let mut m = mac.clone();
        m.update(&u);
        u = m.finalize().into_bytes();
        out.iter_mut().zip(u.iter()).for_each(|(o, x)| *o ^= x);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let got = super::pbkdf2(b"passwd", b"salt", 1);
        assert_eq!(super::hex(&got), "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc");
        let record = super::hash_password("secret-1").unwrap();
        assert!(super::verify_password("secret-1", &record));
        assert!(!super::verify_password("secret-2", &record));
    }
}
