//! The simulator's top-level modules form no `use` cycle: each can be understood (and moved to a
//! crate of its own) with only the modules below it. A module that reached into one that
//! reaches back (the engine and the system engine did) fails here, naming the cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("readable").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `text` names through `crate::`, other than `own`.
fn references(text: &str, own: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (start, _) in text.match_indices("crate::") {
        // `cellwarden_sim::crate::` cannot occur; `$crate::` is a macro path, not ours.
        if text[..start].ends_with('$') {
            continue;
        }
        let rest = &text[start + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        if name != own && modules.contains(&name) {
            found.insert(name);
        }
    }
    found
}

/// The module graph of `src`: each top-level module (a file or a directory) and the ones it
/// uses.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("sim/src") {
        let path = entry.expect("entry").path();
        let stem = path.file_stem().expect("a name").to_string_lossy().into_owned();
        if path.is_dir() || (path.extension().is_some_and(|x| x == "rs") && stem != "lib") {
            modules.insert(stem);
        }
    }
    modules.remove("main");
    let mut graph = BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        }
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
        let mut uses = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("readable");
            uses.extend(references(&text, module, &modules));
        }
        graph.insert(module.clone(), uses);
    }
    graph
}

/// A cycle through the graph, if there is one, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(found) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(found);
        }
    }
    None
}

#[test]
fn no_use_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.contains_key("engine") && graph.contains_key("plant"), "{graph:?}");
    if let Some(found) = cycle(&graph) {
        panic!("a use cycle between sim's top-level modules: {}", found.join(" -> "));
    }
}

/// The checker finds a cycle when there is one (the engine and the system engine used each
/// other before they became one).
#[test]
fn the_checker_finds_a_cycle() {
    let modules: BTreeSet<String> = ["engine", "system", "plant"].map(String::from).into();
    let engine =
        references("use crate::system::run;\nuse crate::plant::Plant;", "engine", &modules);
    let system = references("use crate::engine::watch;", "system", &modules);
    let plant = references("use $crate::engine;", "plant", &modules);
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("engine".into(), engine), ("system".into(), system), ("plant".into(), plant)].into();
    assert_eq!(cycle(&graph), Some(["engine", "system", "engine"].map(String::from).to_vec()));
    let mut acyclic = graph.clone();
    acyclic.insert("system".into(), BTreeSet::new());
    assert_eq!(cycle(&acyclic), None);
}
