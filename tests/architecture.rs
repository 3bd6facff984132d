//! The shape of the code, checked: the layers point one way (`routes → domain ← storage`,
//! with the pipeline and the context above the routes, and the isolate's state beside the
//! context, neither reaching up into the routes), no module under `src/` is part of an import
//! cycle, nothing under `src/domain/` knows about the platform, the HTTP layers or HTTP's
//! own words (headers, the HTTP error type), and no function outside tests is longer than
//! 60 lines from its `fn` to its closing brace.
//!
//! Imports are read from the source text: every `crate::…`, `super::…` and `self::…` path
//! (including `use crate::{a, b::c}` groups) is resolved to the deepest module file it
//! names. Test modules (from a line `#[cfg(test)]` that opens `mod tests`) are not part of
//! the module graph: unit tests may use the fakes in `storage/`.

// Native test code: the Wasm size rules (clippy.toml, string_slice) do not apply.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::string_slice
)]
// Test code: a failed read of the source tree should fail the test loudly.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const MAX_FN_LINES: usize = 60;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its module path (`domain::config`, `crate` for lib.rs).
fn modules(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !is_test_file(&path) {
                let rel = path.strip_prefix(dir).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
                    parts.pop();
                }
                let name = if parts.is_empty() {
                    "crate".to_string()
                } else {
                    parts.join("::")
                };
                out.insert(name, fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

/// A module file of unit tests only (`mod tests;` beside the code it tests).
fn is_test_file(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "tests.rs")
}

/// The source without its test module.
fn without_tests(text: &str) -> &str {
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if line.trim() == "#[cfg(test)]" && next.starts_with("mod tests") {
            let offset: usize = lines[..i].iter().map(|l| l.len() + 1).sum();
            return &text[..offset];
        }
    }
    text
}

/// The source without comments, so that prose never counts as an import or a mention.
fn code_only(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Module paths referenced from `module`'s code.
fn references(module: &str, code: &str) -> Vec<String> {
    let parent: Vec<&str> = if module == "crate" {
        vec![]
    } else {
        let mut p: Vec<&str> = module.split("::").collect();
        p.pop();
        p
    };
    let own: Vec<&str> = if module == "crate" {
        vec![]
    } else {
        module.split("::").collect()
    };
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", vec![]), ("super::", parent), ("self::", own)] {
        let mut rest = code;
        while let Some(i) = rest.find(prefix) {
            let preceded_by_ident = rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            rest = &rest[i + prefix.len()..];
            if preceded_by_ident {
                continue;
            }
            for path in expand(rest) {
                let mut full: Vec<String> = base.iter().map(|s| s.to_string()).collect();
                full.extend(path.split("::").map(str::to_string));
                out.push(full.join("::"));
            }
        }
    }
    out
}

