//! Code shared by the examples, and the code of the book.
//!
//! - [`chat`]: the chat service that grows through the book (an untyped
//!   server and client, then typed messages and sessions spawned on the
//!   server's node). The programs `chat_local`, `chat_server`,
//!   `chat_client` and `chat_typed` are thin wrappers around it.
//! - [`cli`]: the command-line arguments of the long-running examples.
//! - [`snippets`]: the book's small examples, one module per chapter, each
//!   with a `run` function that the tests (and `cargo run --example
//!   book_snippets`) call.
//!
//! Every code block of the book (`book/src`) is included from these files
//! or from the example programs, so `cargo test` compiles all of them.

pub mod chat;
pub mod cli;
pub mod snippets;
