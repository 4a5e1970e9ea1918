//! Validation diagnostics: each problem with its file, line and column.

use checkflow_model::SourcePos;
use std::path::PathBuf;

/// One problem found by validation.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Where, when known.
    pub pos: Option<SourcePos>,
    /// What is wrong (may span lines, e.g. an expression with a caret).
    pub message: String,
}

/// Every problem validation found (exit code 5).
#[derive(Debug, thiserror::Error)]
#[error("{}", render(path, diagnostics))]
pub struct ValidationError {
    /// The package file.
    pub path: PathBuf,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(path: &std::path::Path, diags: &[Diagnostic]) -> String {
    let mut out = format!(
        "package {} is not valid ({} problem{}):",
        path.display(),
        diags.len(),
        if diags.len() == 1 { "" } else { "s" }
    );
    for d in diags {
        out.push_str("\n  ");
        out.push_str(&path.display().to_string());
        if let Some(p) = d.pos {
            out.push_str(&format!(":{}:{}", p.line, p.column));
        }
        out.push_str(": ");
        // Indent continuation lines (expression carets) under the message.
        out.push_str(&d.message.replace('\n', "\n      "));
    }
    out
}
