//! Stale flags: when each flag was last evaluated, so that flags nobody asks for any more can
//! be found and removed.
//!
//! Evaluation touches no storage: an isolate notes in memory the flags it evaluated one by
//! one (OFREP single evaluation, `GET /flags/:name`) and when it last answered a bulk
//! evaluation (which evaluates every flag). After a response, at most once per
//! [`FLUSH_EVERY_MS`], it writes what it noted to D1 in one batch (`flag_usage`: a row per
//! flag, and row [`ALL`] for bulk evaluations), each time the later of the stored one and
//! the new one. So D1 sees at most one write a minute per isolate that evaluates flags,
//! whatever the traffic; a time is accurate to that minute.

use crate::domain::error::StoreResult;
use crate::domain::time::Millis;
use std::cell::{Cell, RefCell};

/// An isolate writes what it noted at most this often.
pub const FLUSH_EVERY_MS: i64 = 60_000;
/// The row of bulk evaluations: every flag of the config was evaluated then.
pub const ALL: &str = "*";
/// At most this many names are held between two writes (a config holds fewer flags).
const MAX_NAMES: usize = 10_000;

/// What this isolate evaluated since its last write. Isolate state.
#[derive(Debug, Default)]
pub struct UsageLog {
    /// Flags evaluated one by one, sorted.
    names: RefCell<Vec<String>>,
    /// When a bulk evaluation last ran (0: none since the last write).
    bulk_at: Cell<Millis>,
    /// When this isolate last wrote.
    written_at: Cell<Millis>,
}

/// What to write: the names evaluated one by one, and the time of the last bulk evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noted {
    /// Flags evaluated one by one (at the write's time, to the minute).
    pub names: Vec<String>,
    /// The last bulk evaluation, if any.
    pub bulk_at: Option<Millis>,
}

impl UsageLog {
    /// Flag `name` (one of the config's) was evaluated.
    pub fn evaluated(&self, name: &str) {
        let mut names = self.names.borrow_mut();
        if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(name)) {
            if names.len() < MAX_NAMES {
                names.insert(at, name.to_string());
            }
        }
    }

    /// Every flag was evaluated at `now` (a bulk evaluation).
    pub fn evaluated_all(&self, now: Millis) {
        self.bulk_at.set(now);
    }

    /// What to write now, if a write is due and anything was noted; taken (the log starts
    /// over).
    pub fn take_due(&self, now: Millis) -> Option<Noted> {
        let bulk_at = self.bulk_at.get();
        let noted = bulk_at.0 > 0 || !self.names.borrow().is_empty();
        if !noted || now.ms_since(self.written_at.get()) < FLUSH_EVERY_MS {
            return None;
        }
        self.written_at.set(now);
        self.bulk_at.set(Millis(0));
        Some(Noted {
            names: self.names.take(),
            bulk_at: (bulk_at.0 > 0).then_some(bulk_at),
        })
    }
}

/// The D1 side: `flag_usage`.
#[allow(async_fn_in_trait)]
pub trait UsageDb {
    /// Records `names` as evaluated at `at` and bulk evaluation at `bulk_at`, keeping later
    /// times already stored (one batch).
    async fn record(
        &self,
        names: &[String],
        at: Millis,
        bulk_at: Option<Millis>,
    ) -> StoreResult<()>;
    /// Every row: a flag's name (or [`ALL`]) and when it was last evaluated.
    async fn usage(&self) -> StoreResult<Vec<(String, Millis)>>;
}

/// Writes what was noted (after a response, at `now`): a failure is logged and the noted
/// evaluations are dropped, which makes a flag look older, never newer.
pub async fn write<D: UsageDb>(db: &D, noted: &Noted, now: Millis) {
    if let Err(e) = db.record(&noted.names, now, noted.bulk_at).await {
        crate::log::warn_cause("recording flag evaluations failed", &e.0);
    }
}

/// `GET /admin/flags/usage`: when each flag was last evaluated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// Flags evaluated one by one, by name.
    pub evaluated_at: serde_json::Map<String, serde_json::Value>,
    /// The last bulk evaluation (every flag), if any.
    pub bulk_evaluated_at: Option<Millis>,
    /// How late a time may be: an isolate writes at most this often.
    pub written_every_seconds: i64,
}

/// What D1 holds, as the report.
pub async fn report<D: UsageDb>(db: &D) -> StoreResult<UsageReport> {
    let mut evaluated_at = serde_json::Map::new();
    let mut bulk_evaluated_at = None;
    for (name, at) in db.usage().await? {
        match name == ALL {
            true => bulk_evaluated_at = Some(at),
            false => {
                evaluated_at.insert(name, at.0.into());
            }
        }
    }
    Ok(UsageReport {
        evaluated_at,
        bulk_evaluated_at,
        written_every_seconds: FLUSH_EVERY_MS / 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_noted_once_each_and_written_at_most_once_a_minute() {
        let log = UsageLog::default();
        let t = Millis(1_000_000_000);
        assert_eq!(log.take_due(t), None, "nothing noted");
        log.evaluated("b");
        log.evaluated("a");
        log.evaluated("b");
        let first = log.take_due(t).unwrap();
        assert_eq!(first.names, ["a", "b"]);
        assert_eq!(first.bulk_at, None);
        log.evaluated("c");
        log.evaluated_all(t.plus_ms(10));
        assert_eq!(
            log.take_due(t.plus_ms(FLUSH_EVERY_MS - 1)),
            None,
            "within the minute"
        );
        let second = log.take_due(t.plus_ms(FLUSH_EVERY_MS)).unwrap();
        assert_eq!(second.names, ["c"]);
        assert_eq!(second.bulk_at, Some(t.plus_ms(10)));
        assert_eq!(log.take_due(t.plus_ms(3 * FLUSH_EVERY_MS)), None, "taken");
    }

    #[test]
    fn the_names_held_between_writes_are_capped() {
        let log = UsageLog::default();
        for i in 0..MAX_NAMES + 5 {
            log.evaluated(&format!("f{i}"));
        }
        let noted = log.take_due(Millis(FLUSH_EVERY_MS)).unwrap();
        assert_eq!(noted.names.len(), MAX_NAMES);
    }
}
