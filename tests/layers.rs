//! The crate's files import each other without circles: every `crate::…`
//! and `super::…` path in `src/` (in `use` lines and inline, comments
//! left out) is an edge from its file to the file defining the longest
//! prefix of the path that is a module, and no two files reach each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`["ops", "conv"]`) → file, for every `.rs` under `src/`.
fn modules(src: &Path) -> BTreeMap<Vec<String>, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src).unwrap().with_extension("");
                let mut key: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
                if key.last().is_some_and(|l| l == "mod") {
                    key.pop();
                }
                if key == ["lib"] || key == ["main"] {
                    key.clear();
                }
                out.insert(key, p.display().to_string());
            }
        }
    }
    out
}

/// The identifiers of a `::`-path starting at `text`'s beginning, with one
/// level of braces expanded (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn paths_after(text: &str) -> Vec<Vec<String>> {
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').count();
    let mut base = Vec::new();
    let mut rest = text;
    while let Some(r) = rest.strip_prefix("::") {
        if let Some(inner) = r.strip_prefix('{') {
            let close = inner.find('}').unwrap_or(inner.len());
            return inner[..close]
                .split(',')
                .map(|item| {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    let mut p = base.clone();
                    if item != "self" {
                        p.extend(item.split("::").filter(|x| !x.is_empty() && *x != "{").map(str::to_string));
                    }
                    p
                })
                .collect();
        }
        let n = ident(r);
        if n == 0 {
            break;
        }
        base.push(r[..n].to_string());
        rest = &r[n..];
    }
    vec![base]
}

fn module_file<'a>(mods: &'a BTreeMap<Vec<String>, String>, parts: &[String]) -> Option<&'a String> {
    (1..=parts.len()).rev().find_map(|k| mods.get(&parts[..k]))
}

#[test]
fn no_file_of_the_crate_imports_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mods = modules(&src);
    let mut edges: BTreeMap<&String, BTreeSet<&String>> = BTreeMap::new();
    for (key, file) in &mods {
        let text: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let from = edges.entry(file).or_default();
        for (at, _) in text.match_indices("crate::") {
            for p in paths_after(&text[at + "crate".len()..]) {
                if let Some(t) = module_file(&mods, &p).filter(|t| *t != file) {
                    from.insert(t);
                }
            }
        }
        let parent = &key[..key.len().saturating_sub(1)];
        for (at, _) in text.match_indices("super::") {
            if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            for p in paths_after(&text[at + "super".len()..]) {
                let full: Vec<String> = parent.iter().cloned().chain(p).collect();
                if let Some(t) = module_file(&mods, &full).filter(|t| *t != file) {
                    from.insert(t);
                }
            }
        }
    }
    // A circle exists iff some edge a → b has a path back b ⇝ a.
    let reaches = |from: &String, to: &String| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(f) = todo.pop() {
            if f == to {
                return true;
            }
            if seen.insert(f) {
                todo.extend(edges.get(f).into_iter().flatten().copied());
            }
        }
        false
    };
    let circles: Vec<String> = edges
        .iter()
        .flat_map(|(a, bs)| bs.iter().filter(|b| reaches(b, a)).map(move |b| format!("{a} ⇄ {b}")))
        .collect();
    assert!(circles.is_empty(), "files that import each other (directly or through others):\n{}", circles.join("\n"));
    assert!(edges.len() > 50, "read only {} files", edges.len());
}
