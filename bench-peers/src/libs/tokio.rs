//! Plain tokio: an "actor" is a task reading an unbounded channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{on_workers, send_from_threads, Counter};
use crate::{Library, Made, Meter};

/// Tokio on its current-thread or its multi-thread runtime.
pub struct Tokio {
    pub multi_thread: bool,
}

/// A typed message, as a tokio program would send.
struct Hit(u64);

impl Tokio {
    /// Runs `fut` to completion as a task of the runtime: on a worker of
    /// the multi-thread runtime, on the runtime's own thread otherwise.
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.multi_thread {
            on_workers(fut)
        } else {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(fut)
        }
    }
}

impl Library for Tokio {
    fn name(&self) -> &'static str {
        if self.multi_thread {
            "tokio 2-thread"
        } else {
            "tokio 1-thread"
        }
    }

    fn sends(&self, senders: u64, n: u64) -> f64 {
        self.run(async move {
            let total = n / senders * senders;
            let (tx, mut rx) = mpsc::unbounded_channel::<Hit>();
            let (mut count, _) = Counter::new(total);
            let t0 = Instant::now();
            let threads = send_from_threads(senders, total, move |i| {
                let _ = tx.send(Hit(i));
            });
            while let Some(Hit(m)) = rx.recv().await {
                if count.hit(m) {
                    break;
                }
            }
            let rate = total as f64 / t0.elapsed().as_secs_f64();
            threads.into_iter().for_each(|t| t.join().unwrap());
            rate
        })
    }

    fn ping_pong(&self, n: u64) -> Duration {
        self.run(async move {
            let (to_b, mut b_rx) = mpsc::unbounded_channel::<Hit>();
            let (to_a, mut a_rx) = mpsc::unbounded_channel::<Hit>();
            let b = tokio::spawn(async move {
                while let Some(m) = b_rx.recv().await {
                    if to_a.send(m).is_err() {
                        break;
                    }
                }
            });
            let a = tokio::spawn(async move {
                let t0 = Instant::now();
                to_b.send(Hit(0)).unwrap();
                while let Some(Hit(i)) = a_rx.recv().await {
                    if i == n {
                        break;
                    }
                    to_b.send(Hit(i + 1)).unwrap();
                }
                t0.elapsed() / n as u32
            });
            let d = a.await.unwrap();
            b.await.unwrap();
            d
        })
    }

    fn call(&self, n: u64) -> Duration {
        self.run(async move {
            let (tx, mut rx) = mpsc::unbounded_channel::<(Hit, oneshot::Sender<u64>)>();
            let server = tokio::spawn(async move {
                while let Some((Hit(i), reply)) = rx.recv().await {
                    let _ = reply.send(i);
                }
            });
            let t0 = Instant::now();
            for i in 0..n {
                let (rtx, rrx) = oneshot::channel();
                tx.send((Hit(i), rtx)).unwrap();
                std::hint::black_box(rrx.await.unwrap());
            }
            let d = t0.elapsed() / n as u32;
            drop(tx);
            server.await.unwrap();
            d
        })
    }

    fn create(&self, n: u64, meter: Meter) -> Made {
        self.run(async move {
            let mut handles = Vec::with_capacity(n as usize);
            let m = meter.start();
            idle_actors(n, &mut handles).await;
            m.stop()
        })
    }
}

/// Makes `n` idle tasks, each reading its own channel, and waits until
/// every one has started; keeps their senders in `handles`.
async fn idle_actors(n: u64, handles: &mut Vec<mpsc::UnboundedSender<Hit>>) {
    let started = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        let (tx, mut rx) = mpsc::unbounded_channel::<Hit>();
        let started = started.clone();
        tokio::spawn(async move {
            started.fetch_add(1, Ordering::Relaxed);
            drop(started);
            while let Some(Hit(m)) = rx.recv().await {
                std::hint::black_box(m);
            }
        });
        handles.push(tx);
    }
    while started.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
}
