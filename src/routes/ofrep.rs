//! The OpenFeature Remote Evaluation Protocol (OFREP) v1:
//! `POST /ofrep/v1/evaluate/flags/:key` and `POST /ofrep/v1/evaluate/flags`.
//!
//! Request bodies are `{"context": {"targetingKey": …, <attributes>}}`. Answers and the
//! errors these handlers produce take the protocol's shapes (`{"key", "value", "reason",
//! "variant", "metadata"}`; `{"key", "errorCode", "errorDetails"}`), not this API's
//! `{"error", "code"}`; what the pipeline refuses before the handler (rate limit,
//! maintenance, an oversize body) keeps this API's shape. Evaluation reads only the
//! isolate's config copy. The bulk answer carries an `ETag` (a hash of the answer itself)
//! and a matching `If-None-Match` gets 304 without a body (a malformed one: 400 `GENERAL`).
//! It names the change notification stream, `GET /ofrep/v1/events` (server-sent events, the
//! protocol's ADR-0008; see `domain::events`), in `eventStreams`; a `flagConfigEtag` newer
//! than this isolate's copy makes it re-read KV first.

use crate::ctx::Ctx;
use crate::domain::bucket::{siphash24, BUCKET_KEY};
use crate::domain::events::{self, EventStream};
use crate::domain::flags::{EvalContext, Flag, Reason};
use crate::domain::json;
use crate::domain::named::Named;
use crate::domain::time::Millis;
use crate::error::{ApiError, ApiResult};
use crate::routes::input::Input;
use crate::routes::parse;
use crate::routes::reply::Reply;
use serde::Serialize;
use serde_json::Value;

/// `metadata` of an answer: the config version that answered, which rule matched, and which
/// prerequisite was not met.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    config_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unmet_prerequisite: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Success<'a> {
    key: &'a str,
    value: &'a Value,
    reason: Reason,
    variant: &'a str,
    metadata: Metadata<'a>,
}

/// `evaluationFailure`, `flagNotFound`, and (without `key`) `bulkEvaluationFailure`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Answer<'a> {
    Success(Success<'a>),
    Failure(Failure<'a>),
}

#[derive(Serialize)]
struct Bulk<'a> {
    flags: Vec<Answer<'a>>,
    metadata: Metadata<'a>,
}

/// The bulk answer's last member, `eventStreams`: the change notification stream on the
/// origin the client called (an `endpoint`, so a proxy in front keeps working).
const EVENT_STREAMS: &str = concat!(
    ",\"eventStreams\":[{\"type\":\"sse\",",
    "\"endpoint\":{\"requestUri\":\"/ofrep/v1/events\"},\"inactivityDelaySec\":120}]}"
);

/// The evaluation context of the body at `now`, or the OFREP error code and details.
fn context(input: &Input, now: Millis) -> Result<EvalContext, (&'static str, String)> {
    let body = input
        .json()
        .map_err(|e| ("PARSE_ERROR", e.public_message()))?;
    let invalid = |details: String| ("INVALID_CONTEXT", details);
    let context = body
        .as_object()
        .ok_or_else(|| invalid("the body must be a JSON object".into()))?
        .get("context")
        .ok_or_else(|| invalid("context is required".into()))?;
    let mut context =
        EvalContext::from_json(context).map_err(|e| invalid(ApiError::from(e).public_message()))?;
    context.now = now;
    Ok(context)
}

fn evaluate<'a>(
    key: &'a str,
    flag: &'a Flag,
    flags: &Named<Flag>,
    ctx: &EvalContext,
    version: u64,
) -> Answer<'a> {
    match flag.evaluate(flags, ctx) {
        Ok(e) => Answer::Success(Success {
            key,
            value: e.value,
            reason: e.reason,
            variant: e.variant,
            metadata: Metadata {
                config_version: version,
                rule_index: e.rule,
                unmet_prerequisite: e.unmet,
            },
        }),
        Err(err) => Answer::Failure(Failure {
            key: Some(key),
            error_code: err.code(),
            error_details: err.details().into(),
        }),
    }
}

pub(crate) async fn single(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let key = input.param("key");
    let failure = |status, error_code, error_details| {
        let f = Failure {
            key: Some(key),
            error_code,
            error_details,
        };
        Reply::json(status, &f)
    };
    let context = match context(&input, ctx.now) {
        Ok(c) => c,
        Err((code, details)) => return Ok(failure(400, code, details)),
    };
    let config = ctx.config().await;
    let Some(flag) = config.feature_flags.get(key) else {
        return Ok(failure(
            404,
            "FLAG_NOT_FOUND",
            format!("flag {} was not found", json::quoted(key)),
        ));
    };
    ctx.evaluated(Some(key));
    Ok(
        match evaluate(key, flag, &config.feature_flags, &context, config.version) {
            answer @ Answer::Success(_) => Reply::ok(&answer),
            answer @ Answer::Failure(_) => Reply::json(400, &answer),
        },
    )
}

