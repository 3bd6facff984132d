//! User preferences without lost updates. D1 is the authority: a PATCH is one atomic
//! per-field upsert, so concurrent PATCHes of different fields all survive. KV
//! (`prefs:<userId>`) is the fast read path, refreshed after each write but never more than
//! once a second per key from an isolate (KV's limit): a burst is carried by D1, and the
//! isolate serves its own newest acknowledged write ([`PendingPrefs`]) until the KV copy
//! catches up.
//!
//! Read-your-writes anywhere: every answer carries the D1 version it comes from. A reader
//! that sends back the version its last write returned ([`MinVersion`]) is served that
//! version or a newer one, in any isolate and location: a copy older than that is passed
//! over for D1 (and the KV copy refreshed).

use crate::domain::error::{DomainError, DomainResult, StoreResult};
use crate::domain::ids::UserId;
use crate::domain::json;
use crate::domain::keymap::KeyMap;
use crate::domain::kv::{Kv, KvKey, PutOptions, Ttl, WriteGate, KV_WRITE_INTERVAL_MS};
use crate::domain::time::{Clock, Millis, Timer};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

const KV_PREFIX: &str = "prefs:";
/// KV copies expire after 30 days without a write; D1 refills them on the next read.
const KV_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// How many times a deferred KV refresh tries again before leaving it to the next request.
const MAX_FLUSH_ROUNDS: usize = 10;

/// A user's preferences, defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefs {
    /// `light` or `dark`.
    pub theme: String,
    /// A BCP 47 language tag.
    pub language: String,
    /// Whether to notify.
    pub notifications: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            theme: "light".into(),
            language: "en".into(),
            notifications: true,
        }
    }
}

/// A validated partial update; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefsPatch {
    /// New theme.
    pub theme: Option<String>,
    /// New language tag.
    pub language: Option<String>,
    /// New notification switch.
    pub notifications: Option<bool>,
}

impl PrefsPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == PrefsPatch::default()
    }
}

/// The most characters a stored language tag may have: RFC 5646 §4.4.1 asks every
/// implementation to handle at least 35, the longest tag without extensions or private use.
pub const MAX_LANGUAGE_TAG_CHARS: usize = 35;

/// RFC 5646's irregular grandfathered tags: the only tags outside its `langtag` and
/// `privateuse` productions (the regular ones, such as `zh-min-nan`, match `langtag`).
const IRREGULAR: [&str; 17] = [
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
];

/// A well-formed BCP 47 tag of at most [`MAX_LANGUAGE_TAG_CHARS`] characters, compared
/// without regard to case as RFC 5646 says: a `langtag` (language with up to three extended
/// language subtags, script, region, variants, extensions, private use), a private-use tag
/// (`x-…`) or a grandfathered tag (`i-klingon`, `en-GB-oed`, …). Well-formed, not "valid":
/// subtags are not looked up in the IANA registry.
pub fn is_language_tag(tag: &str) -> bool {
    if tag.is_empty() || tag.len() > MAX_LANGUAGE_TAG_CHARS {
        return false;
    }
    if IRREGULAR.iter().any(|g| g.eq_ignore_ascii_case(tag)) {
        return true;
    }
    // A loop, not `collect`: each collecting adapter is code of its own in the Wasm.
    let mut subtags = Vec::new();
    for subtag in tag.split('-') {
        subtags.push(subtag);
    }
    if !subtags
        .iter()
        .all(|s| (1..=8).contains(&s.len()) && alnum(s))
    {
        return false;
    }
    match subtags.split_first() {
        Some((first, rest)) if first.eq_ignore_ascii_case("x") => !rest.is_empty(),
        Some(_) => is_langtag(&subtags),
        None => false,
    }
}

fn alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn alnum(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `langtag` of RFC 5646 §2.1 over subtags already known to be 1-8 alphanumerics. Each
/// subtag's form decides what it can be at its position, so one pass without backtracking
/// reads the grammar.
fn is_langtag(subtags: &[&str]) -> bool {
    let mut rest = subtags;
    // Tests as plain `fn`s (the closures below capture nothing): no closure vtables.
    let mut take = |ok: fn(&str) -> bool| match rest.split_first() {
        Some((s, tail)) if ok(s) => {
            rest = tail;
            true
        }
        _ => false,
    };
    let short_language = |s: &str| alpha(s) && (2..=3).contains(&s.len());
    if take(short_language) {
        // Up to three extended language subtags (`zh-yue`, `zh-min-nan`).
        for _ in 0..3 {
            if !take(|s| alpha(s) && s.len() == 3) {
                break;
            }
        }
    } else if !take(|s| alpha(s) && (4..=8).contains(&s.len())) {
        return false;
    }
    take(|s| alpha(s) && s.len() == 4); // script
    take(|s| (alpha(s) && s.len() == 2) || (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))); // region
    while take(is_variant) {}
    is_extensions_and_private_use(rest)
}

