//! `/v1` routes: parse the request into core inputs, call the core, render.

use super::bodies::{opt, CreateOrder, CreateRefund, PayOrder, SandboxPay, UpdateOrder};
use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::orders::{OrderInput, PayInput};
use paygate_core::refunds::RefundInput;
use paygate_core::sandbox::SandboxResult;
use paygate_core::{Caller, Paygate};
use paygate_domain::ids::{ChargeId, OrderId, RefundId};
use paygate_domain::objects::{self as render, ChargeObject, List, OrderObject, RefundObject};
use paygate_domain::paging::{CreatedRange, OrderFilter, Paging, DEFAULT_PER_PAGE, MAX_LIMIT};
use paygate_domain::{Problem, ProblemKind};
use serde::Serialize;

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Answer {
    let m = &req.method;
    match path {
        ["orders"] if m == Method::POST => create_order(app, caller, req).await,
        ["orders"] if m == Method::GET => list_orders(app, caller, req).await,
        ["orders", id] if m == Method::GET => ok(&OrderObject::new(&app.order(caller, &OrderId::parse(id)?).await?)),
        ["orders", id] if m == Method::PUT => update_order(app, caller, req, id).await,
        ["orders", id, "pay"] if m == Method::POST => pay_order(app, caller, req, id).await,
        ["orders", id, "charges"] if m == Method::GET => {
            let charges = app.charges_of_order(caller, &OrderId::parse(id)?).await?;
            ok(&render::charge_list(&format!("/v1/orders/{id}/charges"), &charges))
        }
        ["orders", id, "charges", ch] if m == Method::GET => {
            let order = OrderId::parse(id)?;
            app.order(caller, &order).await?;
            ok(&ChargeObject::new(&app.charge(caller, &ChargeId::parse(ch)?, Some(&order)).await?, None))
        }
        ["orders", id, "order_refunds"] if m == Method::POST => {
            let input = refund_input(req)?;
            // Ping++ answers an order refund with a list: an order's refund may span charges.
            let refund = app.refund(caller, Some(&OrderId::parse(id)?), None, input).await?;
            ok(&List::new(format!("/v1/orders/{id}/order_refunds"), false, vec![RefundObject::new(&refund)]))
        }
        ["orders", id, "order_refunds"] if m == Method::GET => {
            let page = app.refunds(caller, Some(&OrderId::parse(id)?), None, limit(req)?).await?;
            ok(&render::refund_page(format!("/v1/orders/{id}/order_refunds"), &page))
        }
        ["orders", id, "order_refunds", re] if m == Method::GET => {
            let re = RefundId::parse(re)?;
            ok(&RefundObject::new(&app.refund_by_id(caller, &re, Some(&OrderId::parse(id)?), None).await?))
        }
        ["charges", id] if m == Method::GET => {
            let id = ChargeId::parse(id)?;
            let charge = app.charge(caller, &id, None).await?;
            let refunds = app.refunds(caller, None, Some(&id), DEFAULT_PER_PAGE).await?;
            ok(&ChargeObject::new(&charge, Some(&refunds)))
        }
        ["charges", id, "refunds"] if m == Method::POST => {
            let input = refund_input(req)?;
            ok(&RefundObject::new(&app.refund(caller, None, Some(&ChargeId::parse(id)?), input).await?))
        }
        ["charges", id, "refunds"] if m == Method::GET => {
            let page = app.refunds(caller, None, Some(&ChargeId::parse(id)?), limit(req)?).await?;
            ok(&render::refund_page(format!("/v1/charges/{id}/refunds"), &page))
        }
        ["charges", id, "refunds", re] if m == Method::GET => {
            let re = RefundId::parse(re)?;
            ok(&RefundObject::new(&app.refund_by_id(caller, &re, None, Some(&ChargeId::parse(id)?)).await?))
        }
        ["sandbox", "charges", reference, "pay"] if m == Method::POST => {
            let body: SandboxPay = req.body_as()?;
            let result = SandboxResult::parse(body.result.as_deref().unwrap_or("success"))?;
            let (charge, _order) = app.sandbox_pay(caller, reference, result).await?;
            ok(&ChargeObject::new(&charge, None))
        }
        _ if let Some(answer) = super::charges::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::webhooks::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::shares::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::members::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::channel_accounts::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::receivers::dispatch(app, caller, req, path).await => answer,
        _ if let Some(answer) = super::reconciliations::dispatch(app, caller, req, path).await => answer,
        // The router answered unknown paths and wrong methods from its route table already.
        _ => Err(crate::errors::route_not_found(req)),
    }
}

