//! The use cases every face calls: parse happens in the face, rules in the domain, atomic
//! state changes in the store, money movement in the channels; this crate sequences them.

pub mod accounts;
mod alipay_barcode;
pub mod alipay_notify;
pub mod auth;
pub mod channel_notify;
pub mod channel_poller;
pub mod channel_routing;
pub mod charges;
pub mod console;
pub mod hserve;
pub mod idempotency;
pub mod metrics;
pub mod orders;
pub mod pos;
pub mod reconcile;
pub mod refunds;
pub mod sandbox;
pub mod secret_box;
pub mod share_receivers;
pub mod shares;
pub mod signature;
pub mod throttle;
pub mod webhooks;
pub mod wechat_micropay;
pub mod wechat_notify;

use paygate_channels::Channels;
use paygate_domain::Problem;
use paygate_store::Store;
use std::sync::Arc;

pub use auth::{Caller, NewAppKeys};

/// Where "now" comes from, so tests can move time.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// What the operator decided at start (environment or flags, read once by the binary and
/// passed down): nothing reads the environment per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Webhook endpoints may be loopback, private, link-local … addresses (and names resolving
    /// to them). Off by default: such URLs would let any merchant make paygate call services
    /// that only the host can reach (SSRF). For local development and the test suite.
    pub webhook_allow_private: bool,
    /// Channel accounts' API base URLs may be such addresses too (`PAYGATE_CHANNEL_ALLOW_PRIVATE`): the URL is
    /// the merchant's, so the same SSRF rule applies. For the simulator in development and tests.
    pub channel_allow_private: bool,
    /// This server's public base URL (`PAYGATE_PUBLIC_URL`): channel calls that no request carries a base URL
    /// for (refunds) name their notification URL under it; without it WeChat uses the merchant-platform setting.
    pub public_url: Option<String>,
    /// Extra trusted root certificates (PEM) for channel endpoints (`--channel-ca-file`), beside the public
    /// roots: a simulator's or a private deployment's own CA.
    pub channel_ca_pem: Option<String>,
}

/// What a worker pass over many independent items did. One item's failure is reported here
/// and never stops the pass for the others.
#[derive(Debug, Default)]
pub struct Pass {
    pub done: usize,
    /// The item (an order id) and why it failed; the next pass tries it again.
    pub failed: Vec<(String, Problem)>,
}

/// The application: one per process, shared by every face and request.
pub struct Paygate {
    pub store: Arc<dyn Store>,
    pub channels: Channels,
    pub clock: Arc<dyn Clock>,
    pub policy: Policy,
    /// What `/metrics` shows; the faces and the worker count into it.
    pub metrics: metrics::Metrics,
    pub(crate) keys: auth::KeyHasher,
    /// Failed 知晓云 logins per client id and username (in memory, per node).
    pub(crate) logins: throttle::LoginThrottle,
    /// The signed faces' credential cache and replay-cache housekeeping (per node).
    pub(crate) signed: pos::SignedFaces,
    /// Channel accounts: the master keys and the decrypted-account cache (per node).
    pub(crate) accounts: accounts::AccountKeys,
    /// Channel adapters built from channel accounts, kept as long as their account is (per node).
    pub(crate) adapters: channel_routing::Adapters,
    /// The console's login throttles (per node).
    pub(crate) console: console::ConsoleState,
    /// Set while this node runs a reconciliation: one at a time, since a day's bill is held whole.
    pub(crate) reconciling: std::sync::atomic::AtomicBool,
    platform_key: tokio_free_once::Once<rsa::RsaPrivateKey>,
}

/// A set-once cell (std's `OnceLock` cannot be filled by a fallible async computation).
mod tokio_free_once {
    use std::sync::Mutex;
    pub struct Once<T>(Mutex<Option<T>>);
    impl<T: Clone> Once<T> {
        pub fn new() -> Self {
            Once(Mutex::new(None))
        }
        pub fn get(&self) -> Option<T> {
            self.0.lock().ok().and_then(|v| v.clone())
        }
        pub fn set(&self, value: T) {
            if let Ok(mut v) = self.0.lock() {
                v.get_or_insert(value);
            }
        }
    }
}

impl Paygate {
    /// Migrates the database and loads the per-database key secret.
    pub async fn start(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: Policy) -> Result<Paygate, Problem> {
        store.migrate().await?;
        let secret = store.setting("server_secret", &random32()?).await?;
        let keys = auth::KeyHasher::new(secret);
        let (logins, platform_key) = (throttle::LoginThrottle::default(), tokio_free_once::Once::new());
        let metrics = metrics::Metrics::default();
        let signed = pos::SignedFaces::default();
        let accounts = accounts::AccountKeys::default();
        let channels = Channels::default();
        let adapters = channel_routing::Adapters::default();
        let console = console::ConsoleState::default();
        let reconciling = std::sync::atomic::AtomicBool::new(false);
        Ok(Paygate {
            reconciling,
            store,
            channels,
            clock,
            policy,
            metrics,
            keys,
            logins,
            signed,
            accounts,
            adapters,
            console,
            platform_key,
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

pub(crate) fn random32() -> Result<[u8; 32], Problem> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(Problem::internal)?;
    Ok(bytes)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random characters from `[0-9A-Za-z]`, the shape of 知晓云's trade and transaction numbers
/// (the domain's one unbiased generator, as for ids and keys).
pub(crate) fn random_alnum(n: usize) -> Result<String, Problem> {
    Ok(paygate_domain::ids::random_chars(paygate_domain::ids::BASE62, n, &random32()?))
}

/// `n` random decimal digits.
pub(crate) fn random_digits(n: usize) -> Result<String, Problem> {
    Ok(paygate_domain::ids::random_chars(paygate_domain::ids::DIGITS, n, &random32()?))
}

/// `yymmdd` of a unix time (UTC), for order ids.
pub(crate) fn yymmdd(unix: i64) -> String {
    let (y, m, d, _) = paygate_domain::civil(unix);
    format!("{:02}{:02}{:02}", y % 100, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn yymmdd_is_civil_date() {
        assert_eq!(super::yymmdd(1_502_695_388), "170814");
        assert_eq!(super::yymmdd(0), "700101");
        assert_eq!(super::yymmdd(951_782_400), "000229");
    }
}
