//! What every face shares about errors: the HTTP status of each kind of problem, what a client
//! may see of it, and how the router renders a problem in the format of the face a request
//! was meant for (each face still writes its own body shape).

use crate::request::Incoming;
use crate::routes::Face;
use crate::HttpResponse;
use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER};
use hyper::{Method, StatusCode};
use paygate_domain::{Problem, ProblemKind};

/// The status of each kind of problem; a face that answers differently says so itself.
pub(crate) fn status(kind: ProblemKind) -> StatusCode {
    match kind {
        ProblemKind::InvalidRequest | ProblemKind::Idempotency => StatusCode::BAD_REQUEST,
        ProblemKind::Authentication => StatusCode::UNAUTHORIZED,
        ProblemKind::NotFound => StatusCode::NOT_FOUND,
        ProblemKind::Conflict => StatusCode::CONFLICT,
        ProblemKind::Channel => StatusCode::PAYMENT_REQUIRED,
        ProblemKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        ProblemKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ProblemKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ProblemKind::Http(code) => StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        ProblemKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The HTTP status and numeric `code` the signed point-of-sale faces (seeds 001 and 002)
/// answer a problem with; a state conflict is a plain 400 there.
pub(crate) fn signed_face_code(kind: ProblemKind) -> (StatusCode, i64) {
    let status = if kind == ProblemKind::Conflict { StatusCode::BAD_REQUEST } else { status(kind) };
    let code = match kind {
        ProblemKind::Authentication => 40001,
        ProblemKind::NotFound => 40004,
        ProblemKind::Channel => 40003,
        ProblemKind::TooManyRequests => 42900,
        ProblemKind::Unavailable => 50300,
        ProblemKind::Internal => 50000,
        _ => 40002,
    };
    (status, code)
}

/// Records the authenticated app on the request's log span (every line of the request then
/// names it); returns the caller for chaining.
pub(crate) fn log_app(caller: paygate_core::Caller) -> paygate_core::Caller {
    tracing::Span::current().record("app", caller.app.id.as_str());
    caller
}

pub(crate) fn log_problem(problem: &Problem) {
    tracing::error!(%problem, "request failed");
}

/// What a client may see of a problem, in any face: an internal one (or the database being
/// away) is logged and replaced by a message that reveals nothing of it.
pub(crate) fn public_problem(problem: &Problem) -> Problem {
    match problem.kind {
        ProblemKind::Internal => {
            log_problem(problem);
            Problem::internal("An internal error occurred; it has been logged.")
        }
        ProblemKind::Unavailable => {
            log_problem(problem);
            Problem::unavailable("The service is temporarily unavailable; retry shortly.")
        }
        _ => problem.clone(),
    }
}

/// A problem the router found before any handler ran (unknown route, wrong method, body too
/// large, NUL in the path …), in the format of the face the request was meant for.
pub(crate) fn render(face: Face, req: &Incoming, problem: &Problem) -> HttpResponse {
    match face {
        Face::Pingpp | Face::Ops => crate::pingpp::error_response(problem),
        Face::Hserve => crate::hserve::error_with_cors(req, problem),
        Face::Cashier => crate::cashier::refusal(problem),
        Face::Saas => crate::saas::refusal(problem),
        Face::SandboxPage => crate::sandbox_page::error_page(problem),
        Face::Console => crate::console::error_page(req, problem),
    }
}

pub(crate) fn route_not_found(req: &Incoming) -> Problem {
    Problem::new(
        ProblemKind::NotFound,
        "route_not_found",
        format!("Unrecognized request URL ({} {}).", req.method, req.path),
    )
}

pub(crate) fn method_not_allowed(req: &Incoming, allowed: &[Method]) -> Problem {
    let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    Problem::new(
        ProblemKind::MethodNotAllowed,
        "method_not_allowed",
        format!("{} is not supported on {}; use {}.", req.method, req.path, names.join(", ")),
    )
}

/// Headers every face's error answer gets: `Allow` on a 405, `Retry-After` on a 503.
pub(crate) fn finish(mut response: HttpResponse, allowed: &[Method]) -> HttpResponse {
    let status = response.status();
    let headers = response.headers_mut();
    if status == StatusCode::METHOD_NOT_ALLOWED && !allowed.is_empty() {
        let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&names.join(", ")) {
            headers.insert(ALLOW, v);
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !headers.contains_key(RETRY_AFTER) {
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
