//! The D1 adapter: implements the domain's D1 ports. Each method is one statement, and
//! every statement is metered. A missing binding is a storage error, not a panic.

use crate::clock::now_ms;
use crate::domain::accounts::AccountDb;
use crate::domain::health::{Schema, SchemaDb};
use crate::domain::ids::{ProfileId, SessionHandle, UserId};
use crate::domain::prefs::{PrefsDb, PrefsPatch, PrefsRow};
use crate::domain::ratelimit::CounterDb;
use crate::domain::sessions::{ListQuery, SessionDb, SessionRecord};
use crate::domain::time::Millis;
use crate::domain::users::{User, UserDb};
use crate::domain::versions::{ConfigDb, Entry, HistoryEntry, StoredVersion};
use crate::error::{StorageError, StoreResult};
use crate::storage::meter::Meter;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::{D1Database, Env};

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "DB";

/// The number of the newest migration (`migrations/NNNN_*.sql`) whose schema these queries
/// need. Bump it with every new migration (a unit test compares it with `migrations/`).
pub const SCHEMA_VERSION: u32 = 4;

/// Every table the queries below use.
pub const TABLES: [&str; 5] = [
    "users",
    "sessions",
    "preferences",
    "rate_limits",
    "config_history",
];

/// The table `wrangler d1 migrations apply` records applied migrations in (its default).
const MIGRATIONS_TABLE: &str = "d1_migrations";

/// The D1 binding, metered.
#[derive(Clone)]
pub struct D1 {
    db: Option<Rc<D1Database>>,
    meter: Rc<Meter>,
}

fn at(t: Millis) -> JsValue {
    JsValue::from_f64(t.0 as f64)
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

fn opt_text(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

impl D1 {
    /// The binding from the environment (absent: every call fails as a storage error).
    pub fn from_env(env: &Env, meter: Rc<Meter>) -> Self {
        D1 {
            db: env.d1(BINDING).ok().map(Rc::new),
            meter,
        }
    }

    /// A copy for `waitUntil` work, whose queries are not counted in this response.
    pub fn detached(&self) -> Self {
        D1 {
            db: self.db.clone(),
            meter: Rc::new(Meter::default()),
        }
    }

    /// Runs one statement and returns its rows.
    async fn rows<T: DeserializeOwned>(&self, sql: &str, args: &[JsValue]) -> StoreResult<Vec<T>> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| StorageError::new("D1 binding is not configured"))?;
        let t = now_ms();
        let result = async { db.prepare(sql).bind(args)?.all().await?.results::<T>() }.await;
        self.meter.d1(now_ms() - t);
        result.map_err(|e| StorageError(format!("D1 query failed: {e}")))
    }

    /// Runs statements as one batch: one round trip, in one transaction (all or none).
    async fn batch(&self, statements: &[(&str, Vec<JsValue>)]) -> StoreResult<()> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| StorageError::new("D1 binding is not configured"))?;
        let t = now_ms();
        let result = async {
            let prepared = statements
                .iter()
                .map(|(sql, args)| db.prepare(*sql).bind(args))
                .collect::<worker::Result<Vec<_>>>()?;
            db.batch(prepared).await
        }
        .await;
        let elapsed = now_ms() - t;
        for _ in statements {
            self.meter.d1(elapsed / statements.len() as f64);
        }
        result
            .map(|_| ())
            .map_err(|e| StorageError(format!("D1 batch failed: {e}")))
    }

    async fn first<T: DeserializeOwned>(
        &self,
        sql: &str,
        args: &[JsValue],
    ) -> StoreResult<Option<T>> {
        Ok(self.rows(sql, args).await?.into_iter().next())
    }
}

#[derive(Deserialize)]
struct Hash {
    id_hash: String,
}

#[derive(Deserialize)]
struct Count {
    count: f64,
}

/// Rows minted before idle deadlines existed have none: their idle deadline is their absolute one.
const SESSION_COLS: &str = "id_hash, user_id, email, created_at, expires_at, \
    COALESCE(idle_expires_at, expires_at) AS idle_expires_at, revoked_at, handle";

