//! Reading one Rust file: a tokenizer that drops comments and literals, and a scanner that picks
//! out the module declarations, the `use` trees and the paths in code that may name another
//! module of the crate.
//!
//! This is not a Rust parser. It knows just enough syntax to find paths: comments, string, raw
//! string and character literals (so that a path in a string is not a dependency), attributes
//! (so that code under `#[cfg(test)]` is left out), braces (so that inline modules are known) and
//! use trees. Test code is left out because a unit test may reach anywhere in its crate to set up
//! a case; the layering that matters is the one the shipped code has.

/// One token: an identifier (keywords included), `::`, or any other single character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    Ident(String),
    PathSep,
    Punct(char),
}

/// Splits `text` into tokens with their 1-based line numbers.
pub fn tokens(text: &str) -> Vec<(Token, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i = skip_block_comment(&chars, i, &mut line);
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line);
        } else if let Some(end) = raw_string_start(&chars, i) {
            i = skip_raw_string(&chars, end, &mut line);
        } else if c == 'b' && next == Some('"') {
            i = skip_string(&chars, i + 2, &mut line);
        } else if c == 'b' && next == Some('\'') {
            i = skip_char(&chars, i + 1);
        } else if c == '\'' {
            i = skip_char(&chars, i);
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Token::Ident(chars[start..i].iter().collect()), line));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            out.push((Token::PathSep, line));
            i += 2;
        } else {
            out.push((Token::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn skip_block_comment(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    // Block comments nest in Rust.
    let mut depth = 0;
    while i < chars.len() {
        if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
            depth += 1;
            i += 2;
        } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            *line += usize::from(chars[i] == '\n');
            i += 1;
        }
    }
    i
}

/// Skips a string body starting after its opening quote; returns the index after the closing one.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

/// When a raw string (`r"`, `r#"`, `br#"`) starts at `i`: the index of its opening quote.
fn raw_string_start(chars: &[char], i: usize) -> Option<usize> {
    let previous_is_word = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
    if previous_is_word {
        return None;
    }
    let mut j = i;
    if chars[j] == 'b' {
        j += 1;
    }
    if chars.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    (chars.get(j) == Some(&'"')).then_some(j)
}

fn skip_raw_string(chars: &[char], quote: usize, line: &mut usize) -> usize {
    let hashes = chars[..quote].iter().rev().take_while(|c| **c == '#').count();
    let mut i = quote + 1;
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..].iter().take(hashes).filter(|c| **c == '#').count() == hashes
        {
            return i + 1 + hashes;
        }
        *line += usize::from(chars[i] == '\n');
        i += 1;
    }
    i
}

/// Skips a character literal, or just the quote of a lifetime (`'a`), starting at the quote.
fn skip_char(chars: &[char], i: usize) -> usize {
    if chars.get(i + 1) == Some(&'\\') {
        let mut j = i + 2;
        while j < chars.len() && chars[j] != '\'' && chars[j] != '\n' {
            j += 1;
        }
        j + 1
    } else if chars.get(i + 2) == Some(&'\'') {
        i + 3
    } else {
        i + 1
    }
}

/// A path that may name an item of another module, as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    /// The segments as written, e.g. `["super", "config", "ChargeConfig"]`.
    pub segments: Vec<String>,
    /// The inline modules (`mod name { ... }`) around the path, innermost last.
    pub inline: Vec<String>,
    pub line: usize,
    /// For a `use` leaf with a visibility (`pub use`, `pub(crate) use`): the name it exports.
    pub exported_as: Option<String>,
    /// From a `use` declaration (else a path in code).
    pub in_use: bool,
}

/// What one file declares and refers to.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FileScan {
    /// `mod name;` declarations outside test code, each with its line.
    pub modules: Vec<(String, usize)>,
    pub paths: Vec<PathRef>,
}

