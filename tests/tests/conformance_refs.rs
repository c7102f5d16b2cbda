//! Checks that every test `docs/conformance.md` cites exists (acceptance item 1 of issue 5: the
//! spec-to-test table names only real tests). Host-only and fast: it reads sources, boots nothing.
//!
//! - `utest` names (`MODULE::NAME` after expanding the shorthands listed at the top of the doc,
//!   or `utest::MODULE::NAME`) must be in that module's `tests!(...)` table, the module being
//!   registered in `ALL` of `user/utest/src/tests/mod.rs`. A `*` is a glob: at least one test
//!   must match. `..._SUFFIX` means any utest whose name ends in `_SUFFIX`.
//! - Host files (`vm/tests/model/main.rs`, globs like `vm/tests/*.rs`) must exist; with `::NAME` the
//!   file must define `fn NAME`, marked `#[test]` when the file is a test file (under `tests/`).
//!
//! Passing means the table's citations resolve; that they pass is `cargo test` itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level directories a cited host path may start with.
const HOST_ROOTS: &[&str] = &[
    "vm/",
    "syscalls/",
    "kernel/",
    "arch/",
    "tests/",
    "user/",
    "boot/",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// `*` matches any (possibly empty) run of characters.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob_match(rest, &tail[i..]))
        }
    }
}

fn is_ident(s: &str, allow_glob: bool) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || (allow_glob && c == '*')
        })
}

/// Module name → test names, from `ALL` in mod.rs and each module's `tests!(...)`.
fn utest_modules(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let dir = root.join("user/utest/src/tests");
    let mod_rs = read(&dir.join("mod.rs"));
    let all = mod_rs
        .split("pub const ALL")
        .nth(1)
        .expect("`pub const ALL` in utest tests/mod.rs");
    let all = &all[..all.find("];").expect("end of ALL")];
    let mut modules = BTreeMap::new();
    for entry in all.split("(\"").skip(1) {
        let (name, rest) = entry.split_once('"').expect("module name string");
        let file = rest
            .trim_start_matches(',')
            .trim()
            .split("::")
            .next()
            .expect("module path");
        let src = read(&dir.join(format!("{file}.rs")));
        let body = src
            .split("tests!(")
            .nth(1)
            .unwrap_or_else(|| panic!("no tests!( in {file}.rs"));
        let body = &body[..body.find(')').expect("end of tests!(")];
        let tests = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        modules.insert(name.to_string(), tests);
    }
    modules
}

/// The doc's module shorthands: "`alloc` = `utest::vmar_alloc`" (the intro's list) and
/// "`utest::zircon_vmo_map` (`zvmo`)".
fn shorthands(doc: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let spans: Vec<&str> = doc.split('`').collect();
    for i in (1..spans.len().saturating_sub(2)).step_by(2) {
        if spans[i + 1].trim() == "=" {
            if let Some(module) = spans[i + 2].strip_prefix("utest::") {
                map.insert(spans[i].to_string(), module.to_string());
            }
        }
    }
    // The other form: "`utest::zircon_vmo_map` (`zvmo`)".
    for i in (1..spans.len().saturating_sub(2)).step_by(2) {
        if let Some(module) = spans[i].strip_prefix("utest::") {
            if spans[i + 1].trim() == "(" && spans[i + 2].chars().all(|c| c.is_ascii_lowercase()) {
                map.insert(spans[i + 2].to_string(), module.to_string());
            }
        }
    }
    map
}

/// Does `file` define `fn name` (marked `#[test]` when `need_test`)?
fn defines_fn(src: &str, name: &str, need_test: bool) -> bool {
    let lines: Vec<&str> = src.lines().collect();
    lines.iter().enumerate().any(|(i, line)| {
        let l = line.trim_start();
        let l = l.strip_prefix("pub ").unwrap_or(l);
        let defines = l.strip_prefix("fn ").is_some_and(|r| {
            r.strip_prefix(name)
                .is_some_and(|r| r.starts_with('(') || r.starts_with('<'))
        });
        if !defines || !need_test {
            return defines;
        }
        // Walk back over attributes and doc comments looking for `#[test]`.
        lines[..i]
            .iter()
            .rev()
            .map(|l| l.trim())
            .take_while(|l| l.starts_with("#[") || l.starts_with("///") || l.starts_with("//"))
            .any(|l| l == "#[test]")
    })
}

fn check_host(root: &Path, span: &str) -> Result<(), String> {
    let (path, name) = match span.split_once(".rs::") {
        Some((p, n)) => (format!("{p}.rs"), Some(n)),
        None => (span.to_string(), None),
    };
    let files: Vec<PathBuf> =
        if let Some((dir, pat)) = path.rsplit_once('/').filter(|_| path.contains('*')) {
            fs::read_dir(root.join(dir))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter(|e| glob_match(pat, &e.file_name().to_string_lossy()))
                        .map(|e| e.path())
                        .collect()
                })
                .unwrap_or_default()
        } else if root.join(&path).is_file() {
            vec![root.join(&path)]
        } else {
            vec![]
        };
    if files.is_empty() {
        return Err(format!("`{span}`: no such file {path}"));
    }
    if let Some(name) = name {
        let need_test = path.contains("tests/");
        if !files.iter().any(|f| defines_fn(&read(f), name, need_test)) {
            let what = if need_test { "#[test] fn" } else { "fn" };
            return Err(format!("`{span}`: {path} has no {what} {name}"));
        }
    }
    Ok(())
}

