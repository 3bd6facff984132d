//! `GET /`, a small index of the API, and `GET /health`. Both touch no storage and are
//! never gated or limited. `GET /health?deep=1` is for an admin (the pipeline requires the
//! token when the query asks for it): it reads the config from KV and the schema from D1 and
//! reports the set-up.

use crate::ctx::Ctx;
use crate::domain::health;
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;

/// What `GET /` answers: a constant, written out rather than serialised from a struct per
/// request (the tests check it is the JSON of the index it describes).
const INDEX: &str = concat!(
    r#"{"name":""#,
    env!("CARGO_PKG_NAME"),
    r#"","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#"","description":""#,
    env!("CARGO_PKG_DESCRIPTION"),
    r#"","links":{"health":"/health","config":"/config","flag":"/flags/{name}"},"#,
    r#""docs":{"readme":"README.md","api":"docs/API.md","changelog":"CHANGELOG.md"}}"#
);

pub(crate) async fn index(_: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply {
        status: 200,
        body: Some(INDEX.into()),
        headers: Vec::new(),
        events: None,
    })
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
            events: None,
        });
    }
    let report = health::report(ctx.kv(), ctx.d1(), &ctx.setup()).await;
    Ok(Reply::ok(&report))
}

#[cfg(test)]
mod tests {
    use super::INDEX;
    use crate::domain::health::VERSION;

    #[test]
    fn the_index_is_the_json_of_its_fields() {
        let expected = serde_json::json!({
            "name": env!("CARGO_PKG_NAME"),
            "version": VERSION,
            "description": env!("CARGO_PKG_DESCRIPTION"),
            "links": { "health": "/health", "config": "/config", "flag": "/flags/{name}" },
            "docs": { "readme": "README.md", "api": "docs/API.md", "changelog": "CHANGELOG.md" },
        });
        let index: serde_json::Value = serde_json::from_str(INDEX).unwrap();
        assert_eq!(index, expected);
    }
}
