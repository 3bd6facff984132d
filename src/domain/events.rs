//! Change notification for OFREP clients (the protocol's ADR-0008): a server-sent event
//! stream that tells a client to fetch its evaluations again when the served config's
//! version changes. Notification only: the client re-fetches through bulk evaluation.
//!
//! A stream looks at this isolate's copy of the config every [`TICK_MS`]; the copy itself
//! is re-read from KV at most every 5 s, whatever the number of streams. So a change made
//! anywhere is announced within KV's propagation to this location (seconds here, up to
//! about 60 s elsewhere) plus at most 5 s for the copy and [`TICK_MS`] for the stream.
//!
//! Ticks fall on the wall clock's multiples of [`TICK_MS`] ([`until_next_tick`]), so every
//! stream of an isolate wakes at the same moment: the runtime wakes the isolate once for
//! all of them, where streams opened at different times would each wake it at their own
//! moment (about ten times the CPU of idle streams, measured). At a tick, one stream
//! re-reads the copy if it is due and the others take it as it is meanwhile
//! (`ConfigCache::settled`): one KV read per tick, not one per stream.
//!
//! Event ids are config versions, the same in every isolate and location, so a client that
//! reconnects with the last id it saw is told at once only if a newer version is served.
//! Versions only go forward on a stream: a location whose KV still serves an older version
//! than the client's last id announces nothing until it catches up.

use crate::domain::time::Millis;

/// How often a stream looks at the isolate's config.
pub const TICK_MS: i64 = 5_000;
/// A comment after this long without an event keeps proxies from closing an idle stream.
pub const KEEP_ALIVE_MS: i64 = 25_000;
/// A stream ends after this long; the client reconnects with its last event id. Bounds what
/// one connection holds in an isolate.
pub const LIFETIME_MS: i64 = 10 * 60_000;
/// The reconnection delay the stream asks clients for, in milliseconds.
pub const RETRY_MS: i64 = 5_000;
/// Seconds of client inactivity (a hidden tab) after which clients should close the stream,
/// as bulk answers advertise it.
pub const INACTIVITY_DELAY_SEC: u32 = 120;

/// One stream's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStream {
    /// The newest version announced, or the client's last event id.
    last: Option<u64>,
    started: Millis,
    last_sent: Millis,
}

/// How long a stream sleeps from `now` to its next tick: to the next multiple of
/// [`TICK_MS`] on the wall clock, the same instant for every stream (a tick less than a
/// tenth of [`TICK_MS`] away is skipped: a stream just woken never ticks twice at once).
pub fn until_next_tick(now: Millis) -> i64 {
    let wait = TICK_MS - now.0.rem_euclid(TICK_MS);
    match wait < TICK_MS / 10 {
        true => wait + TICK_MS,
        false => wait,
    }
}

/// The tick a stream woke for at `now`: the multiple of [`TICK_MS`] at or before it. Every
/// stream woken for one tick sees the same instant, whenever the runtime ran it.
pub fn tick_of(now: Millis) -> Millis {
    Millis(now.0 - now.0.rem_euclid(TICK_MS))
}

/// What a stream does at a tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this text (possibly empty: nothing to send).
    Send(String),
    /// End the stream (its lifetime is over).
    End,
}

impl EventStream {
    /// A stream opened at `now` by a client whose last event id was `last_id` (as sent;
    /// anything but a version number counts as none).
    pub fn open(last_id: Option<&str>, now: Millis) -> Self {
        EventStream {
            last: last_id.and_then(|id| id.trim().parse().ok()),
            started: now,
            last_sent: now,
        }
    }

    /// The stream's first text: the reconnection delay, and an event when the client has not
    /// seen `version` yet (a new client: so that a change between its fetch and this
    /// connection is not missed).
    pub fn first(&mut self, version: u64, now: Millis) -> String {
        let mut text = format!("retry: {RETRY_MS}\n\n");
        text.push_str(&self.announce(version, now));
        text
    }

    /// What to send at `now` when the isolate serves `version`.
    pub fn tick(&mut self, version: u64, now: Millis) -> Step {
        if now.ms_since(self.started) >= LIFETIME_MS {
            return Step::End;
        }
        let event = self.announce(version, now);
        if event.is_empty() && now.ms_since(self.last_sent) >= KEEP_ALIVE_MS {
            self.last_sent = now;
            return Step::Send(":\n\n".into());
        }
        Step::Send(event)
    }

    /// The event announcing `version`, if it is newer than what the client has seen.
    fn announce(&mut self, version: u64, now: Millis) -> String {
        if self.last.is_some_and(|last| version <= last) {
            return String::new();
        }
        self.last = Some(version);
        self.last_sent = now;
        event(version)
    }
}

/// A `refetchEvaluation` event for `version`: its id is the version, its `etag` the config's
/// entity tag (`"<version>"`), which a client sends back as `flagConfigEtag`.
pub fn event(version: u64) -> String {
    format!(
        "id: {version}\nevent: message\ndata: {{\"type\":\"refetchEvaluation\",\"etag\":\"\\\"{version}\\\"\"}}\n\n"
    )
}

