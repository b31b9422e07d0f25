//! Weir's own vocabulary, below everything else (it imports no other module of Weir):
//! run states and the transitions between them, failures (host-made kinds a guest
//! cannot forge), a component's manifest and its validated options, durations bounded
//! where they enter, sandbox limits, schedule policies and the clock.

pub mod clock;
pub mod duration;
pub mod failure;
pub mod limits;
pub mod manifest;
pub mod schedule;
pub mod state;
