//! actix: actors in one `System` (its runtime: one thread).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{send_from_threads, Counter};
use crate::{Library, Made, Meter};

pub struct Actix;

struct Hit(u64);
impl Message for Hit {
    type Result = ();
}

struct Sink(Counter);
impl Actor for Sink {
    type Context = Context<Self>;
}
impl Handler<Hit> for Sink {
    type Result = ();
    fn handle(&mut self, Hit(m): Hit, _: &mut Context<Self>) {
        self.0.hit(m);
    }
}

struct Pinger {
    n: u64,
    peer: Option<Addr<Ponger>>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}
impl Actor for Pinger {
    type Context = Context<Self>;
}
struct Ponger {
    back: Addr<Pinger>,
}
impl Actor for Ponger {
    type Context = Context<Self>;
}
struct Go(Addr<Ponger>);
impl Message for Go {
    type Result = ();
}
impl Handler<Go> for Pinger {
    type Result = ();
    fn handle(&mut self, Go(peer): Go, _: &mut Context<Self>) {
        peer.do_send(Hit(0));
        self.peer = Some(peer);
    }
}
impl Handler<Hit> for Pinger {
    type Result = ();
    fn handle(&mut self, Hit(i): Hit, _: &mut Context<Self>) {
        if i == self.n {
            let _ = self.done.take().map(|t| t.send(()));
        } else if let Some(p) = &self.peer {
            p.do_send(Hit(i + 1));
        }
    }
}
impl Handler<Hit> for Ponger {
    type Result = ();
    fn handle(&mut self, m: Hit, _: &mut Context<Self>) {
        self.back.do_send(m);
    }
}

struct Ask(u64);
impl Message for Ask {
    type Result = u64;
}
struct Server;
impl Actor for Server {
    type Context = Context<Self>;
}
impl Handler<Ask> for Server {
    type Result = u64;
    fn handle(&mut self, Ask(i): Ask, _: &mut Context<Self>) -> u64 {
        i
    }
}

struct Idle {
    started: Arc<AtomicU64>,
}
impl Actor for Idle {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }
}
impl Handler<Hit> for Idle {
    type Result = ();
    fn handle(&mut self, Hit(m): Hit, _: &mut Context<Self>) {
        std::hint::black_box(m);
    }
}

/// Makes `n` idle actors and waits until every one has started.
async fn idle_actors(n: u64, handles: &mut Vec<Addr<Idle>>) {
    let started = Arc::new(AtomicU64::new(0));
    for _ in 0..n {
        handles.push(Idle { started: started.clone() }.start());
    }
    while started.load(Ordering::Relaxed) < n {
        tokio::task::yield_now().await;
    }
}

impl Library for Actix {
    fn name(&self) -> &'static str {
        "actix"
    }

    fn sends(&self, senders: u64, n: u64) -> f64 {
        System::new().block_on(async move {
            let total = n / senders * senders;
            let (count, done) = Counter::new(total);
            let sink = Sink(count).start();
            let t0 = Instant::now();
            let threads = send_from_threads(senders, total, move |i| sink.do_send(Hit(i)));
            done.await.unwrap();
            let rate = total as f64 / t0.elapsed().as_secs_f64();
            threads.into_iter().for_each(|t| t.join().unwrap());
            rate
        })
    }

    fn ping_pong(&self, n: u64) -> Duration {
        System::new().block_on(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let pinger = Pinger { n, peer: None, done: Some(tx) }.start();
            let ponger = Ponger { back: pinger.clone() }.start();
            let t0 = Instant::now();
            pinger.do_send(Go(ponger));
            rx.await.unwrap();
            t0.elapsed() / n as u32
        })
    }

    fn call(&self, n: u64) -> Duration {
        System::new().block_on(async move {
            let server = Server.start();
            let t0 = Instant::now();
            for i in 0..n {
                std::hint::black_box(server.send(Ask(i)).await.unwrap());
            }
            t0.elapsed() / n as u32
        })
    }

    fn create(&self, n: u64, meter: Meter) -> Made {
        System::new().block_on(async move {
            let mut handles = Vec::with_capacity(n as usize);
            let m = meter.start();
            idle_actors(n, &mut handles).await;
            m.stop()
        })
    }
}
