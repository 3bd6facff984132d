//! Versioned, audited config writes: D1 is the authority for the history and for the base of
//! every write; KV `config:app` stays the read path.
//!
//! * Every admin write that succeeds appends version `head + 1` to the history (D1 table
//!   `config_history`) with the time, the actor (`admin`), the change (the `PUT`
//!   document, the `PATCH` merge patch, or the rollback request) and the full resulting
//!   document, in one conditional `INSERT … SELECT … WHERE head = base RETURNING version`.
//! * A write may name the versions it expects ([`Precondition`]): it is applied only if one
//!   of them is the head, so two admins who read the same version cannot both write; the
//!   second gets [`DomainError::VersionConflict`], and its attempt is recorded in the
//!   history as refused (version `null`).
//! * A patch without a precondition merges into the head and appends conditionally on it,
//!   re-reading and re-merging when another write got in first, so concurrent patches are
//!   all applied, in some order. A replacement or rollback without one replaces whatever is
//!   there (last writer wins, and both are in the history).
//! * Before the first write the history is empty and the base is what KV holds (a config
//!   seeded with `wrangler kv bulk put`, version 0 unless its metadata says otherwise): the
//!   first write merges into it and becomes version 1. The seed itself is not a version.
//! * After D1, the new document goes to KV with metadata `{"version": N}`. KV refusing a
//!   second write to the key within a second is retried once after a second. Then the head
//!   is read again: if a later version committed meanwhile, KV is rewritten with it, so
//!   out-of-order KV writes of two concurrent admins still end at the newest version. If KV
//!   still fails, the write stands (it is in D1 and this isolate serves it at once), the
//!   answer is 200 and the KV copy is retried in the background; until then other isolates
//!   serve the previous version. The next admin write republishes the head in any case.
//! * A `config:app` written from outside the Worker (`wrangler kv bulk put`) has no version.
//!   Once D1 has a history, the first isolate to read such a document records it as the next
//!   version (actor `seed`, action `put`, as `npm run seed` records a reset) and republishes it to KV with that version
//!   ([`adopt`]), so the served config, `GET /admin/config` and the history agree again.

use crate::domain::config::{
    fingerprint, parse_stored, version_of, AppConfig, ConfigCache, KV_KEY,
};
use crate::domain::error::{DomainError, DomainResult, StorageError, StoreResult};
use crate::domain::json::{self, deny_unknown, object};
use crate::domain::kv::{Kv, KvMetadata, PutOptions, KV_WRITE_INTERVAL_MS};
use crate::domain::time::{Millis, Timer};
use serde::Serialize;
use serde_json::{json, Value};
use std::rc::Rc;

/// How many times a patch without a precondition re-merges after losing a race.
pub const MAX_ATTEMPTS: usize = 5;
/// A history page holds this many entries unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 20;
/// At most this many entries per history page.
pub const MAX_PAGE: u32 = 100;
/// Background attempts to bring KV up to the head after a failed write.
const REPUBLISH_ATTEMPTS: u32 = 3;

/// What an admin write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `PUT /admin/config`: a whole document.
    Put,
    /// `PATCH /admin/config`: a merge patch.
    Patch,
    /// `POST /admin/config/rollback`: an earlier version's document.
    Rollback,
}

impl Action {
    /// As stored and listed.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Put => "put",
            Action::Patch => "patch",
            Action::Rollback => "rollback",
        }
    }
}

/// Who wrote, as the history shows it: `admin` for the admin token, the person's email (or
/// a service token's name) for Cloudflare Access. Nothing derived from the admin token is
/// stored: a fingerprint of it, whatever its key, would let anyone who reads the history test
/// guesses of a weak token offline (the key of an unkeyed or source-keyed hash is public).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor<'a>(&'a str);

impl<'a> Actor<'a> {
    /// The admin token's holder.
    pub const ADMIN: Actor<'static> = Actor("admin");

    /// An identity proven otherwise (Cloudflare Access).
    pub fn named(name: &'a str) -> Self {
        Actor(name)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        self.0
    }
}

/// The versions a conditional write expects to be the head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Any current version.
    Any,
    /// One of these versions (none at all never matches).
    OneOf(Vec<u64>),
}

impl Precondition {
    /// Whether `version` satisfies it.
    pub fn matches(&self, version: u64) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::OneOf(v) => v.contains(&version),
        }
    }
}

/// A version as D1 holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    /// Its number.
    pub version: u64,
    /// The full config document (JSON).
    pub document: String,
}

/// One entry to append to the history.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// When.
    pub at: Millis,
    /// Who.
    pub actor: &'a str,
    /// What.
    pub action: Action,
    /// The version the write was based on.
    pub base: u64,
    /// The request body (JSON).
    pub change: &'a str,
    /// The full document after the write (JSON).
    pub document: &'a str,
}

