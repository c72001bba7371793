//! `/v1/members` (wallets) and `/v1/fee_rates` on the native API: what a merchant's back office
//! sets up for the cashier face.

use super::bodies::{CreateMember, SetFeeRate, TopUp};
use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::{Caller, Paygate};
use paygate_domain::objects::{to_vec, List};
use paygate_domain::paging::{self, MAX_LIMIT};
use paygate_store::{BalanceTransaction, Member};
use serde::Serialize;

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["members"] if m == Method::POST => {
            async {
                let b: CreateMember = req.body_as()?;
                let member = app.create_member(caller, &b.member_no, &b.phone, &b.name).await?;
                ok(&MemberObject::new(caller, &member))
            }
            .await
        }
        ["members", id] if m == Method::GET => {
            async { ok(&MemberObject::new(caller, &app.member(caller, id).await?)) }.await
        }
        ["members", id, "topups"] if m == Method::POST => {
            async {
                let amount = req.body_as::<TopUp>()?.amount.0;
                ok(&MemberObject::new(caller, &app.top_up(caller, id, amount).await?))
            }
            .await
        }
        ["members", id, "balance_transactions"] if m == Method::GET => {
            async {
                // Out of range is a 400 as on every other list, never silently clamped.
                let limit = paging::limit(req.query.int("limit")?, 20, MAX_LIMIT)?;
                let list = app.balance_transactions(caller, id, limit).await?;
                let data = list.iter().map(BalanceTransactionObject::new).collect();
                ok(&List::new(format!("/v1/members/{id}/balance_transactions"), false, data))
            }
            .await
        }
        ["fee_rates"] if m == Method::POST => {
            async {
                let b: SetFeeRate = req.body_as()?;
                app.set_fee_rate(caller, &b.channel, b.rate_bp.0).await?;
                let livemode = caller.scope.mode.is_live();
                ok(&FeeRateObject { object: "fee_rate", channel: b.channel, rate_bp: b.rate_bp.0, livemode })
            }
            .await
        }
        _ => return None,
    })
}

fn ok(object: &impl Serialize) -> Answer {
    Ok((StatusCode::OK, to_vec(object)))
}

/// A member of the merchant's loyalty scheme, with a wallet.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Member))]
pub(crate) struct MemberObject {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "member"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub member_no: String,
    pub phone: String,
    pub name: String,
    /// The code the member shows at the till to pay from the wallet.
    pub pay_code: String,
    /// Fen.
    pub balance: i64,
}

impl MemberObject {
    fn new(caller: &Caller, m: &Member) -> MemberObject {
        MemberObject {
            id: m.id.to_string(),
            object: "member",
            created: m.created,
            livemode: caller.scope.mode.is_live(),
            member_no: m.member_no.clone(),
            phone: m.phone.clone(),
            name: m.name.clone(),
            pay_code: m.pay_code.clone(),
            balance: m.balance.fen(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = BalanceTransaction))]
pub(crate) struct BalanceTransactionObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "balance_transaction"))]
    pub object: &'static str,
    pub created: i64,
    /// `topup`, `payment` or `refund`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Fen, signed: top-ups and refunds add, payments subtract.
    pub amount: i64,
    pub balance_after: i64,
    pub reference: String,
}

impl BalanceTransactionObject {
    fn new(t: &BalanceTransaction) -> BalanceTransactionObject {
        BalanceTransactionObject {
            object: "balance_transaction",
            created: t.created,
            kind: t.kind.clone(),
            amount: t.amount,
            balance_after: t.balance_after.fen(),
            reference: t.reference.clone(),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = FeeRate))]
pub(crate) struct FeeRateObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "fee_rate"))]
    pub object: &'static str,
    pub channel: String,
    pub rate_bp: i64,
    pub livemode: bool,
}
