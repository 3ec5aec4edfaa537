//! The `use` cycle check: no two modules of a crate may depend on each other, directly or through
//! a longer chain.
//!
//! ## The rule
//!
//! The modules of a crate form a tree (from `mod name;` declarations, starting at `lib.rs` or
//! `main.rs`). A path written in a module (in a `use` declaration or in code: `crate::a::b`,
//! `super::x`, `self::y`, or a path through a child module) names an item of some module. Each
//! such reference counts between the two *siblings* under their closest common ancestor: a
//! reference from `crate::a::x` to `crate::b::y` is an edge `a -> b` among the top-level modules,
//! one from `crate::a::x` to `crate::a::z` is an edge `x -> z` among the children of `a`. A module
//! that refers to one of its ancestors, or an ancestor to one of its descendants, adds no edge:
//! a child using its parent's items is the parent's own implementation, split over files. A cycle
//! is a strongly connected set of siblings. A path that names an item re-exported by `pub use`
//! counts towards the module that defines it, so `crate::Config` in a child of `combiner` is an
//! edge to `config`, not to the crate root.
//!
//! Test code (`#[cfg(test)]` items and modules) is left out: a test may set its case up with
//! anything in its crate. The scanner is not a Rust parser; see [`scan`] for what it reads.

mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use scan::{FileScan, PathRef, scan};

/// The cycles `sim/src` has today, each as the sorted paths of its modules. The check fails
/// when a cycle appears that is not listed and when a listed one is gone, so that this list
/// shrinks as the cycles are broken. None since the two engines became one.
pub const KNOWN_SIM_CYCLES: &[&[&str]] = &[];

/// A module of the crate: its path from the crate root and the file that holds it.
#[derive(Debug)]
struct Module {
    path: Vec<String>,
    file: PathBuf,
    scan: FileScan,
}

/// The edges among the children of one module: (from, to) -> the references that make each.
type Edges = BTreeMap<(String, String), Vec<Evidence>>;

/// Where an edge between two siblings comes from: the file, line and path as written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Evidence {
    pub file: String,
    pub line: usize,
    pub path: String,
}

/// A set of sibling modules that depend on each other, with the references that connect them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The full paths of the modules in the cycle, sorted, e.g. `["engine", "system"]`.
    pub modules: Vec<String>,
    /// Each edge inside the cycle (`from`, `to`) with the references that make it.
    pub edges: Vec<(String, String, Vec<Evidence>)>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "use cycle between {}:", self.modules.join(", "))?;
        for (from, to, evidence) in &self.edges {
            writeln!(f, "  {from} -> {to}:")?;
            for shown in evidence.iter().take(3) {
                writeln!(f, "    {}:{}: {}", shown.file, shown.line, shown.path)?;
            }
            if evidence.len() > 3 {
                writeln!(f, "    ... and {} more", evidence.len() - 3)?;
            }
        }
        Ok(())
    }
}

/// Every cycle of the crates whose roots (`lib.rs`, `main.rs`) are in `src`, the library first.
/// `label` prefixes the file names in the evidence (e.g. `core/src`).
pub fn cycles_in(src: &Path, label: &str) -> Result<Vec<Cycle>, String> {
    let mut found = Vec::new();
    for root in ["lib.rs", "main.rs"] {
        let root = src.join(root);
        if root.exists() {
            let modules = module_tree(&root)?;
            found.extend(cycles_of(&modules, src, label));
        }
    }
    Ok(found)
}

/// Compares the cycles found with the ones expected, and describes every difference: a cycle
/// not expected (with its evidence) and an expected cycle that is gone.
pub fn unexpected(found: &[Cycle], expected: &[&[&str]]) -> Vec<String> {
    let mut problems = Vec::new();
    for cycle in found {
        if !expected.iter().any(|modules| *modules == cycle.modules.as_slice()) {
            problems.push(cycle.to_string());
        }
    }
    for modules in expected {
        if !found.iter().any(|cycle| cycle.modules.as_slice() == *modules) {
            problems.push(format!(
                "the known use cycle between {} is gone; remove it from the list of known cycles",
                modules.join(", ")
            ));
        }
    }
    problems
}

