//! Content codings (RFC 9110 section 8.4): whether a client accepts gzip, which coding a response
//! carries, and gzip decoding as a body streams. Link rewriting needs the text of a body, and
//! Microsoft's APIs gzip it for clients that ask, so a rewriting route asks for gzip and decodes
//! here; this module only knows codings, not routes.

use std::io;

use axum::BoxError;
use axum::body::Bytes;
use futures_util::{Stream, TryStreamExt};
use http::header::{self, HeaderMap};
use http_body_util::BodyExt;
use tokio_util::io::{ReaderStream, StreamReader};

/// The most each decoded chunk holds.
const DECODED_CHUNK: usize = 16 * 1024;

/// The content coding of a response, as far as the proxy can undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    /// No `Content-Encoding`: the body is as it is.
    Identity,
    /// `gzip` (or its alias `x-gzip`) alone.
    Gzip,
    /// Anything else (`br`, several codings, `identity` spelled out): left as it is.
    Other,
}

impl Coding {
    /// The coding `headers` declare.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
        let Some(value) = values.next() else {
            return Self::Identity;
        };
        let gzip = values.next().is_none()
            && matches!(
                value
                    .as_bytes()
                    .trim_ascii()
                    .to_ascii_lowercase()
                    .as_slice(),
                b"gzip" | b"x-gzip"
            );
        if gzip { Self::Gzip } else { Self::Other }
    }
}

/// Whether a request with these headers accepts a gzip-coded response: `gzip` (or `x-gzip`), else
/// `*`, listed with a weight above zero (RFC 9110 section 12.5.3). No `Accept-Encoding` at all
/// means any coding, but clients that send none (curl) do not decode; the proxy treats it as no.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut star = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut params = item.split(';');
            let coding = params.next().unwrap_or_default().trim();
            let weight = params
                .filter_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .or_else(|| p.trim().strip_prefix("Q="))
                })
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return weight > 0.0;
            }
            if coding == "*" {
                star = weight > 0.0;
            }
        }
    }
    star
}

/// `body`, a gzip stream (RFC 1952; concatenated members too), decoded as it arrives. A body that
/// fails to arrive or to decode (corrupt, truncated, bad checksum) ends with that error, after what
/// decoded before it; nothing is buffered beyond the decoder's window and one chunk.
pub(crate) fn gunzip<B>(body: B) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let compressed = body.into_data_stream().map_err(io::Error::other);
    let mut decoder =
        async_compression::tokio::bufread::GzipDecoder::new(StreamReader::new(compressed));
    decoder.multiple_members(true);
    ReaderStream::with_capacity(decoder, DECODED_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http::HeaderValue;
    use http_body_util::Full;
    use tokio::io::AsyncReadExt;

    fn with(name: header::HeaderName, values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name.clone(), HeaderValue::from_static(value));
        }
        headers
    }

    async fn gzip(text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        async_compression::tokio::bufread::GzipEncoder::new(text)
            .read_to_end(&mut out)
            .await
            .unwrap();
        out
    }

    async fn decode(compressed: Vec<u8>) -> (Vec<u8>, Option<io::Error>) {
        let mut stream = std::pin::pin!(gunzip(Full::new(Bytes::from(compressed))));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(error) => return (out, Some(error)),
            }
        }
        (out, None)
    }

    #[test]
    fn gzip_is_accepted_when_listed_with_a_weight_or_by_a_star() {
        let accept = |values: &[&'static str]| accepts_gzip(&with(header::ACCEPT_ENCODING, values));
        assert!(accept(&["gzip, deflate"]));
        assert!(
            accept(&["gzip, deflate, br, zstd"]),
            "Python requests and httpx"
        );
        assert!(accept(&["br", "GZip;q=0.5"]));
        assert!(accept(&["x-gzip"]));
        assert!(accept(&["*"]));
        assert!(!accept(&[]), "no header: curl, which does not decode");
        assert!(!accept(&["identity"]));
        assert!(!accept(&["br, deflate"]));
        assert!(
            !accept(&["gzip;q=0, *"]),
            "an explicit refusal wins over the star"
        );
        assert!(!accept(&["gzip; q=0.000"]));
        assert!(!accept(&["*;q=0"]));
    }

    #[test]
    fn only_a_lone_gzip_is_a_coding_the_proxy_undoes() {
        let coding = |values: &[&'static str]| Coding::of(&with(header::CONTENT_ENCODING, values));
        assert_eq!(coding(&[]), Coding::Identity);
        assert_eq!(coding(&["gzip"]), Coding::Gzip);
        assert_eq!(coding(&[" GZIP "]), Coding::Gzip);
        assert_eq!(coding(&["x-gzip"]), Coding::Gzip);
        assert_eq!(coding(&["br"]), Coding::Other);
        assert_eq!(coding(&["identity"]), Coding::Other);
        assert_eq!(coding(&["gzip, br"]), Coding::Other);
        assert_eq!(coding(&["gzip", "gzip"]), Coding::Other);
    }

    #[tokio::test]
    async fn a_gzip_body_decodes_whole_and_a_damaged_one_ends_with_an_error() {
        let text = br#"{"@odata.nextLink":"https://graph.microsoft.com/v1.0/x"}"#.repeat(2000);
        let compressed = gzip(&text).await;
        let (decoded, error) = decode(compressed.clone()).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(decoded, text);

        let (decoded, error) = decode(compressed[..compressed.len() / 2].to_vec()).await;
        assert!(error.is_some(), "truncated");
        assert!(decoded.len() < text.len() && text.starts_with(&decoded));

        let mut flipped = compressed.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 0xff;
        assert!(decode(flipped).await.1.is_some(), "a wrong checksum");
        assert!(decode(b"not gzip at all".to_vec()).await.1.is_some());
        let mut two = gzip(b"one ").await;
        two.extend(gzip(b"two").await);
        let (decoded, error) = decode(two).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(decoded, b"one two", "concatenated members");
    }
}
