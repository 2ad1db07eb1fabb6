//! The `aemp` command-line tool.

fn main() {}