/// Reads the crate's module tree from its root file, following `mod name;` declarations.
fn module_tree(root: &Path) -> Result<Vec<Module>, String> {
    let mut modules = Vec::new();
    let mut pending = vec![(Vec::new(), root.to_path_buf())];
    while let Some((path, file)) = pending.pop() {
        let text = fs::read_to_string(&file).map_err(|err| format!("{}: {err}", file.display()))?;
        let scan = scan(&text);
        // The children of `lib.rs`, `main.rs` and `x/mod.rs` sit beside the file; those of
        // `x.rs` in the directory `x/`.
        let dir = match file.file_name().and_then(|name| name.to_str()) {
            Some("lib.rs" | "main.rs" | "mod.rs") => file.parent().map(Path::to_path_buf),
            _ => Some(file.with_extension("")),
        }
        .ok_or_else(|| format!("{}: no parent directory", file.display()))?;
        for (name, line) in &scan.modules {
            let flat = dir.join(format!("{name}.rs"));
            let nested = dir.join(name).join("mod.rs");
            let child = if flat.exists() {
                flat
            } else if nested.exists() {
                nested
            } else {
                return Err(format!("{}:{line}: no file for `mod {name};`", file.display()));
            };
            let mut child_path = path.clone();
            child_path.push(name.clone());
            pending.push((child_path, child));
        }
        modules.push(Module { path, file, scan });
    }
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(modules)
}

/// The cycles among siblings of a module tree.
fn cycles_of(modules: &[Module], src: &Path, label: &str) -> Vec<Cycle> {
    let known: BTreeSet<&[String]> = modules.iter().map(|module| module.path.as_slice()).collect();
    let exports = exports(modules, &known);
    // Edges per parent: (from child, to child) -> evidence.
    let mut edges: BTreeMap<Vec<String>, Edges> = BTreeMap::new();
    for module in modules {
        let file = display_file(&module.file, src, label);
        for path in &module.scan.paths {
            let Some(full) = absolute(&module.path, path, &known) else { continue };
            let full = follow_exports(full, &exports, &known);
            let target = longest_module(&full, &known);
            let common = module.path.iter().zip(target).take_while(|(from, to)| from == to).count();
            if common == module.path.len() || common == target.len() {
                continue;
            }
            let evidence =
                Evidence { file: file.clone(), line: path.line, path: path.segments.join("::") };
            edges
                .entry(module.path[..common].to_vec())
                .or_default()
                .entry((module.path[common].clone(), target[common].clone()))
                .or_default()
                .push(evidence);
        }
    }
    let mut cycles = Vec::new();
    for (parent, edges) in &edges {
        for component in strongly_connected(edges) {
            let full = |name: &String| {
                let mut path = parent.clone();
                path.push(name.clone());
                path.join("::")
            };
            let inside: Vec<(String, String, Vec<Evidence>)> = edges
                .iter()
                .filter(|((from, to), _)| component.contains(from) && component.contains(to))
                .map(|((from, to), evidence)| (full(from), full(to), evidence.clone()))
                .collect();
            cycles.push(Cycle { modules: component.iter().map(full).collect(), edges: inside });
        }
    }
    cycles
}

/// The file name shown in reports: `label` and the path below `src`, with `/` separators.
fn display_file(file: &Path, src: &Path, label: &str) -> String {
    let relative = file.strip_prefix(src).unwrap_or(file);
    let parts: Vec<String> =
        relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    format!("{label}/{}", parts.join("/"))
}

