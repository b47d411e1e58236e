//! The listeners: accepting connections (plain, or TLS with optional client certificates), the
//! HTTP/1 and HTTP/2 limits that bound what a client can make the proxy hold (header size, the
//! time from accept to a request's headers, connections), and the graceful drain on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::server::TlsStream;
use tokio_util::either::Either;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::live::AppState;
use crate::signal::stopped;

/// A TLS handshake must complete within this, so that half-open handshakes cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (such as too many open files), wait this long before the next one, so
/// that a listener out of descriptors does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where a listener's TLS comes from.
pub(crate) enum Tls {
    /// Plain HTTP (the admin listener).
    Plain,
    /// The live configuration's acceptor, if any, read per connection so that a renewed
    /// certificate is used for new connections.
    Live(AppState),
}

/// A cap on the connections open at once, shared by the listeners it is given to (the main
/// listeners of `localhost:PORT` share one).
#[derive(Clone)]
pub(crate) struct ConnectionCap {
    slots: Arc<Semaphore>,
    max: usize,
    /// The listener's name, for the log.
    listener: &'static str,
}

impl ConnectionCap {
    /// `max` connections (at most `Semaphore::MAX_PERMITS`, as validation ensures).
    pub(crate) fn new(max: usize, listener: &'static str) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            listener,
        }
    }
}

/// Serves on `listener`, in its own task until `stopping` turns true, the service that `service`
/// makes for each connection from the caller's address (the main listener's own, or the admin
/// router), then lets open connections finish their requests (the caller bounds
/// how long).
pub(crate) fn serve<M, S, B>(
    listener: TcpListener,
    service: M,
    tls: Tls,
    limits: ConnectionLimits,
    cap: ConnectionCap,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>>
where
    M: Fn(SocketAddr) -> S + Send + 'static,
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let builder = Arc::new(builder);
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        // Logged once per episode, not once per connection: a flood must not flood the log.
        let (mut failing, mut full) = (false, false);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        if std::mem::take(&mut failing) {
                            tracing::info!(listener = cap.listener, "accepting connections again");
                        }
                        (tcp, peer)
                    }
                    Err(error) => {
                        if !std::mem::replace(&mut failing, true) {
                            tracing::warn!(listener = cap.listener, %error, "accepting a connection failed; retrying every {ACCEPT_BACKOFF:?}");
                        }
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = stopped(&mut stopping) => break,
            };
            let Ok(slot) = cap.slots.clone().try_acquire_owned() else {
                if !std::mem::replace(&mut full, true) {
                    tracing::warn!(
                        listener = cap.listener,
                        max = cap.max,
                        "too many connections: closing new ones until one ends"
                    );
                }
                continue;
            };
            full = false;
            let deadline = Instant::now() + limits.header_read_timeout;
            let acceptor = match &tls {
                Tls::Plain => None,
                Tls::Live(state) => state.live().tls.clone(),
            };
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let service = service(peer);
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(error) = tcp.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let Some(io) = handshake(tcp, acceptor, deadline).await else {
                    return;
                };
                // Set when the first request's head has been read; until then, the connection
                // is closed at `deadline`. hyper's own header timer starts only once it knows the
                // protocol, which the auto builder learns from the client's first bytes, so a
                // client that sends nothing would otherwise hold its slot for ever. Later
                // requests' headers are timed by hyper (HTTP/1).
                let first = Arc::new(AtomicBool::new(false));
                let service = TowerToHyperService::new(service.map_request({
                    let first = first.clone();
                    move |request: http::Request<Incoming>| {
                        first.store(true, Ordering::Relaxed);
                        request
                    }
                }));
                let connection = watcher.watch(
                    builder
                        .serve_connection_with_upgrades(io, service)
                        .into_owned(),
                );
                let Some(served) = until_first_request(connection, deadline, &first).await else {
                    tracing::debug!("closing a connection that sent no request in time");
                    return;
                };
                if let Err(error) = served {
                    tracing::debug!(error = %crate::report::error_chain(&*error), "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
}

/// A connection's stream, after the TLS handshake if there is one, which must end by `deadline`
/// and within [`HANDSHAKE_TIMEOUT`]; `None` if it failed. TLS streams are boxed, so that plain
/// connections stay small.
async fn handshake(
    tcp: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    deadline: Instant,
) -> Option<TokioIo<Either<TcpStream, Box<TlsStream<TcpStream>>>>> {
    let Some(acceptor) = acceptor else {
        return Some(TokioIo::new(Either::Left(tcp)));
    };
    let by = deadline.min(Instant::now() + HANDSHAKE_TIMEOUT);
    match tokio::time::timeout_at(by, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(TokioIo::new(Either::Right(Box::new(stream)))),
        Ok(Err(error)) => {
            tracing::info!(%error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("TLS handshake timed out");
            None
        }
    }
}

/// Runs `connection` to its end, or `None` when its first request (`first`) has not arrived by
/// `deadline`. The timer goes once the first request has come, so that later requests on the
/// connection do not poll it.
async fn until_first_request<F: Future>(
    connection: F,
    deadline: Instant,
    first: &AtomicBool,
) -> Option<F::Output> {
    let mut connection = std::pin::pin!(connection);
    let mut late = Some(Box::pin(tokio::time::sleep_until(deadline)));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(served) = connection.as_mut().poll(cx) {
            return Poll::Ready(Some(served));
        }
        if first.load(Ordering::Relaxed) {
            late = None;
        } else if let Some(timer) = &mut late
            && timer.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}
