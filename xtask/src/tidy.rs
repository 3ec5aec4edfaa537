//! `cargo xtask tidy`: repository rules that neither rustc nor clippy can check.
//!
//! The checks are plain functions over file text, so the tests below run them on strings. Only
//! code is checked for the core rules: text after `//` is a comment and may name what it likes.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use crate::cmd::{self, Result};
use crate::cycles;

/// Core and io files longer than this must be split (style rule 10).
const CORE_FILE_LINES_MAX: usize = 800;
/// The transports' manifest: they serve the simulator, the daemon and the bench alike, so they
/// must not depend on the simulator.
const IO_MANIFEST: &str = "io/Cargo.toml";
/// A limit on directory nesting, so a symlink loop or a runaway tree fails instead of hanging.
const DEPTH_MAX: usize = 32;
/// The test attribute we reject; built with `concat!` so this file does not trip its own check.
const IGNORE_ATTR: &str = concat!("#[", "ignore");
const README_TEST_COMMAND: &str = "cargo xtask ci";
const README_MAIN_COMMAND: &str = "cargo xtask sim";

/// Checks every rule, prints each violation as `path:line: message` and fails if there are any.
pub fn tidy() -> Result {
    let root = cmd::root();
    let mut violations = Vec::new();

    for path in files(&root, &root)? {
        let name = relative(&root, &path);
        let is_rust = name.ends_with(".rs");
        if is_rust {
            let text = read(&path)?;
            check_no_ignore(&name, &text, &mut violations);
            if name.starts_with("core/src/") {
                check_core_source(&name, &text, &mut violations);
            }
            if name.starts_with("io/") {
                check_file_length(&name, &text, &mut violations);
            }
        }
        if name.starts_with("scenarios/") {
            check_scenario_name(&name, &mut violations);
        }
    }

    let io_manifest = root.join(IO_MANIFEST);
    if io_manifest.exists() {
        check_io_manifest(&read(&io_manifest)?, &mut violations);
    }

    let readme_path = root.join("README.md");
    let readme = if readme_path.exists() { Some(read(&readme_path)?) } else { None };
    check_readme(readme.as_deref(), &mut violations);
    check_use_cycles(&root, &mut violations)?;

    for violation in &violations {
        println!("{violation}");
    }
    match violations.len() {
        0 => {
            eprintln!("tidy: ok");
            Ok(())
        }
        1 => Err("tidy found 1 violation".to_owned()),
        count => Err(format!("tidy found {count} violations")),
    }
}

/// A broken rule, located by a path relative to the repository root and a 1-based line.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    path: String,
    line: Option<usize>,
    message: String,
}

