//! The app config (`config:app` in KV): typed schema, validation that names the bad field,
//! the PATCH merge, and the isolate's copy.
//!
//! Reads cost almost nothing: the last good config is kept in the isolate ([`ConfigCache`])
//! for [`CACHE_MS`] (5 s). A write through this isolate replaces that copy at once; other
//! isolates see a write after at most `CACHE_MS` plus KV's own propagation (up to ~60 s
//! between locations). If KV fails, the last good config (or the defaults) keeps being
//! served.
//!
//! The KV entry's metadata `{"version": N}` names the version of the audited history
//! (`domain::versions`) it holds; a config put into KV by hand (a seed) has none and is
//! version 0. An isolate never trades its copy for an older version read from KV, which
//! can lag behind a write this isolate made.

use crate::domain::error::{DomainError, DomainResult};
use crate::domain::flags::{check_prerequisites, EvalContext, Flag, Reason};
use crate::domain::ids::FlagName;
use crate::domain::json::{self, deny_unknown, object};
use crate::domain::kv::{Kv, KvKey};
pub use crate::domain::named::Named;
use crate::domain::time::Millis;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Where the config lives in KV.
pub const KV_KEY: KvKey = KvKey::fixed("config:app");
/// How long an isolate trusts its copy of the config before re-reading KV.
pub const CACHE_MS: i64 = 5_000;
/// The limit of a group that has none of its own and no `default`.
pub const DEFAULT_LIMIT: u32 = 100;
/// The whole config, as stored JSON, is at most this many bytes (about 5,000 targeted
/// flags): a history row holds a `PUT`'s body and the document, under D1's 2 MB row limit.
/// Config writes take bodies this large. An isolate parses it only when its version changed.
pub const MAX_CONFIG_BYTES: usize = 1_900_000;
const MAX_LIMIT: u64 = 1_000_000;
const MAX_SECONDS: u64 = 86_400;

/// The app config, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConfig {
    /// Flag name → a boolean, or a flag with variants (see `domain::flags`).
    pub feature_flags: Named<Flag>,
    /// Rate-limit group → requests per window; `default` applies to unlisted groups.
    pub rate_limits: Named<u32>,
    /// While true, every gated operation is refused for maintenance.
    pub maintenance_mode: bool,
    /// Groups counted exactly in D1 rather than approximately in KV.
    pub strict_rate_limits: Vec<String>,
    /// The fixed rate-limit window.
    pub rate_limit_window_seconds: u32,
    /// The SWR cache's freshness for user profiles.
    pub cache_ttl_seconds: u32,
    /// A session unused for this long is refused (idle timeout).
    pub session_idle_seconds: u32,
    /// A session is refused this long after it was minted, used or not (absolute timeout).
    pub session_absolute_seconds: u32,
    /// A session in use has its idle deadline moved at most once per this many seconds.
    pub renew_after_seconds: u32,
    /// Whether limited responses also carry `RateLimit-Limit`, `-Remaining` and `-Reset`.
    pub legacy_rate_limit_headers: bool,
    /// The version of the history this document is (0: never written by an admin).
    /// Not part of the document.
    #[serde(skip)]
    pub version: u64,
    /// When the first schedule entry of any flag takes effect (found when the document is
    /// read, so a request asks in O(1) whether one is due: [`ConfigCache::settle_due`]).
    #[serde(skip)]
    pub next_switch: Option<u64>,
}
impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            feature_flags: Named::default(),
            rate_limits: Named::from_iter([("default".to_string(), DEFAULT_LIMIT)]),
            maintenance_mode: false,
            strict_rate_limits: Vec::new(),
            rate_limit_window_seconds: 60,
            cache_ttl_seconds: 300,
            session_idle_seconds: 24 * 3600,
            session_absolute_seconds: 7 * 24 * 3600,
            renew_after_seconds: 3600,
            legacy_rate_limit_headers: true,
            version: 0,
            next_switch: None,
        }
    }
}

impl AppConfig {
    /// A whole document (`PUT`, or what KV holds): missing fields take their defaults.
    pub fn from_document(doc: &Value) -> DomainResult<Self> {
        apply(AppConfig::default(), doc, Mode::Replace)
    }

    /// A `PATCH`: maps merge key by key (`null` removes a key), scalars and the
    /// `strictRateLimits` list replace; a flag is replaced whole.
    pub fn patched(&self, patch: &Value) -> DomainResult<Self> {
        self.clone().into_patched(patch)
    }

    /// [`AppConfig::patched`], consuming this config (no copy of it is made).
    pub fn into_patched(self, patch: &Value) -> DomainResult<Self> {
        apply(self, patch, Mode::Merge)
    }

