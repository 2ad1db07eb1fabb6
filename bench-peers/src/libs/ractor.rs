//! ractor: actors on tokio's multi-thread runtime.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use super::{on_workers, send_from_threads, Counter};
use crate::{Library, Made, Meter};

pub struct Ractor;

struct Hit(u64);

struct Sink;
impl Actor for Sink {
    type Msg = Hit;
    type State = Counter;
    type Arguments = Counter;
    async fn pre_start(&self, _: ActorRef<Hit>, c: Counter) -> Result<Counter, ActorProcessingErr> {
        Ok(c)
    }
    async fn handle(&self, _: ActorRef<Hit>, Hit(m): Hit, c: &mut Counter) -> Result<(), ActorProcessingErr> {
        c.hit(m);
        Ok(())
    }
}

enum PingMsg {
    Go(ActorRef<Hit>),
    Hit(u64),
}

struct PingState {
    n: u64,
    peer: Option<ActorRef<Hit>>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

struct Pinger;
impl Actor for Pinger {
    type Msg = PingMsg;
    type State = PingState;
    type Arguments = PingState;
    async fn pre_start(&self, _: ActorRef<PingMsg>, s: PingState) -> Result<PingState, ActorProcessingErr> {
        Ok(s)
    }
    async fn handle(
        &self,
        _: ActorRef<PingMsg>,
        m: PingMsg,
        s: &mut PingState,
    ) -> Result<(), ActorProcessingErr> {
        match m {
            PingMsg::Go(peer) => {
                peer.cast(Hit(0))?;
                s.peer = Some(peer);
            }
            PingMsg::Hit(i) if i == s.n => {
                let _ = s.done.take().map(|t| t.send(()));
            }
            PingMsg::Hit(i) => {
                if let Some(p) = &s.peer {
                    p.cast(Hit(i + 1))?;
                }
            }
        }
        Ok(())
    }
}

struct Ponger;
impl Actor for Ponger {
    type Msg = Hit;
    type State = ActorRef<PingMsg>;
    type Arguments = ActorRef<PingMsg>;
    async fn pre_start(
        &self,
        _: ActorRef<Hit>,
        back: ActorRef<PingMsg>,
    ) -> Result<ActorRef<PingMsg>, ActorProcessingErr> {
        Ok(back)
    }
    async fn handle(
        &self,
        _: ActorRef<Hit>,
        Hit(i): Hit,
        back: &mut ActorRef<PingMsg>,
    ) -> Result<(), ActorProcessingErr> {
        back.cast(PingMsg::Hit(i))?;
        Ok(())
    }
}

enum Ask {
    Ask(u64, RpcReplyPort<u64>),
}

struct Server;
impl Actor for Server {
    type Msg = Ask;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Ask>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Ask>,
        Ask::Ask(i, reply): Ask,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = reply.send(i);
        Ok(())
    }
}

struct Idle;
impl Actor for Idle {
    type Msg = Hit;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Hit>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(&self, _: ActorRef<Hit>, Hit(m): Hit, _: &mut ()) -> Result<(), ActorProcessingErr> {
        std::hint::black_box(m);
        Ok(())
    }
}

/// Makes `n` idle actors (each started once `spawn` returns).
async fn idle_actors(n: u64, handles: &mut Vec<ActorRef<Hit>>) {
    for _ in 0..n {
        handles.push(Actor::spawn(None, Idle, ()).await.unwrap().0);
    }
}

fn stop_all(handles: &[ActorRef<Hit>]) {
    for h in handles {
        h.stop(None);
    }
}

impl Library for Ractor {
    fn name(&self) -> &'static str {
        "ractor"
    }

    fn sends(&self, senders: u64, n: u64) -> f64 {
        on_workers(async move {
            let total = n / senders * senders;
            let (count, done) = Counter::new(total);
            let (sink, handle) = Actor::spawn(None, Sink, count).await.unwrap();
            let t0 = Instant::now();
            let s2 = sink.clone();
            let threads = send_from_threads(senders, total, move |i| {
                let _ = s2.cast(Hit(i));
            });
            done.await.unwrap();
            let rate = total as f64 / t0.elapsed().as_secs_f64();
            threads.into_iter().for_each(|t| t.join().unwrap());
            sink.stop(None);
            handle.await.unwrap();
            rate
        })
    }

    fn ping_pong(&self, n: u64) -> Duration {
        on_workers(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let state = PingState { n, peer: None, done: Some(tx) };
            let (pinger, ph) = Actor::spawn(None, Pinger, state).await.unwrap();
            let (ponger, qh) = Actor::spawn(None, Ponger, pinger.clone()).await.unwrap();
            let t0 = Instant::now();
            pinger.cast(PingMsg::Go(ponger.clone())).unwrap();
            rx.await.unwrap();
            let d = t0.elapsed() / n as u32;
            pinger.stop(None);
            ponger.stop(None);
            ph.await.unwrap();
            qh.await.unwrap();
            d
        })
    }

    fn call(&self, n: u64) -> Duration {
        on_workers(async move {
            let (server, h) = Actor::spawn(None, Server, ()).await.unwrap();
            let t0 = Instant::now();
            for i in 0..n {
                let r = server.call(|reply| Ask::Ask(i, reply), None).await.unwrap();
                std::hint::black_box(r.unwrap());
            }
            let d = t0.elapsed() / n as u32;
            server.stop(None);
            h.await.unwrap();
            d
        })
    }

    fn create(&self, n: u64, meter: Meter) -> Made {
        on_workers(async move {
            let mut handles = Vec::with_capacity(n as usize);
            let m = meter.start();
            idle_actors(n, &mut handles).await;
            let made = m.stop();
            stop_all(&handles);
            made
        })
    }
}
