//! The `aemp-lab` command: `run`, `ci`, `soak`, and the `node` and `relay`
//! programs it starts inside the namespaces.

fn main() {}
