//! Load errors: the file could not be read, or its YAML does not match the package schema.

use std::path::PathBuf;

/// A 1-based line and column in the package file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SourcePos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl std::fmt::Display for SourcePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a package file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing or unreadable (dtexec exit code 4).
    #[error("cannot read package file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not fit the schema (exit code 5).
    #[error("{}{}: {message}", path.display(), pos.map(|p| format!(":{p}")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Where, when known.
        pos: Option<SourcePos>,
        /// What was wrong and what was expected.
        message: String,
        /// The source lines around the position, with a caret (may be empty).
        snippet: String,
    },
}

/// serde-saphyr renders `error: line N column M: what` and then a snippet; we
/// keep `what` as the message (the position is printed by us) and return the
/// snippet separately, naming our file instead of `<input>`.
pub(crate) fn split_report(full: &str, path: &std::path::Path) -> (String, String) {
    let mut lines = full.lines();
    let first = lines.next().unwrap_or(full).trim();
    let mut msg = first.strip_prefix("error: ").unwrap_or(first);
    if let Some(rest) = msg.strip_prefix("line ")
        && let Some(i) = rest.find(": ")
    {
        msg = &rest[i + 2..];
    }
    let raw = msg;
    let msg = match msg.find(", set DuplicateKeyPolicy") {
        Some(i) => &msg[..i],
        None => msg,
    };
    // The library's advice names its own API; say what it means for a package.
    let msg = if msg.starts_with("multiple YAML documents detected") {
        "a package file holds one YAML document, but a second one starts here (remove the `---` line and what follows, or split it into its own file)"
    } else {
        msg
    };
    // The caret line repeats the library's wording: show ours there too.
    let snippet: Vec<String> = lines
        .map(|l| {
            l.replace("<input>", &path.display().to_string())
                .replace(raw, msg)
        })
        .collect();
    (msg.to_string(), snippet.join("\n"))
}
