//! The main listener: accepting connections (plain, or TLS with optional client certificates), the
//! HTTP/1 and HTTP/2 limits that bound what a client can make the proxy hold (header size, the
//! time to send headers, connections), and the graceful drain on shutdown.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::config::ConnectionLimits;
use crate::live::AppState;
use crate::signal::stopped;

/// A TLS handshake must complete within this, so that half-open handshakes cannot pile up.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After a failed accept (such as too many open files), wait this long before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` in its own task until `stopping` turns true, then lets open
/// connections finish their requests (the caller bounds how long).
pub(crate) fn serve(
    listener: TcpListener,
    router: Router,
    state: AppState,
    limits: ConnectionLimits,
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
            let (tcp, peer) = tokio::select! {
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
            // The caller's address, for handlers that log who they answered (`/-/identity`).
            let service = TowerToHyperService::new(router.clone().map_request(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                },
            ));
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
                    tracing::debug!(error = %crate::report::error_chain(&*error), "connection ended with an error");
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        Ok(())
    })
}
