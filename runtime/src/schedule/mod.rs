//! Schedules: specs (cron, interval, RRULE in an IANA timezone) turned into fire times
//! ([`spec`]), and the scheduler that turns fire times into runs exactly once
//! ([`scheduler`]).

pub mod scheduler;
pub mod spec;

pub use scheduler::{
    Catchup, Clock, ManualClock, Overlap, Scheduler, SchedulerConfig, SystemClock,
};
pub use spec::*;
