//! Versioned, audited config writes: D1 is the authority for the history and for the base of
//! every write; KV `config:app` stays the read path.
//!
//! * Every admin write that succeeds appends version `head + 1` to the history (D1 table
//!   `config_history`) with the time, the actor (`admin`) and the change (the `PUT`
//!   document, the `PATCH` merge patch, or the rollback request), in one conditional
//!   `INSERT … SELECT … WHERE head = base RETURNING version`.
//! * A row stores what the write changed, not the whole config each time: a put's change is
//!   its whole document; a rollback's row also stores the document it restores; a patch's
//!   row stores only its merge patch, except every [`SNAPSHOT_EVERY`] patches (or when the
//!   patches since outweigh the document, and for the very first version) when it also
//!   stores the whole document. A version is [`rebuild`]t from the newest whole document at
//!   or before it and the patches after that, so one row stays within D1's 2 MB (a change
//!   and a document of at most [`ROW_BUDGET`] together) and writing one flag of a 1 MB config adds a
//!   row of that flag's size.
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
    fingerprint, merge_document, parse_stored, version_of, AppConfig, ConfigCache, KV_KEY,
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

/// A version rebuilt from the history ([`rebuild`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion {
    /// Its number.
    pub version: u64,
    /// The full config document (JSON).
    pub document: String,
}

/// One applied version as the history holds it ([`ConfigDb::chain`]): a whole document (a
/// put's request, or the `document` a rollback or a snapshot stores), or a patch's merge
/// patch on the version before it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Its number.
    pub version: u64,
    /// When it was written.
    pub at: Millis,
    /// `put`, `patch` or `rollback`.
    pub action: String,
    /// The request body.
    pub change: String,
    /// The whole document, where the row stores one.
    pub document: Option<String>,
}

impl Step {
    /// The whole document this step sets, if it sets one (else `change` is a merge patch).
    pub fn whole(&self) -> Option<&str> {
        match (&self.document, self.action.as_str()) {
            (Some(document), _) => Some(document),
            (None, "put") => Some(&self.change),
            (None, _) => None,
        }
    }
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
    /// The whole document after the write (JSON), where the row stores one: a rollback's,
    /// and a patch's every [`SNAPSHOT_EVERY`] versions or so. A put's change is
    /// its whole document already.
    pub document: Option<&'a str>,
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

/// A version rebuilt from the history, with when it was written and how far back its
/// whole document is.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    /// The version and its document.
    pub head: StoredVersion,
    /// When it was written.
    pub at: Millis,
    /// The merge patches applied on the last whole document to rebuild it.
    pub patches: usize,
    /// Their bytes.
    pub patch_bytes: usize,
}

