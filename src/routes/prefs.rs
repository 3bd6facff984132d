//! `GET` and `PATCH /prefs`: the caller's own preferences. Both answer with the header
//! `Prefs-Version` (the D1 version served); a `GET` that sends it back is served that
//! version or newer, in any isolate and location.

use crate::ctx::{Ctx, RuntimeTimer};
use crate::domain::ids::UserId;
use crate::domain::prefs::{self, MinVersion, PrefsAnswer, PrefsPatch};
use crate::error::ApiResult;
use crate::routes::input::Input;
use crate::routes::reply::Reply;

fn caller(input: &Input) -> ApiResult<UserId> {
    UserId::parse("userId", &input.caller()?.session.user_id)
}

/// The header that carries a version: in answers, the one served; in a `GET`, the oldest
/// the reader accepts.
const VERSION_HEADER: &str = "Prefs-Version";

pub(crate) async fn get(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let user = caller(&input)?;
    let min = input
        .header(VERSION_HEADER)
        .map(|v| MinVersion::parse(VERSION_HEADER, v.trim()))
        .transpose()?;
    let st = ctx.isolate.prefs_state();
    let answer = prefs::get(ctx.kv(), ctx.d1(), st, &user, ctx.now, min).await?;
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
            prefs::sync_later(&d.kv, &d.d1, st, &RuntimeTimer, &user, wait).await;
        });
    }
    Reply::ok(&answer.prefs).with_header(VERSION_HEADER, answer.version.to_string())
}
