//! IP addresses as text: [`canonical`] accepts what `std::net::IpAddr` parses and returns
//! what it displays (RFC 5952 for IPv6: lowercase, no leading zeros, the longest run of
//! zero groups as `::`). Written out because `std::net`'s parser and formatter cost about
//! 7 KB of Wasm for the one header (`CF-Connecting-IP`) this Worker reads an address from;
//! the tests check it against `std::net` on every input they try.

use std::fmt::Write;

/// The canonical text of an IPv4 or IPv6 address, or `None` if `text` is not one.
pub fn canonical(text: &str) -> Option<String> {
    if text.contains(':') {
        ipv6(text).map(|groups| show_ipv6(&groups))
    } else {
        ipv4(text).map(|octets| show_ipv4(&octets))
    }
}

/// Four decimal octets, each 0-255 without leading zeros.
fn ipv4(text: &str) -> Option<[u8; 4]> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        let digits_ok =
            !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok || (part.len() > 1 && part.starts_with('0')) {
            return None;
        }
        *octet = u8::try_from(super::json::decimal(part)?).ok()?;
    }
    parts.next().is_none().then_some(octets)
}

/// The network a client is counted by: an IPv4 address as itself, an IPv6 address by its
/// /64 (`2001:db8:1:2::/64`), since one subscriber commonly holds a whole /64 and could
/// otherwise count as 2^64 clients. An IPv4-mapped IPv6 address counts as its IPv4 address.
/// `None` if `text` is not an address.
pub fn client_network(text: &str) -> Option<String> {
    if !text.contains(':') {
        return ipv4(text).map(|o| show_ipv4(&o));
    }
    let mut g = ipv6(text)?;
    if g[..5] == [0; 5] && g[5] == 0xffff {
        return Some(show_ipv6(&g));
    }
    g[4..].fill(0);
    let mut out = show_ipv6(&g);
    out.push_str("/64");
    Some(out)
}

/// Eight 16-bit groups; `::` stands for one or more zero groups, and the last 32 bits may be
/// written as IPv4.
fn ipv6(text: &str) -> Option<[u16; 8]> {
    // Found byte-wise: a `&str` pattern would link the two-way string searcher.
    let (head, tail) = match text.as_bytes().windows(2).position(|w| w == b"::") {
        Some(at) => (text.get(..at)?, Some(text.get(at + 2..)?)),
        None => (text, None),
    };
    let head = groups(head)?;
    let mut out = [0u16; 8];
    match tail {
        None if head.len() == 8 => out = head.try_into().ok()?,
        Some(tail) => {
            let tail = groups(tail)?;
            if head.len() + tail.len() > 7 {
                return None;
            }
            out[..head.len()].copy_from_slice(&head);
            out[8 - tail.len()..].copy_from_slice(&tail);
        }
        None => return None,
    }
    Some(out)
}

/// Colon-separated hex groups (1-4 digits), the last of which may be dotted IPv4 (two
/// groups). Empty text is no groups.
fn groups(text: &str) -> Option<Vec<u16>> {
    let mut out = Vec::with_capacity(8);
    if text.is_empty() {
        return Some(out);
    }
    let mut parts = text.split(':').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() && part.contains('.') {
            let [a, b, c, d] = ipv4(part)?;
            out.extend([u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])]);
        } else if (1..=4).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()) {
            // The digits were checked: fold them rather than link `from_str_radix`.
            let digit = |b: u8| u16::from(b & 0xf) + if b > b'9' { 9 } else { 0 };
            out.push(part.bytes().fold(0, |n, b| n << 4 | digit(b)));
        } else {
            return None;
        }
    }
    (out.len() <= 8).then_some(out)
}

fn show_ipv4(o: &[u8; 4]) -> String {
    format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3])
}

/// RFC 5952 text, with `std`'s special case: an IPv4-mapped address (`::ffff:a.b.c.d`)
/// keeps its dotted tail.
fn show_ipv6(g: &[u16; 8]) -> String {
    if g[..5] == [0; 5] && g[5] == 0xffff {
        let [a, b] = g[6].to_be_bytes();
        let [c, d] = g[7].to_be_bytes();
        return format!("::ffff:{}", show_ipv4(&[a, b, c, d]));
    }
    // The longest run of at least two zero groups (the first of equal runs) becomes `::`.
    let (mut best, mut run) = ((0, 0), (0, 0));
    for (i, &group) in g.iter().enumerate() {
        run = if group == 0 {
            (run.0, run.1 + 1)
        } else {
            (i + 1, 0)
        };
        if run.1 > best.1 {
            best = run;
        }
    }
    let (gap, len) = if best.1 >= 2 { best } else { (8, 0) };
    let mut out = String::with_capacity(39);
    for (i, group) in g.iter().enumerate() {
        if i == gap {
            out.push_str("::");
        } else if (gap..gap + len).contains(&i) {
            continue;
        } else {
            if i > 0 && i != gap + len {
                out.push(':');
            }
            let _ = write!(out, "{group:x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn std_canonical(text: &str) -> Option<String> {
        text.parse::<IpAddr>().ok().map(|ip| ip.to_string())
    }

    #[test]
    fn agrees_with_std_on_addresses_and_near_misses() {
        let cases = [
            "0.0.0.0",
            "203.0.113.7",
            "255.255.255.255",
            "256.1.1.1",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1..3.4",
            "1.2.3.",
            "",
            ".",
            "a.b.c.d",
            "1.2.3.4 ",
            "::",
            "::1",
            "1::",
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "2001:db8::0:1",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
            "1:0:0:1:0:0:0:1",
            "1:0:0:0:1:0:0:1",
            "0:0:1:0:0:1:0:0",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            ":::",
            "1:::2",
            "1::2::3",
            "::ffff:1.2.3.4",
            "::FFFF:192.0.2.128",
            "::1.2.3.4",
            "64:ff9b::192.0.2.33",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::ffff:1.2.3",
            "12345::",
            "g::1",
            ":1",
            "1:",
            "fe80::1%1",
            "[::1]",
            "::ffff:0:0",
            "0:0:0:0:0:ffff:0102:0304",
            "::0.0.0.0",
            "0::0:0",
        ];
        for text in cases {
            assert_eq!(canonical(text), std_canonical(text), "{text:?}");
        }
    }

    #[test]
    fn agrees_with_std_on_generated_addresses() {
        // Every address from a small pseudo-random walk, in full and compressed spellings.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = [0u16; 8];
            for (i, group) in g.iter_mut().enumerate() {
                // Mostly zeros, so that runs and ties occur.
                *group = if (x >> (i * 3)) & 3 == 0 {
                    (x >> (i * 5)) as u16
                } else {
                    0
                };
            }
            let full: Vec<String> = g.iter().map(|v| format!("{v:X}")).collect();
            let full = full.join(":");
            let ip: IpAddr = full.parse().unwrap();
            assert_eq!(
                canonical(&full).as_deref(),
                Some(ip.to_string().as_str()),
                "{full}"
            );
            let shown = ip.to_string();
            assert_eq!(canonical(&shown), Some(shown.clone()));
            let v4 = format!(
                "{}.{}.{}.{}",
                x as u8,
                (x >> 8) as u8,
                (x >> 16) as u8,
                (x >> 24) as u8
            );
            assert_eq!(canonical(&v4), std_canonical(&v4), "{v4}");
        }
    }
}
