use super::*;

fn binding(client_id: &str) -> Binding {
    Binding {
        authority: "https://login.microsoftonline.com".into(),
        tenant: "contoso.onmicrosoft.com".into(),
        client_id: client_id.into(),
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dtp-state-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_written_sign_in_is_read_back_and_is_private() {
    let dir = scratch().join("nested");
    let file = TokenFile::new(&dir, "me", binding("a"));
    assert!(file.read().unwrap().is_none());
    file.write(&Secret::new("rt-1"), Some("analyst@contoso"))
        .unwrap();
    file.write(&Secret::new("rt-2"), Some("analyst@contoso"))
        .unwrap();
    let read = file.read().unwrap().unwrap();
    assert_eq!(read.refresh_token.expose(), "rt-2");
    assert_eq!(read.account.as_deref(), Some("analyst@contoso"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(file.path()), 0o600);
        assert_eq!(mode(&dir), 0o700);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    assert!(file.remove().unwrap());
    assert!(!file.remove().unwrap());
}

#[test]
fn a_sign_in_for_another_app_is_not_used() {
    let dir = scratch();
    TokenFile::new(&dir, "me", binding("a"))
        .write(&Secret::new("rt"), None)
        .unwrap();
    assert!(
        TokenFile::new(&dir, "me", binding("b"))
            .read()
            .unwrap()
            .is_none()
    );
}

#[cfg(unix)]
#[test]
fn a_state_directory_and_sign_in_readable_by_others_are_made_private_when_read() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch();
    let file = TokenFile::new(&dir, "me", binding("a"));
    file.write(&Secret::new("rt"), None).unwrap();
    let chmod = |p: &Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(&dir, 0o755);
    chmod(file.path(), 0o644);
    assert_eq!(file.read().unwrap().unwrap().refresh_token.expose(), "rt");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(file.path()), 0o600);
}

#[test]
fn a_sign_in_file_larger_than_any_sign_in_is_refused() {
    let dir = scratch();
    let file = TokenFile::new(&dir, "me", binding("a"));
    let huge = vec![b' '; usize::try_from(crate::file::MAX_FILE_BYTES).unwrap() + 1];
    std::fs::write(file.path(), huge).unwrap();
    let error = file.read().err().expect("refused");
    assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
}

/// The OS lock waits for another holder off the runtime's threads: on a one-thread runtime,
/// another task still runs while `lock` waits (it is that task that has the holder let go;
/// had the wait blocked the runtime's thread, neither could ever finish).
#[test]
fn waiting_for_another_process_s_lock_leaves_the_runtime_free() {
    let dir = scratch();
    let file = TokenFile::new(&dir, "waits", binding("a"));
    let held = lock_exclusively(&file.lock_path()).unwrap();
    let (release, released) = std::sync::mpsc::channel::<()>();
    // The other process: holds the lock until the runtime's other task says so.
    let holder = std::thread::spawn(move || {
        released.recv().ok();
        drop(held);
    });
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let waiting = tokio::spawn(async move { file.lock().await.map(drop) });
            // Runs only if `lock` yields the thread while it waits.
            tokio::spawn(async move { release.send(()) })
                .await
                .unwrap()
                .unwrap();
            waiting.await.unwrap()
        });
        drop(done.send(outcome));
    });
    let outcome = finished
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the lock was taken once the holder let go");
    outcome.unwrap();
    holder.join().unwrap();
}

#[test]
fn the_default_directory_follows_xdg_then_home() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    assert_eq!(
        default_dir(&env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")])),
        Some(PathBuf::from("/s/defender-token-proxy"))
    );
    assert_eq!(
        default_dir(&env(&[("HOME", "/h")])),
        Some(PathBuf::from("/h/.local/state/defender-token-proxy"))
    );
    assert_eq!(default_dir(&env(&[])), None);
}
