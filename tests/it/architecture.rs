//! The layers of ARCHITECTURE.md, checked: every module may import only from its own
//! layer or those below it, modules never import each other in a cycle, and the files
//! of one folder form no cycle either (but for the parser recursion named below).
//! Imports are read from the source text (`crate::…` paths, `use crate::{…}` groups and
//! `super::…` paths), so the test needs no compiler plugin and fails naming file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module may import from its own layer and the ones before it.
const LAYERS: &[&[&str]] = &[
    // Pure values and rules: no I/O.
    &[
        "money",
        "providers",
        "usage",
        "pricing",
        "duration_text",
        "otlp",
    ],
    &["prepare"],
    // Knows nothing of config or HTTP.
    &["store"],
    // The read side.
    &["report"],
    &["auth", "webhook", "metrics", "ingest"],
    &["budget", "collect", "pricesync", "retention", "api"],
    &["config"],
    &["daemon", "commands", "cli"],
];

/// File-level edges allowed to close a cycle inside a folder, with why.
const ALLOWED_CYCLE_EDGES: &[(&str, &str, &str)] = &[(
    "usage/openai.rs",
    "usage/detect.rs",
    "an OpenAI Batch output line wraps a response body, parsed again by shape",
)];

struct Import {
    file: String,
    line: usize,
    /// The path after `crate::` or `super::`, as written.
    path: Vec<String>,
    from_super: bool,
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a line without its `//` comment (a `//` inside a string is kept).
fn code_of(line: &str) -> &str {
    let mut in_string = false;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return &line[..i],
            _ => {}
        }
        i += 1;
    }
    line
}

fn ident_at(text: &str) -> Option<String> {
    let ident: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!ident.is_empty()).then_some(ident)
}

/// `a::b::{c, d::e}` after a `crate::` or `super::`: every path it names.
fn paths_after(text: &str) -> Vec<Vec<String>> {
    let mut prefix = Vec::new();
    let mut rest = text;
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group, each with the prefix.
            let mut depth = 0;
            let mut items = vec![String::new()];
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(String::new());
                        continue;
                    }
                    _ => {}
                }
                items.last_mut().unwrap().push(c);
            }
            return items
                .iter()
                .map(|item| item.trim())
                .filter(|item| !item.is_empty())
                .flat_map(|item| {
                    paths_after(item).into_iter().map(|tail| {
                        let mut path = prefix.clone();
                        path.extend(tail);
                        path
                    })
                })
                .collect();
        }
        let Some(ident) = ident_at(rest) else {
            return vec![prefix];
        };
        rest = &rest[ident.len()..];
        prefix.push(ident);
        match rest.strip_prefix("::") {
            Some(after) => rest = after,
            None => return vec![prefix],
        }
    }
}

fn imports(src: &Path) -> Vec<Import> {
    let mut files = Vec::new();
    source_files(src, &mut files);
    let mut found = Vec::new();
    for path in files {
        let file = path
            .strip_prefix(src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let text = std::fs::read_to_string(&path).unwrap();
        // `use` statements may span lines: join each one before reading it.
        let mut statement = String::new();
        let mut statement_line = 0;
        for (number, raw) in text.lines().enumerate() {
            let code = code_of(raw);
            if statement.is_empty() {
                statement_line = number + 1;
            }
            statement.push_str(code.trim());
            statement.push(' ');
            let open = statement.matches('{').count() > statement.matches('}').count();
            let in_use = statement.trim_start().starts_with("use ")
                || statement.trim_start().starts_with("pub use ")
                || statement.trim_start().starts_with("pub(crate) use ");
            if in_use && (open || !statement.contains(';')) {
                continue;
            }
            for (marker, from_super) in [("crate::", false), ("super::", true)] {
                let mut rest = statement.as_str();
                while let Some(at) = rest.find(marker) {
                    let before = rest[..at].chars().last();
                    rest = &rest[at + marker.len()..];
                    if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                        continue;
                    }
                    // `super::super::x` and the like stay inside the folder: skip them.
                    let text = rest.replace(' ', "");
                    for path in paths_after(&text) {
                        if !path.is_empty() {
                            found.push(Import {
                                file: file.clone(),
                                line: statement_line,
                                path,
                                from_super,
                            });
                        }
                    }
                }
            }
            statement.clear();
        }
    }
    found
}