fn is_variant(s: &str) -> bool {
    s.len() >= 5 || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit())
}

/// `*("-" extension) ["-" privateuse]`: each singleton but `x` opens an extension of one or
/// more 2-8 character subtags; `x` opens private use (1-8 characters each) to the end.
fn is_extensions_and_private_use(mut rest: &[&str]) -> bool {
    while let Some((singleton, tail)) = rest.split_first() {
        if singleton.len() != 1 {
            return false;
        }
        if singleton.eq_ignore_ascii_case("x") {
            return !tail.is_empty();
        }
        let n = tail.iter().take_while(|s| s.len() >= 2).count();
        if n == 0 {
            return false;
        }
        rest = &tail[n..];
    }
    true
}

/// The oldest version a reader accepts: the version its last write returned. Decimal
/// digits, at most 15 (D1 versions count writes, far below that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinVersion(i64);

impl MinVersion {
    /// Parses a version this API returned; `field` names it in the error.
    pub fn parse(field: &str, s: &str) -> DomainResult<Self> {
        json::decimal(s)
            .filter(|_| s.len() <= 15)
            .and_then(|n| i64::try_from(n).ok())
            .map(MinVersion)
            .ok_or_else(|| DomainError::invalid(field, "must be a version this API returned"))
    }

    /// Whether a copy of `version` is new enough.
    fn admits(self, version: i64) -> bool {
        version >= self.0
    }
}

/// A D1 row: `None` columns take the defaults, so changing a default reaches every user who
/// never set that field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefsRow {
    /// Stored theme, if set.
    pub theme: Option<String>,
    /// Stored language, if set.
    pub language: Option<String>,
    /// Stored notification switch, if set.
    pub notifications: Option<bool>,
    /// Increases with every write; orders KV copies.
    pub version: i64,
}

impl PrefsRow {
    /// The preferences it stands for, defaults filled in.
    pub fn prefs(&self) -> Prefs {
        let d = Prefs::default();
        Prefs {
            theme: self.theme.clone().unwrap_or(d.theme),
            language: self.language.clone().unwrap_or(d.language),
            notifications: self.notifications.unwrap_or(d.notifications),
        }
    }
}

/// The D1 side of preferences.
#[allow(async_fn_in_trait)]
pub trait PrefsDb {
    /// The user's row, if any.
    async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>>;
    /// Applies the patch in one atomic statement and returns the merged row with a version
    /// one higher than before.
    async fn merge(&self, user: &UserId, patch: &PrefsPatch, now: Millis) -> StoreResult<PrefsRow>;
}

/// What KV holds under `prefs:<userId>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefsCopy {
    /// The preferences.
    pub prefs: Prefs,
    /// The D1 version they come from.
    pub version: i64,
    /// When this copy was read from D1. Copies older than [`REVALIDATE_MS`] are served and
    /// re-read from D1 in the background.
    #[serde(default)]
    pub synced_at: Millis,
}

impl PrefsCopy {
    /// Reads a KV copy from its JSON form, as [`crate::domain::json`] explains.
    pub fn from_json(v: &serde_json::Value) -> Option<PrefsCopy> {
        let p = v.get("prefs")?;
        let synced_at = match v.get("syncedAt") {
            None => Millis::default(),
            Some(at) => Millis(at.as_i64()?),
        };
        Some(PrefsCopy {
            prefs: Prefs {
                theme: json::text_of(p, "theme")?,
                language: json::text_of(p, "language")?,
                notifications: p.get("notifications")?.as_bool()?,
            },
            version: v.get("version")?.as_i64()?,
            synced_at,
        })
    }

    fn from_row(row: &PrefsRow, now: Millis) -> Self {
        PrefsCopy {
            prefs: row.prefs(),
            version: row.version,
            synced_at: now,
        }
    }
}

