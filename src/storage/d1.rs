//! The D1 adapter: implements the domain's D1 ports. Each method is one statement (or one
//! batch), and every statement is metered. A missing binding is a storage error, not a panic.
//! It calls the runtime's `D1Database` directly, and decodes rows by hand (see `Row`).

use crate::clock::now_ms;
use crate::domain::accounts::AccountDb;
use crate::domain::health::{Schema, SchemaDb};
use crate::domain::ids::{ProfileId, SessionHandle, UserId};
use crate::domain::json;
use crate::domain::prefs::{PrefsDb, PrefsPatch, PrefsRow};
use crate::domain::ratelimit::CounterDb;
use crate::domain::sessions::{ListQuery, SessionDb, SessionRecord};
use crate::domain::time::Millis;
use crate::domain::users::{User, UserDb};
use crate::domain::versions::{ConfigDb, Entry, HistoryEntry, StoredVersion};
use crate::error::{StorageError, StoreResult};
use crate::storage::describe;
use crate::storage::meter::Meter;
use serde_json::{Map, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{self, Array, Object, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

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

#[wasm_bindgen]
extern "C" {
    /// The runtime's `D1Database`, called directly.
    #[wasm_bindgen(extends = Object)]
    #[derive(Clone)]
    type D1Database;

    #[wasm_bindgen(extends = Object)]
    type D1Statement;

    #[wasm_bindgen(method, catch)]
    fn prepare(this: &D1Database, sql: &str) -> Result<D1Statement, JsValue>;

    #[wasm_bindgen(method, catch, js_name = batch)]
    fn batch_all(this: &D1Database, statements: &Array) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, variadic)]
    fn bind(this: &D1Statement, args: &Array) -> Result<D1Statement, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn all(this: &D1Statement) -> Result<Promise, JsValue>;
}

