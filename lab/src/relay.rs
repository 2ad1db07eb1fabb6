//! The delay/loss/reorder relay (the kernel has no netem): not yet built.

use std::path::Path;

use crate::netns::Network;

/// The relays of a lab.
#[derive(Debug)]
pub struct Relays;

impl Relays {
    /// Starts them.
    ///
    /// # Errors
    /// Always, for now.
    pub fn start(_net: &Network, _exe: &Path, _dir: &Path) -> Result<Relays, String> {
        Err("the relay is not built yet".into())
    }

    /// Turns degradation between two hosts on or off.
    ///
    /// # Errors
    /// Always, for now.
    pub fn degrade(&self, _net: &Network, _a: usize, _b: usize, _on: bool) -> Result<(), String> {
        Err("the relay is not built yet".into())
    }
}

/// The relay program's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// The NFQUEUE number.
    #[arg(long, default_value_t = 0)]
    pub queue: u16,
}

/// Runs the relay.
///
/// # Errors
/// Always, for now.
pub fn run(_a: RelayArgs) -> Result<(), String> {
    Err("the relay is not built yet".into())
}