/// One entry of the history, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// Its position in the trail (for the cursor).
    #[serde(skip)]
    pub seq: u64,
    /// The version it created; `None` for a refused attempt.
    pub version: Option<u64>,
    /// `applied` or `refused` (its precondition did not hold).
    pub outcome: &'static str,
    /// When.
    pub at: Millis,
    /// Who wrote (`admin` for the admin token).
    pub actor: String,
    /// `put`, `patch` or `rollback`.
    pub action: String,
    /// The version it was based on.
    pub base_version: u64,
    /// The request body.
    pub change: Value,
}

/// The newest version and when it was written ([`ConfigDb::head_at`]).
#[derive(Debug, Clone, PartialEq)]
pub struct HeadAt {
    /// The newest version.
    pub head: StoredVersion,
    /// When it was written.
    pub at: Millis,
}

/// The D1 side of the config history.
#[allow(async_fn_in_trait)]
pub trait ConfigDb {
    /// The newest version, if any.
    async fn head(&self) -> StoreResult<Option<StoredVersion>>;
    /// The newest version and when it was written; `None` without a history.
    async fn head_at(&self) -> StoreResult<Option<HeadAt>>;
    /// Version `version`, if it exists.
    async fn version(&self, version: u64) -> StoreResult<Option<StoredVersion>>;
    /// Appends the next version (the newest plus one, or `floor` plus one while there is
    /// none) if `expect` is `None` or is the current head (`floor` while there is none), in
    /// one statement; its number, or `None` when `expect` did not hold.
    async fn append(
        &self,
        e: &Entry<'_>,
        floor: u64,
        expect: Option<u64>,
    ) -> StoreResult<Option<u64>>;
    /// Records a refused attempt.
    async fn refuse(&self, e: &Entry<'_>) -> StoreResult<()>;
    /// Entries before position `before` (all when `None`), newest first, at most `limit`.
    async fn history(&self, before: Option<u64>, limit: u32) -> StoreResult<Vec<HistoryEntry>>;
}

/// The stores a write uses.
pub struct Stores<'a, D, K, T> {
    /// The history.
    pub db: &'a D,
    /// The read path.
    pub kv: &'a K,
    /// This isolate's copy.
    pub cache: &'a ConfigCache,
    /// The clock (writes wait a second when KV refuses one).
    pub timer: &'a T,
}

/// An admin write.
#[derive(Debug, Clone)]
pub struct Write<'a> {
    /// What it does.
    pub action: Action,
    /// The request body.
    pub change: &'a Value,
    /// The versions it expects to be the head, if it is conditional.
    pub expected: Option<Precondition>,
    /// Who.
    pub actor: &'a Actor<'a>,
}

/// The outcome of a write.
#[derive(Debug, Clone)]
pub struct Published {
    /// The new config, its version set.
    pub config: Rc<AppConfig>,
    /// Whether KV holds it (else a background retry should follow: [`republish`]).
    pub kv_synced: bool,
}

/// The authoritative config: D1's head, or before the first write what KV holds (version
/// 0 unless its metadata names one; a seed that does not validate counts as the defaults),
/// or the defaults.
pub async fn authoritative<D: ConfigDb, K: Kv>(db: &D, kv: &K) -> DomainResult<AppConfig> {
    let (version, config) = base(db, kv).await?;
    config
        .ok_or_else(|| DomainError::Internal(format!("version {version} in D1 does not validate")))
}

/// The head's version and its document, `None` when a version in D1 no longer validates
/// (the rules tightened since it was written): a `PUT` can still replace it.
async fn base<D: ConfigDb, K: Kv>(db: &D, kv: &K) -> DomainResult<(u64, Option<AppConfig>)> {
    if let Some(head) = db.head().await? {
        return Ok((head.version, parse_stored(&head.document, head.version)));
    }
    Ok(match kv.get_with_metadata(&KV_KEY).await? {
        Some((text, meta)) => {
            let version = crate::domain::config::version_of(meta.as_ref());
            let config = parse_stored(&text, version).unwrap_or(AppConfig {
                version,
                ..AppConfig::default()
            });
            (version, Some(config))
        }
        None => (0, Some(AppConfig::default())),
    })
}

