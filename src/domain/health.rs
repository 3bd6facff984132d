//! The Worker's view of its own set-up: which bindings it has, whether the admin token is
//! set, whether D1 holds the schema this code queries, and what KV holds as the config.
//!
//! Two users: the first request of every isolate logs each problem once as a warning that
//! names its fix ([`setup_warnings`], [`schema_warning`]), and `GET /health?deep=1` reports
//! all of it to an admin ([`report`]). Plain `GET /health` uses none of this and touches no
//! storage.

use crate::domain::config::{parse_stored, version_of, KV_KEY as CONFIG_KEY};
use crate::domain::error::StoreResult;
use crate::domain::kv::Kv;
use serde::Serialize;

/// This build's version (`version` in Cargo.toml), shown by `GET /` and `GET /health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A binding the Worker expects, and whether the platform gave it one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    /// Its name in `wrangler.toml`.
    pub name: &'static str,
    /// Whether the environment has it.
    pub bound: bool,
}

/// What the Worker was started with, known without any storage work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setup {
    /// The KV namespace.
    pub kv: Binding,
    /// The D1 database.
    pub d1: Binding,
    /// Whether `ADMIN_TOKEN` is set (and not empty).
    pub admin_token_set: bool,
    /// Whether it is at least [`MIN_ADMIN_TOKEN_CHARS`] long.
    pub admin_token_strong: bool,
    /// Entries of `ALLOWED_ORIGINS` that are not exact origins, and so are ignored.
    pub ignored_origins: Vec<String>,
}

/// What D1 holds of the schema.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    /// Tables the Worker queries that do not exist.
    pub missing_tables: Vec<String>,
    /// The newest migration `wrangler d1 migrations apply` recorded (`None`: no record, as
    /// when the schema was applied some other way).
    pub latest_migration: Option<String>,
    /// The config history's newest version (`None`: no history yet).
    pub config_version: Option<u64>,
}

impl Schema {
    /// The number of the newest recorded migration (`0002_x.sql` → 2).
    pub fn version(&self) -> Option<u32> {
        let name = self.latest_migration.as_deref()?;
        let end = name.bytes().position(|b| !b.is_ascii_digit());
        let digits = name.get(..end.unwrap_or(name.len()))?;
        crate::domain::json::decimal(digits).and_then(|n| u32::try_from(n).ok())
    }
}

/// The D1 side of the self-check.
#[allow(async_fn_in_trait)]
pub trait SchemaDb {
    /// The number of the newest migration this code needs.
    fn expected_version(&self) -> u32;
    /// What D1 holds of the schema (two or three queries).
    async fn schema(&self) -> StoreResult<Schema>;
}

/// The shortest admin token not reported as weak: 32 random bytes written in base64url (what
/// `npm run provision` generates, and the shortest it accepts).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 43;

/// One warning per problem of the set-up, each naming its fix.
pub fn setup_warnings(setup: &Setup) -> Vec<String> {
    let mut out = Vec::new();
    if !setup.kv.bound {
        out.push(format!(
            "KV binding \"{}\" is missing: the config is the defaults, nothing is cached and \
             sessions are checked in D1 only. Fix: a [[kv_namespaces]] entry with binding = \"{}\" \
             in wrangler.toml (npm run provision creates the namespace at the edge).",
            setup.kv.name, setup.kv.name
        ));
    }
    if !setup.d1.bound {
        out.push(format!(
            "D1 binding \"{}\" is missing: sessions, preferences, profiles and strict rate limits \
             answer 503. Fix: a [[d1_databases]] entry with binding = \"{}\" in wrangler.toml \
             (npm run provision creates the database at the edge).",
            setup.d1.name, setup.d1.name
        ));
    }
    if !setup.admin_token_set {
        out.push(
            "ADMIN_TOKEN is not set: every admin route answers 401. Fix: locally, ADMIN_TOKEN=... \
             in .dev.vars (npm run dev copies .dev.vars.example); at the edge, \
             npx wrangler secret put ADMIN_TOKEN (or npm run provision)."
                .to_string(),
        );
    } else if !setup.admin_token_strong {
        out.push(format!(
            "ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_CHARS} characters: it can be guessed. \
             Fix: 32 random bytes (openssl rand -base64 32), or npm run provision -- \
             --rotate-admin-token to generate one."
        ));
    }
    for entry in &setup.ignored_origins {
        out.push(format!(
            "ALLOWED_ORIGINS: ignoring {}: list exact origins such as \
             https://app.example.com (scheme, host, optional port; no wildcard, path or trailing \
             slash).",
            crate::domain::json::quoted(entry)
        ));
    }
    out
}

