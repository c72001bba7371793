//! The storage contract. Each method is one atomic unit: a backend runs it in one transaction
//! (PostgreSQL: row locks; SQLite: the single writer), so callers never check-then-act.
//! Every object lookup takes a [`Scope`]; there is no unscoped read of merchant data except
//! [`Store::find_test_charge`] for the operator's `paygate sandbox pay` command.
//!
//! Every method is written once, over [`sql::Tx`], in `transactions.rs` (and in `hserve.rs`,
//! `shares.rs`, `pos.rs` for their traits); a backend crate only says how to run it.

pub mod accounts;
pub mod batches;
pub mod charges;
pub mod coalesce;
pub mod console;
pub mod console_log;
pub mod console_webhooks;
pub mod hserve;
pub mod intents;
pub mod outbox;
pub mod overview;
pub mod polls;
pub mod pos;
pub mod reconcile;
pub mod rows;
pub mod shares;
pub mod sql;
mod transactions;

pub use accounts::{AccountStore, StoredAccount};
use async_trait::async_trait;
pub use charges::{ChargeStore, ReverseOutcome};
pub use console::ConsoleStore;
pub use console_log::ConsoleLogStore;
pub use console_webhooks::DeliveryLogStore;
pub use hserve::{HserveStore, HserveUser, PaymentRecord, RecordMeta, RecordQuery};
pub use intents::ChargeIntentStore;
pub use outbox::history::{MonthsDropped, OutboxHistory};
pub use outbox::{
    Attempt, AttemptRecord, AttemptResult, Claim, DeliveryView, DueDelivery, Endpoint, NewEndpoint, OutboxStats,
};
pub use overview::{Figure, Figures, OverviewStore};
use paygate_domain::events::Event;
use paygate_domain::paging::{CreatedRange, OrderFilter, Page, Paging};
use paygate_domain::{Amount, App, Charge, LatePayment, Mode, Order, Problem, Refund, Scope};
pub use polls::{DuePoll, PollKind, PollStore};
pub use pos::{
    BalanceTransaction, FaceCredential, Member, PosMeta, PosRecord, PosRef, PosStore, SeenSignature, WalletPayment,
};
pub use reconcile::{DayBooks, DiscrepancyFilter, FoundDiscrepancy, NewReconciliation, ReconcileStore};
/// Re-exported so callers reach a credential's secret without naming the crate.
pub use secrecy::{ExposeSecret, SecretString};
pub use shares::{ShareOutcome, ShareRequest, ShareReserved, ShareStore};
pub use sql::{Access, Backend, PoolStats, Tx};

pub type Result<T> = std::result::Result<T, Problem>;

/// An API key as stored: only its keyed hash.
#[derive(Debug, Clone)]
pub struct ApiKeyRecord {
    pub key_hash: Vec<u8>,
    pub mode: Mode,
    /// The last four characters, so an operator can tell keys apart.
    pub hint: String,
}

/// Who a (not expired) API key belongs to.
#[derive(Debug, Clone)]
pub struct KeyOwner {
    pub app: App,
    pub mode: Mode,
    /// When the key stops working (it was rolled); `None`: it does not expire.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// The order is now canceled; these pending charges were closed with it.
    Canceled { order: Order, closed_charges: Vec<Charge> },
    /// The order was not in a cancelable state; here it is as it is.
    NotCancelable(Order),
}

#[derive(Debug, Clone)]
pub struct OpenedCharge {
    pub charge: Charge,
    /// Pending charges of the same order that the new one superseded (now closed).
    pub superseded: Vec<Charge>,
}

#[derive(Debug, Clone)]
pub enum ChargeOutcome {
    /// `notification`: what the channel reported, kept with the charge (WeChat's notify body).
    /// `settlement`: the fee picture computed at success ([`paygate_domain::pos::Settlement`]).
    Succeeded {
        transaction_no: String,
        time_paid: i64,
        notification: Option<serde_json::Value>,
        settlement: Option<serde_json::Value>,
    },
    Failed {
        code: String,
        message: String,
    },
}

// Both variants are returned once per settlement and consumed at once; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SettledCharge {
    /// The charge moved out of pending; the order is as it is after that.
    Settled { charge: Charge, order: Order },
    /// The charge was no longer pending (already settled or closed); nothing changed.
    NotPending(Charge),
}

/// What a refund needs from the caller; the amount is decided in the transaction.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub id: String,
    pub refund_no: String,
    pub order_id: String,
    /// Refund against this charge; `None` = the order's successful charge.
    pub charge_id: Option<String>,
    /// `None` = everything still refundable.
    pub amount: Option<Amount>,
    pub description: String,
    pub metadata: serde_json::Value,
    pub created: i64,
}

#[derive(Debug, Clone)]
pub enum RefundOutcome {
    Succeeded { transaction_no: Option<String>, time_succeed: i64 },
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// First use of the key: the caller runs the request and then completes or releases it.
    Started,
    /// A completed request with the same fingerprint: replay this.
    Replay { status: u16, body: Vec<u8> },
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still running.
    InFlight,
}

