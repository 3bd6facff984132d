//! The app config (`config:app` in KV): typed schema, validation that names the bad field,
//! the PATCH merge, and the isolate's copy.
//!
//! Reads cost almost nothing: the last good config is kept in the isolate ([`ConfigCache`])
//! for [`CACHE_MS`] (5 s). A write through this isolate replaces that copy at once; other
//! isolates see a write after at most `CACHE_MS` plus KV's own propagation (up to ~60 s
//! between locations). If KV fails, the last good config (or the defaults) keeps being
//! served.

use crate::domain::ids::FlagName;
use crate::domain::json::{deny_unknown, object};
use crate::domain::kv::{Kv, KvKey, PutOptions, KV_WRITE_INTERVAL_MS};
use crate::domain::time::{Millis, Timer};
use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Where the config lives in KV.
pub const KV_KEY: KvKey = KvKey::fixed("config:app");
/// How long an isolate trusts its copy of the config before re-reading KV.
pub const CACHE_MS: i64 = 5_000;
/// The limit of a group that has none of its own and no `default`.
pub const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u64 = 1_000_000;
const MAX_SECONDS: u64 = 86_400;

/// The app config, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppConfig {
    /// Flag name → on/off.
    pub feature_flags: BTreeMap<String, bool>,
    /// Rate-limit group → requests per window; `default` applies to unlisted groups.
    pub rate_limits: BTreeMap<String, u32>,
    /// While true, every gated route answers 503 `maintenance`.
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
}
impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            feature_flags: BTreeMap::new(),
            rate_limits: BTreeMap::from([("default".to_string(), DEFAULT_LIMIT)]),
            maintenance_mode: false,
            strict_rate_limits: Vec::new(),
            rate_limit_window_seconds: 60,
            cache_ttl_seconds: 300,
            session_idle_seconds: 24 * 3600,
            session_absolute_seconds: 7 * 24 * 3600,
            renew_after_seconds: 3600,
            legacy_rate_limit_headers: true,
        }
    }
}

impl AppConfig {
    /// A whole document (`PUT`, or what KV holds): missing fields take their defaults.
    pub fn from_document(doc: &Value) -> ApiResult<Self> {
        apply(AppConfig::default(), doc, Mode::Replace)
    }

    /// A `PATCH`: maps merge key by key (`null` removes a key), scalars and the
    /// `strictRateLimits` list replace.
    pub fn patched(&self, patch: &Value) -> ApiResult<Self> {
        apply(self.clone(), patch, Mode::Merge)
    }

    /// Whether flag `name` is on (an unknown flag is off).
    pub fn flag(&self, name: &FlagName) -> bool {
        self.feature_flags
            .get(name.as_str())
            .copied()
            .unwrap_or(false)
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

fn apply(mut cfg: AppConfig, doc: &Value, mode: Mode) -> ApiResult<AppConfig> {
    let obj = object(doc)?;
    deny_unknown(obj, &[&FIELDS[..], &SESSION_FIELDS[..]].concat(), "")?;
    if let Some(v) = obj.get("featureFlags") {
        merge_map(&mut cfg.feature_flags, v, "featureFlags", mode, |f, v| {
            v.as_bool()
                .ok_or_else(|| ApiError::invalid(f, "must be a boolean"))
        })?;
    }
    if let Some(v) = obj.get("rateLimits") {
        merge_map(&mut cfg.rate_limits, v, "rateLimits", mode, |f, v| {
            int(f, v, 1, MAX_LIMIT)
        })?;
        cfg.rate_limits
            .entry("default".into())
            .or_insert(DEFAULT_LIMIT);
    }
    if let Some(v) = obj.get("maintenanceMode") {
        cfg.maintenance_mode = v
            .as_bool()
            .ok_or_else(|| ApiError::invalid("maintenanceMode", "must be a boolean"))?;
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
fn apply_sessions(cfg: &mut AppConfig, obj: &Map<String, Value>) -> ApiResult<()> {
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
            .ok_or_else(|| ApiError::invalid("legacyRateLimitHeaders", "must be a boolean"))?;
    }
    if cfg.renew_after_seconds >= cfg.session_idle_seconds {
        return Err(ApiError::invalid(
            "renewAfterSeconds",
            "must be less than sessionIdleSeconds",
        ));
    }
    Ok(())
}

fn merge_map<T>(
    map: &mut BTreeMap<String, T>,
    v: &Value,
    field: &str,
    mode: Mode,
    parse: impl Fn(&str, &Value) -> ApiResult<T>,
) -> ApiResult<()> {
    let entries: &Map<String, Value> = v
        .as_object()
        .ok_or_else(|| ApiError::invalid(field, "must be an object"))?;
    if mode == Mode::Replace {
        map.clear();
    }
    for (k, v) in entries {
        let name = format!("{field}.{k}");
        FlagName::parse(&name, k)?;
        if v.is_null() && mode == Mode::Merge {
            map.remove(k);
        } else {
            map.insert(k.clone(), parse(&name, v)?);
        }
    }
    Ok(())
}

fn int(field: &str, v: &Value, min: u64, max: u64) -> ApiResult<u32> {
    let n = v.as_u64().filter(|n| (min..=max).contains(n));
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ApiError::invalid(field, &format!("must be an integer from {min} to {max}")))
}

fn group_list(v: &Value) -> ApiResult<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| ApiError::invalid("strictRateLimits", "must be an array of group names"))?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = format!("strictRateLimits[{i}]");
        let s = item
            .as_str()
            .ok_or_else(|| ApiError::invalid(&field, "must be a string"))?;
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
}

