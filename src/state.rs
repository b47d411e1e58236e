//! The state directory: the refresh tokens that `login` obtains for user-context credentials, one
//! file per credential, written atomically (write, fsync, rename) with mode 0600 so that a crash or
//! a concurrent reader never sees half a token. Refresh tokens are rotated on every use ("Refresh
//! tokens replace themselves with a fresh token upon every use",
//! <https://learn.microsoft.com/en-us/entra/identity-platform/refresh-tokens>), so the newest one
//! is always stored before it is relied on.
//!
//! Several processes may use one file (`serve`, `token`, `login`): each redemption holds an OS
//! lock (on the state directory), and reads the file again once it holds it, so the
//! newest refresh token is the one presented. A directory or file that others can read is made
//! private again (0700, 0600) with a warning.

use std::collections::HashMap;
use std::io::{self, Write};
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::OwnedMutexGuard;

use crate::secret::Secret;

/// The directory's name under the user's state directory.
const APP_DIR: &str = "defender-token-proxy";
/// Bumped if the file format ever changes incompatibly.
const FORMAT_VERSION: u32 = 1;

/// The state directory when the config names none: `$XDG_STATE_HOME/defender-token-proxy`, else
/// `$HOME/.local/state/defender-token-proxy` (the XDG Base Directory specification's default).
pub(crate) fn default_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(state) = set("XDG_STATE_HOME") {
        return Some(PathBuf::from(state).join(APP_DIR));
    }
    set("HOME").map(|home| PathBuf::from(home).join(".local/state").join(APP_DIR))
}

/// What the signed-in account's refresh token was issued for: a stored token is used only by the
/// credential it was obtained with, so that changing the app or tenant in the config asks for a new
/// login instead of sending a token to the wrong place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The authority, such as `https://login.microsoftonline.com`.
    pub authority: String,
    /// The tenant signed in to.
    pub tenant: String,
    /// The public client's application id.
    pub client_id: String,
}

/// A stored sign-in.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    #[serde(flatten)]
    binding: Binding,
    /// Who signed in (`upn`, `preferred_username` or `sub` of the last access token), for display.
    account: Option<String>,
    refresh_token: String,
}

/// The file holding one credential's refresh token.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
    binding: Binding,
    /// Serialises the redemptions of this file's refresh token within the process: a rotated-out
    /// token must never be presented (some servers revoke the whole grant when one is).
    memory: Arc<tokio::sync::Mutex<Memory>>,
}

/// What the process remembers about a file's refresh token, under its lock.
#[derive(Debug, Default)]
pub struct Memory {
    /// A hash of the stored refresh token Entra last refused: it is not presented again, so that
    /// requests answer "run login" at once until the file changes.
    pub refused: Option<u64>,
    /// A newer refresh token that could not be written: it is used, and its saving retried.
    pub unsaved: Option<Secret>,
}

/// One lock per file for the life of the process, so that a reload's new credential shares it.
static LOCKS: LazyLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<Memory>>>>> =
    LazyLock::new(Default::default);

/// A hash of a refresh token, to recognise one without keeping it (not a security measure: it
/// never leaves the process).
pub(crate) fn token_hash(token: &Secret) -> u64 {
    crate::digest::content_fingerprint(token.expose().as_bytes())
}

/// A sign-in read from a [`TokenFile`].
pub struct SignIn {
    /// The refresh token.
    pub refresh_token: Secret,
    /// Who signed in, if known.
    pub account: Option<String>,
}

