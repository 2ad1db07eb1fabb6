//! kameo: actors on tokio's multi-thread runtime, unbounded mailboxes.

use std::time::{Duration, Instant};

use kameo::actor::{ActorRef, Spawn};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::Actor;

use super::{on_workers, send_from_threads, Counter};
use crate::{Library, Made, Meter};

pub struct Kameo;

struct Hit(u64);

#[derive(Actor)]
struct Sink(Counter);
impl Message<Hit> for Sink {
    type Reply = ();
    async fn handle(&mut self, Hit(m): Hit, _: &mut Context<Self, Self::Reply>) {
        self.0.hit(m);
    }
}

#[derive(Actor)]
struct Pinger {
    n: u64,
    peer: Option<ActorRef<Ponger>>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}
struct Go(ActorRef<Ponger>);
impl Message<Go> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Go(peer): Go, _: &mut Context<Self, Self::Reply>) {
        let _ = peer.tell(Hit(0)).await;
        self.peer = Some(peer);
    }
}
impl Message<Hit> for Pinger {
    type Reply = ();
    async fn handle(&mut self, Hit(i): Hit, _: &mut Context<Self, Self::Reply>) {
        if i == self.n {
            let _ = self.done.take().map(|t| t.send(()));
        } else if let Some(p) = &self.peer {
            let _ = p.tell(Hit(i + 1)).await;
        }
    }
}

#[derive(Actor)]
struct Ponger {
    back: ActorRef<Pinger>,
}
impl Message<Hit> for Ponger {
    type Reply = ();
    async fn handle(&mut self, m: Hit, _: &mut Context<Self, Self::Reply>) {
        let _ = self.back.tell(m).await;
    }
}

struct Ask(u64);
#[derive(Actor)]
struct Server;
impl Message<Ask> for Server {
    type Reply = u64;
    async fn handle(&mut self, Ask(i): Ask, _: &mut Context<Self, Self::Reply>) -> u64 {
        i
    }
}

#[derive(Actor)]
struct Idle;
impl Message<Hit> for Idle {
    type Reply = ();
    async fn handle(&mut self, Hit(m): Hit, _: &mut Context<Self, Self::Reply>) {
        std::hint::black_box(m);
    }
}

/// Makes `n` idle actors and waits until every one has started.
async fn idle_actors(n: u64, handles: &mut Vec<ActorRef<Idle>>) {
    for _ in 0..n {
        handles.push(Idle::spawn_with_mailbox(Idle, mailbox::unbounded()));
    }
    for h in handles.iter() {
        h.wait_for_startup().await;
    }
}

impl Library for Kameo {
    fn name(&self) -> &'static str {
        "kameo"
    }

    fn sends(&self, senders: u64, n: u64) -> f64 {
        on_workers(async move {
            let total = n / senders * senders;
            let (count, done) = Counter::new(total);
            let sink = Sink::spawn_with_mailbox(Sink(count), mailbox::unbounded());
            sink.wait_for_startup().await;
            let t0 = Instant::now();
            let s2 = sink.clone();
            let threads = send_from_threads(senders, total, move |i| {
                let _ = s2.tell(Hit(i)).try_send();
            });
            done.await.unwrap();
            let rate = total as f64 / t0.elapsed().as_secs_f64();
            threads.into_iter().for_each(|t| t.join().unwrap());
            sink.kill();
            rate
        })
    }

    fn ping_pong(&self, n: u64) -> Duration {
        on_workers(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let pinger =
                Pinger::spawn_with_mailbox(Pinger { n, peer: None, done: Some(tx) }, mailbox::unbounded());
            let ponger = Ponger::spawn_with_mailbox(Ponger { back: pinger.clone() }, mailbox::unbounded());
            pinger.wait_for_startup().await;
            ponger.wait_for_startup().await;
            let t0 = Instant::now();
            pinger.tell(Go(ponger.clone())).await.unwrap();
            rx.await.unwrap();
            let d = t0.elapsed() / n as u32;
            pinger.kill();
            ponger.kill();
            d
        })
    }

    fn call(&self, n: u64) -> Duration {
        on_workers(async move {
            let server = Server::spawn_with_mailbox(Server, mailbox::unbounded());
            server.wait_for_startup().await;
            let t0 = Instant::now();
            for i in 0..n {
                std::hint::black_box(server.ask(Ask(i)).await.unwrap());
            }
            let d = t0.elapsed() / n as u32;
            server.kill();
            d
        })
    }

    fn create(&self, n: u64, meter: Meter) -> Made {
        on_workers(async move {
            let mut handles = Vec::with_capacity(n as usize);
            let m = meter.start();
            idle_actors(n, &mut handles).await;
            m.stop()
        })
    }
}
