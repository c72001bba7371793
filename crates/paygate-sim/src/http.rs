//! A small HTTP/1.1 server for simulators: every request read whole (bounded), handed to one handler, which
//! answers or asks for the connection to be dropped without an answer (a simulated timeout).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
pub use tokio_rustls::TlsAcceptor;

/// The largest request body a simulator reads.
pub const MAX_BODY: usize = 1024 * 1024;
/// The largest body of a bulk seed (`/sim/…/bills/seed`): 100 000 rows of JSON are about 10 MiB.
pub const MAX_SEED_BODY: usize = 64 * 1024 * 1024;

pub type Reply = hyper::Response<Full<Bytes>>;

/// A request, read whole.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// The raw query, without `?` (empty when none).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether the connection came with a client certificate the TLS layer verified (mutual TLS).
    pub client_cert: bool,
}

impl Request {
    /// The path and query exactly as the client sent them (what a v3 signature covers).
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn body_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }

    /// A query parameter's raw value.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// What the handler wants done with a request.
pub enum Outcome {
    Reply(Reply),
    /// Hold the connection this long, then close it without an answer.
    Drop(Duration),
}

pub fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut r = hyper::Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE, v);
    }
    r
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Reply {
    reply(status, "application/json", value.to_string())
}

/// The `/sim/…` control APIs' error answer: `{"error": message}`.
pub fn control_error(status: StatusCode, message: impl Into<String>) -> Reply {
    json(status, &serde_json::json!({"error": message.into()}))
}

/// A control call's body: a JSON object (an empty body is `{}`), or the 400 to answer.
pub fn control_body(req: &Request) -> Result<serde_json::Value, Box<Reply>> {
    if req.body.is_empty() {
        return Ok(serde_json::json!({}));
    }
    match serde_json::from_slice(&req.body) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(Box::new(control_error(StatusCode::BAD_REQUEST, "body must be a JSON object"))),
    }
}

/// `POST /sim/…/clock {"advance_seconds": N}`: moves a simulator's business clock (`offset`) by N.
pub fn advance_clock(
    offset: &std::sync::atomic::AtomicI64,
    body: &serde_json::Value,
    now: impl Fn() -> i64,
) -> Result<serde_json::Value, String> {
    let n = body.get("advance_seconds").and_then(serde_json::Value::as_i64);
    let n = n.ok_or_else(|| "advance_seconds must be an integer".to_string())?;
    offset.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    Ok(serde_json::json!({"now": now()}))
}

/// Serves `listener` (plain HTTP, or HTTPS with `tls`) until the task is dropped; one task per connection and
/// per request.
pub async fn serve<F, Fut>(listener: TcpListener, tls: Option<TlsAcceptor>, handler: F)
where
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => connection(TokioIo::new(stream), false, handler).await,
                Some(acceptor) => {
                    let accepted = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
                    match accepted {
                        Ok(Ok(stream)) => {
                            let client_cert = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                            connection(TokioIo::new(stream), client_cert, handler).await
                        }
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

async fn connection<IO, F, Fut>(io: TokioIo<IO>, client_cert: bool, handler: F) -> Result<(), String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        async move {
            let (parts, body) = req.into_parts();
            let limit = if parts.uri.path().ends_with("/bills/seed") { MAX_SEED_BODY } else { MAX_BODY };
            let body = match Limited::new(body, limit).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok::<_, std::io::Error>(reply(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "text/plain",
                        "body too large or unreadable",
                    ))
                }
            };
            let request = Request {
                method: parts.method,
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or("").to_string(),
                headers: parts.headers,
                body,
                client_cert,
            };
            // The handler runs on its own task so a client that goes away cannot cancel a half-done change.
            match tokio::spawn(handler(request)).await {
                Ok(Outcome::Reply(r)) => Ok(r),
                Ok(Outcome::Drop(after)) => {
                    tokio::time::sleep(after).await;
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "simulated timeout"))
                }
                Err(e) => {
                    tracing::error!(error = %e, "simulator handler failed");
                    Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "simulator error"))
                }
            }
        }
    });
    http1::Builder::new().serve_connection(io, service).await.map_err(|e| e.to_string())
}

/// A TLS acceptor from PEM: the server's certificate chain and key, and (for mutual TLS) the CA that signs
/// client certificates. A client without a certificate is still let in; routes that need one check
/// [`Request::client_cert`].
pub fn tls_acceptor(cert_pem: &str, key_pem: &str, client_ca_pem: Option<&str>) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls cert: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| format!("tls key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?;
    let builder = match client_ca_pem {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                roots.add(cert.map_err(|e| format!("client ca: {e}"))?).map_err(|e| format!("client ca: {e}"))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| format!("client ca: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| format!("tls: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// POSTs `body` to `url` on the calling (blocking) thread: no redirects followed, `timeout_ms` for the whole
/// attempt. Answers the status and body of any HTTP answer (4xx/5xx included); an error only when none came.
pub fn post(
    url: &str,
    content_type: &str,
    headers: &[(String, String)],
    body: &str,
    timeout_ms: u64,
) -> Result<(u16, String), String> {
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_millis(timeout_ms)).redirects(0).build();
    let mut request = agent.post(url).set("Content-Type", content_type).set("User-Agent", "Mozilla/4.0 (paygate-sim)");
    for (k, v) in headers {
        request = request.set(k, v);
    }
    match request.send_string(body) {
        Ok(resp) => {
            let status = resp.status();
            Ok((status, resp.into_string().unwrap_or_default()))
        }
        Err(ureq::Error::Status(status, resp)) => Ok((status, resp.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}