/// Idempotency keys are kept (and replayed) this long.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 3600;
/// A started key whose request never completed (a crash) may be taken over after this long.
pub const IDEMPOTENCY_LEASE_SECONDS: i64 = 60;

#[async_trait]
/// The whole contract; the 知晓云 records and profit sharing are their own traits, implemented
/// in their own file by each backend.
pub trait Store:
    HserveStore
    + ShareStore
    + PosStore
    + ChargeStore
    + OutboxHistory
    + AccountStore
    + ChargeIntentStore
    + PollStore
    + ReconcileStore
    + ConsoleStore
    + ConsoleLogStore
    + OverviewStore
    + DeliveryLogStore
    + Send
    + Sync
    + 'static
{
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations; safe to call from several nodes at once.
    async fn migrate(&self) -> Result<()>;
    /// Answers only if the database does: `/readyz`.
    async fn ready(&self) -> Result<()>;
    /// A value created once per database (the API-key hashing secret, the platform signing
    /// key): `fresh` is stored if the name is new, and whatever is stored is returned, so nodes
    /// racing at first start agree.
    async fn setting(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>>;

    /// The app with its keys, its 知晓云 client ids (`(client_id, mode)`) and its signed faces'
    /// credentials, in one transaction.
    async fn create_app(
        &self,
        app: &App,
        keys: &[ApiKeyRecord],
        hserve_clients: &[(String, Mode)],
        credentials: &[FaceCredential],
    ) -> Result<()>;
    async fn count_apps(&self) -> Result<i64>;
    /// Every app, oldest first.
    async fn list_apps(&self) -> Result<Vec<App>>;
    /// The key's owner, unless the key expired at or before `now`.
    async fn find_api_key(&self, key_hash: &[u8], now: i64) -> Result<Option<KeyOwner>>;
    /// In one transaction: the app's keys of `key.mode` that are still valid at
    /// `old_keys_expire` now expire then (an earlier expiry is kept, never extended), and `key`
    /// is added, not expiring. False when the app does not exist. A console roll passes its `audit` entry, written
    /// by the same transaction (`/v1` and the CLI pass `None`).
    async fn roll_api_key(
        &self,
        app_id: &str,
        key: &ApiKeyRecord,
        old_keys_expire: i64,
        audit: Option<&console::AuditEntry>,
    ) -> Result<bool>;
    /// False when the app does not exist. With `audit` (the console's), the entry is written in the same
    /// transaction, its `before` the key replaced as read there under the app's row lock.
    async fn set_app_public_key(
        &self,
        app_id: &str,
        pem: Option<&str>,
        audit: Option<&console::AuditEntry>,
    ) -> Result<bool>;
    async fn set_app_late_payment(&self, app_id: &str, policy: LatePayment) -> Result<bool>;
    async fn app(&self, app_id: &str) -> Result<Option<App>>;

    /// Fails with a `Conflict` naming the existing order when its merchant_order_no is taken.
    async fn insert_order(&self, order: &Order) -> Result<()>;
    async fn order(&self, scope: &Scope, id: &str) -> Result<Option<Order>>;
    /// The order and its charges (newest first) in one query.
    async fn order_view(&self, scope: &Scope, id: &str) -> Result<Option<paygate_domain::objects::OrderView>>;
    async fn list_orders(&self, scope: &Scope, filter: &OrderFilter, paging: &Paging) -> Result<Page<Order>>;
    /// Created → canceled, closing its pending charges, with an `order.canceled` event, in one
    /// transaction. `None` if not found.
    async fn cancel_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<CancelOutcome>>;
    /// Unpaid orders past `time_expire`, any app: the worker's expiry sweep.
    async fn expired_orders(&self, now: i64, limit: i64) -> Result<Vec<(Scope, String)>>;
    /// Created and expired → closed, closing its pending charges, with `order.closed`.
    /// `None` when the order is no longer open (paid or closed meanwhile).
    async fn close_expired_order(&self, scope: &Scope, id: &str, now: i64) -> Result<Option<(Order, Vec<Charge>)>>;

    /// Inserts a pending charge if the order still accepts payment, closing any other pending
    /// charge of the order in the same transaction.
    async fn open_charge(&self, scope: &Scope, charge: &Charge) -> Result<OpenedCharge>;
    async fn charge(&self, scope: &Scope, id: &str) -> Result<Option<Charge>>;
    async fn charges_of_order(&self, scope: &Scope, order_id: &str) -> Result<Vec<Charge>>;
    /// The charges of several orders (a list's page) in one query, each order's newest first.
    async fn charges_of_orders(&self, scope: &Scope, order_ids: &[String]) -> Result<Vec<Charge>>;
    /// By charge id, channel order number or transaction number, within the scope.
    async fn find_charge(&self, scope: &Scope, reference: &str) -> Result<Option<Charge>>;
    /// The same lookup across all apps, test mode only: the operator's sandbox command.
    async fn find_test_charge(&self, reference: &str) -> Result<Option<Charge>>;
    /// Applies a channel's answer as `plan_settlement` decides — paid (with `charge.succeeded`
    /// and `order.succeeded`), paid after close (`order.paid_after_close`), or failed — atomically.
    async fn settle_charge(&self, scope: &Scope, charge_id: &str, outcome: &ChargeOutcome) -> Result<SettledCharge>;

    /// Reserves the refund amount on the order (conditional update) and inserts a pending refund.
    async fn reserve_refund(&self, scope: &Scope, request: &RefundRequest) -> Result<Refund>;
    /// Pending → succeeded (counts it) or pending → failed (releases the reservation).
    async fn finish_refund(&self, scope: &Scope, refund_id: &str, outcome: &RefundOutcome) -> Result<Refund>;
    async fn refund(&self, scope: &Scope, id: &str) -> Result<Option<Refund>>;
    /// Refunds of an order (`charge_id = None`) or of one charge, newest first.
    async fn refunds(
        &self,
        scope: &Scope,
        order_id: Option<&str>,
        charge_id: Option<&str>,
        limit: i64,
    ) -> Result<Page<Refund>>;

    async fn event(&self, scope: &Scope, id: &str) -> Result<Option<Event>>;
    async fn list_events(
        &self,
        scope: &Scope,
        kind: Option<&str>,
        created: &CreatedRange,
        paging: &Paging,
    ) -> Result<Page<Event>>;
    /// With a console `audit` entry, written by the same transaction (its `object_id` and `after` filled here).
    async fn create_endpoint(&self, endpoint: &NewEndpoint, audit: Option<&console::AuditEntry>) -> Result<()>;
    async fn endpoints(&self, scope: &Scope) -> Result<Vec<Endpoint>>;
    /// False when the scope has no such endpoint; its pending deliveries are failed, and `audit` (its `before`
    /// filled here) written, by the same transaction.
    async fn delete_endpoint(&self, scope: &Scope, id: &str, audit: Option<&console::AuditEntry>) -> Result<bool>;
    /// Disables or enables the scope's endpoint in one transaction (disabling fails its pending deliveries); the
    /// endpoint as it now is, `None` when there is none. `audit` (`before`/`after` filled here) is written only
    /// when the state changed.
    async fn set_endpoint_disabled(
        &self,
        scope: &Scope,
        id: &str,
        disabled: bool,
        audit: Option<&console::AuditEntry>,
    ) -> Result<Option<Endpoint>>;
    /// Leases due deliveries as `claim` says (per-endpoint limit included); each goes to one
    /// claimer only, and deliveries of deleted endpoints are dropped, not claimed.
    async fn claim_deliveries(&self, claim: &Claim) -> Result<Vec<DueDelivery>>;
    /// Records finished attempts and each delivery's next state, in one transaction; a verdict
    /// applies only under the attempt's own lease, to a pending delivery of a live endpoint.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<()>;
    /// Orders holding late money that their app wants returned and that is not (fully) being
    /// refunded yet: the worker's safety net for a crash between a late payment and its refund.
    async fn late_payments_to_refund(&self, limit: i64) -> Result<Vec<(Scope, String)>>;
    async fn deliveries(&self, scope: &Scope, event_id: &str) -> Result<Vec<DeliveryView>>;
    /// Queues a new delivery of the event to every enabled endpoint subscribed now; returns how many. `audit`
    /// (its `after` filled here) is written by the same transaction.
    async fn resend_event(
        &self,
        scope: &Scope,
        event_id: &str,
        now: i64,
        audit: Option<&console::AuditEntry>,
    ) -> Result<u64>;

    async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &[u8],
        now: i64,
    ) -> Result<IdempotencyBegin>;
    async fn idempotency_complete(&self, scope: &Scope, key: &str, status: u16, body: &[u8]) -> Result<()>;
    async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()>;

    /// Connection figures for `/metrics` (see [`PoolStats`] for what each backend counts); read
    /// from memory, never from the database.
    async fn pool_stats(&self) -> Result<PoolStats>;
    /// Pending deliveries and the age of the oldest at `now`, from an index.
    async fn outbox_stats(&self, now: i64) -> Result<OutboxStats>;
}

/// What an existing idempotency row means for a new request with `fingerprint` at `now`;
/// `None` means the key may be (re)taken: it expired, or its request was abandoned mid-way.
pub fn idempotency_decision(
    stored_fingerprint: &[u8],
    created: i64,
    status: Option<i64>,
    body: Option<Vec<u8>>,
    fingerprint: &[u8],
    now: i64,
) -> Option<IdempotencyBegin> {
    if now - created >= IDEMPOTENCY_TTL_SECONDS {
        return None;
    }
    if stored_fingerprint != fingerprint {
        return Some(IdempotencyBegin::Mismatch);
    }
    match (status, body) {
        (Some(status), Some(body)) => Some(IdempotencyBegin::Replay { status: status as u16, body }),
        _ if now - created >= IDEMPOTENCY_LEASE_SECONDS => None,
        _ => Some(IdempotencyBegin::InFlight),
    }
}
