//! The Ping++-compatible `/v1` face: HTTP Basic/Bearer secret keys, optional RSA request
//! signatures, Idempotency-Key on every POST/PUT, `{"error":{…}}` errors.

pub(crate) mod bodies;
pub(crate) mod channel_accounts;
mod charges;
mod handlers;
pub(crate) mod members;
pub(crate) mod receivers;
pub(crate) mod reconciliations;
mod shares;
pub(crate) mod webhooks;

use crate::request::{self, Incoming};
use crate::HttpResponse;
use base64::Engine;
use hyper::{Method, StatusCode};
use paygate_core::idempotency::Idempotent;
use paygate_core::{Caller, Paygate};
use paygate_domain::{Problem, ProblemKind};
use serde::Serialize;

/// A handler's answer: a status and the JSON text of its body, or a problem. Handlers serialize
/// their objects straight into these bytes (`objects::to_vec`), never through a `Value`.
pub(crate) type Answer = Result<(StatusCode, Vec<u8>), Problem>;

pub(crate) async fn handle(app: &Paygate, req: &Incoming, path: &[&str]) -> HttpResponse {
    let caller = match authenticate(app, req).await {
        Ok(caller) => crate::errors::log_app(caller),
        Err(problem) => return error_response(&problem),
    };
    let idempotency_key = match req.method {
        // Never ignored: a key that is not UTF-8 text is refused, not treated as absent.
        Method::POST | Method::PUT => match req.header_text("idempotency-key", "Idempotency-Key") {
            Ok(key) => key.map(str::to_string),
            Err(problem) => return error_response(&problem),
        },
        _ => None,
    };
    if let Some(response) = reconciliations::file(app, &caller, req, path).await {
        return response;
    }
    let Some(key) = idempotency_key else {
        return respond(handlers::dispatch(app, &caller, req, path).await);
    };
    match app.idempotency_start(&caller, &key, req.method.as_str(), &req.raw_uri, &req.body).await {
        Err(problem) => error_response(&problem),
        Ok(Idempotent::Replay { status, body }) => {
            let mut response = request::json(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body);
            response.headers_mut().insert("idempotent-replayed", hyper::header::HeaderValue::from_static("true"));
            response
        }
        Ok(Idempotent::Run) => {
            let (status, body) = encode(handlers::dispatch(app, &caller, req, path).await);
            if let Err(problem) = app.idempotency_finish(&caller, &key, status.as_u16(), &body).await {
                log_problem(&problem);
            }
            request::json(status, body)
        }
    }
}

/// `Authorization: Basic base64(sk:)` or `Authorization: Bearer sk`, then the app's signature
/// requirement.
async fn authenticate(app: &Paygate, req: &Incoming) -> Result<Caller, Problem> {
    let header = req.header("authorization").ok_or_else(|| {
        Problem::authentication(
            "No API key provided. Authenticate with HTTP Basic (secret key as user name) \
             or 'Authorization: Bearer <secret key>'.",
        )
    })?;
    let key = if let Some(token) = header.strip_prefix("Bearer ") {
        token.trim().to_string()
    } else if let Some(encoded) = header.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Problem::authentication("The Basic credentials are not valid base64."))?;
        decoded.split(':').next().unwrap_or_default().to_string()
    } else {
        return Err(Problem::authentication("Unsupported Authorization scheme: use Basic or Bearer."));
    };
    let caller = app.authenticate(&key).await?;
    if let Some(pem) = &caller.app.public_key_pem {
        let body: &[u8] = if matches!(req.method, Method::GET | Method::DELETE) { b"" } else { &req.body };
        paygate_core::signature::verify_request(
            pem,
            body,
            &req.raw_uri,
            req.header("pingplusplus-request-timestamp"),
            req.header("pingplusplus-signature"),
            app.now(),
        )?;
    }
    Ok(caller)
}

fn error_type(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::InvalidRequest
        | ProblemKind::NotFound
        | ProblemKind::Conflict
        | ProblemKind::MethodNotAllowed
        | ProblemKind::Http(_) => "invalid_request_error",
        ProblemKind::Idempotency => "idempotency_error",
        ProblemKind::Authentication => "authentication_error",
        ProblemKind::Channel => "channel_error",
        ProblemKind::TooManyRequests => "rate_limit_error",
        ProblemKind::Unavailable | ProblemKind::Internal => "api_error",
    }
}

pub(crate) use crate::errors::{log_problem, public_problem};

fn encode(answer: Answer) -> (StatusCode, Vec<u8>) {
    match answer {
        Ok(answer) => answer,
        Err(problem) => {
            let problem = public_problem(&problem);
            (crate::errors::status(problem.kind), problem_json(&problem))
        }
    }
}

/// Every `/v1` error answer: `{"error": {type, code, message, param}}`.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Error))]
pub(crate) struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub(crate) struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(value_type = ErrorType))]
    pub kind: &'static str,
    /// Machine-readable: `invalid_parameter`, `missing_parameter`, `resource_missing`, …
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: &'static str,
    pub message: &'a str,
    /// The offending field or parameter (`receivers[0].amount`, `Idempotency-Key`), or null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub param: Option<&'a str>,
}

/// The `type` of an error.
#[cfg(feature = "openapi")]
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // Describes the document only: `error_type` names the kinds.
#[allow(clippy::enum_variant_names)] // Ping++'s names, `_error` and all.
pub(crate) enum ErrorType {
    InvalidRequestError,
    IdempotencyError,
    AuthenticationError,
    ChannelError,
    RateLimitError,
    ApiError,
}

fn problem_json(problem: &Problem) -> Vec<u8> {
    let error = ErrorDetail {
        kind: error_type(problem.kind),
        code: problem.code,
        message: &problem.message,
        param: problem.param.as_deref(),
    };
    paygate_domain::objects::to_vec(&ErrorBody { error })
}

fn respond(answer: Answer) -> HttpResponse {
    let (status, body) = encode(answer);
    request::json(status, body)
}

pub(crate) fn error_response(problem: &Problem) -> HttpResponse {
    respond(Err(problem.clone()))
}
