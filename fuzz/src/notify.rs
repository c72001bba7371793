//! The account the `wechat_notification` target reads notifications for: the ids of the seed v3 transaction
//! (fuzz/corpus/v3_notification/), the fuzz keys, the seed keys' APIv3 and v2 keys.

use crate::{API_V2_KEY, API_V3_KEY, PRIVATE_PEM, PUBLIC_PEM, RESPONSE_SERIAL};
use paygate_channels::wechat_pay::v3::V3Keys;
use paygate_channels::wechat_pay::{NetPolicy, WechatPay, WechatPayConfig};
use paygate_domain::accounts::{WechatAccount, WechatApiVersion};
use paygate_domain::Mode;
use secrecy::SecretString;
use std::sync::OnceLock;
use std::time::Duration;

pub const APPID: &str = "wxd678efh567hg6787";
pub const MCH_ID: &str = "1230000109";
/// "Now" for the 300 s window; the seeds are signed at this time.
pub const NOW: i64 = 1_700_000_000;

/// The v3 keys of the account (built once through the adapter, as paygate builds them).
pub fn account_keys() -> &'static V3Keys {
    static PAY: OnceLock<WechatPay> = OnceLock::new();
    let pay = PAY.get_or_init(|| {
        let secret = |s: &str| Some(SecretString::from(s.to_string()));
        let account = WechatAccount {
            mch_id: MCH_ID.into(),
            appid: APPID.into(),
            api_version: WechatApiVersion::V3,
            api_v2_key: secret(API_V2_KEY),
            api_v3_key: secret(std::str::from_utf8(API_V3_KEY).expect("the APIv3 key is text")),
            merchant_serial_no: Some("FUZZ".into()),
            merchant_private_key: secret(PRIVATE_PEM),
            platform_certificate: None,
            wechatpay_public_key_id: Some(RESPONSE_SERIAL.into()),
            wechatpay_public_key: Some(PUBLIC_PEM.into()),
            client_certificate: None,
            client_key: None,
            sub_mch_id: None,
            sub_appid: None,
            api_base_url: "https://api.mch.weixin.qq.com".into(),
        };
        let net = NetPolicy {
            allow_private: false,
            is_public: |_| true,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        let config = WechatPayConfig::from_account(&account, "app_fuzz", Mode::Test, net).expect("the fuzz account");
        WechatPay::new(config)
    });
    pay.v3_keys().expect("a v3 account")
}
