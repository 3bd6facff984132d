//! Admin identities through Cloudflare Access.
//!
//! With Access in front of the Worker, every request that passed the team's login carries the
//! JWT Access signed for it (`Cf-Access-Jwt-Assertion`). The Worker checks it itself rather
//! than trusting that the request came through Access: RS256 with one of the team's keys
//! ([`AccessKeys`], fetched from the team's `/cdn-cgi/access/certs`), issued by the team
//! (`iss`), for this application (`aud`, its AUD tag), and current (`exp`, `nbf`, with
//! [`SKEW_MS`] of clock skew). The identity is the person's `email`, or a service token's
//! `common_name`; the config history names it as the writer.

use crate::domain::error::{DomainError, DomainResult, StoreResult};
use crate::domain::time::Millis;
use serde_json::Value;

/// How far `exp` may lie in the past and `nbf` in the future.
pub const SKEW_MS: i64 = 30_000;
/// A longer assertion is refused unread (Access's are about 1 KB).
pub const MAX_JWT_BYTES: usize = 8 * 1024;
/// The longest identity kept (an email address is at most 254 bytes).
const MAX_NAME_BYTES: usize = 254;

/// The Access application the Worker trusts: the team's origin and the application's AUD tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// `https://<team>.cloudflareaccess.com`: the issuer, and where its keys are.
    pub team: String,
    /// The application's AUD tag.
    pub audience: String,
}

impl AccessPolicy {
    /// The policy of these settings, when both are set and the team's origin is `https` (or
    /// plain `http` on this machine, for tests); a trailing `/` of the origin is dropped.
    pub fn new(team: &str, audience: &str) -> Option<Self> {
        let (team, audience) = (team.trim().trim_end_matches('/'), audience.trim());
        let local = ["http://127.0.0.1:", "http://localhost:"];
        let secure = team.starts_with("https://") || local.iter().any(|l| team.starts_with(l));
        (secure && team.len() > 8 && !audience.is_empty()).then(|| AccessPolicy {
            team: team.to_string(),
            audience: audience.to_string(),
        })
    }

    /// Where the team publishes its signing keys.
    pub fn certs_url(&self) -> String {
        format!("{}/cdn-cgi/access/certs", self.team)
    }
}

/// The team's signing keys (a port: the platform adapter fetches and caches them).
#[allow(async_fn_in_trait)]
pub trait AccessKeys {
    /// Whether `signature` is an RS256 signature of `signed` under the team's key `kid`:
    /// `false` for a key the team does not have; an error when the keys cannot be had.
    async fn verify(&self, kid: &str, signed: &[u8], signature: &[u8]) -> StoreResult<bool>;
}

/// The identity an Access assertion proves at `now`: unauthorized unless it is well formed,
/// current, for `policy` and signed with one of the team's keys; unavailable when the keys
/// cannot be fetched. The claims are checked first, so an expired or foreign token costs no
/// key lookup.
pub async fn identify<K: AccessKeys>(
    keys: &K,
    policy: &AccessPolicy,
    jwt: &str,
    now: Millis,
) -> DomainResult<String> {
    let token = Token::parse(jwt).ok_or(DomainError::Unauthorized)?;
    let name = token
        .identity(policy, now)
        .ok_or(DomainError::Unauthorized)?;
    let signed = token.signed.as_bytes();
    match keys.verify(&token.kid, signed, &token.signature).await? {
        true => Ok(name),
        false => Err(DomainError::Unauthorized),
    }
}

/// A JWT split into what is checked.
struct Token<'a> {
    kid: String,
    /// `jose.payload` (the JOSE part and the claims), as signed.
    signed: &'a str,
    signature: Vec<u8>,
    claims: Value,
}

impl<'a> Token<'a> {
    /// A compact JWS whose JOSE part says RS256 and names a key; `None` for anything else.
    fn parse(jwt: &'a str) -> Option<Self> {
        if jwt.len() > MAX_JWT_BYTES {
            return None;
        }
        let (signed, signature) = jwt.rsplit_once('.')?;
        let (jose, payload) = signed.split_once('.')?;
        let jose: Value = serde_json::from_slice(&base64url(jose)?).ok()?;
        if jose.get("alg")?.as_str()? != "RS256" {
            return None;
        }
        let kid = jose.get("kid")?.as_str()?.to_string();
        Some(Token {
            kid,
            signed,
            signature: base64url(signature)?,
            claims: serde_json::from_slice(&base64url(payload)?).ok()?,
        })
    }

