//! `GET`, `POST /admin/tokens` and `DELETE /admin/tokens/:name`: scoped admin tokens.

use crate::ctx::Ctx;
use crate::domain::ids::FlagName;
use crate::domain::tokens;
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;

pub(crate) async fn list(ctx: &Ctx, _: Input) -> ApiResult<Reply> {
    Ok(Reply::ok(&tokens::list(ctx.d1()).await?))
}

/// `{"name", "scope"}`; the creator is the caller (`admin`, or a Cloudflare Access identity).
pub(crate) async fn create(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let new = parse::new_token(&input.json()?)?;
    let creator = input.admin.as_deref().unwrap_or("admin");
    let cache = &ctx.isolate.tokens;
    let minted = tokens::create(ctx.d1(), cache, new, creator, ctx.now).await?;
    Ok(Reply::json(201, &minted))
}

pub(crate) async fn revoke(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let name = FlagName::parse("name", input.param("name"))?;
    tokens::revoke(ctx.d1(), &ctx.isolate.tokens, &name).await?;
    Ok(Reply::no_content())
}
