//! Load errors: the file could not be read, or its YAML does not match the package schema.

use serde_saphyr::budget::BudgetBreach;
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
/// snippet separately, naming our file instead of `<input>`, its ` -->` line
/// giving `at` (the library counts columns in the part of a long line it
/// shows), and its caret line our wording. `explain` may say a message the
/// package's way (it gets the library's).
pub(crate) fn split_report(
    full: &str,
    path: &std::path::Path,
    at: Option<SourcePos>,
    explain: impl FnOnce(&str) -> Option<String>,
) -> (String, String) {
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
    // An unknown field: name the likely one meant, not every field there is
    // (a task lists all the task types' fields, about sixty).
    let (msg, caret) = match unknown_field(msg) {
        Some((m, short)) => (m, short),
        None => {
            let m = explain(msg).unwrap_or_else(|| msg.to_string());
            (m.clone(), m)
        }
    };
    // A package without an id: say how to make one (the caret line keeps
    // the short form).
    let msg = if caret == "missing field `id`" {
        format!(
            "{caret}: a package needs a UUID of its own, which its checkpoint remembers; add `id: {}` (generated now), or start a new package with `checkflow new NAME`",
            crate::new_uuid()
        )
    } else {
        msg
    };
    let file = path.display().to_string();
    let arrow = format!(" --> {file}:");
    // The caret line repeats the library's wording: show ours there too.
    let snippet: Vec<String> = lines
        .map(|l| {
            let l = l.replace("<input>", &file);
            match at {
                Some(p) if l.starts_with(&arrow) => format!("{arrow}{p}"),
                _ => l.replace(raw, &caret),
            }
        })
        .collect();
    (msg, snippet.join("\n"))
}

/// A parser limit the error reports the file went past, in words with the
/// limit that holds (the library reports a budget as its type's debug form,
/// and alias replays in its field names); `None` for any other error.
pub(crate) fn limit_words(mut e: &serde_saphyr::Error, b: &serde_saphyr::Budget) -> Option<String> {
    use serde_saphyr::Error as E;
    loop {
        match e {
            E::WithSnippet { error, .. } | E::AliasError { error, .. } => e = error,
            E::Budget { breach, .. } => return Some(budget_words(breach, b)),
            E::AliasReplayLimitExceeded {
                max_total_replayed_events,
                ..
            } => {
                return Some(format!(
                    "the YAML's aliases expand to more than {max_total_replayed_events} parser events in all ({BOMB})"
                ));
            }
            E::AliasExpansionLimitExceeded {
                max_expansions_per_anchor,
                ..
            } => {
                return Some(format!(
                    "the YAML uses one anchor more than {max_expansions_per_anchor} times ({BOMB})"
                ));
            }
            E::AliasReplayStackDepthExceeded { max_depth, .. } => {
                return Some(format!(
                    "the YAML's aliases nest deeper than {max_depth} levels ({BOMB})"
                ));
            }
            E::AliasReplayCounterOverflow { .. } => {
                return Some(format!(
                    "the YAML's aliases expand to more parser events than can be counted ({BOMB})"
                ));
            }
            _ => return None,
        }
    }
}

const BOMB: &str = "a limit against alias bombs";

