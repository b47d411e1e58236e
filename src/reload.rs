//! Live reload: on SIGHUP, or when the config file or a secret or certificate file it names
//! changes, the configuration is read again and swapped in; an invalid one is refused with a logged
//! error and the running one stays. Files are compared by content, polled: Kubernetes updates
//! mounted Secrets and ConfigMaps by swapping a symlink, which file-event watchers on the file
//! itself miss.

use std::path::PathBuf;

use tokio::sync::watch;

use crate::config::WatchedFile;
use crate::live::AppState;
use crate::report::error_chain;
use crate::signal::stopped;

/// Watches for reload triggers until `stopping` turns true.
pub(crate) async fn watch(state: AppState, mut stopping: watch::Receiver<bool>) {
    let mut hangup = hangup_signal();
    // The files as the running configuration read them: a change made at any time after that,
    // even before this task first ran, is noticed.
    let mut baseline = state.live().files.clone();
    loop {
        let interval = state.live().watch_interval;
        tokio::select! {
            () = stopped(&mut stopping) => return,
            () = next_hangup(&mut hangup) => tracing::info!("SIGHUP: reloading the configuration"),
            () = tokio::time::sleep(interval) => {
                if !changed(&baseline).await {
                    continue;
                }
                tracing::info!("a configuration file changed: reloading the configuration");
            }
        }
        let applied = reload(&state).await;
        baseline = if applied {
            state.live().files.clone()
        } else {
            // A refused config is not retried until one of the files changes again; the config
            // file is watched even when the refused version named other files.
            let mut paths: Vec<PathBuf> =
                state.live().files.iter().map(|f| f.path.clone()).collect();
            if let Some(config) = state.source().and_then(|s| s.path())
                && !paths.iter().any(|p| p == config)
            {
                paths.insert(0, config.to_path_buf());
            }
            tokio::task::spawn_blocking(move || paths.into_iter().map(WatchedFile::read).collect())
                .await
                .unwrap_or_default()
        };
    }
}

/// Whether any file's content differs from when it was read. The files are read off the runtime's
/// threads, with the limits of every configured file.
async fn changed(files: &[WatchedFile]) -> bool {
    let files = files.to_vec();
    tokio::task::spawn_blocking(move || {
        files
            .iter()
            .any(|file| WatchedFile::read(file.path.clone()).fingerprint != file.fingerprint)
    })
    .await
    .unwrap_or(true)
}

/// Reads the configuration again and applies it, or refuses it; returns whether it was applied.
pub(crate) async fn reload(state: &AppState) -> bool {
    let Some(source) = state.source().cloned() else {
        return false;
    };
    // Reading the files and building what runs (the upstream and Entra clients read the system's
    // CA bundle) block: both run off the runtime's threads.
    let applying = state.clone();
    let outcome = tokio::task::spawn_blocking(move || match source.load() {
        Ok(config) => applying.apply(config).err().map(|e| error_chain(&e)),
        Err(error) => Some(error.to_string()),
    })
    .await;
    let error = outcome.unwrap_or_else(|join| Some(join.to_string()));
    if let Some(error) = &error {
        tracing::error!(%error, "configuration reload refused; the running configuration stays");
    }
    let applied = error.is_none();
    state.record_reload(error);
    applied
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload on file changes only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) {
    if let Some(signal) = hangup
        && signal.recv().await.is_some()
    {
        return;
    }
    std::future::pending().await
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}
