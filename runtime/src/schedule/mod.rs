//! Deployment schedules: what a schedule says ([`spec`]) and, later, the loop that creates runs from it.

pub mod spec;

pub use spec::*;
