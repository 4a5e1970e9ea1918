//! The package file as written: YAML text -> [`PackageDef`], with source locations.
//!
//! 1. [`load`] reads the file (a missing or unreadable file is [`LoadError::Io`]).
//! 2. serde-saphyr parses it into the `*Def` types; unknown keys, wrong types and
//!    duplicate keys are [`LoadError::Syntax`] with line and column.
//! 3. Nothing here checks meaning (names, graphs, expressions): that is `checkflow-plan`.

pub mod cache;
mod defs;
mod error;
mod node;
mod redact;
mod spanned;
mod wire;

pub use defs::*;
pub use error::{LoadError, SourcePos, closest};
pub use node::Node;
pub use redact::redact_url;
pub use spanned::{Location, Spanned};

use std::path::{Path, PathBuf};

/// A new random UUID (version 4), for a package's `id` or a run's: 16 bytes
/// from the operating system's random source, mixed with the clock.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for (i, x) in t.to_le_bytes().iter().enumerate() {
        b[i] ^= x;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

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

/// Keeps parsed packages by their text, so that an unchanged file is not
/// parsed again (`checkflow-cli`'s package cache; [`cache`] is the codec).
pub trait ParsedStore {
    /// The package parsed from exactly this text, if it is kept. `head` is
    /// called with the package-level fields (`tasks` still empty) as soon as
    /// they are known, before the tasks are decoded.
    fn get(&self, text: &str, head: &mut dyn FnMut(&PackageDef)) -> Option<PackageDef>;
    /// Keeps the package parsed from this text (it is given back unchanged).
    fn put(&self, text: &str, def: &mut PackageDef);
}

/// Reads and parses a package file.
pub fn load(path: &Path) -> Result<LoadedPackage, LoadError> {
    load_with(path, None, &mut |_, _| {})
}

/// Reads a package file; parses it unless `store` has it already (and then
/// keeps what was parsed there). `early` gets the package-level fields and
/// the package's folder as soon as they are known (with a store hit, before
/// its tasks are decoded; otherwise once the file is parsed).
pub fn load_with(
    path: &Path,
    store: Option<&dyn ParsedStore>,
    early: &mut dyn FnMut(&PackageDef, &Path),
) -> Result<LoadedPackage, LoadError> {
    // A link to the package is fine; a FIFO, a device or a folder is refused
    // at once instead of blocking the run (or reading forever).
    let text = checkflow_files::read_to_string(path, checkflow_files::Links::Follow).map_err(
        |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        },
    )?;
    // Absolute, so that relative paths in the package (and foreach file keys
    // recorded in checkpoints) do not depend on the caller's working directory.
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let kept = store.and_then(|s| s.get(&text, &mut |head| early(head, &dir)));
    let def = match kept {
        Some(def) => def,
        None => {
            let mut def = parse(path, &text)?;
            // What depends on the package-level fields (reading the checkpoint
            // ahead) need not wait for the cache entry to be written.
            early(&def, &dir);
            if let Some(s) = store {
                s.put(&text, &mut def);
            }
            def
        }
    };
    Ok(LoadedPackage {
        def,
        path: path.to_path_buf(),
        dir,
        text,
    })
}

/// Parses package text; `path` only names the file in errors.
///
/// A plain `null:` key (bulk_insert's null marker, docs/semantics.md §1.4) is YAML's null,
/// which serde cannot match to a field name. When the parser stops at one,
/// every plain null key in the file is found with one pass of the YAML
/// parser, written as the string `"null"`, and the text parsed once more.
/// (Within such a line, later positions then shift; positions in the
/// parser's own errors are moved back.)
pub fn parse(path: &Path, text: &str) -> Result<PackageDef, LoadError> {
    let e = match serde_saphyr::from_str_with_options::<PackageDef>(text, options_for(text)) {
        Ok(def) => return Ok(strings_as_written(def, text)),
        Err(e) => e,
    };
    let report = e.to_string();
    if report.contains("cannot deserialize null into string") {
        let keys = null_keys(text);
        if !keys.is_empty() {
            let mut patched = text.to_string();
            for k in keys.iter().rev() {
                patched.replace_range(k.bytes.clone(), "\"null\"");
            }
            return serde_saphyr::from_str_with_options::<PackageDef>(
                &patched,
                options_for(&patched),
            )
            .map(|def| strings_as_written(def, &patched))
            .map_err(|e| syntax_error(path, &patched, &e, &keys));
        }
    }
    Err(syntax_error(path, text, &e, &[]))
}

