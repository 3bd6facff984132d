//! User preferences without lost updates. D1 is the authority: a PATCH is one atomic
//! per-field upsert, so concurrent PATCHes of different fields all survive. KV
//! (`prefs:<userId>`) is the fast read path, refreshed after each write but never more than
//! once a second per key from an isolate (KV's limit): a burst is carried by D1, and the
//! isolate serves its own newest acknowledged write until the KV copy catches up.

use crate::app::App;
use crate::error::{ApiError, ApiResult, StoreResult};
use crate::http::{deny_unknown, object, read_json};
use crate::isolate::{begin_flight, kv_write_wait_ms, try_claim_kv_write};
use crate::reply::Reply;
use crate::router::pick;
use crate::storage::{Kv, PutOptions};
use crate::types::{KvKey, Ttl, UserId};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Request;

const KV_PREFIX: &str = "prefs:";
/// KV copies expire after 30 days without a write; D1 refills them on the next read.
const KV_TTL_SECONDS: u64 = 30 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prefs {
    pub theme: String,
    pub language: String,
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
    pub theme: Option<String>,
    pub language: Option<String>,
    pub notifications: Option<bool>,
}

impl PrefsPatch {
    pub fn is_empty(&self) -> bool {
        *self == PrefsPatch::default()
    }

    pub fn parse(body: &serde_json::Value) -> ApiResult<Self> {
        let obj = object(body)?;
        deny_unknown(obj, &["theme", "language", "notifications"], "")?;
        let mut p = PrefsPatch::default();
        if let Some(v) = obj.get("theme") {
            let t = v.as_str().filter(|t| *t == "light" || *t == "dark");
            p.theme = Some(
                t.ok_or_else(|| ApiError::invalid("theme", "must be \"light\" or \"dark\""))?
                    .to_string(),
            );
        }
        if let Some(v) = obj.get("language") {
            let l = v.as_str().filter(|l| is_language_tag(l));
            p.language = Some(
                l.ok_or_else(|| ApiError::invalid("language", "must be a BCP 47 language tag"))?
                    .to_string(),
            );
        }
        if let Some(v) = obj.get("notifications") {
            p.notifications = Some(
                v.as_bool()
                    .ok_or_else(|| ApiError::invalid("notifications", "must be a boolean"))?,
            );
        }
        Ok(p)
    }
}

/// A well-formed BCP 47 tag (RFC 5646 syntax, without the grandfathered irregular tags):
/// language (2-3 or 5-8 letters) then optional script, region, variants, extensions and a
/// private-use part; at most 35 characters.
pub fn is_language_tag(tag: &str) -> bool {
    if tag.is_empty() || tag.len() > 35 {
        return false;
    }
    let alpha = |s: &str| s.bytes().all(|b| b.is_ascii_alphabetic());
    let alnum = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut parts = tag.split('-').peekable();
    let Some(lang) = parts.next() else {
        return false;
    };
    let lang_ok = (alpha(lang) && (2..=3).contains(&lang.len()))
        || (alpha(lang) && (5..=8).contains(&lang.len()));
    if !lang_ok {
        return false;
    }
    let mut stage = 0; // 0: script/region allowed, 1: region allowed, 2: variants/extensions
    while let Some(p) = parts.next() {
        let len = p.len();
        if !alnum(p) || len == 0 || len > 8 {
            return false;
        }
        if len == 1 {
            // A singleton starts an extension (or `x` private use): it needs subtags after it.
            let private = p.eq_ignore_ascii_case("x");
            let mut count = 0;
            while let Some(next) = parts.peek() {
                if next.len() == 1 && !private {
                    break;
                }
                let ok = alnum(next) && next.len() <= 8 && (private || next.len() >= 2);
                if !ok {
                    return false;
                }
                count += 1;
                parts.next();
            }
            if count == 0 {
                return false;
            }
            stage = 3;
            continue;
        }
        if stage == 3 {
            return false;
        }
        let digit_start = p.bytes().next().is_some_and(|b| b.is_ascii_digit());
        let region = (len == 2 && alpha(p)) || (len == 3 && p.bytes().all(|b| b.is_ascii_digit()));
        let variant = len >= 5 || (len == 4 && digit_start);
        if stage == 0 && len == 4 && alpha(p) {
            stage = 1;
        } else if (stage <= 1 && region) || variant {
            stage = 2;
        } else {
            return false;
        }
    }
    true
}

/// A D1 row: `None` columns take the defaults, so changing a default reaches every user who
/// never set that field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrefsRow {
    pub theme: Option<String>,
    pub language: Option<String>,
    pub notifications: Option<bool>,
    pub version: i64,
}

