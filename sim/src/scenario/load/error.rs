//! The error type, and where in the file an error is: field paths and syntax errors.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::lines::LineIndex;

/// A scenario file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The whole message: `file:line:column: field: problem` (the position and the field are
    /// left out when there is none, e.g. for a file that cannot be read).
    pub message: String,
    /// Line in the file, from 1; `None` only when the file cannot be read.
    pub line: Option<usize>,
    /// Column in the line, from 1, counted in characters.
    pub column: Option<usize>,
    /// Path of the offending field, e.g. `timeline[2].fault.cell`. For a syntax error it is the
    /// table and key of the broken line as far as they can be told; empty for errors about the
    /// whole file (a missing top-level field, a file that cannot be read).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl LoadError {
    pub(super) fn new(
        file: &Path,
        position: Option<(usize, usize)>,
        field: &str,
        problem: &str,
    ) -> Self {
        let mut message = file.display().to_string();
        if let Some((line, column)) = position {
            message.push_str(&format!(":{line}:{column}"));
        }
        message.push_str(": ");
        if !field.is_empty() {
            message.push_str(field);
            message.push_str(": ");
        }
        message.push_str(problem);
        LoadError {
            message,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            field: field.to_owned(),
            problem: problem.to_owned(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

pub(super) fn syntax_error(file: &Path, text: &str, error: &toml::de::Error) -> LoadError {
    let Some(span) = error.span() else {
        // No position (e.g. the nesting limit): the whole file.
        let problem = format!("TOML syntax: {}", one_line(error.message()));
        return LoadError::new(file, Some((1, 1)), "", &problem);
    };
    let (recovered, _) = DeTable::parse_recoverable(text);
    let mut field = path_at(&recovered, &span);
    if field.is_empty() {
        field = enclosing_field(text, span.start);
    }
    let pos = LineIndex::new(text).position(text, span.start);
    let problem = format!("TOML syntax: {}", one_line(error.message()));
    LoadError::new(file, Some(pos), &field, &problem)
}

/// For text that does not parse: the table the line of byte `offset` is in (from the last
/// `[header]` above it, with an index for `[[arrays]]`) and the bare key that starts the line.
fn enclosing_field(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[..line_start];
    // `[name]` or `[[name]]` with a bare dotted name (not a line of a multi-line array).
    let header = |line: &str| -> Option<(bool, String)> {
        let line = line.trim();
        let array = line.starts_with("[[");
        let inner = line.strip_prefix('[')?.trim_start_matches('[');
        let name: String = inner.split(']').next()?.chars().filter(|c| *c != ' ').collect();
        let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        (!name.is_empty() && name.chars().all(bare)).then_some((array, name))
    };
    let line = text[line_start..].lines().next().unwrap_or("");
    if let Some((_, name)) = header(line) {
        return name; // the header itself is broken
    }
    let mut table = String::new();
    if let Some((array, name)) = before.lines().rev().find_map(header) {
        table = name.clone();
        if array {
            let count =
                before.lines().filter_map(header).filter(|h| *h == (true, name.clone())).count();
            table = format!("{name}[{}]", count.saturating_sub(1));
        }
    }
    let key: String = match line.split_once('=') {
        Some((key, _)) => {
            let key = key.trim();
            let bare = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if bare { key.to_owned() } else { String::new() }
        }
        None => String::new(),
    };
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

pub(super) fn one_line(text: &str) -> String {
    text.trim().split('\n').map(str::trim).collect::<Vec<_>>().join("; ")
}

/// One step of a field path.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// `timeline[2].fault.cell` as steps. Keys are split at dots (quoted keys with dots in them are
/// then not found, and the position falls back to their parent).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(open) = rest.strip_prefix('[') {
            let Some(close) = open.find(']') else { break };
            if let Ok(index) = open[..close].parse() {
                out.push(Step::Index(index));
            }
            rest = &open[close + 1..];
        }
    }
    out
}

/// Where an item of the document is: its key (for table entries) and its value. Tables made by
/// a `[header]` have the header as their value span.
#[derive(Clone, Debug)]
pub(super) struct Loc {
    pub(super) key: Option<Range<usize>>,
    pub(super) value: Range<usize>,
}

/// The deepest item on `path` that exists in `doc`.
pub(super) fn find(doc: &Spanned<DeTable<'_>>, path: &str) -> Loc {
    let mut loc = Loc { key: None, value: 0..0 };
    // `None`: the root table.
    let mut current: Option<&DeValue<'_>> = None;
    for step in steps(path) {
        let table = match current {
            None => Some(doc.get_ref()),
            Some(value) => value.as_table(),
        };
        let next = match (step, table, current) {
            (Step::Key(key), Some(table), _) => {
                table.iter().find(|(k, _)| k.get_ref() == key).map(|(k, v)| (Some(k.span()), v))
            }
            (Step::Index(i), _, Some(DeValue::Array(array))) => array.get(i).map(|v| (None, v)),
            _ => None,
        };
        let Some((key, value)) = next else { break };
        loc = Loc { key, value: value.span() };
        current = Some(value.get_ref());
    }
    loc
}

/// The path of the most specific item whose key and value together cover `span`.
pub(super) fn path_at(doc: &Spanned<DeTable<'_>>, span: &Range<usize>) -> String {
    struct Search<'s> {
        span: &'s Range<usize>,
        width: usize,
        path: Option<String>,
    }
    impl Search<'_> {
        /// Keeps `path` if `area` holds all of the span (an empty span: its position) and is
        /// no wider than the best so far.
        fn consider(&mut self, path: &str, area: Range<usize>) {
            let span = self.span;
            let covers = area.start <= span.start
                && (span.end <= area.end && span.start < area.end
                    || span.is_empty() && span.start == area.start);
            let width = area.end - area.start;
            if covers && (self.path.is_none() || width <= self.width) {
                self.width = width;
                self.path = Some(path.to_owned());
            }
        }

        fn table(&mut self, table: &DeTable<'_>, prefix: &str) {
            for (k, v) in table.iter() {
                let path = if prefix.is_empty() {
                    k.get_ref().to_string()
                } else {
                    format!("{prefix}.{}", k.get_ref())
                };
                let (ks, vs) = (k.span(), v.span());
                self.consider(&path, ks.start.min(vs.start)..ks.end.max(vs.end));
                self.value(v.get_ref(), &path);
            }
        }

        fn value(&mut self, value: &DeValue<'_>, path: &str) {
            match value {
                DeValue::Table(table) => self.table(table, path),
                DeValue::Array(array) => {
                    for (i, v) in array.iter().enumerate() {
                        let path = format!("{path}[{i}]");
                        self.consider(&path, v.span());
                        self.value(v.get_ref(), &path);
                    }
                }
                _ => {}
            }
        }
    }
    let mut search = Search { span, width: usize::MAX, path: None };
    search.table(doc.get_ref(), "");
    search.path.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_steps() {
        assert_eq!(
            steps("timeline[2].fault.cell"),
            [Step::Key("timeline"), Step::Index(2), Step::Key("fault"), Step::Key("cell")]
        );
        assert_eq!(steps("a[1][x]"), [Step::Key("a"), Step::Index(1)]);
    }
}
