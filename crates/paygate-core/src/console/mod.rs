//! The merchant console's use cases: its users (per app, with a role), password logins (throttled per email and
//! per client address), sessions (only the token's SHA-256 is stored; idle and absolute expiry decided by the
//! store's conditional update), what each role may do, and the audit log. Everything a console page shows or
//! changes goes through the same `Paygate` calls as `/v1`, with a [`Caller`] for the user's app and the page's
//! mode: the console has no SQL and no rules of its own about payments.

pub mod admin;
pub mod overview;
pub mod password;
mod reconcile;
mod sandbox;

use crate::idempotency::Idempotent;
use crate::refunds::RefundInput;
use crate::throttle::{Limit, Throttle, MAX_KEYS};
use crate::{hex, random32, Caller, Paygate};
use paygate_domain::events::Event;
use paygate_domain::ids::OrderId;
use paygate_domain::objects::OrderView;
use paygate_domain::{Mode, Problem, ProblemKind, Refund, Scope};
pub use paygate_store::console::{AuditEntry, AuditRecord, ConsoleSession, ConsoleUser, Role, SessionLimits};
use paygate_store::console::{NewSession, MAX_OBJECTS};
use paygate_store::DeliveryView;
use sha2::{Digest, Sha256};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;

/// A session ends after 30 minutes without a request, and 12 hours after login whatever happens.
pub const SESSION_LIMITS: SessionLimits = SessionLimits { idle: 30 * 60, absolute: 12 * 3600 };
/// Failed logins per email of an app: 5 at once, then one a minute.
pub const PER_EMAIL: Limit = Limit { burst: 5, interval: 60 };
/// Failed logins per client address (any email): 20 at once, then one every 3 seconds. The address is the TCP
/// peer, never a forwarded header a client could write; behind a proxy every user shares the proxy's bucket,
/// which this burst still serves.
pub const PER_ADDRESS: Limit = Limit { burst: 20, interval: 3 };
/// The audit log page's size.
pub const AUDIT_PAGE: i64 = 50;

/// What a console user can be allowed to do; [`Permission::allowed`] is the one table of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Payments, refunds, events: every role.
    Read,
    /// Refund a payment: admin and support.
    Refund,
    /// The audit log (and, later, keys, webhooks, users), resolving a reconciliation's discrepancy: admin only.
    Administer,
    /// Run a day's reconciliation of a channel: admin and support (it only reads the channel's bill and
    /// re-queries what looks missing, through the normal notification path).
    Reconcile,
    /// Complete a test-mode charge at the sandbox: admin and support (it moves no real money, but it changes
    /// a payment's state and sends its events, so viewers, who only read, may not).
    SandboxPay,
}

impl Permission {
    pub fn allowed(self, role: Role) -> bool {
        match self {
            Permission::Read => true,
            Permission::Refund | Permission::Reconcile | Permission::SandboxPay => {
                matches!(role, Role::Admin | Role::Support)
            }
            Permission::Administer => role == Role::Admin,
        }
    }
}

/// Per-node login throttles (as the 知晓云 face's: in memory, bounded, checked before any hashing).
pub(crate) struct ConsoleState {
    emails: Throttle<(String, u64)>,
    addresses: Throttle<IpAddr>,
    hasher: RandomState,
    /// Set while a password is being checked: argon2 (19 MiB, ~20 ms of one core) runs on the request's task,
    /// so one at a time per node keeps sign-ins from many addresses from starving the API.
    hashing: std::sync::atomic::AtomicBool,
    /// The overview's figures for today, reused for a few seconds (per node).
    pub(crate) live: overview::LiveFigures,
}

/// The node's one password check in progress, released when dropped.
struct Hashing<'a>(&'a std::sync::atomic::AtomicBool);

impl<'a> Hashing<'a> {
    fn take(flag: &'a std::sync::atomic::AtomicBool) -> Option<Hashing<'a>> {
        use std::sync::atomic::Ordering;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).ok().map(|_| Hashing(flag))
    }
}

impl Drop for Hashing<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Release);
    }
}

impl Default for ConsoleState {
    fn default() -> Self {
        ConsoleState {
            emails: Throttle::new(PER_EMAIL, MAX_KEYS),
            addresses: Throttle::new(PER_ADDRESS, MAX_KEYS),
            hasher: RandomState::new(),
            hashing: std::sync::atomic::AtomicBool::new(false),
            live: overview::LiveFigures::default(),
        }
    }
}

/// A successful login: the cookie's token (shown to the browser once, stored only hashed) and the session's
/// CSRF token.
pub struct LoggedIn {
    pub token: String,
    pub csrf_token: String,
}