/// Applies an admin write: validates it, appends it to the history and publishes it.
pub async fn write<D: ConfigDb, K: Kv, T: Timer>(
    s: &Stores<'_, D, K, T>,
    w: &Write<'_>,
) -> DomainResult<Published> {
    let mut fixed = match w.action {
        Action::Put => Some(AppConfig::from_document(w.change)?),
        Action::Rollback => Some(rollback_target(s.db, w.change).await?),
        Action::Patch => None,
    };
    adopt_outside(s).await;
    let change = crate::domain::json::text(w.change);
    let conditional = matches!(w.expected, Some(Precondition::OneOf(_)));
    for _ in 0..MAX_ATTEMPTS {
        let (version, current) = base(s.db, s.kv).await?;
        // A patch is merged into each attempt's base; a fixed document is borrowed until it
        // is published (the config is never copied).
        let patched = match (&fixed, current) {
            (Some(_), _) => None,
            (None, Some(current)) => Some(current.into_patched(w.change)?),
            (None, None) => {
                let problem = format!("version {version} in D1 does not validate: PUT a document");
                return Err(DomainError::Internal(problem));
            }
        };
        let Some(next) = patched.as_ref().or(fixed.as_ref()) else {
            continue;
        };
        let document = next.to_json()?;
        let entry = Entry {
            at: s.timer.now(),
            actor: w.actor.as_str(),
            action: w.action,
            base: version,
            change: &change,
            document: &document,
        };
        if w.expected.as_ref().is_some_and(|m| !m.matches(version)) {
            return Err(refuse(s.db, &entry).await);
        }
        let expect = (conditional || w.action == Action::Patch).then_some(version);
        match s.db.append(&entry, version, expect).await? {
            Some(new) => {
                let Some(next) = patched.or_else(|| fixed.take()) else {
                    continue;
                };
                let next = AppConfig {
                    version: new,
                    ..next
                };
                return Ok(publish(s, next).await);
            }
            None if conditional => return Err(refuse(s.db, &entry).await),
            None => continue,
        }
    }
    Err(DomainError::Unavailable(format!(
        "the config changed under {MAX_ATTEMPTS} attempts to merge into it"
    )))
}

/// Before a write: a document written to KV from outside the Worker is adopted first, so
/// the write builds on it rather than discarding it.
async fn adopt_outside<D: ConfigDb, K: Kv, T: Timer>(s: &Stores<'_, D, K, T>) {
    if let Ok(Some((text, meta))) = s.kv.get_with_metadata(&KV_KEY).await {
        if version_of(meta.as_ref()) == 0 {
            adopt(s, fingerprint(&text), &text).await;
        }
    }
}

/// The document of the version a rollback names (`{"version": N}`).
async fn rollback_target<D: ConfigDb>(db: &D, body: &Value) -> DomainResult<AppConfig> {
    let obj = object(body)?;
    deny_unknown(obj, &["version"], "")?;
    let n = obj
        .get("version")
        .map(json::whole_number)
        .ok_or_else(|| DomainError::invalid("version", "is required"))?
        .filter(|n| *n >= 1)
        .ok_or_else(|| DomainError::invalid("version", "must be an integer of at least 1"))?;
    let stored = db.version(n).await?.ok_or(DomainError::NotFound)?;
    parse_stored(&stored.document, n)
        .ok_or_else(|| DomainError::invalid("version", "that version no longer validates"))
}

/// Records a refused attempt and says which version is current.
async fn refuse<D: ConfigDb>(db: &D, entry: &Entry<'_>) -> DomainError {
    let recorded = db.refuse(entry).await;
    let head = db.head().await;
    match (recorded, head) {
        (Ok(()), Ok(head)) => DomainError::VersionConflict {
            current: head.map_or(entry.base, |h| h.version),
        },
        (Err(e), _) | (_, Err(e)) => DomainError::from(e),
    }
}

