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
pub fn parse(path: &Path, text: &str) -> Result<PackageDef, LoadError> {
    serde_saphyr::from_str_with_options::<PackageDef>(text, options_for(text)).map_err(|e| {
        let pos = e.location().map(|l| SourcePos {
            line: l.line() as usize,
            column: l.column() as usize,
        });
        let (message, snippet) = error::split_report(&e.to_string(), path);
        LoadError::Syntax {
            path: path.to_path_buf(),
            pos,
            message,
            snippet,
        }
    })
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
