//! A request body's idle timeout: a body that fails once its client has sent nothing for a while,
//! so that a client that declares a length and goes quiet cannot hold a request slot.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body's client sent nothing for `0`.
#[derive(Debug)]
pub(crate) struct BodyIdle(pub(crate) Duration);

impl fmt::Display for BodyIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the client sent no request body bytes for {:?}", self.0)
    }
}

impl std::error::Error for BodyIdle {}

/// `inner`, failing with [`BodyIdle`] when a frame is awaited for longer than `idle`. The clock
/// runs only while the body waits on its client: time its reader spends elsewhere (a rate-limit
/// wait, a slow upstream taking the bytes) does not count.
pub(crate) struct IdleTimeout<B> {
    inner: B,
    idle: Duration,
    /// Armed when a poll finds no frame ready; disarmed by the next frame.
    timer: Pin<Box<Sleep>>,
    waiting: bool,
}

impl<B> IdleTimeout<B> {
    pub(crate) fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            waiting: false,
        }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if !this.waiting {
            this.waiting = true;
            // `idle` is at most a day (validation), so the deadline cannot overflow.
            this.timer.as_mut().reset(Instant::now() + this.idle);
        }
        ready!(this.timer.as_mut().poll(cx));
        this.waiting = false;
        Poll::Ready(Some(Err(Box::new(BodyIdle(this.idle)))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `error` or one of its causes is a [`BodyIdle`].
pub(crate) fn idle_in(error: &(dyn std::error::Error + 'static)) -> Option<Duration> {
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(idle) = e.downcast_ref::<BodyIdle>() {
            return Some(idle.0);
        }
        source = e.source();
    }
    None
}