/// The path written in `module` as a full path from the crate root, or `None` when it does not
/// start in this crate (`core::fmt`, `heapless::Vec`, an enum's variants, a local item).
fn absolute(module: &[String], path: &PathRef, known: &BTreeSet<&[String]>) -> Option<Vec<String>> {
    let mut here: Vec<String> = module.to_vec();
    here.extend(path.inline.iter().cloned());
    let mut segments = path.segments.iter().peekable();
    let first = segments.peek()?.as_str();
    let mut base = match first {
        "crate" => {
            segments.next();
            Vec::new()
        }
        "self" => {
            segments.next();
            here
        }
        "super" => {
            while segments.peek().is_some_and(|segment| *segment == "super") {
                segments.next();
                here.pop()?;
            }
            here
        }
        _ => {
            let mut child = here.clone();
            child.push(first.to_owned());
            if !known.contains(child.as_slice()) {
                return None;
            }
            here
        }
    };
    base.extend(segments.cloned());
    Some(base)
}

/// The longest prefix of `path` that is a module of the crate.
fn longest_module<'a>(path: &'a [String], known: &BTreeSet<&[String]>) -> &'a [String] {
    (0..=path.len())
        .rev()
        .map(|len| &path[..len])
        .find(|prefix| known.contains(prefix))
        .unwrap_or(&[])
}

/// Every `pub use` of the crate: (module, exported name) -> the full path it stands for.
fn exports(
    modules: &[Module],
    known: &BTreeSet<&[String]>,
) -> BTreeMap<(Vec<String>, String), Vec<String>> {
    let mut exports = BTreeMap::new();
    for module in modules {
        for path in &module.scan.paths {
            let Some(name) = &path.exported_as else { continue };
            if let Some(full) = absolute(&module.path, path, known) {
                let mut at = module.path.clone();
                at.extend(path.inline.iter().cloned());
                exports.insert((at, name.clone()), full);
            }
        }
    }
    exports
}

/// Follows re-exports from `path` to the module that defines the item (a bounded number of
/// steps, so a re-export loop cannot hang the check).
fn follow_exports(
    mut path: Vec<String>,
    exports: &BTreeMap<(Vec<String>, String), Vec<String>>,
    known: &BTreeSet<&[String]>,
) -> Vec<String> {
    for _ in 0..16 {
        let module = longest_module(&path, known).to_vec();
        let Some(item) = path.get(module.len()) else { break };
        match exports.get(&(module.clone(), item.clone())) {
            Some(target) if *target != path[..=module.len()] => {
                let mut next = target.clone();
                next.extend(path[module.len() + 1..].iter().cloned());
                path = next;
            }
            _ => break,
        }
    }
    path
}

