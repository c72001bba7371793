//! The Ping++ Charge API: `POST /v1/charges`, `GET /v1/charges`, `POST /v1/charges/{id}/reverse`
//! (retrieving a charge and its refunds are in `handlers.rs`, shared with charges of orders).

use super::bodies::{opt, CreateCharge, ReverseCharge};
use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::charges::ChargeInput;
use paygate_core::{Caller, Paygate};
use paygate_domain::ids::ChargeId;
use paygate_domain::objects::{to_vec, ChargeObject, List};
use paygate_domain::paging::{ChargeFilter, CreatedRange, Paging, DEFAULT_PER_PAGE};
use paygate_domain::{Problem, ProblemKind};
use serde::Serialize;

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["charges"] if m == Method::POST => create(app, caller, req).await,
        ["charges"] if m == Method::GET => list(app, caller, req).await,
        ["charges", id, "reverse"] if m == Method::POST => reverse(app, caller, req, id).await,
        _ => return None,
    })
}

fn ok(object: &impl Serialize) -> Answer {
    Ok((StatusCode::OK, to_vec(object)))
}

/// `app` names the caller's own app; another id is answered as not found, never as forbidden.
fn own_app(caller: &Caller, param: &str, id: &str) -> Result<(), Problem> {
    if id == caller.app.id {
        return Ok(());
    }
    Err(Problem::new(ProblemKind::NotFound, "resource_missing", format!("No such app: {id}")).with_param(param))
}

async fn create(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let b: CreateCharge = req.body_as()?;
    own_app(caller, "app.id", &b.app.id)?;
    let input = ChargeInput {
        order_no: b.order_no,
        channel: b.channel,
        amount: b.amount.0,
        currency: b.currency,
        subject: b.subject,
        body: b.body,
        client_ip: b.client_ip,
        extra: b.extra,
        time_expire: opt(b.time_expire),
        metadata: b.metadata,
        description: b.description,
        base_url: req.base_url(),
    };
    let charge = app.create_charge(caller, input, &req.peer.ip().to_string()).await?;
    // A new charge has no refunds yet: its list is empty, as Ping++ answers it.
    let refunds = paygate_domain::paging::Page { data: Vec::new(), has_more: false };
    ok(&ChargeObject::new(&charge, Some(&refunds)))
}

async fn list(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let q = &req.query;
    if let Some(id) = q.get("app[id]") {
        own_app(caller, "app[id]", id)?;
    }
    let filter = ChargeFilter {
        channel: q.text("channel"),
        paid: q.boolean("paid")?,
        refunded: q.boolean("refunded")?,
        reversed: q.boolean("reversed")?,
        created: CreatedRange {
            gt: q.int("created[gt]")?,
            gte: q.int("created[gte]")?,
            lt: q.int("created[lt]")?,
            lte: q.int("created[lte]")?,
        },
    };
    let paging = Paging::cursor(q.int("limit")?, q.text("starting_after"), q.text("ending_before"))?;
    let page = app.list_charges(caller, &filter, &paging).await?;
    let data = page.data.iter().map(|c| ChargeObject::new(c, None)).collect();
    ok(&List::new("/v1/charges", page.has_more, data))
}

async fn reverse(app: &Paygate, caller: &Caller, req: &Incoming, id: &str) -> Answer {
    let _: ReverseCharge = req.body_as()?;
    let id = ChargeId::parse(id)?;
    let charge = app.reverse_charge(caller, &id).await?;
    let refunds = app.refunds(caller, None, Some(&id), DEFAULT_PER_PAGE).await?;
    ok(&ChargeObject::new(&charge, Some(&refunds)))
}