fn top_module(file: &str) -> &str {
    let first = file.split('/').next().unwrap();
    first.strip_suffix(".rs").unwrap_or(first)
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_module_imports_only_from_its_layer_or_below() {
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for import in imports(&src()) {
        let from = top_module(&import.file);
        if matches!(from, "lib" | "main") {
            continue;
        }
        modules.insert(from.to_owned());
        if import.from_super {
            continue;
        }
        let to = import.path[0].as_str();
        if to == from {
            continue;
        }
        match (layer_of(from), layer_of(to)) {
            (Some(a), Some(b)) if b > a => problems.push(format!(
                "src/{}:{}: `{from}` (layer {a}) imports `crate::{}` (layer {b}): a lower layer may not depend on a higher one",
                import.file,
                import.line,
                import.path.join("::")
            )),
            (None, _) => problems.push(format!(
                "src/{}: module `{from}` is in no layer: add it to LAYERS here and to ARCHITECTURE.md",
                import.file
            )),
            (_, None) => problems.push(format!(
                "src/{}:{}: `crate::{to}` is in no layer",
                import.file, import.line
            )),
            _ => {}
        }
    }
    problems.dedup();
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    // Every module of lib.rs is placed.
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line.trim().strip_prefix("pub mod ") {
            let name = name.trim_end_matches(';');
            assert!(
                layer_of(name).is_some(),
                "src/lib.rs: `{name}` is in no layer"
            );
        }
    }
}

/// The cycles of a directed graph, as node lists (one per strongly connected component
/// of more than one node).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn reach(edges: &BTreeMap<String, BTreeSet<String>>, from: &str, seen: &mut BTreeSet<String>) {
        for next in edges.get(from).into_iter().flatten() {
            if seen.insert(next.clone()) {
                reach(edges, next, seen);
            }
        }
    }
    let mut found: Vec<Vec<String>> = Vec::new();
    for node in edges.keys() {
        let mut forward = BTreeSet::new();
        reach(edges, node, &mut forward);
        if !forward.contains(node) {
            continue;
        }
        let component: Vec<String> = forward
            .iter()
            .filter(|other| {
                let mut back = BTreeSet::new();
                reach(edges, other, &mut back);
                back.contains(node)
            })
            .cloned()
            .collect();
        if !found.contains(&component) {
            found.push(component);
        }
    }
    found
}

#[test]
fn modules_form_no_cycle() {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut where_: BTreeMap<(String, String), String> = BTreeMap::new();
    for import in imports(&src()) {
        let from = top_module(&import.file).to_owned();
        if import.from_super || matches!(from.as_str(), "lib" | "main") {
            continue;
        }
        let to = import.path[0].clone();
        if to != from {
            where_
                .entry((from.clone(), to.clone()))
                .or_insert_with(|| format!("src/{}:{}", import.file, import.line));
            edges.entry(from).or_default().insert(to);
        }
    }
    let found = cycles(&edges);
    let described: Vec<String> = found
        .iter()
        .map(|cycle| {
            let edges: Vec<String> = where_
                .iter()
                .filter(|((a, b), _)| cycle.contains(a) && cycle.contains(b))
                .map(|((a, b), at)| format!("{a} -> {b} ({at})"))
                .collect();
            format!("cycle among {cycle:?}: {}", edges.join(", "))
        })
        .collect();
    assert!(found.is_empty(), "\n{}", described.join("\n"));
}

#[test]
fn the_files_of_a_folder_form_no_cycle() {
    let root = src();
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for import in imports(&root) {
        let Some((folder, _)) = import.file.rsplit_once('/') else {
            continue;
        };
        // A sibling file module named by `super::x` or `crate::folder::x`.
        let sibling = if import.from_super {
            import.path.first()
        } else if import.path.first().map(String::as_str) == Some(folder) {
            import.path.get(1)
        } else {
            None
        };
        let Some(sibling) = sibling else { continue };
        let target = format!("{folder}/{sibling}.rs");
        let allowed = ALLOWED_CYCLE_EDGES
            .iter()
            .any(|(a, b, _)| *a == import.file && *b == target);
        if names.contains(&target) && target != import.file && !allowed {
            edges.entry(import.file.clone()).or_default().insert(target);
        }
    }
    let found = cycles(&edges);
    assert!(found.is_empty(), "file cycles: {found:?}");
}

#[test]
fn the_import_reader_sees_groups_and_ignores_comments() {
    assert_eq!(
        paths_after("{a::{b,c},d}"),
        vec![
            vec!["a".to_owned(), "b".to_owned()],
            vec!["a".to_owned(), "c".to_owned()],
            vec!["d".to_owned()]
        ]
    );
    assert_eq!(
        code_of(r#"let x = "http://a"; // crate::config"#),
        r#"let x = "http://a"; "#
    );
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    edges.entry("a".into()).or_default().insert("b".into());
    edges.entry("b".into()).or_default().insert("a".into());
    edges.entry("b".into()).or_default().insert("c".into());
    assert_eq!(cycles(&edges), vec![vec!["a".to_owned(), "b".to_owned()]]);
}

#[test]
fn the_code_map_names_every_source_file() {
    let root = src();
    let map =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|p| format!("`src/{}`", p.strip_prefix(&root).unwrap().to_string_lossy()))
        .filter(|name| !map.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {}",
        missing.join(", ")
    );
    // And every layer module is in the layer table.
    for module in LAYERS.iter().flat_map(|layer| layer.iter()) {
        assert!(
            map.contains(&format!("`{module}`")),
            "ARCHITECTURE.md: layer table lacks `{module}`"
        );
    }
}