/// A signed-in user acting on one mode of their app.
#[derive(Clone)]
pub struct ConsoleCaller {
    pub user: ConsoleUser,
    /// The same caller `/v1` would have for this app and mode.
    pub caller: Caller,
    pub csrf_token: String,
}

// `Debug` by hand: the CSRF token never reaches a log line.
impl std::fmt::Debug for ConsoleCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleCaller").field("user", &self.user).field("caller", &self.caller).finish()
    }
}

impl ConsoleCaller {
    pub fn may(&self, permission: Permission) -> bool {
        permission.allowed(self.user.role)
    }

    /// A 403: the user is known, the action is not theirs to take.
    pub fn require(&self, permission: Permission) -> Result<(), Problem> {
        if self.may(permission) {
            return Ok(());
        }
        Err(Problem::new(ProblemKind::Http(403), "forbidden", "Your role does not allow this."))
    }

    pub(crate) fn audit(&self, action: &str, object_id: &str, now: i64) -> AuditEntry {
        AuditEntry {
            app_id: self.caller.app.id.clone(),
            mode: self.caller.scope.mode,
            user_id: Some(self.user.id.clone()),
            actor: self.user.email.clone(),
            action: action.into(),
            object_id: object_id.into(),
            before: None,
            after: None,
            created: now,
        }
    }
}

/// An email as stored and looked up: trimmed and lower-cased, one `@`, no spaces or control characters.
pub fn normalize_email(email: &str) -> Result<String, Problem> {
    let email = email.trim().to_lowercase();
    let ok = (3..=254).contains(&email.len())
        && email.matches('@').count() == 1
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(Problem::invalid("email", "Enter an email address such as name@example.com."));
    }
    Ok(email)
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn wrong_login() -> Problem {
    Problem::authentication("The app, email or password is wrong.")
}

impl Paygate {
    /// A console user of `app_id` (the operator's `paygate user create`), audited as the CLI's.
    pub async fn create_console_user(
        &self,
        app_id: &str,
        email: &str,
        role: Role,
        password: &str,
    ) -> Result<ConsoleUser, Problem> {
        let email = normalize_email(email)?;
        password::check_new(password)?;
        let app = self.store.app(app_id).await?.ok_or_else(|| Problem::not_found("app", app_id))?;
        let now = self.now();
        let user = ConsoleUser {
            id: format!("usr_{}", &hex(&random32()?)[..24]),
            app_id: app.id.clone(),
            email,
            role,
            password_hash: password::hash(password)?,
            disabled: false,
            created: now,
        };
        let shown = serde_json::json!({ "id": user.id, "email": user.email, "role": role.as_str() });
        let audit = AuditEntry {
            app_id: app.id,
            mode: Mode::Test,
            user_id: None,
            actor: "cli".into(),
            action: "console_user.create".into(),
            object_id: user.id.clone(),
            before: None,
            after: Some(shown),
            created: now,
        };
        self.store.create_console_user(&user, &audit).await?;
        Ok(user)
    }

    /// Checks a password and opens a session. Refused (429) before any hashing when the email or the client
    /// address has no attempts left; an unknown, disabled or wrong login is the same 401 after the same work.
    pub async fn console_login(
        &self,
        app_id: &str,
        email: &str,
        password: &str,
        client: IpAddr,
    ) -> Result<LoggedIn, Problem> {
        let email = normalize_email(email).map_err(|_| wrong_login())?;
        // The app id is part of a throttle key: only an id's shape is ever kept (anything else is a wrong login).
        if !paygate_domain::ids::IdKind::App.matches(app_id) {
            return Err(wrong_login());
        }
        let now = self.now();
        let state = &self.console;
        let email_key = (app_id.to_string(), state.hasher.hash_one(&email));
        let refused =
            |wait: i64| Problem::too_many_requests(format!("Too many failed logins; try again in {wait} seconds."));
        state.addresses.take(&client, now).map_err(refused)?;
        if let Err(wait) = state.emails.take(&email_key, now) {
            state.addresses.give_back(&client, now);
            return Err(refused(wait));
        }
        // Argon2 runs on this task (paygate-core does not own a runtime): ~20 ms, one at a time per node; the
        // throttles above bound how many one client can cause. A sign-in finding another being checked is asked
        // to try again, its attempt given back.
        let user = self.store.console_user(app_id, &email).await?;
        let stored = user.as_ref().filter(|u| !u.disabled).map(|u| u.password_hash.as_str());
        let Some(hashing) = Hashing::take(&state.hashing) else {
            state.emails.give_back(&email_key, now);
            state.addresses.give_back(&client, now);
            return Err(Problem::too_many_requests("Signing in is busy; try again in a moment.".to_string()));
        };
        let matches = password::verify(password, stored.unwrap_or(password::decoy()));
        drop(hashing);
        let user = match user {
            Some(user) if matches && !user.disabled => user,
            _ => {
                tracing::info!(app = app_id, %client, "console login refused");
                return Err(wrong_login());
            }
        };
        state.emails.reset(&email_key);
        state.addresses.give_back(&client, now);
        let token = hex(&random32()?);
        let csrf_token = hex(&random32()?);
        let session = NewSession {
            token_hash: token_hash(&token),
            user_id: user.id.clone(),
            app_id: user.app_id.clone(),
            csrf_token: csrf_token.clone(),
            created: now,
        };
        let audit = AuditEntry {
            app_id: user.app_id.clone(),
            mode: Mode::Test,
            user_id: Some(user.id.clone()),
            actor: user.email.clone(),
            action: "console.login".into(),
            object_id: user.id.clone(),
            before: None,
            after: Some(serde_json::json!({ "client": client.to_string() })),
            created: now,
        };
        self.store.create_console_session(&session, SESSION_LIMITS, &audit).await?;
        Ok(LoggedIn { token, csrf_token })
    }

