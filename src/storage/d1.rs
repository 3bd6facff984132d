//! The D1 adapter: implements the domain's D1 ports. Each method is one statement (or one
//! batch), and every statement is metered. A missing binding is a storage error, not a panic.
//! It calls the runtime's `D1Database` directly, and decodes rows by hand (see `Row`).

use crate::clock::now_ms;
use crate::domain::accounts::AccountDb;
use crate::domain::health::{Schema, SchemaDb};
use crate::domain::ids::{ProfileId, SessionHandle, UserId};
use crate::domain::json;
use crate::domain::prefs::{PrefsDb, PrefsPatch, PrefsRow};
use crate::domain::ratelimit::{CounterDb, Lease};
use crate::domain::sessions::{FeedPage, ListQuery, Revocation, SessionDb, SessionRecord};
use crate::domain::time::Millis;
use crate::domain::tokens::{Scope, TokenDb, TokenRecord, MAX_TOKENS};
use crate::domain::usage::{self, UsageDb};
use crate::domain::users::{User, UserDb};
use crate::domain::versions::{ConfigDb, Entry, HistoryEntry, Step};
use crate::error::{StorageError, StoreResult};
use crate::storage::meter::Meter;
use crate::storage::{describe, env_value};
use serde_json::{Map, Value};
use std::rc::Rc;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Array, Object, Promise};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

/// The binding name in `wrangler.toml`.
pub const BINDING: &str = "DB";

/// The number of the newest migration (`migrations/NNNN_*.sql`) whose schema these queries
/// need. Bump it with every new migration (a unit test compares it with `migrations/`).
pub const SCHEMA_VERSION: u32 = 9;

/// Every table the queries below use.
pub const TABLES: [&str; 8] = [
    "users",
    "sessions",
    "preferences",
    "rate_limits",
    "config_history",
    "revocations",
    "admin_tokens",
    "flag_usage",
];

/// The table `wrangler d1 migrations apply` records applied migrations in (its default).
const MIGRATIONS_TABLE: &str = migrations_table!();

/// [`MIGRATIONS_TABLE`] as a literal, for `concat!`.
macro_rules! migrations_table {
    () => {
        "d1_migrations"
    };
}
use migrations_table;

#[wasm_bindgen(inline_js = "
export async function d1All(db, sql, args) {
  const r = await db.prepare(sql).bind(...args).all();
  return [JSON.stringify(r.results ?? []), r.meta?.served_by_primary];
}
export async function d1Batch(db, statements) {
  const rs = await db.batch(statements.map(([sql, args]) => db.prepare(sql).bind(...args)));
  return [JSON.stringify(rs.map((r) => r.results ?? [])), rs[0]?.meta?.served_by_primary];
}
export function d1Session(db, constraint) {
  try {
    return typeof db.withSession === 'function' ? db.withSession(constraint) : null;
  } catch {
    return null;
  }
}
export function d1Bookmark(db) {
  try {
    return typeof db.getBookmark === 'function' ? db.getBookmark() : null;
  } catch {
    return null;
  }
}")]
extern "C" {
    /// The runtime's `D1Database` (or a D1 session, which has the same `prepare` and
    /// `batch`).
    #[wasm_bindgen(extends = Object)]
    #[derive(Clone)]
    type D1Database;

    /// Runs one statement: `[rows as JSON text, meta.served_by_primary]`. Rows hold only
    /// text, numbers and nulls, so `JSON.stringify` is exact: one call into JS for all rows,
    /// where `serde-wasm-bindgen` would make one per field (and add its code to the Wasm).
    /// (Both query helpers are `async`: any failure is a rejected promise, without `catch`
    /// glue.)
    #[wasm_bindgen(js_name = d1All)]
    fn d1_all(db: &D1Database, sql: &str, args: Array) -> Promise;

    /// Runs `[sql, args]` pairs as one batch: `[every statement's rows as one JSON array,
    /// meta.served_by_primary]`.
    #[wasm_bindgen(js_name = d1Batch)]
    fn d1_batch(db: &D1Database, statements: Array) -> Promise;

    /// A D1 session (read replication) with this constraint or bookmark; `null` where the
    /// runtime has none, or refuses the bookmark (caught in JS: no `catch` glue).
    #[wasm_bindgen(js_name = d1Session)]
    fn d1_session(db: &D1Database, constraint: &str) -> JsValue;

    /// The session's bookmark; `null` outside a session (or if reading it throws).
    #[wasm_bindgen(js_name = d1Bookmark)]
    fn d1_bookmark(db: &D1Database) -> JsValue;
}