/// `items` joined with ", " (a loop: `join` is code of its own in the Wasm).
fn comma_separated(items: &[String]) -> String {
    let mut out = String::new();
    for item in items {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(item);
    }
    out
}

/// The warning for a D1 that lacks (part of) the schema, if it does; `binding` names it.
pub fn schema_warning(
    binding: &str,
    expected: u32,
    schema: &StoreResult<Schema>,
) -> Option<String> {
    let fix = format!(
        "Fix: npx wrangler d1 migrations apply {binding} --local (npm run dev does this) or --remote."
    );
    match schema {
        Err(e) => Some(format!(
            "D1 self-check failed ({}); is the database reachable?",
            e.0
        )),
        Ok(s) if !s.missing_tables.is_empty() => Some(format!(
            "D1 binding \"{binding}\" lacks the tables {}: the migrations are not applied, and \
             requests that need those tables answer 503. {fix}",
            comma_separated(&s.missing_tables)
        )),
        Ok(s) if s.version().is_some_and(|v| v < expected) => Some(format!(
            "D1 binding \"{binding}\" is at schema version {}, this Worker needs {expected}. {fix}",
            s.version().unwrap_or_default()
        )),
        Ok(_) => None,
    }
}

/// The KV part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvCheck {
    /// The binding's name.
    pub binding: &'static str,
    /// Whether the environment has it.
    pub bound: bool,
    /// Bound, and a read of the config answered.
    pub ok: bool,
    /// What KV holds under `config:app`: `stored` (a valid document), `absent` (the
    /// defaults are served: not seeded), `invalid` (ignored, logged); `null` if unread.
    pub config: Option<&'static str>,
    /// The version its metadata names (0: none, as a `wrangler kv bulk put` writes it);
    /// `null` when no document was read.
    #[serde(rename = "configVersion")]
    pub config_version: Option<u64>,
}

/// The D1 part of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct D1Check {
    /// The binding's name.
    pub binding: &'static str,
    /// Whether the environment has it.
    pub bound: bool,
    /// Bound, answering, every table present and the schema not behind.
    pub ok: bool,
    /// The newest recorded migration's number (`null`: no record).
    pub schema_version: Option<u32>,
    /// The newest migration this code needs.
    pub expected_schema_version: u32,
    /// The newest recorded migration's file name.
    pub latest_migration: Option<String>,
    /// Tables the Worker queries that do not exist.
    pub missing_tables: Vec<String>,
    /// The config history's newest version (`null`: no history, or unread).
    pub config_version: Option<u64>,
}

/// What `GET /health?deep=1` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `ok` when every check passes, else `degraded`.
    pub status: &'static str,
    /// This build's version.
    pub version: &'static str,
    /// Whether `ADMIN_TOKEN` is set (always true when an admin could ask).
    pub admin_token: bool,
    /// Whether it is long enough not to be reported as weak ([`MIN_ADMIN_TOKEN_CHARS`]). A
    /// weak token is warned of; it does not make the status `degraded`.
    pub admin_token_strong: bool,
    /// KV.
    pub kv: KvCheck,
    /// D1 and its schema.
    pub d1: D1Check,
    /// `ALLOWED_ORIGINS` entries that are ignored.
    pub ignored_origins: Vec<String>,
    /// Whether KV's copy of the config is D1's newest version (true without a history).
    /// False for up to KV's propagation bound after a write made elsewhere, and while a
    /// document written from outside awaits adoption.
    pub config_in_sync: bool,
}

