//! `/v1/channel_accounts`: the merchant's WeChat Pay / Alipay credentials for the key's app and
//! mode. A PUT merges (a field sent replaces, `null` removes, an absent one — a secret omitted —
//! is kept); answers show identifiers by their last four characters and secrets, keys and
//! certificates only as `has_<field>`, never a value.

use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::accounts::AccountView;
use paygate_core::{Caller, Paygate};
use paygate_domain::accounts::{AccountPatch, Provider};
use paygate_domain::objects::{to_vec, List};
use serde::Serialize;
use serde_json::{Map, Value};

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["channel_accounts"] if m == Method::GET => {
            async {
                let data: Vec<Map<String, Value>> =
                    app.channel_account_views(caller).await?.iter().map(AccountView::to_json).collect();
                ok(&List::new("/v1/channel_accounts", false, data))
            }
            .await
        }
        ["channel_accounts", provider] if m == Method::PUT => {
            async {
                let provider = Provider::parse(provider)?;
                let body: Map<String, Value> = req.body_as()?;
                let patch = AccountPatch::from_json(provider, &body)?;
                ok(&app.set_channel_account(caller, provider, patch).await?.to_json())
            }
            .await
        }
        ["channel_accounts", provider] if m == Method::GET => {
            async { ok(&app.channel_account_view(caller, Provider::parse(provider)?).await?.to_json()) }.await
        }
        ["channel_accounts", provider] if m == Method::DELETE => {
            async {
                let provider = Provider::parse(provider)?;
                app.remove_channel_account(caller, provider).await?;
                ok(&DeletedAccount { object: "channel_account", provider: provider.as_str(), deleted: true })
            }
            .await
        }
        _ => return None,
    })
}

fn ok(object: &impl Serialize) -> Answer {
    Ok((StatusCode::OK, to_vec(object)))
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DeletedChannelAccount))]
pub(crate) struct DeletedAccount {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "channel_account"))]
    pub object: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "wechat"))]
    pub provider: &'static str,
    pub deleted: bool,
}

/// What `PUT /v1/channel_accounts/{provider}` takes (described for the document; the handler
/// reads the body as a map so each provider's own fields are checked by name). Every field is a
/// string; `null` removes it; an absent field keeps what is stored. Secrets (`api_v2_key`,
/// `api_v3_key`, `merchant_private_key`, `client_key`, `app_private_key`, `app_auth_token`) are
/// stored encrypted and never shown again.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = ChannelAccountBody)]
#[allow(dead_code)]
pub(crate) struct ChannelAccountBody {
    /// wechat: the merchant number.
    mch_id: Option<String>,
    /// wechat: the AppID payments are made for.
    appid: Option<String>,
    /// wechat: `v2` or `v3` (default `v3`).
    api_version: Option<String>,
    /// wechat (secret): 32 letters and digits; required for v2.
    api_v2_key: Option<String>,
    /// wechat (secret): 32 bytes; required for v3.
    api_v3_key: Option<String>,
    /// wechat: the merchant certificate's serial number (v3).
    merchant_serial_no: Option<String>,
    /// wechat (secret): PEM RSA private key, PKCS#8 or PKCS#1 (v3).
    merchant_private_key: Option<String>,
    /// wechat (v3): a WeChat Pay platform certificate (PEM), trusted from the start. Without the public key id
    /// and key below, v3 answers and notifications are verified with the platform certificates, fetched from
    /// WeChat (`/v3/certificates`) when a new serial appears.
    platform_certificate: Option<String>,
    wechatpay_public_key_id: Option<String>,
    /// wechat: PEM public key.
    wechatpay_public_key: Option<String>,
    /// wechat: PEM certificate for `/secapi/` mutual TLS, with `client_key`.
    client_certificate: Option<String>,
    /// wechat (secret): PEM private key of `client_certificate`.
    client_key: Option<String>,
    /// wechat: service-provider mode.
    sub_mch_id: Option<String>,
    sub_appid: Option<String>,
    /// wechat: default `https://api.mch.weixin.qq.com`.
    api_base_url: Option<String>,
    /// alipay: the open-platform app id.
    app_id: Option<String>,
    /// alipay (secret): PEM RSA private key, PKCS#8 or PKCS#1.
    app_private_key: Option<String>,
    /// alipay: PEM public key (public-key mode), or the three certificates below.
    alipay_public_key: Option<String>,
    app_public_cert: Option<String>,
    alipay_public_cert: Option<String>,
    alipay_root_cert: Option<String>,
    /// alipay: the seller's user id (2088…).
    seller_id: Option<String>,
    /// alipay (secret): service-provider mode.
    app_auth_token: Option<String>,
    /// alipay: default `https://openapi.alipay.com/gateway.do`.
    gateway_url: Option<String>,
}

/// A channel account as answered: identifiers by their last four characters, secrets, keys
/// and certificates as `has_<field>` flags; each provider's fields only.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(as = ChannelAccount)]
#[allow(dead_code)]
pub(crate) struct ChannelAccountObject {
    #[schema(example = "channel_account")]
    object: String,
    /// `wechat` or `alipay`.
    provider: String,
    app: String,
    livemode: bool,
    created: i64,
    updated: i64,
    mch_id_last4: Option<String>,
    appid_last4: Option<String>,
    api_version: Option<String>,
    has_api_v2_key: Option<bool>,
    has_api_v3_key: Option<bool>,
    merchant_serial_no_last4: Option<String>,
    has_merchant_private_key: Option<bool>,
    has_platform_certificate: Option<bool>,
    wechatpay_public_key_id_last4: Option<String>,
    has_wechatpay_public_key: Option<bool>,
    has_client_certificate: Option<bool>,
    has_client_key: Option<bool>,
    sub_mch_id_last4: Option<String>,
    sub_appid_last4: Option<String>,
    api_base_url: Option<String>,
    app_id_last4: Option<String>,
    has_app_private_key: Option<bool>,
    has_alipay_public_key: Option<bool>,
    has_app_public_cert: Option<bool>,
    has_alipay_public_cert: Option<bool>,
    has_alipay_root_cert: Option<bool>,
    seller_id_last4: Option<String>,
    has_app_auth_token: Option<bool>,
    gateway_url: Option<String>,
}

#[cfg(all(test, feature = "openapi"))]
mod tests {
    use paygate_domain::accounts::{AccountSummary, Provider};

    /// The documented answer names exactly the fields the views show.
    #[test]
    fn the_documented_object_lists_every_shown_field() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::openapi_json()).unwrap();
        let props = doc["components"]["schemas"]["ChannelAccount"]["properties"].as_object().unwrap().clone();
        let mut shown: Vec<String> = Vec::new();
        for provider in Provider::ALL {
            let summary = AccountSummary { provider, public: Default::default(), secrets_set: Default::default() };
            shown.extend(summary.shown().keys().cloned());
        }
        for key in &shown {
            assert!(props.contains_key(key), "{key} is not documented");
        }
        assert_eq!(props.len(), shown.len() + 6, "{props:?}");
    }
}
