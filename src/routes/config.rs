//! `GET /config`, `GET /flags/:name`, and the admin config routes: `GET`, `PUT` and
//! `PATCH /admin/config`, `GET /admin/config/history`, `POST /admin/config/rollback`.

use crate::ctx::Ctx;
use crate::domain::config::AppConfig;
use crate::domain::ids::FlagName;
use crate::domain::usage;
use crate::domain::versions::{self, Action, Actor, Stores, Write};
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;
use crate::routes::Handled;

/// The `ETag` of a config version: `"N"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// The config with the `ETag` of its version.
fn versioned(config: &AppConfig) -> Reply {
    Reply::ok(config).with_header("ETag", etag(config.version))
}

pub(crate) async fn get(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    let config = ctx.config().await;
    let reply = Reply::ok(&config.public(ctx.now));
    Ok(reply.with_header("ETag", etag(config.version)))
}

pub(crate) async fn flag(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let name = FlagName::parse("name", input.param("name"))?;
    let mut context = parse::flag_context(input.query_pairs())?;
    context.now = ctx.now;
    let config = ctx.config().await;
    if config.feature_flags.contains_key(name.as_str()) {
        ctx.evaluated(Some(name.as_str()));
    }
    Ok(Reply::ok(&config.flag_view(&name, &context)))
}

/// `GET /admin/flags/usage`: when each flag was last evaluated (`domain::usage`).
pub(crate) async fn usage(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(&usage::report(ctx.d1()).await?))
}

pub(crate) async fn admin_get(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(versioned(
        &versions::authoritative(ctx.d1(), ctx.kv()).await?,
    ))
}

// The three writes are handlers that hand over `admin_write`'s future itself: no state
// machine of their own around it.
pub(crate) fn replace(ctx: &Ctx, input: Input) -> Handled<'_> {
    Box::pin(admin_write(ctx, input, Action::Put))
}

pub(crate) fn patch(ctx: &Ctx, input: Input) -> Handled<'_> {
    Box::pin(admin_write(ctx, input, Action::Patch))
}

pub(crate) fn rollback(ctx: &Ctx, input: Input) -> Handled<'_> {
    Box::pin(admin_write(ctx, input, Action::Rollback))
}

pub(crate) async fn history(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let query = parse::history_query(&input.query_pairs())?;
    Ok(Reply::ok(&versions::history(ctx.d1(), &query).await?))
}

/// A versioned write; if KV could not take the new version, it is retried in the
/// background (the write itself stands: D1 has it).
async fn admin_write(ctx: &Ctx, input: Input, action: Action) -> ApiResult<Reply> {
    let change = input.json()?;
    let actor = input.admin.as_deref().map_or(Actor::ADMIN, Actor::named);
    let write = Write {
        action,
        change: &change,
        expected: input
            .header("if-match")
            .map(|h| parse::precondition(&h))
            .transpose()?,
        actor: &actor,
    };
    let timer = ctx.timer();
    let stores = Stores {
        db: ctx.d1(),
        kv: ctx.kv(),
        cache: &ctx.isolate.config,
        timer: &timer,
    };
    let published = versions::write(&stores, &write).await?;
    if !published.kv_synced {
        ctx.defer(|d| async move {
            versions::republish(&d.config_stores()).await;
        });
    }
    Ok(versioned(&published.config))
}

#[cfg(test)]
mod tests {
    #[test]
    fn etags_name_the_version_quoted() {
        assert_eq!(super::etag(7), "\"7\"");
    }
}
