//! Secret values: the `Secret` type, whose `Debug` never shows the value, and `SecretSource`, the
//! config syntax saying where a secret comes from (an environment variable, a file, or a literal).

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

/// A secret string (client secret, access token). Its `Debug` prints `[redacted]`, and the memory is
/// zeroed on drop; the value is read only through [`Secret::expose`] at the single point of use.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret comes from, as written in the config: `"literal"`, `{ env = "NAME" }` or
/// `{ file = "PATH" }`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// Written in the config file itself (accepted with a warning: config files get copied around).
    Literal(String),
    /// Read from this environment variable.
    Env(String),
    /// Read from this file; surrounding whitespace (a trailing newline) is trimmed.
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal(_) => f.write_str("Literal([redacted])"),
            Self::Env(name) => f.debug_tuple("Env").field(name).finish(),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SecretError {
    /// The environment variable is unset or empty.
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    /// The file could not be read.
    #[error("cannot read {}", .path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The value is empty.
    #[error("the secret is empty")]
    Empty,
}

impl SecretSource {
    /// Resolves a relative file path against `base` (the config file's directory).
    pub(crate) fn relative_to(self, base: &Path) -> Self {
        match self {
            Self::File(path) if path.is_relative() => Self::File(base.join(path)),
            other => other,
        }
    }

    /// Reads the secret now, looking environment variables up through `env`.
    pub(crate) fn load(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Literal(value) => value.clone(),
            Self::Env(name) => env(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| SecretError::EnvMissing(name.clone()))?,
            Self::File(path) => crate::file::read_to_string(path)
                .map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
        };
        if value.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(Secret::new(value))
    }
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = SecretSource;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a string, { env = "NAME" } or { file = "PATH" }"#)
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<SecretSource, E> {
                Ok(SecretSource::Literal(value.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SecretSource, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom(
                        r#"expected { env = "NAME" } or { file = "PATH" }, found an empty table"#,
                    ));
                };
                let source = match key.as_str() {
                    "env" => SecretSource::Env(map.next_value()?),
                    "file" => SecretSource::File(map.next_value()?),
                    other => return Err(de::Error::unknown_field(other, &["env", "file"])),
                };
                if let Some(extra) = map.next_key::<String>()? {
                    return Err(de::Error::custom(format!(
                        "unexpected key `{extra}`: give exactly one of `env` or `file`"
                    )));
                }
                Ok(source)
            }
        }

        deserializer.deserialize_any(SourceVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        s: SecretSource,
    }

    fn parse(text: &str) -> Result<SecretSource, toml::de::Error> {
        toml::from_str::<Holder>(text).map(|h| h.s)
    }

    #[test]
    fn secret_debug_is_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert!(!format!("{:?}", SecretSource::Literal("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn secret_source_accepts_the_three_forms() {
        assert_eq!(
            parse(r#"s = "x""#).unwrap(),
            SecretSource::Literal("x".into())
        );
        assert_eq!(
            parse(r#"s = { env = "E" }"#).unwrap(),
            SecretSource::Env("E".into())
        );
        assert_eq!(
            parse(r#"s = { file = "f.txt" }"#).unwrap(),
            SecretSource::File("f.txt".into())
        );
    }

    #[test]
    fn secret_source_rejects_unknown_and_extra_keys() {
        let unknown = parse(r#"s = { vault = "x" }"#).unwrap_err().to_string();
        assert!(unknown.contains("vault"), "{unknown}");
        let extra = parse(r#"s = { env = "E", file = "f" }"#)
            .unwrap_err()
            .to_string();
        assert!(extra.contains("exactly one"), "{extra}");
    }

    #[test]
    fn secret_from_env_is_read_through_the_seam_and_must_be_set() {
        let env = |name: &str| (name == "SET").then(|| "value".to_owned());
        let source = SecretSource::Env("SET".into());
        assert_eq!(source.load(&env).unwrap().expose(), "value");
        let missing = SecretSource::Env("UNSET".into()).load(&env).unwrap_err();
        assert!(matches!(missing, SecretError::EnvMissing(name) if name == "UNSET"));
    }

    #[test]
    fn secret_from_file_is_trimmed_and_relative_to_the_base() {
        let dir = std::env::temp_dir().join(format!("dtp-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s.txt"), "from-file\n").unwrap();
        let source = SecretSource::File("s.txt".into()).relative_to(&dir);
        assert_eq!(source.load(&|_| None).unwrap().expose(), "from-file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