impl PrefsRow {
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
    async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>>;
    /// Applies the patch in one atomic statement and returns the merged row with a version
    /// one higher than before.
    async fn merge(&self, user: &UserId, patch: &PrefsPatch, now: i64) -> StoreResult<PrefsRow>;
}

/// What KV holds under `prefs:<userId>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub prefs: Prefs,
    pub version: i64,
    /// When this copy was read from D1 (ms). Copies older than `REVALIDATE_MS` are served
    /// and re-read from D1 in the background.
    #[serde(default)]
    pub synced_at: i64,
}

impl Envelope {
    fn from_row(row: &PrefsRow, now: f64) -> Self {
        Envelope {
            prefs: row.prefs(),
            version: row.version,
            synced_at: now as i64,
        }
    }
}

/// KV writes from different isolates can land out of order (KV is last-writer-wins), so a
/// copy read more than a minute after it was synced is refreshed from D1 in the background:
/// a stale copy heals within a minute of being read.
pub const REVALIDATE_MS: f64 = 60_000.0;

thread_local! {
    /// Acknowledged writes whose KV copy is not written yet, newest version per user.
    static PENDING: RefCell<HashMap<String, Envelope>> = RefCell::new(HashMap::new());
}

fn pending(user: &UserId) -> Option<Envelope> {
    PENDING.with(|p| p.borrow().get(user.as_str()).cloned())
}

fn note_pending(user: &UserId, env: Envelope) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.get(user.as_str())
            .is_none_or(|old| old.version < env.version)
        {
            p.insert(user.as_str().to_string(), env);
        }
    });
}

fn clear_pending(user: &UserId, written_version: i64) {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.get(user.as_str())
            .is_some_and(|e| e.version <= written_version)
        {
            p.remove(user.as_str());
        }
    });
}

pub fn kv_key(user: &UserId) -> ApiResult<KvKey> {
    KvKey::new(KV_PREFIX, user.as_str())
}

async fn write_kv<K: Kv>(kv: &K, user: &UserId, env: &Envelope) -> ApiResult<()> {
    let text = serde_json::to_string(env).map_err(|e| ApiError::Internal(e.to_string()))?;
    kv.put(
        &kv_key(user)?,
        &text,
        PutOptions::ttl(Ttl::at_least_minimum(KV_TTL_SECONDS)),
    )
    .await?;
    clear_pending(user, env.version);
    Ok(())
}

/// Writes the KV copy if this isolate may write the key now; otherwise leaves it pending.
/// Returns how long to wait before a deferred write, if one is needed.
async fn sync_kv<K: Kv>(kv: &K, user: &UserId, env: Envelope, now: f64) -> ApiResult<Option<f64>> {
    note_pending(user, env);
    let key = kv_key(user)?;
    if !try_claim_kv_write(key.as_str(), now) {
        return Ok(Some(kv_write_wait_ms(key.as_str(), now)));
    }
    let latest = pending(user);
    if let Some(env) = latest {
        if let Err(e) = write_kv(kv, user, &env).await {
            crate::log::warn(&format!("prefs KV refresh deferred: {e}"));
            return Ok(Some(crate::isolate::KV_WRITE_INTERVAL_MS));
        }
    }
    Ok(None)
}

/// `GET /prefs`: this isolate's newest pending write, else KV, else D1 (written back).
pub async fn get<K: Kv, D: PrefsDb>(
    kv: &K,
    db: &D,
    user: &UserId,
    now: f64,
) -> ApiResult<(Prefs, Option<f64>)> {
    if let Some(env) = pending(user) {
        return Ok((env.prefs, None));
    }
    match kv.get(&kv_key(user)?).await {
        Ok(Some(text)) => {
            if let Ok(env) = serde_json::from_str::<Envelope>(&text) {
                let revalidate = now - env.synced_at as f64 >= REVALIDATE_MS;
                return Ok((env.prefs, revalidate.then_some(0.0)));
            }
        }
        Ok(None) => {}
        Err(e) => crate::log::warn(&format!("prefs KV read failed, asking D1: {}", e.0)),
    }
    let row = db.get(user).await?.unwrap_or_default();
    let env = Envelope::from_row(&row, now);
    let wait = sync_kv(kv, user, env.clone(), now).await?;
    Ok((env.prefs, wait))
}

/// `PATCH /prefs`: atomic merge in D1, then the KV refresh (now or deferred). An empty patch
/// writes nothing. Validation happens before, so a rejected PATCH changes nothing.
pub async fn patch<K: Kv, D: PrefsDb>(
    kv: &K,
    db: &D,
    user: &UserId,
    patch: &PrefsPatch,
    now: f64,
) -> ApiResult<(Prefs, Option<f64>)> {
    if patch.is_empty() {
        return get(kv, db, user, now).await;
    }
    let row = db.merge(user, patch, now as i64).await?;
    let env = Envelope::from_row(&row, now);
    let wait = sync_kv(kv, user, env.clone(), now).await?;
    Ok((env.prefs, wait))
}