impl SessionDb for D1 {
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()> {
        let sql = "INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at, idle_expires_at, handle) \
                   VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
        let args = [
            text(&s.id_hash),
            text(&s.user_id),
            text(&s.email),
            at(s.created_at),
            at(s.expires_at),
            at(s.idle_expires_at),
            opt_text(s.handle.as_deref()),
        ];
        self.rows::<serde_json::Value>(sql, &args).await.map(|_| ())
    }

    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id_hash = ?1");
        self.first(&sql, &[text(id_hash)]).await
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = ?2 WHERE id_hash = ?1 AND revoked_at IS NULL RETURNING id_hash";
        Ok(!self
            .rows::<Hash>(sql, &[text(id_hash), at(now)])
            .await?
            .is_empty())
    }

    async fn revoke_user(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = ?2 \
                   WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                     AND COALESCE(idle_expires_at, expires_at) > ?2 RETURNING id_hash";
        let rows = self
            .rows::<Hash>(sql, &[text(user.as_str()), at(now)])
            .await?;
        Ok(rows.into_iter().map(|r| r.id_hash).collect())
    }

    async fn list(
        &self,
        q: &ListQuery,
        now: Millis,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions \
             WHERE revoked_at IS NULL AND expires_at > ?1 \
               AND COALESCE(idle_expires_at, expires_at) > ?1 \
               AND (?2 IS NULL OR user_id = ?2) \
               AND (?3 IS NULL OR created_at < ?3 OR (created_at = ?3 AND id_hash < ?4)) \
             ORDER BY created_at DESC, id_hash DESC LIMIT ?5"
        );
        let (after, hash) = match &q.cursor {
            Some(c) => (at(c.created_at), text(&c.id_hash)),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let user = opt_text(q.user.as_ref().map(UserId::as_str));
        self.rows(&sql, &[at(now), user, after, hash, JsValue::from(limit)])
            .await
    }

    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        // One statement: of any number of concurrent renewals, one changes the row.
        let sql = format!(
            "UPDATE sessions SET idle_expires_at = ?3 \
             WHERE id_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
               AND COALESCE(idle_expires_at, expires_at) > ?2 \
               AND COALESCE(idle_expires_at, expires_at) <= ?4 \
             RETURNING {SESSION_COLS}"
        );
        let args = [text(id_hash), at(now), at(idle_expires_at), at(due_until)];
        self.first(&sql, &args).await
    }

    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        now: Millis,
    ) -> StoreResult<Option<String>> {
        let sql = "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                   WHERE handle = ?1 RETURNING id_hash";
        let row = self
            .first::<Hash>(sql, &[text(handle.as_str()), at(now)])
            .await?;
        Ok(row.map(|r| r.id_hash))
    }
}

impl AccountDb for D1 {
    async fn revoke_sessions(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                   WHERE user_id = ?1 AND expires_at > ?2 RETURNING id_hash";
        let rows = self
            .rows::<Hash>(sql, &[text(user.as_str()), at(now)])
            .await?;
        Ok(rows.into_iter().map(|r| r.id_hash).collect())
    }

    async fn erase(&self, user: &UserId, profile: Option<&ProfileId>) -> StoreResult<()> {
        let mut statements = vec![
            (
                "DELETE FROM sessions WHERE user_id = ?1",
                vec![text(user.as_str())],
            ),
            (
                "DELETE FROM preferences WHERE user_id = ?1",
                vec![text(user.as_str())],
            ),
        ];
        if let Some(p) = profile {
            statements.push(("DELETE FROM users WHERE id = ?1", vec![text(p.as_str())]));
        }
        self.batch(&statements).await
    }
}

#[derive(Deserialize)]
struct Name {
    name: String,
}

impl SchemaDb for D1 {
    fn expected_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    async fn schema(&self) -> StoreResult<Schema> {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'table' \
                   AND name IN (?1, ?2, ?3, ?4, ?5, ?6)";
        let mut args: Vec<JsValue> = TABLES.iter().map(|t| text(t)).collect();
        args.push(text(MIGRATIONS_TABLE));
        let present: Vec<String> = self
            .rows::<Name>(sql, &args)
            .await?
            .into_iter()
            .map(|n| n.name)
            .collect();
        let has = |t: &str| present.iter().any(|p| p == t);
        let latest_migration = match has(MIGRATIONS_TABLE) {
            true => {
                let sql = format!("SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id DESC LIMIT 1");
                self.first::<Name>(&sql, &[]).await?.map(|n| n.name)
            }
            false => None,
        };
        Ok(Schema {
            missing_tables: TABLES
                .iter()
                .filter(|t| !has(t))
                .map(|t| t.to_string())
                .collect(),
            latest_migration,
        })
    }
}

