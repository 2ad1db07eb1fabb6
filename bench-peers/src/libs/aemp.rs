//! aemp: ports with callbacks on one node.

use std::time::{Duration, Instant};

use aemp::{msg, Node};

use super::{multi_thread, send_from_threads, Counter};
use crate::{Library, Made, Meter};

pub struct Aemp;

async fn node() -> Node {
    Node::builder().build().await.unwrap()
}

impl Library for Aemp {
    fn name(&self) -> &'static str {
        "aemp"
    }

    fn sends(&self, senders: u64, n: u64) -> f64 {
        multi_thread().block_on(async {
            let node = node().await;
            let total = n / senders * senders;
            let (mut count, done) = Counter::new(total);
            let sink = node.port_with(move |_, m| -> aemp::Result<()> {
                count.hit(m.get(0)?);
                Ok(())
            });
            let t0 = Instant::now();
            let (node2, sink2) = (node.clone(), sink.clone());
            let threads = send_from_threads(senders, total, move |i| node2.snd(&sink2, msg![i]));
            done.await.unwrap();
            let rate = total as f64 / t0.elapsed().as_secs_f64();
            threads.into_iter().for_each(|t| t.join().unwrap());
            node.shutdown().await;
            rate
        })
    }

    fn ping_pong(&self, n: u64) -> Duration {
        multi_thread().block_on(async {
            let node = node().await;
            let (pinger, ponger) = (node.port(), node.port());
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut tx = Some(tx);
            let back = pinger.clone();
            node.rcv(&ponger, move |ctx, m| ctx.snd(&back, m));
            let to = ponger.clone();
            node.rcv(&pinger, move |ctx, m| -> aemp::Result<()> {
                let i: u64 = m.get(0)?;
                if i == n {
                    let _ = tx.take().map(|t| t.send(()));
                } else {
                    ctx.snd(&to, msg![i + 1]);
                }
                Ok(())
            });
            let t0 = Instant::now();
            node.snd(&ponger, msg![0]);
            rx.await.unwrap();
            let d = t0.elapsed() / n as u32;
            node.shutdown().await;
            d
        })
    }

    fn call(&self, n: u64) -> Duration {
        let rt = multi_thread();
        rt.block_on(async {
            let node = node().await;
            let server = node.port_with(|ctx, m| -> aemp::Result<()> {
                let reply = m.port(1)?;
                ctx.snd(&reply, msg![m.at(0)?.clone()]);
                Ok(())
            });
            let (node2, server2) = (node.clone(), server.clone());
            // From a task on the runtime's workers, as a service's code runs.
            let d = tokio::spawn(async move {
                let t0 = Instant::now();
                for i in 0..n {
                    let r = node2.call(&server2, msg![i], Duration::from_secs(10)).await.unwrap();
                    std::hint::black_box(r);
                }
                t0.elapsed() / n as u32
            })
            .await
            .unwrap();
            node.shutdown().await;
            d
        })
    }

    fn create(&self, n: u64, meter: Meter) -> Made {
        multi_thread().block_on(async {
            let node = node().await;
            let mut ids = Vec::with_capacity(n as usize);
            node.port_count().await;
            let m = meter.start();
            for _ in 0..n {
                ids.push(node.port_with(|_, _| {}));
            }
            // Every port exists once the dispatcher has answered this; the
            // second lets it give back the memory of the burst of requests.
            assert!(node.port_count().await as u64 >= n);
            node.port_count().await;
            let made = m.stop();
            node.shutdown().await;
            made
        })
    }
}
