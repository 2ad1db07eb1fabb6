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
        /// The port to send to: `NODE#NAME`.
        port: String,
        /// The message's elements, the tag first.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Send a message with a reply port in it and print the reply.
    Rpc {
        /// The port to send to: `NODE#NAME`.
        port: String,
        /// The message's elements, the tag first.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
        /// Where the reply port goes: its element number in the message,
        /// the tag being element 0 (default: after the last argument).
        #[arg(long, value_name = "N")]
        reply_at: Option<usize>,
    },
    /// Monitor a port: wait until it dies and print the reason. Fails at
    /// once when the port does not exist or its node cannot be reached.
    Mon {
        /// The port to monitor: `NODE#NAME`.
        port: String,
    },
    /// Ask a node's node port for its ID (`info`) and print the round trip.
    Ping {
        /// The node's ID.
        node: String,
    },
    /// List the known and connected nodes of a running node (default: the first seed's).
    Nodes {
        /// The node's ID (default: the node at the first seed that answers).
        node: Option<String>,
    },
    /// Print every connection event this tool sees until interrupted: links
    /// up and down (with the reason), reconnections, refused and failed
    /// connection attempts.
    Trace {
        /// A node to connect to first (the seeds are always dialled).
        node: Option<String>,
    },
    /// Show the supervision trees (aemp-supervisor) running on a node.
    Supervisors {
        /// The node's ID.
        node: String,
    },
    /// Run a node from a profile until SIGINT or SIGTERM.
    Run {
        /// The profile (default: the host name).
        profile: Option<String>,
    },
    /// Set the node ID.
    Setnodeid {
        /// The node ID (`anon/` for a random one).
        id: String,
    },
    /// Remove the node ID.
    Delnodeid,
    /// Generate and store a random secret.
    Gensecret,
    /// Store a secret.
    Setsecret {
        /// The secret.
        secret: String,
    },
    /// Remove the secret.
    Delsecret,
    /// Generate a key and self-signed certificate (in-process) and store them.
    Gencert,
    /// Store a key and certificate from a PEM file.
    Setcert {
        /// The PEM file: the private key and the certificate chain.
        file: PathBuf,
    },
    /// Remove the certificate.
    Delcert,
    /// Set the listen addresses.
    Setbinds {
        /// The addresses, `IP:PORT` each.
        binds: Vec<String>,
    },
    /// Remove the listen addresses (back to the default from the node ID).
    Delbinds,
    /// Add a listen address.
    Addbind {
        /// The address, `IP:PORT`.
        bind: String,
    },
    /// Remove a listen address.
    Delbind {
        /// The address, `IP:PORT`.
        bind: String,
    },
    /// Set the seeds.
    Setseeds {
        /// The seeds' addresses, `HOST:PORT` each.
        seeds: Vec<String>,
    },
    /// Remove the seeds.
    Delseeds,
    /// Add a seed.
    Addseed {
        /// The seed's address, `HOST:PORT`.
        seed: String,
    },
    /// Remove a seed.
    Delseed {
        /// The seed's address, `HOST:PORT`.
        seed: String,
    },
    /// Set the services (init functions started at boot).
    Setservices {
        /// The init functions' names.
        services: Vec<String>,
    },
    /// Remove the services.
    Delservices,
    /// Add a service.
    Addservice {
        /// The init function's name.
        service: String,
    },
    /// Remove a service.
    Delservice {
        /// The init function's name.
        service: String,
    },
    /// Run a configuration command on a profile: `aemp profile NAME setseeds ...`.
    Profile {
        /// The profile.
        name: String,
        /// The configuration command and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Delete a profile.
    Delprofile {
        /// The profile.
        name: String,
    },
    /// Show a profile as stored.
    Showprofile {
        /// The profile.
        name: String,
    },
    /// Show the whole configuration, or the merged view of one profile.
    Showconfig {
        /// The profile (default: the whole file).
        profile: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every argument of every command, with its command's name.
    fn arguments(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Arg)>) {
        for a in cmd.get_arguments() {
            out.push((path.to_owned(), a.clone()));
        }
        for sub in cmd.get_subcommands() {
            arguments(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_argument_has_help_text() {
        let mut all = Vec::new();
        arguments(&Cli::command(), "aemp", &mut all);
        let missing: Vec<String> = all
            .iter()
            .filter(|(_, a)| !matches!(a.get_id().as_str(), "help" | "version") && a.get_help().is_none())
            .map(|(cmd, a)| format!("{cmd} {}", a.get_id()))
            .collect();
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
        assert!(all.len() > 30, "the walk found the arguments");
    }
}