/// What a deferred refresh achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// KV holds the newest state this isolate knows.
    Done,
    /// Try again in a second: the key's write window is closed, or a newer write is pending.
    Again,
    /// D1 or KV failed; the next read or write schedules a new refresh.
    Failed,
}

/// The deferred refresh: re-reads D1 (the newest state, whoever wrote it) and writes KV.
pub async fn flush<K: Kv, D: PrefsDb>(kv: &K, db: &D, user: &UserId, now: f64) -> Flush {
    let Ok(key) = kv_key(user) else {
        return Flush::Failed;
    };
    if !try_claim_kv_write(key.as_str(), now) {
        return Flush::Again;
    }
    let row = match db.get(user).await {
        Ok(row) => row.unwrap_or_default(),
        Err(e) => {
            crate::log::warn(&format!("prefs refresh could not read D1: {}", e.0));
            return Flush::Failed;
        }
    };
    note_pending(user, Envelope::from_row(&row, now));
    if let Some(latest) = pending(user) {
        if let Err(e) = write_kv(kv, user, &latest).await {
            crate::log::warn(&format!("prefs KV refresh failed: {e}"));
            return Flush::Failed;
        }
    }
    if pending(user).is_none() {
        Flush::Done
    } else {
        Flush::Again
    }
}

// ---------------------------------------------------------------------------------------
// Routes.

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Get,
    Patch,
}

pub fn resolve(method: &str, segs: &[&str]) -> Option<ApiResult<Endpoint>> {
    match segs {
        ["prefs"] => Some(pick(
            method,
            "GET, PATCH",
            vec![("GET", Endpoint::Get), ("PATCH", Endpoint::Patch)],
        )),
        _ => None,
    }
}

pub async fn serve(app: &App, ep: Endpoint, req: &mut Request) -> ApiResult<Reply> {
    let user = UserId::parse("userId", &app.session(req).await?.user_id)?;
    let now = app.now_f64();
    let (prefs, wait) = match ep {
        Endpoint::Get => get(&app.kv, &app.d1, &user, now).await?,
        Endpoint::Patch => {
            let p = PrefsPatch::parse(&read_json(req).await?)?;
            patch(&app.kv, &app.d1, &user, &p, now).await?
        }
    };
    if let Some(wait) = wait {
        schedule_flush(app, user, wait);
    }
    Ok(Reply::ok(&prefs))
}

/// Coalesces a burst: one background task per user and isolate writes KV once the key's
/// one-second window opens, and again until nothing newer is pending.
fn schedule_flush(app: &App, user: UserId, wait_ms: f64) {
    let Some(flight) = begin_flight(&format!("prefs-sync:{user}")) else {
        return;
    };
    let (kv, db) = (app.kv.detached(), app.d1.detached());
    app.spawn(async move {
        let mut wait = wait_ms;
        for _ in 0..10 {
            crate::app::sleep_ms(wait).await;
            if flush(&kv, &db, &user, crate::clock::now_ms()).await != Flush::Again {
                break;
            }
            wait = crate::isolate::KV_WRITE_INTERVAL_MS;
        }
        drop(flight);
    });
}

#[cfg(test)]
pub mod fake {
    use super::*;
    use crate::storage::fake::FakeDb;

    #[derive(Default)]
    pub struct MemPrefs {
        pub rows: RefCell<HashMap<String, PrefsRow>>,
        pub db: FakeDb,
    }