/// The version a client names as the config it has seen (`"12"`, `12` or `W/"12"`); `None`
/// for anything else.
pub fn seen_version(tag: &str) -> Option<u64> {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    match tag.bytes().all(|b| b.is_ascii_digit()) && !tag.is_empty() && tag.len() <= 19 {
        true => tag.parse().ok(),
        false => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Millis {
        Millis(ms)
    }

    #[test]
    fn a_new_client_is_told_the_current_version_at_once_then_only_changes() {
        let mut s = EventStream::open(None, at(0));
        let first = s.first(7, at(0));
        assert!(first.starts_with("retry: 5000\n\n"));
        assert!(first.ends_with(&event(7)));
        assert_eq!(s.tick(7, at(TICK_MS)), Step::Send(String::new()));
        assert_eq!(s.tick(8, at(2 * TICK_MS)), Step::Send(event(8)));
        assert_eq!(s.tick(8, at(3 * TICK_MS)), Step::Send(String::new()));
    }

    #[test]
    fn a_reconnecting_client_hears_only_of_versions_newer_than_its_last_id() {
        let mut s = EventStream::open(Some("7"), at(0));
        assert_eq!(s.first(7, at(0)), "retry: 5000\n\n");
        let mut missed = EventStream::open(Some("5"), at(0));
        assert!(missed.first(7, at(0)).ends_with(&event(7)));
        let mut garbage = EventStream::open(Some("x7"), at(0));
        assert!(
            garbage.first(7, at(0)).ends_with(&event(7)),
            "an unknown id is none"
        );
    }

    #[test]
    fn an_older_version_is_never_announced() {
        let mut s = EventStream::open(Some("9"), at(0));
        assert_eq!(s.first(8, at(0)), "retry: 5000\n\n");
        assert_eq!(s.tick(8, at(TICK_MS)), Step::Send(String::new()));
        assert_eq!(s.tick(10, at(2 * TICK_MS)), Step::Send(event(10)));
        assert_eq!(s.tick(9, at(3 * TICK_MS)), Step::Send(String::new()));
    }

    #[test]
    fn an_idle_stream_sends_a_comment_every_25_s_and_ends_after_its_lifetime() {
        let mut s = EventStream::open(Some("1"), at(0));
        s.first(1, at(0));
        assert_eq!(s.tick(1, at(20_000)), Step::Send(String::new()));
        assert_eq!(s.tick(1, at(25_000)), Step::Send(":\n\n".into()));
        assert_eq!(s.tick(1, at(45_000)), Step::Send(String::new()));
        assert_eq!(s.tick(1, at(50_000)), Step::Send(":\n\n".into()));
        assert_eq!(s.tick(2, at(LIFETIME_MS - 1)), Step::Send(event(2)));
        assert_eq!(s.tick(3, at(LIFETIME_MS)), Step::End);
    }

    #[test]
    fn every_stream_ticks_on_the_same_multiples_of_the_tick() {
        let t = 1_700_000_000_000; // a multiple of TICK_MS
        assert_eq!(t % TICK_MS, 0);
        assert_eq!(until_next_tick(at(t)), TICK_MS);
        assert_eq!(until_next_tick(at(t + 1)), TICK_MS - 1);
        assert_eq!(until_next_tick(at(t + 3_000)), 2_000);
        // Just before a tick (a stream opened then, or woken a little early): the one after.
        assert_eq!(until_next_tick(at(t + 4_600)), 400 + TICK_MS);
        assert_eq!(until_next_tick(at(t - 1)), 1 + TICK_MS);
        for opened in [t + 7, t + 1_234, t + 4_999] {
            let woke = opened + until_next_tick(at(opened));
            assert_eq!(woke % TICK_MS, 0, "{opened}");
            assert_eq!(tick_of(at(woke + 3)), at(woke), "woken a little late");
        }
        assert_eq!(tick_of(at(t + 4_999)), at(t));
    }

    #[test]
    fn events_are_one_message_with_a_json_payload() {
        let e = event(12);
        assert_eq!(
            e,
            "id: 12\nevent: message\ndata: {\"type\":\"refetchEvaluation\",\"etag\":\"\\\"12\\\"\"}\n\n"
        );
        let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["etag"], "\"12\"");
        assert_eq!(seen_version(v["etag"].as_str().unwrap()), Some(12));
    }

    #[test]
    fn seen_versions_are_quoted_or_bare_numbers() {
        assert_eq!(seen_version("\"12\""), Some(12));
        assert_eq!(seen_version("12"), Some(12));
        assert_eq!(seen_version("W/\"3\""), Some(3));
        for bad in [
            "",
            "\"\"",
            "\"1a\"",
            "-1",
            "\"12",
            "99999999999999999999",
            "1 2",
        ] {
            assert_eq!(seen_version(bad), None, "{bad}");
        }
    }
}