impl TokenFile {
    /// The file for credential `name` in `dir`.
    pub fn new(dir: &Path, name: &str, binding: Binding) -> Self {
        let path = dir.join(format!("{name}.json"));
        let memory = LOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(path.clone())
            .or_default()
            .clone();
        Self {
            path,
            binding,
            memory,
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Held while a refresh token is read, redeemed and its successor saved: the process's lock,
    /// then the OS lock that other processes using the file take too (taken off the runtime's
    /// threads, since it blocks until the other process is done).
    pub async fn lock(&self) -> io::Result<Redemption> {
        let memory = self.memory.clone().lock_owned().await;
        let path = self.lock_path();
        let os = tokio::task::spawn_blocking(move || lock_exclusively(&path))
            .await
            .map_err(io::Error::other)??;
        Ok(Redemption { memory, _os: os })
    }

    /// What the OS lock is taken on: on Unix the state directory itself (flock(2) takes a
    /// directory, and no lock file is left behind; one lock for the directory's sign-ins, each
    /// held only for one redemption), elsewhere a companion `.lock` file. Never the sign-in file:
    /// it is replaced by a rename on every write, so a lock on it would not outlive the first.
    fn lock_path(&self) -> PathBuf {
        if cfg!(unix) {
            self.path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            self.path.with_extension("json.lock")
        }
    }

    /// [`TokenFile::read`], off the runtime's threads.
    pub async fn load(&self) -> io::Result<Option<SignIn>> {
        let file = self.clone();
        tokio::task::spawn_blocking(move || file.read())
            .await
            .map_err(io::Error::other)?
    }

    /// [`TokenFile::write`], off the runtime's threads.
    pub async fn save(&self, refresh_token: &Secret, account: Option<&str>) -> io::Result<()> {
        let (file, token, account) = (
            self.clone(),
            refresh_token.clone(),
            account.map(str::to_owned),
        );
        tokio::task::spawn_blocking(move || file.write(&token, account.as_deref()))
            .await
            .map_err(io::Error::other)?
    }

    /// The stored sign-in, if there is one for this credential's binding.
    pub fn read(&self) -> io::Result<Option<SignIn>> {
        if let Some(dir) = self.path.parent() {
            make_private(dir, 0o700)?;
        }
        let bytes = match crate::file::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        make_private(&self.path, 0o600)?;
        let stored: Stored = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a sign-in file: {e}", self.path.display()),
            )
        })?;
        if stored.version != FORMAT_VERSION || stored.binding != self.binding {
            return Ok(None);
        }
        Ok(Some(SignIn {
            refresh_token: Secret::new(stored.refresh_token),
            account: stored.account,
        }))
    }

    /// Replaces the stored sign-in: written to a temporary file in the same directory with mode
    /// 0600, flushed to disk, then renamed over the old one (atomic on POSIX file systems).
    pub fn write(&self, refresh_token: &Secret, account: Option<&str>) -> io::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        make_private(dir, 0o700)?;
        let stored = Stored {
            version: FORMAT_VERSION,
            binding: self.binding.clone(),
            account: account.map(str::to_owned),
            refresh_token: refresh_token.expose().to_owned(),
        };
        let json = serde_json::to_vec_pretty(&stored).map_err(io::Error::other)?;
        let tmp = self.path.with_extension(format!(
            "json.{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut file = private_file(&tmp)?;
            file.write_all(&json)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if written.is_err() {
            drop(std::fs::remove_file(&tmp));
        }
        written?;
        // The rename is durable once the directory entry is.
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .or_else(|e| {
                // Some file systems refuse to fsync a directory; the rename itself has happened.
                if e.kind() == io::ErrorKind::PermissionDenied {
                    Ok(())
                } else {
                    Err(e)
                }
            })
    }

    /// Deletes the stored sign-in. Returns whether there was one.
    pub fn remove(&self) -> io::Result<bool> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// What [`TokenFile::lock`] holds: the process's memory of the file, under its lock, and the OS
/// lock (released when this is dropped).
pub struct Redemption {
    memory: OwnedMutexGuard<Memory>,
    _os: std::fs::File,
}

impl Deref for Redemption {
    type Target = Memory;

    fn deref(&self) -> &Memory {
        &self.memory
    }
}

impl DerefMut for Redemption {
    fn deref_mut(&mut self) -> &mut Memory {
        &mut self.memory
    }
}

/// Opens (creating, private) and locks [`TokenFile::lock_path`] exclusively, waiting for another
/// holder.
fn lock_exclusively(path: &Path) -> io::Result<std::fs::File> {
    let file = open_lock_file(path)?;
    // flock(2) on Unix, LockFileEx on Windows; released when the file is closed.
    fs4::FileExt::lock(&file)?;
    Ok(file)
}

#[cfg(unix)]
fn open_lock_file(dir: &Path) -> io::Result<std::fs::File> {
    create_private_dir(dir)?;
    make_private(dir, 0o700)?;
    std::fs::File::open(dir)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path) -> io::Result<std::fs::File> {
    create_private_dir(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// Takes group and other permissions away from `path` (a directory `0o700`, a file `0o600`), with a
/// warning: a sign-in readable by others is a refresh token others can redeem.
#[cfg(unix)]
fn make_private(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = match std::fs::metadata(path) {
        Ok(metadata) => metadata.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if current & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{:o}", current & 0o777),
        now = format!("{mode:o}"),
        "the state directory or sign-in file was readable by others: made private"
    );
    Ok(())
}

#[cfg(not(unix))]
fn make_private(_: &Path, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests;
