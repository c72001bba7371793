//! Alipay's async notifications: `POST /notify/alipay/{app_id}/{test|live}` (urlencoded form). The answer is
//! Alipay's: exactly `success` (anything else makes Alipay retry), otherwise `failure` with a 4xx — a 5xx only when
//! our own storage failed. Every refusal is in that format too (wrong path, method, oversized body).

use crate::request::Incoming as Req;
use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Response, StatusCode};
use paygate_channels::alipay::NOTIFY_ACK;
use paygate_core::channel_notify::NotifyRefusal;
use paygate_core::Paygate;

/// The route template of a notification path (request logs and metrics).
pub(crate) fn template(rest: &[&str]) -> &'static str {
    match rest {
        [_, _] => "/notify/alipay/*/*",
        _ => "/notify/alipay",
    }
}

/// `rest`: the path below `/notify/alipay/`; `body`: `None` when it was too large or too slow.
pub(crate) async fn handle(app: &Paygate, req: &Req, rest: &[&str], body: Option<&Bytes>) -> HttpResponse {
    let [app_id, mode] = rest else {
        return failure(404, "not a notification path: /notify/alipay/{app_id}/{test|live}");
    };
    if req.method != Method::POST {
        return failure(405, "notifications are POST");
    }
    let Some(body) = body else {
        return failure(413, "body too large or too slow");
    };
    match app.alipay_notify(app_id, mode, body).await {
        Ok(()) => text(StatusCode::OK, NOTIFY_ACK),
        Err(NotifyRefusal { status, message }) => {
            tracing::info!(status, %message, "Alipay notification refused");
            failure(status, &message)
        }
    }
}

/// `failure` (Alipay retries); the reason goes to the log, not to the body Alipay reads.
fn failure(status: u16, _message: &str) -> HttpResponse {
    text(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), "failure")
}

fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    let value = hyper::header::HeaderValue::from_static("text/plain; charset=utf-8");
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    response
}