/// A `string` variable whose `value` YAML read as a number gets the number's
/// text as written: `1.10` stays "1.10" (not "1.1"), `0x1F` stays "0x1F"
/// (not "31"), `1e3` stays "1e3". So does a `decimal` one, whose digits would
/// otherwise pass through a binary float (`0.1234567890123456789`).
/// (Booleans and leading zeros are kept by [`yaml_options`].)
fn strings_as_written(mut def: PackageDef, text: &str) -> PackageDef {
    for var in def.variables.values_mut() {
        let var = &mut var.value;
        let ty = &var.ty.value;
        if !ty.eq_ignore_ascii_case("string") && !ty.eq_ignore_ascii_case("decimal") {
            continue;
        }
        let Some(v) = var.value.as_mut() else {
            continue;
        };
        if !v.value.is_number() {
            continue;
        }
        if let Some(raw) = plain_scalar_at(text, v.referenced.line(), v.referenced.column()) {
            v.value = serde_json::Value::String(raw.to_string());
        }
    }
    def
}

/// The plain scalar that starts at 1-based `line` and `column` (in
/// characters), if one that reads as a number does: up to the end of the
/// line, a comment, or the end of a flow collection's entry.
fn plain_scalar_at(text: &str, line: u32, column: u32) -> Option<&str> {
    let raw = word_at(text, line as usize, column as usize)?.1;
    let first = raw.chars().next()?;
    (first.is_ascii_digit() || matches!(first, '+' | '-' | '.')).then_some(raw)
}

/// The line before 1-based `line` and `column`, and the plain word that
/// starts there (up to a space, a comment, or the end of a flow entry).
fn word_at(text: &str, line: usize, column: usize) -> Option<(&str, &str)> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let start = l
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map(|(i, _)| i)?;
    let rest = &l[start..];
    let end = rest
        .find([',', '}', ']', '#', ' ', '\t'])
        .unwrap_or(rest.len());
    Some((&l[..start], &rest[..end]))
}

/// The parser's "invalid i64" for `retries: x`, said for a package:
/// "`retries`: expected a whole number, found `x`".
fn explain_scalar_error(message: &str, text: &str, pos: Option<SourcePos>) -> Option<String> {
    let ty = message.strip_prefix("invalid ")?;
    let ty = ty
        .strip_suffix(" (strict mode expects true/false)")
        .unwrap_or(ty);
    let expected = match ty {
        "bool" | "boolean" => "expected a boolean (true or false)",
        "i8" | "i16" | "i32" | "i64" | "i128" => "expected a whole number",
        "u8" | "u16" | "u32" | "u64" | "u128" => "expected a whole number, 0 or more",
        "f32" | "f64" => "expected a number",
        _ => return None,
    };
    let pos = pos?;
    let (before, found) = word_at(text, pos.line, pos.column)?;
    // The key this value belongs to: the word before the last `:` on the line.
    let key = before.trim_end().strip_suffix(':').map(|k| {
        k.trim_end()
            .rsplit(|c: char| c.is_whitespace() || matches!(c, '{' | ',' | '-'))
            .next()
            .unwrap_or("")
    });
    let found = if found.is_empty() {
        String::new()
    } else {
        format!(", found `{found}`")
    };
    Some(match key.filter(|k| !k.is_empty()) {
        Some(k) => format!("`{k}`: {expected}{found}"),
        None => format!("{expected}{found}"),
    })
}

/// A plain mapping key that YAML reads as null, where it is in the text.
struct NullKey {
    bytes: std::ops::Range<usize>,
    line: usize,
    /// 1-based.
    column: usize,
}

impl NullKey {
    /// How many characters quoting it adds.
    fn growth(&self) -> usize {
        "\"null\"".len() - self.bytes.len()
    }
}

