//! The configurations shipped in `deploy/` (the Kubernetes ConfigMaps and the systemd example)
//! load with the real config loader, once their referenced secret files exist.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use defender_token_proxy::config::{ConfigSource, Overrides};

/// The `config.toml: |` blocks of a Kubernetes manifest, dedented.
fn embedded_configs(yaml: &str) -> Vec<String> {
    let mut configs = Vec::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "config.toml: |" {
            let key_indent = line.len() - line.trim_start().len();
            let mut block = Vec::new();
            while let Some(next) = lines.peek() {
                let indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && indent <= key_indent {
                    break;
                }
                block.push(lines.next().unwrap());
            }
            let indent = block
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start().len())
                .min()
                .unwrap_or(0);
            configs.push(
                block
                    .iter()
                    .map(|l| l.get(indent..).unwrap_or(""))
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    configs
}

/// Every `{ file = "..." }` in a config, with whether it is a certificate.
fn referenced_files(config: &toml::Value, under_certificate: bool, out: &mut Vec<(String, bool)>) {
    match config {
        toml::Value::Table(table) => {
            for (key, value) in table {
                if key == "file"
                    && let Some(path) = value.as_str()
                {
                    out.push((path.to_owned(), under_certificate));
                }
                referenced_files(value, under_certificate || key == "certificate", out);
            }
        }
        toml::Value::Array(items) => items
            .iter()
            .for_each(|v| referenced_files(v, under_certificate, out)),
        _ => {}
    }
}

/// Writes `text` into a fresh directory with a stub for every file it names (absolute paths are
/// moved under the directory), and loads it.
fn load_with_stubs(name: &str, text: &str) {
    let dir = std::env::temp_dir().join(format!("dtp-deploy-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let value: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut files = Vec::new();
    referenced_files(&value, false, &mut files);
    let mut text = text.to_owned();
    for (path, certificate) in files {
        let relative = path.trim_start_matches('/');
        let stub: PathBuf = dir.join(relative);
        std::fs::create_dir_all(stub.parent().unwrap()).unwrap();
        if certificate {
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/app-cert.pem"),
                &stub,
            )
            .unwrap();
        } else if relative.starts_with("rate-limit-store/") {
            // A store URL is checked as one; nothing connects to it while loading.
            std::fs::write(&stub, "redis://:a-stub-password@127.0.0.1:6379/0\n").unwrap();
        } else {
            std::fs::write(&stub, "a-stub-secret-of-32-characters-xx\n").unwrap();
        }
        text = text.replace(&format!("\"{path}\""), &format!("\"{relative}\""));
    }
    std::fs::write(dir.join("config.toml"), &text).unwrap();
    let env = Arc::new(|_: &str| Some("a-stub-secret-of-32-characters-xx".to_owned()));
    let loaded = ConfigSource::file(dir.join("config.toml"), Overrides::default(), env).load();
    std::fs::remove_dir_all(&dir).unwrap();
    let config = loaded.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(!config.routes.is_empty(), "{name}");
}

#[test]
fn every_config_shipped_in_deploy_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    let mut loaded = 0;
    for manifest in ["kubernetes/sidecar.yaml", "kubernetes/shared.yaml"] {
        let yaml = std::fs::read_to_string(root.join(manifest)).unwrap();
        let configs = embedded_configs(&yaml);
        assert_eq!(configs.len(), 1, "{manifest}");
        for config in configs {
            load_with_stubs(&manifest.replace('/', "-"), &config);
            loaded += 1;
        }
    }
    load_with_stubs(
        "systemd",
        &std::fs::read_to_string(root.join("systemd/config.toml")).unwrap(),
    );
    assert_eq!(loaded + 1, 3);
}
