//! The helper process a benchmark starts as a copy of itself.

use std::io::Write;

/// Tells the parent where this process listens (one line on stdout), then
/// serves until the parent closes our stdin.
pub async fn announce_and_serve(addrs: &str) {
    println!("{addrs}");
    std::io::stdout().flush().unwrap();
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    })
    .await
    .unwrap();
}