/// Every plain scalar in a mapping key position that YAML's core schema
/// reads as null (`null`, `Null`, `NULL`, `~`), in file order. Empty if the
/// text does not parse (the error then comes from the first parse).
fn null_keys(text: &str) -> Vec<NullKey> {
    use granit_parser::{Event, Parser, ScalarStyle};
    // For each open collection: is it a mapping, and is its next node a key?
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut out = Vec::new();
    // A node ended: in a mapping, keys and values alternate.
    fn node_done(stack: &mut [(bool, bool)]) {
        if let Some((true, key_next)) = stack.last_mut() {
            *key_next = !*key_next;
        }
    }
    for ev in Parser::new_from_str(text) {
        let Ok((ev, span)) = ev else {
            return Vec::new();
        };
        match ev {
            Event::MappingStart(..) => stack.push((true, true)),
            Event::SequenceStart(..) => stack.push((false, false)),
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                node_done(&mut stack);
            }
            Event::Scalar(value, style, _, tag) => {
                let is_key = matches!(stack.last(), Some((true, true)));
                if is_key
                    && style == ScalarStyle::Plain
                    && tag.is_none()
                    && matches!(value.as_ref(), "null" | "Null" | "NULL" | "~")
                    && let Some(start) = span.start.byte_offset()
                    && text.get(start..start + value.len()) == Some(value.as_ref())
                {
                    out.push(NullKey {
                        bytes: start..start + value.len(),
                        line: span.start.line(),
                        column: span.start.col() + 1,
                    });
                }
                node_done(&mut stack);
            }
            Event::Alias(_) => node_done(&mut stack),
            _ => {}
        }
    }
    out
}

/// A parse error as a [`LoadError`], with its column moved back past keys
/// that were quoted on its line.
fn syntax_error(path: &Path, text: &str, e: &serde_saphyr::Error, quoted: &[NullKey]) -> LoadError {
    // Where the error is in the text that was parsed (`text`)...
    let raw_pos = e.location().map(|l| SourcePos {
        line: l.line() as usize,
        column: l.column() as usize,
    });
    // ...and in the file: each key quoted before it on its line grew.
    let pos = raw_pos.map(|SourcePos { line, column }| {
        let mut shift = 0;
        for k in quoted.iter().filter(|k| k.line == line) {
            if k.column + shift < column {
                shift += k.growth();
            }
        }
        SourcePos {
            line,
            column: column.saturating_sub(shift).max(1),
        }
    });
    // A parser limit the file went past is said in words, with the limit.
    let limit = error::limit_words(e, &budget_for(text));
    let (message, snippet) = error::split_report(&e.to_string(), path, pos, |m| {
        limit.or_else(|| explain_scalar_error(m, text, raw_pos))
    });
    LoadError::Syntax {
        path: path.to_path_buf(),
        pos,
        message,
        snippet,
    }
}

/// Parser limits that grow with the file: a large package (100,000 tasks is
/// about 7 nodes each) must load, while aliases, depth and documents keep the
/// library's defaults against billion-laughs style inputs.
fn options_for(text: &str) -> serde_saphyr::Options {
    let mut options = yaml_options();
    options.budget = Some(budget_for(text));
    options
}

/// The limits [`options_for`] sets for `text`.
fn budget_for(text: &str) -> serde_saphyr::Budget {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(text.len());
    budget.max_events = budget.max_events.max(text.len().saturating_mul(2));
    budget
}

/// How every YAML text checkflow reads (packages, `--config` files) types
/// its plain scalars: as YAML 1.2, not 1.1, so that values keep what they say.
/// `no`, `off`, `y` and `n` stay strings (only `true` and `false`, in any of
/// their three cases, are booleans), and a number written with leading zeros
/// (`0123`, a code or an account) stays the string it is.
pub fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options
}

/// The message for a YAML error from a text read with [`yaml_options`]: a
/// parser limit in words ("the YAML nests deeper than 64 levels"), else the
/// library's first line.
pub fn yaml_error_message(e: &serde_saphyr::Error) -> String {
    let first = || {
        let report = e.to_string();
        let line = report.lines().next().unwrap_or("");
        line.strip_prefix("error: ").unwrap_or(line).to_string()
    };
    match error::limit_words(
        e,
        yaml_options()
            .budget
            .as_ref()
            .unwrap_or(&Default::default()),
    ) {
        Some(words) => match e.location() {
            Some(l) => format!("line {} column {}: {words}", l.line(), l.column()),
            None => words,
        },
        None => first(),
    }
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
