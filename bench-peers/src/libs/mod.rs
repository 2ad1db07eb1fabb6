//! The workloads, once per library.

mod actix;
mod aemp;
mod kameo;
mod ractor;
mod tokio;

use std::thread::JoinHandle;

use crate::Library;

/// Every library, aemp first (the ratios are to its figures).
pub fn all() -> Vec<Box<dyn Library>> {
    vec![
        Box::new(aemp::Aemp),
        Box::new(tokio::Tokio { multi_thread: false }),
        Box::new(tokio::Tokio { multi_thread: true }),
        Box::new(actix::Actix),
        Box::new(ractor::Ractor),
        Box::new(kameo::Kameo),
    ]
}

/// Starts `senders` plain threads that call `send` for `n` messages in
/// all, each with its own share of the numbers.
pub fn send_from_threads<S>(senders: u64, n: u64, send: S) -> Vec<JoinHandle<()>>
where
    S: Fn(u64) + Clone + Send + 'static,
{
    (0..senders)
        .map(|k| {
            let send = send.clone();
            let share = n / senders;
            std::thread::spawn(move || {
                for i in k * share..(k + 1) * share {
                    send(i);
                }
            })
        })
        .collect()
}

/// The multi-thread runtime the tokio-based libraries run on: two
/// workers, what `#[tokio::main]` gives on two CPUs.
pub fn multi_thread() -> ::tokio::runtime::Runtime {
    ::tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `fut` as a task on the workers of a fresh multi-thread runtime,
/// as a service's code runs (not on the thread that blocks on it).
pub fn on_workers<F>(fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    multi_thread().block_on(async { ::tokio::spawn(fut).await.unwrap() })
}

/// Counts messages and says when the expected number has arrived.
pub struct Counter {
    seen: u64,
    want: u64,
    done: Option<::tokio::sync::oneshot::Sender<()>>,
}

impl Counter {
    /// A counter expecting `want` messages, and what it will signal.
    pub fn new(want: u64) -> (Counter, ::tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = ::tokio::sync::oneshot::channel();
        (Counter { seen: 0, want, done: Some(tx) }, rx)
    }

    /// Counts one message; returns whether it was the last one expected.
    pub fn hit(&mut self, m: u64) -> bool {
        std::hint::black_box(m);
        self.seen += 1;
        if self.seen == self.want {
            let _ = self.done.take().map(|t| t.send(()));
            return true;
        }
        false
    }
}
