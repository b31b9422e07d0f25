//! Global concurrency and rate limits of the workspace (Prefect's `concurrency(...)` and
//! `rate_limit(...)`), held across every node of the server.
//!
//! A limit is created in the workspace first (`PUT /api/global-concurrency-limits/db` with
//! `{"limit": 2}`, or `weir gcl set db 2`); a flow or task then occupies its slots for a
//! block of code:
//!
//! ```no_run
//! # fn query() -> weir_sdk::Result<u32> { Ok(1) }
//! # fn main() -> weir_sdk::Result<()> {
//! // At most two blocks holding "db" run at once in the workspace; this one takes one slot.
//! let rows = weir_sdk::concurrency("db", 1, || query())??;
//!
//! // Calls spaced by the limit's decay ("api": 10 slots, 5 coming back per second).
//! weir_sdk::rate_limit("api", 1)?;
//!
//! // Several limits at once, with a deadline on the wait.
//! let _slots = weir_sdk::Limits::new(["db", "warehouse"]).occupy(2).timeout_seconds(30.0).acquire()?;
//! # Ok(()) }
//! ```

use crate::bindings::weir::flow::concurrency as host;
use crate::error::{Error, Result};

/// The slots to take of one or more of the workspace's limits.
#[derive(Clone, Debug)]
pub struct Limits {
    names: Vec<String>,
    occupy: u32,
    timeout_seconds: Option<f64>,
    strict: bool,
}

/// Slots occupied until this is dropped (whatever happens to the code in between: an
/// error, a panic, a timeout of the run).
#[derive(Debug)]
pub struct Occupied {
    _slots: host::Occupancy,
}

impl Limits {
    /// One slot of each named limit, waiting as long as needed; a name without a limit
    /// limits nothing (see [`strict`](Self::strict)).
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Limits {
            names: names.into_iter().map(Into::into).collect(),
            occupy: 1,
            timeout_seconds: None,
            strict: false,
        }
    }

    /// Slots to take of each limit (Prefect's `occupy`).
    #[must_use]
    pub fn occupy(mut self, slots: u32) -> Self {
        self.occupy = slots;
        self
    }

    /// Gives up waiting after this many seconds, with an error (Prefect's `timeout_seconds`).
    #[must_use]
    pub fn timeout_seconds(mut self, seconds: f64) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// Makes a name without a limit an error (Prefect's `strict=True`).
    #[must_use]
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    fn request(&self) -> host::Request {
        host::Request {
            names: self.names.clone(),
            occupy: self.occupy,
            timeout_seconds: self.timeout_seconds,
            strict: self.strict,
        }
    }

    /// Waits for the slots and occupies them until the returned guard is dropped.
    pub fn acquire(&self) -> Result<Occupied> {
        host::acquire(&self.request())
            .map(|slots| Occupied { _slots: slots })
            .map_err(|message| Error::msg(message).kind("concurrency"))
    }

    /// Runs `f` while holding the slots.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let _slots = self.acquire()?;
        Ok(f())
    }

    /// Takes slots of rate limits (limits with a slot decay): returns once the call may
    /// go ahead. The slots come back by themselves at the limit's rate.
    pub fn rate_limit(&self) -> Result<()> {
        host::rate_limit(&self.request()).map_err(|message| Error::msg(message).kind("concurrency"))
    }
}

/// Runs `f` holding `occupy` slots of the workspace's limit `name` (Prefect's
/// `with concurrency(name, occupy=...)`); waits while the limit is full.
pub fn concurrency<R>(name: &str, occupy: u32, f: impl FnOnce() -> R) -> Result<R> {
    Limits::new([name]).occupy(occupy).run(f)
}

/// Waits until the workspace's rate limit `name` lets `occupy` more calls through
/// (Prefect's `rate_limit(name, occupy=...)`).
pub fn rate_limit(name: &str, occupy: u32) -> Result<()> {
    Limits::new([name]).occupy(occupy).rate_limit()
}