/// Where a D1 session's reads may be served (D1 read replication). Writes always go to the
/// primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFrom {
    /// The primary: the newest state, one round trip to wherever the primary is.
    Primary,
    /// The nearest replica, whatever it has applied (sequentially consistent within the
    /// session from its first read on).
    AnyReplica,
    /// A replica that has applied at least this bookmark (from an earlier write), or the
    /// primary: the client's own writes are seen.
    After(String),
}

/// The D1 binding, metered.
#[derive(Clone)]
pub struct D1 {
    db: Option<D1Database>,
    meter: Rc<Meter>,
    /// Whether reads go to the primary (what `Server-Timing` counts when D1 does not say).
    primary: bool,
}

fn at(t: Millis) -> JsValue {
    JsValue::from_f64(t.0 as f64)
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// The largest integer a JS number holds exactly: "no bound" for a version.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn opt_text(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn args(values: &[JsValue]) -> Array {
    values.iter().collect()
}

/// What the JS helpers answer: `[rows as JSON text, served by the primary?]`.
async fn answer(promise: Promise) -> Result<(String, Option<bool>), JsValue> {
    let pair: Array = JsFuture::from(promise).await?.unchecked_into();
    let rows = pair.get(0).as_string().unwrap_or_else(|| "[]".into());
    Ok((rows, pair.get(1).as_bool()))
}

impl D1 {
    /// The binding from the environment (absent: every call fails as a storage error).
    pub fn from_env(env: &Env, meter: Rc<Meter>) -> Self {
        let db = Some(env_value(env, BINDING))
            .filter(JsValue::is_object)
            .map(JsCast::unchecked_into);
        D1 {
            db,
            meter,
            primary: true,
        }
    }

    /// A copy for `waitUntil` work, whose queries are not counted in this response.
    pub fn detached(&self) -> Self {
        D1 {
            db: self.db.clone(),
            meter: Rc::new(Meter::default()),
            primary: self.primary,
        }
    }

    /// A D1 session whose reads are served as `from` says (D1 read replication). A runtime
    /// without sessions, or a bookmark it refuses, gives the binding itself: every read on
    /// the primary, which is never wrong, only farther.
    pub fn reading(&self, from: &ReadFrom) -> Self {
        let constraint = match from {
            ReadFrom::Primary => "first-primary",
            ReadFrom::AnyReplica => "first-unconstrained",
            ReadFrom::After(bookmark) => bookmark.as_str(),
        };
        let session = self
            .db
            .as_ref()
            .map(|db| d1_session(db, constraint))
            .filter(|s| s.is_object());
        match session {
            Some(session) => D1 {
                db: Some(session.unchecked_into()),
                meter: self.meter.clone(),
                primary: *from == ReadFrom::Primary,
            },
            None => self.clone(),
        }
    }

    /// The session's bookmark after its last query: what a later session passes as
    /// [`ReadFrom::After`] to see everything this one did. `None` outside a session.
    pub fn bookmark(&self) -> Option<String> {
        d1_bookmark(self.db.as_ref()?).as_string()
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
        let result = answer(d1_all(db, sql, self::args(args))).await;
        let primary = result.as_ref().ok().and_then(|(_, p)| *p);
        self.meter.d1(now_ms() - t, primary.unwrap_or(self.primary));
        result
            .map(|(rows, _)| rows)
            .map_err(|e| StorageError(format!("D1 query failed: {}", describe(&e))))
    }

