//! Capturing a node's log in a test, to check that it says why it closed a
//! connection.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// A log sink shared by a tracing subscriber and the test.
///
/// [`Logs::capture`] makes it the default subscriber of the current thread,
/// so a test on a current-thread runtime (`#[tokio::test]`) sees exactly the
/// log of the nodes it runs, whatever other tests do at the same time. Set
/// `AEMP_TEST_LOG=1` to also copy every line to stderr.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::fmt::Debug for Logs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Logs").field(&self.text().len()).finish()
    }
}

impl Logs {
    /// An empty log.
    pub fn new() -> Logs {
        Logs::default()
    }

    /// Records everything logged on this thread at DEBUG or above until the
    /// guard is dropped.
    #[must_use = "the capture stops when the guard is dropped"]
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        // With no global subscriber and only this thread's alive, tracing
        // works out the interest of a callsite first reached on another
        // thread (one without a subscriber) from that thread alone: never,
        // for good, and this capture would miss that callsite's events.
        crate::init_tracing();
        let sub = tracing_subscriber::fmt()
            .with_writer(self.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .finish();
        tracing::subscriber::set_default(sub)
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// How many lines contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Whether some line contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.count(needle) > 0
    }

    /// Waits until a line containing `needle` is logged; fails the test
    /// (showing the log) after [`crate::PATIENCE`].
    pub async fn wait_for(&self, needle: &str) {
        self.wait_for_line(&[needle]).await;
    }

    /// Waits until `n` lines contain `needle`; fails the test (showing the
    /// log) after [`crate::PATIENCE`].
    pub async fn wait_for_count(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + crate::PATIENCE;
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "{needle:?} was not logged {n} times; the log:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until one line contains every one of `needles`; fails the test
    /// (showing the log) after [`crate::PATIENCE`].
    pub async fn wait_for_line(&self, needles: &[&str]) {
        let deadline = Instant::now() + crate::PATIENCE;
        while !self.text().lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            assert!(Instant::now() < deadline, "{needles:?} was never logged; the log:\n{}", self.text());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The writer a [`Logs`] hands to the subscriber.
#[derive(Debug)]
pub struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("AEMP_TEST_LOG").is_some() {
            let _ = std::io::stderr().write_all(buf);
        }
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        LogWriter(self.0.clone())
    }
}
