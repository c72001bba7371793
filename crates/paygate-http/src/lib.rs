//! The HTTP server and its faces. Each face module parses its wire format, authenticates,
//! calls `paygate-core`, and renders; none of them touches storage. `server` holds the limits
//! on connections, `routes` which face a path belongs to, `errors` what faces share about
//! errors.

mod alipay_notify;
mod cashier;
mod console;
mod errors;
mod hserve;
#[cfg(feature = "openapi")]
mod openapi;
mod pingpp;
mod request;
mod routes;
mod saas;
mod sandbox_page;
mod server;
mod streamed;
mod wechat_notify;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use paygate_core::Paygate;
use paygate_domain::{Problem, ProblemKind};
use request::Incoming as Req;
use routes::Face;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

#[cfg(feature = "openapi")]
pub use openapi::openapi_json;
pub use request::MAX_BODY_BYTES;
pub use routes::listed_routes;
pub use server::Limits;

/// The OpenAPI document of `/v1` as served: without the `openapi` feature, the committed
/// `docs/openapi.json` as is (the feature generates it, and its tests keep the file current).
#[cfg(not(feature = "openapi"))]
pub fn openapi_json() -> &'static str {
    include_str!("../../../docs/openapi.json")
}

pub type HttpResponse = Response<Full<Bytes>>;

/// Longer request targets are refused with 414 in the face's format (hyper's own, much larger
/// limit answers without a body).
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The route label of a request that matched no route (ids never become labels).
const UNMATCHED: &str = "unmatched";

/// Serves until `shutdown` flips to true, then stops accepting and lets in-flight requests
/// finish for at most `limits.shutdown_grace` before closing what is left.
pub async fn serve(listener: TcpListener, app: Arc<Paygate>, limits: Limits, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = server::RefusalLog::default();
    let started = Instant::now();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: say so, and let the backlog wait.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    let _ = stream.try_write(server::OVER_CAPACITY);
                    refusals.refused(started, limits.max_connections);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (app, limits, mut conn_shutdown) = (app.clone(), limits.clone(), shutdown.clone());
                connections.spawn(async move {
                    let _slot = slot;
                    let state = server::ConnState::new();
                    let io = TokioIo::new(server::Watched::new(stream, state.clone()));
                    let (service_state, body_timeout) = (state.clone(), limits.body_read_timeout);
                    let service = service_fn(move |req| {
                        let in_flight = service_state.request_started();
                        handle(app.clone(), peer, req, body_timeout, in_flight)
                    });
                    let conn = http1::Builder::new().keep_alive(true).serve_connection(io, service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        reason = server::watchdog(state.clone(), limits.clone()) => {
                            tracing::info!(%peer, reason, "closing connection");
                        }
                        _ = conn_shutdown.changed() => {
                            conn.as_mut().graceful_shutdown();
                            tokio::select! {
                                _ = conn.as_mut() => {}
                                _ = server::watchdog(state, limits) => {}
                            }
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(limits.shutdown_grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        connections.shutdown().await;
    }
}

async fn handle(
    app: Arc<Paygate>,
    peer: SocketAddr,
    req: Request<Incoming>,
    body_timeout: std::time::Duration,
    in_flight: server::InFlight,
) -> Result<Response<streamed::ServedBody>, std::convert::Infallible> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let method = req.method().clone();
    // Every line logged while this request runs carries its id, method, route and app (faces
    // record the app once they know it); the last one says how it ended.
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %method,
        route = tracing::field::Empty,
        app = tracing::field::Empty
    );
    let work = async move {
        let (parts, body) = req.into_parts();
        let close = sends_body_on_connect(&parts.headers);
        // Most requests (every GET) have no body: nothing to wait for, so no timer to set.
        let body = if hyper::body::Body::is_end_stream(&body) {
            Ok(Some(Bytes::new()))
        } else {
            tokio::time::timeout(body_timeout, read_body(body)).await
        };
        let (mut response, template) = route(&app, Req::new(parts, Bytes::new(), peer), body).await;
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        app.metrics.observe_request(
            method_label(&method),
            template.unwrap_or(UNMATCHED),
            status,
            elapsed.as_secs_f64(),
        );
        tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "answered");
        let headers = response.headers_mut();
        // The id is already on the span; the header takes its bytes without copying them.
        if let Ok(value) = hyper::header::HeaderValue::from_maybe_shared(Bytes::from(request_id)) {
            headers.insert(hyper::header::HeaderName::from_static("x-request-id"), value);
        }
        if close {
            headers.insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
        }
        drop(in_flight);
        response
    };
    // Run each request to completion on its own task: a client that disconnects mid-refund must
    // not cancel the work between the reservation and the channel's answer.
    let task = tokio::spawn(work.instrument(span));
    let response =
        task.await.unwrap_or_else(|_| pingpp::error_response(&Problem::internal("a request handler panicked")));
    Ok(streamed::into_served(response))
}

/// The metrics label of a method: the standard ones without copying their names.
fn method_label(method: &Method) -> std::borrow::Cow<'static, str> {
    let name = match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => return method.as_str().to_string().into(),
    };
    name.into()
}

/// The caller's `X-Request-Id` when it is a sane token (1–128 of `[A-Za-z0-9._:/+=-]`), so a
/// proxy's id follows the request through; otherwise a fresh one.
fn request_id(req: &Request<Incoming>) -> String {
    let given = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).filter(|v| {
        (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:/+=-".contains(&b))
    });
    if let Some(id) = given {
        return id.to_string();
    }
    let mut seed = [0u8; 32];
    if getrandom::getrandom(&mut seed).is_err() {
        // No randomness: a time-based id still tells requests apart in the log.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos());
        return format!("req_t{}", nanos.unwrap_or(0));
    }
    format!("req_{}", paygate_domain::ids::random_chars(b"0123456789abcdefghijklmnopqrstuvwxyz", 20, &seed))
}

