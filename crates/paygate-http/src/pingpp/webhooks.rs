//! `/v1` routes for events, webhook endpoints, delivery logs and the platform public key.

use super::bodies::{CreateWebhookEndpoint, UpdateWebhookEndpoint};
use super::Answer;
use crate::request::Incoming;
use hyper::{Method, StatusCode};
use paygate_core::{Caller, Paygate};
use paygate_domain::ids::EventId;
use paygate_domain::objects::{to_vec, List};
use paygate_domain::paging::{CreatedRange, Paging};
use paygate_store::{DeliveryView, Endpoint};
use serde::Serialize;

pub(crate) async fn dispatch(app: &Paygate, caller: &Caller, req: &Incoming, path: &[&str]) -> Option<Answer> {
    let m = &req.method;
    Some(match path {
        ["events"] if m == Method::GET => list_events(app, caller, req).await,
        ["events", id] if m == Method::GET => {
            async { Ok(ok(&app.event(caller, &EventId::parse(id)?).await?.to_object())) }.await
        }
        ["events", id, "deliveries"] if m == Method::GET => {
            async {
                let deliveries = app.deliveries(caller, &EventId::parse(id)?).await?;
                let data = deliveries.iter().map(DeliveryObject::new).collect();
                Ok(ok(&List::new(format!("/v1/events/{id}/deliveries"), false, data)))
            }
            .await
        }
        ["events", id, "resend"] if m == Method::POST => app
            .resend_event(caller, id)
            .await
            .map(|n| ok(&ResendObject { object: "resend", event: id.to_string(), deliveries_queued: n })),
        ["webhook_endpoints"] if m == Method::POST => create_endpoint(app, caller, req).await,
        ["webhook_endpoints"] if m == Method::GET => app.endpoints(caller).await.map(|e| {
            ok(&List::new("/v1/webhook_endpoints", false, e.iter().map(|e| EndpointObject::new(e, None)).collect()))
        }),
        ["webhook_endpoints", id] if m == Method::POST => update_endpoint(app, caller, req, id).await,
        ["webhook_endpoints", id] if m == Method::DELETE => app
            .delete_endpoint(caller, id)
            .await
            .map(|_| ok(&DeletedEndpoint { id: id.to_string(), object: "webhook_endpoint", deleted: true })),
        ["webhook_public_key"] if m == Method::GET => app
            .platform_public_key_pem()
            .await
            .map(|pem| ok(&PublicKeyObject { object: "public_key", algorithm: "RSA-SHA256", pem })),
        _ => return None,
    })
}

fn ok(object: &impl Serialize) -> (StatusCode, Vec<u8>) {
    (StatusCode::OK, to_vec(object))
}

/// Where events are sent. `secret` (for the HMAC signature) is shown once, on creation.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WebhookEndpoint))]
pub(crate) struct EndpointObject {
    #[cfg_attr(feature = "openapi", schema(pattern = "^we_[0-9A-Za-z]{24}$"))]
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "webhook_endpoint"))]
    pub object: &'static str,
    pub created: i64,
    pub livemode: bool,
    pub url: String,
    /// The event types sent, or `["*"]` for all.
    pub events: Vec<String>,
    /// `enabled`, or `disabled`: sent nothing until enabled again.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "enabled"))]
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl EndpointObject {
    fn new(e: &Endpoint, secret: Option<&str>) -> EndpointObject {
        EndpointObject {
            id: e.id.clone(),
            object: "webhook_endpoint",
            created: e.created,
            livemode: e.livemode,
            url: e.url.clone(),
            events: e.types.clone().unwrap_or_else(|| vec!["*".into()]),
            status: e.status(),
            secret: secret.map(str::to_string),
        }
    }
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct DeletedEndpoint {
    pub id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "webhook_endpoint"))]
    pub object: &'static str,
    pub deleted: bool,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = PublicKey))]
pub(crate) struct PublicKeyObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "public_key"))]
    pub object: &'static str,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "RSA-SHA256"))]
    pub algorithm: &'static str,
    /// PEM: what webhook signatures (`x-pingplusplus-signature`) verify with.
    pub pem: String,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Resend))]
pub(crate) struct ResendObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "resend"))]
    pub object: &'static str,
    pub event: String,
    pub deliveries_queued: u64,
}

/// One event's delivery to one endpoint, with every attempt.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WebhookDelivery))]
pub(crate) struct DeliveryObject {
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "webhook_delivery"))]
    pub object: &'static str,
    pub endpoint: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    /// Unix seconds while pending, else null.
    pub next_attempt_at: Option<i64>,
    pub attempt_log: Vec<AttemptObject>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = WebhookAttempt))]
pub(crate) struct AttemptObject {
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_snippet: Option<String>,
}

impl DeliveryObject {
    fn new(d: &DeliveryView) -> DeliveryObject {
        DeliveryObject {
            object: "webhook_delivery",
            endpoint: d.endpoint_id.clone(),
            status: d.status.clone(),
            attempts: d.attempts,
            next_attempt_at: (d.status == "pending").then_some(d.next_attempt_at),
            attempt_log: d
                .log
                .iter()
                .map(|a| AttemptObject {
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error: a.error.clone(),
                    response_snippet: a.response_snippet.clone(),
                })
                .collect(),
        }
    }
}

async fn create_endpoint(app: &Paygate, caller: &Caller, req: &Incoming) -> Answer {
    let b: CreateWebhookEndpoint = req.body_as()?;
    let (created, secret) = app.create_endpoint(caller, &b.url, b.events).await?;
    Ok(ok(&EndpointObject::new(&created, Some(&secret))))
}

async fn update_endpoint(app: &Paygate, caller: &Caller, req: &Incoming, id: &str) -> Answer {
    let b: UpdateWebhookEndpoint = req.body_as()?;
    Ok(ok(&EndpointObject::new(&app.set_endpoint_disabled(caller, id, b.disabled).await?, None)))
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
    Ok(ok(&List::new("/v1/events", page.has_more, page.data.iter().map(|e| e.to_object()).collect())))
}
