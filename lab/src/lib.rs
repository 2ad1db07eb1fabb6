//! aemp-lab: aemp nodes as separate processes on hosts made of Linux
//! network namespaces, with injected faults (partitions, one-way loss,
//! vanishing hosts, killed and paused processes, delay, loss and
//! reordering), a recorded history and a checker of aemp's promises over
//! it (P17, P25, liveness after heals, supervision).
//!
//! The checker ([`checker`]), the schedule generator ([`schedule`]) and the
//! relay's policy ([`relay::policy`]) are pure and unit-tested; the
//! namespaces ([`netns`]), the node program ([`node`]), the relay
//! ([`relay`]) and the runner ([`lab`]) need root.

pub mod checker;
pub mod history;
pub mod lab;
pub mod netns;
pub mod node;
pub mod relay;
pub mod schedule;