    /// The document as stored JSON.
    pub fn to_json(&self) -> DomainResult<String> {
        serde_json::to_string(self).map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Whether a schedule entry has taken effect at `now` that the document still holds.
    pub fn switch_due(&self, now: Millis) -> bool {
        self.next_switch
            .is_some_and(|at| i64::try_from(at).is_ok_and(|at| at <= now.0))
    }

    /// The patch that settles every flag whose schedule has entries up to `drop_until`
    /// ([`crate::domain::flags::FlagDef::settled`]), as a merge patch's JSON text (written as
    /// text: serialising into a `Value` would link its serialiser); `None` when there is none.
    pub fn settle_patch(&self, apply_until: Millis, drop_until: Millis) -> Option<String> {
        if !self.switch_due(drop_until) {
            return None;
        }
        let mut patch = String::from("{\"featureFlags\":{");
        for (name, flag) in self.feature_flags.iter() {
            let Flag::Variants(def) = flag else {
                continue;
            };
            if let Some(settled) = def.settled(apply_until, drop_until) {
                if !patch.ends_with('{') {
                    patch.push(',');
                }
                patch.push_str(&json::quoted(name));
                patch.push(':');
                patch.push_str(&serde_json::to_string(&settled).ok()?);
            }
        }
        patch.push_str("}}");
        Some(patch)
    }

    /// Whether flag `name` is on for an empty context at `now` (an unknown flag is off; see
    /// [`Flag::is_on`]).
    pub fn flag(&self, name: &FlagName, now: Millis) -> bool {
        let context = EvalContext {
            now,
            ..EvalContext::default()
        };
        self.feature_flags
            .get(name.as_str())
            .is_some_and(|f| f.is_on(&self.feature_flags, &context))
    }

    /// The limit of a rate-limit group: its own entry, else `default`.
    pub fn limit_for(&self, group: &str) -> u32 {
        self.rate_limits
            .get(group)
            .or_else(|| self.rate_limits.get("default"))
            .copied()
            .unwrap_or(DEFAULT_LIMIT)
    }

    /// Whether `group` is counted exactly (in D1).
    pub fn is_strict(&self, group: &str) -> bool {
        self.strict_rate_limits.iter().any(|g| g == group)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Replace,
    Merge,
}

const FIELDS: [&str; 6] = [
    "featureFlags",
    "rateLimits",
    "maintenanceMode",
    "strictRateLimits",
    "rateLimitWindowSeconds",
    "cacheTtlSeconds",
];

/// The earliest schedule entry of any flag.
fn next_switch(flags: &Named<Flag>) -> Option<u64> {
    let scheduled = flags.iter().filter_map(|(_, f)| match f {
        Flag::Variants(def) => def.next_switch(),
        Flag::Bool(_) => None,
    });
    scheduled.min()
}

/// The fields a PATCH merges entry by entry (`null` removes an entry); it replaces the others.
const MAPS: [&str; 2] = ["featureFlags", "rateLimits"];

/// Merges a patch into a stored document as a PATCH merges it into the config
/// (`featureFlags` and `rateLimits` entry by entry, other fields replaced), without
/// validating: the history's patches were validated when written
/// ([`crate::domain::versions::rebuild`]).
pub fn merge_document(doc: &mut Value, patch: &Value) {
    let (Some(doc), Some(patch)) = (doc.as_object_mut(), patch.as_object()) else {
        return;
    };
    for (field, value) in patch {
        let entries = value.as_object().filter(|_| MAPS.contains(&field.as_str()));
        let Some(entries) = entries else {
            doc.insert(field.clone(), value.clone());
            continue;
        };
        // Rebuilt rather than edited in place: `Map::remove` links the B-tree's rebalancing.
        let kept = match doc.get_mut(field).map(std::mem::take) {
            Some(Value::Object(old)) => old,
            _ => Map::new(),
        };
        let mut merged = Map::new();
        for (name, v) in kept {
            if !entries.contains_key(&name) {
                merged.insert(name, v);
            }
        }
        for (name, v) in entries.iter().filter(|(_, v)| !v.is_null()) {
            merged.insert(name.clone(), v.clone());
        }
        doc.insert(field.clone(), Value::Object(merged));
    }
}

fn apply(cfg: AppConfig, doc: &Value, mode: Mode) -> DomainResult<AppConfig> {
    apply_object(cfg, object(doc)?, mode, None)
}

/// [`apply`] to a document's members. `flags`: its `featureFlags`, when they were read from
/// text one flag at a time ([`read_document`]), each through [`merge_entry`] as here.
fn apply_object(
    mut cfg: AppConfig,
    obj: &Map<String, Value>,
    mode: Mode,
    flags: Option<DomainResult<Named<Flag>>>,
) -> DomainResult<AppConfig> {
    deny_unknown(obj, &[&FIELDS[..], &SESSION_FIELDS[..]].concat(), "")?;
    if let Some(flags) = flags {
        cfg.feature_flags = flags?;
        check_prerequisites(&cfg.feature_flags)?;
    } else if let Some(v) = obj.get("featureFlags") {
        merge_map(&mut cfg.feature_flags, v, "featureFlags", mode, Flag::parse)?;
        check_prerequisites(&cfg.feature_flags)?;
    }
    if let Some(v) = obj.get("rateLimits") {
        merge_map(&mut cfg.rate_limits, v, "rateLimits", mode, |f, _, v| {
            int(f, v, 1, MAX_LIMIT)
        })?;
        if !cfg.rate_limits.contains_key("default") {
            cfg.rate_limits.insert("default".into(), DEFAULT_LIMIT);
        }
    }
    if let Some(v) = obj.get("maintenanceMode") {
        cfg.maintenance_mode = v
            .as_bool()
            .ok_or_else(|| DomainError::invalid("maintenanceMode", "must be a boolean"))?;
    }
    if let Some(v) = obj.get("strictRateLimits") {
        cfg.strict_rate_limits = group_list(v)?;
    }
    if let Some(v) = obj.get("rateLimitWindowSeconds") {
        cfg.rate_limit_window_seconds = int("rateLimitWindowSeconds", v, 1, MAX_SECONDS)?;
    }
    if let Some(v) = obj.get("cacheTtlSeconds") {
        cfg.cache_ttl_seconds = int("cacheTtlSeconds", v, 1, MAX_SECONDS)?;
    }
    apply_sessions(&mut cfg, obj)?;
    cfg.next_switch = next_switch(&cfg.feature_flags);
    let len = cfg.to_json()?.len();
    if len > MAX_CONFIG_BYTES {
        let problem = format!("the config would be {len} bytes of JSON, over {MAX_CONFIG_BYTES}");
        return Err(DomainError::invalid("config", &problem));
    }
    Ok(cfg)
}

/// Session lifetime and rate-limit header settings.
const SESSION_FIELDS: [&str; 4] = [
    "sessionIdleSeconds",
    "sessionAbsoluteSeconds",
    "renewAfterSeconds",
    "legacyRateLimitHeaders",
];
/// The longest session timeout: a year.
const MAX_SESSION_SECONDS: u64 = 365 * 86_400;

/// The session fields: timeouts of 60 s (KV's shortest TTL) to a year, a renewal interval
/// of 1 s to a day and shorter than the idle timeout (else a session in use would idle out).
fn apply_sessions(cfg: &mut AppConfig, obj: &Map<String, Value>) -> DomainResult<()> {
    if let Some(v) = obj.get("sessionIdleSeconds") {
        cfg.session_idle_seconds = int("sessionIdleSeconds", v, 60, MAX_SESSION_SECONDS)?;
    }
    if let Some(v) = obj.get("sessionAbsoluteSeconds") {
        cfg.session_absolute_seconds = int("sessionAbsoluteSeconds", v, 60, MAX_SESSION_SECONDS)?;
    }
    if let Some(v) = obj.get("renewAfterSeconds") {
        cfg.renew_after_seconds = int("renewAfterSeconds", v, 1, MAX_SECONDS)?;
    }
    if let Some(v) = obj.get("legacyRateLimitHeaders") {
        cfg.legacy_rate_limit_headers = v
            .as_bool()
            .ok_or_else(|| DomainError::invalid("legacyRateLimitHeaders", "must be a boolean"))?;
    }
    if cfg.renew_after_seconds >= cfg.session_idle_seconds {
        return Err(DomainError::invalid(
            "renewAfterSeconds",
            "must be less than sessionIdleSeconds",
        ));
    }
    Ok(())
}

fn merge_map<T>(
    map: &mut Named<T>,
    v: &Value,
    field: &str,
    mode: Mode,
    parse: impl Fn(&str, &str, &Value) -> DomainResult<T>,
) -> DomainResult<()> {
    let entries: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| DomainError::invalid(field, "must be an object"))?;
    if mode == Mode::Replace {
        map.clear();
    }
    for (k, v) in entries {
        merge_entry(map, field, k, v, mode, &parse)?;
    }
    Ok(())
}

/// One member `k` of the map at `field`: its name checked, then removed (`null` in a
/// merge) or parsed and set.
fn merge_entry<T>(
    map: &mut Named<T>,
    field: &str,
    k: &str,
    v: &Value,
    mode: Mode,
    parse: &impl Fn(&str, &str, &Value) -> DomainResult<T>,
) -> DomainResult<()> {
    let name = json::member(field, k);
    FlagName::parse(&name, k)?;
    if v.is_null() && mode == Mode::Merge {
        map.remove(k);
    } else {
        map.insert(k.to_string(), parse(&name, k, v)?);
    }
    Ok(())
}

/// An integer in `min..=max`. A number written with a zero fraction (`60.0`) is that integer,
/// as JSON Schema's `integer` has it; any other fraction is refused.
fn int(field: &str, v: &Value, min: u64, max: u64) -> DomainResult<u32> {
    let n = json::whole_number(v).filter(|n| (min..=max).contains(n));
    n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        DomainError::invalid(field, &format!("must be an integer from {min} to {max}"))
    })
}