    /// Runs one statement and returns its rows.
    async fn rows(&self, sql: &str, args: &[JsValue]) -> StoreResult<Vec<Row>> {
        parse_rows(&self.json(sql, args).await?)
    }

    /// Runs one statement and returns its first row.
    async fn first(&self, sql: &str, args: &[JsValue]) -> StoreResult<Option<Row>> {
        Ok(self.rows(sql, args).await?.into_iter().next())
    }

    /// Runs statements as one batch: one round trip, in one transaction (all or none). The
    /// rows of each statement, in order.
    async fn batch(&self, statements: &[(&str, &[JsValue])]) -> StoreResult<Vec<Vec<Row>>> {
        let db = self.db()?;
        let t = now_ms();
        let pairs: Array = statements
            .iter()
            .map(|(sql, values)| JsValue::from(Array::of2(&JsValue::from_str(sql), &args(values))))
            .collect();
        let result = answer(d1_batch(db, pairs)).await;
        let (elapsed, primary) = (now_ms() - t, result.as_ref().ok().and_then(|r| r.1));
        for _ in statements {
            let share = elapsed / statements.len() as f64;
            self.meter.d1(share, primary.unwrap_or(self.primary));
        }
        let (text, _) =
            result.map_err(|e| StorageError(format!("D1 batch failed: {}", describe(&e))))?;
        let Ok(Value::Array(results)) = json::read(&text) else {
            return Err(StorageError("D1 batch rows: not an array".into()));
        };
        let mut out = Vec::with_capacity(results.len());
        for rows in results {
            out.push(rows_of(rows)?);
        }
        Ok(out)
    }
}

/// Decodes every row with `each`: one plain loop per row type, rather than an iterator
/// adapter (`collect` into a `Result`) per call site, each its own code in the Wasm.
fn decode<T>(rows: &[Row], each: fn(&Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(each(row)?);
    }
    Ok(out)
}

/// A row's `id_hash`.
fn id_hash(row: &Row) -> StoreResult<String> {
    row.text("id_hash")
}

/// Rows from their JSON text.
fn parse_rows(json: &str) -> StoreResult<Vec<Row>> {
    rows_of(json::read(json).map_err(|e| StorageError(format!("D1 rows: {e}")))?)
}

/// Rows from a JSON array of row objects.
fn rows_of(rows: Value) -> StoreResult<Vec<Row>> {
    let Value::Array(rows) = rows else {
        return Err(StorageError("D1 rows: not an array".into()));
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Value::Object(row) = row else {
            return Err(StorageError("D1 rows: a row is not an object".into()));
        };
        out.push(Row(row));
    }
    Ok(out)
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

    /// The row's required columns, read one after the other ([`Columns`]).
    fn columns(&self) -> Columns<'_> {
        Columns {
            row: self,
            failed: None,
        }
    }

    fn session(&self) -> StoreResult<SessionRecord> {
        let mut c = self.columns();
        let session = SessionRecord {
            id_hash: c.text("id_hash"),
            user_id: c.text("user_id"),
            email: c.text("email"),
            created_at: c.millis("created_at"),
            expires_at: c.millis("expires_at"),
            idle_expires_at: c.millis("idle_expires_at"),
            revoked_at: self.opt_number("revoked_at").map(Millis::from_js),
            handle: self.opt_text("handle"),
        };
        c.done(session)
    }

    fn token(&self) -> StoreResult<TokenRecord> {
        let mut c = self.columns();
        let scope = c.text("scope");
        let token = TokenRecord {
            hash: c.text("hash"),
            token: None,
            name: c.text("name"),
            scope: Scope::parse("scope", &scope).map_err(|e| StorageError(e.to_string()))?,
            created_at: c.millis("created_at"),
            created_by: c.text("created_by"),
        };
        c.done(token)
    }

    fn revocation(&self) -> StoreResult<Revocation> {
        let mut c = self.columns();
        let revocation = Revocation {
            seq: c.number("seq") as u64,
            id_hash: c.text("id_hash"),
            at: c.millis("at"),
            lingers_until: self.opt_number("lingers_until").map(Millis::from_js),
        };
        c.done(revocation)
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
        let mut c = self.columns();
        let user = User {
            id: c.text("id"),
            name: c.text("name"),
            updated_at: c.millis("updated_at"),
        };
        c.done(user)
    }

    fn step(&self) -> StoreResult<Step> {
        let document = self.opt_text("document");
        let mut c = self.columns();
        let step = Step {
            version: c.number("version") as u64,
            at: c.millis("at"),
            action: c.text("action"),
            change: c.text("change"),
            document,
        };
        c.done(step)
    }

    fn history_entry(&self) -> StoreResult<HistoryEntry> {
        let version = self.opt_number("version").map(|v| v as u64);
        let mut c = self.columns();
        let entry = HistoryEntry {
            seq: c.number("seq") as u64,
            version,
            outcome: if version.is_some() {
                "applied"
            } else {
                "refused"
            },
            at: c.millis("at"),
            actor: c.text("actor"),
            action: c.text("action"),
            base_version: c.number("base_version") as u64,
            change: json::read(&c.text("change")).unwrap_or(Value::Null),
        };
        c.done(entry)
    }
}

