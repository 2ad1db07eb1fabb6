//! Restart strategies as pure functions: which children to stop, restart
//! and forget when one exits, and when to give up.
//!
//! The supervisor port runs exactly these functions on every child exit, so
//! they can be tested (and simulated) apart from any node.

use std::fmt;
use std::time::Duration;

use aemp::Reason;

use crate::intensity::RestartWindow;
use crate::spec::Restart;

/// What a supervisor does when a child exits and is to be restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Stop all other children (in reverse order), then start them all again
    /// (in order).
    OneForAll,
    /// Stop the children started after the one that exited (in reverse
    /// order), then start it and them again (in order).
    RestForOne,
    /// Like [`OneForOne`](Strategy::OneForOne), for children made at run time
    /// from one template ([`Supervisor::start_dynamic`](crate::Supervisor::start_dynamic));
    /// a child that is not restarted is forgotten.
    SimpleOneForOne,
}

impl Strategy {
    /// The name used on the wire (`"one_for_one"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::SimpleOneForOne => "simple_one_for_one",
        }
    }

    /// The strategy of a wire name.
    pub fn from_name(s: &str) -> Option<Strategy> {
        Some(match s {
            "one_for_one" => Strategy::OneForOne,
            "one_for_all" => Strategy::OneForAll,
            "rest_for_one" => Strategy::RestForOne,
            "simple_one_for_one" => Strategy::SimpleOneForOne,
            _ => return None,
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an exit reason counts for the restart types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitKind {
    /// The normal reason (no values).
    Normal,
    /// A reason whose first element is `"shutdown"`: an orderly stop.
    Shutdown,
    /// Anything else: a crash, a lost node, a kill.
    Abnormal,
}

impl ExitKind {
    /// Classifies a reason.
    pub fn of(reason: &Reason) -> ExitKind {
        if reason.is_normal() {
            ExitKind::Normal
        } else if reason.kind() == Some("shutdown") {
            ExitKind::Shutdown
        } else {
            ExitKind::Abnormal
        }
    }
}

impl Restart {
    /// Whether a child of this type is restarted after an exit of this kind:
    /// permanent always, transient only after an abnormal exit, temporary
    /// never.
    pub fn restarts_after(self, exit: ExitKind) -> bool {
        match self {
            Restart::Permanent => true,
            Restart::Transient => exit == ExitKind::Abnormal,
            Restart::Temporary => false,
        }
    }
}

/// What the strategy needs to know about one child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildState {
    /// Its restart type.
    pub restart: Restart,
    /// Whether it is running or meant to run (starting, running, waiting to
    /// be restarted); `false` for a child that is stopped (by hand, or after
    /// an exit it was not restarted for).
    pub active: bool,
}

/// The work for one exit, by index into the children (in start order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Active siblings to stop first, in this order (reverse start order).
    pub stop: Vec<usize>,
    /// Children to start again afterwards, in this order (start order).
    pub start: Vec<usize>,
    /// Children to forget once stopped: temporary siblings caught in the
    /// restart, or the exited child when it is not restarted and is
    /// temporary or dynamic.
    pub remove: Vec<usize>,
}

/// The plan for child `failed` exiting with an exit of kind `exit`.
///
/// A group restart (one-for-all, rest-for-one) stops the active siblings
/// of the group, last started first, then starts every child of the group
/// that is not temporary, in spec order, stopped ones included, as OTP
/// does: a transient child that had exited normally, or one stopped by
/// hand, runs again after its group restarts. Temporary siblings are
/// stopped and forgotten.
///
/// An index out of range gives an empty plan.
pub fn plan(strategy: Strategy, children: &[ChildState], failed: usize, exit: ExitKind) -> Plan {
    let Some(me) = children.get(failed) else { return Plan::default() };
    if !me.restart.restarts_after(exit) {
        let forget = me.restart == Restart::Temporary || strategy == Strategy::SimpleOneForOne;
        return Plan { stop: vec![], start: vec![], remove: if forget { vec![failed] } else { vec![] } };
    }
    let group = match strategy {
        Strategy::OneForOne | Strategy::SimpleOneForOne => failed..failed + 1,
        Strategy::OneForAll => 0..children.len(),
        Strategy::RestForOne => failed..children.len(),
    };
    let sibling = |i: &usize| *i != failed;
    let temporary = |i: &usize| sibling(i) && children[*i].restart == Restart::Temporary;
    Plan {
        stop: group.clone().rev().filter(|i| sibling(i) && children[*i].active).collect(),
        start: group.clone().filter(|i| !temporary(i)).collect(),
        remove: group.filter(temporary).collect(),
    }
}

/// The outcome of one exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Carry out the plan; it restarts at least the exited child.
    Restart(Plan),
    /// The exited child is not restarted; forget what the plan's `remove`
    /// lists (the exited child or nothing).
    Leave(Plan),
    /// One restart too many within the intensity period: stop every child
    /// and exit.
    GiveUp {
        /// The restarts counted in the window, this one included.
        restarts: usize,
    },
}

/// Decides about child `failed` exiting at time `now`: [`plan`], then the
/// intensity check, which counts one restart per exit that restarts
/// anything.
pub fn decide(
    strategy: Strategy,
    children: &[ChildState],
    failed: usize,
    exit: ExitKind,
    window: &mut RestartWindow,
    now: Duration,
) -> Decision {
    let p = plan(strategy, children, failed, exit);
    if p.start.is_empty() {
        return Decision::Leave(p);
    }
    if window.record(now) {
        Decision::Restart(p)
    } else {
        Decision::GiveUp { restarts: window.count(now) }
    }
}
