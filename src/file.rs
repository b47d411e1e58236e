//! Reading the small files the proxy is configured with (the config file, secret, certificate, key
//! and CA files, the workload identity token, sign-in files): regular files only, at most
//! [`MAX_FILE_BYTES`], symlinks followed (Kubernetes mounts Secrets and ConfigMaps as symlinks).
//! A FIFO, a directory or a device is refused before anything is read, so a misconfigured path
//! can neither hang the proxy nor make it read without end.

use std::io::{self, Read};
use std::path::Path;

/// The largest file read: far above any certificate chain, CA bundle or config (1 MiB).
pub(crate) const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads `path` whole, if it is a regular file of at most [`MAX_FILE_BYTES`]. Blocking: call it
/// off the runtime's threads (`spawn_blocking`) once the proxy serves.
pub(crate) fn read(path: &Path) -> io::Result<Vec<u8>> {
    let file = open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a directory, FIFO, socket or device)",
        ));
    }
    if metadata.len() > MAX_FILE_BYTES {
        return Err(too_large());
    }
    let mut content = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut content)?;
    // It may have grown since it was measured.
    if u64::try_from(content.len()).unwrap_or(u64::MAX) > MAX_FILE_BYTES {
        return Err(too_large());
    }
    Ok(content)
}

/// [`read`], as UTF-8 text.
pub(crate) fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("larger than {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}

/// Opens for reading without blocking: opening a FIFO with no writer would otherwise wait for one
/// (open(2), `O_NONBLOCK`). Regular files read as usual with the flag set.
#[cfg(unix)]
fn open(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

#[cfg(not(unix))]
fn open(path: &Path) -> io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dtp-file-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_regular_file_and_a_symlink_to_one_are_read() {
        let dir = scratch();
        std::fs::write(dir.join("real"), "content\n").unwrap();
        assert_eq!(read(&dir.join("real")).unwrap(), b"content\n");
        #[cfg(unix)]
        {
            // Kubernetes: ..data -> ..2026_01_01, file -> ..data/file.
            std::fs::create_dir(dir.join("..2026")).unwrap();
            std::fs::write(dir.join("..2026/secret"), "mounted").unwrap();
            std::os::unix::fs::symlink("..2026", dir.join("..data")).unwrap();
            std::os::unix::fs::symlink("..data/secret", dir.join("secret")).unwrap();
            assert_eq!(read_to_string(&dir.join("secret")).unwrap(), "mounted");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_it_is_read() {
        let dir = scratch();
        let at = usize::try_from(MAX_FILE_BYTES).unwrap();
        std::fs::write(dir.join("at"), vec![b'a'; at]).unwrap();
        assert_eq!(read(&dir.join("at")).unwrap().len(), at);
        std::fs::write(dir.join("over"), vec![b'a'; at + 1]).unwrap();
        let error = read(&dir.join("over")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert!(error.to_string().contains("1 MiB"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = scratch();
        let error = read(&dir).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once_and_never_waited_on() {
        let dir = scratch();
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // Without O_NONBLOCK the open itself would wait for a writer: run it on a thread so a
        // regression fails the test instead of hanging it.
        let (sender, receiver) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || drop(sender.send(read(&path))));
        let outcome = receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO returns instead of waiting for a writer");
        let error = outcome.unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_refused() {
        let error = read(Path::new("/dev/zero")).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
