//! The simulator's configuration (a JSON file and/or flags) and its platform key.

use paygate_channels::wechat::v3::{SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// WeChat's notification retry delays, in seconds after the first attempt fails.
pub const NOTIFY_SCHEDULE_SECONDS: [u64; 9] = [15, 15, 30, 180, 1800, 1800, 1800, 1800, 3600];

/// A merchant the simulator knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfig {
    pub mch_id: String,
    pub appid: String,
    /// The v2 API key (MD5 / HMAC-SHA256 signatures, `req_info`).
    pub api_key: String,
    /// The 32-byte APIv3 key (notification resources).
    #[serde(default)]
    pub api_v3_key: String,
    /// The serial of the merchant's API certificate (v3 `serial_no`).
    #[serde(default)]
    pub merchant_serial: String,
    /// PEM of the merchant's RSA public key, to verify v3 request signatures.
    #[serde(default)]
    pub merchant_public_key_pem: String,
    /// Where refund notifications go when a refund request names no notify_url (the merchant platform setting).
    #[serde(default)]
    pub refund_notify_url: String,
}

/// What the simulator is started with. Every field has a default, so `{}` is a valid file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimConfig {
    pub merchants: Vec<MerchantConfig>,
    /// PEM (PKCS#8) of the platform's RSA private key; generated at start when empty.
    pub platform_private_key_pem: String,
    /// The "WeChat Pay public key" id responses are signed under; derived from the key when empty.
    pub public_key_id: String,
    /// Sign v3 answers and callbacks under the platform certificate's serial (WeChat's older mode, for merchants
    /// without the WeChat Pay public key), not the public key id.
    pub platform_certificates: bool,
    /// Serve HTTPS; with `client_ca_pem`, /secapi/ requires a client certificate that CA signed (mutual TLS).
    pub tls: Option<TlsConfig>,
    #[serde(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the simulator's server certificate.
    pub cert_pem: String,
    /// PEM private key of that certificate.
    pub key_pem: String,
    /// PEM of the CA that signs merchants' API (client) certificates.
    #[serde(default)]
    pub client_ca_pem: Option<String>,
}

/// Rules that tests may change at run time (`POST /sim/wechat/settings`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `closeorder` is refused until an order is this old (WeChat: 300 s).
    pub close_min_age_seconds: i64,
    /// Notification retry delays are divided by this (1 = WeChat's real schedule; 1000 = milliseconds).
    pub notify_time_scale: u64,
    /// Refunds stay PROCESSING until settled through `/sim/wechat/refunds/settle` (otherwise they succeed at once).
    pub hold_refunds: bool,
    /// How long a "timeout" fault holds a request before dropping the connection, in milliseconds.
    pub timeout_ms: u64,
    /// Milliseconds one notification attempt may take.
    pub notify_timeout_ms: u64,
    /// A "reorder" fault holds a notification until the next one is sent, or this many milliseconds.
    pub reorder_hold_ms: u64,
    /// The most of an order (paid less refunded) that may be shared, in 1/10000 (WeChat's default: 30 %).
    pub share_max_ratio_bps: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            close_min_age_seconds: 300,
            notify_time_scale: 1,
            hold_refunds: false,
            timeout_ms: 10_000,
            notify_timeout_ms: 5_000,
            reorder_hold_ms: 2_000,
            share_max_ratio_bps: 3_000,
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

/// A merchant with its key parsed.
#[derive(Debug, Clone)]
pub struct Merchant {
    pub config: MerchantConfig,
    pub public_key: Option<VerifyingKey>,
}

impl Merchant {
    pub fn new(config: MerchantConfig) -> Result<Merchant, String> {
        let field = |name: &str, value: &str| {
            if value.is_empty() {
                Err(format!("merchant {}: {name} is required", config.mch_id))
            } else {
                Ok(())
            }
        };
        field("mch_id", &config.mch_id)?;
        field("appid", &config.appid)?;
        field("api_key", &config.api_key)?;
        if !config.api_v3_key.is_empty() && config.api_v3_key.len() != 32 {
            return Err(format!("merchant {}: api_v3_key must be 32 bytes", config.mch_id));
        }
        let public_key = if config.merchant_public_key_pem.is_empty() {
            None
        } else {
            Some(
                VerifyingKey::from_pem(&config.merchant_public_key_pem)
                    .map_err(|e| format!("merchant {}: merchant_public_key_pem: {e}", config.mch_id))?,
            )
        };
        Ok(Merchant { config, public_key })
    }
}

/// The simulator's platform key: signs v3 responses and callbacks.
pub struct Platform {
    pub signing: SigningKey,
    pub public_key_pem: String,
    pub public_key_id: String,
    /// The same key as a self-signed platform certificate (`GET /v3/certificates`).
    pub certificate: super::certificate::PlatformCertificate,
    /// What merchants encrypt sensitive fields for (RSA-OAEP), opened here.
    pub private: rsa::RsaPrivateKey,
}

impl Platform {
    /// From the configured key, or a fresh 2048-bit key.
    pub fn new(private_pem: &str, public_key_id: &str) -> Result<Platform, String> {
        let key = if private_pem.is_empty() {
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| format!("platform key: {e}"))?
        } else {
            rsa::RsaPrivateKey::from_pkcs8_pem(private_pem).map_err(|e| format!("platform_private_key_pem: {e}"))?
        };
        let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| format!("platform key: {e}"))?;
        let public = key.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| format!("platform key: {e}"))?;
        let signing = SigningKey::from_pem(&private).map_err(|e| format!("platform key: {e}"))?;
        let id = if public_key_id.is_empty() {
            let digest = Sha256::digest(public.as_bytes());
            let digits: String = digest.iter().take(12).map(|b| format!("{:02}", b % 100)).collect();
            format!("PUB_KEY_ID_01{digits}")
        } else {
            public_key_id.to_string()
        };
        let certificate = super::certificate::PlatformCertificate::self_signed(&key)?;
        Ok(Platform { signing, public_key_pem: public, public_key_id: id, certificate, private: key })
    }
}
