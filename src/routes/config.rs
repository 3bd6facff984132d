//! `GET /config`, `GET /flags/:name`, `PUT` and `PATCH /admin/config`.

use crate::ctx::Ctx;
use crate::domain::config;
use crate::domain::ids::FlagName;
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;

pub(crate) async fn get(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(ctx.config().await.as_ref()))
}

pub(crate) async fn flag(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let name = FlagName::parse("name", input.param("name"))?;
    Ok(Reply::ok(&ctx.config().await.flag_view(&name)))
}

pub(crate) async fn replace(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let doc = input.json()?;
    let stored = config::replace(ctx.kv(), &ctx.isolate.config, &ctx.timer(), &doc).await?;
    Ok(Reply::ok(stored.as_ref()))
}

pub(crate) async fn patch(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let patch = input.json()?;
    let stored = config::patch(ctx.kv(), &ctx.isolate.config, &ctx.timer(), &patch).await?;
    Ok(Reply::ok(stored.as_ref()))
}
