//! The command line: global options ([`Cli`]) and the commands ([`Cmd`]).
//! The doc comments here are the `--help` text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Erlang-style message passing: send, call, monitor, run nodes, configure.
#[derive(Parser, Debug)]
#[command(name = "aemp", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The configuration file (default: $AEMP_CONFIG, else the per-user file).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// The profile whose secret, certificate and seeds client commands use.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,
    /// A seed address for client commands (repeatable; adds to the profile's).
    #[arg(long = "seed", global = true, value_name = "HOST:PORT")]
    pub(crate) seeds: Vec<String>,
    /// The shared secret for client commands (overrides the profile's).
    #[arg(long, global = true)]
    pub(crate) secret: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub(crate) timeout: f64,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Cmd {
    /// Send a message: `aemp snd PORT ARGS...` (arguments are JSON literals where they parse, else strings).
    Snd {
        port: String,
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Send a message with a reply port appended and print the reply.
    Rpc {
        port: String,
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Monitor a port: wait until it dies and print the reason.
    Mon { port: String },
    /// Ask a node's node port for its ID (`info`) and print the round trip.
    Ping { node: String },
    /// List the known and connected nodes of a running node (default: the first seed's).
    Nodes { node: Option<String> },
    /// Print connection events for a node until interrupted.
    Trace { node: String },
    /// Show the supervision trees (aemp-supervisor) running on a node.
    Supervisors { node: String },
    /// Run a node from a profile until SIGINT or SIGTERM.
    Run {
        profile: Option<String>,
        /// Also serve the node's figures for Prometheus at http://ADDR/metrics (off by default).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
    },
    /// Serve a live web view of the network (nodes, links, groups, supervision trees) and print its address.
    Observe(crate::observe::ObserveArgs),
    /// Set the node ID.
    Setnodeid { id: String },
    /// Remove the node ID.
    Delnodeid,
    /// Generate and store a random secret.
    Gensecret,
    /// Store a secret.
    Setsecret { secret: String },
    /// Remove the secret.
    Delsecret,
    /// Generate a key and self-signed certificate (in-process) and store them.
    Gencert,
    /// Store a key and certificate from a PEM file.
    Setcert { file: PathBuf },
    /// Remove the certificate.
    Delcert,
    /// Set the listen addresses.
    Setbinds { binds: Vec<String> },
    /// Remove the listen addresses (back to the default from the node ID).
    Delbinds,
    /// Add a listen address.
    Addbind { bind: String },
    /// Remove a listen address.
    Delbind { bind: String },
    /// Set the seeds.
    Setseeds { seeds: Vec<String> },
    /// Remove the seeds.
    Delseeds,
    /// Add a seed.
    Addseed { seed: String },
    /// Remove a seed.
    Delseed { seed: String },
    /// Set the services (init functions started at boot).
    Setservices { services: Vec<String> },
    /// Remove the services.
    Delservices,
    /// Add a service.
    Addservice { service: String },
    /// Remove a service.
    Delservice { service: String },
    /// Run a configuration command on a profile: `aemp profile NAME setseeds ...`.
    Profile {
        name: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Delete a profile.
    Delprofile { name: String },
    /// Show a profile as stored.
    Showprofile { name: String },
    /// Show the whole configuration, or the merged view of one profile.
    Showconfig { profile: Option<String> },
}