    /// The user behind a session cookie, acting on `mode` of their app; `None` when the session is unknown,
    /// expired or its user disabled. Using it keeps it alive (idle expiry).
    pub async fn console_session(&self, token: &str, mode: Mode) -> Result<Option<ConsoleCaller>, Problem> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self.store.touch_console_session(&token_hash(token), self.now(), SESSION_LIMITS).await?
        else {
            return Ok(None);
        };
        let app = self.store.app(&session.user.app_id).await?.ok_or_else(|| Problem::internal("session's app"))?;
        let caller = Caller { scope: Scope { app_id: app.id.clone(), mode }, app };
        Ok(Some(ConsoleCaller { user: session.user, caller, csrf_token: session.csrf_token }))
    }

    /// Ends the session (audited).
    pub async fn console_logout(&self, who: &ConsoleCaller, token: &str) -> Result<(), Problem> {
        let audit = who.audit("console.logout", &who.user.id, self.now());
        self.store.end_console_session(&token_hash(token), &audit).await?;
        Ok(())
    }

    /// Refunds an order (all that is left when `amount` is `None`) for a user allowed to. The audit entry is
    /// written by the reservation's transaction: that is when the refund is decided and the money set aside; the
    /// channel's answer then arrives as the refund's own events. `form_key` (a hidden field made with the form)
    /// makes a double submit one refund: the second gets the first's refund.
    pub async fn console_refund(
        &self,
        who: &ConsoleCaller,
        order_id: &OrderId,
        amount: Option<i64>,
        reason: &str,
        form_key: &str,
    ) -> Result<Refund, Problem> {
        who.require(Permission::Refund)?;
        let well_formed = (16..=64).contains(&form_key.len())
            && form_key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !well_formed {
            return Err(Problem::invalid("form_key", "The form is stale; open the payment again."));
        }
        let key = format!("console:{form_key}");
        let fingerprint = format!("{order_id}\n{amount:?}\n{reason}\n{}", who.user.id);
        let caller = &who.caller;
        match self.idempotency_start(caller, &key, "POST", "console/refund", fingerprint.as_bytes()).await? {
            Idempotent::Replay { body, .. } if body == OUTCOME_UNKNOWN => {
                return Err(Problem::conflict(
                    "refund_outcome_unknown",
                    "The first submit of this form may have made a refund: look at the payment's refunds before \
                     refunding again.",
                ));
            }
            Idempotent::Replay { body, .. } => {
                let id = String::from_utf8(body).map_err(|_| Problem::internal("console refund replay"))?;
                return self.store.refund(&caller.scope, &id).await?.ok_or_else(|| Problem::not_found("refund", &id));
            }
            Idempotent::Run => {}
        }
        let input = RefundInput {
            amount,
            description: Some(reason.to_string()).filter(|r| !r.is_empty()),
            metadata: serde_json::Value::Null,
        };
        let audit = who.audit("refund.create", order_id, self.now());
        let result = self.refund_audited(caller, Some(order_id), None, input, Some(audit)).await;
        // A refund made is kept for replay; a refusal (decided before any money was set aside) frees the key so the
        // corrected form can be sent. Any other failure may have come after the reservation committed (the
        // database away, the channel): the key is kept as "outcome unknown", so a resubmit never refunds twice.
        match &result {
            Ok(refund) => self.idempotency_finish(caller, &key, 200, refund.id.as_bytes()).await?,
            Err(p) if refused_before_reserving(p) => self.store.idempotency_release(&caller.scope, &key).await?,
            Err(_) => self.idempotency_finish(caller, &key, 409, OUTCOME_UNKNOWN).await?,
        }
        result
    }

    /// The order a reference names, whichever id it is: the order id, the merchant's order number, a charge id,
    /// the channel's order number or transaction number (as `/v1` finds charges), the cashier's pay_no and
    /// out_trade_no, the 知晓云 trade_no and transaction_no: each an indexed lookup, the first match wins.
    pub async fn console_find_payment(&self, who: &ConsoleCaller, reference: &str) -> Result<Option<OrderId>, Problem> {
        who.require(Permission::Read)?;
        let reference = reference.trim();
        if reference.is_empty() || reference.len() > 128 || reference.chars().any(char::is_control) {
            return Ok(None);
        }
        let scope = &who.caller.scope;
        if let Ok(id) = OrderId::parse(reference) {
            if self.store.order(scope, &id).await?.is_some() {
                return Ok(Some(id));
            }
        }
        if let Some(id) = self.store.order_id_by_merchant_no(scope, reference).await? {
            return Ok(Some(OrderId::from_stored(&id)));
        }
        if let Some(charge) = self.store.find_charge(scope, reference).await? {
            return Ok(Some(OrderId::from_stored(&charge.order_id)));
        }
        // The cashier's pay_no is its order's merchant_order_no (found above); its out_trade_no is the merchant's
        // own number, which may be reused: the latest payment with it, as the cashier's query answers.
        let by = paygate_store::pos::PosRef::OutTradeNo(reference.to_string());
        if let Some(record) = self.store.pos_record(scope, &by).await? {
            return Ok(Some(OrderId::from_stored(&record.order.id)));
        }
        // Any user's 知晓云 record (None): the console sees the whole app, not one 知晓云 user's records.
        let record = self.store.payment_record(scope, None, reference).await?;
        Ok(record.map(|r| OrderId::from_stored(&r.order.id)))
    }

    /// The events of a payment — its order, charges and refunds, newest first (at most 50) — each with its
    /// deliveries and their attempts, as `/v1/events/{id}/deliveries` shows them.
    pub async fn console_payment_events(
        &self,
        who: &ConsoleCaller,
        order: &OrderView,
        refunds: &[Refund],
    ) -> Result<Vec<(Event, Vec<DeliveryView>)>, Problem> {
        who.require(Permission::Read)?;
        let ids: Vec<String> = std::iter::once(order.order.id.clone())
            .chain(order.charges.iter().map(|c| c.id.clone()))
            .chain(refunds.iter().map(|r| r.id.clone()))
            .take(MAX_OBJECTS)
            .collect();
        let scope = &who.caller.scope;
        let mut out = Vec::new();
        for event in self.store.events_of_objects(scope, &ids, 50).await? {
            let deliveries = self.store.deliveries(scope, &event.id).await?;
            out.push((event, deliveries));
        }
        Ok(out)
    }

    /// The app's audit log, newest first (admins only).
    pub async fn console_audit(
        &self,
        who: &ConsoleCaller,
        before_seq: Option<i64>,
    ) -> Result<Vec<AuditRecord>, Problem> {
        who.require(Permission::Administer)?;
        self.store.console_audit(&who.caller.app.id, before_seq, AUDIT_PAGE).await
    }
}

/// What a console refund form's key holds when its first submit failed after it may have set money aside.
const OUTCOME_UNKNOWN: &[u8] = b"outcome-unknown";

/// Refusals that a refund decides before reserving anything: the form, the order, what is left to refund.
fn refused_before_reserving(p: &Problem) -> bool {
    use paygate_domain::ProblemKind::*;
    matches!(p.kind, InvalidRequest | NotFound | Conflict | Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_permissions() {
        let table = [
            (Role::Admin, [true, true, true]),
            (Role::Support, [true, true, false]),
            (Role::Viewer, [true, false, false]),
        ];
        for (role, expected) in table {
            let got = [Permission::Read, Permission::Refund, Permission::Administer].map(|p| p.allowed(role));
            assert_eq!(got, expected, "{role:?}");
        }
    }

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(normalize_email("  Ann@Example.COM ").unwrap(), "ann@example.com");
        for bad in ["", "ann", "@x", "x@", "a b@c", "a@b@c", "a\u{0}@b"] {
            assert!(normalize_email(bad).is_err(), "{bad:?}");
        }
    }
}
