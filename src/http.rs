//! Reading requests at the edge: bounded JSON bodies and header access. The only module
//! besides the adapters and `app.rs` that touches `worker::Request`.

use crate::error::{ApiError, ApiResult};
use futures_util::StreamExt;
use serde_json::Value;
use worker::Request;

/// The contract's body limit: 64 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// Reads a JSON body of at most 64 KiB. A `Content-Length` over the limit is refused before
/// reading; a body without one is read chunk by chunk and refused as soon as it passes it.
pub async fn read_json(req: &mut Request) -> ApiResult<Value> {
    let declared = header(req, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::PayloadTooLarge);
    }
    let mut body = Vec::new();
    if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::InvalidJson(format!("unreadable body: {e}")))?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ApiError::PayloadTooLarge);
            }
            body.extend_from_slice(&chunk);
        }
    }
    parse_json(&body)
}

/// Parses a request body as JSON (`invalid_json` otherwise).
pub fn parse_json(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

/// The body as a JSON object (`invalid_request` for any other JSON value).
pub fn object(v: &Value) -> ApiResult<&serde_json::Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid("body", "must be a JSON object"))
}

/// Refuses any key of `obj` not in `allowed`, naming it.
pub fn deny_unknown(
    obj: &serde_json::Map<String, Value>,
    allowed: &[&str],
    prefix: &str,
) -> ApiResult<()> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(&format!("{prefix}{k}"), "unknown field")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_parsing() {
        assert!(matches!(parse_json(b""), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json(b"  \n"), Err(ApiError::InvalidJson(_))));
        assert!(matches!(parse_json(b"{"), Err(ApiError::InvalidJson(_))));
        assert!(matches!(
            parse_json(b"{'a':1}"),
            Err(ApiError::InvalidJson(_))
        ));
        assert_eq!(parse_json(b"{\"a\":1}").unwrap()["a"], 1);
        let deep = "[".repeat(10_000);
        assert!(matches!(
            parse_json(deep.as_bytes()),
            Err(ApiError::InvalidJson(_))
        ));
    }

    #[test]
    fn objects_and_unknown_fields() {
        assert!(object(&serde_json::json!([1])).is_err());
        let v = serde_json::json!({"a": 1, "zz": 2});
        let o = object(&v).unwrap();
        assert!(deny_unknown(o, &["a", "zz"], "").is_ok());
        assert_eq!(
            deny_unknown(o, &["a"], "x."),
            Err(ApiError::InvalidRequest("x.zz: unknown field".into()))
        );
    }
}
