//! `/v1/profit_sharing_receivers`: the receivers (分账接收方) of the app's WeChat Pay account in the key's mode, or
//! with `channel: alipay` the royalty relations of its Alipay app. The channel keeps the list (paygate keeps none,
//! so there is nothing to list): a WeChat receiver is added before any split to it, and a removed one is refused
//! by WeChat on the next split; Alipay relations are bound by each settle too, and unbound here.

use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::share_receivers::ReceiverInput;
use paygate_core::{Caller, Paygate};
use paygate_domain::objects::to_vec;
use paygate_domain::Problem;
use serde::{Deserialize, Serialize};

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    let livemode = caller.scope.mode.is_live();
    Some(match path {
        ["profit_sharing_receivers"] if m == Method::POST => {
            async {
                let b: AddReceiver = req.body_as()?;
                if is_alipay(b.channel.as_deref())? {
                    let kind = b.kind.ok_or_else(|| Problem::missing("type"))?;
                    let account = b.account.ok_or_else(|| Problem::missing("account"))?;
                    let (kind, account) = app.alipay_royalty_relation(caller, true, &kind, &account).await?;
                    let relation_type = None;
                    let object = "profit_sharing_receiver";
                    return ok(&ReceiverObject {
                        object,
                        kind,
                        account,
                        relation_type,
                        custom_relation: None,
                        livemode,
                    });
                }
                let input = ReceiverInput {
                    kind: b.kind,
                    account: b.account,
                    relation_type: b.relation_type,
                    custom_relation: b.custom_relation,
                    name: b.name,
                };
                let r = app.add_share_receiver(caller, input).await?;
                ok(&ReceiverObject {
                    object: "profit_sharing_receiver",
                    kind: r.kind,
                    account: r.account,
                    relation_type: Some(r.relation_type),
                    custom_relation: r.custom_relation,
                    livemode,
                })
            }
            .await
        }
        ["profit_sharing_receivers", kind, account] if m == Method::DELETE => {
            async {
                if is_alipay(req.query.get("channel"))? {
                    app.alipay_royalty_relation(caller, false, kind, account).await?;
                } else {
                    app.remove_share_receiver(caller, kind, account).await?;
                }
                let (kind, account) = (kind.to_string(), account.to_string());
                ok(&DeletedReceiver { object: "profit_sharing_receiver", kind, account, deleted: true, livemode })
            }
            .await
        }
        _ => return None,
    })
}

/// `channel`: `wechat` (the default) or `alipay`.
fn is_alipay(channel: Option<&str>) -> Result<bool, Problem> {
    match channel {
        None | Some("wechat") => Ok(false),
        Some("alipay") => Ok(true),
        Some(other) => Err(Problem::invalid("channel", format!("channel must be wechat or alipay, got '{other}'."))),
    }
}

fn ok(object: &impl Serialize) -> Answer {
    Ok((StatusCode::OK, to_vec(object)))
}

/// `POST /v1/profit_sharing_receivers`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = AddProfitSharingReceiver))]
pub(crate) struct AddReceiver {
    /// `wechat` (default): a receiver of the WeChat Pay account; `alipay`: a royalty relation of the Alipay app
    /// (`type` `userId`, `loginName` or `openId`; no relation fields).
    pub channel: Option<String>,
    /// WeChat: `MERCHANT_ID` or `PERSONAL_OPENID`; Alipay: `userId`, `loginName` or `openId`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(example = "MERCHANT_ID"))]
    pub kind: Option<String>,
    /// The merchant number, or the payer's openid under the account's appid.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9A-Za-z_-]{1,64}$"))]
    pub account: Option<String>,
    /// WeChat's relation: `SERVICE_PROVIDER`, `STORE`, `STAFF`, `STORE_OWNER`, `PARTNER`, `HEADQUARTER`, `BRAND`,
    /// `DISTRIBUTOR`, `USER`, `SUPPLIER` or `CUSTOM`.
    #[cfg_attr(feature = "openapi", schema(example = "PARTNER"))]
    pub relation_type: Option<String>,
    /// Required with `relation_type` `CUSTOM`, at most 10 characters.
    pub custom_relation: Option<String>,
    /// The receiver's full name (WeChat wants it for `MERCHANT_ID`); API v3 sends it encrypted with the platform
    /// key. Never answered.
    pub name: Option<String>,
}

/// A receiver as added (its name is not answered).
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = ProfitSharingReceiver))]
pub(crate) struct ReceiverObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "profit_sharing_receiver"))]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: String,
    pub account: String,
    /// WeChat's relation (none for Alipay).
    pub relation_type: Option<String>,
    pub custom_relation: Option<String>,
    pub livemode: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = DeletedProfitSharingReceiver))]
pub(crate) struct DeletedReceiver {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "profit_sharing_receiver"))]
    pub object: &'static str,
    #[serde(rename = "type")]
    pub kind: String,
    pub account: String,
    pub deleted: bool,
    pub livemode: bool,
}