/// The D1 side of the config history.
#[allow(async_fn_in_trait)]
pub trait ConfigDb {
    /// What rebuilds version `upto` (the newest when `None`): the applied versions from the
    /// newest one at or before it that holds a whole document (a put, or a `document`) up to it,
    /// oldest first; empty without a history.
    async fn chain(&self, upto: Option<u64>) -> StoreResult<Vec<Step>>;
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

/// A patch stores the whole document when this many patches follow the last one (so a
/// version is rebuilt from one document and fewer patches than this).
pub const SNAPSHOT_EVERY: usize = 32;

/// A row's change and document together stay under this many bytes: D1 refuses rows over
/// 2,000,000 bytes, and the row's other columns take a few dozen.
pub const ROW_BUDGET: usize = 1_990_000;

/// Whether a patch's row should hold the whole document: always for the first version (its
/// base, KV's seed, is not in the history), else when the patches since the last whole
/// document reach [`SNAPSHOT_EVERY`] or outweigh the document, and the row stays within
/// [`ROW_BUDGET`] (else a later, smaller patch holds it).
fn snapshot_due(since: Option<&Rebuilt>, change: usize, document: usize) -> bool {
    since.is_none_or(|r| {
        let due = r.patches + 1 >= SNAPSHOT_EVERY || r.patch_bytes + change >= document;
        due && change + document <= ROW_BUDGET
    })
}

/// A row over [`ROW_BUDGET`]: only a first write that patches a large seed can make one (its
/// row must hold the document it builds on), and it is refused before anything is stored.
fn row_fits(entry: &Entry<'_>) -> DomainResult<()> {
    let bytes = entry.change.len() + entry.document.map_or(0, str::len);
    match bytes <= ROW_BUDGET {
        true => Ok(()),
        false => Err(DomainError::invalid(
            "config",
            &format!("this write would store {bytes} bytes in one history row, over {ROW_BUDGET}: write the whole config with PUT first"),
        )),
    }
}

/// A patch merged into its base (a base that no longer validates can only be replaced), with
/// the schedule entries due by `now` applied, and the merge patch that makes it from the base:
/// the request's, with the flags whose entries it applied.
fn patch_base(
    base: Option<AppConfig>,
    patch: &Value,
    version: u64,
    now: Millis,
) -> DomainResult<(AppConfig, String)> {
    let merged = match base {
        Some(current) => current.into_patched(patch)?,
        None => {
            let problem = format!("version {version} in D1 does not validate: PUT a document");
            return Err(DomainError::Internal(problem));
        }
    };
    let (merged, settle) = settled_by(merged, now, now)?;
    let Some(settle) = settle else {
        return Ok((merged, json::text(patch)));
    };
    let mut change = patch.clone();
    merge_document(&mut change, &settle);
    Ok((merged, json::text(&change)))
}

/// Whether a write's row stores its whole document: a rollback's always, a put's never (its
/// change is the document), a patch's when a snapshot is due.
fn holds_document(action: Action, base: Option<&Rebuilt>, change: &str, document: &str) -> bool {
    match action {
        Action::Put => false,
        Action::Rollback => true,
        Action::Patch => snapshot_due(base, change.len(), document.len()),
    }
}

/// Version `upto` (the newest when `None`) rebuilt from the history: its whole document with
/// the patches after it merged in, then validated and written out as the config stores it
/// (as merged when it no longer validates: a `PUT` can still replace it). `None` without a
/// history.
pub async fn rebuild<D: ConfigDb>(db: &D, upto: Option<u64>) -> StoreResult<Option<Rebuilt>> {
    let steps = db.chain(upto).await?;
    let Some(last) = steps.last() else {
        return Ok(None);
    };
    let (version, at) = (last.version, last.at);
    let unreadable = |v: u64| StorageError(format!("config version {v} in D1 is not JSON"));
    let mut doc: Option<Value> = None;
    let (mut patches, mut patch_bytes) = (0, 0);
    for step in &steps {
        if let Some(whole) = step.whole() {
            doc = Some(json::read(whole).map_err(|_| unreadable(step.version))?);
            (patches, patch_bytes) = (0, 0);
            continue;
        }
        let patch = json::read(&step.change).map_err(|_| unreadable(step.version))?;
        let into = doc.as_mut().ok_or_else(|| {
            StorageError(format!(
                "config version {} patches no document",
                step.version
            ))
        })?;
        merge_document(into, &patch);
        (patches, patch_bytes) = (patches + 1, patch_bytes + step.change.len());
    }
    let doc = doc.unwrap_or_default();
    let document = match AppConfig::from_document(&doc).and_then(|c| c.to_json()) {
        Ok(text) => text,
        Err(_) => json::text(&doc),
    };
    Ok(Some(Rebuilt {
        head: StoredVersion { version, document },
        at,
        patches,
        patch_bytes,
    }))
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
    let base = base(db, kv).await?;
    let version = base.version;
    base.config
        .ok_or_else(|| DomainError::Internal(format!("version {version} in D1 does not validate")))
}

/// What a write builds on.
struct Base {
    /// The head's version (KV's seed's before the first write).
    version: u64,
    /// Its config, `None` when a version in D1 no longer validates (the rules tightened
    /// since it was written): a `PUT` can still replace it.
    config: Option<AppConfig>,
    /// How it was rebuilt from the history; `None` before the first write.
    rebuilt: Option<Rebuilt>,
}

/// D1's head, or before the first write what KV holds.
async fn base<D: ConfigDb, K: Kv>(db: &D, kv: &K) -> DomainResult<Base> {
    if let Some(rebuilt) = rebuild(db, None).await? {
        let head = &rebuilt.head;
        return Ok(Base {
            version: head.version,
            config: parse_stored(&head.document, head.version),
            rebuilt: Some(rebuilt),
        });
    }
    let (version, config) = match kv.get_with_metadata(&KV_KEY).await? {
        Some((text, meta)) => {
            let version = crate::domain::config::version_of(meta.as_ref());
            let config = parse_stored(&text, version).unwrap_or(AppConfig {
                version,
                ..AppConfig::default()
            });
            (version, config)
        }
        None => (0, AppConfig::default()),
    };
    Ok(Base {
        version,
        config: Some(config),
        rebuilt: None,
    })
}

/// Applies an admin write: validates it, appends it to the history and publishes it.
pub async fn write<D: ConfigDb, K: Kv, T: Timer>(
    s: &Stores<'_, D, K, T>,
    w: &Write<'_>,
) -> DomainResult<Published> {
    let now = s.timer.now();
    let mut fixed = fixed_document(s.db, w, now).await?;
    adopt_outside(s).await;
    let conditional = matches!(w.expected, Some(Precondition::OneOf(_)));
    for _ in 0..MAX_ATTEMPTS {
        let base = base(s.db, s.kv).await?;
        let version = base.version;
        // A patch is merged into each attempt's base; a fixed document is borrowed until it
        // is published (the config is never copied).
        let patched = match &fixed {
            Some(_) => None,
            None => Some(patch_base(base.config, w.change, version, now)?),
        };
        let Some((next, change)) = patched.as_ref().or(fixed.as_ref()) else {
            continue;
        };
        let document = next.to_json()?;
        let whole = holds_document(w.action, base.rebuilt.as_ref(), change, &document);
        let entry = Entry {
            at: now,
            actor: w.actor.as_str(),
            action: w.action,
            base: version,
            change,
            document: whole.then_some(document.as_str()),
        };
        if w.expected.as_ref().is_some_and(|m| !m.matches(version)) {
            return Err(refuse(s.db, &entry).await);
        }
        row_fits(&entry)?;
        let expect = (conditional || w.action == Action::Patch).then_some(version);
        match s.db.append(&entry, version, expect).await? {
            Some(new) => {
                let Some((next, _)) = patched.or_else(|| fixed.take()) else {
                    continue;
                };
                return Ok(publish(
                    s,
                    AppConfig {
                        version: new,
                        ..next
                    },
                )
                .await);
            }
            None if conditional => return Err(refuse(s.db, &entry).await),
            None => continue,
        }
    }
    Err(DomainError::Unavailable(format!(
        "the config changed under {MAX_ATTEMPTS} attempts to merge into it"
    )))
}

/// A put's or a rollback's document, its due schedule entries applied, and what its row
/// records as the change: a put, the document it wrote; a rollback, its request. `None`
/// for a patch (merged into each attempt's base: [`patch_base`]).
async fn fixed_document<D: ConfigDb>(
    db: &D,
    w: &Write<'_>,
    now: Millis,
) -> DomainResult<Option<(AppConfig, String)>> {
    let config = match w.action {
        Action::Put => AppConfig::from_document(w.change)?,
        Action::Rollback => rollback_target(db, w.change, now).await?,
        Action::Patch => return Ok(None),
    };
    let config = settled_now(config, now)?;
    let change = match w.action {
        Action::Put => config.to_json()?,
        _ => json::text(w.change),
    };
    Ok(Some((config, change)))
}

/// `config` with the schedule entries due by `now` applied ([`AppConfig::settle_patch`]): a
/// write stores what is served, so an entry whose time has passed takes effect at once.
fn settled_now(config: AppConfig, now: Millis) -> DomainResult<AppConfig> {
    settled_by(config, now, now).map(|(config, _)| config)
}

/// `config` with its schedule entries up to `drop_until` settled
/// ([`AppConfig::settle_patch`]: those due by `apply_until` applied), and the patch that did
/// it; the config unchanged and `None` when no entry is that old.
fn settled_by(
    config: AppConfig,
    apply_until: Millis,
    drop_until: Millis,
) -> DomainResult<(AppConfig, Option<Value>)> {
    let Some(text) = config.settle_patch(apply_until, drop_until) else {
        return Ok((config, None));
    };
    let patch = json::read(&text).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok((config.into_patched(&patch)?, Some(patch)))
}

/// Before a write: a document written to KV from outside the Worker is adopted first, so
/// the write builds on it rather than discarding it.
/// One KV read, which transfers the document only when it has no version.
async fn adopt_outside<D: ConfigDb, K: Kv, T: Timer>(s: &Stores<'_, D, K, T>) {
    let unversioned = |meta: Option<&Value>| version_of(meta) == 0;
    if let Ok(Some((Some(text), _))) = s.kv.get_with_metadata_if(&KV_KEY, unversioned).await {
        adopt(s, fingerprint(&text), &text).await;
    }
}

/// The document of the version a rollback names (`{"version": N}`).
/// The restored document's schedule is settled as that version served it: entries due by
/// its write applied, entries that took effect since dropped unapplied (the rollback wins
/// over them), entries still to come kept.
async fn rollback_target<D: ConfigDb>(
    db: &D,
    body: &Value,
    now: Millis,
) -> DomainResult<AppConfig> {
    let obj = object(body)?;
    deny_unknown(obj, &["version"], "")?;
    let n = obj
        .get("version")
        .map(json::whole_number)
        .ok_or_else(|| DomainError::invalid("version", "is required"))?
        .filter(|n| *n >= 1)
        .ok_or_else(|| DomainError::invalid("version", "must be an integer of at least 1"))?;
    let stored = rebuild(db, Some(n)).await?;
    let stored = stored
        .filter(|r| r.head.version == n)
        .ok_or(DomainError::NotFound)?;
    let target = parse_stored(&stored.head.document, n)
        .ok_or_else(|| DomainError::invalid("version", "that version no longer validates"))?;
    settled_by(target, stored.at, now).map(|(target, _)| target)
}

/// Records the schedule entries that took effect by `now` in the history, as the first
/// isolate to serve them finds them: D1's head with its due entries settled
/// ([`AppConfig::settle_patch`]) becomes the next version (actor `schedule`, action `patch`),
/// published like any write, so the document says what is served, the change stream
/// announces it and a later rollback does not bring the entries back. Conditional on the
/// head: when another isolate or an admin wrote first, nothing is written (the head has no
/// due entry then, or the next request asks again). Evaluation never waits for this: it
/// applies due entries by the clock.
pub async fn settle<D: ConfigDb, K: Kv, T: Timer>(s: &Stores<'_, D, K, T>, now: Millis) {
    let head = match rebuild(s.db, None).await {
        Ok(Some(head)) => head,
        Ok(None) => return,
        Err(e) => return crate::log::warn_cause("settling a schedule: D1 could not be read", &e.0),
    };
    let version = head.head.version;
    let Some(config) = parse_stored(&head.head.document, version) else {
        return;
    };
    let (next, change) = match settled_by(config, now, now) {
        Ok((next, Some(patch))) => (next, json::text(&patch)),
        Ok((_, None)) => return,
        Err(e) => return crate::log::warn(&format!("settling a schedule: {e}")),
    };
    let document = next.to_json().unwrap_or_default();
    let entry = Entry {
        at: s.timer.now(),
        actor: "schedule",
        action: Action::Patch,
        base: version,
        change: &change,
        document: holds_document(Action::Patch, Some(&head), &change, &document)
            .then_some(document.as_str()),
    };
    match s.db.append(&entry, version, Some(version)).await {
        Ok(Some(new)) => {
            crate::log::info(&format!(
                "schedule entries due by {} recorded as version {new}",
                now.0
            ));
            publish(
                s,
                AppConfig {
                    version: new,
                    ..next
                },
            )
            .await;
        }
        Ok(None) => {}
        Err(e) => crate::log::warn_cause("settling a schedule: the append failed", &e.0),
    }
}

/// Records a refused attempt and says which version is current.
async fn refuse<D: ConfigDb>(db: &D, entry: &Entry<'_>) -> DomainError {
    let recorded = db.refuse(entry).await;
    let head = db.chain(None).await;
    match (recorded, head) {
        (Ok(()), Ok(steps)) => DomainError::VersionConflict {
            current: steps.last().map_or(entry.base, |h| h.version),
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
    let Some(Rebuilt { head, .. }) = rebuild(s.db, None).await? else {
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
    let check = match rebuild(s.db, None).await {
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
        document: None,
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
    fn patches_store_their_change_and_every_version_rebuilds_as_it_was_served() {
        let w = World::new();
        let mut served = vec![String::new()];
        let p = w.write(Action::Put, json!({"featureFlags": {"a": true}}), None);
        served.push(p.unwrap().config.to_json().unwrap());
        for i in 0..(2 * SNAPSHOT_EVERY) {
            let patch = match i % 3 {
                0 => json!({"featureFlags": {format!("f{i}"): true}}),
                1 => {
                    json!({"featureFlags": {format!("f{}", i - 1): null}, "rateLimits": {"g": i + 1}})
                }
                _ => json!({"maintenanceMode": i % 2 == 0, "rateLimits": {"g": null}}),
            };
            let p = w.write(Action::Patch, patch, None).unwrap();
            served.push(p.config.to_json().unwrap());
        }
        let head = served.len() as u64 - 1;
        for v in 1..=head {
            let rebuilt = block_on(rebuild(&w.db, Some(v))).unwrap().unwrap();
            assert_eq!(rebuilt.head.version, v);
            assert_eq!(rebuilt.head.document, served[v as usize], "version {v}");
            assert!(rebuilt.patches < SNAPSHOT_EVERY, "version {v}");
        }
        let rows = w.db.rows.borrow();
        let whole = rows.iter().filter(|r| r.document.is_some()).count();
        assert!(
            (1..=head as usize / 4).contains(&whole),
            "{whole} of {head} rows"
        );
        assert!(rows
            .iter()
            .all(|r| r.action != "put" || r.document.is_none()));
    }

    #[test]
    fn an_admin_write_reads_kv_s_metadata_not_its_document() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        let before = w.kv.values_read();
        w.write(Action::Patch, json!({"featureFlags": {"b": true}}), None)
            .unwrap();
        assert_eq!(
            w.kv.values_read(),
            before,
            "KV's copy has a version: not transferred"
        );
    }

    #[test]
    fn a_row_stays_under_d1_s_row_limit() {
        let since = Rebuilt {
            head: StoredVersion {
                version: 9,
                document: String::new(),
            },
            at: Millis(0),
            patches: SNAPSHOT_EVERY,
            patch_bytes: 0,
        };
        assert!(snapshot_due(Some(&since), 10, 1_000_000));
        // A large patch of a large config leaves its snapshot to a later patch.
        assert!(!snapshot_due(Some(&since), 1_000_000, 1_000_000));
        // The first version must hold its base: a patch that large is refused, naming why.
        assert!(snapshot_due(None, 1_000_000, 1_000_000));
        let (change, document) = ("x".repeat(1_000_000), "y".repeat(1_000_000));
        let entry = Entry {
            at: Millis(0),
            actor: "admin",
            action: Action::Patch,
            base: 0,
            change: &change,
            document: Some(&document),
        };
        let refused = row_fits(&entry).unwrap_err().to_string();
        assert!(
            refused.contains("2000000 bytes in one history row"),
            "{refused}"
        );
        assert!(row_fits(&Entry {
            document: None,
            ..entry
        })
        .is_ok());
    }

    #[test]
    fn a_rollback_to_a_patched_version_restores_it_and_stores_its_document() {
        let w = World::new();
        w.write(Action::Put, json!({"featureFlags": {"a": true}}), None)
            .unwrap();
        let two = w.write(Action::Patch, json!({"featureFlags": {"b": true}}), None);
        let two = two.unwrap().config.to_json().unwrap();
        w.write(Action::Patch, json!({"featureFlags": {"b": null}}), None)
            .unwrap();
        assert!(w.db.rows.borrow()[1..].iter().all(|r| r.document.is_none()));
        let back = w
            .write(Action::Rollback, json!({"version": 2}), None)
            .unwrap();
        assert_eq!(back.config.version, 4);
        let four = block_on(rebuild(&w.db, None)).unwrap().unwrap().head;
        assert_eq!((four.version, &four.document), (4, &two));
        assert!(w.db.rows.borrow()[3].document.is_some());
    }

    #[test]
    fn the_first_version_holds_the_seed_it_patched() {
        let w = World::new();
        w.kv.insert("config:app", r#"{"featureFlags":{"seeded":true}}"#);
        w.write(Action::Patch, json!({"featureFlags": {"b": true}}), None)
            .unwrap();
        assert!(w.db.rows.borrow()[0].document.is_some());
        let one = block_on(rebuild(&w.db, Some(1))).unwrap().unwrap().head;
        assert!(one.document.contains("seeded") && one.document.contains("\"b\""));
    }

    /// A flag off until 5,000 ms, when a scheduled definition switches it on (the World's
    /// clock starts at 1,000).
    fn scheduled() -> Value {
        json!({"featureFlags": {"s": {"variants": {"a": 1, "b": 2}, "defaultVariant": "a",
            "schedule": [{"at": 5000, "enabled": true, "set": {"variants": {"c": 3}, "defaultVariant": "c"}}]}}})
    }

    #[test]
    fn a_schedule_entry_is_recorded_once_as_a_version_when_first_served_after_it() {
        let w = World::new();
        w.write(Action::Put, scheduled(), None).unwrap();
        block_on(settle(&w.stores(), Millis(4_999)));
        assert_eq!(w.db.rows.borrow().len(), 1, "nothing is due before 5,000");
        block_on(settle(&w.stores(), Millis(5_000)));
        let (version, actor, action) = last_entry(&w);
        assert_eq!(
            (version, actor.as_str(), action.as_str()),
            (Some(2), "schedule", "patch")
        );
        let head = block_on(rebuild(&w.db, None))
            .unwrap()
            .unwrap()
            .head
            .document;
        let flag = &json::read(&head).unwrap()["featureFlags"]["s"];
        assert_eq!(flag["variants"], json!({"c": 3}));
        assert!(flag.get("schedule").is_none() && flag["enabled"] == json!(true));
        assert_eq!((w.kv_version(), serve(&w).version), (2, 2));
        block_on(settle(&w.stores(), Millis(6_000)));
        assert_eq!(w.db.rows.borrow().len(), 2, "settled once");
    }

    #[test]
    fn a_write_applies_entries_already_due_so_the_version_says_what_is_served() {
        let w = World::new();
        w.timer.set(6_000);
        let put = w.write(Action::Put, scheduled(), None).unwrap();
        let s = serde_json::to_value(put.config.feature_flags.get("s").unwrap()).unwrap();
        assert_eq!(
            (s["variants"].clone(), s.get("schedule")),
            (json!({"c": 3}), None)
        );
        let patch = json!({"featureFlags": {"t": scheduled()["featureFlags"]["s"].clone()}});
        let patched = w.write(Action::Patch, patch, None).unwrap();
        assert!(!patched.config.switch_due(Millis(6_000)));
        // The patch's row records the flag as applied: the history rebuilds what was served.
        let head = block_on(rebuild(&w.db, None)).unwrap().unwrap().head;
        assert_eq!(
            (head.version, head.document),
            (2, patched.config.to_json().unwrap())
        );
        assert_eq!(w.db.rows.borrow().len(), 2);
    }

    #[test]
    fn a_rollback_wins_over_schedule_entries_that_took_effect_since_its_version() {
        let w = World::new();
        w.write(Action::Put, scheduled(), None).unwrap();
        w.timer.set(6_000);
        block_on(settle(&w.stores(), Millis(6_000)));
        let back = w
            .write(Action::Rollback, json!({"version": 1}), None)
            .unwrap();
        assert_eq!(back.config.version, 3);
        let flag = &back.config.feature_flags;
        let s = serde_json::to_value(flag.get("s").unwrap()).unwrap();
        // As version 1 served it (written at 1,000: before the entry), and nothing left due.
        assert_eq!(
            (s["variants"].clone(), s["enabled"].clone()),
            (json!({"a": 1, "b": 2}), json!(false))
        );
        assert!(s.get("schedule").is_none() && !back.config.switch_due(Millis(9_000)));
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
        assert_eq!(
            block_on(rebuild(&w.db, None))
                .unwrap()
                .unwrap()
                .head
                .version,
            1
        );
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
