//! Rewriting a response body: at once when the whole body arrives in its first frame (a JSON page
//! usually does), so that the response keeps a Content-Length; otherwise as it streams, chunked.
//! What holds no link is handed on as it came, without copying. A body that fails mid-way (the
//! upstream went away, its gzip did not decode) ends with that error, and what was held back as
//! the possible start of a link is dropped, never sent as if it were whole.

use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes};
use axum::response::Response;
use futures_util::StreamExt;
use http::{HeaderValue, header};
use http_body_util::BodyExt;

use super::{Links, Step};

impl Links {
    /// The response with the links of its body rewritten. When the upstream declared a length and
    /// the whole body comes in the first frame within `wait`, it is rewritten at once and keeps a
    /// (new) Content-Length; otherwise the body streams and goes out chunked.
    pub(crate) async fn response<B>(
        self,
        mut parts: http::response::Parts,
        mut body: B,
        wait: Duration,
    ) -> Response
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError> + Send + 'static,
    {
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut first = None;
        if declared.is_some_and(|length| length > 0) && body.size_hint().exact() == declared {
            match tokio::time::timeout(wait, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if u64::try_from(data.len()).ok() == declared {
                            let data = self.rewrite_whole(data);
                            parts
                                .headers
                                .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
                            return Response::from_parts(parts, Body::from(data));
                        }
                        first = Some(Ok(data));
                    }
                }
                Ok(Some(Err(error))) => first = Some(Err(error)),
                // Ended early, or slow to come: stream whatever comes, as before.
                Ok(None) | Err(_) => {}
            }
        }
        // The length changes with the links; the body goes out chunked.
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, self.stream(first, body))
    }

    /// `body`, after `first` (already read from it), with its links rewritten as it streams.
    fn stream<B>(self, first: Option<Result<Bytes, B::Error>>, body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError> + Send + 'static,
    {
        let data = futures_util::stream::iter(first).chain(body.into_data_stream());
        let state = (data, Vec::new(), self, false);
        let stream = futures_util::stream::unfold(
            state,
            |(mut data, mut pending, links, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match data.next().await {
                        Some(Ok(chunk)) => {
                            let out = links.chunk(chunk, &mut pending);
                            if !out.is_empty() {
                                return Some((Ok(out), (data, pending, links, false)));
                            }
                        }
                        // `pending` (at most a link's start) is dropped with the stream.
                        Some(Err(error)) => {
                            return Some((Err(error), (data, pending, links, true)));
                        }
                        None => {
                            let out = links.process(&mut pending, true);
                            return Some((Ok(Bytes::from(out)), (data, pending, links, true)));
                        }
                    }
                }
            },
        );
        Body::from_stream(stream)
    }

    /// What of `chunk` can go out now, rewritten; `pending` holds what may still start a link. A
    /// chunk without one goes out as it is (a slice of it, when its end may start one).
    fn chunk(&self, chunk: Bytes, pending: &mut Vec<u8>) -> Bytes {
        if pending.is_empty()
            && let Step::End { keep } = self.next_step(&chunk, 0, false)
        {
            let clean = chunk.len() - keep;
            pending.extend_from_slice(&chunk[clean..]);
            return chunk.slice(..clean);
        }
        pending.extend_from_slice(&chunk);
        Bytes::from(self.process(pending, false))
    }

    /// A whole body, rewritten; itself when it holds no link.
    fn rewrite_whole(&self, body: Bytes) -> Bytes {
        if let Step::End { .. } = self.next_step(&body, 0, true) {
            return body;
        }
        Bytes::from(self.process(&mut body.to_vec(), true))
    }

    /// The rewriting of a whole body arriving in `chunks`, as [`Links::response`] does it as it
    /// streams (for fuzzing and benchmarks).
    pub fn rewrite_chunks<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&self.chunk(Bytes::copy_from_slice(chunk), &mut pending));
        }
        out.extend(self.process(&mut pending, true));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::links;
    use super::*;

    #[test]
    fn a_chunk_without_links_goes_out_uncopied_and_a_possible_start_waits() {
        let links = links();
        let mut pending = Vec::new();
        let chunk = Bytes::from_static(br#"{"value":[{"id":"da1","title":"x"}],"next":"htt"#);
        let out = links.chunk(chunk.clone(), &mut pending);
        assert_eq!(
            out.as_ptr(),
            chunk.as_ptr(),
            "a slice of the chunk, not a copy"
        );
        assert_eq!(out, chunk[..chunk.len() - 3]);
        assert_eq!(pending, b"htt");
        let out = links.chunk(
            Bytes::from_static(b"ps://graph.microsoft.com/v1.0/x\"}"),
            &mut pending,
        );
        assert_eq!(out, "http://127.0.0.1:8080/graph/v1.0/x\"}");
        assert!(pending.is_empty());
    }

    #[test]
    fn a_whole_body_is_itself_without_links_and_rewritten_with_them() {
        let links = links();
        let plain = Bytes::from_static(br#"{"value":[{"id":"https://example.org/x"}]}"#);
        let out = links.rewrite_whole(plain.clone());
        assert_eq!(out.as_ptr(), plain.as_ptr());
        assert_eq!(out, plain);
        let linked = r#"{"@odata.nextLink":"https:\/\/graph.microsoft.com\/v1.0\/x?$skip=5"}"#;
        assert_eq!(
            links.rewrite_whole(Bytes::from_static(linked.as_bytes())),
            links.rewrite_chunks([linked.as_bytes()])
        );
        assert_eq!(
            links.rewrite_whole(Bytes::from_static(linked.as_bytes())),
            r#"{"@odata.nextLink":"http:\/\/127.0.0.1:8080\/graph\/v1.0\/x?$skip=5"}"#
        );
    }
}
