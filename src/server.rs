//! The main listener: accepting connections (plain, or TLS with optional client certificates), the
//! HTTP/1 and HTTP/2 limits that bound what a client can make the proxy hold (header size, the
//! time to send headers, connections), and the graceful drain on shutdown.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::error::ProxyError;

/// A TLS handshake must complete within this, so that half-open handshakes cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (such as too many open files), wait this long before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connection-level limits (`[server]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most header bytes a request may send (HTTP/1 answers 431 beyond it).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request's headers, also on an idle keep-alive
    /// connection (slow clients and idle connections are closed).
    pub header_read_timeout: Duration,
    /// The most connections open at once; further ones are closed at once.
    pub max_connections: usize,
}

/// Serves `router` on `listener` in its own task until `stopping` turns true, then lets open
/// connections finish their requests (the caller bounds how long).
pub(crate) fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>> {
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
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::spawn(async move {
        let graceful = GracefulShutdown::new();
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = stopped(&mut stopping) => break,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(
                    max = limits.max_connections,
                    "too many connections: closing a new one"
                );
                continue;
            };
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            let service = TowerToHyperService::new(router.clone());
            let (builder, watcher) = (builder.clone(), graceful.watcher());
            let tls = state.live().tls.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let served = match tls {
                    None => {
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => {
                                let connection = builder
                                    .serve_connection_with_upgrades(TokioIo::new(stream), service);
                                watcher.watch(connection.into_owned()).await
                            }
                            Ok(Err(error)) => {
                                tracing::info!(%error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::info!("TLS handshake timed out");
                                return;
                            }
                        }
                    }
                };
                if let Err(error) = served {
                    tracing::debug!(error = %crate::config::error_chain(&*error), "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
}

/// Completes once `stopping` turns true (or its sender is gone).
pub(crate) async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Sheds load: beyond `server.max_concurrent_requests` requests in flight, answer 503 at once
/// rather than queueing without bound. The slot is held until the response body has been sent,
/// so that long downloads count (tower's concurrency limit releases when headers are ready).
pub(crate) async fn shed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let in_flight = state.live().in_flight.clone();
    let Ok(slot) = in_flight.try_acquire_owned() else {
        let error = ProxyError::Overloaded;
        tracing::warn!(kind = error.kind(), "request shed");
        return error.into_response();
    };
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::new(Holding { body, _slot: slot }))
}

/// A body that keeps its in-flight slot until it is done.
struct Holding {
    body: Body,
    _slot: OwnedSemaphorePermit,
}

impl http_body::Body for Holding {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
