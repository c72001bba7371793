//! Bodies written while they are sent (the console's CSV export). Every face renders a whole
//! [`HttpResponse`] (`Full<Bytes>`); a streamed answer is such a response with an empty body and a
//! [`Streamed`] extension holding the receiving end of a bounded channel. [`into_served`], at the very
//! end of the request, swaps the two: hyper then writes each chunk as the producer task sends it, and
//! the bound (a few chunks) makes a slow reader slow the producer down instead of filling memory.
//! A producer that fails sends an error: hyper aborts the response, so a reader never takes a
//! truncated file for a whole one. A reader that goes away drops the receiver; the producer's next
//! send fails and it stops.

use crate::HttpResponse;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Frame};
use hyper::Response;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A chunk, or why the rest of the body cannot be written.
pub(crate) type Chunk = Result<Bytes, std::io::Error>;

/// What the server sends: a rendered body, or chunks from a channel.
pub type ServedBody = Either<Full<Bytes>, ChannelBody>;

/// Chunks in flight between the producer and the socket: enough to keep both busy, never a whole export.
const IN_FLIGHT: usize = 4;

/// The extension that marks a response as streamed (extensions must be `Clone`; the receiver is taken once).
#[derive(Clone)]
struct Streamed(Arc<Mutex<Option<mpsc::Receiver<Chunk>>>>);

/// A channel to write a body into, and a `200` response (headers still to be added) that will send it.
pub(crate) fn channel(content_type: &'static str) -> (mpsc::Sender<Chunk>, HttpResponse) {
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let mut response = Response::new(Full::new(Bytes::new()));
    response.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(content_type));
    response.extensions_mut().insert(Streamed(Arc::new(Mutex::new(Some(rx)))));
    (tx, response)
}

/// The body the server writes for `response`: its channel when it has one, else its rendered bytes.
pub(crate) fn into_served(mut response: HttpResponse) -> Response<ServedBody> {
    let rx = response.extensions_mut().remove::<Streamed>().and_then(|s| s.0.lock().ok().and_then(|mut r| r.take()));
    match rx {
        Some(rx) => response.map(|_| Either::Right(ChannelBody { rx })),
        None => response.map(Either::Left),
    }
}

/// The receiving end of a streamed body.
pub struct ChannelBody {
    rx: mpsc::Receiver<Chunk>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|c| c.map(Frame::data)))
    }
}
