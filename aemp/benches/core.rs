//! Benchmarks of the core runtime.

fn main() {}