/// A row's required columns, read in order: each read answers a placeholder if the column
/// is missing or of the wrong type, and the first such failure is the decoder's answer.
/// The same answers as a `?` after each column, without an early return (and the drops of
/// the columns read before it) per column.
struct Columns<'a> {
    row: &'a Row,
    failed: Option<StorageError>,
}

impl Columns<'_> {
    fn keep<T: Default>(&mut self, read: StoreResult<T>) -> T {
        read.unwrap_or_else(|e| {
            self.failed.get_or_insert(e);
            T::default()
        })
    }

    fn text(&mut self, column: &str) -> String {
        let read = self.row.text(column);
        self.keep(read)
    }

    fn number(&mut self, column: &str) -> f64 {
        let read = self.row.number(column);
        self.keep(read)
    }

    fn millis(&mut self, column: &str) -> Millis {
        Millis::from_js(self.number(column))
    }

    /// `value`, unless a column failed.
    fn done<T>(self, value: T) -> StoreResult<T> {
        match self.failed {
            Some(e) => Err(e),
            None => Ok(value),
        }
    }
}

/// Rows minted before idle deadlines existed have none: their idle deadline is their absolute one.
/// A literal (for `concat!`: the queries are built at compile time).
macro_rules! session_cols {
    () => {
        "id_hash, user_id, email, created_at, expires_at, \
         COALESCE(idle_expires_at, expires_at) AS idle_expires_at, revoked_at, handle"
    };
}

