//! `GET /`, a small index of the API, and `GET /health`. Both touch no storage and are
//! never gated or limited. `GET /health?deep=1` is for an admin (the pipeline requires the
//! token when the query asks for it): it reads the config from KV and the schema from D1 and
//! reports the set-up.

use crate::ctx::Ctx;
use crate::domain::health::{self, VERSION};
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;
use serde::Serialize;

/// What `GET /` answers.
#[derive(Serialize)]
struct Index {
    name: &'static str,
    version: &'static str,
    description: &'static str,
    /// Entry points of this API.
    links: Links,
    /// Documentation: files in edgestate's source repository.
    docs: Docs,
}

#[derive(Serialize)]
struct Links {
    health: &'static str,
    config: &'static str,
    flag: &'static str,
}

#[derive(Serialize)]
struct Docs {
    readme: &'static str,
    api: &'static str,
    changelog: &'static str,
}

const INDEX: Index = Index {
    name: env!("CARGO_PKG_NAME"),
    version: VERSION,
    description: env!("CARGO_PKG_DESCRIPTION"),
    links: Links {
        health: "/health",
        config: "/config",
        flag: "/flags/{name}",
    },
    docs: Docs {
        readme: "README.md",
        api: "docs/API.md",
        changelog: "CHANGELOG.md",
    },
};

pub(crate) async fn index(_: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(&INDEX))
}

pub(crate) async fn get(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    if !input.flag("deep")? {
        // A constant: no JSON map built and serialised per request.
        const BODY: &str = concat!(
            r#"{"status":"ok","version":""#,
            env!("CARGO_PKG_VERSION"),
            r#""}"#
        );
        return Ok(Reply {
            status: 200,
            body: Some(BODY.into()),
            headers: Vec::new(),
        });
    }
    let report = health::report(ctx.kv(), ctx.d1(), &ctx.setup()).await;
    Ok(Reply::ok(&report))
}
