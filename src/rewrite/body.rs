//! Rewriting a response body: at once when the whole body arrives in its first frame (a JSON page
//! usually does), so that the response keeps a Content-Length; otherwise as it streams, chunked.
//! What holds no link is handed on as it came, without copying. A body that fails mid-way (the
//! upstream went away, its gzip did not decode) ends with that error, and what was held back as
//! the possible start of a link is dropped, never sent as if it were whole.

use std::time::Duration;

use axum::BoxError;
use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use http::{HeaderValue, Response, header};
use http_body_util::BodyExt;

use super::Links;
use super::json::Scan;

/// A response body with its links rewritten.
pub(crate) enum Rewritten {
    /// The whole body, which came in one frame.
    Whole(Bytes),
    /// The body as it streams.
    Streaming(Body),
}

impl Links {
    /// The response with the links of its body rewritten. When the upstream declared a length and
    /// the whole body comes in the first frame within `wait`, it is rewritten at once and keeps a
    /// (new) Content-Length; otherwise the body streams and goes out chunked.
    pub(crate) async fn response<B>(
        self,
        mut parts: http::response::Parts,
        mut body: B,
        wait: Duration,
    ) -> Response<Rewritten>
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
                            let length = data.len();
                            let data = self.rewrite_whole(data);
                            // Most pages hold no link to rewrite, and keep their Content-Length.
                            if data.len() != length {
                                parts
                                    .headers
                                    .insert(header::CONTENT_LENGTH, HeaderValue::from(data.len()));
                            }
                            return Response::from_parts(parts, Rewritten::Whole(data));
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
        Response::from_parts(parts, Rewritten::Streaming(self.stream(first, body)))
    }

    /// `body`, after `first` (already read from it), with its links rewritten as it streams.
    fn stream<B>(self, first: Option<Result<Bytes, B::Error>>, body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<BoxError> + Send + 'static,
    {
        let data = futures_util::stream::iter(first).chain(body.into_data_stream());
        let state = (data, Vec::new(), Scan::default(), self, false);
        let stream = futures_util::stream::unfold(
            state,
            |(mut data, mut pending, mut scan, links, done)| async move {
                if done {
                    return None;
                }
                loop {
                    match data.next().await {
                        Some(Ok(chunk)) => {
                            let out = links.chunk(&mut scan, chunk, &mut pending);
                            if !out.is_empty() {
                                return Some((Ok(out), (data, pending, scan, links, false)));
                            }
                        }
                        // `pending` (at most a link's start) is dropped with the stream.
                        Some(Err(error)) => {
                            return Some((Err(error), (data, pending, scan, links, true)));
                        }
                        None => {
                            let out = links.process(&mut scan, &mut pending, true);
                            let state = (data, pending, scan, links, true);
                            return Some((Ok(Bytes::from(out)), state));
                        }
                    }
                }
            },
        );
        Body::from_stream(stream)
    }

    /// What of `chunk` can go out now, rewritten; `scan` is where the body's scanning stands, and
    /// `pending` holds the start of a link value not complete yet. A chunk without links goes out
    /// as it is (a slice of it, when its end starts a link value).
    fn chunk(&self, scan: &mut Scan, chunk: Bytes, pending: &mut Vec<u8>) -> Bytes {
        if !pending.is_empty() {
            pending.extend_from_slice(&chunk);
            return Bytes::from(self.process(scan, pending, false));
        }
        let found = scan.find(&self.table, &chunk, false);
        let clean = found.hold.unwrap_or(chunk.len());
        pending.extend_from_slice(&chunk[clean..]);
        if found.edits.is_empty() {
            return chunk.slice(..clean);
        }
        Bytes::from(self.apply(&chunk, &found))
    }

    /// A whole body, rewritten; itself when it holds no link.
    fn rewrite_whole(&self, body: Bytes) -> Bytes {
        let found = Scan::default().find(&self.table, &body, true);
        if found.edits.is_empty() {
            return body;
        }
        Bytes::from(self.apply(&body, &found))
    }

    /// The rewriting of a whole body arriving in `chunks`, as [`Links::response`] does it as it
    /// streams (for fuzzing and benchmarks).
    pub fn rewrite_chunks<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let (mut scan, mut pending, mut out) = (Scan::default(), Vec::new(), Vec::new());
        for chunk in chunks {
            let chunk = Bytes::copy_from_slice(chunk);
            out.extend_from_slice(&self.chunk(&mut scan, chunk, &mut pending));
        }
        out.extend(self.process(&mut scan, &mut pending, true));
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
        let (mut scan, mut pending) = (Scan::default(), Vec::new());
        let chunk = Bytes::from_static(
            br#"{"value":[{"id":"da1","title":"https://graph.microsoft.com/v1.0/x"}],"nextLink":"htt"#,
        );
        let out = links.chunk(&mut scan, chunk.clone(), &mut pending);
        assert_eq!(
            out.as_ptr(),
            chunk.as_ptr(),
            "a slice of the chunk, not a copy"
        );
        assert_eq!(out, chunk[..chunk.len() - 3]);
        assert_eq!(pending, b"htt");
        let out = links.chunk(
            &mut scan,
            Bytes::from_static(b"ps://graph.microsoft.com/v1.0/x\"}"),
            &mut pending,
        );
        assert_eq!(out, "http://127.0.0.1:8080/graph/v1.0/x\"}");
        assert!(pending.is_empty());
    }

    #[test]
    fn a_whole_body_is_itself_without_links_and_rewritten_with_them() {
        let links = links();
        let plain =
            Bytes::from_static(br#"{"value":[{"id":"https://graph.microsoft.com/v1.0/x"}]}"#);
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
