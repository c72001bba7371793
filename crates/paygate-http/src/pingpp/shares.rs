//! `/v1/orders/{id}/profit_sharings`: profit sharing on the native API (the same core the
//! 知晓云 face uses). `type` is `wechat_single`, `wechat_multi` or `alipay`.

use super::bodies::{opt, CreateProfitSharing, ReturnProfitSharing};
use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::shares::ShareInput;
use paygate_core::{Caller, Paygate};
use paygate_domain::ids::{OrderId, ProfitShareId};
use paygate_domain::objects::{to_vec, List, OrderObject};
use paygate_domain::shares::{ProfitShare, ShareKind};

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["orders", id, "profit_sharings"] if m == Method::POST => create(app, caller, req, id).await,
        ["orders", id, "profit_sharings"] if m == Method::GET => {
            async {
                let shares = app.shares_of_order(caller, &OrderId::parse(id)?).await?;
                let data = shares.iter().map(ProfitShare::to_object).collect();
                Ok(ok(&List::new(format!("/v1/orders/{id}/profit_sharings"), false, data)))
            }
            .await
        }
        ["orders", id, "profit_sharings", "finish"] if m == Method::POST => {
            async {
                let id = OrderId::parse(id)?;
                app.finish_sharing(caller, &id).await?;
                Ok(ok(&OrderObject::new(&app.order(caller, &id).await?)))
            }
            .await
        }
        ["orders", id, "profit_sharings", ps] if m == Method::GET => {
            async {
                let ps = ProfitShareId::parse(ps)?;
                Ok(ok(&app.share_of_order(caller, &OrderId::parse(id)?, &ps).await?.to_object()))
            }
            .await
        }
        ["orders", id, "profit_sharings", ps, "returns"] if m == Method::POST => {
            async {
                let amount = opt(req.body_as::<ReturnProfitSharing>()?.amount);
                let ps = ProfitShareId::parse(ps)?;
                Ok(ok(&app.return_share(caller, &OrderId::parse(id)?, &ps, amount).await?.to_object()))
            }
            .await
        }
        _ => return None,
    })
}

fn ok(object: &impl serde::Serialize) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, to_vec(object))
}

async fn create(app: &Paygate, caller: &Caller, req: &Incoming, order_id: &str) -> Answer {
    let b: CreateProfitSharing = req.body_as()?;
    let kind = ShareKind::parse("type", &b.kind)?;
    let input = ShareInput { kind, receivers: b.receivers, out_order_no: b.out_order_no };
    Ok(ok(&app.share_order(caller, &OrderId::parse(order_id)?, input).await?.to_object()))
}
