//! Where a configuration comes from (a TOML file, or the environment alone), kept so that the same
//! configuration can be read again on reload.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Config, ConfigError, Overrides, WatchedFile, env};
use crate::digest::content_fingerprint;

/// Looks an environment variable up: the process environment in production, a map in tests (tests
/// never call `std::env::set_var`).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A borrowed [`Env`].
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A configuration's origin, with the command-line overrides and environment it is read with.
#[derive(Clone)]
pub struct ConfigSource {
    origin: Origin,
    overrides: Overrides,
    env: Env,
}

#[derive(Debug, Clone)]
enum Origin {
    File(PathBuf),
    Environment,
}

impl fmt::Debug for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigSource")
            .field("origin", &self.origin)
            .field("overrides", &self.overrides)
            .finish_non_exhaustive()
    }
}

impl ConfigSource {
    /// A TOML file.
    pub fn file(path: impl Into<PathBuf>, overrides: Overrides, env: Env) -> Self {
        Self {
            origin: Origin::File(path.into()),
            overrides,
            env,
        }
    }

    /// The environment alone (the standard Azure variables).
    pub fn environment(overrides: Overrides, env: Env) -> Self {
        Self {
            origin: Origin::Environment,
            overrides,
            env,
        }
    }

    /// `path` if given, else the environment; variables come from the process environment.
    pub fn process(path: Option<PathBuf>, overrides: Overrides) -> Self {
        let env: Env = Arc::new(|name: &str| std::env::var(name).ok());
        match path {
            Some(path) => Self::file(path, overrides, env),
            None => Self::environment(overrides, env),
        }
    }

    /// The file's path, or "environment".
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::File(path) => path.display().to_string(),
            Origin::Environment => "environment".to_owned(),
        }
    }

    /// The config file, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(path) => Some(path),
            Origin::Environment => None,
        }
    }

    /// Reads and validates the configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.origin {
            Origin::File(path) => {
                let text =
                    crate::file::read_to_string(path).map_err(|source| ConfigError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let base = path.parent().unwrap_or(Path::new("."));
                let origin = path.display().to_string();
                let mut config =
                    Config::from_toml(&text, &origin, base, &self.overrides, &*self.env)?;
                let watched = WatchedFile {
                    path: path.clone(),
                    fingerprint: Some(content_fingerprint(text.as_bytes())),
                };
                config.files.insert(0, watched);
                config
            }
            Origin::Environment => env::from_env(&self.overrides, &*self.env)?,
        };
        config.source = Some(self.clone());
        Ok(config)
    }
}
