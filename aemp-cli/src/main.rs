//! The `aemp` command-line tool: talk to a running aemp or AnyEvent::MP
//! network, run a node, and edit the configuration (SPEC A.11).
//!
//! `args` holds the command line (clap), `commands` runs the client
//! commands and `aemp run`, `supervisors` prints the supervision trees,
//! `observe` serves the live web view, and `configure` edits the
//! configuration file.

mod args;
mod commands;
mod configure;
mod observe;
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
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