/// KV writes from different isolates can land out of order (KV is last-writer-wins), so a
/// copy read more than a minute after it was synced is refreshed from D1 in the background:
/// a stale copy heals within a minute of being read.
pub const REVALIDATE_MS: i64 = 60_000;

/// Acknowledged writes whose KV copy is not written yet, newest version per user. Isolate
/// state (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct PendingPrefs {
    by_user: RefCell<KeyMap<PrefsCopy>>,
}

impl PendingPrefs {
    fn get(&self, user: &UserId) -> Option<PrefsCopy> {
        self.by_user.borrow().get(user.as_str()).cloned()
    }

    /// Keeps `copy` unless a newer version is already pending.
    fn note(&self, user: &UserId, copy: PrefsCopy) {
        let mut by_user = self.by_user.borrow_mut();
        if by_user
            .get(user.as_str())
            .is_none_or(|old| old.version < copy.version)
        {
            by_user.insert(user.as_str(), copy);
        }
    }

    /// Forgets whatever is pending for `user` (the account was deleted).
    pub fn forget(&self, user: &UserId) {
        self.by_user.borrow_mut().remove(user.as_str());
    }

    /// Forgets the pending write once KV holds `written_version` or newer.
    fn clear(&self, user: &UserId, written_version: i64) {
        let mut by_user = self.by_user.borrow_mut();
        if by_user
            .get(user.as_str())
            .is_some_and(|c| c.version <= written_version)
        {
            by_user.remove(user.as_str());
        }
    }
}

/// The isolate state preferences use.
#[derive(Debug, Clone, Copy)]
pub struct PrefsState<'a> {
    /// This isolate's acknowledged writes not yet in KV.
    pub pending: &'a PendingPrefs,
    /// This isolate's KV write times.
    pub gate: &'a WriteGate,
    /// When a KV write finished (the gate's second runs from then).
    pub clock: &'a dyn Clock,
}

/// The KV key of a user's copy.
pub fn kv_key(user: &UserId) -> DomainResult<KvKey> {
    KvKey::new(KV_PREFIX, user.as_str())
}

async fn write_kv<K: Kv>(
    kv: &K,
    st: PrefsState<'_>,
    user: &UserId,
    copy: &PrefsCopy,
) -> DomainResult<()> {
    let text = serde_json::to_string(copy).map_err(|e| DomainError::Internal(e.to_string()))?;
    let key = kv_key(user)?;
    let put = kv
        .put(
            &key,
            &text,
            PutOptions::ttl(Ttl::at_least_minimum(KV_TTL_SECONDS)),
        )
        .await;
    st.gate.finished(&key, st.clock.now());
    put?;
    st.pending.clear(user, copy.version);
    Ok(())
}

/// What a read or write answers, and whether the KV copy still needs a refresh.
#[derive(Debug, Clone, PartialEq)]
pub struct PrefsAnswer {
    /// The caller's preferences.
    pub prefs: Prefs,
    /// The D1 version they come from (0: never written).
    pub version: i64,
    /// Refresh the KV copy after this many milliseconds ([`sync_later`]); `None` if KV is
    /// up to date.
    pub sync_after_ms: Option<i64>,
    /// The version of a KV copy due for revalidation ([`revalidate`]), if it is one.
    pub revalidate: Option<i64>,
}

/// Writes the KV copy if this isolate may write the key now; otherwise leaves it pending
/// and says when to try.
async fn sync_now<K: Kv>(
    kv: &K,
    st: PrefsState<'_>,
    user: &UserId,
    copy: PrefsCopy,
    now: Millis,
) -> DomainResult<PrefsAnswer> {
    let (prefs, version) = (copy.prefs.clone(), copy.version);
    st.pending.note(user, copy);
    let key = kv_key(user)?;
    if !st.gate.try_claim(&key, now) {
        let wait = st.gate.wait_ms(&key, now);
        return Ok(PrefsAnswer {
            prefs,
            version,
            sync_after_ms: Some(wait),
            revalidate: None,
        });
    }
    let mut sync_after_ms = None;
    if let Some(latest) = st.pending.get(user) {
        if let Err(e) = write_kv(kv, st, user, &latest).await {
            crate::log::warn(&format!("prefs KV refresh deferred: {e}"));
            sync_after_ms = Some(KV_WRITE_INTERVAL_MS);
        }
    }
    Ok(PrefsAnswer {
        prefs,
        version,
        sync_after_ms,
        revalidate: None,
    })
}

