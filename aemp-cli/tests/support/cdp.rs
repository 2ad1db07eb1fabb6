//! Headless Chromium driven over the Chrome DevTools Protocol: start the
//! browser, open a page, evaluate JavaScript in it, wait for a condition on
//! its DOM, take a screenshot. Just what the observer's browser test needs.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The browser binaries tried, in order (Debian's package installs `chromium`).
const BINARIES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// A headless browser with one page open.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

/// The first browser binary found on `PATH`.
pub fn find_chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    BINARIES.iter().flat_map(|b| std::env::split_paths(&path).map(move |d| d.join(b))).find(|p| p.is_file())
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Browser {
    /// Starts the browser (`width` x `height` window) and connects to it.
    pub async fn launch(binary: &std::path::Path, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut cmd = Command::new(binary);
        cmd.args([
            "--headless",
            "--disable-gpu",
            // Containers often have a small /dev/shm.
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-domain-reliability",
            "--hide-scrollbars",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.path().display()));
        if running_as_root() {
            // Chromium's sandbox refuses to run as root.
            cmd.arg("--no-sandbox");
        }
        let mut child = cmd
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // It prints where its DevTools endpoint listens.
        let stderr = child.stderr.take().expect("stderr");
        let url = tokio::task::spawn_blocking(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            let url = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|l| l.split_once("DevTools listening on ").map(|(_, u)| u.trim().to_owned()));
            // Keep draining, so the browser never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            url
        })
        .await
        .unwrap()
        .expect("chromium printed its DevTools address");
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str()).await.expect("DevTools connection");
        Browser { child, ws, next_id: 0, session: None, _profile: profile }
    }

    /// Sends one command (to the open page once there is one) and returns
    /// its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut cmd = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = &self.session {
            cmd["sessionId"] = json!(s);
        }
        self.ws.send(Message::text(cmd.to_string())).await.expect("command sent");
        loop {
            let msg = self.ws.next().await.expect("DevTools connection open").expect("DevTools message");
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if v["id"] != json!(id) {
                continue; // an event
            }
            if let Some(e) = v.get("error") {
                panic!("{method}: {e}");
            }
            return v["result"].clone();
        }
    }

    /// Opens `url` in a new page, which later calls act on.
    pub async fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": url })).await;
        let attached = self
            .call("Target.attachToTarget", json!({ "targetId": target["targetId"], "flatten": true }))
            .await;
        self.session = attached["sessionId"].as_str().map(str::to_owned);
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    pub async fn eval(&mut self, expr: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({ "expression": expr, "returnByValue": true })).await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until the expression is true in the page, polling its DOM;
    /// panics with `what` and the page's text when `within` runs out.
    pub async fn wait_for(&mut self, what: &str, expr: &str, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.eval(expr).await == json!(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("document.body.innerText").await;
                panic!("the page never showed {what} ({expr}); it shows:\n{}", text.as_str().unwrap_or(""));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG of the whole page at `width` pixels wide.
    pub async fn screenshot(&mut self, width: u32) -> Vec<u8> {
        use base64::Engine as _;
        let height = self.eval("document.documentElement.scrollHeight").await.as_u64().unwrap_or(1000);
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" })).await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("image data"))
            .expect("base64")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
