//! The wiring: the two routers with their middleware stacks, and `run`, which serves them until
//! the caller's shutdown future completes and then drains within the grace period. The only
//! module that knows every piece.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use axum::middleware::from_fn_with_state;
use futures_util::future::join_all;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::front::Front;
use crate::live::AppState;
use crate::{admin, console, identity, middleware, proxy, reload, server, telemetry};

/// How long the admin listener may take to close once the main listener has drained.
const ADMIN_CLOSE: Duration = Duration::from_secs(2);

/// The main listener's service: its checks in order (`front`), the console's page before the API
/// keys, then the proxy's own endpoints or forwarding.
fn router(state: AppState) -> Front {
    let recent = console::Recent::default();
    let page = console::page().with_state(state.clone());
    let endpoints = admin::routes()
        .merge(identity::routes().method_not_allowed_fallback(admin::method_not_allowed))
        .merge(console::api(recent.clone()))
        .fallback(proxy::unknown_endpoint)
        .with_state(state.clone());
    Front::new(state, recent, page, endpoints)
}

/// The admin router: health, readiness, metrics and status only. It never forwards, so it may
/// listen where probes and Prometheus can reach it. Screened for browsers and `Host` like the main
/// router, so that no page (DNS rebinding included) can read `/-/status`.
fn admin_router(state: AppState) -> Router {
    admin::routes()
        .fallback(admin::no_endpoint)
        .layer(from_fn_with_state(state.clone(), middleware::screen_admin))
        .layer(telemetry::trace_layer())
        .with_state(state)
}

/// Runs the proxy on `listener` (and the admin listener `config.admin_listen`, if any) until
/// `shutdown` completes, then lets in-flight requests finish within `server.shutdown_grace`.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let admin = match config.admin_listen {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {address} (admin.listen): {e}"),
            )
        })?),
        None => None,
    };
    run_with_admin(listener, admin, config, shutdown).await
}

/// [`run`] with an admin listener the caller bound (tests bind port 0).
pub async fn run_with_admin(
    listener: TcpListener,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    run_listeners(vec![listener], admin, config, shutdown).await
}

/// [`run_with_admin`] on several main listeners that share one port (`localhost:PORT` binds
/// 127.0.0.1 and ::1); the first one's address is the one logged and screened as the proxy's own.
pub(crate) async fn run_listeners(
    listeners: Vec<TcpListener>,
    admin: Option<TcpListener>,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let first = listeners
        .first()
        .ok_or_else(|| io::Error::other("no listener to serve"))?
        .local_addr()?;
    let config_limits = config.server.limits;
    // One cap for all the main listeners, and the admin listener's own, so that neither can use up
    // the descriptors the other needs (validation checked both fit under the process's limit).
    let main_cap = server::ConnectionCap::new(config_limits.max_connections, "main");
    let admin_cap = server::ConnectionCap::new(config.admin_max_connections, "admin");
    let admin_local = admin.as_ref().map(TcpListener::local_addr).transpose()?;
    let state = AppState::new(config, first, admin_local)?;
    let also: Vec<String> = listeners[1..]
        .iter()
        .filter_map(|l| l.local_addr().ok().map(|a| a.to_string()))
        .collect();
    tracing::info!(
        listen = %first,
        also_listen = %also.join(" "),
        admin = %admin_local.map(|a| a.to_string()).unwrap_or_default(),
        routes = %state.live().routes.prefixes().join(" "),
        "defender-token-proxy is listening"
    );
    state.warm_up();
    let (stop, stopping) = watch::channel(false);
    let (stop_admin, admin_stopping) = watch::channel(false);
    let front = router(state.clone());
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let tls = server::Tls::Live(state.clone());
            let cap = main_cap.clone();
            let front = front.clone();
            server::serve(
                listener,
                move |peer| front.for_peer(peer),
                tls,
                config_limits,
                cap,
                stopping.clone(),
            )
        })
        .collect();
    let aborts: Vec<_> = servers.iter().map(JoinHandle::abort_handle).collect();
    // One future for all of them, drained and aborted together.
    let mut main = tokio::spawn(async move {
        for served in join_all(servers).await {
            served.map_err(io::Error::other)??;
        }
        Ok::<(), io::Error>(())
    });
    let admin = admin.map(|listener| {
        let router = admin_router(state.clone());
        server::serve(
            listener,
            move |_| router.clone(),
            server::Tls::Plain,
            config_limits,
            admin_cap,
            admin_stopping,
        )
    });
    if state.source().is_some() {
        tokio::spawn(reload::watch(state.clone(), stopping));
    }
    let outcome = tokio::select! {
        joined = &mut main => joined.map_err(io::Error::other).and_then(|served| served),
        () = shutdown => {
            state.begin_shutdown();
            let grace = state.live().shutdown_grace;
            tracing::info!(grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX), "shutting down: draining in-flight requests");
            let _ = stop.send(true);
            match tokio::time::timeout(grace, &mut main).await {
                Ok(joined) => joined.map_err(io::Error::other).and_then(|served| served),
                Err(_) => {
                    tracing::warn!("the grace period ended with requests still in flight; stopping anyway");
                    main.abort();
                    aborts.iter().for_each(tokio::task::AbortHandle::abort);
                    Ok(())
                }
            }
        }
    };
    // The admin listener outlives the drain, so probes see 503 rather than a refused connection.
    let _ = stop_admin.send(true);
    if let Some(admin) = admin {
        if tokio::time::timeout(ADMIN_CLOSE, admin).await.is_err() {
            tracing::debug!("the admin listener did not close in time");
        }
    }
    tracing::info!("stopped");
    outcome
}