#[derive(Deserialize)]
struct PrefsDbRow {
    theme: Option<String>,
    language: Option<String>,
    notifications: Option<f64>,
    version: f64,
}

impl From<PrefsDbRow> for PrefsRow {
    fn from(r: PrefsDbRow) -> Self {
        PrefsRow {
            theme: r.theme,
            language: r.language,
            notifications: r.notifications.map(|n| n != 0.0),
            version: r.version as i64,
        }
    }
}

impl PrefsDb for D1 {
    async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>> {
        let sql =
            "SELECT theme, language, notifications, version FROM preferences WHERE user_id = ?1";
        Ok(self
            .first::<PrefsDbRow>(sql, &[text(user.as_str())])
            .await?
            .map(PrefsRow::from))
    }

    async fn merge(&self, user: &UserId, p: &PrefsPatch, now: Millis) -> StoreResult<PrefsRow> {
        // One statement: each column keeps its value unless the patch sets it, so concurrent
        // PATCHes of different fields cannot overwrite each other.
        let sql = "INSERT INTO preferences (user_id, theme, language, notifications, version, updated_at) \
                   VALUES (?1, ?2, ?3, ?4, 1, ?5) \
                   ON CONFLICT (user_id) DO UPDATE SET \
                     theme = COALESCE(?2, theme), language = COALESCE(?3, language), \
                     notifications = COALESCE(?4, notifications), version = version + 1, updated_at = ?5 \
                   RETURNING theme, language, notifications, version";
        let notifications = p.notifications.map_or(JsValue::NULL, |b| {
            JsValue::from_f64(if b { 1.0 } else { 0.0 })
        });
        let args = [
            text(user.as_str()),
            opt_text(p.theme.as_deref()),
            opt_text(p.language.as_deref()),
            notifications,
            at(now),
        ];
        self.first::<PrefsDbRow>(sql, &args)
            .await?
            .map(PrefsRow::from)
            .ok_or_else(|| StorageError::new("preferences upsert returned no row"))
    }
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    name: String,
    updated_at: f64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            name: r.name,
            updated_at: Millis::from_js(r.updated_at),
        }
    }
}

impl UserDb for D1 {
    async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>> {
        let sql = "SELECT id, name, updated_at FROM users WHERE id = ?1";
        Ok(self
            .first::<UserRow>(sql, &[text(id.as_str())])
            .await?
            .map(User::from))
    }

    async fn get_many(&self, ids: &[ProfileId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // At most 100 ids (validated), within D1's 100 bound parameters per statement.
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "SELECT id, name, updated_at FROM users WHERE id IN ({})",
            marks.join(", ")
        );
        let args: Vec<JsValue> = ids.iter().map(|id| text(id.as_str())).collect();
        Ok(self
            .rows::<UserRow>(&sql, &args)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }

    async fn upsert(&self, id: &ProfileId, name: &str, now: Millis) -> StoreResult<User> {
        let sql = "INSERT INTO users (id, name, updated_at) VALUES (?1, ?2, ?3) \
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at \
                   RETURNING id, name, updated_at";
        self.first::<UserRow>(sql, &[text(id.as_str()), text(name), at(now)])
            .await?
            .map(User::from)
            .ok_or_else(|| StorageError::new("user upsert returned no row"))
    }
}

impl CounterDb for D1 {
    async fn increment(&self, bucket: &str, window_start: Millis) -> StoreResult<u64> {
        let sql = "INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1) \
                   ON CONFLICT (bucket, window_start) DO UPDATE SET count = count + 1 RETURNING count";
        let row = self
            .first::<Count>(sql, &[text(bucket), at(window_start)])
            .await?;
        row.map(|r| r.count as u64)
            .ok_or_else(|| StorageError::new("counter upsert returned no row"))
    }