/// Appends the sessions a revocation just marked (`revoked_at` = now) to the feed.
macro_rules! feed_insert {
    () => {
        "INSERT INTO revocations (id_hash, at) SELECT id_hash, revoked_at FROM sessions"
    };
}

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
        let sql = concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE id_hash = ?1"
        );
        let row = self.first(sql, &[text(id_hash)]).await?;
        row.map(|r| r.session()).transpose()
    }

    async fn revoke(&self, id_hash: &str, now: Millis) -> StoreResult<bool> {
        let sql = "UPDATE sessions SET revoked_at = ?2 WHERE id_hash = ?1 AND revoked_at IS NULL RETURNING id_hash";
        let feed = concat!(feed_insert!(), " WHERE id_hash = ?1 AND revoked_at = ?2");
        let args = [text(id_hash), at(now)];
        let results = self.batch(&[(sql, &args), (feed, &args)]).await?;
        Ok(results.first().is_some_and(|rows| !rows.is_empty()))
    }

    async fn revoke_user(
        &self,
        user: &UserId,
        except: Option<&str>,
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let sql = match except {
            None => {
                "UPDATE sessions SET revoked_at = ?2 \
                     WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                       AND COALESCE(idle_expires_at, expires_at) > ?2 RETURNING id_hash"
            }
            Some(_) => {
                "UPDATE sessions SET revoked_at = ?2 \
                        WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                          AND COALESCE(idle_expires_at, expires_at) > ?2 AND id_hash <> ?3 \
                        RETURNING id_hash"
            }
        };
        self.revoke_rows(sql, (FEED_BY_USER, user.as_str(), except), now)
            .await
    }

    async fn list(
        &self,
        q: &ListQuery,
        now: Millis,
        limit: u32,
    ) -> StoreResult<Vec<SessionRecord>> {
        let sql = concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions \
             WHERE revoked_at IS NULL AND expires_at > ?1 \
               AND COALESCE(idle_expires_at, expires_at) > ?1 \
               AND (?2 IS NULL OR user_id = ?2) \
               AND (?3 IS NULL OR created_at < ?3 OR (created_at = ?3 \
                    AND id_hash < (SELECT id_hash FROM sessions WHERE handle = ?4))) \
             ORDER BY created_at DESC, id_hash DESC LIMIT ?5"
        );
        let (after, hash) = match &q.cursor {
            Some(c) => (at(c.created_at), text(c.handle.as_str())),
            None => (JsValue::NULL, JsValue::NULL),
        };
        let user = opt_text(q.user.as_ref().map(UserId::as_str));
        let args = [at(now), user, after, hash, JsValue::from(limit)];
        let rows = self.rows(sql, &args).await?;
        decode(&rows, Row::session)
    }

    async fn renew(
        &self,
        id_hash: &str,
        now: Millis,
        idle_expires_at: Millis,
        due_until: Millis,
    ) -> StoreResult<Option<SessionRecord>> {
        // One statement: of any number of concurrent renewals, one changes the row.
        let sql = concat!(
            "UPDATE sessions SET idle_expires_at = ?3 \
             WHERE id_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
               AND COALESCE(idle_expires_at, expires_at) > ?2 \
               AND COALESCE(idle_expires_at, expires_at) <= ?4 \
             RETURNING ",
            session_cols!()
        );
        let args = [text(id_hash), at(now), at(idle_expires_at), at(due_until)];
        let row = self.first(sql, &args).await?;
        row.map(|r| r.session()).transpose()
    }

    async fn revoke_handle(
        &self,
        handle: &SessionHandle,
        owner: Option<&UserId>,
        now: Millis,
    ) -> StoreResult<Option<String>> {
        let sql = match owner {
            None => {
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                     WHERE handle = ?1 RETURNING id_hash"
            }
            Some(_) => {
                "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                        WHERE handle = ?1 AND user_id = ?3 RETURNING id_hash"
            }
        };
        let owner = owner.map(UserId::as_str);
        let hashes = self
            .revoke_rows(sql, (FEED_BY_HANDLE, handle.as_str(), owner), now)
            .await?;
        Ok(hashes.into_iter().next())
    }

    async fn revocations(
        &self,
        cursor: Option<u64>,
        since: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<FeedPage> {
        macro_rules! cols {
            () => {
                "SELECT seq, id_hash, at, lingers_until FROM revocations"
            };
        }
        let (rows, head) = match cursor {
            None => {
                // A new reader: the recent rows and the lingering ones (two indexes), and
                // where the feed ends, in one round trip.
                let recent = concat!(
                    cols!(),
                    " WHERE at >= ?1 OR lingers_until > ?2 ORDER BY seq LIMIT ?3"
                );
                let head = "SELECT COALESCE(MAX(seq), 0) AS head FROM revocations";
                let args = [at(since), at(now), JsValue::from(limit)];
                let mut results = self.batch(&[(recent, &args), (head, &[])]).await?;
                let head = match results.get(1).and_then(|r| r.first()) {
                    Some(row) => row.number("head")? as u64,
                    None => 0,
                };
                (results.swap_remove(0), head)
            }
            Some(cursor) => {
                let after = concat!(cols!(), " WHERE seq > ?1 ORDER BY seq LIMIT ?2");
                let rows = self
                    .rows(after, &[num(cursor), JsValue::from(limit)])
                    .await?;
                (rows, cursor)
            }
        };
        let rows = decode(&rows, Row::revocation)?;
        let last = rows.last().map_or(head, |r| r.seq);
        let next = match rows.len() < limit as usize {
            true => last.max(head),
            false => last,
        };
        Ok(FeedPage { rows, next })
    }

    async fn prune(
        &self,
        expired_before: Millis,
        revoked_before: Millis,
        now: Millis,
        limit: u32,
    ) -> StoreResult<()> {
        let sessions = "DELETE FROM sessions WHERE id_hash IN \
                        (SELECT id_hash FROM sessions \
                         WHERE COALESCE(idle_expires_at, expires_at) < ?1 LIMIT ?2)";
        let feed = "DELETE FROM revocations WHERE seq IN \
                    (SELECT seq FROM revocations WHERE at < ?1 \
                       AND (lingers_until IS NULL OR lingers_until < ?2) LIMIT ?3)";
        let limit = JsValue::from(limit);
        let (sessions_args, feed_args) = (
            [at(expired_before), limit.clone()],
            [at(revoked_before), at(now), limit],
        );
        let statements: [(&str, &[JsValue]); 2] = [(sessions, &sessions_args), (feed, &feed_args)];
        self.batch(&statements).await.map(|_| ())
    }

    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        let sql = "UPDATE revocations SET lingers_until = \
                     (SELECT MAX(COALESCE(s.idle_expires_at, s.expires_at), ?2 + 60000) \
                        FROM sessions s WHERE s.id_hash = revocations.id_hash) \
                   WHERE id_hash IN \
                     (SELECT id_hash FROM sessions WHERE user_id = ?1 AND expires_at > ?2)";
        self.rows(sql, &[text(user.as_str()), at(now)])
            .await
            .map(|_| ())
    }

    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()> {
        // The copy expires at the session's idle deadline, or KV's minimum lifetime after it
        // was written (now at the latest).
        let sql = "UPDATE revocations SET lingers_until = \
                     (SELECT MAX(COALESCE(idle_expires_at, expires_at), ?2 + 60000) \
                        FROM sessions WHERE id_hash = ?1) \
                   WHERE id_hash = ?1";
        self.rows(sql, &[text(id_hash), at(now)]).await.map(|_| ())
    }
}

