//! Time in one type. An instant is [`Millis`]: milliseconds since the Unix epoch, the unit the
//! API shows (`createdAt`, `expiresAt`, `updatedAt`) and the one `Date.now()` returns.
//! Durations carry their unit in their name (`ttl_seconds`, `wait_ms`).
//!
//! Domain code never reads a clock: it is handed `now`, so tests control time. Deferred work
//! that has to wait gets a [`Timer`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// An instant, in milliseconds since the Unix epoch.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Millis(pub i64);

impl Millis {
    /// The instant `ms` milliseconds later (saturating).
    #[must_use]
    pub fn plus_ms(self, ms: i64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }

    /// The instant `seconds` later (saturating).
    #[must_use]
    pub fn plus_seconds(self, seconds: u64) -> Millis {
        let ms = i64::try_from(seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.plus_ms(ms)
    }

    /// Milliseconds from `earlier` to `self`; negative if `earlier` is later.
    pub fn ms_since(self, earlier: Millis) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Whole seconds from `self` until `later`, rounded down and never negative.
    pub fn seconds_until(self, later: Millis) -> u64 {
        u64::try_from(later.ms_since(self).max(0) / 1000).unwrap_or(0)
    }

    /// Whole seconds from `self` until `later`, rounded up and at least 1 (a `Retry-After`).
    pub fn seconds_until_ceil(self, later: Millis) -> u64 {
        let ms = later.ms_since(self).max(1);
        u64::try_from(ms.saturating_add(999) / 1000).unwrap_or(1)
    }

    /// Converts a JavaScript time (`Date.now()`, a float of milliseconds).
    pub fn from_js(ms: f64) -> Millis {
        if ms.is_finite() {
            Millis(ms as i64)
        } else {
            Millis(0)
        }
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The current time, for work that has to know when something it awaited finished (a
/// request's `now` is when the request started).
pub trait Clock: fmt::Debug {
    /// The current time.
    fn now(&self) -> Millis;
}

/// What deferred work needs from the platform: the current time and a way to wait.
#[allow(async_fn_in_trait)]
pub trait Timer: Clock {
    /// Waits `ms` milliseconds.
    async fn sleep(&self, ms: i64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_rounds_as_named() {
        let t = Millis(1_000);
        assert_eq!(t.plus_ms(500), Millis(1_500));
        assert_eq!(t.plus_seconds(2), Millis(3_000));
        assert_eq!(Millis(i64::MAX).plus_ms(1), Millis(i64::MAX));
        assert_eq!(t.plus_seconds(u64::MAX), Millis(i64::MAX));
        assert_eq!(Millis(3_000).ms_since(t), 2_000);
        assert_eq!(t.ms_since(Millis(3_000)), -2_000);
        assert_eq!(t.seconds_until(Millis(2_999)), 1);
        assert_eq!(t.seconds_until(Millis(0)), 0);
        assert_eq!(t.seconds_until_ceil(Millis(1_001)), 1);
        assert_eq!(t.seconds_until_ceil(Millis(2_001)), 2);
        assert_eq!(t.seconds_until_ceil(Millis(0)), 1);
    }

    #[test]
    fn js_times_convert_and_serialise_as_plain_numbers() {
        assert_eq!(
            Millis::from_js(1_700_000_000_123.9),
            Millis(1_700_000_000_123)
        );
        assert_eq!(Millis::from_js(f64::NAN), Millis(0));
        assert_eq!(serde_json::to_string(&Millis(5)).unwrap(), "5");
        assert_eq!(serde_json::from_str::<Millis>("7").unwrap(), Millis(7));
    }
}
