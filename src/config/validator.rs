//! The validator: where the config being validated comes from (its origin, base directory and
//! environment), the files it has read, and what every validation step shares: errors that name
//! the origin and key, reading secrets, and checking URLs a token or secret goes to.

use std::path::Path;

use url::Url;

use super::checks::check_url;
use super::{ConfigError, EnvLookup, WatchedFile};
use crate::report::error_chain;
use crate::secret::{Secret, SecretSource};

pub(super) struct Validator<'a> {
    pub(super) origin: &'a str,
    pub(super) base: &'a Path,
    pub(super) env: EnvLookup<'a>,
    /// The secret and certificate files read so far, for reload watching.
    pub(super) files: Vec<WatchedFile>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(origin: &'a str, base: &'a Path, env: EnvLookup<'a>) -> Self {
        Self {
            origin,
            base,
            env,
            files: Vec::new(),
        }
    }

    pub(super) fn invalid(
        &self,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_owned(),
            key: key.into(),
            message: message.into(),
        }
    }

    /// Reads a secret, remembering its file (if any) for reload watching.
    pub(super) fn secret(
        &mut self,
        key: &str,
        source: SecretSource,
    ) -> Result<Secret, ConfigError> {
        let source = source.relative_to(self.base);
        if let SecretSource::File(path) = &source {
            self.files.push(WatchedFile::read(path.clone()));
        }
        source
            .load(self.env)
            .map_err(|e| self.invalid(key, error_chain(&e)))
    }

    /// Parses a URL that the proxy will send a token or a secret to: `https`, or `http` for loopback
    /// hosts only (local testing), and nothing but scheme, host, port and path.
    pub(super) fn url(&self, key: impl Into<String>, value: &str) -> Result<Url, ConfigError> {
        let key = key.into();
        let url = Url::parse(value).map_err(|e| self.invalid(&key, format!("{value:?}: {e}")))?;
        check_url(&url).map_err(|m| self.invalid(&key, format!("{value:?}: {m}")))?;
        Ok(url)
    }
}
