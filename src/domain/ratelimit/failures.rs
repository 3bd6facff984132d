//! Failed authentications per client, counted in the isolate alone (no storage): a client
//! that presents credentials that do not check out more than [`MAX_FAILURES`] times in a
//! [`FAILURE_WINDOW_SECONDS`] window is refused (rate limited) before its credentials are looked up
//! again in D1, so a flood of guessed session ids or admin tokens costs no D1 work past
//! that (a session lookup is counted before it runs and forgiven if it succeeds, so a
//! concurrent flood is counted as it arrives). Per isolate: a client spread over many isolates gets that many allowances, which
//! bounds the work per isolate, not the guesses in all (each guess is a 256-bit id or a
//! 32-byte token). The right credentials from another address are never refused.

use super::Window;
use crate::domain::keymap::KeyMap;
use crate::domain::time::Millis;
use std::cell::RefCell;

/// Failed authentications a client may have in one window, per isolate.
pub const MAX_FAILURES: u32 = 30;
/// The window the failures are counted in.
pub const FAILURE_WINDOW_SECONDS: u32 = 60;
/// Clients remembered at most; past that, ended windows are dropped, then all.
const MAX_CLIENTS: usize = 10_000;

/// Failures by client in the current window. Isolate state (see `isolate.rs`).
///
/// Each client's entry is its window's start plus its failures in it, as one [`Millis`]
/// (window starts are whole minutes, and a client is refused long before 60,000 failures):
/// the same map type as the isolate's other maps, so its code is in the Wasm once.
#[derive(Debug, Default)]
pub struct Failures {
    by_client: RefCell<KeyMap<Millis>>,
}

/// The window start and the failures in it, from an entry.
fn unpack(entry: Millis) -> (Millis, u32) {
    let len = i64::from(FAILURE_WINDOW_SECONDS) * 1000;
    let start = entry.0.div_euclid(len) * len;
    (
        Millis(start),
        u32::try_from(entry.0 - start).unwrap_or(u32::MAX),
    )
}

impl Failures {
    /// Seconds until `client` may try again, if it has used up its failures.
    pub fn blocked(&self, client: &str, now: Millis) -> Option<u64> {
        let window = Window::containing(now, FAILURE_WINDOW_SECONDS);
        let (start, failures) = unpack(*self.by_client.borrow().get(client)?);
        (start == window.start && failures >= MAX_FAILURES).then(|| window.reset_seconds(now))
    }

    /// Counts one failed authentication of `client`.
    pub fn note(&self, client: &str, now: Millis) {
        let window = Window::containing(now, FAILURE_WINDOW_SECONDS);
        let mut by_client = self.by_client.borrow_mut();
        if by_client.len() >= MAX_CLIENTS {
            by_client.retain(|entry| unpack(*entry).0 == window.start);
            if by_client.len() >= MAX_CLIENTS {
                by_client.clear();
            }
        }
        let failures = match by_client.get(client).map(|e| unpack(*e)) {
            Some((start, n)) if start == window.start => n.saturating_add(1).min(MAX_FAILURES),
            _ => 1,
        };
        by_client.insert(client, window.start.plus_ms(i64::from(failures)));
    }

    /// Takes back one failure of `client` counted by [`Failures::note`] in this window: a
    /// lookup counted before it ran (so that concurrent guesses count at once) and then
    /// succeeded.
    pub fn forgive(&self, client: &str, now: Millis) {
        let window = Window::containing(now, FAILURE_WINDOW_SECONDS);
        let mut by_client = self.by_client.borrow_mut();
        if let Some(entry) = by_client.get_mut(client) {
            let (start, n) = unpack(*entry);
            if start == window.start && n > 0 {
                *entry = start.plus_ms(i64::from(n - 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_counted_ahead_and_then_forgiven_leaves_no_failure() {
        let f = Failures::default();
        for _ in 0..MAX_FAILURES {
            f.note("c", Millis(1_000));
        }
        assert!(
            f.blocked("c", Millis(1_000)).is_some(),
            "concurrent lookups count at once"
        );
        for _ in 0..MAX_FAILURES {
            f.forgive("c", Millis(2_000));
        }
        assert_eq!(f.blocked("c", Millis(2_000)), None);
        f.forgive("c", Millis(2_000));
        f.note("c", Millis(2_000));
        assert_eq!(
            unpack(*f.by_client.borrow().get("c").unwrap()).1,
            1,
            "never below none"
        );
    }

    #[test]
    fn a_client_is_blocked_after_its_failures_until_the_window_ends() {
        let f = Failures::default();
        for i in 0..MAX_FAILURES {
            assert_eq!(f.blocked("c", Millis(1_000)), None, "{i}");
            f.note("c", Millis(1_000));
        }
        assert_eq!(f.blocked("c", Millis(1_500)), Some(59));
        assert_eq!(f.blocked("other", Millis(1_500)), None);
        assert_eq!(f.blocked("c", Millis(60_000)), None, "a new window");
        f.note("c", Millis(60_000));
        assert_eq!(f.blocked("c", Millis(60_001)), None);
    }
}
