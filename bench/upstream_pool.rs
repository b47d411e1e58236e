//! The upstream connection pool, measured (issue 11, item 5): hyper-util's pooled legacy `Client`
//! (what `src/client.rs` builds) against a minimal pool of hyper's own connection handles per
//! upstream (`hyper::client::conn::http1::SendRequest`s kept idle in a list, or one
//! `http2::SendRequest` cloned per request), both over the same rustls connector with ALPN.
//!
//!   upstream_pool util|conn URL REQUESTS CONCURRENCY
//!
//! Sends REQUESTS GETs of URL with an `Authorization` header from CONCURRENCY tasks on one runtime
//! thread (the proxy's `TOKIO_WORKER_THREADS=1`), reading every body to its end, and prints the
//! requests, seconds and requests/s. Certificates are checked against the system store, which
//! reads `SSL_CERT_FILE` when set. `bench/pool.sh` runs it against nginx, also under callgrind.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_rustls::{ConfigBuilderExt, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower::ServiceExt;

type BoxError = Box<dyn Error + Send + Sync>;

/// The connector `src/client.rs` builds: TCP with no Nagle, rustls with the system's roots, ALPN
/// offering h2 and http/1.1.
fn connector() -> Result<HttpsConnector<HttpConnector>, BoxError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let tls = rustls::ClientConfig::builder()
        .with_native_roots()?
        .with_no_client_auth();
    Ok(HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http))
}

/// A minimal pool for one upstream: idle HTTP/1.1 connections, or the one HTTP/2 connection.
struct ConnPool {
    connector: HttpsConnector<HttpConnector>,
    base: Uri,
    host: HeaderValue,
    idle: Mutex<Vec<http1::SendRequest<Body>>>,
    h2: Mutex<Option<http2::SendRequest<Body>>>,
}

impl ConnPool {
    fn new(connector: HttpsConnector<HttpConnector>, base: Uri) -> Result<Self, BoxError> {
        let host = HeaderValue::from_str(base.authority().ok_or("no authority")?.as_str())?;
        Ok(Self {
            connector,
            base,
            host,
            idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
        })
    }

    async fn request(&self, mut request: Request<Body>) -> Result<Response<Incoming>, BoxError> {
        // hyper's connection handles send the target as given: origin-form, with a Host header.
        let origin = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()?;
        *request.uri_mut() = origin;
        request
            .headers_mut()
            .insert(header::HOST, self.host.clone());
        let h2 = self
            .h2
            .lock()
            .map_err(|_| "poisoned")?
            .as_ref()
            .filter(|s| !s.is_closed())
            .cloned();
        if let Some(mut h2) = h2 {
            return Ok(h2.send_request(request).await?);
        }
        let ready = {
            let mut idle = self.idle.lock().map_err(|_| "poisoned")?;
            idle.retain(|s| !s.is_closed());
            idle.iter()
                .position(http1::SendRequest::is_ready)
                .map(|i| idle.swap_remove(i))
        };
        let mut sender = match ready {
            Some(sender) => sender,
            None => {
                let io = self.connector.clone().oneshot(self.base.clone()).await?;
                if io.connected().is_negotiated_h2() {
                    let (mut sender, connection) = http2::Builder::new(TokioExecutor::new())
                        .timer(TokioTimer::new())
                        .handshake(io)
                        .await?;
                    tokio::spawn(connection);
                    *self.h2.lock().map_err(|_| "poisoned")? = Some(sender.clone());
                    return Ok(sender.send_request(request).await?);
                }
                let (sender, connection) = http1::handshake(io).await?;
                tokio::spawn(connection);
                sender
            }
        };
        let response = sender.send_request(request);
        // Back in the list at once: it reads as not ready until the response's body has ended.
        self.idle.lock().map_err(|_| "poisoned")?.push(sender);
        Ok(response.await?)
    }
}

enum Upstream {
    Util(Client<HttpsConnector<HttpConnector>, Body>),
    Conn(ConnPool),
}

impl Upstream {
    async fn request(&self, request: Request<Body>) -> Result<Response<Incoming>, BoxError> {
        match self {
            Self::Util(client) => Ok(client.request(request).await?),
            Self::Conn(pool) => pool.request(request).await,
        }
    }
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, url, requests, concurrency] = args.as_slice() else {
        return Err("usage: upstream_pool util|conn URL REQUESTS CONCURRENCY".into());
    };
    let url: Uri = url.parse()?;
    let requests: usize = requests.parse()?;
    let concurrency: usize = concurrency.parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let upstream = Arc::new(match mode.as_str() {
            "util" => Upstream::Util(
                Client::builder(TokioExecutor::new())
                    .pool_timer(TokioTimer::new())
                    .timer(TokioTimer::new())
                    .build(connector()?),
            ),
            "conn" => Upstream::Conn(ConnPool::new(connector()?, url.clone())?),
            _ => return Err::<(), BoxError>("mode is util or conn".into()),
        });
        let left = Arc::new(std::sync::atomic::AtomicUsize::new(requests));
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let (upstream, left, url) = (upstream.clone(), left.clone(), url.clone());
                tokio::spawn(async move {
                    while left
                        .fetch_update(
                            std::sync::atomic::Ordering::Relaxed,
                            std::sync::atomic::Ordering::Relaxed,
                            |n| n.checked_sub(1),
                        )
                        .is_ok()
                    {
                        let request = Request::get(url.clone())
                            .header(header::AUTHORIZATION, "Bearer bench")
                            .body(Body::empty())?;
                        let response = upstream.request(request).await?;
                        if !response.status().is_success() {
                            return Err::<(), BoxError>(
                                format!("status {}", response.status()).into(),
                            );
                        }
                        response.into_body().collect().await?;
                    }
                    Ok(())
                })
            })
            .collect();
        for task in tasks {
            task.await??;
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{mode} {url}: {requests} requests in {seconds:.3} s, {:.0} requests/s",
            requests as f64 / seconds
        );
        Ok(())
    })
}
