//! The per-request context: the stores (created on first use, so a route that touches no
//! storage pays nothing for them), the config (read on first use), `now`, the isolate's
//! state, and deferred work. Only the pipeline and the route handlers see it.

pub use crate::clock::RuntimeTimer;
use crate::domain::access::AccessPolicy;
use crate::domain::config::{self, AppConfig};
use crate::domain::health::{Binding, Setup, MIN_ADMIN_TOKEN_CHARS};
use crate::domain::sessions::{Lifetime, SessionStores};
use crate::domain::time::Millis;
use crate::domain::usage;
use crate::domain::versions::{self, Stores};
use crate::isolate::{Flight, Isolate};
use crate::origins::AllowedOrigins;
use crate::storage::d1::{self, ReadFrom, D1};
use crate::storage::env_value;
use crate::storage::kv::{self, WorkersKv};
use crate::storage::meter::Meter;
use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{Context, Env};

/// Work handed to the runtime as a promise: the response of a request that awaits storage,
/// and deferred work. One type for both, so the promise adapter is compiled once.
pub type Task = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// The promise the runtime awaits for `task`.
pub fn promise(task: Task) -> worker::js_sys::Promise {
    future_to_promise(task)
}

/// Deferred work as a [`Task`] (one instantiation for every deferred closure).
async fn finish(work: Pin<Box<dyn Future<Output = ()>>>) -> Result<JsValue, JsValue> {
    work.await;
    Ok(JsValue::UNDEFINED)
}

/// Everything a handler needs for one request.
pub struct Ctx {
    /// The start of the request.
    pub now: Millis,
    /// This isolate's state.
    pub isolate: &'static Isolate,
    env: Env,
    runtime: Context,
    meter: Rc<Meter>,
    kv: OnceCell<WorkersKv>,
    d1: OnceCell<D1>,
    config: OnceCell<Rc<AppConfig>>,
}

impl Ctx {
    /// The context of a request that started at `now`.
    pub fn new(env: Env, runtime: Context, meter: Rc<Meter>, now: Millis) -> Ctx {
        Ctx {
            now,
            isolate: crate::isolate::state(),
            env,
            runtime,
            meter,
            kv: OnceCell::new(),
            d1: OnceCell::new(),
            config: OnceCell::new(),
        }
    }

    /// KV, metered into this request's `Server-Timing`.
    pub fn kv(&self) -> &WorkersKv {
        self.kv
            .get_or_init(|| WorkersKv::from_env(&self.env, self.meter.clone()))
    }

    /// D1, metered into this request's `Server-Timing`.
    pub fn d1(&self) -> &D1 {
        self.d1
            .get_or_init(|| D1::from_env(&self.env, self.meter.clone()))
    }

    /// A D1 session on the primary: the newest state, and a bookmark of its writes
    /// ([`D1::bookmark`]) for the client to send back.
    pub fn d1_primary(&self) -> D1 {
        self.d1().reading(&ReadFrom::Primary)
    }

    /// A D1 session whose reads any replica may serve (the nearest).
    pub fn d1_replica(&self) -> D1 {
        self.d1().reading(&ReadFrom::AnyReplica)
    }

    /// A D1 session whose reads see at least what `bookmark` names (a client's own write).
    pub fn d1_after(&self, bookmark: String) -> D1 {
        self.d1().reading(&ReadFrom::After(bookmark))
    }

