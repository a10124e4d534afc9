//! Every relative link in README.md, CHANGELOG.md and docs/*.md resolves: the file
//! exists, and an `#anchor` names a heading of that file (GitHub's anchor rules).
//! docs/incoming/ holds notes waiting to be merged and is not checked. External
//! links are not fetched.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// GitHub's anchor for a heading: lower case, punctuation dropped (but `-` and `_`),
/// spaces to `-`; repeats get `-1`, `-2`, ….
fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for heading in prose_lines(markdown).filter_map(|line| {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        (1..=6).contains(&hashes).then(|| line[hashes..].trim())
    }) {
        let heading = heading.replace('`', "");
        let base: String = heading
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// Lines outside fenced code blocks.
fn prose_lines(markdown: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    markdown.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// `(text, target)` of every inline link `[text](target)` outside code.
fn links(markdown: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in prose_lines(markdown) {
        // Inline code spans may hold brackets that are no link.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

/// What is wrong with the relative links of `file`.
fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    let mut broken = Vec::new();
    for target in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap_or(Path::new(".")).join(path)
        };
        if !resolved.exists() {
            broken.push(format!(
                "{}: {target} (no {})",
                file.display(),
                resolved.display()
            ));
            continue;
        }
        if let Some(anchor) = anchor {
            let heading_text = std::fs::read_to_string(&resolved).unwrap_or_default();
            if !anchors(&heading_text).contains(anchor) {
                broken.push(format!(
                    "{}: {target} (no heading #{anchor} in {})",
                    file.display(),
                    resolved.display()
                ));
            }
        }
    }
    broken
}

fn checked_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    let docs = root().join("docs");
    for entry in std::fs::read_dir(&docs).unwrap_or_else(|e| panic!("cannot list docs/: {e}")) {
        let path = entry.expect("docs/ entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let files = checked_files();
    assert!(
        files.len() >= 6,
        "expected README, CHANGELOG and docs/*.md: {files:?}"
    );
    let broken: Vec<String> = files.iter().flat_map(|f| broken_links(f)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_finds_a_missing_file_and_a_missing_anchor() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("doc_links");
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let file = dir.join("page.md");
    std::fs::write(
        &file,
        "# Page\n\n## What a `start` does\n\n[ok](#what-a-start-does) [ok](page.md#page) \
         [gone](missing.md) [bad](#no-such-heading) `[code](not-a-link.md)`\n\
         ```\n[fenced](fenced.md)\n```\n",
    )
    .expect("write page");
    let broken = broken_links(&file);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(
        broken[0].contains("missing.md") && broken[1].contains("#no-such-heading"),
        "{broken:?}"
    );
}

#[test]
fn the_readme_stays_short() {
    let lines = std::fs::read_to_string(root().join("README.md"))
        .expect("README.md")
        .lines()
        .count();
    assert!(
        lines <= 160,
        "README.md has {lines} lines; move reference material to docs/"
    );
}