impl Violation {
    fn new(path: &str, line: Option<usize>, message: impl Into<String>) -> Violation {
        Violation { path: path.to_owned(), line, message: message.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Core rules: no floats, no `unsafe`, no `std::` paths in code, and a bound on file length.
/// A file's unit tests (everything from a line `#[cfg(test)]` on; tests come last in every
/// file) run only on the host: they may use floats and `std` to check integer code against a
/// reference formula, but never `unsafe`.
fn check_core_source(path: &str, text: &str, out: &mut Vec<Violation>) {
    let mut line_count = 0;
    let mut in_tests = false;
    for (index, line) in text.lines().enumerate() {
        line_count = index + 1;
        in_tests |= line.trim() == "#[cfg(test)]";
        let code = strip_comment(line);
        let mut float = None;
        let mut unsafe_seen = false;
        let mut std_seen = false;
        for (start, word) in words(code) {
            if float.is_none() {
                float = float_type(word);
            }
            unsafe_seen |= word == "unsafe";
            std_seen |= word == "std" && code[start + word.len()..].starts_with("::");
        }
        let line_number = Some(index + 1);
        if in_tests {
            float = None;
            std_seen = false;
        }
        if let Some(float) = float {
            out.push(Violation::new(
                path,
                line_number,
                format!("`{float}` in core; use integer units (core has no floats)"),
            ));
        }
        if unsafe_seen {
            out.push(Violation::new(path, line_number, "`unsafe` in core"));
        }
        if std_seen {
            out.push(Violation::new(
                path,
                line_number,
                "`std::` path in core; core is no_std, use `core::`",
            ));
        }
    }
    if line_count > CORE_FILE_LINES_MAX {
        out.push(Violation::new(
            path,
            Some(CORE_FILE_LINES_MAX + 1),
            format!("{line_count} lines, more than {CORE_FILE_LINES_MAX}; split the file"),
        ));
    }
}

/// io's files stay below the same length as core's.
fn check_file_length(path: &str, text: &str, out: &mut Vec<Violation>) {
    let line_count = text.lines().count();
    if line_count > CORE_FILE_LINES_MAX {
        out.push(Violation::new(
            path,
            Some(CORE_FILE_LINES_MAX + 1),
            format!("{line_count} lines, more than {CORE_FILE_LINES_MAX}; split the file"),
        ));
    }
}

/// `cellwarden-io` never depends on `cellwarden-sim`, under any table (normal, dev, build or
/// target-specific) and by name or by path. Text after `#` is a TOML comment and may name it.
fn check_io_manifest(text: &str, out: &mut Vec<Violation>) {
    for (index, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        if code.contains("cellwarden-sim") || code.contains("../sim") {
            out.push(Violation::new(
                IO_MANIFEST,
                Some(index + 1),
                "cellwarden-io depends on the simulator; the transports depend on core only",
            ));
        }
    }
}

/// No `use` cycle between the modules of core; in sim exactly the known ones (see
/// [`cycles::KNOWN_SIM_CYCLES`]), so a new cycle fails and a broken one must be struck off.
fn check_use_cycles(root: &Path, out: &mut Vec<Violation>) -> Result {
    for (src, expected) in [("core/src", &[][..]), ("sim/src", cycles::KNOWN_SIM_CYCLES)] {
        let found = cycles::cycles_in(&root.join(src), src)?;
        for problem in cycles::unexpected(&found, expected) {
            out.push(Violation::new(src, None, problem.trim_end()));
        }
    }
    Ok(())
}

/// No test may be switched off: fix it or delete it.
fn check_no_ignore(path: &str, text: &str, out: &mut Vec<Violation>) {
    for (index, line) in text.lines().enumerate() {
        let found = line.match_indices(IGNORE_ATTR).any(|(start, _)| {
            let after = line[start + IGNORE_ATTR.len()..].chars().next();
            !after.is_some_and(is_word_char)
        });
        if found {
            out.push(Violation::new(
                path,
                Some(index + 1),
                format!("`{IGNORE_ATTR}]` test; fix the test or delete it"),
            ));
        }
    }
}

/// The README names the test command on a line of its own (`.ci/run` runs the first such line)
/// and the main command (a scenario run).
fn check_readme(readme: Option<&str>, out: &mut Vec<Violation>) {
    let Some(readme) = readme else {
        out.push(Violation::new(
            "README.md",
            None,
            format!("README.md missing; it must name `{README_TEST_COMMAND}` and `{README_MAIN_COMMAND}`"),
        ));
        return;
    };
    let has_test_line = readme.lines().any(|line| {
        line.trim_start()
            .strip_prefix(README_TEST_COMMAND)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    });
    if !has_test_line {
        out.push(Violation::new(
            "README.md",
            None,
            format!("no line starts with the test command `{README_TEST_COMMAND}`"),
        ));
    }
    if !readme.contains(README_MAIN_COMMAND) {
        out.push(Violation::new(
            "README.md",
            None,
            format!("the main command `{README_MAIN_COMMAND}` is missing"),
        ));
    }
}

/// Scenario files are TOML; beside them live only their README and, in `scenarios/data/`, the
/// CSV profiles they import and candump logs (`*.candump`) for `cellwarden-sim can-decode`.
fn check_scenario_name(path: &str, out: &mut Vec<Violation>) {
    let Some(rest) = path.strip_prefix("scenarios/") else { return };
    let allowed = match rest.strip_prefix("data/") {
        Some(data) => !data.contains('/') && (data.ends_with(".csv") || data.ends_with(".candump")),
        None => !rest.contains('/') && (rest.ends_with(".toml") || rest == "README.md"),
    };
    if !allowed {
        out.push(Violation::new(
            path,
            None,
            "scenarios/ holds *.toml, README.md, data/*.csv and data/*.candump only",
        ));
    }
}

/// The line without its `//` comment. A `//` inside a string literal also cuts the line; that
/// only hides code from the check, and is rare enough to accept for a simple checker.
fn strip_comment(line: &str) -> &str {
    match line.find("//") {
        Some(start) => &line[..start],
        None => line,
    }
}

/// The words (identifiers, keywords, number literals) of `code` with their byte offsets.
fn words(code: &str) -> Vec<(usize, &str)> {
    let mut words = Vec::new();
    let mut word_start = None;
    for (index, c) in code.char_indices() {
        match (word_start, is_word_char(c)) {
            (None, true) => word_start = Some(index),
            (Some(start), false) => {
                words.push((start, &code[start..index]));
                word_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = word_start {
        words.push((start, &code[start..]));
    }
    words
}

/// `Some("f32")` or `Some("f64")` when `word` is that type or a number literal with that suffix.
fn float_type(word: &str) -> Option<&'static str> {
    let is_number = word.starts_with(|c: char| c.is_ascii_digit());
    // A hexadecimal literal such as 0x1f32 can end in "f32" without being a float.
    let is_hex = word.starts_with("0x") || word.starts_with("0X");
    ["f32", "f64"].into_iter().find(|float| {
        word == *float || (is_number && !is_hex && word.len() > 3 && word.ends_with(float))
    })
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every file below `dir`, sorted, skipping build output and git's own directory.
fn files(root: &Path, dir: &Path) -> std::result::Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    collect(root, dir, 0, &mut found)?;
    found.sort();
    Ok(found)
}

fn collect(
    root: &Path,
    dir: &Path,
    depth: usize,
    found: &mut Vec<PathBuf>,
) -> std::result::Result<(), String> {
    if depth > DEPTH_MAX {
        return Err(format!("{}: nested deeper than {DEPTH_MAX} directories", relative(root, dir)));
    }
    let entries = fs::read_dir(dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("{}: {err}", dir.display()))?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|err| format!("{}: {err}", path.display()))?;
        if file_type.is_dir() {
            let name = entry.file_name();
            if name != "target" && name != ".git" {
                collect(root, &path, depth + 1, found)?;
            }
        } else if file_type.is_file() {
            found.push(path);
        }
    }
    Ok(())
}

fn read(path: &Path) -> std::result::Result<String, String> {
    fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))
}

/// `path` relative to `root`, with `/` separators on every platform.
fn relative(root: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> =
        relative.components().map(|part| part.as_os_str().to_string_lossy().into_owned()).collect();
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core_violations(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_core_source("core/src/x.rs", text, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    fn io_manifest_violations(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_io_manifest(text, &mut out);
        out.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn io_manifest_without_the_simulator_passes() {
        let text = "[package]\nname = \"cellwarden-io\"\n# never cellwarden-sim\n\
                    [dependencies]\ncellwarden-core = { path = \"../core\" }\n";
        assert_eq!(io_manifest_violations(text), Vec::<String>::new());
    }

    #[test]
    fn io_manifest_naming_the_simulator_is_found() {
        let text = "[dependencies]\ncellwarden-core = { path = \"../core\" }\n\
                    [dev-dependencies.cellwarden-sim]\nsim = { path = \"../sim\" }\n";
        let message = "cellwarden-io depends on the simulator; the transports depend on core only";
        assert_eq!(
            io_manifest_violations(text),
            [format!("io/Cargo.toml:3: {message}"), format!("io/Cargo.toml:4: {message}")]
        );
    }

    #[test]
    fn io_long_files_are_found() {
        let mut out = Vec::new();
        check_file_length("io/src/x.rs", &"x\n".repeat(800), &mut out);
        assert!(out.is_empty());
        check_file_length("io/src/x.rs", &"x\n".repeat(801), &mut out);
        let found: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(found, ["io/src/x.rs:801: 801 lines, more than 800; split the file"]);
    }

    #[test]
    fn core_clean_code_passes() {
        let text = "#![forbid(unsafe_code)]\nuse core::fmt;\nlet cell_mv: u16 = 0x1f32;\n\
                    let unsafe_count = 3; let stdout = 1; let half = f32_like;\n";
        assert_eq!(core_violations(text), Vec::<String>::new());
    }

    #[test]
    fn core_comments_may_name_anything() {
        let text = "/// No f32 here, no unsafe, no std::vec.\nlet a = 1; // f64 unsafe std::x\n";
        assert_eq!(core_violations(text), Vec::<String>::new());
    }

    #[test]
    fn core_unit_tests_may_use_floats_and_std_but_not_unsafe() {
        let text =
            "let a = 1;\n#[cfg(test)]\nmod tests {\nlet b = 2.5f64; use std::f64;\nunsafe {}\n}\n";
        assert_eq!(core_violations(text), ["core/src/x.rs:5: `unsafe` in core"]);
    }

    #[test]
    fn core_floats_are_found() {
        assert_eq!(
            core_violations("let a: f32 = 1.0;\nlet b = 2.5f64;\nlet c = 1e3f32;\n"),
            [
                "core/src/x.rs:1: `f32` in core; use integer units (core has no floats)",
                "core/src/x.rs:2: `f64` in core; use integer units (core has no floats)",
                "core/src/x.rs:3: `f32` in core; use integer units (core has no floats)",
            ]
        );
    }

    #[test]
    fn core_unsafe_and_std_are_found() {
        assert_eq!(
            core_violations("unsafe { x() }\nuse std::vec::Vec;\nlet v = ::std::mem::swap;\n"),
            [
                "core/src/x.rs:1: `unsafe` in core",
                "core/src/x.rs:2: `std::` path in core; core is no_std, use `core::`",
                "core/src/x.rs:3: `std::` path in core; core is no_std, use `core::`",
            ]
        );
    }

    #[test]
    fn core_long_files_are_found() {
        let short = "let a = 1;\n".repeat(CORE_FILE_LINES_MAX);
        assert_eq!(core_violations(&short), Vec::<String>::new());
        let long = "let a = 1;\n".repeat(CORE_FILE_LINES_MAX + 1);
        assert_eq!(
            core_violations(&long),
            ["core/src/x.rs:801: 801 lines, more than 800; split the file"]
        );
    }

    #[test]
    fn ignored_tests_are_found() {
        let attr = format!("{IGNORE_ATTR}]");
        let with_reason = format!("{IGNORE_ATTR} = \"slow\"]");
        let text = format!("#[test]\n{attr}\nfn a() {{}}\n{with_reason}\n#[test]\n");
        let mut out = Vec::new();
        check_no_ignore("xtask/src/a.rs", &text, &mut out);
        let lines: Vec<Option<usize>> = out.iter().map(|violation| violation.line).collect();
        assert_eq!(lines, [Some(2), Some(4)]);

        // Attributes that merely start with the same letters are fine.
        out.clear();
        check_no_ignore("a.rs", &format!("{IGNORE_ATTR}_me]\n"), &mut out);
        assert_eq!(out, []);
    }

    #[test]
    fn readme_needs_both_commands() {
        let mut out = Vec::new();
        check_readme(None, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].to_string().starts_with("README.md: README.md missing"));

        out.clear();
        check_readme(Some("```sh\ncargo xtask ci\ncargo xtask sim over_voltage\n```\n"), &mut out);
        assert_eq!(out, []);

        // The test command must start a line, so `.ci/run` finds it; prose does not count.
        out.clear();
        check_readme(Some("Run `cargo xtask ci`.\n  cargo xtask cilantro\n"), &mut out);
        let messages: Vec<&str> = out.iter().map(|violation| violation.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "no line starts with the test command `cargo xtask ci`",
                "the main command `cargo xtask sim` is missing",
            ]
        );
    }

    #[test]
    fn scenario_files_are_toml() {
        let mut out = Vec::new();
        for fine in [
            "scenarios/precharge.toml",
            "scenarios/README.md",
            "scenarios/data/home.csv",
            "scenarios/data/stack.candump",
        ] {
            check_scenario_name(fine, &mut out);
        }
        assert_eq!(out, []);
        for bad in ["scenarios/notes.md", "scenarios/data/x.toml", "scenarios/a/b.toml"] {
            check_scenario_name(bad, &mut out);
        }
        let paths: Vec<&str> = out.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["scenarios/notes.md", "scenarios/data/x.toml", "scenarios/a/b.toml"]);
    }

    /// `cargo test` alone catches what `cargo xtask tidy` does.
    #[test]
    fn repository_is_tidy() {
        assert_eq!(tidy(), Ok(()));
    }

    #[test]
    fn words_split_code() {
        assert_eq!(
            words("a1 + std::x(1.0f32)"),
            [(0, "a1"), (5, "std"), (10, "x"), (12, "1"), (14, "0f32")]
        );
    }
}
