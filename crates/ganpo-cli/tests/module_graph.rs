//! Each workspace member's top-level modules (`crates/<member>/src/<name>.rs`, `.../src/<name>/`)
//! form a graph without cycles:
//! every `crate::<module>` path in the code of one module (a `use`, a `use crate::{a, b::c}`
//! group, an inline path; `//` comments excluded) is an edge, and a cycle fails this test with the
//! files that make each of its edges. Names re-exported at the crate root (`pub use
//! error::{Error, Result}`) count as their module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module → module it uses → files of the first that use it.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// A crate root's (`src/lib.rs`) `mod` declarations and its root re-exports (name → module).
fn crate_root(lib: &str) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let code = strip_comments(lib);
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for mut statement in code.split(';') {
        // Attributes (`#![warn(missing_docs)]`, `#[cfg(...)]`) before the item.
        while let Some(attr) = statement.trim_start().strip_prefix('#') {
            statement = attr.split_once(']').map_or("", |(_, item)| item);
        }
        let words: Vec<&str> = statement.split_whitespace().collect();
        let rest = match words.first() {
            Some(&"pub") | Some(&"pub(crate)") => &words[1..],
            _ => &words[..],
        };
        match rest {
            ["mod", name] => {
                modules.insert(name.to_string());
            }
            ["use", ..] => {
                let path = rest[1..].concat();
                if let Some((module, names)) = path.split_once("::") {
                    let names = names.trim_start_matches('{').trim_end_matches('}');
                    for name in names.split(',').filter(|n| !n.is_empty()) {
                        reexports.insert(name.to_string(), module.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (modules, reexports)
}

/// The code without `//` comments (doc links name modules without using them). Block comments
/// are not used in this crate, and a `/*` inside a string (`"disc/*"`) must not hide code.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The first segment after each `crate::` in `code`: `crate::a::b` → `a`, and every item of a
/// group, `crate::{a, b::c}` → `a`, `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        let ident = |s: &str| -> String {
            s.trim_start()
                .chars()
                .take_while(|&c| is_ident(c))
                .collect()
        };
        if let Some(group) = rest.strip_prefix('{') {
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..i]));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.map(|e| e.expect("readable directory entry")) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The graph of the crate rooted at `src`.
fn module_graph(src: &Path) -> Graph {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let (modules, reexports) = crate_root(&lib);
    assert!(
        modules.len() > 5,
        "{}/lib.rs declares the modules: {modules:?}",
        src.display()
    );
    let mut graph = Graph::new();
    for module in &modules {
        let mut files = Vec::new();
        let single = src.join(format!("{module}.rs"));
        if single.is_file() {
            files.push(single);
        }
        rust_files(&src.join(module), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable source");
            for target in crate_paths(&strip_comments(&text)) {
                let target = reexports.get(&target).unwrap_or(&target);
                if target != module && modules.contains(target) {
                    let rel = file
                        .strip_prefix(src.parent().unwrap_or(src))
                        .unwrap_or(&file);
                    graph
                        .entry(module.clone())
                        .or_default()
                        .entry(target.clone())
                        .or_default()
                        .insert(rel.display().to_string());
                }
            }
        }
    }
    graph
}

/// One cycle of `graph` (its modules in order, the first repeated at the end), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    // Depth-first search; `path` is the current chain, `done` the modules proved cycle-free.
    fn visit(
        graph: &Graph,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(graph, m, &mut Vec::new(), &mut done))
}

/// The cycle as lines `a → b (files)`.
fn describe(graph: &Graph, cycle: &[String]) -> String {
    cycle
        .windows(2)
        .map(|w| {
            let files: Vec<&str> = graph[&w[0]][&w[1]].iter().map(String::as_str).collect();
            format!("  {} → {}  ({})", w[0], w[1], files.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crates/<member>/src` of the workspace.
fn member_src(member: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(member)
        .join("src")
}

/// Fails with the cycle if `graph` has one.
fn assert_acyclic(member: &str, graph: &Graph) {
    if let Some(cycle) = find_cycle(graph) {
        panic!(
            "import cycle between top-level modules of {member}: {}\n{}\nmove the shared item to the lower module (or a leaf module both use)",
            cycle.join(" → "),
            describe(graph, &cycle)
        );
    }
}

#[test]
fn top_level_modules_have_no_import_cycle() {
    // Each member crate on its own: the library, then the CLI crate over it (a `ganpo::` path
    // there is the other crate, which Cargo already keeps acyclic).
    let expected = [
        (
            "ganpo",
            &[("train", "model"), ("model", "kernels"), ("eval", "train")][..],
        ),
        ("ganpo-cli", &[("cli", "demo"), ("demo", "judge")][..]),
    ];
    for (member, edges) in expected {
        let graph = module_graph(&member_src(member));
        // The scan sees the crate's real dependencies (else an empty graph would pass).
        for (from, to) in edges {
            assert!(
                graph.get(*from).is_some_and(|t| t.contains_key(*to)),
                "the scan misses {member}: {from} → {to}: {graph:#?}"
            );
        }
        assert_acyclic(member, &graph);
    }
}

#[test]
fn the_scan_reads_groups_inline_paths_and_skips_comments() {
    let code = strip_comments(
        "use crate::{Error, Result, kernels};\n/// [`crate::demo::x`]\nlet a = crate::model::f();\n\
         use crate::{data::{Batch, Pair}, train::step};\nuse other_crate::x; // crate::plot\nlet s = \"disc/*\"; $crate::losses::y",
    );
    assert_eq!(
        crate_paths(&code),
        [
            "Error", "Result", "kernels", "model", "data", "train", "losses"
        ]
    );
    let (modules, reexports) = crate_root(
        "//! docs\n#![warn(missing_docs)]\npub mod a;\nmod b; // c\npub use a::{X, Y};\n",
    );
    assert_eq!(modules, BTreeSet::from(["a".to_string(), "b".to_string()]));
    assert_eq!(reexports["Y"], "a");
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut graph = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        graph
            .entry(from.into())
            .or_default()
            .entry(to.into())
            .or_default()
            .insert(format!("src/{from}.rs"));
    }
    let cycle = find_cycle(&graph).expect("a → b → c → a");
    assert_eq!(cycle, ["a", "b", "c", "a"]);
    assert!(describe(&graph, &cycle).contains("c → a  (src/c.rs)"));
    if let Some(t) = graph.get_mut("c") {
        t.remove("a");
    }
    assert_eq!(find_cycle(&graph), None);
}
