//! `Config::from_toml` on arbitrary UTF-8 text must never panic (errors are fine). A valid config
//! also goes through what the proxy builds from it: the route table, the link table and the screen.

#![no_main]

use std::path::Path;
use std::sync::Arc;

use defender_token_proxy::config::{Config, Overrides};
use defender_token_proxy::rewrite::{LinkTable, Links};
use defender_token_proxy::route::Routes;
use defender_token_proxy::screen::Screen;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if names_an_unsafe_file(text) {
        return;
    }
    let result = Config::from_toml(
        text,
        "fuzz.toml",
        Path::new("/nonexistent"),
        &Overrides::default(),
        &|_| None,
    );
    match result {
        Err(error) => {
            let _ = error.to_string();
        }
        Ok(config) => {
            let _ = format!("{config:?}");
            let screen = Screen::new(
                config.server.listen.addresses()[0],
                &config.server.allowed_hosts,
                &config.server.allowed_origins,
            );
            let _ = screen;
            let routes = Routes::new(config.routes)
            .expect("the routes build");
            for prefix in routes.prefixes() {
                assert!(
                    routes.find(prefix).is_some(),
                    "a configured prefix {prefix:?} finds no route"
                );
            }
            let links = Links::new(Arc::new(LinkTable::new(&routes)), "http://127.0.0.1:8080");
            let _ = links.rewrite_chunks([text.as_bytes()]);
        }
    }
});

/// Whether the config names a file that reading could hang on or that is huge (a device, a FIFO,
/// /proc, /sys): the validator reads secret, certificate and TLS files, and a fuzzer that writes
/// `/dev/zero` would only find that reading it never ends. Relative paths resolve under
/// /nonexistent and cannot exist.
fn names_an_unsafe_file(text: &str) -> bool {
    let Ok(value) = text.parse::<toml::Table>() else {
        return false; // Not TOML: from_toml fails at parsing, before reading anything.
    };
    let value = toml::Value::Table(value);
    let mut strings = Vec::new();
    collect_strings(&value, &mut strings);
    strings.iter().any(|s| {
        let path = Path::new(s);
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        ["/proc", "/sys", "/dev", "/run"]
            .iter()
            .any(|p| real.starts_with(p))
            || !(meta.is_dir() || meta.is_file())
            || meta.len() > 1 << 20
    })
}

fn collect_strings<'a>(value: &'a toml::Value, out: &mut Vec<&'a str>) {
    match value {
        toml::Value::String(s) => out.push(s),
        toml::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
        toml::Value::Table(table) => table.values().for_each(|v| collect_strings(v, out)),
        _ => {}
    }
}