/// Reads the config from KV and the schema from D1 (the stores of an unbound binding are
/// not asked) and reports everything. Failures are part of the report, not errors.
pub async fn report<K: Kv, D: SchemaDb>(kv: &K, db: &D, setup: &Setup) -> Report {
    let (config, kv_version) = match setup.kv.bound {
        true => config_state(kv).await,
        false => (None, None),
    };
    let schema = match setup.d1.bound {
        true => Some(db.schema().await),
        false => None,
    };
    if let Some(Err(e)) = &schema {
        crate::log::warn_cause("deep health: D1 schema query failed", &e.0);
    }
    let expected = db.expected_version();
    let d1_ok = schema
        .as_ref()
        .is_some_and(|s| schema_warning(setup.d1.name, expected, s).is_none());
    let schema = schema.and_then(Result::ok).unwrap_or_default();
    let config_version = schema.config_version;
    let config_in_sync = config_version.is_none_or(|v| kv_version == Some(v));
    let kv = KvCheck {
        binding: setup.kv.name,
        bound: setup.kv.bound,
        ok: config.is_some(),
        config,
        config_version: kv_version,
    };
    let d1 = D1Check {
        binding: setup.d1.name,
        bound: setup.d1.bound,
        ok: d1_ok,
        schema_version: schema.version(),
        expected_schema_version: expected,
        latest_migration: schema.latest_migration,
        missing_tables: schema.missing_tables,
        config_version,
    };
    let healthy = kv.ok
        && d1.ok
        && config_in_sync
        && setup.admin_token_set
        && setup.ignored_origins.is_empty();
    Report {
        status: if healthy { "ok" } else { "degraded" },
        version: VERSION,
        admin_token: setup.admin_token_set,
        admin_token_strong: setup.admin_token_strong,
        kv,
        d1,
        ignored_origins: setup.ignored_origins.clone(),
        config_in_sync,
    }
}

