//! The HTTP server and its faces. Each face module parses its wire format, authenticates,
//! calls `paygate-core`, and renders; none of them touches storage.

mod cashier;
mod hserve;
mod pingpp;
mod saas;
mod request;
mod sandbox_page;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use paygate_core::Paygate;
use request::Incoming as Req;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use request::MAX_BODY_BYTES;

pub type HttpResponse = Response<Full<Bytes>>;

/// Serves until `shutdown` flips to true, then stops accepting and lets in-flight requests finish.
pub async fn serve(listener: TcpListener, app: Arc<Paygate>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let mut conn_shutdown = shutdown.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(app.clone(), peer, req));
                    let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = conn_shutdown.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
            _ = shutdown.changed() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    while connections.join_next().await.is_some() {}
}

async fn handle(app: Arc<Paygate>, peer: SocketAddr, req: Request<Incoming>) -> Result<HttpResponse, std::convert::Infallible> {
    // Run each request to completion on its own task: a client that disconnects mid-refund must
    // not cancel the work between the reservation and the channel's answer.
    let task = tokio::spawn(async move {
        let (parts, body) = req.into_parts();
        let close = sends_body_on_connect(&parts.headers);
        let body = match read_body(body).await {
            Some(bytes) => bytes,
            None => return request::too_large(),
        };
        let mut response = route(&app, Req::new(parts, body, peer)).await;
        if close {
            response.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
        }
        response
    });
    Ok(task.await.unwrap_or_else(|_| request::internal_error()))
}

/// The official Ping++ Node SDK (2.x) writes its request body when the socket emits `connect`;
/// Node ≥ 19 reuses keep-alive sockets by default, which never emit it again, so its second
/// request on a connection would hang forever. Closing after each response keeps that SDK
/// working unchanged; every other client keeps its keep-alive connection.
fn sends_body_on_connect(headers: &hyper::HeaderMap) -> bool {
    headers.get(hyper::header::USER_AGENT).and_then(|v| v.to_str().ok()).is_some_and(|ua| ua.starts_with("Pingpp/v1 NodeBindings/"))
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

async fn route(app: &Paygate, req: Req) -> HttpResponse {
    let segments: Vec<String> = req.segments();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["healthz"] => request::text(StatusCode::OK, "ok\n"),
        ["v1", rest @ ..] => pingpp::handle(app, &req, rest).await,
        ["hserve", rest @ ..] => hserve::handle(app, &req, rest).await,
        ["api", "v2", "cashier", op] if req.method == hyper::Method::POST => cashier::handle(app, &req, op).await,
        ["api", "v1", "pay", "wx", "query"] if req.method == hyper::Method::POST => saas::handle(app, &req).await,
        ["sandbox", "charges", charge_id] => sandbox_page::handle(app, &req, charge_id).await,
        _ => pingpp::not_found_route(&req),
    }
}
