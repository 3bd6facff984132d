//! The D1 adapter: implements the domain's D1 ports. Each method is one statement, and
//! every statement is metered. A missing binding is a storage error, not a panic.

use crate::clock::now_ms;
use crate::domain::ids::{ProfileId, UserId};
use crate::domain::prefs::{PrefsDb, PrefsPatch, PrefsRow};
use crate::domain::ratelimit::CounterDb;
use crate::domain::sessions::{ListQuery, SessionDb, SessionRecord};
use crate::domain::time::Millis;
use crate::domain::users::{User, UserDb};
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

/// Runs `sql` with `args` on `db` and returns its rows as JSON text. Rows hold only text,
/// numbers and nulls, so `JSON.stringify` is exact: one JS call for all rows, where
/// `serde-wasm-bindgen` would make one per field (and add its code to the Wasm).
async fn query(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<String, JsValue> {
    let args: Array = args.iter().collect();
    let result = JsFuture::from(db.prepare(sql)?.bind(&args)?.all()?).await?;
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

    /// Runs one statement and returns its rows as JSON text, metered.
    async fn json(&self, sql: &str, args: &[JsValue]) -> StoreResult<String> {
        let db = self
            .db
            .as_ref()
            .ok_or_else(|| StorageError::new("D1 binding is not configured"))?;
        let t = now_ms();
        let result = query(db, sql, args).await;
        self.meter.d1(now_ms() - t);
        result.map_err(|e| StorageError(format!("D1 query failed: {}", describe(&e))))
    }

    /// Runs one statement and returns its rows.
    async fn rows(&self, sql: &str, args: &[JsValue]) -> StoreResult<Vec<Row>> {
        let json = self.json(sql, args).await?;
        let rows: Vec<Map<String, Value>> =
            serde_json::from_str(&json).map_err(|e| StorageError(format!("D1 rows: {e}")))?;
        Ok(rows.into_iter().map(Row).collect())
    }

    /// Runs one statement and returns its first row.
    async fn first(&self, sql: &str, args: &[JsValue]) -> StoreResult<Option<Row>> {
        Ok(self.rows(sql, args).await?.into_iter().next())
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

    fn session(&self) -> StoreResult<SessionRecord> {
        Ok(SessionRecord {
            id_hash: self.text("id_hash")?,
            user_id: self.text("user_id")?,
            email: self.text("email")?,
            created_at: Millis::from_js(self.number("created_at")?),
            expires_at: Millis::from_js(self.number("expires_at")?),
            revoked_at: self.opt_number("revoked_at").map(Millis::from_js),
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
            updated_at: Millis::from_js(self.number("updated_at")?),
        })
    }
}

const SESSION_COLS: &str = "id_hash, user_id, email, created_at, expires_at, revoked_at";

impl SessionDb for D1 {
    async fn insert(&self, s: &SessionRecord) -> StoreResult<()> {
        let sql = "INSERT INTO sessions (id_hash, user_id, email, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)";
        let args = [
            text(&s.id_hash),
            text(&s.user_id),
            text(&s.email),
            at(s.created_at),
            at(s.expires_at),
        ];
        self.rows(sql, &args).await.map(|_| ())
    }

    async fn find(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id_hash = ?1");
        self.first(&sql, &[text(id_hash)])
            .await?
            .map(|r| r.session())
            .transpose()
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = ?2 WHERE id_hash = ?1 AND revoked_at IS NULL RETURNING id_hash";
        Ok(!self.rows(sql, &[text(id_hash), at(now)]).await?.is_empty())
    }

    async fn revoke_user(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = ?2 \
                   WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 RETURNING id_hash";
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