    async fn prune(&self, before: Millis) -> StoreResult<()> {
        let sql = "DELETE FROM rate_limits WHERE window_start < ?1";
        self.rows::<serde_json::Value>(sql, &[at(before)])
            .await
            .map(|_| ())
    }
}

#[derive(Deserialize)]
struct VersionRow {
    version: f64,
    document: String,
}

impl From<VersionRow> for StoredVersion {
    fn from(r: VersionRow) -> Self {
        StoredVersion {
            version: r.version as u64,
            document: r.document,
        }
    }
}

#[derive(Deserialize)]
struct HistoryRow {
    seq: f64,
    version: Option<f64>,
    at: f64,
    actor: String,
    action: String,
    base_version: f64,
    change: String,
}

impl From<HistoryRow> for HistoryEntry {
    fn from(r: HistoryRow) -> Self {
        HistoryEntry {
            seq: r.seq as u64,
            version: r.version.map(|v| v as u64),
            outcome: if r.version.is_some() {
                "applied"
            } else {
                "refused"
            },
            at: Millis::from_js(r.at),
            actor: r.actor,
            action: r.action,
            base_version: r.base_version as u64,
            change: serde_json::from_str(&r.change).unwrap_or(serde_json::Value::Null),
        }
    }
}

fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

impl ConfigDb for D1 {
    async fn head(&self) -> StoreResult<Option<StoredVersion>> {
        let sql = "SELECT version, document FROM config_history \
                   WHERE version IS NOT NULL ORDER BY version DESC LIMIT 1";
        Ok(self
            .first::<VersionRow>(sql, &[])
            .await?
            .map(StoredVersion::from))
    }

    async fn version(&self, version: u64) -> StoreResult<Option<StoredVersion>> {
        let sql = "SELECT version, document FROM config_history WHERE version = ?1";
        Ok(self
            .first::<VersionRow>(sql, &[num(version)])
            .await?
            .map(StoredVersion::from))
    }

    async fn append(
        &self,
        e: &Entry<'_>,
        floor: u64,
        expect: Option<u64>,
    ) -> StoreResult<Option<u64>> {
        // One statement, so the check of the head and the insert cannot be interleaved.
        let sql = "INSERT INTO config_history (version, at, actor, action, base_version, change, document) \
                   SELECT head + 1, ?1, ?2, ?3, ?4, ?5, ?6 \
                   FROM (SELECT COALESCE(MAX(version), ?7) AS head FROM config_history) \
                   WHERE ?8 IS NULL OR head = ?8 \
                   RETURNING version, document";
        let args = [
            at(e.at),
            text(e.actor),
            text(e.action.as_str()),
            num(e.base),
            text(e.change),
            text(e.document),
            num(floor),
            expect.map_or(JsValue::NULL, num),
        ];
        Ok(self
            .first::<VersionRow>(sql, &args)
            .await?
            .map(|r| r.version as u64))
    }

    async fn refuse(&self, e: &Entry<'_>) -> StoreResult<()> {
        let sql = "INSERT INTO config_history (version, at, actor, action, base_version, change) \
                   VALUES (NULL, ?1, ?2, ?3, ?4, ?5)";
        let args = [
            at(e.at),
            text(e.actor),
            text(e.action.as_str()),
            num(e.base),
            text(e.change),
        ];
        self.rows::<serde_json::Value>(sql, &args).await.map(|_| ())
    }

    async fn history(&self, before: Option<u64>, limit: u32) -> StoreResult<Vec<HistoryEntry>> {
        let sql =
            "SELECT seq, version, at, actor, action, base_version, change FROM config_history \
                   WHERE ?1 IS NULL OR seq < ?1 ORDER BY seq DESC LIMIT ?2";
        let args = [before.map_or(JsValue::NULL, num), JsValue::from(limit)];
        let rows = self.rows::<HistoryRow>(sql, &args).await?;
        Ok(rows.into_iter().map(HistoryEntry::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_version_is_the_newest_migration() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let newest = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.ends_with(".sql")
                    .then(|| name[..4].parse::<u32>().unwrap())
            })
            .max();
        assert_eq!(newest, Some(SCHEMA_VERSION), "bump d1::SCHEMA_VERSION");
    }

    #[test]
    fn every_table_is_created_by_a_migration() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let all: String = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        for table in TABLES {
            assert!(all.contains(&format!("CREATE TABLE {table} ")), "{table}");
        }
    }
}
