//! The layers of `src/`, checked on every `cargo test` (ARCHITECTURE.md explains them).
//!
//! Each module may import only the layers below its own; nothing below `routes` may know
//! HTTP; and no set of files imports each other in a loop. The check reads the source as
//! text: every `use` item and every other path that starts at `crate::` or `super::`, up to
//! the file's `#[cfg(test)]` section.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From the top floor down; a module may import those on a lower floor.
const FLOORS: &[(&str, u8)] = &[
    ("main", 11),
    ("cli", 10),
    ("startup", 9),
    ("routes", 8),
    ("services", 7),
    ("state", 6),
    ("auth", 5),
    ("mail", 5),
    ("metrics", 5),
    ("db", 4),
    ("domain", 3),
    ("config", 2),
];

/// Layers that must not know HTTP exists.
const BELOW_THE_HTTP_LINE: &[&str] = &[
    "services", "state", "auth", "mail", "metrics", "db", "domain", "config",
];

/// Imports that run up a floor on purpose, each explained in ARCHITECTURE.md.
const ALLOWED_UPWARD: &[(&str, &str)] = &[];

fn floor(module: &str) -> Option<u8> {
    FLOORS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, floor)| *floor)
}

/// One source file: its module path (`["routes", "web", "errors"]`) and the module paths it
/// imports, resolved to the files that define them.
struct Source {
    module: Vec<String>,
    text: String,
}

fn sources() -> BTreeMap<PathBuf, Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(&root).unwrap().to_path_buf();
                let mut module: Vec<String> = relative
                    .with_extension("")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if module.last().is_some_and(|m| m == "mod" || m == "lib") {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let text = match text.find("#[cfg(test)]") {
                    Some(tests) => text[..tests].to_owned(),
                    None => text,
                };
                found.insert(relative, Source { module, text });
            }
        }
    }
    found
}

/// Drops comments, so that prose naming a module is not an import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(comment) => &line[..comment],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<String> {
    // Renames (`a as b`) keep their name apart; other whitespace goes.
    let words = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = words.replace(" as ", "#").replace(' ', "");
    let Some(open) = tree.find('{') else {
        return vec![tree];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| format!("{prefix}{e}")))
        .collect()
}

/// The crate-absolute module paths a file names.
fn imports(source: &Source) -> BTreeSet<Vec<String>> {
    let code = code_of(&source.text);
    let mut paths = BTreeSet::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(at) = statement.find("use ") else {
            continue;
        };
        let item = &statement[at + 4..];
        if !(item.starts_with("crate::") || item.starts_with("super::")) {
            continue;
        }
        for path in expand(item) {
            let path = path.split('#').next().unwrap_or(&path).to_owned();
            paths.insert(absolute(&source.module, &path));
        }
    }
    // Paths written inline, such as `crate::db::now()` or `super::users::find(…)`.
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let preceded = code[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':');
            if preceded {
                continue;
            }
            let path: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            paths.insert(absolute(&source.module, &path));
        }
    }
    paths
}

fn absolute(module: &[String], path: &str) -> Vec<String> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = Vec::new();
    if segments.first() == Some(&"crate") {
        segments.remove(0);
    } else {
        base = module.to_vec();
        while segments.first() == Some(&"super") {
            segments.remove(0);
            base.pop();
        }
    }
    base.extend(segments.iter().map(|s| (*s).to_owned()));
    base
}

/// The file that defines the longest prefix of `path`.
fn file_of(path: &[String], by_module: &BTreeMap<Vec<String>, PathBuf>) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|len| by_module.get(&path[..len]).cloned())
}

struct Findings {
    upward: Vec<String>,
    http: Vec<String>,
    circles: Vec<Vec<PathBuf>>,
}

fn examine() -> Findings {
    let sources = sources();
    let by_module: BTreeMap<Vec<String>, PathBuf> = sources
        .iter()
        .map(|(file, source)| (source.module.clone(), file.clone()))
        .collect();
    let mut findings = Findings {
        upward: Vec::new(),
        http: Vec::new(),
        circles: Vec::new(),
    };
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for (file, source) in &sources {
        let Some(own) = source.module.first() else {
            continue; // lib.rs: the module list
        };
        let own_floor = floor(own).unwrap_or_else(|| panic!("{own} is on no floor: add it"));
        if BELOW_THE_HTTP_LINE.contains(&own.as_str()) {
            let code = code_of(&source.text);
            for http in [
                "actix_web",
                "actix_session",
                "actix_rt",
                "HttpRequest",
                "HttpResponse",
            ] {
                if code.contains(http) {
                    findings
                        .http
                        .push(format!("{} names {http}", file.display()));
                }
            }
        }
        for path in imports(source) {
            let Some(target) = path.first() else { continue };
            if let Some(target_floor) = floor(target) {
                let allowed = ALLOWED_UPWARD.contains(&(own.as_str(), target.as_str()));
                if target != own && target_floor >= own_floor && !allowed {
                    findings.upward.push(format!(
                        "{} imports crate::{} ({own} may import only lower floors)",
                        file.display(),
                        path.join("::")
                    ));
                }
            }
            if let Some(target_file) = file_of(&path, &by_module) {
                if &target_file != file && !target_file.ends_with("lib.rs") {
                    edges.entry(file.clone()).or_default().insert(target_file);
                }
            }
        }
    }
    findings.circles = circles(&edges);
    findings
}

/// Strongly connected sets of two or more files (Tarjan's algorithm).
fn circles(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Vec<Vec<PathBuf>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<&'a PathBuf, usize>,
        low: BTreeMap<&'a PathBuf, usize>,
        stack: Vec<&'a PathBuf>,
        on_stack: BTreeSet<&'a PathBuf>,
        found: Vec<Vec<PathBuf>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a PathBuf) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.edges.get(node).into_iter().flatten() {
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut circle = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    circle.push(member.clone());
                    if member == node {
                        break;
                    }
                }
                if circle.len() > 1 {
                    self.found.push(circle);
                }
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in edges.keys() {
        if !walk.index.contains_key(node) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn every_module_imports_only_the_floors_below_it() {
    let upward = examine().upward;
    assert!(
        upward.is_empty(),
        "imports that run up:\n{}",
        upward.join("\n")
    );
}

#[test]
fn nothing_below_routes_knows_http() {
    let http = examine().http;
    assert!(http.is_empty(), "HTTP below the line:\n{}", http.join("\n"));
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let circles = examine().circles;
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn the_reader_sees_grouped_and_relative_imports() {
    assert_eq!(
        expand("crate::{db::{self, users}, domain::User}"),
        ["crate::db::self", "crate::db::users", "crate::domain::User"]
    );
    assert_eq!(
        expand("super::{now, users as queries}"),
        ["super::now", "super::users#queries"]
    );
    let module = ["routes".to_owned(), "web".to_owned(), "page".to_owned()];
    assert_eq!(
        absolute(&module, "super::errors::PageError"),
        ["routes", "web", "errors", "PageError"]
    );
    assert_eq!(
        absolute(&module, "crate::state::AppState"),
        ["state", "AppState"]
    );
}
