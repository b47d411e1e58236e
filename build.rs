//! Records the commit the binary is built from, for `--version`: `git rev-parse --short HEAD`
//! when git and the repository are there, else "unknown" (a source tarball, the container build).
//! And links the binary with packed relative relocations where the C library takes them.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// Whether the binary should be linked with `-z pack-relative-relocs` (DT_RELR): a native
/// build for glibc whose libc.so.6 defines the `GLIBC_ABI_DT_RELR` version (glibc 2.36 and later,
/// <https://sourceware.org/git/?p=glibc.git;a=blob_plain;f=NEWS;hb=refs/tags/glibc-2.36>). The
/// linker then records that version as a requirement, so an older glibc refuses to load the binary
/// by name rather than running it unrelocated. A cross or musl build is linked as before.
fn packs_relative_relocs() -> bool {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    if env("CARGO_CFG_TARGET_OS") != "linux"
        || env("CARGO_CFG_TARGET_ENV") != "gnu"
        || env("TARGET") != env("HOST")
    {
        return false;
    }
    let Some(libc) = Command::new("cc")
        .arg("-print-file-name=libc.so.6")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
    else {
        return false;
    };
    std::fs::read(libc.trim()).is_ok_and(|bytes| {
        bytes
            .windows(b"GLIBC_ABI_DT_RELR".len())
            .any(|w| w == b"GLIBC_ABI_DT_RELR")
    })
}

fn main() {
    // The dynamic loader reads every relocation at start: with one 24-byte entry per pointer in
    // the binary's tables (about 400 kB here) they are resident pages that DT_RELR packs into a
    // few kB (idle RSS, docs/performance.md "Idle RSS (issue 11)").
    if packs_relative_relocs() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DTP_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // HEAD moves on a checkout, the branch's ref on a commit; --git-path finds both in a worktree
    // too. A path that does not exist would make cargo run this script on every build.
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    for name in std::iter::once("HEAD".to_owned()).chain(branch) {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            if Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}
