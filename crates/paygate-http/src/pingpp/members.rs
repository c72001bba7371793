//! `/v1/members` (wallets) and `/v1/fee_rates` on the native API: what a merchant's back office
//! sets up for the cashier face.

use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::{Caller, Paygate};
use paygate_domain::objects as render;
use paygate_store::{BalanceTransaction, Member};
use serde_json::{json, Value};

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["members"] if m == Method::POST => async {
            let b = req.json_body()?;
            let member = app.create_member(caller, &b.required_string("member_no")?, &b.required_string("phone")?, &b.required_string("name")?).await?;
            Ok((StatusCode::OK, member_json(caller, &member)))
        }
        .await,
        ["members", id] if m == Method::GET => app.member(caller, id).await.map(|mb| (StatusCode::OK, member_json(caller, &mb))),
        ["members", id, "topups"] if m == Method::POST => async {
            let amount = req.json_body()?.required_int("amount")?;
            Ok((StatusCode::OK, member_json(caller, &app.top_up(caller, id, amount).await?)))
        }
        .await,
        ["members", id, "balance_transactions"] if m == Method::GET => async {
            // Out of range is a 400 as on every other list, never silently clamped.
            let limit = paygate_domain::paging::limit(req.query.int("limit")?, 20, paygate_domain::paging::MAX_LIMIT)?;
            let list = app.balance_transactions(caller, id, limit).await?;
            Ok((StatusCode::OK, render::list(&format!("/v1/members/{id}/balance_transactions"), false, list.iter().map(transaction_json).collect())))
        }
        .await,
        ["fee_rates"] if m == Method::POST => async {
            let b = req.json_body()?;
            let (channel, rate_bp) = (b.required_string("channel")?, b.required_int("rate_bp")?);
            app.set_fee_rate(caller, &channel, rate_bp).await?;
            Ok((StatusCode::OK, json!({"object": "fee_rate", "channel": channel, "rate_bp": rate_bp, "livemode": caller.scope.mode.is_live()})))
        }
        .await,
        _ => return None,
    })
}

fn member_json(caller: &Caller, m: &Member) -> Value {
    json!({
        "id": m.id.to_string(), "object": "member", "created": m.created, "livemode": caller.scope.mode.is_live(),
        "member_no": m.member_no, "phone": m.phone, "name": m.name, "pay_code": m.pay_code, "balance": m.balance.fen(),
    })
}

fn transaction_json(t: &BalanceTransaction) -> Value {
    json!({"object": "balance_transaction", "created": t.created, "type": t.kind, "amount": t.amount, "balance_after": t.balance_after.fen(), "reference": t.reference})
}
