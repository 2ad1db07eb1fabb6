//! Runs every small example of the book (`examples/snippets/`), each of
//! which checks its own results, and exits with 0 when all pass.
//!
//! `cargo run --example book_snippets`

#[tokio::main]
async fn main() -> aemp::Result<()> {
    aemp_examples::cli::init_logging();
    aemp_examples::snippets::run_all().await
}