/// The feed rows of a revocation by user (`?1`) just made (`?2`).
const FEED_BY_USER: &str = concat!(feed_insert!(), " WHERE user_id = ?1 AND revoked_at = ?2");
/// The feed rows of a revocation by handle (`?1`) just made (`?2`).
const FEED_BY_HANDLE: &str = concat!(feed_insert!(), " WHERE handle = ?1 AND revoked_at = ?2");

impl D1 {
    /// Runs `update` (`?1` the key, `?2` now, `?3` the third value if given: an owner, or a
    /// session spared) and adds the rows it revoked, found by `feed` ([`FEED_BY_USER`] or
    /// [`FEED_BY_HANDLE`]), to the feed in the same transaction; the hashes it revoked.
    async fn revoke_rows(
        &self,
        update: &str,
        (feed, key, third): (&str, &str, Option<&str>),
        now: Millis,
    ) -> StoreResult<Vec<String>> {
        let args = [text(key), at(now), third.map_or(JsValue::NULL, text)];
        let update_args = if third.is_some() {
            &args[..]
        } else {
            &args[..2]
        };
        let results = self
            .batch(&[(update, update_args), (feed, &args[..2])])
            .await?;
        let rows = results.into_iter().next().unwrap_or_default();
        decode(&rows, id_hash)
    }
}

impl AccountDb for D1 {
    async fn revoke_sessions(&self, user: &UserId, now: Millis) -> StoreResult<Vec<String>> {
        let sql = "UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?2) \
                   WHERE user_id = ?1 AND expires_at > ?2 RETURNING id_hash";
        self.revoke_rows(sql, (FEED_BY_USER, user.as_str(), None), now)
            .await
    }