/// The official Ping++ Node SDK (2.x) writes its request body when the socket emits `connect`;
/// Node ≥ 19 reuses keep-alive sockets by default, which never emit it again, so its second
/// request on a connection would hang forever. Closing after each response keeps that SDK
/// working unchanged; every other client keeps its keep-alive connection.
fn sends_body_on_connect(headers: &hyper::HeaderMap) -> bool {
    headers
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ua| ua.starts_with("Pingpp/v1 NodeBindings/"))
}

/// Past this, an oversized body is no longer drained and the connection is simply closed.
const DRAIN_LIMIT: usize = 16 * MAX_BODY_BYTES;

/// The body, or `None` when it exceeds [`MAX_BODY_BYTES`]. An oversized body is still read (and
/// dropped) up to [`DRAIN_LIMIT`], so a client that sends its whole body before reading the
/// answer gets the 413 instead of a broken pipe.
async fn read_body(mut body: Incoming) -> Option<Bytes> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { return None };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                return None;
            }
        }
    }
    (seen <= MAX_BODY_BYTES).then(|| buf.freeze())
}

/// Everything the router checks before a face's handler runs, then the handler; every refusal
/// is rendered in the format of the face the request was meant for.
/// The answer, and the route template it matched (for the request log and metrics).
async fn route(
    // An `Arc` for the console's CSV export, whose producer task outlives this call.
    app: &Arc<Paygate>,
    mut req: Req,
    body: Result<Option<Bytes>, tokio::time::error::Elapsed>,
) -> (HttpResponse, Option<&'static str>) {
    let segments: Vec<String> = req.segments();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["notify", "wechat", rest @ ..] = segs.as_slice() {
        // WeChat Pay's notifications answer in WeChat's formats, not a face's: handled before the face tables.
        let template = wechat_notify::template(rest);
        tracing::Span::current().record("route", template);
        let body = body.ok().flatten();
        return (Box::pin(wechat_notify::handle(app, &req, rest, body.as_ref())).await, Some(template));
    }
    if let ["notify", "alipay", rest @ ..] = segs.as_slice() {
        // Alipay's notifications answer `success` / `failure`, not a face's format.
        let template = alipay_notify::template(rest);
        tracing::Span::current().record("route", template);
        let body = body.ok().flatten();
        return (Box::pin(alipay_notify::handle(app, &req, rest, body.as_ref())).await, Some(template));
    }
    let (face, rest) = routes::face_of(&segs);
    let template = if routes::known_prefix(&segs) { face.template(rest) } else { None };
    // Named on the span before the handler runs, so its own log lines carry it too.
    tracing::Span::current().record("route", template.unwrap_or(UNMATCHED));
    // HEAD is GET without the body (hyper leaves the body out of the answer).
    let head = req.method == Method::HEAD;
    if head {
        req.method = Method::GET;
    }
    let allowed = face.allowed(rest, routes::known_prefix(&segs));
    let refusal = match body {
        Err(_) => {
            Some(Problem::new(ProblemKind::Http(408), "request_timeout", "The request body did not arrive in time."))
        }
        Ok(None) => Some(request::too_large()),
        Ok(Some(bytes)) => {
            req.body = bytes;
            None
        }
    };
    let refusal = refusal.or_else(|| {
        if req.raw_uri.len() > MAX_URI_BYTES {
            return Some(Problem::new(
                ProblemKind::Http(414),
                "uri_too_long",
                format!("The request URI exceeds {MAX_URI_BYTES} bytes."),
            ));
        }
        if allowed.is_empty() {
            return Some(errors::route_not_found(&req));
        }
        let method_ok = allowed.contains(&req.method) || (head && allowed.contains(&Method::HEAD));
        if !method_ok {
            return Some(errors::method_not_allowed(&req, &allowed));
        }
        req.check_edge(&segments).err()
    });
    // Each face's future is boxed: they hold their handlers' states (8–12 KB each), and inline
    // they made every request's future that large, copied whole at each move on its way into
    // its task (a third of a retrieve's instructions were memcpy).
    let response = match refusal {
        Some(problem) => errors::render(face, &req, &problem),
        None => match face {
            Face::Ops => Box::pin(ops(app, rest)).await,
            Face::Pingpp => Box::pin(pingpp::handle(app, &req, rest)).await,
            Face::Hserve => Box::pin(hserve::handle(app, &req, rest)).await,
            Face::Cashier => Box::pin(cashier::handle(app, &req, rest.first().copied().unwrap_or_default())).await,
            Face::Saas => Box::pin(saas::handle(app, &req)).await,
            Face::SandboxPage => {
                Box::pin(sandbox_page::handle(app, &req, rest.first().copied().unwrap_or_default())).await
            }
            Face::Console => Box::pin(console::handle(app, &req, rest)).await,
        },
    };
    (errors::finish(response, &allowed), template)
}

/// `/healthz`: the process answers (liveness). `/readyz`: it can also reach its database
/// (readiness: a load balancer sends traffic only to ready nodes).
async fn ops(app: &Paygate, path: &[&str]) -> HttpResponse {
    match path {
        ["metrics"] => {
            let mut response = request::text_owned(StatusCode::OK, app.metrics_text().await);
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        // Public, like the API reference it is: no key needed to read it.
        ["openapi.json"] => request::json(StatusCode::OK, openapi_json().as_bytes().to_vec()),
        ["readyz"] => match app.store.ready().await {
            Ok(()) => request::text(StatusCode::OK, "ready\n"),
            Err(problem) => {
                errors::log_problem(&problem);
                request::text(StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
            }
        },
        _ => request::text(StatusCode::OK, "ok\n"),
    }
}