fn group_list(v: &Value) -> DomainResult<Vec<String>> {
    let items = v.as_array().ok_or_else(|| {
        DomainError::invalid("strictRateLimits", "must be an array of group names")
    })?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("strictRateLimits[{i}]");
        let s = item
            .as_str()
            .ok_or_else(|| DomainError::invalid(&field, "must be a string"))?;
        let name = FlagName::parse(&field, s)?;
        if !out.iter().any(|g| g == name.as_str()) {
            out.push(name.as_str().to_string());
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// The isolate's copy.

/// The isolate's copy of the config and when it was read. Isolate state (see `isolate.rs`).
#[derive(Debug, Default)]
pub struct ConfigCache {
    copy: RefCell<Option<(Rc<AppConfig>, Millis)>>,
    /// An unversioned document KV held that D1 has not been asked about yet (its hash and
    /// text): see [`crate::domain::versions::adopt`].
    unversioned: RefCell<Option<(u64, String)>>,
    /// The hash of the last unversioned document D1 was asked about (0: none).
    checked: Cell<u64>,
    /// When a client's newer version last made the copy expire ([`ConfigCache::want`]).
    wanted_at: Cell<Millis>,
    /// The newest version a client said it has seen, while newer than the copy.
    wanted: Cell<u64>,
    /// When the authority was last asked for a version KV did not have yet.
    asked_at: Cell<Millis>,
    /// The version whose due schedule entries this isolate last asked to settle, and when.
    settling: Cell<(u64, Millis)>,
    /// When a re-read of KV started, until it ends (see [`ConfigCache::settled`]).
    refreshing: Cell<Millis>,
    /// The hash ([`fingerprint`]) of the text without a version the copy was parsed from
    /// (0: the copy came from elsewhere): the same text read again is not parsed again.
    parsed_from: Cell<u64>,
}

/// How often an isolate may ask the authority (D1) for a version a client has seen and this
/// location's KV does not have yet.
pub const AUTHORITY_EVERY_MS: i64 = 10_000;
/// How long a re-read of KV counts as under way for [`ConfigCache::settled`] (a read whose
/// caller went away never clears its mark).
const REFRESH_WAIT_MS: i64 = 1_000;

/// How long an isolate waits before it asks again to settle the same version's schedule.
pub const SETTLE_AGAIN_MS: i64 = 60_000;

impl ConfigCache {
    /// Whether this request should settle `config`'s due schedule entries (after the
    /// response: [`crate::domain::versions::settle`]): once per version per isolate, again a
    /// minute later if the version is still served (the attempt failed).
    pub fn settle_due(&self, config: &AppConfig, now: Millis) -> bool {
        if !config.switch_due(now) {
            return false;
        }
        let (version, at) = self.settling.get();
        let due = version != config.version || now.ms_since(at) >= SETTLE_AGAIN_MS;
        if due {
            self.settling.set((config.version, now));
        }
        due
    }

    /// Makes `config` this isolate's copy, as read at `now`.
    pub fn remember(&self, config: Rc<AppConfig>, now: Millis) {
        *self.copy.borrow_mut() = Some((config, now));
        self.parsed_from.set(0);
    }

    fn get(&self) -> Option<(Rc<AppConfig>, Millis)> {
        self.copy.borrow().clone()
    }

    /// The copy, if it is younger than [`CACHE_MS`] at `now` or a re-read of KV is under way:
    /// what a caller that looks again soon takes rather than reading KV itself (the event
    /// streams of an isolate, which all tick at once: one of them re-reads KV, the others
    /// see the copy as it is). `None`: call [`current`].
    pub fn settled(&self, now: Millis) -> Option<Rc<AppConfig>> {
        let (config, at) = self.get()?;
        let refreshing = (0..REFRESH_WAIT_MS).contains(&now.ms_since(self.refreshing.get()));
        (now.ms_since(at) < CACHE_MS || refreshing).then_some(config)
    }

    /// The unversioned document the last read of KV found, if D1 has yet to be asked
    /// whether it is new (a `wrangler kv bulk put` from outside the Worker).
    pub fn take_unversioned(&self) -> Option<(u64, String)> {
        self.unversioned.borrow_mut().take()
    }

    /// A client has seen `version`: if the copy is older, the next read goes to KV, at most
    /// once a second per isolate (a client cannot make every request read KV).
    pub fn want(&self, version: u64, now: Millis) {
        if let Some((config, at)) = self.copy.borrow_mut().as_mut() {
            if config.version < version {
                self.wanted.set(self.wanted.get().max(version));
                if now.ms_since(self.wanted_at.get()) >= 1_000 {
                    self.wanted_at.set(now);
                    *at = Millis(now.0 - CACHE_MS);
                }
            }
        }
    }

    /// Whether to ask the authority for a version newer than `served`, which a client has
    /// seen: at most once per [`AUTHORITY_EVERY_MS`] per isolate, whatever clients claim.
    pub fn ask_authority(&self, served: u64, now: Millis) -> bool {
        let wanted = self.wanted.replace(0);
        let due = now.ms_since(self.asked_at.get()) >= AUTHORITY_EVERY_MS;
        if wanted > served && due {
            self.asked_at.set(now);
        }
        wanted > served && due
    }

    /// Records that D1 was asked about the unversioned document of `hash` and answered:
    /// later reads of the same document ask nothing.
    pub fn checked(&self, hash: u64) {
        self.checked.set(hash);
    }
}

/// FNV-1a of `text`, never 0: tells one unversioned document from another.
pub fn fingerprint(text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// The version named by a KV entry's metadata (`{"version": N}`); 0 without one.
pub fn version_of(metadata: Option<&Value>) -> u64 {
    metadata
        .and_then(|m| m.get("version"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Parses a stored document of `version`. A document that does not validate (a bad seed,
/// say) is `None`: logged and ignored rather than taking the service down.
pub fn parse_stored(text: &str, version: u64) -> Option<AppConfig> {
    let config = read_document(text).ok()?.ok()?;
    Some(AppConfig { version, ..config })
}

/// A whole document from its JSON text, as [`AppConfig::from_document`] reads it (the same
/// rules and messages), without ever holding the document as a tree: `featureFlags` is read
/// one flag at a time, each flag's JSON dropped once it is parsed. So reading a config costs
/// its text and the config it makes, not a `Value` of the whole (some 3 times the config).
/// The outer error: the text is not JSON.
pub fn read_document(text: &str) -> serde_json::Result<DomainResult<AppConfig>> {
    let mut reader = serde_json::Deserializer::from_slice(text.as_bytes());
    let read = Reader::Document.deserialize(&mut reader)?;
    reader.end()?;
    Ok(match read {
        Read::Document(rest, flags) => {
            apply_object(AppConfig::default(), &rest, Mode::Replace, flags)
        }
        _ => apply(AppConfig::default(), &Value::Null, Mode::Replace),
    })
}

/// What [`read_document`] reads where.
#[derive(Clone, Copy)]
enum Reader {
    /// The top level: `featureFlags` read by [`Reader::Flags`], every other member as a
    /// `Value` (each small).
    Document,
    /// `featureFlags`: flag by flag.
    Flags,
}

/// What a [`Reader`] read.
enum Read {
    /// The members other than `featureFlags`, and `featureFlags` if it was an object.
    Document(Map<String, Value>, Option<DomainResult<Named<Flag>>>),
    /// `featureFlags`, each flag parsed.
    Flags(DomainResult<Named<Flag>>),
    /// Not an object (whatever it was, [`apply`] refuses it with the same message). Only
    /// `deserialize_any` and the visits it makes are used, never a typed `deserialize_*`,
    /// whose error would describe the input and link float formatting.
    NotAnObject,
}

impl<'de> DeserializeSeed<'de> for Reader {
    type Value = Read;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Read, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader {
    type Value = Read;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a config document")
    }

    fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Read, A::Error> {
        match self {
            Reader::Document => read_members(members),
            Reader::Flags => read_flags(members),
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_str<E>(self, _: &str) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_unit<E>(self) -> Result<Read, E> {
        Ok(Read::NotAnObject)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Read, A::Error> {
        while items.next_element::<Value>()?.is_some() {}
        Ok(Read::NotAnObject)
    }
}

/// The document's members: `featureFlags` flag by flag, the others as `Value`s; the last of
/// a name written twice counts, as in a `Value`.
fn read_members<'de, A: MapAccess<'de>>(mut members: A) -> Result<Read, A::Error> {
    let (mut rest, mut flags) = (Map::new(), None);
    while let Some(key) = members.next_key::<String>()? {
        if key != "featureFlags" {
            rest.insert(key, members.next_value()?);
            continue;
        }
        // A `featureFlags` read flag by flag takes the place of any in `rest`.
        flags = match members.next_value_seed(Reader::Flags)? {
            Read::Flags(parsed) => Some(parsed),
            _ => {
                rest.insert(key, Value::Null);
                None
            }
        };
    }
    Ok(Read::Document(rest, flags))
}

/// `featureFlags`: each flag read as a `Value`, parsed and dropped before the next is read.
/// The error kept is that of the first refused name in name order, as [`merge_map`] meets it.
fn read_flags<'de, A: MapAccess<'de>>(mut entries: A) -> Result<Read, A::Error> {
    let mut flags = Named::default();
    let mut refused: Option<(String, DomainError)> = None;
    while let Some(name) = entries.next_key::<String>()? {
        let flag: Value = entries.next_value()?;
        let merged = merge_entry(
            &mut flags,
            "featureFlags",
            &name,
            &flag,
            Mode::Replace,
            &Flag::parse,
        );
        if let Err(e) = merged {
            if refused.as_ref().is_none_or(|(first, _)| name < *first) {
                refused = Some((name, e));
            }
        }
    }
    Ok(Read::Flags(match refused {
        Some((_, e)) => Err(e),
        None => Ok(flags),
    }))
}

/// The config for this request: the isolate's copy if younger than `CACHE_MS`, else KV
/// (unless KV holds an older version than the copy).
///
/// While the copy has a version, a refresh reads KV's metadata and transfers the document
/// only when KV's version is newer or none (a document written from outside the Worker):
/// one KV read either way, and no text crosses into the Wasm while nothing changed.
pub async fn current<K: Kv>(kv: &K, cache: &ConfigCache, now: Millis) -> Rc<AppConfig> {
    let cached = cache.get();
    if let Some((config, at)) = &cached {
        if (0..CACHE_MS).contains(&now.ms_since(*at)) {
            return config.clone();
        }
    }
    let last_good = cached.map(|(c, _)| c);
    // What the copy was parsed from, taken with the copy: another request may replace both
    // while this one reads KV.
    let mut parsed_from = cache.parsed_from.get();
    let held = last_good.as_ref().map_or(0, |c| c.version);
    let wanted = |meta: Option<&Value>| {
        let stored = version_of(meta);
        held == 0 || stored == 0 || stored > held
    };
    cache.refreshing.set(now);
    let read = kv.get_with_metadata_if(&KV_KEY, wanted).await;
    cache.refreshing.set(Millis(0));
    // Unless a newer document is read, the copy stays, and with it what it was parsed from.
    let mut config = last_good.clone();
    match read {
        Ok(Some((Some(text), meta))) => {
            let version = version_of(meta.as_ref());
            let hash = if version == 0 { fingerprint(&text) } else { 0 };
            let read = match hash != 0 && hash == parsed_from && config.is_some() {
                // The text without a version the copy was parsed from: not parsed again.
                true => None,
                false => read_stored(&text, version),
            };
            if let Some(read) = read {
                if last_good
                    .as_ref()
                    .is_none_or(|good| good.version <= read.version)
                {
                    (config, parsed_from) = (Some(Rc::new(read)), hash);
                }
            }
            if hash != 0 && hash != cache.checked.get() {
                *cache.unversioned.borrow_mut() = Some((hash, text));
            }
        }
        // The version this isolate holds, or an older one: the text was not read.
        Ok(Some((None, _))) => {}
        Ok(None) => (config, parsed_from) = (Some(Rc::new(AppConfig::default())), 0),
        Err(e) => {
            crate::log::warn_cause("config read failed, serving the last good config", &e.0);
        }
    }
    let config = config.unwrap_or_default();
    if let Some(newer) = written_meanwhile(cache, last_good.as_ref(), config.version) {
        return newer;
    }
    cache.remember(config.clone(), now);
    cache.parsed_from.set(parsed_from);
    config
}

/// A copy newer than `version` made this isolate's while KV was read (an admin write through
/// it): it stays, as the read began before it and what it found may be older.
fn written_meanwhile(
    cache: &ConfigCache,
    before: Option<&Rc<AppConfig>>,
    version: u64,
) -> Option<Rc<AppConfig>> {
    let (now_held, _) = cache.get()?;
    let replaced = before.is_none_or(|b| !Rc::ptr_eq(b, &now_held));
    (replaced && now_held.version > version).then_some(now_held)
}

/// Parses the document KV holds at `version`; `None` (logged) when it does not validate.
fn read_stored(text: &str, version: u64) -> Option<AppConfig> {
    let read = parse_stored(text, version);
    if read.is_none() {
        crate::log::warn("config:app in KV does not validate; serving the last good config");
    }
    read
}

/// What `GET /flags/:name` answers: `{"name", "enabled"}` for a boolean or unknown flag;
/// for a flag with variants also `value`, `variant`, `reason` (and `errorCode` when the
/// evaluation failed and the default variant was answered, `unmetPrerequisite` when a
/// prerequisite was not met).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlagView<'a> {
    /// The flag's name.
    pub name: &'a str,
    /// Whether it is on: see [`Flag::is_on`] (an unknown flag is off).
    pub enabled: bool,
    /// The variant's value (flags with variants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a Value>,
    /// The variant (flags with variants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<&'a str>,
    /// Why (flags with variants).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// The OpenFeature error code, with reason `ERROR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<&'static str>,
    /// The prerequisite flag that was not met, with reason `DEFAULT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmet_prerequisite: Option<&'a str>,
}

/// What anyone may read of the config (`GET /config`): the maintenance state, the rate limits
/// a client meets (each group's limit and the window), and each flag's value for an empty
/// context (a boolean flag's state). Never a flag's rules, rollout, other variants or disabled
/// state, which can name users and plans a client should not see, nor the operator's settings
/// (strict groups, cache and session lifetimes); the whole document is for admins.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicConfig<'a> {
    /// Flag name → its value for an empty context.
    pub feature_flags: PublicFlags<'a>,
    /// As in the config.
    pub rate_limits: &'a Named<u32>,
    /// As in the config.
    pub maintenance_mode: bool,
    /// As in the config.
    pub rate_limit_window_seconds: u32,
}

/// The flags of a [`PublicConfig`]: serialised as name → value, evaluated for an empty context
/// at the time given.
#[derive(Debug)]
pub struct PublicFlags<'a>(&'a Named<Flag>, Millis);

impl Serialize for PublicFlags<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let none = EvalContext {
            now: self.1,
            ..EvalContext::default()
        };
        s.collect_map(self.0.iter().map(|(name, flag)| {
            let e = flag
                .evaluate(self.0, &none)
                .unwrap_or_else(|_| flag.fallback(none.now));
            (name, e.value)
        }))
    }
}

impl AppConfig {
    /// What anyone may read of this config at `now`.
    pub fn public(&self, now: Millis) -> PublicConfig<'_> {
        PublicConfig {
            feature_flags: PublicFlags(&self.feature_flags, now),
            rate_limits: &self.rate_limits,
            maintenance_mode: self.maintenance_mode,
            rate_limit_window_seconds: self.rate_limit_window_seconds,
        }
    }

    /// The view of one flag, evaluated against `context`.
    pub fn flag_view<'a>(&'a self, name: &'a FlagName, context: &EvalContext) -> FlagView<'a> {
        let flag = self.feature_flags.get(name.as_str());
        let mut view = FlagView {
            name: name.as_str(),
            enabled: flag.is_some_and(|f| f.is_on(&self.feature_flags, context)),
            value: None,
            variant: None,
            reason: None,
            error_code: None,
            unmet_prerequisite: None,
        };
        if let Some(f @ Flag::Variants(_)) = flag {
            let (e, error_code) = match f.evaluate(&self.feature_flags, context) {
                Ok(e) => (e, None),
                Err(err) => (f.fallback(context.now), Some(err.code())),
            };
            view.value = Some(e.value);
            view.variant = Some(e.variant);
            view.reason = Some(e.reason);
            view.error_code = error_code;
            view.unmet_prerequisite = e.unmet;
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::storage::fake::{block_on, Hooked, Interleaving, MemKv};

    #[test]
    fn a_stored_patch_merges_maps_by_entry_and_replaces_other_fields() {
        let mut doc = json!({"featureFlags": {"a": true, "b": false}, "maintenanceMode": false,
            "strictRateLimits": ["x"]});
        let patch = json!({"featureFlags": {"a": null, "c": {"variants": {"on": 1}}},
            "rateLimits": {"g": 5, "h": null}, "maintenanceMode": true, "strictRateLimits": []});
        merge_document(&mut doc, &patch);
        assert_eq!(
            doc,
            json!({"featureFlags": {"b": false, "c": {"variants": {"on": 1}}},
                "rateLimits": {"g": 5}, "maintenanceMode": true, "strictRateLimits": []})
        );
    }

    use serde_json::json;

    #[test]
    fn defaults_match_the_contract() {
        let v = serde_json::to_value(AppConfig::default()).unwrap();
        assert_eq!(
            v,
            json!({"featureFlags":{}, "rateLimits":{"default":100}, "maintenanceMode":false,
                   "strictRateLimits":[], "rateLimitWindowSeconds":60, "cacheTtlSeconds":300,
                   "sessionIdleSeconds":86400, "sessionAbsoluteSeconds":604800,
                   "renewAfterSeconds":3600, "legacyRateLimitHeaders":true})
        );
    }

    #[test]
    fn seed_guide_document_is_valid_and_filled() {
        let c = AppConfig::from_document(&json!({"maintenanceMode": false})).unwrap();
        assert_eq!(c, AppConfig::default());
    }

    #[test]
    fn full_document_round_trips() {
        let doc = json!({"featureFlags": {"newCheckout": true}, "rateLimits": {"default": 100, "sessions": 10},
            "maintenanceMode": false, "strictRateLimits": ["sessions"],
            "rateLimitWindowSeconds": 60, "cacheTtlSeconds": 300, "sessionIdleSeconds": 1800,
            "sessionAbsoluteSeconds": 86400, "renewAfterSeconds": 600, "legacyRateLimitHeaders": false});
        let c = AppConfig::from_document(&doc).unwrap();
        assert_eq!(serde_json::to_value(&c).unwrap(), doc);
        assert!(c.flag(&FlagName::parse("n", "newCheckout").unwrap(), Millis(0)));
        assert!(!c.flag(&FlagName::parse("n", "unknown").unwrap(), Millis(0)));
        assert_eq!(c.limit_for("sessions"), 10);
        assert_eq!(c.limit_for("users"), 100);
        assert!(c.is_strict("sessions") && !c.is_strict("users"));
    }

    #[test]
    fn integers_may_be_written_with_a_zero_fraction() {
        let doc = json!({"rateLimits": {"x": 1388.0}, "cacheTtlSeconds": 60.0});
        let c = AppConfig::from_document(&doc).unwrap();
        assert_eq!(c.limit_for("x"), 1388);
        assert_eq!(c.cache_ttl_seconds, 60);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (json!({"maintenanceMode": "yes"}), "maintenanceMode"),
            (json!({"featureFlags": {"a": 1}}), "featureFlags.a"),
            (
                json!({"featureFlags": {"a": {"variants": {"x": 1}, "defaultVariant": "y"}}}),
                "featureFlags.a.defaultVariant",
            ),
            (json!({"featureFlags": []}), "featureFlags"),
            (
                json!({"featureFlags": {"bad name": true}}),
                "featureFlags.bad name",
            ),
            (json!({"rateLimits": {"default": 0}}), "rateLimits.default"),
            (json!({"rateLimits": {"x": 1_000_001}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": 1.5}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": -1}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": -1.0}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": 1_000_001.0}}), "rateLimits.x"),
            (
                json!({"rateLimitWindowSeconds": 0}),
                "rateLimitWindowSeconds",
            ),
            (
                json!({"rateLimitWindowSeconds": 86_401}),
                "rateLimitWindowSeconds",
            ),
            (json!({"cacheTtlSeconds": "300"}), "cacheTtlSeconds"),
            (json!({"strictRateLimits": "sessions"}), "strictRateLimits"),
            (json!({"strictRateLimits": [1]}), "strictRateLimits[0]"),
            (
                json!({"strictRateLimits": ["ok", "x y"]}),
                "strictRateLimits[1]",
            ),
            (json!({"surprise": true}), "surprise"),
        ];
        for (doc, field) in cases {
            match AppConfig::from_document(&doc) {
                Err(DomainError::Invalid(m)) => {
                    assert!(m.starts_with(&format!("{field}:")), "{m} vs {field}")
                }
                other => panic!("{doc} gave {other:?}"),
            }
        }
        assert!(matches!(
            AppConfig::from_document(&json!([])),
            Err(DomainError::Invalid(_))
        ));
    }

    #[test]
    fn stored_text_is_read_flag_by_flag_with_the_document_rules_and_messages() {
        let valid = [
            json!({}),
            json!({"maintenanceMode": true, "featureFlags": {"b": true, "a": false}}),
            json!({"featureFlags": {
                "z": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                      "rules": [{"when": {"plan": {"in": ["pro"]}}, "variant": "on"}],
                      "rollout": {"on": 10, "off": 90}, "prerequisites": {"a": ["on"]}},
                "a": true},
                "rateLimits": {"x": 5}, "strictRateLimits": ["x"], "sessionIdleSeconds": 7200}),
        ];
        for doc in valid {
            let text = doc.to_string();
            let read = read_document(&text).unwrap().unwrap();
            assert_eq!(read, AppConfig::from_document(&doc).unwrap(), "{text}");
            assert_eq!(parse_stored(&text, 7).map(|c| c.version), Some(7));
        }
        let bad_flag = json!({"variants": {"x": 1}, "defaultVariant": "y"});
        let refused = [
            json!({"featureFlags": {"a": 1}}),
            json!({"featureFlags": {"b": 1, "a": bad_flag, "c": true}}),
            json!({"featureFlags": {"c": true, "bad name": true, "b": 1}}),
            json!({"featureFlags": {"a": {"variants": {"on": 1}, "defaultVariant": "on",
                   "prerequisites": {"missing": ["on"]}}}}),
            json!({"featureFlags": []}),
            json!({"featureFlags": null}),
            json!({"featureFlags": "x"}),
            json!({"featureFlags": 1.5}),
            json!({"featureFlags": {"a": 1}, "surprise": true}),
            json!({"featureFlags": {"a": true}, "rateLimits": {"x": 0}}),
            json!({"maintenanceMode": "yes"}),
        ];
        for doc in refused {
            let text = doc.to_string();
            let want = AppConfig::from_document(&doc).unwrap_err();
            assert_eq!(read_document(&text).unwrap().unwrap_err(), want, "{text}");
            assert!(parse_stored(&text, 1).is_none());
        }
        // Text in any order (`json!` writes names sorted): the refusal of the first name in
        // name order, as a `Value` of the document meets it; a name written twice, the last.
        let unsorted = r#"{"featureFlags":{"c":1,"b":true,"a":{"variants":{}}},"x":1}"#;
        let refused = read_document(unsorted).unwrap().unwrap_err();
        assert_eq!(refused, DomainError::invalid("x", "unknown field"));
        let unsorted = r#"{"featureFlags":{"c":1,"b":true,"a":{"variants":{}}}}"#;
        let refused = read_document(unsorted).unwrap().unwrap_err();
        let doc: Value = serde_json::from_str(unsorted).unwrap();
        assert_eq!(refused, AppConfig::from_document(&doc).unwrap_err());
        assert!(matches!(&refused, DomainError::Invalid(m) if m.starts_with("featureFlags.a.")));
        let twice = r#"{"featureFlags":{"b":1},"featureFlags":{"z":true,"a":false,"a":true}}"#;
        let read = read_document(twice).unwrap().unwrap();
        let names: Vec<(&String, &Flag)> = read.feature_flags.iter().collect();
        assert_eq!(
            names,
            [
                (&"a".into(), &Flag::Bool(true)),
                (&"z".into(), &Flag::Bool(true))
            ]
        );
        // Not an object, or not JSON: no config either way.
        for doc in [
            json!([]),
            json!([{"featureFlags": {}}]),
            json!("x"),
            json!(null),
        ] {
            let want = AppConfig::from_document(&doc).unwrap_err();
            assert_eq!(read_document(&doc.to_string()).unwrap().unwrap_err(), want);
        }
        for text in ["not json", "{} {}", r#"{"featureFlags": {"a": true}"#, "[]"] {
            assert!(parse_stored(text, 1).is_none(), "{text}");
        }
        assert!(read_document("{} {}").is_err() && read_document("{").is_err());
    }

    #[test]
    fn boundaries_are_inclusive() {
        let c = AppConfig::from_document(&json!({"rateLimits": {"a": 1, "b": 1_000_000},
            "rateLimitWindowSeconds": 86_400, "cacheTtlSeconds": 1}))
        .unwrap();
        assert_eq!(c.rate_limits.get("b").copied().unwrap(), 1_000_000);
        assert_eq!(
            c.rate_limits.get("default").copied().unwrap(),
            100,
            "default is filled in"
        );
        let name = "n".repeat(64);
        assert!(AppConfig::from_document(&json!({"featureFlags": {name: true}})).is_ok());
        let name = "n".repeat(65);
        assert!(AppConfig::from_document(&json!({"featureFlags": {name: true}})).is_err());
    }

    #[test]
    fn patch_merges_maps_and_replaces_scalars() {
        let base = AppConfig::from_document(&json!({"featureFlags": {"a": true, "b": true},
            "rateLimits": {"default": 50, "users": 5}, "strictRateLimits": ["users"]}))
        .unwrap();
        let p = base
            .patched(
                &json!({"featureFlags": {"a": null, "c": false}, "rateLimits": {"users": 7},
            "maintenanceMode": true, "strictRateLimits": []}),
            )
            .unwrap();
        assert_eq!(
            p.feature_flags,
            Named::from_iter([
                ("b".into(), Flag::Bool(true)),
                ("c".into(), Flag::Bool(false))
            ])
        );
        assert_eq!(
            p.rate_limits,
            Named::from_iter([("default".into(), 50), ("users".into(), 7)])
        );
        assert!(p.maintenance_mode);
        assert!(p.strict_rate_limits.is_empty());
        assert_eq!(base.patched(&json!({})).unwrap(), base);
    }

    #[test]
    fn patch_refuses_null_scalars_and_leaves_base_untouched() {
        let base = AppConfig::default();
        assert!(base.patched(&json!({"maintenanceMode": null})).is_err());
        assert!(base.patched(&json!({"featureFlags": null})).is_err());
        assert!(base
            .patched(&json!({"featureFlags": {"ok": true}, "cacheTtlSeconds": 0}))
            .is_err());
        assert_eq!(base, AppConfig::default());
    }

    #[test]
    fn removing_default_limit_refills_it() {
        let p = AppConfig::default()
            .patched(&json!({"rateLimits": {"default": null}}))
            .unwrap();
        assert_eq!(
            p.rate_limits.get("default").copied().unwrap(),
            DEFAULT_LIMIT
        );
    }

    #[test]
    fn cache_reads_kv_once_per_window() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        kv.insert("config:app", r#"{"maintenanceMode":true}"#);
        for i in 0..50 {
            let c = block_on(current(&kv, &cache, Millis(1_000 + i * 50)));
            assert!(c.maintenance_mode);
        }
        assert_eq!(kv.reads(), 1, "2.5 s of traffic inside one 5 s window");
        block_on(current(&kv, &cache, Millis(1_000 + CACHE_MS)));
        assert_eq!(kv.reads(), 2);
    }

    #[test]
    fn kv_failure_keeps_the_last_good_config() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        kv.insert("config:app", r#"{"featureFlags":{"x":true}}"#);
        let first = block_on(current(&kv, &cache, Millis(0)));
        assert_eq!(*first.feature_flags.get("x").unwrap(), Flag::Bool(true));
        kv.fail(true);
        let later = block_on(current(&kv, &cache, Millis(CACHE_MS + 1)));
        assert_eq!(later, first);
    }

    #[test]
    fn absent_or_unreadable_config_gives_defaults() {
        let kv = MemKv::default();
        kv.fail(true);
        let cache = ConfigCache::default();
        assert_eq!(
            *block_on(current(&kv, &cache, Millis(0))),
            AppConfig::default()
        );
        let kv = MemKv::default();
        kv.insert("config:app", "not json");
        let cache = ConfigCache::default();
        assert_eq!(
            *block_on(current(&kv, &cache, Millis(0))),
            AppConfig::default()
        );
    }

    #[test]
    fn an_older_version_in_kv_never_replaces_a_newer_copy() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        let newer = AppConfig {
            maintenance_mode: true,
            version: 5,
            ..AppConfig::default()
        };
        cache.remember(Rc::new(newer), Millis(0));
        let put = |text: &str, version: u64| put_config(&kv, text, version);
        put("{}", 4);
        let c = block_on(current(&kv, &cache, Millis(CACHE_MS)));
        assert!(c.maintenance_mode && c.version == 5);
        put(r#"{"cacheTtlSeconds":7}"#, 6);
        let c = block_on(current(&kv, &cache, Millis(2 * CACHE_MS)));
        assert_eq!(
            (c.version, c.cache_ttl_seconds, c.maintenance_mode),
            (6, 7, false)
        );
    }

    /// Puts `text` into `kv` as `config:app` of `version` (none for 0), counting a write.
    fn put_config(kv: &MemKv, text: &str, version: u64) {
        let metadata = (version > 0)
            .then(|| crate::domain::kv::KvMetadata::new(json!({ "version": version })).unwrap());
        let opts = crate::domain::kv::PutOptions {
            ttl: None,
            metadata,
        };
        block_on(kv.put(&KV_KEY, text, opts)).unwrap();
    }

    #[test]
    fn a_refresh_at_the_same_version_reads_the_metadata_alone() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        put_config(&kv, r#"{"maintenanceMode":true}"#, 3);
        let first = block_on(current(&kv, &cache, Millis(0)));
        assert_eq!((first.version, kv.reads(), kv.values_read()), (3, 1, 1));
        for i in 1..=4 {
            let c = block_on(current(&kv, &cache, Millis(i * CACHE_MS)));
            assert!(Rc::ptr_eq(&c, &first), "the copy is kept, not parsed again");
        }
        assert_eq!(kv.reads(), 5, "one KV read per 5 s");
        assert_eq!(
            kv.values_read(),
            1,
            "none of the refreshes fetched the text"
        );
        // A newer version: its text is read once, in the same KV read as its metadata.
        put_config(&kv, r#"{"maintenanceMode":false}"#, 4);
        let c = block_on(current(&kv, &cache, Millis(5 * CACHE_MS)));
        assert_eq!((c.version, c.maintenance_mode), (4, false));
        assert_eq!((kv.reads(), kv.values_read()), (6, 2));
        block_on(current(&kv, &cache, Millis(6 * CACHE_MS)));
        assert_eq!((kv.reads(), kv.values_read()), (7, 2));
        // An older version (a location whose KV lags): neither read nor served.
        put_config(&kv, r#"{"maintenanceMode":true}"#, 2);
        let c = block_on(current(&kv, &cache, Millis(7 * CACHE_MS)));
        assert_eq!((c.version, c.maintenance_mode), (4, false));
        assert_eq!((kv.reads(), kv.values_read()), (8, 2));
    }

    #[test]
    fn while_a_refresh_is_under_way_the_copy_is_settled() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        assert_eq!(cache.settled(Millis(0)), None, "no copy yet");
        put_config(&kv, "{}", 1);
        let copy = block_on(current(&kv, &cache, Millis(0)));
        assert_eq!(cache.settled(Millis(CACHE_MS - 1)), Some(copy.clone()));
        assert_eq!(cache.settled(Millis(CACHE_MS)), None, "due: read KV");
        assert_eq!(cache.settled(Millis(-5)), Some(copy.clone()));
        // While a re-read is under way (another stream's, at the same tick): settled.
        let during = std::cell::RefCell::new(None);
        let on = Interleaving::at(0, || *during.borrow_mut() = cache.settled(Millis(CACHE_MS)));
        let hooked = Hooked {
            inner: &kv,
            on: &on,
        };
        block_on(current(&hooked, &cache, Millis(CACHE_MS)));
        assert_eq!(during.take(), Some(copy.clone()));
        // A re-read whose caller went away leaves its mark: it counts for a second.
        cache.refreshing.set(Millis(3 * CACHE_MS));
        assert_eq!(cache.settled(Millis(3 * CACHE_MS)), Some(copy.clone()));
        let last = Millis(3 * CACHE_MS + REFRESH_WAIT_MS - 1);
        assert_eq!(cache.settled(last), Some(copy));
        assert_eq!(cache.settled(last.plus_ms(1)), None);
        // A read that ended clears its mark.
        block_on(current(&kv, &cache, Millis(4 * CACHE_MS)));
        assert_eq!(cache.refreshing.get(), Millis(0));
    }

    #[test]
    fn a_document_without_a_version_is_always_read_for_adoption() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        put_config(&kv, "{}", 5);
        assert_eq!(block_on(current(&kv, &cache, Millis(0))).version, 5);
        assert!(cache.take_unversioned().is_none());
        // `wrangler kv bulk put` from outside the Worker: no metadata.
        let outside = r#"{"featureFlags":{"fromOutside":true}}"#;
        kv.insert("config:app", outside);
        let c = block_on(current(&kv, &cache, Millis(CACHE_MS)));
        assert_eq!(c.version, 5, "served as before until adopted");
        assert_eq!((kv.reads(), kv.values_read()), (2, 2), "the text was read");
        let (hash, text) = cache.take_unversioned().unwrap();
        assert_eq!((hash, text.as_str()), (fingerprint(outside), outside));
        // An isolate without a copy, or whose copy has no version, reads the text each time,
        // but parses it again only when it changed.
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        kv.insert("config:app", outside);
        let first = block_on(current(&kv, &cache, Millis(0)));
        let again = block_on(current(&kv, &cache, Millis(CACHE_MS)));
        assert_eq!((kv.reads(), kv.values_read()), (2, 2));
        assert!(
            Rc::ptr_eq(&first, &again),
            "the same text: the copy is kept"
        );
        assert!(
            cache.take_unversioned().is_some(),
            "still noted for adoption"
        );
        kv.insert("config:app", r#"{"maintenanceMode":true}"#);
        let changed = block_on(current(&kv, &cache, Millis(2 * CACHE_MS)));
        assert!(changed.maintenance_mode && changed.feature_flags.is_empty());
        kv.remove("config:app");
        assert_eq!(
            *block_on(current(&kv, &cache, Millis(3 * CACHE_MS))),
            AppConfig::default()
        );
        kv.insert("config:app", r#"{"maintenanceMode":true}"#);
        let back = block_on(current(&kv, &cache, Millis(4 * CACHE_MS)));
        assert!(
            back.maintenance_mode,
            "after the defaults, the same text is parsed again"
        );
        // A copy from elsewhere (a write through this isolate) is never taken for the text's.
        cache.remember(Rc::new(AppConfig::default()), Millis(4 * CACHE_MS));
        assert!(block_on(current(&kv, &cache, Millis(5 * CACHE_MS))).maintenance_mode);
    }

    #[test]
    fn a_refresh_that_ends_during_another_does_not_lend_it_its_text() {
        // Two requests of a new isolate read KV at once; the first ends while the second
        // waits for KV: the second parses the text itself, not taking the first's copy for
        // its own (it would have kept the defaults for good).
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        kv.insert("config:app", r#"{"rateLimits":{"default":7}}"#);
        let on = Interleaving::at(0, || {
            block_on(current(&kv, &cache, Millis(0)));
        });
        let hooked = Hooked {
            inner: &kv,
            on: &on,
        };
        let second = block_on(current(&hooked, &cache, Millis(0)));
        assert_eq!(second.limit_for("any"), 7);
        let later = block_on(current(&kv, &cache, Millis(CACHE_MS)));
        assert_eq!(later.limit_for("any"), 7);
    }

    #[test]
    fn a_refresh_that_began_before_a_write_through_this_isolate_does_not_put_back_the_old_copy() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        put_config(&kv, r#"{"cacheTtlSeconds":9}"#, 1);
        block_on(current(&kv, &cache, Millis(0)));
        // While the refresh waits for KV (which still holds version 1 here), an admin write
        // through this isolate makes version 2 its copy.
        let written = Rc::new(AppConfig {
            version: 2,
            cache_ttl_seconds: 10,
            ..AppConfig::default()
        });
        let on = Interleaving::at(0, || cache.remember(written.clone(), Millis(CACHE_MS)));
        let hooked = Hooked {
            inner: &kv,
            on: &on,
        };
        let c = block_on(current(&hooked, &cache, Millis(CACHE_MS)));
        assert_eq!(c.version, 2, "the refresh answers the newer copy");
        let next = block_on(current(&kv, &cache, Millis(CACHE_MS + 1)));
        assert_eq!(next.version, 2, "and leaves it the isolate's copy");
    }

    #[test]
    fn a_failed_or_absent_refresh_of_a_versioned_copy() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        put_config(&kv, r#"{"cacheTtlSeconds":9}"#, 2);
        let first = block_on(current(&kv, &cache, Millis(0)));
        kv.fail(true);
        let c = block_on(current(&kv, &cache, Millis(CACHE_MS)));
        assert!(Rc::ptr_eq(&c, &first), "KV failing: the last good config");
        kv.fail(false);
        put_config(&kv, "not json", 3);
        let c = block_on(current(&kv, &cache, Millis(2 * CACHE_MS)));
        assert!(
            Rc::ptr_eq(&c, &first),
            "a newer version that does not validate is ignored"
        );
        kv.remove("config:app");
        let c = block_on(current(&kv, &cache, Millis(3 * CACHE_MS)));
        assert_eq!(*c, AppConfig::default(), "absent: the defaults, as before");
    }

    #[test]
    fn prerequisites_are_checked_against_the_flags_after_every_write() {
        let base = AppConfig::from_document(&json!({"featureFlags": {
            "a": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                  "rollout": {"on": 100}, "prerequisites": {"b": ["on"]}},
            "b": true,
        }}))
        .unwrap();
        let refused = |patch: Value| match base.patched(&patch) {
            Err(DomainError::Invalid(m)) => m,
            other => panic!("{patch} gave {other:?}"),
        };
        assert_eq!(
            refused(json!({"featureFlags": {"b": null}})),
            "featureFlags.a.prerequisites.b: unknown flag \"b\""
        );
        let b = json!({"variants": {"x": 1}, "defaultVariant": "x"});
        assert!(refused(json!({"featureFlags": {"b": b}}))
            .starts_with("featureFlags.a.prerequisites.b[0]: unknown variant"));
        let back = json!({"variants": {"on": 1}, "defaultVariant": "on",
            "prerequisites": {"a": ["on"]}});
        assert_eq!(
            refused(json!({"featureFlags": {"b": back}})),
            "featureFlags.a.prerequisites: cycle a → b → a"
        );
        let view = |c: &AppConfig| {
            let a = FlagName::parse("name", "a").unwrap();
            serde_json::to_value(c.flag_view(&a, &EvalContext::default())).unwrap()
        };
        assert_eq!(view(&base)["variant"], "on");
        let off = base
            .patched(&json!({"featureFlags": {"b": false}}))
            .unwrap();
        assert_eq!(
            view(&off),
            json!({"name": "a", "enabled": false, "value": false, "variant": "off",
                   "reason": "DEFAULT", "unmetPrerequisite": "b"})
        );
        assert!(!off.flag(&FlagName::parse("name", "a").unwrap(), Millis(0)));
        assert_eq!(
            serde_json::to_value(off.public(Millis(0))).unwrap()["featureFlags"]["a"],
            false
        );
    }

    #[test]
    fn the_public_view_and_flag_switch_by_their_schedules() {
        let c = AppConfig::from_document(&json!({"featureFlags": {
            "launch": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                       "rollout": {"on": 100}, "schedule": [{"at": 5000, "enabled": true}]},
        }}))
        .unwrap();
        let launch = FlagName::parse("name", "launch").unwrap();
        assert!(!c.flag(&launch, Millis(4999)) && c.flag(&launch, Millis(5000)));
        let public = |now| {
            serde_json::to_value(c.public(Millis(now))).unwrap()["featureFlags"]["launch"].clone()
        };
        assert_eq!((public(4999), public(5000)), (json!(false), json!(true)));
    }

    #[test]
    fn flag_views_and_booleans_of_object_flags() {
        let c = AppConfig::from_document(&json!({"featureFlags": {
            "plain": true,
            "split": {"variants": {"on": true, "off": false}, "defaultVariant": "off", "rollout": {"on": 100}},
            "color": {"variants": {"red": "#f00"}, "defaultVariant": "red", "enabled": false},
        }}))
        .unwrap();
        let name = |n: &str| FlagName::parse("name", n).unwrap();
        let context = EvalContext::default();
        let plain = name("plain");
        assert_eq!(
            serde_json::to_value(c.flag_view(&plain, &context)).unwrap(),
            json!({"name": "plain", "enabled": true})
        );
        let split = name("split");
        assert_eq!(
            serde_json::to_value(c.flag_view(&split, &context)).unwrap(),
            json!({"name": "split", "enabled": true, "value": true, "variant": "on", "reason": "SPLIT"})
        );
        let color = name("color");
        assert_eq!(
            serde_json::to_value(c.flag_view(&color, &context)).unwrap(),
            json!({"name": "color", "enabled": false, "value": "#f00", "variant": "red", "reason": "DISABLED"})
        );
        let missing = name("missing");
        assert_eq!(
            serde_json::to_value(c.flag_view(&missing, &context)).unwrap(),
            json!({"name": "missing", "enabled": false})
        );
        assert!(
            c.flag(&split, Millis(0)) && c.flag(&plain, Millis(0)) && !c.flag(&color, Millis(0))
        );
    }

    #[test]
    fn the_public_view_has_values_for_an_empty_context_and_no_rules() {
        let c = AppConfig::from_document(&json!({"featureFlags": {
            "plain": true,
            "beta": {"variants": {"on": true, "off": false}, "defaultVariant": "off",
                     "rules": [{"when": {"country": {"in": ["NL"]}}, "variant": "on"}]},
            "split": {"variants": {"a": "x", "b": "y"}, "defaultVariant": "a",
                      "rollout": {"a": 50, "b": 50}},
            "color": {"variants": {"red": "#f00", "blue": "#00f"}, "defaultVariant": "red",
                      "enabled": false},
        }, "sessionIdleSeconds": 7200, "strictRateLimits": ["sessions"]}))
        .unwrap();
        assert_eq!(
            serde_json::to_value(c.public(Millis(0))).unwrap(),
            json!({
                "featureFlags": {"beta": false, "color": "#f00", "plain": true, "split": "x"},
                "rateLimits": {"default": 100}, "maintenanceMode": false,
                "rateLimitWindowSeconds": 60,
            })
        );
    }

    #[test]
    fn a_rollout_without_targeting_key_answers_the_default_with_an_error_code() {
        let c = AppConfig::from_document(
            &json!({"featureFlags": {"split": {"variants": {"on": true, "off": false},
            "defaultVariant": "off", "rollout": {"on": 50, "off": 50}}}}),
        )
        .unwrap();
        let split = FlagName::parse("name", "split").unwrap();
        assert_eq!(
            serde_json::to_value(c.flag_view(&split, &EvalContext::default())).unwrap(),
            json!({"name": "split", "enabled": false, "value": false, "variant": "off", "reason": "ERROR",
                   "errorCode": "TARGETING_KEY_MISSING"})
        );
    }

    #[test]
    fn a_client_newer_version_expires_the_copy_and_asks_the_authority_at_most_every_10_s() {
        const T: i64 = 1_000_000_000;
        let kv = MemKv::default();
        let cache = ConfigCache::default();
        let copy = Rc::new(AppConfig {
            version: 3,
            ..AppConfig::default()
        });
        cache.remember(copy, Millis(T));
        cache.want(2, Millis(T + 100));
        assert!(
            !cache.ask_authority(3, Millis(T + 100)),
            "an older version asks nothing"
        );
        block_on(current(&kv, &cache, Millis(T + 200)));
        assert_eq!(kv.reads(), 0, "the copy is still trusted");
        cache.want(5, Millis(T + 1_000));
        block_on(current(&kv, &cache, Millis(T + 1_000)));
        assert_eq!(kv.reads(), 1, "a newer version re-reads KV at once");
        assert!(
            cache.ask_authority(3, Millis(T + 1_000)),
            "KV still has 3: ask D1"
        );
        cache.want(5, Millis(T + 2_000));
        assert!(
            !cache.ask_authority(3, Millis(T + 2_000)),
            "not again within 10 s"
        );
        cache.want(5, Millis(T + 1_000 + AUTHORITY_EVERY_MS));
        assert!(cache.ask_authority(3, Millis(T + 1_000 + AUTHORITY_EVERY_MS)));
    }

    #[test]
    fn the_whole_config_is_bounded() {
        let flag = json!({"variants": {"a": "x".repeat(1000)}, "defaultVariant": "a"});
        let doc = |n: usize| {
            let flags: Map<String, Value> =
                (0..n).map(|i| (format!("f{i}"), flag.clone())).collect();
            json!({ "featureFlags": flags })
        };
        match AppConfig::from_document(&doc(1900)) {
            Err(DomainError::Invalid(m)) => assert!(m.starts_with("config:"), "{m}"),
            other => panic!("not refused: {}", other.is_ok()),
        }
        assert!(AppConfig::from_document(&doc(1750)).is_ok(), "1.8 MB fits");
    }

    #[test]
    fn session_fields_are_validated_with_their_defaults() {
        let d = AppConfig::default();
        assert_eq!(
            (
                d.session_idle_seconds,
                d.session_absolute_seconds,
                d.renew_after_seconds
            ),
            (86_400, 604_800, 3_600)
        );
        assert!(d.legacy_rate_limit_headers);
        let ok = AppConfig::from_document(&json!({"sessionIdleSeconds": 60,
            "sessionAbsoluteSeconds": 31_536_000, "renewAfterSeconds": 59}))
        .unwrap();
        assert_eq!(ok.session_idle_seconds, 60);
        let cases = [
            (json!({"sessionIdleSeconds": 59}), "sessionIdleSeconds"),
            (
                json!({"sessionIdleSeconds": 31_536_001}),
                "sessionIdleSeconds",
            ),
            (json!({"sessionIdleSeconds": "3600"}), "sessionIdleSeconds"),
            (
                json!({"sessionAbsoluteSeconds": 0}),
                "sessionAbsoluteSeconds",
            ),
            (
                json!({"sessionAbsoluteSeconds": 1.5}),
                "sessionAbsoluteSeconds",
            ),
            (json!({"renewAfterSeconds": 0}), "renewAfterSeconds"),
            (json!({"renewAfterSeconds": 86_401}), "renewAfterSeconds"),
            (
                json!({"legacyRateLimitHeaders": "yes"}),
                "legacyRateLimitHeaders",
            ),
            (
                json!({"legacyRateLimitHeaders": null}),
                "legacyRateLimitHeaders",
            ),
            // A renewal interval at or over the idle timeout: sessions in use would idle out.
            (json!({"sessionIdleSeconds": 3600}), "renewAfterSeconds"),
            (json!({"renewAfterSeconds": 86_400}), "renewAfterSeconds"),
        ];
        for (doc, field) in cases {
            match AppConfig::from_document(&doc) {
                Err(DomainError::Invalid(m)) => {
                    assert!(m.starts_with(&format!("{field}:")), "{m} vs {field}")
                }
                other => panic!("{doc} gave {other:?}"),
            }
        }
        let patched = d
            .patched(&json!({"legacyRateLimitHeaders": false}))
            .unwrap();
        assert!(!patched.legacy_rate_limit_headers);
        assert_eq!(patched.session_idle_seconds, 86_400);
    }
}