/// The D1 binding, metered.
#[derive(Clone)]
pub struct D1 {
    db: Option<D1Database>,
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

fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn statement(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<D1Statement, JsValue> {
    let args: Array = args.iter().collect();
    db.prepare(sql)?.bind(&args)
}

/// Runs `sql` with `args` on `db` and returns its rows as JSON text. Rows hold only text,
/// numbers and nulls, so `JSON.stringify` is exact: one JS call for all rows, where
/// `serde-wasm-bindgen` would make one per field (and add its code to the Wasm).
async fn query(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<String, JsValue> {
    let result = JsFuture::from(statement(db, sql, args)?.all()?).await?;
    let rows = Reflect::get(&result, &"results".into())?;
    if rows.is_undefined() || rows.is_null() {
        return Ok("[]".into());
    }
    Ok(js_sys::JSON::stringify(&rows)?.into())
}

impl D1 {
    /// The binding from the environment (absent: every call fails as a storage error).
    pub fn from_env(env: &Env, meter: Rc<Meter>) -> Self {
        let db = Reflect::get(env, &JsValue::from_str(BINDING))
            .ok()
            .filter(JsValue::is_object)
            .map(JsCast::unchecked_into);
        D1 { db, meter }
    }

    /// A copy for `waitUntil` work, whose queries are not counted in this response.
    pub fn detached(&self) -> Self {
        D1 {
            db: self.db.clone(),
            meter: Rc::new(Meter::default()),
        }
    }

    fn db(&self) -> StoreResult<&D1Database> {
        self.db
            .as_ref()
            .ok_or_else(|| StorageError::new("D1 binding is not configured"))
    }

    /// Runs one statement and returns its rows as JSON text, metered.
    async fn json(&self, sql: &str, args: &[JsValue]) -> StoreResult<String> {
        let db = self.db()?;
        let t = now_ms();
        let result = query(db, sql, args).await;
        self.meter.d1(now_ms() - t);
        result.map_err(|e| StorageError(format!("D1 query failed: {}", describe(&e))))
    }

    /// Runs one statement and returns its rows.
    async fn rows(&self, sql: &str, args: &[JsValue]) -> StoreResult<Vec<Row>> {
        let json = self.json(sql, args).await?;
        let rows = json::read(&json).map_err(|e| StorageError(format!("D1 rows: {e}")))?;
        let Value::Array(rows) = rows else {
            return Err(StorageError("D1 rows: not an array".into()));
        };
        rows.into_iter()
            .map(|row| match row {
                Value::Object(row) => Ok(Row(row)),
                _ => Err(StorageError("D1 rows: a row is not an object".into())),
            })
            .collect()
    }

    /// Runs one statement and returns its first row.
    async fn first(&self, sql: &str, args: &[JsValue]) -> StoreResult<Option<Row>> {
        Ok(self.rows(sql, args).await?.into_iter().next())
    }

    /// Runs statements as one batch: one round trip, in one transaction (all or none).
    async fn batch(&self, statements: &[(&str, Vec<JsValue>)]) -> StoreResult<()> {
        let db = self.db()?;
        let t = now_ms();
        let result = async {
            let prepared = statements
                .iter()
                .map(|(sql, args)| statement(db, sql, args).map(JsValue::from))
                .collect::<Result<Array, JsValue>>()?;
            JsFuture::from(db.batch_all(&prepared)?).await
        }
        .await;
        let elapsed = now_ms() - t;
        for _ in statements {
            self.meter.d1(elapsed / statements.len() as f64);
        }
        result
            .map(|_| ())
            .map_err(|e| StorageError(format!("D1 batch failed: {}", describe(&e))))
    }
}

/// One row by column name. Columns are read by hand rather than through a `Deserialize`
/// impl per row type: D1 rows hold only text, numbers and nulls, and one decoder of JSON
/// objects serves every query (each derived decoder costs a few KB of Wasm).
struct Row(Map<String, Value>);

impl Row {
    fn value(&self, column: &str) -> StoreResult<&Value> {
        self.0
            .get(column)
            .ok_or_else(|| StorageError(format!("D1 row without {column}")))
    }

    fn text(&self, column: &str) -> StoreResult<String> {
        let value = self.value(column)?.as_str();
        value
            .map(str::to_string)
            .ok_or_else(|| StorageError(format!("D1 column {column} is not text")))
    }

    fn opt_text(&self, column: &str) -> Option<String> {
        self.0.get(column)?.as_str().map(str::to_string)
    }

    fn number(&self, column: &str) -> StoreResult<f64> {
        let value = self.value(column)?.as_f64();
        value.ok_or_else(|| StorageError(format!("D1 column {column} is not a number")))
    }

    fn opt_number(&self, column: &str) -> Option<f64> {
        self.0.get(column)?.as_f64()
    }

    fn millis(&self, column: &str) -> StoreResult<Millis> {
        self.number(column).map(Millis::from_js)
    }

    fn session(&self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            id_hash: self.text("id_hash")?,
            user_id: self.text("user_id")?,
            email: self.text("email")?,
            created_at: self.millis("created_at")?,
            expires_at: self.millis("expires_at")?,
            idle_expires_at: self.millis("idle_expires_at")?,
            revoked_at: self.opt_number("revoked_at").map(Millis::from_js),
            handle: self.opt_text("handle"),
        })
    }

    fn prefs(&self) -> StoreResult<PrefsRow> {
        Ok(PrefsRow {
            theme: self.opt_text("theme"),
            language: self.opt_text("language"),
            notifications: self.opt_number("notifications").map(|n| n != 0.0),
            version: self.number("version")? as i64,
        })
    }

    fn user(&self) -> StoreResult<User> {
        Ok(User {
            id: self.text("id")?,
            name: self.text("name")?,
            updated_at: self.millis("updated_at")?,
        })
    }

    fn stored_version(&self) -> StoreResult<StoredVersion> {
        Ok(StoredVersion {
            version: self.number("version")? as u64,
            document: self.text("document")?,
        })
    }

    fn history_entry(&self) -> StoreResult<HistoryEntry> {
        let version = self.opt_number("version").map(|v| v as u64);
        Ok(HistoryEntry {
            seq: self.number("seq")? as u64,
            version,
            outcome: if version.is_some() {
                "applied"
            } else {
                "refused"
            },
            at: self.millis("at")?,
            actor: self.text("actor")?,
            action: self.text("action")?,
            base_version: self.number("base_version")? as u64,
            change: json::read(&self.text("change")?).unwrap_or(Value::Null),
        })
    }
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
        self.rows(sql, &args).await.map(|_| ())
    }

    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id_hash = ?1");
        let row = self.first(&sql, &[text(id_hash)]).await?;
        row.map(|r| r.session()).transpose()
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = ?2 WHERE id_hash = ?1 AND revoked_at IS NULL RETURNING id_hash";
        Ok(!self.rows(sql, &[text(id_hash), at(now)]).await?.is_empty())
    }

    async fn revoke_user(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = ?2 \
                   WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                     AND COALESCE(idle_expires_at, expires_at) > ?2 RETURNING id_hash";
        let rows = self.rows(sql, &[text(user.as_str()), at(now)]).await?;
        rows.iter().map(|r| r.text("id_hash")).collect()
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
        let args = [at(now), user, after, hash, JsValue::from(limit)];
        let rows = self.rows(&sql, &args).await?;
        rows.iter().map(Row::session).collect()
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
        let row = self.first(&sql, &args).await?;
        row.map(|r| r.session()).transpose()
    }

    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        now: Millis,
    ) -> StoreResult<Option<String>> {
        let sql = "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                   WHERE handle = ?1 RETURNING id_hash";
        let row = self.first(sql, &[text(handle.as_str()), at(now)]).await?;
        row.map(|r| r.text("id_hash")).transpose()
    }
}