    /// The identity the claims name, if they are for `policy` and current at `now`.
    fn identity(&self, policy: &AccessPolicy, now: Millis) -> Option<String> {
        let claims = &self.claims;
        let seconds = |name| claims.get(name).map(|v| v.as_i64().map(|s| s * 1000));
        let expires = seconds("exp")??;
        let not_before = seconds("nbf").unwrap_or(Some(i64::MIN))?;
        let audience = match claims.get("aud")? {
            Value::String(aud) => aud == &policy.audience,
            Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(&policy.audience)),
            _ => false,
        };
        let current =
            now.0 < expires.saturating_add(SKEW_MS) && not_before.saturating_sub(SKEW_MS) <= now.0;
        let issuer = claims.get("iss")?.as_str()? == policy.team;
        let name = claims.get("email").or_else(|| claims.get("common_name"));
        let name = name?.as_str()?;
        let named = !name.is_empty() && name.len() <= MAX_NAME_BYTES;
        (audience && current && issuer && named).then(|| name.to_string())
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use it; `None` for any other character.
fn base64url(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let sextet = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6 | u32::from(sextet)) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fake::block_on;
    use serde_json::json;
    use std::cell::Cell;

    const NOW: Millis = Millis(1_700_000_000_000);

    fn policy() -> AccessPolicy {
        AccessPolicy::new("https://team.cloudflareaccess.com/", "aud-tag").unwrap()
    }

    fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    fn jwt(jose: &Value, claims: &Value) -> String {
        let (h, c) = (jose.to_string(), claims.to_string());
        format!(
            "{}.{}.{}",
            encode(h.as_bytes()),
            encode(c.as_bytes()),
            encode(b"sig")
        )
    }

    fn claims() -> Value {
        json!({"iss": "https://team.cloudflareaccess.com", "aud": ["aud-tag"],
               "exp": NOW.0 / 1000 + 600, "nbf": NOW.0 / 1000 - 10, "email": "ada@example.com"})
    }

    fn rs256() -> Value {
        json!({"alg": "RS256", "kid": "k1", "typ": "JWT"})
    }

    /// Keys that know `k1` and accept the signature `sig`; counts lookups.
    #[derive(Default)]
    struct Keys {
        lookups: Cell<u32>,
        down: bool,
    }

    impl AccessKeys for Keys {
        async fn verify(&self, kid: &str, signed: &[u8], sig: &[u8]) -> StoreResult<bool> {
            self.lookups.set(self.lookups.get() + 1);
            if self.down {
                return Err(crate::domain::error::StorageError("certs: HTTP 502".into()));
            }
            Ok(kid == "k1" && signed.iter().filter(|b| **b == b'.').count() == 1 && sig == b"sig")
        }
    }

    fn check(token: &str, keys: &Keys) -> DomainResult<String> {
        block_on(identify(keys, &policy(), token, NOW))
    }

