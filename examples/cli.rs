//! The command-line arguments of the long-running examples
//! (`chat_server`, `chat_client`):
//!
//! `[--profile NAME] [--id ID] [--bind IP:PORT]... [--seed HOST:PORT]... [--secret S] [--nick NICK]`

// ANCHOR: imports
use aemp::{NetConfig, Node};
// ANCHOR_END: imports

// ANCHOR: node_args
/// Parsed arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeArgs {
    /// `--profile NAME`: start the node from this profile of the
    /// configuration file (`aemp::initialise_node`) instead of the other
    /// options.
    pub profile: Option<String>,
    /// `--id ID`: the node ID (`anon/` for a random one).
    pub id: Option<String>,
    /// `--bind IP:PORT`, repeatable: where the node listens.
    pub binds: Vec<String>,
    /// `--seed HOST:PORT`, repeatable: nodes to contact at start.
    pub seeds: Vec<String>,
    /// `--secret S`: the shared secret.
    pub secret: Option<String>,
    /// `--nick NICK`: the chat nickname (client only).
    pub nick: Option<String>,
}
// ANCHOR_END: node_args

impl NodeArgs {
    /// Parses the arguments after the program name.
    ///
    /// # Errors
    /// A one-line text for an unknown option, an option without its
    /// value, or `--profile` together with node options.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<NodeArgs, String> {
        let mut out = NodeArgs::default();
        let mut it = args.into_iter();
        while let Some(opt) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{opt} needs a value"));
            match opt.as_str() {
                "--profile" => out.profile = Some(value()?),
                "--id" => out.id = Some(value()?),
                "--bind" => out.binds.push(value()?),
                "--seed" => out.seeds.push(value()?),
                "--secret" => out.secret = Some(value()?),
                "--nick" => out.nick = Some(value()?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let node_opts = out.id.is_some() || !out.binds.is_empty() || !out.seeds.is_empty();
        if out.profile.is_some() && (node_opts || out.secret.is_some()) {
            return Err("--profile takes the node's settings from the configuration file: \
                        leave out --id, --bind, --seed and --secret"
                .into());
        }
        Ok(out)
    }

    /// The network settings these arguments ask for.
    pub fn net_config(&self) -> NetConfig {
        let mut net = NetConfig::default();
        net.binds = self.binds.clone();
        net.seeds = self.seeds.clone();
        net.secret = self.secret.clone();
        net
    }

    // ANCHOR: start_node
    /// Starts the node: from the profile if one was given, else from the
    /// options, with `default_id` when there is no `--id`.
    ///
    /// # Errors
    /// What `aemp::initialise_node` or `NodeBuilder::build` return, and
    /// [`aemp::Error::Config`] when neither a profile nor a secret was given.
    pub async fn start_node(&self, default_id: &str) -> aemp::Result<Node> {
        if let Some(profile) = &self.profile {
            return aemp::initialise_node(profile).await;
        }
        if self.secret.is_none() {
            return Err(aemp::Error::Config("give --secret S (or --profile NAME)".into()));
        }
        let id = self.id.clone().unwrap_or_else(|| default_id.to_owned());
        Node::builder().id(id).net_config(self.net_config()).build().await
    }
    // ANCHOR_END: start_node
}

// ANCHOR: logging
/// Installs a `tracing` subscriber that logs to stderr, filtered by
/// `RUST_LOG` (default: warnings).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
// ANCHOR_END: logging

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<NodeArgs, String> {
        NodeArgs::parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn options_repeat_and_collect() {
        let a =
            parse("--id n1 --bind 127.0.0.1:1 --bind 127.0.0.1:2 --seed h:3 --secret s --nick bob").unwrap();
        assert_eq!(a.id.as_deref(), Some("n1"));
        assert_eq!(a.binds, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(a.seeds, ["h:3"]);
        assert_eq!(a.net_config().secret.as_deref(), Some("s"));
        assert_eq!(a.nick.as_deref(), Some("bob"));
    }

    #[test]
    fn mistakes_are_one_line_errors() {
        assert!(parse("--bind").unwrap_err().contains("needs a value"));
        assert!(parse("--frob").unwrap_err().contains("unknown argument"));
        assert!(parse("--profile p --seed h:1").unwrap_err().contains("--profile"));
        assert_eq!(parse("--profile p --nick n").unwrap().profile.as_deref(), Some("p"));
    }
}