#[test]
fn every_test_cited_in_conformance_md_exists() {
    let root = root();
    let doc = read(&root.join("docs/conformance.md"));
    let modules = utest_modules(&root);
    let short = shorthands(&doc);
    assert!(
        short.len() >= 10,
        "expected the module shorthands at the top of the doc, found {short:?}"
    );

    let mut errors = BTreeSet::new();
    for (alias, module) in &short {
        if !modules.contains_key(module) {
            errors.insert(format!(
                "shorthand `{alias}` = `utest::{module}`: no such utest module in ALL"
            ));
        }
    }
    let all_tests: Vec<String> = modules
        .iter()
        .flat_map(|(m, ts)| ts.iter().map(move |t| format!("{m}::{t}")))
        .collect();

    let mut checked = 0;
    // Spans between backticks; the doc has no fenced code blocks (asserted below).
    assert!(
        !doc.contains("```"),
        "fenced code blocks would confuse the span parser"
    );
    for span in doc.split('`').skip(1).step_by(2) {
        if let Some(suffix) = span.strip_prefix("...") {
            checked += 1;
            if is_ident(suffix, true)
                && !all_tests
                    .iter()
                    .any(|t| glob_match(&format!("*::*{suffix}"), t))
            {
                errors.insert(format!("`{span}`: no utest ends in {suffix}"));
            }
            continue;
        }
        if span.ends_with(".rs") && !span.contains('/') {
            checked += 1;
            errors.insert(format!(
                "`{span}`: cite the file's path from the workspace root"
            ));
            continue;
        }
        if HOST_ROOTS.iter().any(|r| span.starts_with(r)) && span.contains(".rs") {
            checked += 1;
            if let Err(e) = check_host(&root, span) {
                errors.insert(e);
            }
            continue;
        }
        let parts: Vec<&str> = span.split("::").collect();
        let (module, name) = match parts.as_slice() {
            ["utest", m, n] => (m.to_string(), *n),
            [m, n] if short.contains_key(*m) => (short[*m].clone(), *n),
            [m, n] if modules.contains_key(*m) => (m.to_string(), *n),
            _ => continue,
        };
        if !is_ident(&module, false) || !is_ident(name, true) {
            continue; // `utest::MODULE::NAME`, Rust paths like `vm::AddressSpace::mapping_at`
        }
        checked += 1;
        match modules.get(&module) {
            None => errors.insert(format!("`{span}`: no utest module {module}")),
            Some(tests) if !tests.iter().any(|t| glob_match(name, t)) => {
                errors.insert(format!("`{span}`: no test utest::{module}::{name}"))
            }
            Some(_) => false,
        };
    }
    assert!(
        checked > 100,
        "only {checked} citations found: is the doc's format still understood?"
    );
    assert!(
        errors.is_empty(),
        "docs/conformance.md cites {} test(s) that do not exist:\n  {}",
        errors.len(),
        errors.into_iter().collect::<Vec<_>>().join("\n  ")
    );
}

#[test]
fn glob_matches() {
    assert!(glob_match("partial_unmap_*", "partial_unmap_and_read"));
    assert!(glob_match(
        "*_errors_change_nothing",
        "protect_errors_change_nothing"
    ));
    assert!(glob_match("*", ""));
    assert!(!glob_match("unmap_*", "partial_unmap_x"));
    assert!(!glob_match("abc", "abcd"));
}

/// The Zircon table of docs/conformance.md lists exactly the vmar.cc test names kept in
/// `tests/upstream/vmar_cc_tests.txt` (with the same trees), each with a status: `ported`,
/// `adapted` or `not applicable`.
#[test]
fn zircon_vmar_table_lists_every_upstream_test() {
    let root = root();
    let upstream: BTreeMap<String, String> = read(&root.join("tests/upstream/vmar_cc_tests.txt"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, trees) = l.split_once(' ').expect("NAME TREES");
            (name.to_string(), trees.trim().to_string())
        })
        .collect();
    assert!(upstream.len() >= 58, "{} names", upstream.len());
    let doc = read(&root.join("docs/conformance.md"));
    let section = doc
        .split("## Zircon's VMAR core tests → our tests")
        .nth(1)
        .expect("the Zircon table section");
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut rows: BTreeMap<String, String> = BTreeMap::new();
    let mut problems = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_string();
        let trees = cells.get(1).copied().unwrap_or("").to_string();
        let status = cells.get(2).copied().unwrap_or("");
        let why = cells
            .get(3)
            .copied()
            .unwrap_or("")
            .trim_end_matches(" |")
            .trim();
        if !matches!(status, "ported" | "adapted" | "not applicable") || why.is_empty() {
            problems.push(format!("{name}: status {status:?}, text {why:?}"));
        }
        if rows.insert(name.clone(), trees).is_some() {
            problems.push(format!("{name}: listed twice"));
        }
    }
    for (name, trees) in &upstream {
        match rows.get(name) {
            None => problems.push(format!("{name}: in vmar.cc ({trees}) but not in the table")),
            Some(t) if t != trees => {
                problems.push(format!("{name}: trees {t} in the table, {trees} upstream"))
            }
            Some(_) => {}
        }
    }
    for name in rows.keys().filter(|n| !upstream.contains_key(*n)) {
        problems.push(format!("{name}: in the table but not a vmar.cc test"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
