//! Durations from guests, SDK calls and the API (timeouts, retry delays, cache
//! expirations, pause timeouts), bounded where they enter.
//!
//! Every such duration arrives as a float number of seconds. Each is checked once, where
//! it enters Weir (a component's manifest at upload, a deployment's limits, a pause
//! request), and a bad one is refused with a message naming the field. What is turned
//! into a [`Duration`] or added to a time afterwards goes through the saturating
//! helpers here, so no value, however it got in (an older database row, say), can make
//! the host panic.

use chrono::{DateTime, Utc};
use std::time::Duration;

/// The longest duration Weir accepts anywhere: ten years, in seconds.
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86_400.0;

/// A duration outside what Weir accepts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("'{field}' must be a number of seconds from 0 to {MAX_SECONDS} (ten years), not {value}")]
pub struct DurationError {
    pub field: String,
    pub value: f64,
}

/// Checks a number of seconds: finite, not negative, at most [`MAX_SECONDS`].
pub fn check(field: &str, value: f64) -> Result<f64, DurationError> {
    if value.is_finite() && (0.0..=MAX_SECONDS).contains(&value) {
        Ok(value)
    } else {
        Err(DurationError {
            field: field.to_owned(),
            value,
        })
    }
}

/// Checks a timeout. `0` means no timeout, as in Prefect (which stores `None` for it).
pub fn timeout(field: &str, value: Option<f64>) -> Result<Option<f64>, DurationError> {
    match value {
        None => Ok(None),
        Some(v) => check(field, v).map(|v| (v > 0.0).then_some(v)),
    }
}

/// Seconds as a [`Duration`], saturating: NaN and negatives are zero, anything over
/// [`MAX_SECONDS`] is [`MAX_SECONDS`].
pub fn to_std(seconds: f64) -> Duration {
    if seconds.is_nan() || seconds <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(seconds.min(MAX_SECONDS))
    }
}

/// `at` plus `seconds`, saturating like [`to_std`] (and at the last representable time).
pub fn after(at: DateTime<Utc>, seconds: f64) -> DateTime<Utc> {
    chrono::Duration::from_std(to_std(seconds))
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_fits_and_names_what_does_not() {
        assert_eq!(check("t", 0.0), Ok(0.0));
        assert_eq!(check("t", 2.5), Ok(2.5));
        assert_eq!(check("t", MAX_SECONDS), Ok(MAX_SECONDS));
        for bad in [
            -1.0,
            1e20,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            MAX_SECONDS * 2.0,
        ] {
            let e = check("timeout_seconds", bad).unwrap_err();
            assert!(e.to_string().contains("'timeout_seconds'"), "{e}");
        }
    }

    #[test]
    fn a_zero_timeout_is_no_timeout() {
        assert_eq!(timeout("t", Some(0.0)), Ok(None));
        assert_eq!(timeout("t", None), Ok(None));
        assert_eq!(timeout("t", Some(3.0)), Ok(Some(3.0)));
        assert!(timeout("t", Some(1e20)).is_err());
    }

    #[test]
    fn conversions_saturate_instead_of_panicking() {
        assert_eq!(to_std(f64::NAN), Duration::ZERO);
        assert_eq!(to_std(-5.0), Duration::ZERO);
        assert_eq!(to_std(1e300), Duration::from_secs_f64(MAX_SECONDS));
        assert_eq!(to_std(f64::INFINITY), Duration::from_secs_f64(MAX_SECONDS));
        let now = Utc::now();
        assert!(after(now, 1e300) > now);
        assert_eq!(
            after(DateTime::<Utc>::MAX_UTC, 10.0),
            DateTime::<Utc>::MAX_UTC
        );
        assert_eq!(after(now, f64::NAN), now);
    }
}