/// Makes `config` this isolate's copy and KV's, then makes sure KV did not end up older
/// than the head.
async fn publish<D: ConfigDb, K: Kv, T: Timer>(
    s: &Stores<'_, D, K, T>,
    config: AppConfig,
) -> Published {
    let config = Rc::new(config);
    s.cache.remember(config.clone(), s.timer.now());
    let synced = match put_kv(s.kv, s.timer, &config).await {
        Ok(()) => catch_up(s, config.version).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &synced {
        crate::log::error(&format!(
            "config version {} is in D1 but not in KV yet: {}",
            config.version, e.0
        ));
    }
    Published {
        config,
        kv_synced: synced.is_ok(),
    }
}

/// Writes `config` to KV with its version as metadata; a refused write is retried once
/// after a second (KV's per-key write limit).
async fn put_kv<K: Kv, T: Timer>(kv: &K, timer: &T, config: &AppConfig) -> StoreResult<()> {
    let text = config.to_json().map_err(|e| StorageError(e.to_string()))?;
    let opts = || -> StoreResult<PutOptions> {
        let metadata = KvMetadata::new(json!({ "version": config.version }))
            .map_err(|e| StorageError(e.to_string()))?;
        Ok(PutOptions {
            ttl: None,
            metadata: Some(metadata),
        })
    };
    if let Err(e) = kv.put(&KV_KEY, &text, opts()?).await {
        crate::log::warn_cause("config write refused, retrying in 1 s", &e.0);
        timer.sleep(KV_WRITE_INTERVAL_MS).await;
        kv.put(&KV_KEY, &text, opts()?).await?;
    }
    Ok(())
}

/// If a later version than `mine` committed while `mine` went to KV, its KV write may have
/// landed first: write the head again so KV ends at the newest version.
async fn catch_up<D: ConfigDb, K: Kv, T: Timer>(
    s: &Stores<'_, D, K, T>,
    mine: u64,
) -> StoreResult<()> {
    let Some(head) = s.db.head().await? else {
        return Ok(());
    };
    if head.version <= mine {
        return Ok(());
    }
    let newer = parse_stored(&head.document, head.version)
        .ok_or_else(|| StorageError(format!("version {} does not validate", head.version)))?;
    put_kv(s.kv, s.timer, &newer).await?;
    s.cache.remember(Rc::new(newer), s.timer.now());
    Ok(())
}

/// Background repair after a write whose KV copy failed: writes D1's head to KV, waiting 1,
/// 2 and 4 seconds before the attempts.
pub async fn republish<D: ConfigDb, K: Kv, T: Timer>(s: &Stores<'_, D, K, T>) {
    let mut wait = KV_WRITE_INTERVAL_MS;
    for _ in 0..REPUBLISH_ATTEMPTS {
        s.timer.sleep(wait).await;
        wait *= 2;
        match authoritative(s.db, s.kv).await {
            Ok(head) if head.version > 0 => {
                if put_kv(s.kv, s.timer, &head).await.is_ok() {
                    crate::log::info(&format!(
                        "config version {} republished to KV",
                        head.version
                    ));
                    return;
                }
            }
            Ok(_) => return,
            Err(_) => {}
        }
    }
    crate::log::error(
        "config:app in KV is behind D1; the next admin write (or a rollback to the head) republishes it",
    );
}

/// How long KV may still serve a copy older than a write elsewhere (its propagation bound).
pub const KV_PROPAGATION_MS: i64 = 60_000;

/// Adopts an unversioned `config:app` (written from outside the Worker, `text`, its
/// fingerprint `hash`; see [`ConfigCache::take_unversioned`]) and returns the config to
/// serve, or `None` to serve what the isolate had. With a history in D1 it is recorded as
/// the next version (actor `seed`) and republished to KV with it, unless it is D1's head
/// already (KV's copy lost its version), or the head is younger than KV's propagation bound:
/// the copy may then be one KV still serves from before the head (an isolate that read the
/// seed just before an admin write, a location whose KV lags), so the head is served and D1
/// asked again at the next read. Without a history it is version 0, as before the first
/// admin write. One D1 query per isolate and document once the head is older than a minute.
pub async fn adopt<D: ConfigDb, K: Kv, T: Timer>(
    s: &Stores<'_, D, K, T>,
    hash: u64,
    text: &str,
) -> Option<Rc<AppConfig>> {
    let seed = parse_stored(text, 0)?;
    let document = seed.to_json().ok()?;
    let check = match s.db.head_at().await {
        Ok(Some(check)) => check,
        Ok(None) => {
            s.cache.checked(hash);
            return None;
        }
        Err(e) => {
            crate::log::warn_cause("config:app without a version: D1 could not be asked", &e.0);
            return None;
        }
    };
    let head = check.head.version;
    let young = s.timer.now().ms_since(check.at) < KV_PROPAGATION_MS;
    if check.head.document == document || young {
        if check.head.document == document {
            s.cache.checked(hash);
        }
        let current = Rc::new(parse_stored(&check.head.document, head)?);
        s.cache.remember(current.clone(), s.timer.now());
        return Some(current);
    }
    let entry = Entry {
        at: s.timer.now(),
        actor: "seed",
        action: Action::Put,
        base: head,
        change: &document,
        document: &document,
    };
    match s.db.append(&entry, head, Some(head)).await {
        Ok(Some(version)) => {
            s.cache.checked(hash);
            crate::log::info(&format!(
                "config:app from outside adopted as version {version}"
            ));
            Some(publish(s, AppConfig { version, ..seed }).await.config)
        }
        Ok(None) => None,
        Err(e) => {
            crate::log::warn_cause("config:app without a version: recording it failed", &e.0);
            None
        }
    }
}

/// `GET /admin/config/history`'s query: `limit` and `cursor` (empty values: not given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Continue after this position.
    pub before: Option<u64>,
    /// Page size, 1 to [`MAX_PAGE`].
    pub limit: u32,
}

/// One page of the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    /// Newest first.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts; `None` on the last page.
    pub cursor: Option<String>,
    /// Whether this is the last page.
    pub list_complete: bool,
}