/// Scans a file's text; code under `#[cfg(test)]` is skipped.
pub fn scan(text: &str) -> FileScan {
    let tokens = tokens(text);
    let mut out = FileScan::default();
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut visibility = false;
    let mut i = 0;
    while i < tokens.len() {
        let (token, line) = (&tokens[i].0, tokens[i].1);
        match token {
            Token::Punct('#') => {
                let (end, is_test) = attribute(&tokens, i);
                i = if is_test { skip_item(&tokens, end) } else { end };
                continue;
            }
            Token::Punct('{') => depth += 1,
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, open)| *open == depth) {
                    inline.pop();
                }
            }
            Token::Ident(word) if word == "pub" => {
                visibility = true;
                i += 1;
                if tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('(')) {
                    i = skip_group(&tokens, i);
                }
                continue;
            }
            Token::Ident(word) if word == "mod" => {
                if let Some((Token::Ident(name), _)) = tokens.get(i + 1) {
                    match tokens.get(i + 2) {
                        Some((Token::Punct(';'), _)) if inline.is_empty() => {
                            out.modules.push((name.clone(), line));
                        }
                        Some((Token::Punct('{'), _)) => {
                            inline.push((name.clone(), depth));
                            depth += 1;
                            i += 3;
                            visibility = false;
                            continue;
                        }
                        _ => {}
                    }
                }
            }
            Token::Ident(word) if word == "use" => {
                let names: Vec<String> = inline.iter().map(|(name, _)| name.clone()).collect();
                i = use_tree(&tokens, i + 1, &mut Vec::new(), visibility, &names, &mut out.paths);
                visibility = false;
                continue;
            }
            Token::Ident(first) => {
                let starts_path = tokens.get(i + 1).is_some_and(|(t, _)| *t == Token::PathSep);
                let follows_sep = i > 0 && tokens[i - 1].0 == Token::PathSep;
                if starts_path && !follows_sep {
                    let mut segments = vec![first.clone()];
                    let mut j = i + 1;
                    while let (Some((Token::PathSep, _)), Some((Token::Ident(next), _))) =
                        (tokens.get(j), tokens.get(j + 1))
                    {
                        segments.push(next.clone());
                        j += 2;
                    }
                    out.paths.push(PathRef {
                        segments,
                        inline: inline.iter().map(|(name, _)| name.clone()).collect(),
                        line,
                        exported_as: None,
                        in_use: false,
                    });
                    i = j;
                    visibility = false;
                    continue;
                }
            }
            _ => {}
        }
        visibility = false;
        i += 1;
    }
    out
}

/// Reads the attribute starting at the `#` at `i`: the index after it and whether it is exactly
/// `#[cfg(test)]`.
fn attribute(tokens: &[(Token, usize)], mut i: usize) -> (usize, bool) {
    i += 1;
    if tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('!')) {
        i += 1;
    }
    if !tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('[')) {
        return (i, false);
    }
    let end = skip_group(tokens, i);
    let inner: Vec<&Token> = tokens[i + 1..end.saturating_sub(1)].iter().map(|(t, _)| t).collect();
    let is_test = matches!(
        inner.as_slice(),
        [Token::Ident(cfg), Token::Punct('('), Token::Ident(test), Token::Punct(')')]
            if cfg == "cfg" && test == "test"
    );
    (end, is_test)
}

