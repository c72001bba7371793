//! `/v1` routes for events, webhook endpoints, delivery logs and the platform public key.

use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::{Caller, Paygate};
use paygate_domain::objects as render;
use paygate_domain::paging::{CreatedRange, Paging};
use paygate_domain::Problem;
use paygate_store::{DeliveryView, Endpoint};
use serde_json::{json, Value};

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["events"] if m == Method::GET => list_events(app, caller, req).await,
        ["events", id] if m == Method::GET => app.event(caller, id).await.map(|e| ok(e.render())),
        ["events", id, "deliveries"] if m == Method::GET => app
            .deliveries(caller, id)
            .await
            .map(|d| ok(render::list(&format!("/v1/events/{id}/deliveries"), false, d.iter().map(delivery).collect()))),
        ["events", id, "resend"] if m == Method::POST => app
            .resend_event(caller, id)
            .await
            .map(|n| ok(json!({"object": "resend", "event": id, "deliveries_queued": n}))),
        ["webhook_endpoints"] if m == Method::POST => create_endpoint(app, caller, req).await,
        ["webhook_endpoints"] if m == Method::GET => app
            .endpoints(caller)
            .await
            .map(|e| ok(render::list("/v1/webhook_endpoints", false, e.iter().map(|e| endpoint(e, None)).collect()))),
        ["webhook_endpoints", id] if m == Method::DELETE => app
            .delete_endpoint(caller, id)
            .await
            .map(|_| ok(json!({"id": id, "object": "webhook_endpoint", "deleted": true}))),
        ["webhook_public_key"] if m == Method::GET => app
            .platform_public_key_pem()
            .await
            .map(|pem| ok(json!({"object": "public_key", "algorithm": "RSA-SHA256", "pem": pem}))),
        _ => return None,
    })
}

fn ok(value: Value) -> (StatusCode, Value) {
    (StatusCode::OK, value)
}

fn endpoint(e: &Endpoint, secret: Option<&str>) -> Value {
    let mut v = json!({
        "id": e.id, "object": "webhook_endpoint", "created": e.created, "livemode": e.livemode, "url": e.url,
        "events": e.types.clone().unwrap_or_else(|| vec!["*".into()]),
    });
    if let Some(secret) = secret {
        v["secret"] = json!(secret);
    }
    v
}

fn delivery(d: &DeliveryView) -> Value {
    json!({
        "object": "webhook_delivery", "endpoint": d.endpoint_id, "status": d.status, "attempts": d.attempts,
        "next_attempt_at": if d.status == "pending" { json!(d.next_attempt_at) } else { Value::Null },
        "attempt_log": d.log.iter().map(|a| json!({
            "attempted_at": a.attempted_at, "status_code": a.status_code, "latency_ms": a.latency_ms,
            "error": a.error, "response_snippet": a.response_snippet,
        })).collect::<Vec<_>>(),
    })
}

async fn create_endpoint(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let b = req.json_body()?;
    let url = b.required_string("url")?;
    let types = match b.value("events") {
        Value::Null => None,
        Value::Array(items) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Problem::invalid("events", "events must be an array of event type names."))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => return Err(Problem::invalid("events", "events must be an array of event type names.")),
    };
    let (created, secret) = app.create_endpoint(caller, &url, types).await?;
    Ok(ok(endpoint(&created, Some(&secret))))
}

async fn list_events(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let q = &req.query;
    let created = CreatedRange {
        gt: q.int("created[gt]")?,
        gte: q.int("created[gte]")?,
        lt: q.int("created[lt]")?,
        lte: q.int("created[lte]")?,
    };
    let paging = Paging::cursor(q.int("limit")?, q.text("starting_after"), q.text("ending_before"))?;
    let page = app.events(caller, q.text("type").as_deref(), &created, &paging).await?;
    Ok(ok(render::list("/v1/events", page.has_more, page.data.iter().map(|e| e.render()).collect())))
}
