//! The run logger (Prefect's `get_run_logger`): messages go to the run's logs on the host.

use crate::bindings::LogLevel;
use crate::bindings::weir::flow::logging as host;

/// A log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Detail for debugging.
    Debug,
    /// Normal progress.
    Info,
    /// Something unexpected that the run survives.
    Warning,
    /// A failure.
    Error,
    /// A failure that needs attention now.
    Critical,
}

/// Logs a message at a level in the current run's logs.
pub fn log(level: Level, message: impl AsRef<str>) {
    let level = match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warning => LogLevel::Warning,
        Level::Error => LogLevel::Error,
        Level::Critical => LogLevel::Critical,
    };
    host::log(level, message.as_ref());
}

/// The run logger (Prefect's `get_run_logger()`); the macros [`info!`](crate::info) and friends
/// are shorter.
pub fn logger() -> Logger {
    Logger { _private: () }
}

/// The current run's logger, from [`logger`].
#[derive(Clone, Copy, Debug)]
pub struct Logger {
    _private: (),
}

impl Logger {
    /// Logs at debug level.
    pub fn debug(&self, message: impl AsRef<str>) {
        log(Level::Debug, message);
    }

    /// Logs at info level.
    pub fn info(&self, message: impl AsRef<str>) {
        log(Level::Info, message);
    }

    /// Logs at warning level.
    pub fn warning(&self, message: impl AsRef<str>) {
        log(Level::Warning, message);
    }

    /// Logs at error level.
    pub fn error(&self, message: impl AsRef<str>) {
        log(Level::Error, message);
    }

    /// Logs at critical level.
    pub fn critical(&self, message: impl AsRef<str>) {
        log(Level::Critical, message);
    }
}

/// Logs at debug level: `debug!("rows: {}", rows.len())`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log($crate::Level::Debug, ::std::format!($($arg)+)) };
}

/// Logs at info level: `info!("loaded {count} rows")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log($crate::Level::Info, ::std::format!($($arg)+)) };
}

/// Logs at warning level: `warn!("retrying {url}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log($crate::Level::Warning, ::std::format!($($arg)+)) };
}

/// Logs at error level: `error!("upload failed: {e}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log($crate::Level::Error, ::std::format!($($arg)+)) };
}

/// Logs at critical level: `critical!("data lost")`.
#[macro_export]
macro_rules! critical {
    ($($arg:tt)+) => { $crate::log($crate::Level::Critical, ::std::format!($($arg)+)) };
}