    /// What session code needs: KV, D1, the platform clock, this isolate's D1 checks and
    /// the config's session lifetime.
    pub async fn sessions(&self) -> SessionStores<'_, WorkersKv, D1, RuntimeTimer> {
        SessionStores {
            kv: self.kv(),
            db: self.d1(),
            timer: &RuntimeTimer,
            checks: &self.isolate.sessions,
            lifetime: Lifetime::of(&*self.config().await),
        }
    }

    /// The config, read once per request (from the isolate's copy, or KV when that is old).
    pub async fn config(&self) -> Rc<AppConfig> {
        if let Some(config) = self.config.get() {
            return config.clone();
        }
        let config = self.read_config().await;
        self.config.get_or_init(|| config).clone()
    }

    /// The config when the client has seen `version`: if this request's copy is older, the
    /// isolate re-reads KV (at most once a second) and, if KV here still lags, D1 (at most
    /// once per 10 s), so a client never gets an older version than it has seen while the
    /// authority can tell it a newer one.
    pub async fn config_at_least(&self, version: u64) -> Rc<AppConfig> {
        let config = self.config().await;
        if config.version >= version {
            return config;
        }
        self.isolate.config.want(version, self.now);
        self.read_config().await
    }

    /// The isolate's copy or KV's, adopting a document written from outside, and D1's head
    /// when a client has seen a newer version than both.
    async fn read_config(&self) -> Rc<AppConfig> {
        let mut config = config::current(self.kv(), &self.isolate.config, self.now).await;
        if let Some((hash, text)) = self.isolate.config.take_unversioned() {
            // A versioned copy means D1 has a history: a document without a version is new,
            // adopted before answering. Else (most often a deployment without a history) D1
            // is asked after the response, off the request's path.
            if config.version == 0 {
                self.defer(|d| async move {
                    versions::adopt(&d.config_stores(), hash, &text).await;
                });
            } else {
                let timer = self.timer();
                let stores = Stores {
                    db: self.d1(),
                    kv: self.kv(),
                    cache: &self.isolate.config,
                    timer: &timer,
                };
                if let Some(adopted) = versions::adopt(&stores, hash, &text).await {
                    config = adopted;
                }
            }
        }
        if self.isolate.config.ask_authority(config.version, self.now) {
            config = self.authority_config(config).await;
        }
        if self.isolate.config.settle_due(&config, self.now) {
            let now = self.now;
            self.defer(move |d| async move { versions::settle(&d.config_stores(), now).await });
        }
        config
    }

    /// D1's head when it is newer than `served` (a client has seen a version this location's
    /// KV does not have yet), made this isolate's copy; else `served`.
    async fn authority_config(&self, served: Rc<AppConfig>) -> Rc<AppConfig> {
        match versions::authoritative(self.d1(), self.kv()).await {
            Ok(head) if head.version > served.version => {
                let head = Rc::new(head);
                self.isolate.config.remember(head.clone(), self.now);
                head
            }
            Ok(_) => served,
            Err(_) => {
                crate::log::warn("reading the config's newest version from D1 failed");
                served
            }
        }
    }

    /// Notes that flag `name` was evaluated, or every flag (`None`: a bulk evaluation), and
    /// writes what this isolate noted to D1 after the response if a minute has passed since
    /// its last write (`domain::usage`).
    pub fn evaluated(&self, name: Option<&str>) {
        match name {
            Some(name) => self.isolate.usage.evaluated(name),
            None => self.isolate.usage.evaluated_all(self.now),
        }
        if let Some(noted) = self.isolate.usage.take_due(self.now) {
            let now = self.now;
            self.defer(move |d| async move { usage::write(&d.d1, &noted, now).await });
        }
    }

    /// The admin token secret; `None` when unset or empty.
    pub fn admin_token(&self) -> Option<String> {
        text_var(&self.env, "ADMIN_TOKEN").filter(|s| !s.is_empty())
    }

    /// The Cloudflare Access application admin requests may come through
    /// (`ACCESS_TEAM_DOMAIN` and `ACCESS_AUD`), if both are set.
    pub fn access_policy(&self) -> Option<AccessPolicy> {
        let var = |name| text_var(&self.env, name).unwrap_or_default();
        AccessPolicy::new(&var("ACCESS_TEAM_DOMAIN"), &var("ACCESS_AUD"))
    }

    /// The origins CORS allows (`ALLOWED_ORIGINS`), parsed once per isolate.
    pub fn origins(&self) -> &AllowedOrigins {
        self.isolate.origins.get_or_init(|| {
            AllowedOrigins::parse(&text_var(&self.env, "ALLOWED_ORIGINS").unwrap_or_default())
        })
    }

    /// What this Worker was started with: its bindings, whether the admin token is set, the
    /// `ALLOWED_ORIGINS` entries it ignores. No storage work.
    pub fn setup(&self) -> Setup {
        let token = self.admin_token();
        let strong = token
            .as_ref()
            .is_some_and(|t| t.len() >= MIN_ADMIN_TOKEN_CHARS);
        Setup {
            kv: Binding {
                name: kv::BINDING,
                bound: bound(&self.env, kv::BINDING),
            },
            d1: Binding {
                name: d1::BINDING,
                bound: bound(&self.env, d1::BINDING),
            },
            admin_token_set: token.is_some(),
            admin_token_strong: strong,
            ignored_origins: self.origins().ignored.clone(),
        }
    }

    /// The platform clock, for work that waits.
    pub fn timer(&self) -> RuntimeTimer {
        RuntimeTimer
    }

    /// Claims the single flight for `key` in this isolate: `None` if work on it is under way.
    pub fn flight(&self, key: &str) -> Option<Flight> {
        self.isolate.flights.begin(key)
    }

    /// Runs `work` after the response is sent (`waitUntil`), with stores whose operations are
    /// not counted in this response's `Server-Timing`.
    pub fn defer<W, F>(&self, work: W)
    where
        W: FnOnce(Deferred) -> F,
        F: Future<Output = ()> + 'static,
    {
        self.spawn(Box::pin(work(self.deferred())));
    }

    /// [`Ctx::defer`] under the single flight for `key`: skipped if work on it is under way.
    pub fn defer_once<W, F>(&self, key: &str, work: W)
    where
        W: FnOnce(Deferred) -> F,
        F: Future<Output = ()> + 'static,
    {
        if let Some(flight) = self.flight(key) {
            self.spawn_holding(flight, Box::pin(work(self.deferred())));
        }
    }

    /// Hands `work` to the runtime under `flight` (not generic: one copy for every caller).
    fn spawn_holding(&self, flight: Flight, work: Pin<Box<dyn Future<Output = ()>>>) {
        self.spawn(Box::pin(holding(flight, work)));
    }

    /// What deferred work gets.
    fn deferred(&self) -> Deferred {
        Deferred {
            kv: self.kv().detached(),
            d1: self.d1().detached(),
            isolate: self.isolate,
        }
    }

    /// Hands boxed deferred work to the runtime: one `waitUntil` promise adapter for all of
    /// it, and the same as the response's (`worker`'s own `wait_until` would add a third).
    fn spawn(&self, work: Pin<Box<dyn Future<Output = ()>>>) {
        let runtime: &worker::worker_sys::Context = self.runtime.as_ref();
        if !wait_until(runtime, &promise(Box::pin(finish(work)))) {
            crate::log::warn("waitUntil refused deferred work");
        }
    }
}