impl ConfigCache {
    fn remember(&self, config: Rc<AppConfig>, now: Millis) {
        *self.copy.borrow_mut() = Some((config, now));
    }

    fn get(&self) -> Option<(Rc<AppConfig>, Millis)> {
        self.copy.borrow().clone()
    }
}

/// Parses what KV holds. A document that does not validate (a bad seed, say) is logged and
/// ignored rather than taking the service down.
fn parse_stored(text: &str) -> Option<AppConfig> {
    let doc = serde_json::from_str::<Value>(text).ok()?;
    AppConfig::from_document(&doc).ok()
}

/// The config for this request: the isolate's copy if younger than `CACHE_MS`, else KV.
pub async fn current<K: Kv>(kv: &K, cache: &ConfigCache, now: Millis) -> Rc<AppConfig> {
    let cached = cache.get();
    if let Some((config, at)) = &cached {
        if (0..CACHE_MS).contains(&now.ms_since(*at)) {
            return config.clone();
        }
    }
    let last_good = cached.map(|(c, _)| c);
    let config = match kv.get(&KV_KEY).await {
        Ok(Some(text)) => parse_stored(&text).map(Rc::new).or_else(|| {
            crate::log::warn("config:app in KV does not validate; serving the last good config");
            last_good.clone()
        }),
        Ok(None) => Some(Rc::new(AppConfig::default())),
        Err(e) => {
            crate::log::warn(&format!(
                "config read failed, serving the last good config: {}",
                e.0
            ));
            last_good
        }
    };
    let config = config.unwrap_or_default();
    cache.remember(config.clone(), now);
    config
}

/// Stores a new config and makes it this isolate's copy at once. KV refuses a second write
/// to one key within a second; two admin writes in quick succession are normal, so a refused
/// write is retried once after that second.
pub async fn store<K: Kv, T: Timer>(
    kv: &K,
    cache: &ConfigCache,
    timer: &T,
    config: AppConfig,
) -> ApiResult<Rc<AppConfig>> {
    let text = serde_json::to_string(&config).map_err(|e| ApiError::Internal(e.to_string()))?;
    if let Err(e) = kv.put(&KV_KEY, &text, PutOptions::default()).await {
        crate::log::warn(&format!("config write refused, retrying in 1 s: {}", e.0));
        timer.sleep(KV_WRITE_INTERVAL_MS).await;
        kv.put(&KV_KEY, &text, PutOptions::default()).await?;
    }
    let config = Rc::new(config);
    cache.remember(config.clone(), timer.now());
    Ok(config)
}

/// Reads the stored document straight from KV (not the isolate's copy): the base of a PATCH.
pub async fn load_fresh<K: Kv>(kv: &K) -> ApiResult<AppConfig> {
    match kv.get(&KV_KEY).await? {
        Some(text) => Ok(parse_stored(&text).unwrap_or_default()),
        None => Ok(AppConfig::default()),
    }
}

/// `PUT /admin/config`: validates a whole document and stores it.
pub async fn replace<K: Kv, T: Timer>(
    kv: &K,
    cache: &ConfigCache,
    timer: &T,
    doc: &Value,
) -> ApiResult<Rc<AppConfig>> {
    let config = AppConfig::from_document(doc)?;
    store(kv, cache, timer, config).await
}