/// `stored`, `absent` or `invalid` and the version KV's metadata names; `None` if KV did
/// not answer (logged).
async fn config_state<K: Kv>(kv: &K) -> (Option<&'static str>, Option<u64>) {
    match kv.get_with_metadata(&CONFIG_KEY).await {
        Ok(None) => (Some("absent"), None),
        Ok(Some((text, meta))) => {
            let valid = parse_stored(&text, 0).is_some();
            let state = if valid { "stored" } else { "invalid" };
            (Some(state), Some(version_of(meta.as_ref())))
        }
        Err(e) => {
            crate::log::warn_cause("deep health: KV read failed", &e.0);
            (None, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::StorageError;
    use crate::storage::fake::{block_on, MemKv, MemSchema};

    fn setup() -> Setup {
        Setup {
            kv: Binding {
                name: "CACHE",
                bound: true,
            },
            d1: Binding {
                name: "DB",
                bound: true,
            },
            admin_token_set: true,
            admin_token_strong: true,
            ignored_origins: vec![],
        }
    }

    fn migrated(version: &str) -> MemSchema {
        MemSchema {
            schema: Some(Schema {
                missing_tables: vec![],
                latest_migration: Some(format!("{version}_x.sql")),
                config_version: None,
            }),
            expected: 2,
        }
    }

    #[test]
    fn a_complete_setup_warns_of_nothing() {
        assert!(setup_warnings(&setup()).is_empty());
        let ok = Ok(migrated("0002").schema.unwrap());
        assert_eq!(schema_warning("DB", 2, &ok), None);
    }

    #[test]
    fn each_problem_is_one_warning_naming_its_fix() {
        let mut s = setup();
        s.kv.bound = false;
        s.d1.bound = false;
        s.admin_token_set = false;
        s.ignored_origins = vec!["*".into()];
        let w = setup_warnings(&s);
        assert_eq!(w.len(), 4);
        assert!(w[0].contains("\"CACHE\"") && w[0].contains("[[kv_namespaces]]"));
        assert!(w[1].contains("\"DB\"") && w[1].contains("[[d1_databases]]"));
        assert!(w[2].contains("ADMIN_TOKEN") && w[2].contains("wrangler secret put"));
        assert!(w[3].contains("\"*\""));
    }

    #[test]
    fn a_short_admin_token_is_one_warning_saying_how_to_make_a_strong_one() {
        let mut s = setup();
        s.admin_token_strong = false;
        let w = setup_warnings(&s);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("ADMIN_TOKEN is shorter than 43 characters"),
            "{}",
            w[0]
        );
        assert!(w[0].contains("openssl rand -base64 32"));
        s.admin_token_set = false;
        let unset = setup_warnings(&s);
        assert!(
            unset.len() == 1 && unset[0].contains("is not set"),
            "unset, not weak"
        );
    }

    #[test]
    fn missing_tables_or_an_old_schema_name_the_migrations() {
        let missing = Ok(Schema {
            missing_tables: vec!["sessions".into(), "users".into()],
            latest_migration: None,
            config_version: None,
        });
        let w = schema_warning("DB", 2, &missing).unwrap();
        assert!(w.contains("sessions, users") && w.contains("migrations apply DB"));
        let behind = Ok(migrated("0001").schema.unwrap());
        let w = schema_warning("DB", 2, &behind).unwrap();
        assert!(w.contains("schema version 1") && w.contains("needs 2"));
        let unrecorded = Ok(Schema::default());
        assert_eq!(schema_warning("DB", 2, &unrecorded), None);
        let failed = Err(StorageError::new("D1 down"));
        assert!(schema_warning("DB", 2, &failed)
            .unwrap()
            .contains("D1 down"));
    }

    #[test]
    fn schema_versions_come_from_migration_file_names() {
        let v = |name: &str| {
            Schema {
                latest_migration: Some(name.into()),
                ..Schema::default()
            }
            .version()
        };
        assert_eq!(v("0002_session_handles.sql"), Some(2));
        assert_eq!(v("0010_x.sql"), Some(10));
        assert_eq!(v("init.sql"), None);
        assert_eq!(Schema::default().version(), None);
    }

    #[test]
    fn the_report_reads_config_and_schema() {
        let kv = MemKv::default();
        let r = block_on(report(&kv, &migrated("0002"), &setup()));
        assert_eq!(r.status, "ok");
        assert_eq!(r.kv.config, Some("absent"));
        assert_eq!(r.d1.schema_version, Some(2));
        assert!(r.d1.ok);
        kv.insert("config:app", "{\"maintenanceMode\":false}");
        let r = block_on(report(&kv, &migrated("0002"), &setup()));
        assert_eq!(r.kv.config, Some("stored"));
        kv.insert("config:app", "{\"maintenanceMode\":1}");
        let r = block_on(report(&kv, &migrated("0002"), &setup()));
        assert_eq!(r.kv.config, Some("invalid"));
        assert_eq!(r.status, "ok", "an invalid config is logged and ignored");
    }

    #[test]
    fn a_kv_copy_that_is_not_d1s_newest_version_is_degraded() {
        let kv = MemKv::default();
        let mut db = migrated("0002");
        let r = block_on(report(&kv, &db, &setup()));
        assert!(r.config_in_sync, "no history: nothing to disagree with");
        if let Some(s) = db.schema.as_mut() {
            s.config_version = Some(3);
        }
        kv.insert("config:app", "{\"maintenanceMode\":false}");
        let r = block_on(report(&kv, &db, &setup()));
        assert_eq!(
            (r.kv.config_version, r.d1.config_version),
            (Some(0), Some(3))
        );
        assert_eq!((r.status, r.config_in_sync), ("degraded", false));
        let tagged = crate::domain::kv::KvMetadata::new(serde_json::json!({"version": 3})).ok();
        kv.insert_with_metadata("config:app", "{\"maintenanceMode\":false}", tagged);
        let r = block_on(report(&kv, &db, &setup()));
        assert_eq!((r.status, r.config_in_sync), ("ok", true));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["kv"]["configVersion"], 3);
        assert_eq!(json["d1"]["configVersion"], 3);
        kv.remove("config:app");
        let r = block_on(report(&kv, &db, &setup()));
        assert_eq!((r.status, r.kv.config_version), ("degraded", None));
    }

    #[test]
    fn failures_and_gaps_are_reported_as_degraded() {
        let kv = MemKv::default();
        kv.fail(true);
        let r = block_on(report(&kv, &migrated("0001"), &setup()));
        assert_eq!((r.status, r.kv.ok, r.kv.config), ("degraded", false, None));
        assert!(!r.d1.ok, "schema 1 of 2");
        let mut s = setup();
        s.d1.bound = false;
        let unasked = MemSchema {
            schema: None,
            expected: 2,
        };
        let r = block_on(report(&MemKv::default(), &unasked, &s));
        assert_eq!((r.status, r.d1.bound, r.d1.ok), ("degraded", false, false));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["d1"]["schemaVersion"], serde_json::Value::Null);
        assert_eq!(json["adminToken"], true);
    }
}
