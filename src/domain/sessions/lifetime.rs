//! How long sessions live: absolute and idle deadlines, and when use renews them.

use super::SessionView;
use crate::domain::config::AppConfig;
use crate::domain::time::Millis;

/// How long sessions live: the config's `sessionIdleSeconds`, `sessionAbsoluteSeconds` and
/// `renewAfterSeconds` (validated there: timeouts of at least 60 s, renewal more often than
/// the idle timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// Unused this long: refused.
    pub idle_seconds: u64,
    /// This long after minting: refused.
    pub absolute_seconds: u64,
    /// Renewed at most this often.
    pub renew_after_seconds: u64,
}

impl Default for Lifetime {
    fn default() -> Self {
        Lifetime::of(&AppConfig::default())
    }
}

impl Lifetime {
    /// The lifetime the config sets.
    pub fn of(cfg: &AppConfig) -> Self {
        Lifetime {
            idle_seconds: cfg.session_idle_seconds.into(),
            absolute_seconds: cfg.session_absolute_seconds.into(),
            renew_after_seconds: cfg.renew_after_seconds.into(),
        }
    }

    /// The idle deadline of a session used at `now`: never past its absolute deadline.
    pub fn idle_deadline(&self, now: Millis, expires_at: Millis) -> Millis {
        now.plus_seconds(self.idle_seconds).min(expires_at)
    }

    /// The latest idle deadline that is due for renewal at `now`: one set at least
    /// `renewAfterSeconds` ago.
    pub fn renewal_due_until(&self, now: Millis) -> Millis {
        now.plus_seconds(self.idle_seconds.saturating_sub(self.renew_after_seconds))
    }

    /// Whether a session in use at `now` should have its idle deadline moved.
    pub fn renewal_due(&self, view: &SessionView, now: Millis) -> bool {
        view.idle_expires_at < view.expires_at
            && view.idle_expires_at <= self.renewal_due_until(now)
    }
}