/// `PATCH /admin/config`: merges into what KV holds now and stores the result.
pub async fn patch<K: Kv, T: Timer>(
    kv: &K,
    cache: &ConfigCache,
    timer: &T,
    patch: &Value,
) -> ApiResult<Rc<AppConfig>> {
    let config = load_fresh(kv).await?.patched(patch)?;
    store(kv, cache, timer, config).await
}

/// What `GET /flags/:name` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagView {
    /// The flag's name.
    pub name: String,
    /// Whether it is on (an unknown flag is off).
    pub enabled: bool,
}

impl AppConfig {
    /// The view of one flag.
    pub fn flag_view(&self, name: &FlagName) -> FlagView {
        FlagView {
            name: name.as_str().to_string(),
            enabled: self.flag(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::{block_on, FakeTimer, MemKv};
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
        assert!(c.flag(&FlagName::parse("n", "newCheckout").unwrap()));
        assert!(!c.flag(&FlagName::parse("n", "unknown").unwrap()));
        assert_eq!(c.limit_for("sessions"), 10);
        assert_eq!(c.limit_for("users"), 100);
        assert!(c.is_strict("sessions") && !c.is_strict("users"));
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (json!({"maintenanceMode": "yes"}), "maintenanceMode"),
            (json!({"featureFlags": {"a": 1}}), "featureFlags.a"),
            (json!({"featureFlags": []}), "featureFlags"),
            (
                json!({"featureFlags": {"bad name": true}}),
                "featureFlags.bad name",
            ),
            (json!({"rateLimits": {"default": 0}}), "rateLimits.default"),
            (json!({"rateLimits": {"x": 1_000_001}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": 1.5}}), "rateLimits.x"),
            (json!({"rateLimits": {"x": -1}}), "rateLimits.x"),
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
                Err(ApiError::InvalidRequest(m)) => {
                    assert!(m.starts_with(&format!("{field}:")), "{m} vs {field}")
                }
                other => panic!("{doc} gave {other:?}"),
            }
        }
        assert!(matches!(
            AppConfig::from_document(&json!([])),
            Err(ApiError::InvalidRequest(_))
        ));
    }

    #[test]
    fn boundaries_are_inclusive() {
        let c = AppConfig::from_document(&json!({"rateLimits": {"a": 1, "b": 1_000_000},
            "rateLimitWindowSeconds": 86_400, "cacheTtlSeconds": 1}))
        .unwrap();
        assert_eq!(c.rate_limits["b"], 1_000_000);
        assert_eq!(c.rate_limits["default"], 100, "default is filled in");
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
            BTreeMap::from([("b".into(), true), ("c".into(), false)])
        );
        assert_eq!(
            p.rate_limits,
            BTreeMap::from([("default".into(), 50), ("users".into(), 7)])
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
        assert_eq!(p.rate_limits["default"], DEFAULT_LIMIT);
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
        assert!(first.feature_flags["x"]);
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
    fn store_updates_this_isolate_at_once() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        let _ = block_on(current(&kv, &cache, Millis(0)));
        let c = AppConfig {
            maintenance_mode: true,
            ..AppConfig::default()
        };
        block_on(store(&kv, &cache, &FakeTimer::at(10), c)).unwrap();
        assert!(block_on(current(&kv, &cache, Millis(20))).maintenance_mode);
        assert_eq!(kv.reads(), 1);
        assert!(kv
            .get_raw("config:app")
            .unwrap()
            .contains("\"maintenanceMode\":true"));
    }

    #[test]
    fn a_write_kv_refuses_is_retried_once_after_a_second() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        let timer = FakeTimer::at(0);
        kv.fail_next_writes(1);
        let doc = json!({"maintenanceMode": true});
        assert!(block_on(replace(&kv, &cache, &timer, &doc)).is_ok());
        assert_eq!(timer.slept_ms(), KV_WRITE_INTERVAL_MS);
        assert_eq!(kv.writes(), 2);
        kv.fail_next_writes(2);
        assert!(matches!(
            block_on(replace(&kv, &cache, &timer, &doc)),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn patch_merges_into_what_kv_holds_not_the_isolate_copy() {
        let (kv, cache) = (MemKv::default(), ConfigCache::default());
        let timer = FakeTimer::at(0);
        block_on(current(&kv, &cache, Millis(0)));
        kv.insert("config:app", r#"{"featureFlags":{"other":true}}"#);
        let out = block_on(patch(
            &kv,
            &cache,
            &timer,
            &json!({"featureFlags": {"mine": true}}),
        ))
        .unwrap();
        assert_eq!(
            out.feature_flags.len(),
            2,
            "another isolate's write survives"
        );
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
                Err(ApiError::InvalidRequest(m)) => {
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
