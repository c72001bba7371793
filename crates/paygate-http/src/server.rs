//! Accepting and holding connections: a cap on how many are open, a deadline for a request's
//! head, an idle timeout between requests, a stall timeout for a client that stops reading our
//! answer, and a graceful shutdown that has a deadline. Everything a client can hold open has
//! a limit here.
//!
//! hyper's own `header_read_timeout` starts counting as soon as a connection waits for its
//! next request, so it cannot tell a silent keep-alive connection (fine for a while) from a
//! request whose head trickles in (an attack). [`Watched`] wraps the socket and records what
//! each connection is doing, so the watchdog can apply each limit to what it is meant for.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Limits on what clients can hold open; `Default` gives the documented defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections at most; more are answered 503 and closed at once.
    pub max_connections: usize,
    /// From the first byte of a request until its head (request line and headers) is complete.
    pub header_read_timeout: Duration,
    /// From the head until the whole body has arrived (408 after that).
    pub body_read_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this long.
    pub idle_timeout: Duration,
    /// A client that reads nothing of our answer for this long is disconnected.
    pub write_stall_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish; then connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_stall_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// What one connection is doing, shared by its socket wrapper, its service and its watchdog.
/// Times are milliseconds since the connection opened; 0 means "not set".
pub(crate) struct ConnState {
    opened: Instant,
    /// Requests whose handler has started and whose response is not yet handed to hyper.
    in_flight: AtomicUsize,
    last_activity: AtomicU64,
    /// When the first byte of a request that has not reached the handler yet arrived.
    head_started: AtomicU64,
    /// When a write first returned `Pending` without progress since.
    write_blocked: AtomicU64,
}

impl ConnState {
    pub(crate) fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_activity: AtomicU64::new(1),
            head_started: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        // +1 keeps 0 free to mean "not set".
        self.opened.elapsed().as_millis() as u64 + 1
    }

    /// The handler of a request starts: its head is complete.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.head_started.store(0, Ordering::SeqCst);
        InFlight(self.clone())
    }

    fn read_some(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::SeqCst) == 0 {
            let _ = self.head_started.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
        }
    }

    /// Why this connection should be closed now, if it should.
    fn verdict(&self, limits: &Limits) -> Option<&'static str> {
        let now = self.now();
        let older_than =
            |since: u64, limit: Duration| since != 0 && now.saturating_sub(since) > limit.as_millis() as u64;
        if older_than(self.write_blocked.load(Ordering::SeqCst), limits.write_stall_timeout) {
            return Some("client stopped reading the response");
        }
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        if older_than(self.head_started.load(Ordering::SeqCst), limits.header_read_timeout) {
            return Some("request head not completed in time");
        }
        if older_than(self.last_activity.load(Ordering::Relaxed), limits.idle_timeout) {
            return Some("idle");
        }
        None
    }
}

/// Marks a request in flight until dropped (also when its task is cancelled).
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.last_activity.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Resolves when the connection has broken one of the limits, with the reason.
pub(crate) async fn watchdog(state: Arc<ConnState>, limits: Limits) -> &'static str {
    let shortest = [limits.header_read_timeout, limits.idle_timeout, limits.write_stall_timeout].into_iter().min();
    let tick =
        (shortest.unwrap_or(Duration::from_secs(1)) / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::time::sleep(tick).await;
        if let Some(reason) = state.verdict(&limits) {
            return reason;
        }
    }
}

/// A socket that tells its [`ConnState`] when bytes move.
pub(crate) struct Watched<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Watched<S> {
        Watched { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        self.note_write(&polled);
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&polled);
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> Watched<S> {
    fn note_write(&self, polled: &Poll<io::Result<usize>>) {
        match polled {
            Poll::Pending => {
                let now = self.state.now();
                let _ = self.state.write_blocked.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
            }
            Poll::Ready(_) => {
                self.state.write_blocked.store(0, Ordering::SeqCst);
                self.state.last_activity.store(self.state.now(), Ordering::Relaxed);
            }
        }
    }
}

/// What a client beyond the connection cap reads before its connection is closed.
pub(crate) const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 112\r\n\r\n\
{\"error\":{\"type\":\"api_error\",\"code\":\"too_many_connections\",\
\"message\":\"Too many open connections.\",\"param\":null}}";

/// Logs refusals at most once a second, with how many there were since the last line, so a
/// flood cannot flood the log too.
#[derive(Default)]
pub(crate) struct RefusalLog {
    refused: AtomicU64,
    last_logged_ms: AtomicU64,
}

impl RefusalLog {
    pub(crate) fn refused(&self, started: Instant, cap: usize) {
        let count = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = started.elapsed().as_millis() as u64 + 1000;
        let last = self.last_logged_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self.last_logged_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.refused.fetch_sub(count, Ordering::Relaxed);
            tracing::warn!(cap, refused = count, "connection limit reached: refused connections with 503");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn over_capacity_answer_has_the_length_it_says() {
        let text = std::str::from_utf8(super::OVER_CAPACITY).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        assert_eq!(body.len(), 112);
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