pub(crate) async fn bulk(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let failure = |error_code, error_details| {
        let f = Failure {
            key: None,
            error_code,
            error_details,
        };
        Reply::json(400, &f)
    };
    let context = match context(&input, ctx.now) {
        Ok(c) => c,
        Err((error_code, error_details)) => return Ok(failure(error_code, error_details)),
    };
    let seen_etag = input
        .query_value("flagConfigEtag")
        .and_then(|t| events::seen_version(&t));
    let none_match = input.header("if-none-match");
    let seen = seen_etag.max(none_match.as_deref().and_then(seen_in_tags));
    let config = match seen {
        Some(version) => ctx.config_at_least(version).await,
        None => ctx.config().await,
    };
    let flags = config
        .feature_flags
        .iter()
        .map(|(key, flag)| evaluate(key, flag, &config.feature_flags, &context, config.version))
        .collect();
    let metadata = Metadata {
        config_version: config.version,
        rule_index: None,
        unmet_prerequisite: None,
    };
    ctx.evaluated(None);
    let mut reply = Reply::ok(&Bulk { flags, metadata });
    if let Some(body) = reply.body.as_mut().filter(|_| reply.status == 200) {
        body.pop();
        body.push_str(EVENT_STREAMS);
    }
    let tag = etag(reply.body.as_deref().unwrap_or_default(), config.version);
    // A malformed `If-None-Match` is found here, after the evaluation it would have skipped:
    // one reading of the header, on a path no correct client takes.
    let matched = match none_match.map(|h| parse::none_match(&h, &tag)) {
        Some(Err(e)) => return Ok(failure("GENERAL", e.public_message())),
        Some(Ok(matched)) => matched,
        None => false,
    };
    if matched {
        return Ok(Reply {
            status: 304,
            body: None,
            headers: vec![("ETag", tag)],
            events: None,
        });
    }
    Ok(reply.with_header("ETag", tag))
}

/// `GET /ofrep/v1/events`: a `text/event-stream` whose first text asks clients to retry
/// after 5 s and, unless `Last-Event-ID` names the served version, announces it; the
/// pipeline then streams [`EventStream::tick`]'s events.
pub(crate) async fn events(ctx: &Ctx, input: Input) -> ApiResult<Reply> {
    let config = ctx.config().await;
    let last_id = input.header("last-event-id");
    let mut stream = EventStream::open(last_id.as_deref(), ctx.now);
    Ok(Reply {
        status: 200,
        body: Some(stream.first(config.version, ctx.now)),
        headers: vec![
            ("Content-Type", "text/event-stream".into()),
            ("Cache-Control", "no-store".into()),
        ],
        events: Some(stream),
    })
}

/// The entity tag of an answer: 64 bits of SipHash-2-4 over its bytes, then the config
/// version that answered (hex), so a client's `If-None-Match` says which version it has seen.
fn etag(body: &str, version: u64) -> String {
    let hash = siphash24(BUCKET_KEY, body.as_bytes());
    format!("\"{hash:016x}{version:x}\"")
}

/// The newest config version the entity tags of an `If-None-Match` name (see [`etag`]).
fn seen_in_tags(header: &str) -> Option<u64> {
    let mut newest = None;
    for tag in header.split(',') {
        let tag = tag.trim();
        let quoted = tag.strip_prefix("W/").unwrap_or(tag);
        let hex = quoted.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
        let version = hex.and_then(|h| h.get(16..)).and_then(hex_number);
        newest = newest.max(version);
    }
    newest
}

/// A number of 1 to 16 hex digits.
fn hex_number(digits: &str) -> Option<u64> {
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    let mut n = 0u64;
    for b in digits.bytes() {
        n = n << 4 | u64::from(char::from(b).to_digit(16)?);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_answers_end_with_the_event_stream_the_domain_describes() {
        let body = format!("{{\"flags\":[]{EVENT_STREAMS}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let stream = &v["eventStreams"][0];
        assert_eq!(stream["type"], "sse");
        assert_eq!(stream["endpoint"]["requestUri"], "/ofrep/v1/events");
        assert_eq!(
            stream["inactivityDelaySec"],
            u64::from(events::INACTIVITY_DELAY_SEC)
        );
        let route = crate::routes::find("GET", "/ofrep/v1/events");
        assert!(route.is_ok(), "the stream is a route");
    }

    #[test]
    fn etags_are_quoted_hashes_of_the_answer_then_its_version() {
        let a = etag("{\"flags\":[]}", 12);
        assert_eq!(a.len(), 19);
        assert!(a.starts_with('"') && a.ends_with("c\""));
        assert_eq!(a, etag("{\"flags\":[]}", 12));
        assert_ne!(a, etag("{\"flags\":[1]}", 12));
        assert_eq!(seen_in_tags(&a), Some(12));
    }

    #[test]
    fn if_none_match_names_the_newest_version_of_its_tags() {
        let (old, new) = (etag("a", 3), etag("b", 0x1f));
        assert_eq!(seen_in_tags(&format!("{old}, W/{new}")), Some(0x1f));
        for none in ["*", "\"abc\"", "\"0123456789abcdefxyz\"", ""] {
            assert_eq!(seen_in_tags(none), None, "{none}");
        }
    }
}
