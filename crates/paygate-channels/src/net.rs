//! How channel adapters call a channel over HTTP: ureq on the blocking pool with connect/read timeouts, no
//! redirects, and the private-address guard. One definition for every adapter (WeChat Pay, Alipay): the base URL
//! is the merchant's, so unless the operator allows private targets every resolved address must be public (the
//! same rule as webhooks), checked after DNS at every request.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Where an adapter may connect, and how long it waits.
#[derive(Clone, Copy)]
pub struct NetPolicy {
    /// The operator's switch (`PAYGATE_CHANNEL_ALLOW_PRIVATE`): loopback/private/link-local targets allowed.
    pub allow_private: bool,
    /// Which addresses count as public (paygate-core's webhook rule, passed in so both use one definition).
    pub is_public: fn(IpAddr) -> bool,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl std::fmt::Debug for NetPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetPolicy")
            .field("allow_private", &self.allow_private)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// What the channel answered on the wire.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Part of the reason when the guard refused a target: a target never called is known, not an outage.
pub(crate) const PRIVATE_REFUSAL: &str = "refused by the private-address guard";
const ALLOW_HINT: &str = "PAYGATE_CHANNEL_ALLOW_PRIVATE=1 allows it";

/// An agent with the policy's timeouts, no redirects and the guard.
pub(crate) fn agent(net: NetPolicy) -> ureq::Agent {
    agent_builder(net).build()
}

/// The same, for an adapter that adds to it (a client certificate).
pub(crate) fn agent_builder(net: NetPolicy) -> ureq::AgentBuilder {
    ureq::AgentBuilder::new()
        .timeout_connect(net.connect_timeout)
        .timeout_read(net.read_timeout)
        .timeout_write(net.read_timeout)
        .redirects(0)
        .resolver(GuardedResolver { net })
}

/// The certificates of a PEM text (`what` names it in errors); at least one.
pub fn certificates_pem(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no CERTIFICATE block"));
    }
    Ok(certs)
}

/// A TLS client configuration for channel calls: the public web roots plus the operator's extra roots
/// (`--channel-ca-file`, so tests and private deployments can trust their own CA), and, for mutual TLS, a
/// client certificate chain and its key (PEM; PKCS#1, PKCS#8 or SEC1).
pub fn tls_config(
    extra_roots_pem: Option<&str>,
    client: Option<(&str, &str)>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(pem) = extra_roots_pem {
        for cert in certificates_pem(pem, "channel_ca_file")? {
            roots.add(cert).map_err(|e| format!("channel_ca_file: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls: {e}"))?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert_pem, key_pem)) => {
            let chain = certificates_pem(cert_pem, "client_certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                .map_err(|e| format!("client_key: not a PEM private key: {e}"))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("client_certificate/client_key: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Sends one request on the blocking pool. Any status is an answer; `Err` (the reason) means no answer at all.
pub(crate) async fn send(
    agent: &ureq::Agent,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
) -> Result<Answer, String> {
    on_blocking_pool(agent, method, url, headers, body, |response| {
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|n| response.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let body = response.into_string().map_err(|e| format!("reading the answer: {e}"))?;
        Ok(Answer { status, headers, body })
    })
    .await
}

/// The largest file a download (a daily bill) may be: a busy merchant's day is tens of MiB, and more than this is
/// not a bill paygate can hold in memory.
pub(crate) const MAX_DOWNLOAD_BYTES: u64 = 256 * 1024 * 1024;

/// What a download answered: the body as bytes (bills are GBK, gzip or ZIP, never assumed to be text).
#[derive(Debug)]
pub(crate) struct Download {
    pub status: u16,
    pub body: Vec<u8>,
}

/// As [`send`], reading the body as bytes, at most `limit` of them: a longer body is an error (not a cut file).
pub(crate) async fn download(
    agent: &ureq::Agent,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    limit: u64,
) -> Result<Download, String> {
    use std::io::Read as _;
    on_blocking_pool(agent, method, url, headers, body, move |response| {
        let status = response.status();
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading the answer: {e}"))?;
        if bytes.len() as u64 > limit {
            return Err(format!("the answer is larger than {limit} bytes"));
        }
        Ok(Download { status, body: bytes })
    })
    .await
}

/// One request on the blocking pool (ureq blocks), its answer — whatever the status — read by `read`; `Err` (the
/// reason) when there was no answer at all.
async fn on_blocking_pool<T: Send + 'static>(
    agent: &ureq::Agent,
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    read: impl FnOnce(ureq::Response) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let agent = agent.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut request = agent.request(method, &url);
        for (k, v) in &headers {
            request = request.set(k, v);
        }
        let result = match &body {
            Some(b) => request.send_string(b),
            None => request.call(),
        };
        match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => read(r),
            Err(ureq::Error::Transport(t)) => Err(t.to_string()),
        }
    });
    match task.await {
        Ok(result) => result,
        Err(e) => Err(format!("the request task ended: {e}")),
    }
}

/// Drops every address paygate may not call for a merchant (after DNS, at every request) unless allowed.
struct GuardedResolver {
    net: NetPolicy,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let found: Vec<SocketAddr> = match netloc.parse::<SocketAddr>() {
            Ok(literal) => vec![literal],
            Err(_) => netloc.to_socket_addrs()?.collect(),
        };
        if self.net.allow_private {
            return Ok(found);
        }
        let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            found.into_iter().partition(|a| (self.net.is_public)(a.ip()));
        if public.is_empty() && !refused.is_empty() {
            let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{PRIVATE_REFUSAL}: {netloc} is a non-public address ({}); {ALLOW_HINT}", list.join(", ")),
            ));
        }
        Ok(public)
    }
}