/// `GET /prefs`: this isolate's newest pending write, else KV, else D1 (written back); a
/// copy older than `min` (the reader's last write) is passed over for D1. D1 is read through
/// `reader` (a replica, or one that has applied the reader's bookmark), and through `db`
/// (the primary) only when what `reader` has is older than `min`.
pub async fn get<K: Kv, D: PrefsDb>(
    kv: &K,
    reader: &D,
    db: &D,
    st: PrefsState<'_>,
    user: &UserId,
    now: Millis,
    min: Option<MinVersion>,
) -> DomainResult<PrefsAnswer> {
    let new_enough = |version| min.is_none_or(|m| m.admits(version));
    if let Some(copy) = st.pending.get(user).filter(|c| new_enough(c.version)) {
        return Ok(PrefsAnswer {
            prefs: copy.prefs,
            version: copy.version,
            sync_after_ms: None,
            revalidate: None,
        });
    }
    match kv.get(&kv_key(user)?).await {
        Ok(Some(text)) => match json::read(&text)
            .ok()
            .and_then(|v| PrefsCopy::from_json(&v))
        {
            Some(copy) if new_enough(copy.version) => {
                let due = now.ms_since(copy.synced_at) >= REVALIDATE_MS;
                return Ok(PrefsAnswer {
                    prefs: copy.prefs,
                    version: copy.version,
                    sync_after_ms: None,
                    revalidate: due.then_some(copy.version),
                });
            }
            _ => {}
        },
        Ok(None) => {}
        Err(e) => crate::log::warn_cause("prefs KV read failed, asking D1", &e.0),
    }
    let mut row = reader.get(user).await?.unwrap_or_default();
    if !new_enough(row.version) {
        row = db.get(user).await?.unwrap_or_default();
    }
    sync_now(kv, st, user, PrefsCopy::from_row(&row, now), now).await
}

/// `PATCH /prefs`: atomic merge in D1, then the KV refresh (now or deferred). An empty patch
/// writes nothing. Validation happens before, so a rejected PATCH changes nothing.
pub async fn patch<K: Kv, D: PrefsDb>(
    kv: &K,
    db: &D,
    st: PrefsState<'_>,
    user: &UserId,
    patch: &PrefsPatch,
    now: Millis,
) -> DomainResult<PrefsAnswer> {
    if patch.is_empty() {
        return get(kv, db, db, st, user, now, None).await;
    }
    let row = db.merge(user, patch, now).await?;
    sync_now(kv, st, user, PrefsCopy::from_row(&row, now), now).await
}

/// What one deferred refresh achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// KV holds the newest state this isolate knows.
    Done,
    /// Try again in a second: the key's write window is closed, KV refused the write, or a
    /// newer write is pending.
    Again,
    /// D1 failed; the next read or write schedules a new refresh.
    Failed,
}

/// One deferred refresh: re-reads D1 (the newest state, whoever wrote it) and writes KV.
pub async fn flush<K: Kv, D: PrefsDb>(
    kv: &K,
    db: &D,
    st: PrefsState<'_>,
    user: &UserId,
    now: Millis,
) -> Flush {
    flush_from(kv, db, st, user, now, 0).await
}

/// The refresh of a KV copy (at `version`) synced more than [`REVALIDATE_MS`] ago, read
/// through `reader`, a replica: revalidation needs a state at least as new as the copy, not
/// the newest, so it stays off the primary. A replica behind the copy leaves it as it is
/// (the next read past the interval tries again).
pub async fn revalidate<K: Kv, D: PrefsDb>(
    kv: &K,
    reader: &D,
    st: PrefsState<'_>,
    user: &UserId,
    version: i64,
    now: Millis,
) -> Flush {
    flush_from(kv, reader, st, user, now, version).await
}