/// A budget limit the file went past, in words.
fn budget_words(breach: &BudgetBreach, b: &serde_saphyr::Budget) -> String {
    match breach {
        BudgetBreach::Depth { .. } => {
            format!("the YAML nests deeper than {} levels", b.max_depth)
        }
        BudgetBreach::Aliases { .. } => format!(
            "the YAML uses more than {} aliases (`*name`), {BOMB}",
            b.max_aliases
        ),
        BudgetBreach::Anchors { .. } => format!(
            "the YAML defines more than {} anchors (`&name`)",
            b.max_anchors
        ),
        BudgetBreach::AliasAnchorRatio { aliases, anchors } => format!(
            "the YAML uses {aliases} aliases for {anchors} anchors, more than {} per anchor ({BOMB})",
            b.alias_anchor_ratio_multiplier
        ),
        BudgetBreach::RecordedAnchorEvents { .. } => format!(
            "the YAML's aliases expand to more than {} parser events in all ({BOMB})",
            b.max_recorded_anchor_events
        ),
        BudgetBreach::RecordedAnchorBytes { .. } => format!(
            "the YAML's aliases expand to more than {} bytes of text in all ({BOMB})",
            b.max_recorded_anchor_bytes
        ),
        BudgetBreach::MergeKeys { .. } => format!(
            "the YAML uses more than {} merge keys (`<<`)",
            b.max_merge_keys
        ),
        BudgetBreach::Events { .. } => format!(
            "the YAML is too large: more than {} parser events, aliases expanded",
            b.max_events
        ),
        BudgetBreach::Nodes { .. } => format!(
            "the YAML is too large: more than {} values, lists and maps",
            b.max_nodes
        ),
        BudgetBreach::ScalarBytes { .. } => format!(
            "the YAML's values add up to more than {} bytes",
            b.max_total_scalar_bytes
        ),
        BudgetBreach::Documents { .. } => format!(
            "the file holds more than {} YAML documents",
            b.max_documents
        ),
        BudgetBreach::InputBytes { .. } => match b.max_reader_input_bytes {
            Some(max) => format!("the file is larger than {max} bytes"),
            None => "the file is too large".to_string(),
        },
        BudgetBreach::InclusionDepth { .. } => format!(
            "the YAML includes files more than {} deep",
            b.max_inclusion_depth
        ),
        BudgetBreach::SequenceUnbalanced => {
            "the YAML closes a list or a map it never opened".to_string()
        }
        BudgetBreach::PropertyExpansionDepth { max_depth, .. } => {
            format!("the YAML's properties expand deeper than {max_depth} levels")
        }
        BudgetBreach::PropertyInterpolationWork { max_work, .. } => {
            format!("the YAML's property interpolation takes more than {max_work} steps")
        }
        // A limit added by a later version of the parser.
        other => format!("the YAML goes past a parser limit ({other:?})"),
    }
}

/// "unknown field `comand`, expected one of name, type, ..." becomes, for
/// the message, "unknown field `comand` (did you mean `command`?)" when one
/// field is close, else the field and the list; and for the caret line the
/// short form alone.
fn unknown_field(msg: &str) -> Option<(String, String)> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let list = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))?;
    let names: Vec<&str> = list
        .split(", ")
        .flat_map(|n| n.split(" or "))
        .map(|n| n.trim().trim_matches('`'))
        .filter(|n| !n.is_empty())
        .collect();
    let short = format!("unknown field `{field}`");
    Some(match closest(field, names.iter().copied()) {
        Some(n) => (format!("{short} (did you mean `{n}`?)"), short),
        None => (
            format!("{short}; expected one of {}", names.join(", ")),
            short,
        ),
    })
}

/// The name in `names` closest to `word`, if one is close enough to be what
/// was meant (a typo or two, more for long names): for "did you mean" hints.
pub fn closest<'a>(word: &str, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    names
        .into_iter()
        .map(|n| (edit_distance(word, n), n))
        .min()
        .filter(|(d, n)| *d <= 2.max(n.len() / 4) && *d < n.len())
        .map(|(_, n)| n)
}

/// Levenshtein distance, case-insensitive (names are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{edit_distance, unknown_field};

    #[test]
    fn an_unknown_field_names_the_close_one() {
        let (m, short) =
            unknown_field("unknown field `comand`, expected one of name, type, command, program")
                .expect("recognised");
        assert_eq!(m, "unknown field `comand` (did you mean `command`?)");
        assert_eq!(short, "unknown field `comand`");
        let (m, _) =
            unknown_field("unknown field `zzz`, expected `file` or `usage`").expect("recognised");
        assert_eq!(m, "unknown field `zzz`; expected one of file, usage");
        assert!(unknown_field("invalid i64").is_none());
        assert_eq!(edit_distance("Retries", "retries"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
