//! `ProxyBody`, the one body type of the main listener's responses: the upstream's body as it
//! arrives, a body the proxy holds whole (its problems), or one already boxed (a rewritten or
//! decoded body, the `/-/` endpoints' answers); with the request's in-flight slot, kept until the
//! body is done.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::OwnedSemaphorePermit;

/// What a body's failure is, whichever kind it is.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body of the main listener.
pub(crate) struct ProxyBody {
    kind: Kind,
    /// The in-flight slot (load shedding), released when the body is dropped: after its end.
    slot: Option<OwnedSemaphorePermit>,
}

enum Kind {
    /// Whole, sent in one frame (`None` once sent, or empty from the start).
    Full(Option<Bytes>),
    /// The upstream's body, passed on frame by frame.
    Upstream(Incoming),
    /// Any other body (rewritten links, decoded gzip, the `/-/` endpoints).
    Boxed(axum::body::Body),
}

impl ProxyBody {
    /// A body held whole.
    pub(crate) fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Self::of(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// The upstream's body.
    pub(crate) fn upstream(body: Incoming) -> Self {
        Self::of(Kind::Upstream(body))
    }

    /// A body already boxed.
    pub(crate) fn boxed(body: axum::body::Body) -> Self {
        Self::of(Kind::Boxed(body))
    }

    fn of(kind: Kind) -> Self {
        Self { kind, slot: None }
    }

    /// This body, holding `slot` until it is done.
    pub(crate) fn holding(mut self, slot: OwnedSemaphorePermit) -> Self {
        self.slot = Some(slot);
        self
    }
}

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Upstream(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BoxError::from))),
            Kind::Boxed(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(BoxError::from))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Upstream(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Upstream(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http_body::Body as _;
    use http_body_util::BodyExt;
    use tokio::sync::Semaphore;

    use super::*;

    #[tokio::test]
    async fn a_whole_body_is_one_frame_of_its_exact_length() {
        let body = ProxyBody::full("problem\n");
        assert_eq!(body.size_hint().exact(), Some(8));
        assert!(!body.is_end_stream());
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"problem\n");
        assert!(ProxyBody::full("").is_end_stream());
    }

    #[tokio::test]
    async fn the_slot_is_released_when_the_body_is_dropped_not_before() {
        let slots = Arc::new(Semaphore::new(1));
        let body = ProxyBody::boxed(axum::body::Body::from("x"))
            .holding(slots.clone().try_acquire_owned().unwrap());
        assert_eq!(slots.available_permits(), 0);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"x");
        assert_eq!(slots.available_permits(), 1);
    }
}