    impl PrefsDb for MemPrefs {
        async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>> {
            self.db.query()?;
            Ok(self.rows.borrow().get(user.as_str()).cloned())
        }
        async fn merge(&self, user: &UserId, p: &PrefsPatch, _now: i64) -> StoreResult<PrefsRow> {
            self.db.query()?;
            let mut rows = self.rows.borrow_mut();
            let row = rows.entry(user.to_string()).or_default();
            row.theme = p.theme.clone().or(row.theme.take());
            row.language = p.language.clone().or(row.language.take());
            row.notifications = p.notifications.or(row.notifications);
            row.version += 1;
            Ok(row.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::MemPrefs;
    use super::*;
    use crate::storage::fake::{block_on, MemKv};
    use serde_json::json;

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
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn patch_validation() {
        assert_eq!(
            PrefsPatch::parse(&json!({})).unwrap(),
            PrefsPatch::default()
        );
        let p = PrefsPatch::parse(
            &json!({"theme": "dark", "language": "nl-BE", "notifications": false}),
        )
        .unwrap();
        assert_eq!(p.theme.as_deref(), Some("dark"));
        for (body, field) in [
            (json!({"theme": "blue"}), "theme"),
            (json!({"theme": null}), "theme"),
            (json!({"language": 5}), "language"),
            (json!({"language": "not a tag"}), "language"),
            (json!({"notifications": "yes"}), "notifications"),
            (json!({"fontSize": 3}), "fontSize"),
        ] {
            match PrefsPatch::parse(&body) {
                Err(ApiError::InvalidRequest(m)) => assert!(m.starts_with(field), "{m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn defaults_then_patch_then_get() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
        let u = user("u1");
        assert_eq!(
            block_on(get(&kv, &db, &u, 0.0)).unwrap().0,
            Prefs::default()
        );
        let p = PrefsPatch {
            theme: Some("dark".into()),
            ..Default::default()
        };
        let (after, _) = block_on(patch(&kv, &db, &u, &p, 5_000.0)).unwrap();
        assert_eq!(after.theme, "dark");
        assert_eq!(block_on(get(&kv, &db, &u, 5_001.0)).unwrap().0, after);
        let stored: Envelope = serde_json::from_str(&kv.get_raw("prefs:u1").unwrap()).unwrap();
        assert_eq!(stored.prefs, after);
    }

    #[test]
    fn a_burst_writes_kv_once_and_loses_nothing() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
        let u = user("burst");
        let patches = [
            PrefsPatch {
                theme: Some("dark".into()),
                ..Default::default()
            },
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
        for (i, p) in patches.iter().enumerate() {
            waits.push(
                block_on(patch(&kv, &db, &u, p, 10_000.0 + i as f64))
                    .unwrap()
                    .1,
            );
        }
        assert_eq!(kv.writes(), 1, "one KV write inside the second");
        assert_eq!(waits[0], None);
        assert!(waits[1].is_some() && waits[2].is_some());
        let seen = block_on(get(&kv, &db, &u, 10_010.0)).unwrap().0;
        assert_eq!(
            seen,
            Prefs {
                theme: "dark".into(),
                language: "fr".into(),
                notifications: false
            }
        );
        assert_eq!(block_on(flush(&kv, &db, &u, 11_001.0)), Flush::Done);
        assert_eq!(kv.writes(), 2);
        let stored: Envelope = serde_json::from_str(&kv.get_raw("prefs:burst").unwrap()).unwrap();
        assert_eq!(stored.prefs, seen);
        assert_eq!(stored.version, 3);
    }

    #[test]
    fn empty_patch_writes_nothing() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
        let (p, _) = block_on(patch(&kv, &db, &user("e"), &PrefsPatch::default(), 0.0)).unwrap();
        assert_eq!(p, Prefs::default());
        assert!(db.rows.borrow().is_empty());
    }

    #[test]
    fn d1_failure_on_patch_is_unavailable_and_writes_nothing() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
        db.db.failing.set(true);
        let p = PrefsPatch {
            theme: Some("dark".into()),
            ..Default::default()
        };
        assert!(matches!(
            block_on(patch(&kv, &db, &user("f"), &p, 0.0)),
            Err(ApiError::Unavailable(_))
        ));
        assert!(kv.entries.borrow().is_empty());
    }

    #[test]
    fn kv_miss_reads_d1_and_writes_back() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
        let u = user("m");
        db.rows.borrow_mut().insert(
            "m".into(),
            PrefsRow {
                theme: Some("dark".into()),
                version: 4,
                ..Default::default()
            },
        );
        let (p, _) = block_on(get(&kv, &db, &u, 50_000.0)).unwrap();
        assert_eq!(p.theme, "dark");
        assert!(kv.get_raw("prefs:m").is_some());
        db.db.failing.set(true);
        assert_eq!(
            block_on(get(&kv, &db, &u, 50_001.0)).unwrap().0.theme,
            "dark",
            "served from KV"
        );
    }

    #[test]
    fn an_old_kv_copy_is_served_then_revalidated_from_d1() {
        let (kv, db) = (MemKv::default(), MemPrefs::default());
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
        let (served, wait) = block_on(get(&kv, &db, &u, REVALIDATE_MS)).unwrap();
        assert_eq!(served.theme, "light", "served at once");
        assert_eq!(wait, Some(0.0), "and a refresh is asked for");
        assert_eq!(block_on(flush(&kv, &db, &u, REVALIDATE_MS)), Flush::Done);
        let (fresh, wait) = block_on(get(&kv, &db, &u, REVALIDATE_MS + 1.0)).unwrap();
        assert_eq!((fresh.theme.as_str(), wait), ("dark", None));
    }
}
