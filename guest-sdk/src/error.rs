//! The error type of flows, tasks and SDK calls.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bindings;

/// `Result<T, weir_sdk::Error>`, the return type of orchestrated calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failure of a flow, a task or an SDK call.
///
/// Like `anyhow::Error`, any `std::error::Error` converts into it with `?`, which is why it does
/// not implement `std::error::Error` itself. Unlike it, it carries what the host needs to decide
/// on retries: a `kind` ("error" unless set), whether it is `retryable`, and structured `details`.
///
/// It is one pointer wide, so `Result<T>` stays small.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Error(Box<Inner>);

#[derive(Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    kind: String,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retryable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

/// The kind of errors returned by guest code when none is set.
pub(crate) const DEFAULT_KIND: &str = "error";

impl Error {
    /// An error with a message and the default kind "error".
    pub fn msg(message: impl fmt::Display) -> Self {
        Error(Box::new(Inner {
            kind: DEFAULT_KIND.to_owned(),
            message: message.to_string(),
            retryable: None,
            details: None,
        }))
    }

    /// Sets the kind, a short machine-readable class of failure (for example "rate-limited").
    #[must_use]
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.0.kind = kind.into();
        self
    }

    /// Sets whether the host may retry: `false` stops retries whatever the task's retry count.
    #[must_use]
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.0.retryable = Some(retryable);
        self
    }

    /// Attaches structured details, stored with the failed state.
    #[must_use]
    pub fn details(mut self, details: impl Into<Value>) -> Self {
        self.0.details = Some(details.into());
        self
    }

    /// The kind of the error ("error" unless set; the host uses "timeout", "panic", ...).
    pub fn get_kind(&self) -> &str {
        &self.0.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// Whether retries are allowed (`None`: the task's options decide).
    pub fn get_retryable(&self) -> Option<bool> {
        self.0.retryable
    }

    /// The structured details, if any.
    pub fn get_details(&self) -> Option<&Value> {
        self.0.details.as_ref()
    }

    pub(crate) fn from_failure(failure: bindings::Failure) -> Self {
        Error(Box::new(Inner {
            kind: failure.kind,
            message: failure.message,
            retryable: failure.retryable,
            details: failure
                .details
                .map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text))),
        }))
    }

    pub(crate) fn into_failure(self) -> bindings::Failure {
        let inner = *self.0;
        bindings::Failure {
            kind: inner.kind,
            message: inner.message,
            retryable: inner.retryable,
            details: inner.details.map(|details| details.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(retryable) = self.0.retryable {
            s.field("retryable", &retryable);
        }
        if let Some(details) = &self.0.details {
            s.field("details", details);
        }
        s.finish()
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Keeps the whole source chain in the message ("outer: inner: root"), since the chain
    /// itself cannot cross the sandbox boundary.
    fn from(error: E) -> Self {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        Error::msg(message)
    }
}

/// Returns early with an error: `bail!("no rows for {day}")` or `bail!(io_error)`.
#[macro_export]
macro_rules! bail {
    ($fmt:literal $($arg:tt)*) => {
        return ::core::result::Result::Err($crate::Error::msg(::std::format!($fmt $($arg)*)))
    };
    ($err:expr $(,)?) => {
        return ::core::result::Result::Err(::core::convert::From::from($err))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_errors_have_the_default_kind() {
        let error = Error::msg("boom");
        assert_eq!(error.get_kind(), "error");
        assert_eq!(error.message(), "boom");
        assert_eq!(error.get_retryable(), None);
        assert_eq!(error.to_string(), "boom");
    }

    #[test]
    fn builders_set_kind_retryable_and_details() {
        let error = Error::msg("slow down")
            .kind("rate-limited")
            .retryable(true)
            .details(serde_json::json!({"retry_after": 3}));
        let failure = error.clone().into_failure();
        assert_eq!(failure.kind, "rate-limited");
        assert_eq!(failure.retryable, Some(true));
        assert_eq!(failure.details.as_deref(), Some(r#"{"retry_after":3}"#));
        assert_eq!(Error::from_failure(failure), error);
    }

    #[test]
    fn std_errors_convert_with_their_source_chain() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("reading rows")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let error: Error = Outer(std::io::Error::other("disk gone")).into();
        assert_eq!(error.message(), "reading rows: disk gone");
        assert_eq!(error.get_kind(), "error");
    }

    #[test]
    fn question_mark_converts_parse_errors() {
        fn parse(text: &str) -> Result<i64> {
            Ok(text.parse::<i64>()?)
        }
        assert!(parse("x").unwrap_err().message().contains("invalid digit"));
    }

    #[test]
    fn bail_formats_or_converts() {
        fn formatted(n: i32) -> Result<()> {
            bail!("bad value {n}");
        }
        fn converted() -> Result<()> {
            bail!(std::io::Error::other("io"));
        }
        assert_eq!(formatted(3).unwrap_err().message(), "bad value 3");
        assert_eq!(converted().unwrap_err().message(), "io");
    }

    #[test]
    fn host_details_that_are_not_json_stay_text() {
        let error = Error::from_failure(bindings::Failure {
            kind: "trap".into(),
            message: "unreachable".into(),
            retryable: None,
            details: Some("not json".into()),
        });
        assert_eq!(error.get_details(), Some(&Value::String("not json".into())));
    }
}
