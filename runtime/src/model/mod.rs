//! Weir's own vocabulary, below everything else (it imports no other module of Weir):
//! run states and the transitions between them, failures (host-made kinds a guest
//! cannot forge), a component's manifest and its validated options, durations bounded
//! where they enter, sandbox limits, schedule policies and the clock, log levels, and
//! what passes between an instance and its run (call options, outcomes, pauses,
//! artifacts).

pub mod automation;
pub mod clock;
pub mod duration;
pub mod egress;
pub mod failure;
pub mod limits;
pub mod log;
pub mod manifest;
pub mod name;
pub mod plugin;
pub mod quota;
pub mod retention;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod state;