/// The paths at the start of `s`: `a::b::C` or a group `{a, b::{c, d}}`.
fn expand(s: &str) -> Vec<String> {
    let s = s.trim_start();
    if let Some(inner) = s.strip_prefix('{') {
        let mut depth = 1;
        let end = inner
            .char_indices()
            .find(|(_, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(inner.len(), |(i, _)| i);
        let body = &inner[..end];
        let mut items = Vec::new();
        let (mut depth, mut start) = (0, 0);
        for (i, c) in body.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&body[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        items.push(&body[start..]);
        return items
            .into_iter()
            .filter(|i| !i.trim().is_empty())
            .flat_map(expand)
            .collect();
    }
    let path: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
        .collect();
    let path = path.trim_end_matches(':').to_string();
    if let Some(group) = s[path.len()..].strip_prefix("::") {
        return expand(group)
            .into_iter()
            .map(|p| format!("{path}::{p}"))
            .collect();
    }
    vec![path]
}

/// The deepest known module a path names.
fn resolve(path: &str, known: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| known.contains(m))
}

/// The import graph among modules (edges to self dropped).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules(&src());
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    mods.iter()
        .map(|(name, text)| {
            let code = code_only(without_tests(text));
            let deps = references(name, &code)
                .iter()
                .filter_map(|p| resolve(p, &known))
                .filter(|d| d != name)
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                s.low.insert(v, s.low[v].min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                s.low.insert(v, s.low[v].min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                s.out.push(scc);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_module_is_part_of_an_import_cycle() {
    let g = graph();
    assert!(g.contains_key("domain::sessions") && g.contains_key("pipeline"));
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles among src/ modules: {found:?}"
    );
}

/// Where `word` occurs in `text` as a whole word (not inside an identifier).
fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().last();
        let after = text[i + word.len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

#[test]
fn the_domain_mentions_no_platform_or_http_layer() {
    // Anywhere, prose included: the layers above and the platform.
    let layers = ["worker", "ctx", "routes", "pipeline"];
    // In code: HTTP's own words. The domain speaks of versions, outcomes and DomainError.
    let http = [
        "ApiError",
        "ApiResult",
        "If-Match",
        "If-None-Match",
        "ETag",
        "X-Cache",
        "Set-Cookie",
        "Request",
        "Response",
        "header",
        "headers",
        "status_code",
    ];
    for (name, text) in modules(&src().join("domain")) {
        for word in layers {
            assert!(
                !mentions(&text, word),
                "src/domain/{name}: mentions `{word}`"
            );
        }
        let code = code_only(&text);
        for word in http {
            assert!(!mentions(&code, word), "src/domain/{name}: uses `{word}`");
        }
    }
}

#[test]
fn layers_point_one_way() {
    let g = graph();
    let layer = |m: &str| m.split("::").next().unwrap_or(m).to_string();
    for (from, deps) in &g {
        for to in deps {
            let (a, b) = (layer(from), layer(to));
            let forbidden = match a.as_str() {
                "domain" => !matches!(b.as_str(), "domain" | "log"),
                "storage" => matches!(b.as_str(), "routes" | "pipeline" | "ctx" | "embed"),
                "routes" => matches!(b.as_str(), "pipeline" | "storage" | "embed"),
                "ctx" => matches!(b.as_str(), "routes" | "pipeline" | "embed"),
                "isolate" => matches!(b.as_str(), "routes" | "pipeline" | "ctx" | "embed"),
                "origins" | "clock" | "log" | "text" => b.as_str() != "domain" && b != a,
                _ => false,
            };
            assert!(!forbidden, "{from} → {to} breaks routes → domain ← storage");
        }
    }
}

/// Lines of each `fn` outside test modules, from the line of its `fn` to the line of its
/// closing brace, found by counting braces (string and character literals and comments
/// skipped).
fn long_functions(name: &str, text: &str) -> Vec<String> {
    let code = code_only(without_tests(text));
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut search = 0;
    while let Some(i) = code[search..].find("fn ").map(|i| i + search) {
        search = i + 3;
        let ident_before = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if ident_before {
            continue;
        }
        let Some((open, close)) = body_span(&code, i) else {
            continue;
        };
        let _ = open;
        let lines = code[i..=close].lines().count();
        if lines > MAX_FN_LINES {
            let fname: String = code[i + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(format!("src/{name}: fn {fname} is {lines} lines"));
        }
    }
    out
}

/// The byte span of the body of the `fn` at `start`: from its `{` to the matching `}`.
fn body_span(code: &str, start: usize) -> Option<(usize, usize)> {
    let b = code.as_bytes();
    let mut i = start;
    // The signature ends at the first `{` (or `;` for a declaration without body).
    while i < b.len() && b[i] != b'{' {
        if b[i] == b';' {
            return None;
        }
        i += 1;
    }
    let open = i;
    let mut depth = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'\'' if i + 2 < b.len() && (b[i + 2] == b'\'' || b[i + 1] == b'\\') => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some((open, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[test]
fn no_function_outside_tests_is_longer_than_60_lines() {
    let long: Vec<String> = modules(&src())
        .iter()
        .flat_map(|(name, text)| long_functions(&name.replace("::", "/"), text))
        .collect();
    assert!(long.is_empty(), "{long:#?}");
}

#[test]
fn the_checks_see_what_they_look_for() {
    // A cycle, a reference through a `use` group, and a long function are all detected.
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
    let refs = references("x::y", "use crate::{a::b, c::{d, e::F}};\nuse super::z;");
    assert_eq!(refs, vec!["a::b", "c::d", "c::e::F", "x::z"]);
    let long_fn = format!("fn f() {{\n{}}}\n", "    let _ = '{';\n".repeat(70));
    assert_eq!(long_functions("t", &long_fn).len(), 1);
    let sixty = format!("fn f() {{\n{}}}\n", "    x();\n".repeat(58));
    let sixty_one = format!("fn f() {{\n{}}}\n", "    x();\n".repeat(59));
    assert!(
        long_functions("t", &sixty).is_empty(),
        "60 lines from fn to brace"
    );
    assert_eq!(long_functions("t", &sixty_one).len(), 1, "61 lines");
    assert!(mentions("a ETag b", "ETag") && !mentions("an ETags b", "ETag"));
    assert!(long_functions("t", "fn g() {\n}\n").is_empty());
}