/// Skips the item that starts at `i` (its further attributes included): up to a `;` outside any
/// bracket, or to the `}` that closes its body.
fn skip_item(tokens: &[(Token, usize)], mut i: usize) -> usize {
    while tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('#')) {
        i = attribute(tokens, i).0;
    }
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].0 {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Token::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            Token::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Skips a bracketed group starting at its opening bracket; returns the index after its close.
fn skip_group(tokens: &[(Token, usize)], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].0 {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Reads one use tree from `i` under `prefix`, pushing a path for each leaf; returns the index
/// after the tree (after the `;` at the top level).
fn use_tree(
    tokens: &[(Token, usize)],
    mut i: usize,
    prefix: &mut Vec<String>,
    exported: bool,
    inline: &[String],
    out: &mut Vec<PathRef>,
) -> usize {
    let depth_at_start = prefix.len();
    let mut segments: Vec<String> = Vec::new();
    let mut line = tokens.get(i).map_or(0, |(_, line)| *line);
    loop {
        match tokens.get(i) {
            Some((Token::PathSep, _)) => i += 1,
            Some((Token::Ident(word), at)) if word != "as" => {
                if segments.is_empty() {
                    line = *at;
                }
                segments.push(word.clone());
                i += 1;
            }
            Some((Token::Punct('{'), _)) => {
                prefix.append(&mut segments);
                i += 1;
                loop {
                    i = use_tree(tokens, i, prefix, exported, inline, out);
                    match tokens.get(i) {
                        Some((Token::Punct(','), _)) => i += 1,
                        Some((Token::Punct('}'), _)) => {
                            i += 1;
                            break;
                        }
                        _ => break,
                    }
                    if tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('}')) {
                        i += 1;
                        break;
                    }
                }
                prefix.truncate(depth_at_start);
                break;
            }
            _ => break,
        }
    }
    let mut alias = None;
    if let Some((Token::Ident(word), _)) = tokens.get(i)
        && word == "as"
    {
        if let Some((Token::Ident(name), _)) = tokens.get(i + 1) {
            alias = Some(name.clone());
        }
        i += 2;
    }
    let glob = tokens.get(i).is_some_and(|(t, _)| *t == Token::Punct('*'));
    if glob {
        i += 1;
    }
    if !segments.is_empty() || glob {
        let mut full = prefix.clone();
        full.extend(segments);
        // `a::{self}` names `a` itself.
        if full.last().is_some_and(|last| last == "self") && full.len() > 1 {
            full.pop();
        }
        let name = if glob { None } else { alias.or_else(|| full.last().cloned()) };
        if !full.is_empty() {
            out.push(PathRef {
                segments: full,
                inline: inline.to_vec(),
                line,
                exported_as: name.filter(|_| exported),
                in_use: true,
            });
        }
    }
    prefix.truncate(depth_at_start);
    if depth_at_start == 0 {
        // The top level: skip to the end of the declaration.
        while i < tokens.len() && tokens[i].0 != Token::Punct(';') {
            i += 1;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(scan: &FileScan) -> Vec<String> {
        scan.paths
            .iter()
            .map(|path| format!("{}@{}", path.segments.join("::"), path.line))
            .collect()
    }

    #[test]
    fn comments_and_literals_hide_paths() {
        let text = "// crate::a::X\n/* crate::b /* nested */ crate::c */\nlet s = \"crate::d\";\n\
                    let r = r#\"crate::e\"#; let c = '\"'; let l: &'static str = x;\ncrate::f::g();\n";
        assert_eq!(segments(&scan(text)), ["crate::f::g@5"]);
    }

    #[test]
    fn use_trees_are_split_into_leaves() {
        let text = "use crate::{a::{self, X}, b::Y as Z};\npub use super::c::*;\nuse core::fmt;\n";
        let scan = scan(text);
        assert_eq!(
            segments(&scan),
            ["crate::a@1", "crate::a::X@1", "crate::b::Y@1", "super::c@2", "core::fmt@3"]
        );
        let exported: Vec<Option<&str>> =
            scan.paths.iter().map(|path| path.exported_as.as_deref()).collect();
        assert_eq!(exported, [None, None, None, None, None]);
        let scan = super::scan("pub(crate) use self::x::{A, B as C};\n");
        let exported: Vec<Option<&str>> =
            scan.paths.iter().map(|path| path.exported_as.as_deref()).collect();
        assert_eq!(exported, [Some("A"), Some("C")]);
    }

    #[test]
    fn test_code_and_inline_modules() {
        let text = "mod a;\npub mod b;\n#[cfg(test)]\nmod tests;\n#[cfg(test)]\nfn helper() { crate::x::y(); }\n\
                    pub mod id { pub const A: u8 = super::B; }\nfn f() { crate::z::w(); }\n";
        let scan = scan(text);
        assert_eq!(scan.modules, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
        assert_eq!(segments(&scan), ["super::B@7", "crate::z::w@8"]);
        assert_eq!(scan.paths[0].inline, ["id"]);
        assert!(scan.paths[1].inline.is_empty());
    }
}
