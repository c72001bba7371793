//! The Alipay simulator's configuration (a JSON file and/or flags) and its Alipay key.

use paygate_channels::alipay::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Alipay's async-notify retry delays after a failed attempt (8 attempts over about 25 h: 4m, 10m, 10m, 1h, 2h,
/// 6h, 15h).
pub const NOTIFY_SCHEDULE_SECONDS: [u64; 7] = [240, 600, 600, 3600, 7200, 21_600, 54_000];

/// An app (merchant application) the simulator knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub app_id: String,
    /// PEM of the app's RSA public key (SubjectPublicKeyInfo or PKCS#1): verifies the app's requests.
    pub app_public_key_pem: String,
    /// The merchant's Alipay user id (`seller_id`, 2088…); derived from app_id when empty.
    #[serde(default)]
    pub seller_id: String,
}

/// What the simulator is started with. Every field has a default, so `{}` is a valid file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub apps: Vec<AppConfig>,
    /// PEM (PKCS#8) of the Alipay private key that signs responses and notifications; generated when empty.
    pub alipay_private_key_pem: String,
    #[serde(flatten)]
    pub settings: Settings,
}

/// Rules that tests may change at run time (`POST /sim/alipay/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Notification retry delays are divided by this (1 = Alipay's real schedule; 1000 = 4 min becomes 240 ms).
    pub notify_time_scale: u64,
    /// How long a "timeout" fault holds a request before dropping the connection, in milliseconds.
    pub timeout_ms: u64,
    /// Milliseconds one notification attempt may take.
    pub notify_timeout_ms: u64,
    /// The most of a trade (paid less refunded) that may be settled to royalty receivers, in 1/10000 (30 %).
    pub royalty_max_ratio_bps: i64,
    /// Whether a precreated / page / wap trade can be queried or closed before the buyer scans or logs in.
    /// Alipay answers ACQ.TRADE_NOT_EXIST until then (false).
    pub visible_before_scan: bool,
    /// Certificate mode: when set, every request must name this `app_cert_sn` and `alipay_root_cert_sn`
    /// (Alipay refuses a request naming another certificate), and answers carry `alipay_cert_sn`.
    pub app_cert_sn: String,
    pub alipay_root_cert_sn: String,
    pub alipay_cert_sn: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            notify_time_scale: 1,
            timeout_ms: 10_000,
            notify_timeout_ms: 5_000,
            royalty_max_ratio_bps: 3_000,
            visible_before_scan: false,
            app_cert_sn: String::new(),
            alipay_root_cert_sn: String::new(),
            alipay_cert_sn: String::new(),
        }
    }
}

impl SimConfig {
    /// Reads a JSON config file.
    pub fn from_file(path: &str) -> Result<SimConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--config {path}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("--config {path}: {e}"))
    }
}

/// An app with its key parsed.
#[derive(Debug, Clone)]
pub struct App {
    pub config: AppConfig,
    pub public_key: VerifyingKey,
}

impl App {
    pub fn new(mut config: AppConfig) -> Result<App, String> {
        if config.app_id.is_empty() {
            return Err("app: app_id is required".into());
        }
        let public_key = VerifyingKey::from_pem(&config.app_public_key_pem)
            .map_err(|e| format!("app {}: app_public_key_pem: {e}", config.app_id))?;
        if config.seller_id.is_empty() {
            let digits: String = config.app_id.chars().filter(char::is_ascii_digit).collect();
            config.seller_id = format!("2088{:0>12}", &digits[digits.len().saturating_sub(12)..]);
        }
        Ok(App { config, public_key })
    }
}

/// The simulator's Alipay key: signs responses and notifications; its public half is what apps verify with.
pub struct AlipayKey {
    pub signing: SigningKey,
    pub public_key_pem: String,
}

impl AlipayKey {
    pub fn new(private_pem: &str) -> Result<AlipayKey, String> {
        // The WeChat platform key is made the same way; only its id is of no use here.
        let platform = crate::wechat::config::Platform::new(private_pem, "-")
            .map_err(|e| e.replace("platform_private_key_pem", "alipay_private_key_pem"))?;
        Ok(AlipayKey { signing: platform.signing, public_key_pem: platform.public_key_pem })
    }
}
