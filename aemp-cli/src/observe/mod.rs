//! `aemp observe`: a live web view of a running network.
//!
//! The tool's client node joins the network with the profile's secret and
//! seeds; every `--interval` seconds, and at once when one of its links
//! goes down or a child it watches dies, it asks every node it is linked
//! to for its figures and supervision trees (`collect`), folds the answers
//! into what the page shows (`view`), and serves the page and the updates
//! as server-sent events (`web`).
//!
//! ```text
//!   nodes --(aemp_stats, up_nodes, which_children)--> collect --> view --JSON--> web --SSE--> page
//!     \--(link up/down, child died)--> wake the next round at once
//! ```

mod collect;
mod view;
mod web;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aemp::{MonGuard, Node, NodeEvent, PortId, Reason};
use tokio::sync::{watch, Notify};

use crate::Res;
use view::View;

/// `aemp observe`'s options.
#[derive(clap::Args, Debug)]
pub(crate) struct ObserveArgs {
    /// Where the page is served. Any address but a loopback one requires the
    /// token printed at start in the page's URL.
    #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR")]
    pub(crate) listen: String,
    /// Seconds between two rounds of asking every node.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) interval: f64,
}

/// The view and its latest JSON, shared by the rounds, the link events and
/// the web server.
struct Board {
    view: Mutex<View>,
    json: watch::Sender<Arc<str>>,
}

impl Board {
    /// Changes the view and publishes it.
    fn update(&self, f: impl FnOnce(&mut View)) {
        let text = {
            let mut v = self.view.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut v);
            v.to_json().to_string()
        };
        self.json.send_replace(Arc::from(text));
    }
}

/// Runs the observer on `node` until SIGINT or SIGTERM; `t` bounds each
/// question to a node.
pub(crate) async fn observe(node: &Node, args: &ObserveArgs, t: Duration) -> Res {
    let interval = Duration::from_secs_f64(args.interval.clamp(0.05, 3600.0));
    let t = t.min(Duration::from_secs(5));
    let listen: SocketAddr =
        args.listen.parse().map_err(|e| format!("--listen {}: not an address ({e})", args.listen))?;
    let view = View::new(node.id());
    let (json, rx) = watch::channel(Arc::from(view.to_json().to_string()));
    let board = Arc::new(Board { view: Mutex::new(view), json });
    let wake = Arc::new(Notify::new());
    let events = {
        let (board, wake) = (board.clone(), wake.clone());
        node.mon_nodes(move |ev| {
            let (n, up, reason) = match ev {
                NodeEvent::Up(n) => (n, true, None),
                NodeEvent::Down(n, r) => (n, false, Some(reason_text(r))),
            };
            board.update(|v| v.node_event(collect::now(), n, up, reason));
            wake.notify_one();
        })
    };
    let token = (!listen.ip().is_loopback()).then(crate::configure::random_secret);
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let at = listener.local_addr().map_err(|e| e.to_string())?;
    let url = match &token {
        Some(tok) => format!("http://{at}/?token={tok}"),
        None => format!("http://{at}/"),
    };
    let server = tokio::spawn(web::serve(listener, web::Site::new(rx, token)));
    println!("aemp observe: {url}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let mut watched: HashMap<String, MonGuard> = HashMap::new();
    let stop = crate::commands::wait_for_signal();
    tokio::pin!(stop);
    loop {
        let obs = collect::round(node, t).await;
        board.update(|v| v.apply(obs));
        watch_children(node, &board, &wake, &mut watched);
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(interval) => {}
            _ = wake.notified() => {}
        }
    }
    node.unmon_nodes(events);
    server.abort();
    Ok(())
}

/// Monitors the ports of the children shown (a death starts the next round
/// at once) and stops monitoring those no longer shown.
fn watch_children(node: &Node, board: &Board, wake: &Arc<Notify>, watched: &mut HashMap<String, MonGuard>) {
    let ports = board.view.lock().unwrap_or_else(|e| e.into_inner()).child_ports();
    watched.retain(|p, _| ports.contains(p));
    for p in ports {
        if watched.contains_key(&p) {
            continue;
        }
        let Ok(port) = PortId::new(&p) else { continue };
        let wake = wake.clone();
        let guard = node.mon(&port, move |_r: Reason| wake.notify_one());
        watched.insert(p, guard);
    }
}

/// A reason as words: `transport_error, obs-b, connection closed by peer`.
fn reason_text(r: &Reason) -> String {
    let words: Vec<String> =
        r.0.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect();
    words.join(", ")
}