    #[test]
    fn base64url_round_trips_and_refuses_other_alphabets() {
        for text in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "\u{ff}\u{fe}?>",
        ] {
            assert_eq!(
                base64url(&encode(text.as_bytes())).unwrap(),
                text.as_bytes()
            );
        }
        assert_eq!(base64url("Zm9vYmFy").unwrap(), b"foobar");
        for bad in ["Zm9v+mFy", "Zm9v/mFy", "Zm9vYg==", "Zm 9v"] {
            assert_eq!(base64url(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_valid_assertion_names_the_person_or_the_service_token() {
        let keys = Keys::default();
        assert_eq!(
            check(&jwt(&rs256(), &claims()), &keys).unwrap(),
            "ada@example.com"
        );
        let mut service = claims();
        service["email"] = Value::Null;
        service["common_name"] = json!("ci.example.access");
        service.as_object_mut().unwrap().remove("email");
        assert_eq!(
            check(&jwt(&rs256(), &service), &keys).unwrap(),
            "ci.example.access"
        );
        let mut single = claims();
        single["aud"] = json!("aud-tag");
        assert!(check(&jwt(&rs256(), &single), &keys).is_ok());
    }

    #[test]
    fn foreign_expired_and_unnamed_assertions_are_refused_without_a_key_lookup() {
        let keys = Keys::default();
        let now_s = NOW.0 / 1000;
        let changes = [
            ("aud", json!(["other"])),
            ("aud", json!("other")),
            ("aud", json!(7)),
            ("iss", json!("https://evil.cloudflareaccess.com")),
            ("iss", json!("https://team.cloudflareaccess.com/")),
            ("exp", json!(now_s - 31)),
            ("exp", json!("soon")),
            ("exp", Value::Null),
            ("nbf", json!(now_s + 31)),
            ("email", json!("")),
            ("email", json!("a".repeat(255))),
            ("email", json!(12)),
        ];
        for (field, value) in changes {
            let mut c = claims();
            c[field] = value.clone();
            let refused = check(&jwt(&rs256(), &c), &keys);
            assert_eq!(refused, Err(DomainError::Unauthorized), "{field}: {value}");
        }
        let mut no_name = claims();
        no_name.as_object_mut().unwrap().remove("email");
        assert_eq!(
            check(&jwt(&rs256(), &no_name), &keys),
            Err(DomainError::Unauthorized)
        );
        assert_eq!(keys.lookups.get(), 0);
        // Within the skew both ways.
        let mut c = claims();
        (c["exp"], c["nbf"]) = (json!(now_s - 29), json!(now_s + 29));
        assert!(check(&jwt(&rs256(), &c), &keys).is_ok());
    }

    #[test]
    fn only_rs256_with_a_known_key_and_a_good_signature_passes() {
        let keys = Keys::default();
        for jose in [
            json!({"alg": "HS256", "kid": "k1"}),
            json!({"alg": "none", "kid": "k1"}),
            json!({"alg": "RS256"}),
            json!({"alg": "RS256", "kid": 1}),
            json!({"alg": "RS256", "kid": "k2"}),
        ] {
            assert_eq!(
                check(&jwt(&jose, &claims()), &keys),
                Err(DomainError::Unauthorized),
                "{jose}"
            );
        }
        let good = jwt(&rs256(), &claims());
        let (signed, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", encode(b"forged"));
        assert_eq!(check(&forged, &keys), Err(DomainError::Unauthorized));
        let long = format!("{good}{}", "A".repeat(MAX_JWT_BYTES));
        for bad in [
            "",
            "a.b",
            "a.b.c",
            "..",
            &format!("{good}.x"),
            &good.replace('.', "!"),
            &long,
        ] {
            assert_eq!(check(bad, &keys), Err(DomainError::Unauthorized), "{bad}");
        }
    }

    #[test]
    fn keys_that_cannot_be_had_make_it_unavailable() {
        let keys = Keys {
            down: true,
            ..Keys::default()
        };
        let answer = check(&jwt(&rs256(), &claims()), &keys);
        assert!(
            matches!(answer, Err(DomainError::Unavailable(_))),
            "{answer:?}"
        );
    }

    #[test]
    fn a_policy_needs_both_settings() {
        assert_eq!(AccessPolicy::new("", "aud"), None);
        assert_eq!(AccessPolicy::new("https://", "aud"), None);
        for insecure in [
            "http://team.cloudflareaccess.com",
            "team.cloudflareaccess.com",
            "http://127.0.0.1.evil",
        ] {
            assert_eq!(AccessPolicy::new(insecure, "aud"), None, "{insecure}");
        }
        assert!(AccessPolicy::new("http://127.0.0.1:9000/", "aud").is_some());
        assert_eq!(
            AccessPolicy::new("https://t.cloudflareaccess.com", " "),
            None
        );
        assert_eq!(
            policy().certs_url(),
            "https://team.cloudflareaccess.com/cdn-cgi/access/certs"
        );
    }
}
