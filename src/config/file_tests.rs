//! Unit tests of the files a configuration names: a FIFO, a directory or a file over the size cap
//! is an error naming the key (never a hang), and a symlink to a regular file (a Kubernetes mount)
//! is read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::*;

const APP: &str = "11111111-2222-3333-4444-555555555555";

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dtp-files-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config in `dir` whose credential `c` is `credential`.
fn config_with(dir: &Path, credential: &str) -> PathBuf {
    let path = dir.join("proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[credentials.c]\ntenant = \"contoso.onmicrosoft.com\"\nclient_id = \"{APP}\"\n\
             {credential}\n[[routes]]\nprefix = \"/mde\"\napi = \"mde\"\ncredential = \"c\"\n"
        ),
    )
    .unwrap();
    path
}

/// Loads `path` on a thread, so that a read that blocks fails the test instead of hanging it.
fn load(path: &Path) -> Result<Config, ConfigError> {
    let source = ConfigSource::file(path, Overrides::default(), Arc::new(|_: &str| None));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || drop(sender.send(source.load())));
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("loading returns instead of waiting on a file")
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
}

#[cfg(unix)]
#[test]
fn a_secret_file_that_is_a_fifo_is_an_error_naming_the_key_not_a_hang() {
    let dir = scratch();
    mkfifo(&dir.join("secret"));
    let config = config_with(
        &dir,
        "type = \"client_secret\"\nclient_secret = { file = \"secret\" }",
    );
    let error = load(&config).unwrap_err().to_string();
    assert!(error.contains("credentials.c.client_secret"), "{error}");
    assert!(error.contains("not a regular file"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_workload_identity_token_file_that_is_a_fifo_is_an_error_naming_the_key() {
    let dir = scratch();
    mkfifo(&dir.join("token"));
    let config = config_with(&dir, "type = \"workload_identity\"\ntoken_file = \"token\"");
    let error = load(&config).unwrap_err().to_string();
    assert!(error.contains("credentials.c.token_file"), "{error}");
    assert!(error.contains("not a regular file"), "{error}");
}

#[test]
fn a_certificate_file_over_the_cap_is_an_error_naming_the_key() {
    let dir = scratch();
    let cap = usize::try_from(crate::file::MAX_FILE_BYTES).unwrap();
    std::fs::write(dir.join("cert.pem"), vec![b'-'; cap + 1]).unwrap();
    let config = config_with(
        &dir,
        "type = \"client_certificate\"\ncertificate = { file = \"cert.pem\" }",
    );
    let error = load(&config).unwrap_err().to_string();
    assert!(error.contains("credentials.c.certificate"), "{error}");
    assert!(error.contains("1 MiB"), "{error}");
}

#[test]
fn a_directory_as_the_config_file_or_a_secret_file_is_an_error() {
    let dir = scratch();
    let error = load(&dir).unwrap_err();
    assert!(
        crate::report::error_chain(&error).contains("not a regular file"),
        "{error}"
    );
    std::fs::create_dir(dir.join("secret")).unwrap();
    let config = config_with(
        &dir,
        "type = \"client_secret\"\nclient_secret = { file = \"secret\" }",
    );
    let error = load(&config).unwrap_err().to_string();
    assert!(error.contains("credentials.c.client_secret"), "{error}");
    assert!(error.contains("not a regular file"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_secret_mounted_as_a_symlink_is_read() {
    let dir = scratch();
    std::fs::create_dir(dir.join("..2026_12_01")).unwrap();
    std::fs::write(dir.join("..2026_12_01/secret"), "s3cret\n").unwrap();
    std::os::unix::fs::symlink("..2026_12_01", dir.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/secret", dir.join("secret")).unwrap();
    let config = config_with(
        &dir,
        "type = \"client_secret\"\nclient_secret = { file = \"secret\" }",
    );
    let config = load(&config).unwrap();
    let crate::credential::ClientAuth::Secret(secret) = &config.credentials["c"].auth else {
        panic!("a client secret");
    };
    assert_eq!(secret.expose(), "s3cret");
}
