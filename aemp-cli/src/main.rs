//! The `aemp` command-line tool: talk to a running aemp or AnyEvent::MP
//! network, run a node, and edit the configuration, as AnyEvent::MP's `aemp` tool does.
//!
//! `args` holds the command line (clap), `commands` runs the client
//! commands and `aemp run`, `supervisors` prints the supervision trees,
//! and `configure` edits the configuration file.

mod args;
mod commands;
mod configure;
mod events;
mod supervisors;

use std::path::PathBuf;
use std::process::ExitCode;

use aemp::config::Config;
use aemp::Value;
use clap::Parser;

use crate::args::Cli;
use crate::commands::run;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("aemp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aemp: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default: warnings), in colour
/// only on a terminal; and records aemp's connection events for `trace` and
/// for the seeds' failures ([`events`]).
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let shown = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    let recorded = events::ConnLayer.with_filter(Targets::new().with_target("aemp", LevelFilter::DEBUG));
    let _ = tracing_subscriber::registry().with(shown).with(recorded).try_init();
}

/// A command's result; `main` prints an error as `aemp: ERROR`.
pub(crate) type Res<T = ()> = Result<T, String>;

/// The configuration file: `--config`, else the default path.
pub(crate) fn config_path(cli: &Cli) -> PathBuf {
    cli.config.clone().unwrap_or_else(Config::default_path)
}

/// A message value as JSON.
pub(crate) fn to_json(v: Value) -> serde_json::Value {
    serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null)
}
