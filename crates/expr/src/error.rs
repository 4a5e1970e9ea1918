//! `ExprError`: every way parsing, type checking or evaluating an expression can fail.

use std::fmt;

/// Where in the expression a problem is: the source text and a byte range in it.
///
/// Its `Display` is the offending line of the expression with a caret line under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snippet {
    /// The whole expression as written.
    pub source: String,
    /// Byte offset where the problem starts.
    pub start: usize,
    /// Byte offset just past the problem (`start` for a point).
    pub end: usize,
}

impl Snippet {
    /// A snippet of `source` covering `start..end`.
    pub fn new(source: &str, start: usize, end: usize) -> Snippet {
        let start = start.min(source.len());
        Snippet {
            source: source.to_string(),
            start,
            end: end.clamp(start, source.len()),
        }
    }

    /// 1-based line and column (in characters) of the start.
    pub fn line_col(&self) -> (usize, usize) {
        let before = &self.source[..floor_char(&self.source, self.start)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

/// Largest char boundary of `s` at or before `i`.
fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = floor_char(&self.source, self.start);
        let end = floor_char(&self.source, self.end.max(start));
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let line = &self.source[line_start..line_end];
        // Tabs are shown as spaces so that the caret stays under the right character.
        let shown: String = line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let pad = self.source[line_start..start].chars().count();
        let width = self.source[start..end.min(line_end).max(start)]
            .chars()
            .count()
            .max(1);
        let (line_no, col) = self.line_col();
        write!(
            f,
            "  --> line {line_no}, column {col}\n  | {shown}\n  | {}{}",
            " ".repeat(pad),
            "^".repeat(width)
        )
    }
}

/// Any failure of the expression language. `Display` is a complete message for a user.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExprError {
    /// The text is not a well-formed expression.
    #[error("syntax error: {message}\n{snippet}")]
    Syntax { message: String, snippet: Snippet },
    /// The expression is well formed but its types do not fit.
    #[error("type error: {message}\n{snippet}")]
    Type { message: String, snippet: Snippet },
    /// A variable that the scope does not know.
    #[error("unknown variable \"{name}\"\n{snippet}")]
    UnknownVariable { name: String, snippet: Snippet },
    /// A function name that does not exist.
    #[error("unknown function \"{name}\"\n{snippet}")]
    UnknownFunction { name: String, snippet: Snippet },
    /// An assignment to a variable that may not be written.
    #[error("cannot assign to read-only variable \"{name}\"\n{snippet}")]
    ReadOnly { name: String, snippet: Snippet },
    /// An assignment where none is allowed, or an `=` that is not at the top.
    #[error("{message}\n{snippet}")]
    Assignment { message: String, snippet: Snippet },
    /// The expression nests deeper than the evaluator allows.
    #[error("expression nested too deeply (more than {limit} levels)")]
    TooDeep { limit: usize },
    /// A failure while computing a value: division by zero, overflow, a bad argument.
    #[error("{message}{}", snippet.as_ref().map(|s| format!("\n{s}")).unwrap_or_default())]
    Eval {
        message: String,
        snippet: Option<Snippet>,
    },
    /// A value that cannot be converted to the requested type.
    #[error("cannot convert {value} to {to}: {reason}")]
    Conversion {
        value: String,
        to: String,
        reason: String,
    },
    /// JSON that does not hold a value of the expected type.
    #[error("invalid json value {json} for {ty}: {reason}")]
    Json {
        json: String,
        ty: String,
        reason: String,
    },
}

impl ExprError {
    /// A run-time error with a message and no position.
    pub(crate) fn eval(message: impl Into<String>) -> ExprError {
        ExprError::Eval {
            message: message.into(),
            snippet: None,
        }
    }

    /// Attaches a position to an evaluation error that has none (used when constant folding
    /// finds the error at compile time).
    pub(crate) fn with_snippet(self, snippet: Snippet) -> ExprError {
        match self {
            ExprError::Eval {
                message,
                snippet: None,
            } => ExprError::Eval {
                message,
                snippet: Some(snippet),
            },
            ExprError::Conversion { value, to, reason } => ExprError::Eval {
                message: format!("cannot convert {value} to {to}: {reason}"),
                snippet: Some(snippet),
            },
            other => other,
        }
    }

    /// The position the error points at, if any.
    pub fn snippet(&self) -> Option<&Snippet> {
        match self {
            ExprError::Syntax { snippet, .. }
            | ExprError::Type { snippet, .. }
            | ExprError::UnknownVariable { snippet, .. }
            | ExprError::UnknownFunction { snippet, .. }
            | ExprError::ReadOnly { snippet, .. }
            | ExprError::Assignment { snippet, .. } => Some(snippet),
            ExprError::Eval { snippet, .. } => snippet.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_puts_caret_under_offending_position() {
        let s = Snippet::new("1 + * 2", 4, 5);
        assert_eq!(
            s.to_string(),
            "  --> line 1, column 5\n  | 1 + * 2\n  |     ^"
        );
    }

    #[test]
    fn snippet_on_second_line() {
        let s = Snippet::new("1 +\n  @x", 6, 8);
        assert_eq!(s.line_col(), (2, 3));
        assert!(s.to_string().ends_with("  |   @x\n  |   ^^"));
    }

    #[test]
    fn snippet_past_end_points_after_text() {
        let s = Snippet::new("(1", 2, 2);
        assert!(s.to_string().ends_with("  | (1\n  |   ^"));
    }
}
