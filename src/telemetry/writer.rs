//! The log writer: every log line goes into a bounded in-memory buffer that a thread of its own
//! writes out, so that no runtime thread waits on standard error and many lines go out in one
//! `write(2)`. A line that does not fit is dropped and counted, never waited for.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tracing_subscriber::fmt::MakeWriter;

/// The most bytes waiting to be written; a line that would go over is dropped. At 30,000 lines
/// of about 250 bytes per second, 100 ms of lines is 750 KB.
pub(super) const CAPACITY_BYTES: usize = 1024 * 1024;
/// Waiting bytes that wake the writer before its interval ends, so a burst goes out in batches
/// of about this size instead of filling the buffer.
pub(super) const WAKE_AT_BYTES: usize = 64 * 1024;
/// The longest a line waits in the buffer.
pub(super) const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What the writers and the writer thread share.
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    capacity: usize,
    wake_at: usize,
    dropped: Counter,
}

struct State {
    /// The lines waiting, whole.
    pending: Vec<u8>,
    /// Set by the guard: the thread writes what is left and ends; later lines go out directly.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned one still holds whole lines.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Hands each line to the writer thread (the subscriber's `MakeWriter`).
pub(super) struct LogWriter<W> {
    shared: Arc<Shared>,
    /// Where lines go once the thread has ended (after the guard), synchronously.
    direct: fn() -> W,
}

// By hand: the derive would ask for `W: Clone`, which a writer made by `direct` need not be.
impl<W> Clone for LogWriter<W> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            direct: self.direct,
        }
    }
}

impl<W: Write> LogWriter<W> {
    /// Hands over one whole line (the audit line, written without the subscriber).
    pub(super) fn write_line(&self, line: &[u8]) {
        let _ = Line {
            shared: &self.shared,
            direct: self.direct,
        }
        .write(line);
    }
}

/// Keeps the writer thread; dropping it writes every buffered line and ends the thread. Hold it
/// until the program ends.
#[must_use = "dropping the guard stops the log writer"]
pub(crate) struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogGuard").finish_non_exhaustive()
    }
}

/// Starts the writer thread writing to `sink`, with `direct` for lines after the guard is
/// dropped (or every line, should the thread not start). Dropped lines count on `dropped`.
pub(super) fn spawn<W, S>(
    sink: S,
    direct: fn() -> W,
    dropped: Counter,
    capacity: usize,
    wake_at: usize,
) -> (LogWriter<W>, LogGuard)
where
    S: Write + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            pending: Vec::new(),
            closed: false,
        }),
        wake: Condvar::new(),
        capacity,
        wake_at,
        dropped,
    });
    let worker = shared.clone();
    let thread = std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn(move || write_out(&worker, sink));
    let thread = match thread {
        Ok(thread) => Some(thread),
        Err(_) => {
            shared.lock().closed = true;
            None
        }
    };
    let writer = LogWriter {
        shared: shared.clone(),
        direct,
    };
    (writer, LogGuard { shared, thread })
}

/// The writer thread: asleep while nothing waits; then lets lines gather for up to
/// `FLUSH_INTERVAL` (less when `wake_at` bytes wait) and writes them in one go.
fn write_out<S: Write>(shared: &Shared, mut sink: S) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared
                .wake
                .wait_while(shared.lock(), |s| s.pending.is_empty() && !s.closed)
                .unwrap_or_else(PoisonError::into_inner);
            if !state.closed {
                state = shared
                    .wake
                    .wait_timeout_while(state, FLUSH_INTERVAL, |s| {
                        s.pending.len() < shared.wake_at && !s.closed
                    })
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            std::mem::swap(&mut batch, &mut state.pending);
            state.closed
        };
        if !batch.is_empty() && sink.write_all(&batch).and_then(|()| sink.flush()).is_err() {
            // Standard error is gone (a closed pipe): these lines are lost, so they count.
            let lines = memchr::memchr_iter(b'\n', &batch).count();
            shared.dropped.inc_by(lines as u64);
        }
        batch.clear();
        if closed {
            return;
        }
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One line's writer, made for each event.
pub(super) struct Line<'a, W> {
    shared: &'a Shared,
    direct: fn() -> W,
}

impl<'a, W: Write + 'a> MakeWriter<'a> for LogWriter<W> {
    type Writer = Line<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            direct: self.direct,
        }
    }
}

impl<W: Write> Write for Line<'_, W> {
    /// The subscriber writes each line with one call: it is buffered whole or dropped whole.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut state = self.shared.lock();
        if state.closed {
            drop(state);
            return (self.direct)().write(line);
        }
        let before = state.pending.len();
        if before + line.len() > self.shared.capacity {
            drop(state);
            self.shared.dropped.inc();
            return Ok(line.len());
        }
        state.pending.extend_from_slice(line);
        let after = state.pending.len();
        drop(state);
        // Only the first line of a batch and the one crossing `wake_at` wake the thread: a wake is
        // a system call, which is what the buffer saves.
        if before == 0 || (before < self.shared.wake_at && after >= self.shared.wake_at) {
            self.shared.wake.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that holds every write until told to go on, like a standard error nobody reads.
    struct Blocked {
        gate: mpsc::Receiver<()>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Blocked {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _ = self.gate.recv();
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(i: usize) -> Vec<u8> {
        format!("line {i:04} {}\n", "x".repeat(40)).into_bytes()
    }

    #[test]
    fn lines_that_do_not_fit_while_the_sink_blocks_are_dropped_and_counted_without_waiting() {
        let (go, gate) = mpsc::channel();
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Blocked {
            gate,
            written: written.clone(),
        };
        let dropped = Counter::default();
        let (writer, guard) = spawn(sink, io::sink, dropped.clone(), 1024, 512);
        let lines: Vec<Vec<u8>> = (0..200).map(line).collect();
        // The first lines can be taken by the thread, which then blocks in the sink: the rest fill
        // the buffer and overflow. Every write returns without waiting for the sink.
        let (done, finished) = mpsc::channel();
        let producer = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for l in &lines {
                    writer.make_writer().write_all(l).unwrap();
                }
                done.send(()).unwrap();
            })
        };
        assert!(
            finished.recv_timeout(Duration::from_secs(10)).is_ok(),
            "a write waited for the blocked sink"
        );
        producer.join().unwrap();
        let lost = dropped.get();
        assert!(lost > 0, "nothing was dropped");
        assert!(lost < 200, "everything was dropped");
        // Let the sink go on, then close: every line that was not dropped is written, whole.
        for _ in 0..1000 {
            go.send(()).unwrap();
        }
        drop(guard);
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let kept: Vec<&str> = written.lines().collect();
        assert_eq!(kept.len() as u64 + lost, 200, "{written}");
        assert!(kept.iter().all(|l| l.len() == 50), "{written}");
        assert_eq!(
            kept[0],
            String::from_utf8(lines[0].clone()).unwrap().trim_end()
        );
    }

    #[test]
    fn every_buffered_line_is_written_when_the_guard_is_dropped() {
        let written = Arc::new(Mutex::new(Vec::new()));
        struct Shared(Arc<Mutex<Vec<u8>>>);
        impl Write for Shared {
            fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let dropped = Counter::default();
        let (writer, guard) = spawn(
            Shared(written.clone()),
            io::sink,
            dropped.clone(),
            CAPACITY_BYTES,
            WAKE_AT_BYTES,
        );
        for i in 0..100 {
            writer.make_writer().write_all(&line(i)).unwrap();
        }
        drop(guard);
        assert_eq!(written.lock().unwrap().len(), 100 * line(0).len());
        assert_eq!(dropped.get(), 0);
    }
}