#[worker::wasm_bindgen::prelude::wasm_bindgen(inline_js = "
export function waitUntil(context, promise) {
  try {
    context.waitUntil(promise);
    return true;
  } catch {
    return false;
  }
}")]
extern "C" {
    /// `context.waitUntil(promise)`: false if the runtime refused it (caught in JS, without
    /// `catch` glue).
    #[wasm_bindgen(js_name = waitUntil)]
    fn wait_until(context: &worker::worker_sys::Context, promise: &worker::js_sys::Promise)
        -> bool;
}

/// Runs `work`, then gives `flight` back (one wrapper for every single-flight job).
async fn holding(flight: Flight, work: Pin<Box<dyn Future<Output = ()>>>) {
    work.await;
    drop(flight);
}

/// A text variable or secret of the environment (both are strings on `env`).
pub fn text_var(env: &Env, name: &str) -> Option<String> {
    env_value(env, name).as_string()
}

/// Whether the environment has a binding (an object) of this name.
fn bound(env: &Env, name: &str) -> bool {
    env_value(env, name).is_object()
}

/// What deferred work gets: unmetered stores, the isolate's state, and the clock.
pub struct Deferred {
    /// KV, not counted in any response.
    pub kv: WorkersKv,
    /// D1, not counted in any response.
    pub d1: D1,
    /// This isolate's state.
    pub isolate: &'static Isolate,
}

impl Deferred {
    /// The config history's stores.
    pub fn config_stores(&self) -> Stores<'_, D1, WorkersKv, RuntimeTimer> {
        Stores {
            db: &self.d1,
            kv: &self.kv,
            cache: &self.isolate.config,
            timer: &RuntimeTimer,
        }
    }

    /// D1 through the nearest replica, for work that needs no newer state than it has.
    pub fn d1_replica(&self) -> D1 {
        self.d1.reading(&ReadFrom::AnyReplica)
    }

    /// The wall clock now.
    pub fn now(&self) -> Millis {
        crate::clock::now()
    }
}
