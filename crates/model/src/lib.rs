//! The package file as written: YAML text -> [`PackageDef`], with source locations.
//!
//! 1. [`load`] reads the file (a missing or unreadable file is [`LoadError::Io`]).
//! 2. serde-saphyr parses it into the `*Def` types; unknown keys, wrong types and
//!    duplicate keys are [`LoadError::Syntax`] with line and column.
//! 3. Nothing here checks meaning (names, graphs, expressions): that is `checkflow-plan`.

mod defs;
mod error;

pub use defs::*;
pub use error::{LoadError, SourcePos};
pub use serde_saphyr::Spanned;

use std::path::{Path, PathBuf};

/// A loaded package file: its definition, its path, and its text (for error snippets).
#[derive(Debug)]
pub struct LoadedPackage {
    /// The package as written.
    pub def: PackageDef,
    /// The file it came from, as given.
    pub path: PathBuf,
    /// The folder relative paths in the package resolve against.
    pub dir: PathBuf,
    /// The file's text.
    pub text: String,
}

/// Reads and parses a package file.
pub fn load(path: &Path) -> Result<LoadedPackage, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let def = parse(path, &text)?;
    // Absolute, so that relative paths in the package (and foreach file keys
    // recorded in checkpoints) do not depend on the caller's working directory.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    Ok(LoadedPackage {
        def,
        path: path.to_path_buf(),
        dir,
        text,
    })
}

/// Parses package text; `path` only names the file in errors.
///
/// A plain `null:` key (bulk_insert's null marker, SPEC §1.4) is YAML's null,
/// which serde cannot match to a field name. When the parser stops at such a
/// key, it is read as the string `"null"` and the text parsed again. (Within
/// that line, later positions then shift two columns; positions in the
/// parser's own errors are moved back.)
pub fn parse(path: &Path, text: &str) -> Result<PackageDef, LoadError> {
    let mut patched: Option<String> = None;
    // (line, column) of every key quoted so far.
    let mut quoted: Vec<(usize, usize)> = Vec::new();
    loop {
        let src = patched.as_deref().unwrap_or(text);
        let e = match serde_saphyr::from_str_with_options::<PackageDef>(src, options_for(src)) {
            Ok(def) => return Ok(def),
            Err(e) => e,
        };
        let pos = e.location().map(|l| SourcePos {
            line: l.line() as usize,
            column: l.column() as usize,
        });
        let report = e.to_string();
        if report.contains("cannot deserialize null into string")
            && let Some(p) = pos
            && quoted.len() < 1000
            && let Some(offset) = null_key_at(src, p)
        {
            let mut s = src.to_string();
            s.replace_range(offset..offset + 4, "\"null\"");
            quoted.push((p.line, p.column));
            patched = Some(s);
            continue;
        }
        let pos = pos.map(|mut p| {
            let shift = quoted
                .iter()
                .filter(|(l, c)| *l == p.line && *c < p.column)
                .count();
            p.column = p.column.saturating_sub(2 * shift).max(1);
            p
        });
        let (message, snippet) = error::split_report(&report, path);
        return Err(LoadError::Syntax {
            path: path.to_path_buf(),
            pos,
            message,
            snippet,
        });
    }
}

/// The byte offset of a plain `null` (or `Null`, `NULL`) mapping key at `pos`.
fn null_key_at(text: &str, pos: SourcePos) -> Option<usize> {
    let line_start = if pos.line <= 1 {
        0
    } else {
        text.match_indices('\n').nth(pos.line - 2)?.0 + 1
    };
    let line = &text[line_start..];
    let line = &line[..line.find('\n').unwrap_or(line.len())];
    let offset = line.char_indices().nth(pos.column.checked_sub(1)?)?.0;
    let word = line.get(offset..offset + 4)?;
    if !matches!(word, "null" | "Null" | "NULL") {
        return None;
    }
    let after = line[offset + 4..].trim_start_matches([' ', '\t']);
    let is_key = after.starts_with(':')
        && after[1..]
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ' ' | '\t' | '\r' | ',' | '}'));
    is_key.then_some(line_start + offset)
}

/// Parser limits that grow with the file: a large package (100,000 tasks is
/// about 7 nodes each) must load, while aliases, depth and documents keep the
/// library's defaults against billion-laughs style inputs.
fn options_for(text: &str) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// The position of a spanned value (1-based line and column).
pub fn pos_of<T>(s: &Spanned<T>) -> SourcePos {
    SourcePos {
        line: s.referenced.line() as usize,
        column: s.referenced.column() as usize,
    }
}

#[cfg(test)]
mod tests;