impl AccountDb for D1 {
    async fn revoke_sessions(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                   WHERE user_id = ?1 AND expires_at > ?2 RETURNING id_hash";
        let rows = self.rows(sql, &[text(user.as_str()), at(now)]).await?;
        rows.iter().map(|r| r.text("id_hash")).collect()
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

impl SchemaDb for D1 {
    fn expected_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    async fn schema(&self) -> StoreResult<Schema> {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'table' \
                   AND name IN (?1, ?2, ?3, ?4, ?5, ?6)";
        let mut args: Vec<JsValue> = TABLES.iter().map(|t| text(t)).collect();
        args.push(text(MIGRATIONS_TABLE));
        let rows = self.rows(sql, &args).await?;
        let present = rows
            .iter()
            .map(|r| r.text("name"))
            .collect::<StoreResult<Vec<String>>>()?;
        let has = |t: &str| present.iter().any(|p| p == t);
        let latest_migration = match has(MIGRATIONS_TABLE) {
            true => {
                let sql = format!("SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id DESC LIMIT 1");
                let row = self.first(&sql, &[]).await?;
                row.map(|r| r.text("name")).transpose()?
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

impl PrefsDb for D1 {
    async fn get(&self, user: &UserId) -> StoreResult<Option<PrefsRow>> {
        let sql =
            "SELECT theme, language, notifications, version FROM preferences WHERE user_id = ?1";
        let row = self.first(sql, &[text(user.as_str())]).await?;
        row.map(|r| r.prefs()).transpose()
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
        let row = self.first(sql, &args).await?;
        row.ok_or_else(|| StorageError::new("preferences upsert returned no row"))?
            .prefs()
    }
}

impl UserDb for D1 {
    async fn get(&self, id: &ProfileId) -> StoreResult<Option<User>> {
        let sql = "SELECT id, name, updated_at FROM users WHERE id = ?1";
        let row = self.first(sql, &[text(id.as_str())]).await?;
        row.map(|r| r.user()).transpose()
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
        let rows = self.rows(&sql, &args).await?;
        rows.iter().map(Row::user).collect()
    }

    async fn upsert(&self, id: &ProfileId, name: &str, now: Millis) -> StoreResult<User> {
        let sql = "INSERT INTO users (id, name, updated_at) VALUES (?1, ?2, ?3) \
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at \
                   RETURNING id, name, updated_at";
        let row = self
            .first(sql, &[text(id.as_str()), text(name), at(now)])
            .await?;
        row.ok_or_else(|| StorageError::new("user upsert returned no row"))?
            .user()
    }
}

impl CounterDb for D1 {
    async fn increment(&self, bucket: &str, window_start: Millis) -> StoreResult<u64> {
        let sql = "INSERT INTO rate_limits (bucket, window_start, count) VALUES (?1, ?2, 1) \
                   ON CONFLICT (bucket, window_start) DO UPDATE SET count = count + 1 RETURNING count";
        let row = self.first(sql, &[text(bucket), at(window_start)]).await?;
        let count = row.ok_or_else(|| StorageError::new("counter upsert returned no row"))?;
        Ok(count.number("count")? as u64)
    }

    async fn prune(&self, before: Millis) -> StoreResult<()> {
        let sql = "DELETE FROM rate_limits WHERE window_start < ?1";
        self.rows(sql, &[at(before)]).await.map(|_| ())
    }
}

impl ConfigDb for D1 {
    async fn head(&self) -> StoreResult<Option<StoredVersion>> {
        let sql = "SELECT version, document FROM config_history \
                   WHERE version IS NOT NULL ORDER BY version DESC LIMIT 1";
        let row = self.first(sql, &[]).await?;
        row.map(|r| r.stored_version()).transpose()
    }

    async fn version(&self, version: u64) -> StoreResult<Option<StoredVersion>> {
        let sql = "SELECT version, document FROM config_history WHERE version = ?1";
        let row = self.first(sql, &[num(version)]).await?;
        row.map(|r| r.stored_version()).transpose()
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
        let row = self.first(sql, &args).await?;
        row.map(|r| r.number("version").map(|v| v as u64))
            .transpose()
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
        self.rows(sql, &args).await.map(|_| ())
    }

    async fn history(&self, before: Option<u64>, limit: u32) -> StoreResult<Vec<HistoryEntry>> {
        let sql =
            "SELECT seq, version, at, actor, action, base_version, change FROM config_history \
                   WHERE ?1 IS NULL OR seq < ?1 ORDER BY seq DESC LIMIT ?2";
        let args = [before.map_or(JsValue::NULL, num), JsValue::from(limit)];
        let rows = self.rows(sql, &args).await?;
        rows.iter().map(Row::history_entry).collect()
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