/// `flush`, with what D1 answers written only if it is at version `floor` or newer.
async fn flush_from<K: Kv, D: PrefsDb>(
    kv: &K,
    db: &D,
    st: PrefsState<'_>,
    user: &UserId,
    now: Millis,
    floor: i64,
) -> Flush {
    let Ok(key) = kv_key(user) else {
        return Flush::Failed;
    };
    if !st.gate.try_claim(&key, now) {
        return Flush::Again;
    }
    let row = match db.get(user).await {
        Ok(row) if row.as_ref().map_or(0, |r| r.version) < floor => return Flush::Done,
        Ok(Some(row)) => row,
        // No row: never written, or the account was deleted since; nothing this isolate
        // still holds for the user may be copied to KV.
        Ok(None) => {
            st.pending.forget(user);
            PrefsRow::default()
        }
        Err(e) => {
            crate::log::warn_cause("prefs refresh could not read D1", &e.0);
            return Flush::Failed;
        }
    };
    st.pending.note(user, PrefsCopy::from_row(&row, now));
    if let Some(latest) = st.pending.get(user) {
        // KV refuses a write to a key another isolate or location wrote in the last second:
        // try again in a second.
        if let Err(e) = write_kv(kv, st, user, &latest).await {
            crate::log::warn(&format!("prefs KV refresh failed, trying again: {e}"));
            return Flush::Again;
        }
    }
    if st.pending.get(user).is_none() {
        Flush::Done
    } else {
        Flush::Again
    }
}

