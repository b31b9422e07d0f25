//! Schedules: specs (cron, interval, RRULE in an IANA timezone) turned into fire times
//! ([`spec`]), and the scheduler that turns fire times into runs exactly once
//! ([`scheduler`]).

pub mod scheduler;
pub mod spec;

pub use crate::model::clock::{Clock, ManualClock, SystemClock};
pub use crate::model::schedule::{Catchup, Overlap};
pub use scheduler::{Scheduler, SchedulerConfig};
pub use spec::*;
