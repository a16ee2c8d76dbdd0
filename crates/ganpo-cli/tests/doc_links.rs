//! Every relative link and every repository path (`src/…`, `docs/…`, `tests/…`, …) named in
//! README.md and docs/**/*.md resolves to a file or folder of the repository, no doc, tool or
//! script names a machine-specific absolute path, and docs/design.md's Layout names every
//! top-level module of every workspace member.

use std::path::{Path, PathBuf};

/// Top-level folders of the repository: a path whose first component is one of these is a
/// reference to a repository file, resolved from the repository root.
const TOP: &[&str] = &[
    ".ci", "benches", "crates", "docs", "examples", "scripts", "src", "tests", "tools",
];

/// Absolute path prefixes that exist on one machine only.
const MACHINE_PATHS: &[&str] = &["/work/", "/home/", "/root/"];

/// The repository root, two levels above this crate (`crates/ganpo-cli`).
fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Every file under `dir` (recursively), sorted.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// README.md and every markdown file under docs/.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    files.extend(
        walk(&root().join("docs"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    files
}

/// Targets of inline markdown links `[text](target)` and reference definitions `[x]: target`,
/// without anchors or titles; web and mail links and pure anchors are left out.
fn link_targets(text: &str) -> Vec<String> {
    let mut raw = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            raw.push(rest[..end].to_owned());
        }
    }
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(after) = line.strip_prefix('[')
            && let Some((_, target)) = after.split_once("]: ")
        {
            raw.push(target.to_owned());
        }
    }
    raw.into_iter()
        .filter_map(|t| {
            let t = t.trim().trim_start_matches('<').trim_end_matches('>');
            let t = t.split_whitespace().next().unwrap_or("");
            let t = t.split('#').next().unwrap_or("");
            let web = t.contains("://") || t.starts_with("mailto:");
            (!t.is_empty() && !web).then(|| t.to_owned())
        })
        .collect()
}

/// Expands shell-style braces: `a-{x,y}/` → `a-x/`, `a-y/`.
fn expand_braces(token: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (token.find('{'), token.find('}')) else {
        return vec![token.to_owned()];
    };
    if close < open {
        return vec![token.to_owned()];
    }
    let (head, tail) = (&token[..open], &token[close + 1..]);
    token[open + 1..close]
        .split(',')
        .flat_map(|alt| expand_braces(&format!("{head}{alt}{tail}")))
        .collect()
}

/// Repository paths named in `text`: words made of path characters whose first component is a
/// top-level folder of the repository (`src/train/step.rs`, `docs/bench/`, `tools/bench/x.sh`).
fn repo_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut depth = 0usize;
    let flush = |word: &mut String, out: &mut Vec<String>| {
        let w = word.trim_end_matches(['.', ',', ':', ';']).to_owned();
        word.clear();
        let w = w.strip_prefix("./").unwrap_or(&w);
        let Some((first, _)) = w.split_once('/') else {
            return;
        };
        if TOP.contains(&first) {
            out.extend(expand_braces(w));
        }
    };
    for c in text.chars() {
        let path_char = c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | '*');
        match c {
            '{' => {
                depth += 1;
                word.push(c);
            }
            '}' if depth > 0 => {
                depth -= 1;
                word.push(c);
            }
            ',' if depth > 0 => word.push(c),
            _ if path_char => word.push(c),
            _ => {
                depth = 0;
                flush(&mut word, &mut out);
            }
        }
    }
    flush(&mut word, &mut out);
    // Globs (`docs/bench/*/`) name no single file.
    out.retain(|p| !p.contains('*'));
    out
}

/// The broken references of one markdown file: `(what, target)` for each that does not resolve.
fn broken(file: &Path, text: &str) -> Vec<String> {
    let dir = file.parent().unwrap_or(root());
    let mut bad = Vec::new();
    for target in link_targets(text) {
        if !dir.join(&target).exists() {
            bad.push(format!("link ({target})"));
        }
    }
    for path in repo_paths(text) {
        if !root().join(&path).exists() {
            bad.push(format!("path `{path}`"));
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn every_link_and_path_in_the_docs_resolves() {
    let mut problems = Vec::new();
    let files = markdown_files();
    assert!(files.len() > 5, "found only {files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for b in broken(file, &text) {
            let name = file.strip_prefix(root()).unwrap().display();
            problems.push(format!("{name}: {b}"));
        }
    }
    assert!(
        problems.is_empty(),
        "unresolved references:\n{}",
        problems.join("\n")
    );
}

#[test]
fn no_machine_specific_paths_in_docs_tools_and_scripts() {
    let mut files = markdown_files();
    for dir in ["tools", "scripts", ".ci"] {
        files.extend(walk(&root().join(dir)));
    }
    let mut problems = Vec::new();
    for file in files {
        // Binary files and measured logs are not read; every text file of these folders is.
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if MACHINE_PATHS.iter().any(|p| line.contains(p)) {
                let name = file.strip_prefix(root()).unwrap().display();
                problems.push(format!("{name}:{}: {line}", n + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "machine-specific paths:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_checker_finds_broken_links_and_paths() {
    let readme = root().join("README.md");
    let text = "See [design](docs/design.md), [gone](docs/no-such-file.md#x), \
                [web](https://example.org/a/b) and [anchor](#install); code in `crates/ganpo/src/lib.rs`, \
                `src/no_such_module.rs`, `docs/bench/` and `docs/{design,nothing}.md`; \
                `runs/x/final` and `/tmp/x` are not repository paths.\n\
                [ref]: tools/none.sh\n";
    assert_eq!(
        broken(&readme, text),
        [
            "link (docs/no-such-file.md)",
            "link (tools/none.sh)",
            "path `docs/no-such-file.md`",
            "path `docs/nothing.md`",
            "path `src/no_such_module.rs`",
            "path `tools/none.sh`",
        ]
    );
    // Links resolve from the file's own folder.
    let nested = root().join("docs/bench/README.md");
    assert!(broken(&nested, "[history](HISTORY.md) [up](../design.md)").is_empty());
    assert_eq!(broken(&nested, "[design](design.md)"), ["link (design.md)"]);
}

#[test]
fn design_layout_names_every_top_level_module() {
    let design = std::fs::read_to_string(root().join("docs/design.md")).unwrap();
    let layout = design
        .split("\n## Layout\n")
        .nth(1)
        .expect("docs/design.md has a `## Layout` section");
    let layout = layout.split("\n## ").next().unwrap();
    // Each workspace member's `src/`.
    let mut sources = Vec::new();
    for member in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        sources.push(Path::new("crates").join(member.file_name()).join("src"));
    }
    assert!(sources.len() >= 2, "the workspace members: {sources:?}");
    let mut missing = Vec::new();
    for src in sources {
        let Ok(entries) = std::fs::read_dir(root().join(&src)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let shown = if entry.path().is_dir() {
                format!("{}/{name}/", src.display())
            } else if name.ends_with(".rs") {
                format!("{}/{name}", src.display())
            } else {
                continue;
            };
            if !layout.contains(&shown) {
                missing.push(shown);
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "docs/design.md's Layout does not name: {missing:?}"
    );
}