/// The deferred half of a burst: waits `first_wait_ms`, then flushes once a second until KV
/// holds the newest state (at most `MAX_FLUSH_ROUNDS` rounds, so a KV outage ends it). Run it once per user and
/// isolate at a time (single flight).
pub async fn sync_later<K: Kv, D: PrefsDb, T: Timer>(
    kv: &K,
    db: &D,
    st: PrefsState<'_>,
    timer: &T,
    user: &UserId,
    first_wait_ms: i64,
) -> Flush {
    let mut wait = first_wait_ms;
    let mut outcome = Flush::Again;
    for _ in 0..MAX_FLUSH_ROUNDS {
        timer.sleep(wait).await;
        outcome = flush(kv, db, st, user, timer.now()).await;
        if outcome != Flush::Again {
            break;
        }
        wait = KV_WRITE_INTERVAL_MS;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, FakeTimer, MemKv, MemPrefs};
    use serde_json::json;

    #[test]
    fn copies_decode_by_hand_as_serde_does() {
        let prefs = json!({"theme": "dark", "language": "fr", "notifications": false});
        for good in [
            json!({"prefs": prefs, "version": 3, "syncedAt": 9}),
            json!({"prefs": prefs, "version": 3}),
        ] {
            let by_serde: PrefsCopy = serde_json::from_value(good.clone()).unwrap();
            assert_eq!(PrefsCopy::from_json(&good), Some(by_serde));
        }
        for bad in [
            json!({"prefs": prefs, "version": 3, "syncedAt": null}),
            json!({"prefs": prefs}),
            json!({"prefs": {"theme": "dark", "language": "fr"}, "version": 3}),
            json!({"prefs": prefs, "version": "3"}),
        ] {
            assert_eq!(PrefsCopy::from_json(&bad), None, "{bad}");
            assert!(serde_json::from_value::<PrefsCopy>(bad).is_err());
        }
    }

    /// One isolate's state.
    #[derive(Default)]
    struct Isolate {
        pending: PendingPrefs,
        gate: WriteGate,
        clock: FakeTimer,
    }

    impl Isolate {
        fn st(&self) -> PrefsState<'_> {
            PrefsState {
                pending: &self.pending,
                gate: &self.gate,
                clock: &self.clock,
            }
        }
    }

    fn user(s: &str) -> UserId {
        UserId::parse("userId", s).unwrap()
    }

    #[test]
    fn language_tags() {
        for ok in [
            "en",
            "en-US",
            "zh-Hant-TW",
            "sr-Latn-RS",
            "es-419",
            "de-CH-1901",
            "en-x-private",
            "fil",
            "yue-HK",
            "en-a-bbb-x-a",
            "nl-NL",
            "zh-yue",
            "zh-min-nan",
            "zh-cmn-Hans-CN",
            "x-private",
            "X-Whatever-1",
            "i-klingon",
            "en-GB-oed",
            "SGN-be-fr",
            "art-lojban",
            "qaaa",
            "en-US-u-ca-gregory-nu-latn",
        ] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in [
            "",
            "e",
            "english-is-long",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "12",
            "en-US-",
            "en-a",
            "en-x",
            "en-Latn-Latn",
            &"a".repeat(36),
            "en US",
            "zh-yue-cmn-nan-min",
            "x",
            "x-",
            "i-notgrandfathered",
            "en-GB-oed-x",
            "en-u",
            "en-u-x-a",
            "en-u-a-bb",
            "abcdefghi",
            "en-é",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    fn dark() -> PrefsPatch {
        PrefsPatch {
            theme: Some("dark".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_then_patch_then_get() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("u1");
        let first = block_on(get(&kv, &db, &db, iso.st(), &u, Millis(0), None)).unwrap();
        assert_eq!(first.prefs, Prefs::default());
        let after = block_on(patch(&kv, &db, iso.st(), &u, &dark(), Millis(5_000)))
            .unwrap()
            .prefs;
        assert_eq!(after.theme, "dark");
        let again = block_on(get(&kv, &db, &db, iso.st(), &u, Millis(5_001), None)).unwrap();
        assert_eq!(again.prefs, after);
        let stored: PrefsCopy = serde_json::from_str(&kv.get_raw("prefs:u1").unwrap()).unwrap();
        assert_eq!(stored.prefs, after);
    }

    #[test]
    fn a_burst_writes_kv_once_and_loses_nothing() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("burst");
        let patches = [
            dark(),
            PrefsPatch {
                language: Some("fr".into()),
                ..Default::default()
            },
            PrefsPatch {
                notifications: Some(false),
                ..Default::default()
            },
        ];
        let mut waits = Vec::new();
        for (i, p) in (0..).zip(patches.iter()) {
            let answer = block_on(patch(&kv, &db, iso.st(), &u, p, Millis(10_000 + i)));
            waits.push(answer.unwrap().sync_after_ms);
        }
        assert_eq!(kv.writes(), 1, "one KV write inside the second");
        assert_eq!(waits[0], None);
        assert!(waits[1].is_some() && waits[2].is_some());
        let seen = block_on(get(&kv, &db, &db, iso.st(), &u, Millis(10_010), None))
            .unwrap()
            .prefs;
        assert_eq!(
            seen,
            Prefs {
                theme: "dark".into(),
                language: "fr".into(),
                notifications: false
            }
        );
        assert_eq!(
            block_on(flush(&kv, &db, iso.st(), &u, Millis(11_001))),
            Flush::Done
        );
        assert_eq!(kv.writes(), 2);
        let stored: PrefsCopy = serde_json::from_str(&kv.get_raw("prefs:burst").unwrap()).unwrap();
        assert_eq!(stored.prefs, seen);
        assert_eq!(stored.version, 3);
    }

    #[test]
    fn sync_later_waits_for_the_window_then_writes_the_newest_state() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("later");
        block_on(patch(&kv, &db, iso.st(), &u, &dark(), Millis(0))).unwrap();
        let second = PrefsPatch {
            notifications: Some(false),
            ..Default::default()
        };
        let wait = block_on(patch(&kv, &db, iso.st(), &u, &second, Millis(10)))
            .unwrap()
            .sync_after_ms
            .unwrap();
        assert_eq!(wait, 990);
        let timer = FakeTimer::at(10);
        let outcome = block_on(sync_later(&kv, &db, iso.st(), &timer, &u, wait));
        assert_eq!(outcome, Flush::Done);
        assert_eq!(timer.slept_ms(), 990);
        let stored: PrefsCopy = serde_json::from_str(&kv.get_raw("prefs:later").unwrap()).unwrap();
        assert_eq!(stored.version, 2);
        assert!(!stored.prefs.notifications);
    }

    #[test]
    fn empty_patch_writes_nothing() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let empty = PrefsPatch::default();
        let p = block_on(patch(&kv, &db, iso.st(), &user("e"), &empty, Millis(0))).unwrap();
        assert_eq!(p.prefs, Prefs::default());
        assert!(db.rows.borrow().is_empty());
    }

    #[test]
    fn d1_failure_on_patch_is_unavailable_and_writes_nothing() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        db.db.failing.set(true);
        assert!(matches!(
            block_on(patch(&kv, &db, iso.st(), &user("f"), &dark(), Millis(0))),
            Err(DomainError::Unavailable(_))
        ));
        assert!(kv.entries.borrow().is_empty());
    }

    #[test]
    fn kv_miss_reads_d1_and_writes_back() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("m");
        db.rows.borrow_mut().insert(
            "m".into(),
            PrefsRow {
                theme: Some("dark".into()),
                version: 4,
                ..Default::default()
            },
        );
        let p = block_on(get(&kv, &db, &db, iso.st(), &u, Millis(50_000), None)).unwrap();
        assert_eq!(p.prefs.theme, "dark");
        assert!(kv.get_raw("prefs:m").is_some());
        db.db.failing.set(true);
        let again = block_on(get(&kv, &db, &db, iso.st(), &u, Millis(50_001), None)).unwrap();
        assert_eq!(again.prefs.theme, "dark", "served from KV");
    }

    #[test]
    fn an_old_kv_copy_is_served_then_revalidated_from_d1() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("old");
        // Another isolate's out-of-order write left version 1 in KV; D1 is at version 2.
        kv.insert("prefs:old", r#"{"prefs":{"theme":"light","language":"en","notifications":true},"version":1,"syncedAt":0}"#);
        db.rows.borrow_mut().insert(
            "old".into(),
            PrefsRow {
                theme: Some("dark".into()),
                version: 2,
                ..Default::default()
            },
        );
        let t = Millis(REVALIDATE_MS);
        let served = block_on(get(&kv, &db, &db, iso.st(), &u, t, None)).unwrap();
        assert_eq!(served.prefs.theme, "light", "served at once");
        assert_eq!(
            served.revalidate,
            Some(1),
            "and a revalidation is asked for"
        );
        assert_eq!(
            block_on(revalidate(&kv, &db, iso.st(), &u, 1, t)),
            Flush::Done
        );
        let fresh = block_on(get(&kv, &db, &db, iso.st(), &u, t.plus_ms(1), None)).unwrap();
        assert_eq!(
            (fresh.prefs.theme.as_str(), fresh.revalidate),
            ("dark", None)
        );
    }

    #[test]
    fn revalidation_reads_a_replica_and_never_puts_back_an_older_state() {
        let (kv, replica, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("old");
        let copy = r#"{"prefs":{"theme":"dark","language":"en","notifications":true},"version":3,"syncedAt":0}"#;
        kv.insert("prefs:old", copy);
        let row = |version| PrefsRow {
            theme: Some(if version < 3 { "light" } else { "dim" }.into()),
            version,
            ..Default::default()
        };
        // A replica still at version 2 (behind the copy): the copy stays as it is.
        replica.rows.borrow_mut().insert("old".into(), row(2));
        let t = Millis(REVALIDATE_MS);
        assert_eq!(
            block_on(revalidate(&kv, &replica, iso.st(), &u, 3, t)),
            Flush::Done
        );
        assert_eq!(kv.entry("prefs:old").unwrap().value, copy);
        // Caught up (version 4): written.
        replica.rows.borrow_mut().insert("old".into(), row(4));
        let later = t.plus_ms(KV_WRITE_INTERVAL_MS);
        assert_eq!(
            block_on(revalidate(&kv, &replica, iso.st(), &u, 3, later)),
            Flush::Done
        );
        let got = block_on(get(&kv, &replica, &replica, iso.st(), &u, later, None)).unwrap();
        assert_eq!((got.version, got.prefs.theme.as_str()), (4, "dim"));
    }

    #[test]
    fn min_version_parsing() {
        assert_eq!(MinVersion::parse("v", "0").unwrap(), MinVersion(0));
        assert_eq!(MinVersion::parse("v", "42").unwrap(), MinVersion(42));
        assert!(MinVersion::parse("v", &"9".repeat(15)).is_ok());
        for bad in [
            "",
            "-1",
            "+1",
            "1.0",
            " 1",
            "1 ",
            "x",
            "0x10",
            &"9".repeat(16),
        ] {
            match MinVersion::parse("Prefs-Version", bad) {
                Err(DomainError::Invalid(m)) => assert!(m.starts_with("Prefs-Version"), "{m}"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_reader_with_its_last_version_reads_its_write_in_another_location() {
        // One D1; KV at location a (the writer's) and at b, where the old copy lingers.
        let (kv_a, kv_b, db) = (MemKv::default(), MemKv::default(), MemPrefs::default());
        let (a, b) = (Isolate::default(), Isolate::default());
        let u = user("ryw");
        let old = block_on(get(&kv_b, &db, &db, b.st(), &u, Millis(0), None)).unwrap();
        assert_eq!((old.version, old.prefs.theme.as_str()), (0, "light"));
        let wrote = block_on(patch(&kv_a, &db, a.st(), &u, &dark(), Millis(1_000))).unwrap();
        assert_eq!(wrote.version, 1);
        let stale = block_on(get(&kv_b, &db, &db, b.st(), &u, Millis(1_001), None)).unwrap();
        assert_eq!(stale.prefs.theme, "light", "without the version: b's copy");
        let min = Some(MinVersion(wrote.version));
        let fresh = block_on(get(&kv_b, &db, &db, b.st(), &u, Millis(1_002), min)).unwrap();
        assert_eq!((fresh.version, fresh.prefs.theme.as_str()), (1, "dark"));
        let copy: PrefsCopy = serde_json::from_str(&kv_b.get_raw("prefs:ryw").unwrap()).unwrap();
        assert_eq!(copy.version, 1, "b's KV copy was refreshed on the way");
        let queries = db.db.queries.get();
        let again = block_on(get(&kv_b, &db, &db, b.st(), &u, Millis(3_000), min)).unwrap();
        assert_eq!(again.prefs.theme, "dark");
        assert_eq!(db.db.queries.get(), queries, "now from KV, no D1 query");
    }

    #[test]
    fn a_version_newer_than_d1_is_served_what_d1_holds() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("forged");
        block_on(patch(&kv, &db, iso.st(), &u, &dark(), Millis(0))).unwrap();
        let got = block_on(get(
            &kv,
            &db,
            &db,
            iso.st(),
            &u,
            Millis(2_000),
            Some(MinVersion(99)),
        ))
        .unwrap();
        assert_eq!((got.version, got.prefs.theme.as_str()), (1, "dark"));
    }

    #[test]
    fn a_replica_behind_the_readers_version_is_passed_over_for_the_primary() {
        let (kv, primary, replica) = (MemKv::default(), MemPrefs::default(), MemPrefs::default());
        let (a, b) = (Isolate::default(), Isolate::default());
        let u = user("u1");
        // Written through isolate a (version 1); the replica has not applied it yet.
        let written = block_on(patch(&kv, &primary, a.st(), &u, &dark(), Millis(0))).unwrap();
        kv.entries.borrow_mut().clear();
        let min = Some(MinVersion(written.version));
        let before = (replica.db.queries.get(), primary.db.queries.get());
        let got = block_on(get(&kv, &replica, &primary, b.st(), &u, Millis(10), min)).unwrap();
        assert_eq!((got.version, got.prefs.theme.as_str()), (1, "dark"));
        assert_eq!(
            (replica.db.queries.get(), primary.db.queries.get()),
            (before.0 + 1, before.1 + 1),
            "the replica first, then the primary"
        );
        // Without a version to honour, what the replica has is served.
        kv.entries.borrow_mut().clear();
        let c = Isolate::default();
        let got = block_on(get(&kv, &replica, &primary, c.st(), &u, Millis(20), None)).unwrap();
        assert_eq!(got.version, 0);
        assert_eq!(primary.db.queries.get(), before.1 + 1, "no primary query");
    }

    #[test]
    fn a_refresh_kv_refuses_is_tried_again_a_second_later() {
        let (kv, db, iso) = (MemKv::default(), MemPrefs::default(), Isolate::default());
        let u = user("retry");
        block_on(patch(&kv, &db, iso.st(), &u, &dark(), Millis(0))).unwrap();
        let second = PrefsPatch {
            language: Some("de".into()),
            ..Default::default()
        };
        let wait = block_on(patch(&kv, &db, iso.st(), &u, &second, Millis(10)))
            .unwrap()
            .sync_after_ms
            .unwrap();
        // Another location wrote the key meanwhile: KV refuses the first refresh.
        kv.fail_next_writes(1);
        let timer = FakeTimer::at(10);
        assert_eq!(
            block_on(sync_later(&kv, &db, iso.st(), &timer, &u, wait)),
            Flush::Done
        );
        assert_eq!(timer.slept_ms(), 990 + KV_WRITE_INTERVAL_MS);
        let stored: PrefsCopy = serde_json::from_str(&kv.get_raw("prefs:retry").unwrap()).unwrap();
        assert_eq!((stored.version, stored.prefs.language.as_str()), (2, "de"));
    }
}