/// A page of the history, newest first.
pub async fn history<D: ConfigDb>(db: &D, q: &HistoryQuery) -> DomainResult<HistoryPage> {
    let mut entries = db.history(q.before, q.limit + 1).await?;
    let list_complete = entries.len() <= q.limit as usize;
    entries.truncate(q.limit as usize);
    let cursor = match list_complete {
        true => None,
        false => entries.last().map(|e| e.seq.to_string()),
    };
    Ok(HistoryPage {
        entries,
        cursor,
        list_complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::config::{current, CACHE_MS};
    use crate::domain::time::Clock;
    use crate::storage::fake::{block_on, FakeTimer, MemConfigDb, MemKv};

    struct World {
        db: MemConfigDb,
        kv: MemKv,
        cache: ConfigCache,
        timer: FakeTimer,
        actor: Actor<'static>,
    }

    impl World {
        fn new() -> Self {
            World {
                db: MemConfigDb::default(),
                kv: MemKv::default(),
                cache: ConfigCache::default(),
                timer: FakeTimer::at(1_000),
                actor: Actor::ADMIN,
            }
        }

        fn stores(&self) -> Stores<'_, MemConfigDb, MemKv, FakeTimer> {
            Stores {
                db: &self.db,
                kv: &self.kv,
                cache: &self.cache,
                timer: &self.timer,
            }
        }

        fn write(
            &self,
            action: Action,
            change: Value,
            expected: Option<&[u64]>,
        ) -> DomainResult<Published> {
            let w = Write {
                action,
                change: &change,
                expected: expected.map(|v| Precondition::OneOf(v.to_vec())),
                actor: &self.actor,
            };
            block_on(write(&self.stores(), &w))
        }

        fn kv_version(&self) -> u64 {
            let e = self.kv.entry("config:app").unwrap();
            crate::domain::config::version_of(e.metadata.as_ref())
        }
    }

    fn flags(p: &Published) -> Value {
        serde_json::to_value(&p.config.feature_flags).unwrap()
    }

    #[test]
    fn every_write_is_a_new_version_in_d1_then_kv() {
        let w = World::new();
        let p = w
            .write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        assert_eq!((p.config.version, p.kv_synced), (1, true));
        let p = w
            .write(Action::Patch, json!({"featureFlags": {"b": true}}), None)
            .unwrap();
        assert_eq!(p.config.version, 2);
        assert_eq!(flags(&p), json!({"a": true, "b": true}));
        assert_eq!(w.kv_version(), 2);
        let stored = block_on(current(&w.kv, &ConfigCache::default(), Millis(0)));
        assert_eq!((stored.version, stored.feature_flags.len()), (2, 2));
        let h = block_on(history(
            &w.db,
            &HistoryQuery {
                before: None,
                limit: 10,
            },
        ))
        .unwrap();
        let versions: Vec<_> = h.entries.iter().map(|e| e.version).collect();
        assert_eq!(versions, [Some(2), Some(1)]);
        assert_eq!(h.entries[0].change, json!({"featureFlags": {"b": true}}));
        assert_eq!(
            (h.entries[0].base_version, h.entries[0].action.as_str()),
            (1, "patch")
        );
        assert_eq!(h.entries[0].actor, "admin");
    }

    #[test]
    fn the_first_write_merges_into_the_seed_in_kv() {
        let w = World::new();
        w.kv.insert("config:app", r#"{"featureFlags":{"seeded":true}}"#);
        let p = w
            .write(
                Action::Patch,
                json!({"featureFlags": {"mine": true}}),
                Some(&[0]),
            )
            .unwrap();
        assert_eq!(p.config.version, 1);
        assert_eq!(flags(&p), json!({"mine": true, "seeded": true}));
    }

    #[test]
    fn a_seed_with_a_version_keeps_versions_increasing() {
        let w = World::new();
        block_on(w.kv.put(
            &KV_KEY,
            "{}",
            PutOptions {
                ttl: None,
                metadata: Some(KvMetadata::new(json!({"version": 7})).unwrap()),
            },
        ))
        .unwrap();
        assert_eq!(
            w.write(Action::Put, json!({}), Some(&[7]))
                .unwrap()
                .config
                .version,
            8
        );
    }

    #[test]
    fn a_stale_if_match_is_refused_recorded_and_changes_nothing() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        w.write(
            Action::Patch,
            json!({"featureFlags": {"b": true}}),
            Some(&[1]),
        )
        .unwrap();
        let err = w.write(
            Action::Patch,
            json!({"featureFlags": {"c": true}}),
            Some(&[1]),
        );
        assert_eq!(
            err.unwrap_err(),
            DomainError::VersionConflict { current: 2 }
        );
        for expected in [&[][..], &[3], &[0], &[1, 3]] {
            let err = w.write(Action::Put, json!({}), Some(expected)).unwrap_err();
            assert_eq!(err, DomainError::VersionConflict { current: 2 });
        }
        assert!(w.write(Action::Put, json!({}), Some(&[9, 2])).is_ok());
        let h = block_on(history(
            &w.db,
            &HistoryQuery {
                before: None,
                limit: 100,
            },
        ))
        .unwrap();
        let outcomes: Vec<_> = h.entries.iter().map(|e| (e.version, e.outcome)).collect();
        assert_eq!(outcomes[0], (Some(3), "applied"));
        assert_eq!(
            outcomes[1..6]
                .iter()
                .filter(|o| *o == &(None, "refused"))
                .count(),
            5
        );
        assert_eq!(
            h.entries[5].base_version, 2,
            "a refusal records the head it saw"
        );
    }

    #[test]
    fn a_patch_that_loses_the_race_re_merges_instead_of_losing_either() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        // Another admin commits version 2 between this write's read and its insert.
        w.db.interleave_once(r#"{"featureFlags":{"a":true,"theirs":true}}"#);
        let p = w
            .write(Action::Patch, json!({"featureFlags": {"mine": true}}), None)
            .unwrap();
        assert_eq!(p.config.version, 3);
        assert_eq!(flags(&p), json!({"a": true, "mine": true, "theirs": true}));
        // With a precondition, losing the race is a version conflict instead.
        w.db.interleave_once(r#"{}"#);
        let err = w.write(
            Action::Patch,
            json!({"featureFlags": {"x": true}}),
            Some(&[3]),
        );
        assert_eq!(
            err.unwrap_err(),
            DomainError::VersionConflict { current: 4 }
        );
    }

    #[test]
    fn kv_ends_at_the_newest_version_when_writes_land_out_of_order() {
        let w = World::new();
        w.write(Action::Put, json!({"maintenanceMode": false}), None)
            .unwrap();
        // Version 3 commits (and reaches KV) while version 2 is on its way to KV.
        w.db.commit_after_next_append(r#"{"maintenanceMode":true}"#);
        let p = w
            .write(Action::Put, json!({"cacheTtlSeconds": 9}), None)
            .unwrap();
        assert_eq!((p.config.version, p.kv_synced), (2, true));
        assert_eq!(w.kv_version(), 3);
        let copy = block_on(current(&w.kv, &w.cache, w.timer.now()));
        assert_eq!(copy.version, 3);
    }

    #[test]
    fn a_kv_failure_after_d1_keeps_the_write_and_republish_repairs_kv() {
        let w = World::new();
        w.kv.fail_next_writes(2);
        let p = w
            .write(Action::Put, json!({"maintenanceMode": true}), None)
            .unwrap();
        assert_eq!((p.config.version, p.kv_synced), (1, false));
        assert!(w.kv.entry("config:app").is_none());
        assert!(
            block_on(current(&w.kv, &w.cache, w.timer.now())).maintenance_mode,
            "this isolate serves it"
        );
        block_on(republish(&w.stores()));
        assert_eq!(w.kv_version(), 1);
    }

    #[test]
    fn a_write_kv_refuses_is_retried_once_after_a_second() {
        let w = World::new();
        w.kv.fail_next_writes(1);
        let p = w
            .write(Action::Put, json!({"maintenanceMode": true}), None)
            .unwrap();
        assert!(p.kv_synced);
        assert_eq!(w.timer.slept_ms(), KV_WRITE_INTERVAL_MS);
        assert_eq!(w.kv.writes(), 2);
    }

    #[test]
    fn rollback_writes_a_new_version_equal_to_the_old_one() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        w.write(Action::Put, json!({"featureFlags": {"b": true}}), None)
            .unwrap();
        let p = w
            .write(Action::Rollback, json!({"version": 1}), Some(&[2]))
            .unwrap();
        assert_eq!(p.config.version, 3);
        assert_eq!(flags(&p), json!({"a": true}));
        // 2.0 is 2, as for every integer of the API.
        let q = w
            .write(Action::Rollback, json!({"version": 2.0}), None)
            .unwrap();
        assert_eq!(flags(&q), json!({"b": true}));
        assert_eq!(
            w.write(Action::Rollback, json!({"version": 9}), None)
                .unwrap_err(),
            DomainError::NotFound
        );
        for bad in [
            json!({"version": 0}),
            json!({"version": 1.5}),
            json!({"version": "1"}),
            json!({}),
            json!({"version": 1, "x": 1}),
            json!([]),
        ] {
            assert!(matches!(
                w.write(Action::Rollback, bad, None),
                Err(DomainError::Invalid(_))
            ));
        }
    }

    #[test]
    fn invalid_writes_change_nothing() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        let queries = w.db.db.queries.get();
        assert!(w
            .write(Action::Put, json!({"featureFlags": {"a": 1}}), None)
            .is_err());
        assert!(w
            .write(
                Action::Patch,
                json!({"featureFlags": {"a": {"variants": {}}}}),
                None
            )
            .is_err());
        assert_eq!(block_on(w.db.head()).unwrap().unwrap().version, 1);
        assert_eq!(w.db.rows.borrow().len(), 1, "nothing recorded");
        assert!(w.db.db.queries.get() > queries);
        w.db.db.failing.set(true);
        assert!(matches!(
            w.write(Action::Put, json!({}), None),
            Err(DomainError::Unavailable(_))
        ));
    }

    #[test]
    fn a_stored_version_that_no_longer_validates_can_be_replaced_by_a_put() {
        let w = World::new();
        w.write(Action::Put, json!({}), None).unwrap();
        w.db.rows.borrow_mut()[0].document = Some(r#"{"featureFlags":{"x":"not a flag"}}"#.into());
        let err = w
            .write(Action::Patch, json!({"maintenanceMode": true}), None)
            .unwrap_err();
        assert!(matches!(err, DomainError::Internal(_)));
        assert!(matches!(
            block_on(authoritative(&w.db, &w.kv)),
            Err(DomainError::Internal(_))
        ));
        let p = w
            .write(Action::Put, json!({"maintenanceMode": true}), Some(&[1]))
            .unwrap();
        assert_eq!(p.config.version, 2);
    }

    #[test]
    fn history_pages_newest_first() {
        let w = World::new();
        for i in 0..5 {
            w.write(Action::Put, json!({"cacheTtlSeconds": i + 1}), None)
                .unwrap();
        }
        let p1 = block_on(history(
            &w.db,
            &HistoryQuery {
                before: None,
                limit: 2,
            },
        ))
        .unwrap();
        assert_eq!(
            p1.entries.iter().map(|e| e.version).collect::<Vec<_>>(),
            [Some(5), Some(4)]
        );
        assert!(!p1.list_complete);
        let q = HistoryQuery {
            before: p1.cursor.and_then(|c| c.parse().ok()),
            limit: 10,
        };
        let p2 = block_on(history(&w.db, &q)).unwrap();
        assert_eq!(p2.entries.len(), 3);
        assert!(p2.list_complete && p2.cursor.is_none());
    }

    /// What a request reads, as `Ctx::config` does: the isolate's copy or KV's, with a
    /// document written from outside adopted. Each call is 5 s after the last (a fresh read).
    fn serve(w: &World) -> Rc<AppConfig> {
        w.timer.set(w.timer.now().0 + CACHE_MS);
        let config = block_on(current(&w.kv, &w.cache, w.timer.now()));
        match w.cache.take_unversioned() {
            Some((hash, text)) => block_on(adopt(&w.stores(), hash, &text)).unwrap_or(config),
            None => config,
        }
    }

    fn last_entry(w: &World) -> (Option<u64>, String, String) {
        let rows = w.db.rows.borrow();
        let r = rows.last().unwrap();
        (r.version, r.actor.clone(), r.action.clone())
    }

    const OUTSIDE: &str = r#"{"featureFlags":{"fromSeed":true}}"#;

    /// A `wrangler kv bulk put` of [`OUTSIDE`] made past KV's propagation bound after the
    /// admin writes so far (so it is newer than D1's head).
    fn put_from_outside_later(w: &World) {
        w.timer.set(w.timer.now().0 + KV_PROPAGATION_MS);
        w.kv.insert("config:app", OUTSIDE);
    }

    #[test]
    fn without_a_history_an_outside_document_is_version_0_and_d1_is_asked_once() {
        let w = World::new();
        w.kv.insert("config:app", OUTSIDE);
        assert_eq!(serve(&w).version, 0);
        assert!(serve(&w).feature_flags.contains_key("fromSeed"));
        assert_eq!(
            w.db.db.queries.get(),
            1,
            "asked once per isolate and document"
        );
        assert!(w.db.rows.borrow().is_empty());
        w.kv.insert("config:app", r#"{"featureFlags":{"other":true}}"#);
        serve(&w);
        assert_eq!(
            w.db.db.queries.get(),
            2,
            "a different document is asked about"
        );
    }

    #[test]
    fn an_outside_document_after_admin_writes_becomes_the_next_version_in_d1_and_kv() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"admin": true}}), None)
            .unwrap();
        assert_eq!(serve(&w).version, 1);
        put_from_outside_later(&w);
        let served = serve(&w);
        assert_eq!(served.version, 2);
        assert!(served.feature_flags.contains_key("fromSeed"));
        assert!(!served.feature_flags.contains_key("admin"));
        assert_eq!(last_entry(&w), (Some(2), "seed".into(), "put".into()));
        assert_eq!(w.kv_version(), 2, "KV's copy carries the version again");
        let head = block_on(authoritative(&w.db, &w.kv)).unwrap();
        assert_eq!(head.version, 2);
        let queries = w.db.db.queries.get();
        assert_eq!(serve(&w).version, 2);
        assert_eq!(w.db.db.queries.get(), queries, "nothing more to ask");
    }

    #[test]
    fn a_copy_that_lost_its_version_is_the_head_not_a_new_version() {
        let w = World::new();
        let p = w
            .write(
                Action::Put,
                json!({"featureFlags": {"fromSeed": true}}),
                None,
            )
            .unwrap();
        w.kv.insert("config:app", &p.config.to_json().unwrap());
        let fresh = World {
            db: w.db,
            ..World::new()
        };
        fresh.kv.insert("config:app", OUTSIDE);
        assert_eq!(serve(&fresh).version, 1);
        assert_eq!(fresh.db.rows.borrow().len(), 1, "nothing appended");
    }

    #[test]
    fn a_stale_copy_of_an_adopted_seed_waits_out_kv_propagation_then_counts_as_a_reset() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"admin": true}}), None)
            .unwrap();
        put_from_outside_later(&w);
        assert_eq!(serve(&w).version, 2, "adopted");
        w.write(
            Action::Patch,
            json!({"featureFlags": {"later": true}}),
            None,
        )
        .unwrap();
        // Another isolate, at a location whose KV still serves the seed without a version.
        let other = World {
            db: w.db,
            ..World::new()
        };
        other.timer.set(w.timer.now().0);
        other.kv.insert("config:app", OUTSIDE);
        let served = serve(&other);
        assert_eq!(served.version, 3, "the head, not the stale seed");
        assert!(served.feature_flags.contains_key("later"));
        assert_eq!(other.db.rows.borrow().len(), 3, "nothing appended");
        // Past KV's propagation bound the same document is a deliberate reset.
        other.timer.set(other.timer.now().0 + KV_PROPAGATION_MS);
        let served = serve(&other);
        assert_eq!(served.version, 4);
        assert!(!served.feature_flags.contains_key("later"));
        assert_eq!(last_entry(&other), (Some(4), "seed".into(), "put".into()));
    }

    #[test]
    fn a_seed_read_just_before_an_admin_write_is_not_adopted_over_it() {
        let w = World::new();
        w.kv.insert("config:app", OUTSIDE);
        // This isolate read the seed; another admin's write lands before it asks D1.
        let read = block_on(current(&w.kv, &w.cache, w.timer.now()));
        assert_eq!(read.version, 0);
        let (hash, text) = w.cache.take_unversioned().unwrap();
        let other = World {
            db: w.db,
            ..World::new()
        };
        other
            .write(Action::Put, json!({"featureFlags": {"admin": true}}), None)
            .unwrap();
        let w = World { db: other.db, ..w };
        w.timer.set(w.timer.now().0 + 1_000);
        let served = block_on(adopt(&w.stores(), hash, &text)).unwrap();
        assert_eq!(
            served.version, 1,
            "the admin's write, not the seed read before it"
        );
        assert!(served.feature_flags.contains_key("admin"));
        assert_eq!(w.db.rows.borrow().len(), 1, "nothing appended");
    }

    #[test]
    fn an_admin_write_builds_on_an_outside_document_no_request_has_read_yet() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"admin": true}}), None)
            .unwrap();
        put_from_outside_later(&w);
        let p = w
            .write(Action::Patch, json!({"featureFlags": {"mine": true}}), None)
            .unwrap();
        assert_eq!(p.config.version, 3);
        assert_eq!(flags(&p), json!({"fromSeed": true, "mine": true}));
        let actions: Vec<_> =
            w.db.rows
                .borrow()
                .iter()
                .map(|r| r.action.clone())
                .collect();
        assert_eq!(actions, ["put", "put", "patch"]);
    }

    #[test]
    fn d1_failing_leaves_the_copy_served_and_asks_again_next_time() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"admin": true}}), None)
            .unwrap();
        serve(&w);
        put_from_outside_later(&w);
        w.db.db.failing.set(true);
        assert_eq!(serve(&w).version, 1, "the last good config");
        w.db.db.failing.set(false);
        assert_eq!(serve(&w).version, 2);
    }

    #[test]
    fn preconditions_match_the_versions_they_name() {
        assert!(Precondition::Any.matches(0));
        assert!(Precondition::OneOf(vec![3, 9]).matches(9));
        assert!(!Precondition::OneOf(vec![3]).matches(4));
        assert!(!Precondition::OneOf(vec![]).matches(0));
    }
}