fn ok(object: &impl Serialize) -> Answer {
    Ok((StatusCode::OK, render::to_vec(object)))
}

async fn create_order(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let b: CreateOrder = req.body_as()?;
    check_app(caller, Some(&b.app), true)?;
    let input = OrderInput {
        merchant_order_no: b.merchant_order_no,
        amount: b.amount.0,
        coupon_amount: opt(b.coupon_amount),
        currency: b.currency,
        subject: b.subject,
        body: b.body,
        uid: b.uid,
        client_ip: b.client_ip,
        time_expire: opt(b.time_expire),
        description: b.description,
        metadata: b.metadata,
        receipt_app: b.receipt_app,
        service_app: b.service_app,
        profit_sharing: b.profit_sharing.unwrap_or(false),
    };
    let view = app.create_order(caller, input, &req.peer.ip().to_string()).await?;
    ok(&OrderObject::new(&view))
}

/// `app` names the caller's own app; another id is answered as not found, never as forbidden.
fn check_app(caller: &Caller, app: Option<&str>, required: bool) -> Result<(), Problem> {
    match app {
        None if required => Err(Problem::missing("app")),
        None => Ok(()),
        Some(id) if id == caller.app.id => Ok(()),
        Some(id) => {
            Err(Problem::new(ProblemKind::NotFound, "resource_missing", format!("No such app: {id}")).with_param("app"))
        }
    }
}

async fn update_order(app: &Paygate, caller: &Caller, req: &Incoming, id: &str) -> Answer {
    let b: UpdateOrder = req.body_as()?;
    match b.status.as_deref() {
        Some("canceled") => ok(&OrderObject::new(&app.cancel_order(caller, &OrderId::parse(id)?).await?)),
        Some(other) => Err(Problem::invalid("status", format!("status can only be set to 'canceled', got '{other}'."))),
        None => Err(Problem::missing("status")),
    }
}

async fn pay_order(app: &Paygate, caller: &Caller, req: &Incoming, id: &str) -> Answer {
    let b: PayOrder = req.body_as()?;
    let input =
        PayInput { channel: b.channel, charge_amount: opt(b.charge_amount), extra: b.extra, base_url: req.base_url() };
    ok(&OrderObject::new(&app.pay_order(caller, &OrderId::parse(id)?, input).await?))
}

fn refund_input(req: &Incoming) -> Result<RefundInput, Problem> {
    let b: CreateRefund = req.body_as()?;
    Ok(RefundInput { amount: opt(b.amount), description: b.description, metadata: b.metadata })
}

/// A `/v1` list's `limit` (default 10, at most 100).
pub(super) fn limit(req: &Incoming) -> Result<i64, Problem> {
    paygate_domain::paging::limit(req.query.int("limit")?, DEFAULT_PER_PAGE, MAX_LIMIT)
}

async fn list_orders(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let q = &req.query;
    check_app(caller, q.get("app"), true)?;
    for (param, value) in [("receipt_app", q.get("receipt_app")), ("service_app", q.get("service_app"))] {
        if let Some(v) = value.filter(|v| *v != caller.app.id && !v.is_empty()) {
            return Err(
                Problem::new(ProblemKind::NotFound, "resource_missing", format!("No such app: {v}")).with_param(param)
            );
        }
    }
    let filter = OrderFilter {
        uid: q.text("uid"),
        receipt_app: q.text("receipt_app"),
        service_app: q.text("service_app"),
        paid: q.boolean("paid")?,
        refunded: q.boolean("refunded")?,
        canceled: q.boolean("canceled")?,
        created: CreatedRange {
            gt: q.int("created[gt]")?,
            gte: q.int("created[gte]")?,
            lt: q.int("created[lt]")?,
            lte: q.int("created[lte]")?,
        },
        merchandise_record_id: None,
    };
    let cursor = ["limit", "starting_after", "ending_before"].iter().any(|p| q.get(p).is_some());
    let paging = if cursor {
        if q.get("page").is_some() || q.get("per_page").is_some() {
            return Err(Problem::invalid(
                "page",
                "Use either page/per_page or limit/starting_after/ending_before, not both.",
            ));
        }
        Paging::cursor(q.int("limit")?, q.text("starting_after"), q.text("ending_before"))?
    } else {
        Paging::page(q.int("page")?, q.int("per_page")?)?
    };
    let page = app.list_orders(caller, &filter, &paging).await?;
    ok(&render::order_list(&page))
}