    async fn erase(&self, user: &UserId, profile: Option<&ProfileId>) -> StoreResult<()> {
        let user_arg = [text(user.as_str())];
        let profile_arg = profile.map(|p| [text(p.as_str())]);
        let mut statements: Vec<(&str, &[JsValue])> = vec![
            ("DELETE FROM sessions WHERE user_id = ?1", &user_arg),
            ("DELETE FROM preferences WHERE user_id = ?1", &user_arg),
        ];
        if let Some(p) = &profile_arg {
            statements.push(("DELETE FROM users WHERE id = ?1", p));
        }
        self.batch(&statements).await.map(|_| ())
    }

    async fn linger(&self, id_hash: &str, now: Millis) -> StoreResult<()> {
        SessionDb::linger(self, id_hash, now).await
    }

    async fn linger_user(&self, user: &UserId, now: Millis) -> StoreResult<()> {
        SessionDb::linger_user(self, user, now).await
    }
}

impl SchemaDb for D1 {
    fn expected_version(&self) -> u32 {
        SCHEMA_VERSION
    }

    async fn schema(&self) -> StoreResult<Schema> {
        let sql = "SELECT name FROM sqlite_master WHERE type = 'table' \
                   AND name IN (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
        let mut args = Vec::with_capacity(TABLES.len() + 1);
        for table in TABLES.iter().chain([&MIGRATIONS_TABLE]) {
            args.push(text(table));
        }
        let rows = self.rows(sql, &args).await?;
        let present = decode(&rows, |r| r.text("name"))?;
        let has = |t: &str| present.iter().any(|p| p == t);
        let latest_migration = match has(MIGRATIONS_TABLE) {
            true => {
                let sql = concat!(
                    "SELECT name FROM ",
                    migrations_table!(),
                    " ORDER BY id DESC LIMIT 1"
                );
                let row = self.first(sql, &[]).await?;
                row.map(|r| r.text("name")).transpose()?
            }
            false => None,
        };
        let mut missing_tables = Vec::new();
        for table in TABLES.iter().filter(|t| !has(t)) {
            missing_tables.push(table.to_string());
        }
        let config_version = match has("config_history") {
            true => {
                let sql = "SELECT MAX(version) AS v FROM config_history";
                let row = self.first(sql, &[]).await?;
                row.and_then(|r| r.opt_number("v")).map(|v| v as u64)
            }
            false => None,
        };
        Ok(Schema {
            missing_tables,
            latest_migration,
            config_version,
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
        let mut sql = String::from("SELECT id, name, updated_at FROM users WHERE id IN (");
        let mut args = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("?{}", i + 1));
            args.push(text(id.as_str()));
        }
        sql.push(')');
        let rows = self.rows(&sql, &args).await?;
        decode(&rows, Row::user)
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
    async fn lease(
        &self,
        bucket: &str,
        window_start: Millis,
        wanted: u32,
        limit: u32,
    ) -> StoreResult<Lease> {
        // One statement: what is handed out is checked and raised together, so concurrent
        // leases from any isolates never hand out more than the limit. SET expressions read
        // the row as it was, so `granted` and `count` use the same old count.
        let sql = "INSERT INTO rate_limits (bucket, window_start, count, granted) \
                   VALUES (?1, ?2, MIN(?3, ?4), MIN(?3, ?4)) \
                   ON CONFLICT (bucket, window_start) DO UPDATE SET \
                     granted = MIN(?3, MAX(?4 - count, 0)), \
                     count = count + MIN(?3, MAX(?4 - count, 0)) \
                   RETURNING count, granted";
        let args = [
            text(bucket),
            at(window_start),
            JsValue::from(wanted),
            JsValue::from(limit),
        ];
        let row = self.first(sql, &args).await?;
        let row = row.ok_or_else(|| StorageError::new("lease upsert returned no row"))?;
        Ok(Lease {
            granted: row.number("granted")? as u32,
            handed_out: row.number("count")? as u64,
        })
    }

    async fn prune(&self, before: Millis) -> StoreResult<()> {
        let sql = "DELETE FROM rate_limits WHERE window_start < ?1";
        self.rows(sql, &[at(before)]).await.map(|_| ())
    }
}

impl TokenDb for D1 {
    async fn tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let sql = "SELECT hash, name, scope, created_at, created_by FROM admin_tokens \
                   ORDER BY created_at DESC, name";
        decode(&self.rows(sql, &[]).await?, Row::token)
    }

