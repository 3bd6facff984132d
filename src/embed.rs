//! edgestate inside another workers-rs Worker: verify a session in your own handler, read the
//! config and its flags, call the rate limiter and the stale-while-revalidate cache with your
//! own fetcher, or mount all of edgestate's routes beside yours ([`crate::handle`]).
//!
//! ```ignore
//! use edgestate::Edgestate;
//!
//! let edge = Edgestate::from_env(&env);
//! let session = edge.session(&req).await?;          // 401 as ApiError::Unauthorized
//! if edge.flag("newCheckout").await? { /* ... */ }
//! edge.rate_limit("search", "203.0.113.7").await?;  // ApiError::RateLimited past the limit
//! let report = edge.cached("report:42", 60, || load_report(42)).await?;
//! ```

use crate::clock;
use crate::ctx::RuntimeTimer;
use crate::domain::config::{self, AppConfig};
use crate::domain::ids::FlagName;
use crate::domain::kv::KvKey;
use crate::domain::ratelimit::{self, Decision};
use crate::domain::sessions::{self, Check, Lifetime, SessionStores, SessionView};
use crate::domain::swr::{self, Lookup};
use crate::domain::versions::{self, Stores};
use crate::error::{ApiResult, StoreResult};
use crate::isolate::Isolate;
use crate::routes::auth;
use crate::storage::d1::D1;
use crate::storage::kv::WorkersKv;
use crate::storage::meter::Meter;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::rc::Rc;
use worker::{Env, Request};

/// Prefix of the KV keys [`Edgestate::cached`] uses, apart from edgestate's own.
pub const CACHE_PREFIX: &str = "swr:";

/// edgestate's stores and isolate state, for use in another Worker's handlers. Create one
/// per request; it is cheap.
pub struct Edgestate {
    kv: WorkersKv,
    d1: D1,
    isolate: &'static Isolate,
    meter: Rc<Meter>,
}

impl Edgestate {
    /// Binds to the `CACHE` (KV) and `DB` (D1) bindings of `env`.
    pub fn from_env(env: &Env) -> Self {
        let meter = Rc::new(Meter::default());
        Edgestate {
            kv: WorkersKv::from_env(env, meter.clone()),
            d1: D1::from_env(env, meter.clone()),
            isolate: crate::isolate::state(),
            meter,
        }
    }

    /// A copy for work after the response (`ctx.wait_until`), whose storage work is not
    /// counted in this handle's [`Edgestate::server_timing`].
    pub fn detached(&self) -> Edgestate {
        Edgestate {
            kv: self.kv.detached(),
            d1: self.d1.detached(),
            isolate: self.isolate,
            meter: Rc::new(Meter::default()),
        }
    }

    /// The session a request presents (`Authorization: Bearer` or cookie `__Host-session`),
    /// checked KV first and D1 on a miss (and against D1 at least every 10 s per isolate),
    /// and renewed on use, as edgestate's own session routes do. A missing, unknown,
    /// expired, idle or revoked session is `ApiError::Unauthorized`.
    pub async fn session(&self, req: &Request) -> ApiResult<SessionView> {
        let header = |name: &str| req.headers().get(name).ok().flatten();
        let (authorization, cookie) = (header("authorization"), header("cookie"));
        let id = auth::session_id(authorization.as_deref(), cookie.as_deref())?;
        let st = SessionStores {
            kv: &self.kv,
            db: &self.d1,
            timer: &RuntimeTimer,
            checks: &self.isolate.sessions,
            lifetime: Lifetime::of(&*self.config().await),
        };
        Ok(sessions::authenticate(&st, clock::now(), &id, Check::Fast).await?)
    }

    /// The app config: this isolate's copy, re-read from KV every 5 seconds.
    /// A `config:app` written from outside the Worker is adopted as the next version when
    /// this isolate already serves a versioned config (edgestate's own routes also adopt it
    /// after answering when it does not).
    pub async fn config(&self) -> Rc<AppConfig> {
        let config = config::current(&self.kv, &self.isolate.config, clock::now()).await;
        let Some((hash, text)) = self.isolate.config.take_unversioned() else {
            return config;
        };
        if config.version == 0 {
            return config;
        }
        let stores = Stores {
            db: &self.d1,
            kv: &self.kv,
            cache: &self.isolate.config,
            timer: &RuntimeTimer,
        };
        versions::adopt(&stores, hash, &text)
            .await
            .unwrap_or(config)
    }

    /// Whether feature flag `name` is on for an empty context now: a boolean flag's value, the
    /// answer of a flag with variants when it is a boolean, else whether that flag is
    /// enabled (an unknown flag is off; a malformed name is `ApiError::InvalidRequest`).
    pub async fn flag(&self, name: &str) -> ApiResult<bool> {
        let name = FlagName::parse("name", name)?;
        Ok(self.config().await.flag(&name, clock::now()))
    }

    /// Counts one request of `client` in rate-limit `group` with the config's limits and
    /// tier; past the limit the error is `ApiError::RateLimited` (with `Retry-After`).
    pub async fn rate_limit(&self, group: &str, client: &str) -> ApiResult<Decision> {
        let (config, now) = (self.config().await, clock::now());
        let client = ratelimit::client(Some(client));
        let decision = if config.is_strict(group) {
            let leases = &self.isolate.leases;
            let strict =
                ratelimit::check_strict(&self.d1, leases, &config, group, &client, now).await?;
            strict.decision
        } else {
            let st = self.isolate.approx_state();
            ratelimit::check_approx(&self.kv, st, &config, group, &client, now).await?
        };
        Ok(decision.into_result()?)
    }

    /// Reads `key` (stored under `swr:<key>`) through the stale-while-revalidate cache:
    /// fresh for `ttl_seconds`, then served stale for as long again while you refresh it
    /// (`lookup.refresh`: call [`Edgestate::refresh`] inside `ctx.wait_until`), then fetched.
    pub async fn cached<T, F, Fut>(
        &self,
        key: &str,
        ttl_seconds: u64,
        fetch: F,
    ) -> ApiResult<Lookup<T>>
    where
        T: Serialize + DeserializeOwned + Clone,
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<T>>>,
    {
        let key = KvKey::new(CACHE_PREFIX, key)?;
        Ok(swr::get(&self.kv, &key, ttl_seconds, clock::now(), fetch).await?)
    }

    /// The background half of a stale [`Edgestate::cached`] read: fetch and store.
    pub async fn refresh<T, F, Fut>(&self, key: &str, ttl_seconds: u64, fetch: F)
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = StoreResult<Option<T>>>,
    {
        if let Ok(key) = KvKey::new(CACHE_PREFIX, key) {
            swr::refresh(&self.kv, &key, ttl_seconds, clock::now(), fetch).await;
        }
    }

    /// The storage work done through this handle, as a `Server-Timing` header value.
    pub fn server_timing(&self) -> String {
        self.meter.server_timing()
    }
}
