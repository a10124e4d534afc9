//! xtask's modules import each other in one direction only: `deps`, `dist` and
//! `image` once formed an import cycle of 8 files; [`crate::packages`] now holds
//! what they share. This test reads every source file and fails on any cycle
//! between top-level modules (a `crate::<module>` path in another module's files).
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules its files name through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap_or(&file);
        let first = relative
            .components()
            .next()
            .map(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_string()
            })
            .unwrap_or_default();
        if first == "main" {
            continue; // the crate root declares every module; nothing names it back
        }
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let entry = graph.entry(first.clone()).or_default();
        for (index, _) in text.match_indices("crate::") {
            let name: String = text[index + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != first {
                entry.insert(name);
            }
        }
    }
    graph
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot list {}", dir.display());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// A cycle through `module`, if any (depth-first, the path so far in `stack`).
fn cycle_from(
    module: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    stack: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(start) = stack.iter().position(|m| m == module) {
        let mut cycle = stack[start..].to_vec();
        cycle.push(module.to_string());
        return Some(cycle);
    }
    stack.push(module.to_string());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(cycle) = cycle_from(next, graph, stack) {
            return Some(cycle);
        }
    }
    stack.pop();
    None
}

#[test]
fn module_graph_has_no_cycle() {
    let graph = imports();
    for module in ["deps", "dist", "image", "packages", "release"] {
        assert!(
            graph.contains_key(module),
            "no module {module} in {graph:?}"
        );
    }
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(module, &graph, &mut Vec::new()) {
            panic!(
                "xtask modules import each other in a cycle: {}",
                cycle.join(" → ")
            );
        }
    }
    assert!(
        graph["packages"].is_empty(),
        "packages imports {:?}; it must stay the leaf every build module shares",
        graph["packages"]
    );
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("deps", vec!["dist"]),
        ("dist", vec!["image"]),
        ("image", vec!["deps"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_string(), to.into_iter().map(String::from).collect()))
    .collect();
    assert!(cycle_from("deps", &graph, &mut Vec::new()).is_some());
}
