//! `GET` and `PATCH /prefs`: the caller's own preferences.

use crate::ctx::Ctx;
use crate::domain::ids::UserId;
use crate::domain::prefs::{self, PrefsAnswer, PrefsPatch};
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;

fn caller(input: &Input) -> ApiResult<UserId> {
    UserId::parse("userId", &input.caller()?.session.user_id)
}

pub(crate) async fn get(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = caller(&input)?;
    let answer = prefs::get(
        ctx.kv(),
        ctx.d1(),
        ctx.isolate.prefs_state(),
        &user,
        ctx.now,
    )
    .await?;
    Ok(reply(ctx, user, answer))
}

pub(crate) async fn patch(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = caller(&input)?;
    let change = PrefsPatch::parse(&input.json()?)?;
    let st = ctx.isolate.prefs_state();
    let answer = prefs::patch(ctx.kv(), ctx.d1(), st, &user, &change, ctx.now).await?;
    Ok(reply(ctx, user, answer))
}

/// Answers, and leaves the KV refresh (if one is due) to deferred work: one per user and
/// isolate at a time.
fn reply(ctx: &Ctx, user: UserId, answer: PrefsAnswer) -> Reply {
    if let Some(wait) = answer.sync_after_ms {
        let flight = format!("prefs-sync:{user}");
        ctx.defer_once(&flight, move |d| async move {
            let st = d.isolate.prefs_state();
            prefs::sync_later(&d.kv, &d.d1, st, &d, &user, wait).await;
        });
    }
    Reply::ok(&answer.prefs)
}
