//! The observer's web server (axum): the page (HTML, CSS and JavaScript
//! built into the binary), the view as JSON (`/state`), and every change
//! of it as a server-sent event (`/events`). With a token, the page and
//! the data are served only to requests that carry it (`?token=...`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::Stream;
use tokio::net::TcpListener;
use tokio::sync::watch;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// What the server serves: the latest view, and the token, if any.
#[derive(Clone)]
pub(crate) struct Site {
    json: watch::Receiver<Arc<str>>,
    token: Option<Arc<str>>,
}

impl Site {
    pub(crate) fn new(json: watch::Receiver<Arc<str>>, token: Option<String>) -> Site {
        Site { json, token: token.map(Arc::from) }
    }

    /// Whether a request with this query may see the page and its data.
    fn allows(&self, query: Option<&str>) -> bool {
        let Some(token) = &self.token else { return true };
        query.unwrap_or("").split('&').any(|kv| kv.strip_prefix("token=").is_some_and(|t| same(t, token)))
    }
}

/// Compares without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The routes.
pub(crate) fn router(site: Site) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .route("/state", get(state))
        .route("/events", get(events))
        .with_state(site)
}

/// Serves until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, site: Site) {
    if let Err(e) = axum::serve(listener, router(site)).await {
        tracing::error!("the observer's web server stopped: {e}");
    }
}

fn asset(kind: &'static str, body: impl IntoResponse) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    r
}

fn refused() -> Response {
    (StatusCode::FORBIDDEN, "this page needs the token printed by aemp observe: ?token=...\n").into_response()
}

async fn index(State(site): State<Site>, RawQuery(q): RawQuery) -> Response {
    if !site.allows(q.as_deref()) {
        return refused();
    }
    let mut r = asset("text/html; charset=utf-8", INDEX);
    // Everything the page loads is its own: no inline code, nothing from elsewhere.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    r
}

async fn state(State(site): State<Site>, RawQuery(q): RawQuery) -> Response {
    if !site.allows(q.as_deref()) {
        return refused();
    }
    let json = site.json.borrow().clone();
    asset("application/json", json.to_string())
}

async fn events(State(site): State<Site>, RawQuery(q): RawQuery) -> Response {
    if !site.allows(q.as_deref()) {
        return refused();
    }
    Sse::new(changes(site.json)).keep_alive(KeepAlive::default()).into_response()
}

/// The view now, then each new one (intermediate ones are skipped when the
/// page reads slower than they come).
fn changes(mut rx: watch::Receiver<Arc<str>>) -> impl Stream<Item = Result<Event, Infallible>> {
    rx.mark_changed();
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        let json = rx.borrow_and_update().clone();
        Some((Ok(Event::default().data(&*json)), rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(token: Option<&str>) -> Site {
        let (_tx, rx) = watch::channel(Arc::from("{}"));
        Site::new(rx, token.map(str::to_owned))
    }

    #[test]
    fn without_a_token_everything_is_allowed_and_with_one_only_the_right_token() {
        assert!(site(None).allows(None));
        let s = site(Some("abc"));
        assert!(!s.allows(None));
        assert!(!s.allows(Some("token=abd")));
        assert!(!s.allows(Some("token=ab")));
        assert!(!s.allows(Some("xtoken=abc")));
        assert!(s.allows(Some("token=abc")));
        assert!(s.allows(Some("a=1&token=abc")));
    }
}
