//! The origins CORS allows: `ALLOWED_ORIGINS`, exact origins comma-separated
//! (`https://app.example.com,http://localhost:5173`), parsed once per isolate. The context
//! and the isolate state keep it; `routes::cors` turns it into headers.

/// The parsed `ALLOWED_ORIGINS`: the exact origins allowed, and the entries ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOrigins {
    origins: Vec<String>,
    /// Entries that are not exact origins (a wildcard, a path, a typo): ignored, and
    /// logged once per isolate by the self-check.
    pub ignored: Vec<String>,
}

impl AllowedOrigins {
    /// Parses the comma-separated list. Entries are compared as browsers send `Origin`:
    /// scheme and host in lowercase, and the scheme's default port left out.
    pub fn parse(list: &str) -> Self {
        let mut out = AllowedOrigins::default();
        for entry in list.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            match normalise(entry) {
                Some(origin) if !out.origins.contains(&origin) => out.origins.push(origin),
                Some(_) => {}
                None => out.ignored.push(entry.to_string()),
            }
        }
        out
    }

    /// Whether no origin is allowed (CORS off: no CORS header, no `Vary`).
    pub fn is_empty(&self) -> bool {
        self.origins.is_empty()
    }

    /// Whether `origin` (an `Origin` header value) is listed.
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == origin)
    }

    /// The allowed origins, normalised.
    pub fn origins(&self) -> &[String] {
        &self.origins
    }
}

/// `scheme://host[:port]` with scheme `http` or `https`, in the form browsers send it;
/// `None` for anything else.
fn normalise(entry: &str) -> Option<String> {
    let lower = entry.to_ascii_lowercase();
    // Found by bytes: a `&str` pattern would link `core`'s two-way string search.
    let at = lower.as_bytes().windows(3).position(|w| w == b"://")?;
    let (scheme, authority) = (lower.get(..at)?, lower.get(at + 3..)?);
    let default_port = match scheme {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let (host, port) = split_port(authority)?;
    if !valid_host(host) || port.is_some_and(|p| !valid_port(p)) {
        return None;
    }
    Some(match port {
        Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// `host` and `port` of `host[:port]` (an IPv6 host in brackets).
fn split_port(authority: &str) -> Option<(&str, Option<&str>)> {
    if authority.starts_with('[') {
        let (host, rest) = authority.split_at_checked(authority.find(']')? + 1)?;
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(rest.strip_prefix(':')?))),
        };
    }
    Some(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn valid_host(host: &str) -> bool {
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !ip.is_empty()
            && ip
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    let label = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    !host.is_empty() && !host.starts_with('.') && !host.ends_with('.') && host.bytes().all(label)
}

fn valid_port(port: &str) -> bool {
    crate::domain::json::decimal(port).is_some_and(|n| (1..=65_535).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "https://app.example.com";

    fn list(s: &str) -> AllowedOrigins {
        AllowedOrigins::parse(s)
    }

    #[test]
    fn origins_are_exact_and_normalised_as_browsers_send_them() {
        let l = list(
            " https://App.Example.com , http://localhost:5173,https://a.io:443,http://[::1]:8080",
        );
        assert_eq!(
            l.origins(),
            [
                APP,
                "http://localhost:5173",
                "https://a.io",
                "http://[::1]:8080"
            ]
        );
        assert!(l.ignored.is_empty());
        assert!(l.allows(APP));
        assert!(!l.allows("https://app.example.com.evil.io"));
        assert!(!l.allows("http://app.example.com"));
        assert!(!l.allows("https://app.example.com:8443"));
        assert!(!l.allows("null"));
    }

    #[test]
    fn wildcards_paths_and_other_schemes_are_ignored() {
        let l = list("*,https://*.example.com,https://app.example.com/,https://a.io/x,ftp://a.io,a.io,https://,https://a.io:99999,https://u@a.io,null");
        assert!(l.is_empty(), "{:?}", l.origins());
        assert_eq!(l.ignored.len(), 10);
        assert!(list("").is_empty() && list(" , ").ignored.is_empty());
        assert_eq!(list("https://a.io,https://A.io").origins().len(), 1);
    }
}