    async fn insert_token(&self, t: &TokenRecord) -> StoreResult<bool> {
        // One statement: the name's uniqueness and the table's size are checked as it inserts.
        let sql = "INSERT INTO admin_tokens (hash, name, scope, created_at, created_by) \
                   SELECT ?1, ?2, ?3, ?4, ?5 \
                   WHERE (SELECT COUNT(*) FROM admin_tokens) < ?6 \
                     AND NOT EXISTS (SELECT 1 FROM admin_tokens WHERE name = ?2) \
                   RETURNING name";
        let args = [
            text(&t.hash),
            text(&t.name),
            text(t.scope.as_str()),
            at(t.created_at),
            text(&t.created_by),
            JsValue::from(MAX_TOKENS as u32),
        ];
        Ok(self.first(sql, &args).await?.is_some())
    }

    async fn delete_token(&self, name: &str) -> StoreResult<bool> {
        let sql = "DELETE FROM admin_tokens WHERE name = ?1 RETURNING name";
        Ok(self.first(sql, &[text(name)]).await?.is_some())
    }
}

impl UsageDb for D1 {
    async fn record(
        &self,
        names: &[String],
        when: Millis,
        bulk_at: Option<Millis>,
    ) -> StoreResult<()> {
        // One statement for every name (a JSON array through `json_each`), one for the bulk row.
        let sql = "INSERT INTO flag_usage (name, last_evaluated_at) \
                   SELECT value, ?2 FROM json_each(?1) WHERE true \
                   ON CONFLICT (name) DO UPDATE SET last_evaluated_at = \
                   max(last_evaluated_at, excluded.last_evaluated_at)";
        let list = serde_json::to_string(names).map_err(|e| StorageError(e.to_string()))?;
        let by_name = [text(&list), at(when)];
        let bulk = bulk_at.map(|b| [text(usage::ALL), at(b)]);
        let mut statements: Vec<(&str, &[JsValue])> = Vec::with_capacity(2);
        if !names.is_empty() {
            statements.push((sql, &by_name));
        }
        if let Some(bulk) = &bulk {
            let one = "INSERT INTO flag_usage (name, last_evaluated_at) VALUES (?1, ?2) \
                       ON CONFLICT (name) DO UPDATE SET last_evaluated_at = \
                       max(last_evaluated_at, excluded.last_evaluated_at)";
            statements.push((one, bulk));
        }
        self.batch(&statements).await.map(|_| ())
    }

    async fn usage(&self) -> StoreResult<Vec<(String, Millis)>> {
        let rows = self
            .rows("SELECT name, last_evaluated_at FROM flag_usage", &[])
            .await?;
        decode(&rows, |r| {
            Ok((
                r.text("name")?,
                Millis::from_js(r.number("last_evaluated_at")?),
            ))
        })
    }
}

impl ConfigDb for D1 {
    async fn chain(&self, upto: Option<u64>) -> StoreResult<Vec<Step>> {
        // The newest whole document at or before `upto` is found through the partial index
        // `config_history_whole` (migration 0009), whose condition this repeats.
        let sql = "SELECT version, at, action, change, document FROM config_history \
                   WHERE version <= ?1 AND version >= COALESCE((SELECT MAX(version) \
                   FROM config_history WHERE version <= ?1 \
                   AND (document IS NOT NULL OR action = 'put')), 0) \
                   ORDER BY version";
        let upto = upto.map_or(MAX_SAFE_INTEGER, |v| v as f64);
        let rows = self.rows(sql, &[JsValue::from(upto)]).await?;
        decode(&rows, Row::step)
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
                   RETURNING version";
        let args = [
            at(e.at),
            text(e.actor),
            text(e.action.as_str()),
            num(e.base),
            text(e.change),
            opt_text(e.document),
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
        decode(&rows, Row::history_entry)
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
