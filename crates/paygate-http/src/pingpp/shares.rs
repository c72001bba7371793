//! `/v1/orders/{id}/profit_sharings`: profit sharing on the native API (the same core the
//! 知晓云 face uses). `type` is `wechat_single`, `wechat_multi` or `alipay`.

use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::shares::ShareInput;
use paygate_core::{Caller, Paygate};
use paygate_domain::objects as render;
use paygate_domain::shares::ShareKind;

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["orders", id, "profit_sharings"] if m == Method::POST => create(app, caller, req, id).await,
        ["orders", id, "profit_sharings"] if m == Method::GET => {
            async {
                let shares = app.shares_of_order(caller, id).await?;
                Ok((
                    StatusCode::OK,
                    render::list(
                        &format!("/v1/orders/{id}/profit_sharings"),
                        false,
                        shares.iter().map(|s| s.to_json()).collect(),
                    ),
                ))
            }
            .await
        }
        ["orders", id, "profit_sharings", "finish"] if m == Method::POST => {
            async {
                app.finish_sharing(caller, id).await?;
                Ok((StatusCode::OK, render::order(&app.order(caller, id).await?)))
            }
            .await
        }
        ["orders", id, "profit_sharings", ps] if m == Method::GET => {
            app.share_of_order(caller, id, ps).await.map(|s| (StatusCode::OK, s.to_json()))
        }
        ["orders", id, "profit_sharings", ps, "returns"] if m == Method::POST => {
            async {
                let amount = req.json_body()?.int("amount")?;
                Ok((StatusCode::OK, app.return_share(caller, id, ps, amount).await?.to_json()))
            }
            .await
        }
        _ => return None,
    })
}

async fn create(app: &Paygate, caller: &Caller, req: &Incoming, order_id: &str) -> Answer {
    let b = req.json_body()?;
    let kind = ShareKind::parse("type", &b.required_string("type")?)?;
    let input = ShareInput { kind, receivers: b.value("receivers"), out_order_no: b.string("out_order_no")? };
    Ok((StatusCode::OK, app.share_order(caller, order_id, input).await?.to_json()))
}