/// The strongly connected sets of two or more nodes, each sorted, in a stable order.
fn strongly_connected(edges: &Edges) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = edges.keys().flat_map(|(from, to)| [from, to]).collect();
    let reach = |start: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(node) = stack.pop() {
            for (from, to) in edges.keys() {
                if from == node && seen.insert(to) {
                    stack.push(to);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<&String>> =
        nodes.iter().map(|node| (*node, reach(node))).collect();
    let mut components: Vec<Vec<String>> = Vec::new();
    for node in &nodes {
        let component: Vec<String> = nodes
            .iter()
            .filter(|other| reaches[node].contains(*other) && reaches[*other].contains(*node))
            .map(|other| (*other).clone())
            .collect();
        if component.len() > 1 && !components.contains(&component) {
            components.push(component);
        }
    }
    components
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd;

    /// Writes a crate from (path, text) pairs into a fresh directory under the target dir.
    fn write_crate(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-cycles-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        for (path, text) in files {
            let file = dir.join(path);
            fs::create_dir_all(file.parent().unwrap()).unwrap();
            fs::write(file, text).unwrap();
        }
        dir
    }

    fn found(name: &str, files: &[(&str, &str)]) -> Vec<Cycle> {
        let dir = write_crate(name, files);
        let cycles = cycles_in(&dir, "src").unwrap();
        let _ = fs::remove_dir_all(&dir);
        cycles
    }

    #[test]
    fn siblings_that_import_each_other_are_a_cycle() {
        let cycles = found(
            "direct",
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
                ("a.rs", "use crate::b::B;\npub struct A;\n"),
                ("b.rs", "pub struct B;\nfn f() -> crate::a::A { todo!() }\n"),
                ("c.rs", "use crate::a::A;\n"),
            ],
        );
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].modules, ["a", "b"]);
        assert_eq!(
            cycles[0].to_string(),
            "use cycle between a, b:\n  a -> b:\n    src/a.rs:1: crate::b::B\n  \
             b -> a:\n    src/b.rs:2: crate::a::A\n"
        );
    }

    #[test]
    fn a_longer_chain_through_children_and_re_exports_is_a_cycle() {
        // x/deep.rs reaches y through the crate root's re-export; y reaches z; z reaches x.
        let cycles = found(
            "chain",
            &[
                ("lib.rs", "mod x;\nmod y;\nmod z;\npub use y::Y;\n"),
                ("x/mod.rs", "mod deep;\npub struct X;\n"),
                ("x/deep.rs", "use super::X;\nfn f(_: crate::Y) {}\n"),
                ("y.rs", "pub struct Y;\nuse crate::z;\n"),
                ("z.rs", "use super::x::X;\n"),
            ],
        );
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].modules, ["x", "y", "z"]);
        let from_x = &cycles[0].edges[0];
        assert_eq!((from_x.0.as_str(), from_x.1.as_str()), ("x", "y"));
        assert_eq!(
            from_x.2[0],
            Evidence { file: "src/x/deep.rs".into(), line: 2, path: "crate::Y".into() }
        );
    }

    #[test]
    fn parents_children_and_test_code_make_no_cycle() {
        let cycles = found(
            "fine",
            &[
                ("lib.rs", "pub mod p;\nmod q;\n"),
                (
                    "p.rs",
                    "mod one;\nmod two;\npub use one::One;\npub struct P;\nuse self::two::Two;\n",
                ),
                ("p/one.rs", "use super::P;\nuse super::two::Two;\npub struct One;\n"),
                (
                    "p/two.rs",
                    "use crate::q::Q;\npub struct Two;\n#[cfg(test)]\nmod t { use super::super::one::One; }\n",
                ),
                ("q.rs", "pub struct Q;\n#[cfg(test)]\nmod tests;\n"),
                ("q/tests.rs", "use crate::p::P;\n"),
            ],
        );
        assert_eq!(cycles, []);
    }

    #[test]
    fn a_missing_module_file_is_an_error() {
        let dir = write_crate("missing", &[("lib.rs", "mod gone;\n")]);
        let error = cycles_in(&dir, "src").unwrap_err();
        let _ = fs::remove_dir_all(&dir);
        assert!(error.ends_with("lib.rs:1: no file for `mod gone;`"), "{error}");
    }

    #[test]
    fn known_cycles_must_match_exactly() {
        let cycle = Cycle { modules: vec!["a".into(), "b".into()], edges: Vec::new() };
        assert_eq!(unexpected(std::slice::from_ref(&cycle), &[&["a", "b"]]), Vec::<String>::new());
        assert_eq!(unexpected(&[cycle], &[]), ["use cycle between a, b:\n"]);
        assert_eq!(
            unexpected(&[], &[&["a", "b"]]),
            ["the known use cycle between a, b is gone; remove it from the list of known cycles"]
        );
    }

    #[test]
    fn core_has_no_use_cycles() {
        let cycles = cycles_in(&cmd::root().join("core/src"), "core/src").unwrap();
        let report: Vec<String> = cycles.iter().map(ToString::to_string).collect();
        assert!(cycles.is_empty(), "{}", report.concat());
    }

    #[test]
    fn sim_has_no_use_cycles() {
        let cycles = cycles_in(&cmd::root().join("sim/src"), "sim/src").unwrap();
        let problems = unexpected(&cycles, KNOWN_SIM_CYCLES);
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}
