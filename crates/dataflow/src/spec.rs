//! A flow as validated: each component read from its YAML map, its inputs
//! resolved to other components' outputs, the graph checked for cycles, and
//! the columns of every path worked out, so that every problem is reported
//! before anything runs, with the component, the column and the line.

use crate::types::{Col, Cols, parse_type};
use checkflow_expr::DataType;
use checkflow_model::{Node, SourcePos, Spanned, pos_of};
use checkflow_tasks::db::Connection;
use std::collections::{BTreeMap, HashMap};

mod exprs;
pub use exprs::{Case, Derived, flow_columns};

/// The extra columns of an error output (and of a lookup's `no_match`).
pub const ERROR_CODE: &str = "ErrorCode";
/// Which column the error is about.
pub const ERROR_COLUMN: &str = "ErrorColumn";
/// What went wrong.
pub const ERROR_DESCRIPTION: &str = "ErrorDescription";

/// The columns an error output adds to the rows it carries.
pub fn error_cols() -> Cols {
    vec![
        Col::new(ERROR_CODE, DataType::I4),
        Col::new(ERROR_COLUMN, DataType::WStr { len: None }),
        Col::new(ERROR_DESCRIPTION, DataType::WStr { len: None }),
    ]
}

/// What a component does with a row that fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnError {
    /// The component and the task fail.
    Fail,
    /// The value becomes NULL (a lookup: the added columns are NULL).
    Ignore,
    /// The row goes to the error output.
    Redirect,
}

/// A flat file's format.
#[derive(Clone, Debug)]
pub struct CsvFormat {
    pub delimiter: u8,
    pub quote: Option<u8>,
    pub header: bool,
}

/// Where a source reads: one file, or the files of a folder matching a pattern.
#[derive(Clone, Debug)]
pub enum Files {
    One(String),
    Folder { folder: String, pattern: String },
}

/// A `table_destination`.
#[derive(Clone, Debug)]
pub struct TableDest {
    pub conn: Connection,
    pub table: String,
    pub create: bool,
    pub truncate: bool,
    /// (input column index, table column name), in input order.
    pub mapping: Vec<(usize, String)>,
}

/// One `aggregate` column.
#[derive(Clone, Debug)]
pub struct AggCol {
    pub name: String,
    pub op: AggOp,
    /// The input column (none for `count` of rows).
    pub of: Option<String>,
}

/// An aggregate operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    CountDistinct,
}

/// Where a lookup's reference rows come from.
#[derive(Clone, Debug)]
pub enum LookupRef {
    /// A query on a connection.
    Query(Connection, String),
    /// The rows of another component's output (the component's last input).
    Input,
}

/// A merge join's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Full,
}

/// What a component is, with its settings.
#[derive(Clone, Debug)]
pub enum Kind {
    FlatFileSource {
        files: Files,
        format: CsvFormat,
        null: Option<String>,
        skip_rows: u64,
        on_error: OnError,
    },
    ParquetSource {
        files: Files,
    },
    SqlSource {
        conn: Connection,
        query: String,
        /// Variable slots bound to the query's parameters, in order.
        params: Vec<u32>,
    },
    DerivedColumn {
        columns: Vec<Derived>,
        on_error: OnError,
        on_truncation: OnError,
    },
    ConditionalSplit {
        /// In order: the first whose condition is TRUE takes the row; the
        /// rest go to the default output (the one after the cases).
        cases: Vec<Case>,
        on_error: OnError,
    },
    DataConversion {
        /// (input column index, output column index, target type).
        convert: Vec<(usize, usize, DataType)>,
        on_error: OnError,
        on_truncation: OnError,
    },
    Lookup {
        source: LookupRef,
        /// (input column index, reference column name).
        on: Vec<(usize, String)>,
        /// Added columns (name, type) taken from the reference.
        add: Vec<Col>,
        no_match: OnError,
    },
    Aggregate {
        group_by: Vec<String>,
        columns: Vec<AggCol>,
    },
    Sort {
        /// (column, descending).
        by: Vec<(String, bool)>,
        distinct: bool,
    },
    UnionAll,
    MergeJoin {
        kind: JoinKind,
        /// (left column, right column).
        on: Vec<(String, String)>,
        /// Right columns kept (by name), after the left's.
        right_keep: Vec<String>,
    },
    Multicast,
    RowCount {
        slot: u32,
        var: String,
    },
    Audit,
    TableDestination(Box<TableDest>),
    FlatFileDestination {
        file: String,
        format: CsvFormat,
        overwrite: bool,
    },
    ParquetDestination {
        file: String,
        overwrite: bool,
    },
    RecordsetDestination {
        slot: u32,
        var: String,
    },
}

impl Kind {
    /// Whether it must see every row before it sends one.
    pub fn blocking(&self) -> bool {
        matches!(
            self,
            Kind::Aggregate { .. } | Kind::Sort { .. } | Kind::MergeJoin { .. }
        )
    }
}

/// One input: which component's output.
#[derive(Clone, Copy, Debug)]
pub struct Edge {
    pub from: usize,
    pub output: usize,
}

/// One output of a component and its columns.
#[derive(Clone, Debug)]
pub struct Output {
    pub name: String,
    pub cols: Cols,
    /// Whether validation requires a reader.
    pub required: bool,
}

/// A validated component.
#[derive(Clone, Debug)]
pub struct Comp {
    pub name: String,
    pub type_name: String,
    pub kind: Kind,
    pub inputs: Vec<Edge>,
    pub outputs: Vec<Output>,
}

/// A validated flow.
#[derive(Clone, Debug)]
pub struct FlowSpec {
    pub comps: Vec<Comp>,
    /// Components in an order where every input comes before its reader.
    pub order: Vec<usize>,
    /// Bytes the row-holding operators may hold before spilling.
    pub memory_limit: usize,
    /// With `resume: true`: the source records each committed step holds.
    pub resume: Option<u64>,
}

/// The component types, and the fields each takes besides `name`, `type`
/// and its input fields.
const TYPES: &[(&str, &[&str])] = &[
    (
        "flat_file_source",
        &[
            "file",
            "files",
            "header",
            "delimiter",
            "quote",
            "null",
            "skip_rows",
            "columns",
            "on_error",
        ],
    ),
    ("parquet_source", &["file", "files", "columns"]),
    (
        "sql_source",
        &["connection", "query", "table", "params", "columns"],
    ),
    ("derived_column", &["columns", "on_error", "on_truncation"]),
    ("conditional_split", &["outputs", "default", "on_error"]),
    ("data_conversion", &["columns", "on_error", "on_truncation"]),
    (
        "lookup",
        &[
            "connection",
            "query",
            "table",
            "input_ref",
            "on",
            "add",
            "no_match",
        ],
    ),
    ("aggregate", &["group_by", "columns"]),
    ("sort", &["by", "distinct"]),
    ("union_all", &[]),
    ("merge_join", &["kind", "on"]),
    ("multicast", &[]),
    ("row_count", &["variable"]),
    ("audit", &[]),
    (
        "table_destination",
        &["connection", "table", "create", "truncate", "columns"],
    ),
    (
        "flat_file_destination",
        &["file", "header", "delimiter", "quote", "overwrite"],
    ),
    ("parquet_destination", &["file", "overwrite"]),
    ("recordset_destination", &["variable"]),
];

/// Default `memory_limit`.
pub const DEFAULT_MEMORY: usize = 512 << 20;

/// Reports problems: a position and a message (the caller adds the task).
pub trait Report {
    fn error_at(&mut self, pos: SourcePos, msg: String);
    /// Resolves a variable the flow writes (reports it if unknown or read-only).
    fn writable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)>;
    /// Resolves a connection of kind sqlite or postgres (reports it otherwise).
    fn db_connection(&mut self, name: &str, pos: SourcePos) -> Option<Connection>;
    /// Resolves a variable the flow reads (reports it if unknown).
    fn readable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)>;
    /// The package's variables, for compiling expressions.
    fn variables(&self) -> &dyn checkflow_expr::Scope;
}

/// Reads a size: `512MiB`, `2GiB`, `100MB`, `65536`.
pub fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult).filter(|b| *b > 0)
}

/// Fields of one component, read with their positions; keys nobody reads
/// are reported at the end.
struct Fields<'a> {
    comp: String,
    pos: SourcePos,
    map: &'a [(String, Spanned<Node>)],
    ok: bool,
    errs: Vec<(SourcePos, String)>,
}

impl<'a> Fields<'a> {
    fn err(&mut self, pos: SourcePos, msg: impl Into<String>) {
        self.ok = false;
        self.errs
            .push((pos, format!("component \"{}\": {}", self.comp, msg.into())));
    }

    fn get(&self, key: &str) -> Option<&'a Spanned<Node>> {
        self.map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn str(&mut self, key: &str) -> Option<(String, SourcePos)> {
        let v = self.get(key)?;
        match &v.value {
            Node::Str(s) => Some((s.clone(), pos_of(v))),
            other => {
                self.err(
                    pos_of(v),
                    format!("`{key}` must be text, not {}", other.kind()),
                );
                None
            }
        }
    }

    fn req_str(&mut self, key: &str) -> Option<(String, SourcePos)> {
        if self.get(key).is_none() {
            let p = self.pos;
            self.err(p, format!("a {} needs `{key}`", self.type_name()));
            return None;
        }
        let (s, p) = self.str(key)?;
        if s.trim().is_empty() {
            self.err(p, format!("`{key}` is empty"));
            return None;
        }
        Some((s, p))
    }

    fn type_name(&self) -> String {
        self.get("type")
            .and_then(|t| t.value.as_str())
            .unwrap_or("component")
            .to_string()
    }

    fn bool(&mut self, key: &str, default: bool) -> bool {
        match self.get(key) {
            None => default,
            Some(v) => match v.value {
                Node::Bool(b) => b,
                ref other => {
                    let p = pos_of(v);
                    self.err(
                        p,
                        format!("`{key}` must be true or false, not {}", other.kind()),
                    );
                    default
                }
            },
        }
    }

    fn uint(&mut self, key: &str) -> Option<u64> {
        let v = self.get(key)?;
        match v.value {
            Node::Int(i) if i >= 0 => Some(i as u64),
            _ => {
                let p = pos_of(v);
                self.err(p, format!("`{key}` must be a whole number of 0 or more"));
                None
            }
        }
    }

    fn list(&mut self, key: &str) -> Option<&'a [Spanned<Node>]> {
        let v = self.get(key)?;
        match &v.value {
            Node::Seq(items) => Some(items),
            other => {
                let p = pos_of(v);
                self.err(p, format!("`{key}` must be a list, not {}", other.kind()));
                None
            }
        }
    }

    /// A one-character setting (`delimiter`, `quote`); `\t` and `tab` mean a tab.
    fn byte(&mut self, key: &str, default: Option<u8>, allow_none: bool) -> Option<Option<u8>> {
        let Some((s, p)) = self.str(key) else {
            return Some(default);
        };
        match s.as_str() {
            "\\t" | "tab" | "\t" => Some(Some(b'\t')),
            "" if allow_none => Some(None),
            d if d.len() == 1 && d.is_ascii() => Some(Some(d.as_bytes()[0])),
            _ => {
                self.err(p, format!("`{key}: {s:?}` must be one ASCII character"));
                None
            }
        }
    }

    fn disposition(&mut self, key: &str) -> OnError {
        match self.str(key) {
            None => OnError::Fail,
            Some((s, p)) => match s.as_str() {
                "fail" => OnError::Fail,
                "ignore" => OnError::Ignore,
                "redirect" => OnError::Redirect,
                _ => {
                    self.err(p, format!("`{key}: {s}` must be fail, ignore or redirect"));
                    OnError::Fail
                }
            },
        }
    }

    fn files(&mut self) -> Option<Files> {
        match (self.get("file"), self.get("files")) {
            (Some(_), Some(v)) => {
                let p = pos_of(v);
                self.err(p, "give `file` or `files`, not both");
                None
            }
            (Some(_), None) => self.req_str("file").map(|(f, _)| Files::One(f)),
            (None, Some(v)) => {
                let p = pos_of(v);
                let folder = v.value.get("folder").and_then(|f| f.value.as_str());
                let pattern = v
                    .value
                    .get("pattern")
                    .map(|f| f.value.as_str())
                    .unwrap_or(Some("*"));
                let extra = match &v.value {
                    Node::Map(m) => m
                        .iter()
                        .find(|(k, _)| k != "folder" && k != "pattern")
                        .map(|(k, _)| k.clone()),
                    _ => None,
                };
                match (folder, pattern, extra) {
                    (_, _, Some(k)) => {
                        self.err(
                            p,
                            format!("`files` takes `folder` and `pattern`, not `{k}`"),
                        );
                        None
                    }
                    (Some(f), Some(pat), None) if !f.trim().is_empty() => Some(Files::Folder {
                        folder: f.to_string(),
                        pattern: pat.to_string(),
                    }),
                    _ => {
                        self.err(p, "`files` must be a map { folder, pattern } (folder is text, pattern a wildcard such as *.csv)");
                        None
                    }
                }
            }
            (None, None) => {
                let p = self.pos;
                self.err(p, format!("a {} needs `file` or `files`", self.type_name()));
                None
            }
        }
    }
}

/// A column's `type:` (text such as "DT_WSTR, 20"), or None once the error
/// is reported.
fn column_type(f: &mut Fields<'_>, t: &Spanned<Node>, name: &str) -> Option<DataType> {
    match t.value.scalar_text().map(|s| parse_type(&s)) {
        Some(Ok(ty)) => Some(ty),
        Some(Err(e)) => {
            f.err(pos_of(t), format!("column \"{name}\": {e}"));
            None
        }
        None => {
            f.err(
                pos_of(t),
                format!("column \"{name}\": `type` must be text such as \"DT_WSTR, 20\""),
            );
            None
        }
    }
}

/// A column list `[{ name, type }]` (type optional, default `default`).
fn read_columns(f: &mut Fields<'_>, key: &str, default: Option<DataType>) -> Option<Cols> {
    let items = f.list(key)?;
    let mut cols: Cols = Vec::new();
    for it in items {
        let p = pos_of(it);
        let (name, ty) = match &it.value {
            Node::Str(s) => (Some(s.clone()), None),
            Node::Map(m) => {
                if let Some((k, v)) = m.iter().find(|(k, _)| k != "name" && k != "type") {
                    f.err(
                        pos_of(v),
                        format!("a column of `{key}` takes `name` and `type`, not `{k}`"),
                    );
                    continue;
                }
                (
                    it.value.get("name").and_then(|n| n.value.scalar_text()),
                    it.value.get("type"),
                )
            }
            other => {
                f.err(
                    p,
                    format!(
                        "a column of `{key}` must be a name or a map {{ name, type }}, not {}",
                        other.kind()
                    ),
                );
                continue;
            }
        };
        let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
            f.err(p, format!("a column of `{key}` needs `name`"));
            continue;
        };
        let ty = match ty {
            Some(t) => match column_type(f, t, &name) {
                Some(ty) => ty,
                None => continue,
            },
            None => match &default {
                Some(d) => d.clone(),
                None => {
                    f.err(p, format!("column \"{name}\" needs a `type`"));
                    continue;
                }
            },
        };
        if cols.iter().any(|c| c.name == name) {
            f.err(p, format!("column \"{name}\" is listed twice in `{key}`"));
            continue;
        }
        cols.push(Col::new(name, ty));
    }
    if cols.is_empty() && f.ok {
        let p = f.get(key).map_or(f.pos, pos_of);
        f.err(p, format!("`{key}` is empty"));
    }
    Some(cols)
}

/// A component as read, before its inputs are resolved.
struct Raw<'a> {
    name: String,
    pos: SourcePos,
    type_name: String,
    fields: &'a [(String, Spanned<Node>)],
    /// (reference text, position), in input order.
    inputs: Vec<(String, SourcePos)>,
}

/// Checks the components of a flow and works out its paths. Every problem is
/// reported to `rep`; `None` when there was any.
pub fn validate(
    components: &Spanned<Vec<Spanned<Node>>>,
    memory_limit: Option<&Spanned<String>>,
    rep: &mut dyn Report,
) -> Option<FlowSpec> {
    let mut ok = true;
    let err = |rep: &mut dyn Report, ok: &mut bool, pos: SourcePos, msg: String| {
        *ok = false;
        rep.error_at(pos, msg);
    };
    let memory = match memory_limit {
        None => DEFAULT_MEMORY,
        Some(m) => match parse_size(&m.value) {
            Some(n) => n,
            None => {
                err(
                    rep,
                    &mut ok,
                    pos_of(m),
                    format!(
                        "`memory_limit: {}` is not a size (write e.g. 512MiB or 2GiB)",
                        m.value
                    ),
                );
                DEFAULT_MEMORY
            }
        },
    };
    if components.value.is_empty() {
        err(
            rep,
            &mut ok,
            pos_of(components),
            "`components` is empty: a data flow needs at least one source and one destination"
                .into(),
        );
        return None;
    }
    // 1. Names, types and input references.
    let mut raws: Vec<Raw<'_>> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for c in &components.value {
        let pos = pos_of(c);
        let Node::Map(fields) = &c.value else {
            err(
                rep,
                &mut ok,
                pos,
                format!(
                    "a component must be a map with `name` and `type`, not {}",
                    c.value.kind()
                ),
            );
            continue;
        };
        let Some(name) = c
            .value
            .get("name")
            .and_then(|n| n.value.scalar_text())
            .filter(|n| !n.trim().is_empty())
        else {
            err(rep, &mut ok, pos, "a component needs `name`".into());
            continue;
        };
        let Some(type_name) = c
            .value
            .get("type")
            .and_then(|n| n.value.as_str())
            .map(str::to_string)
        else {
            err(
                rep,
                &mut ok,
                pos,
                format!("component \"{name}\" needs `type`"),
            );
            continue;
        };
        let tpos = c.value.get("type").map_or(pos, pos_of);
        if !TYPES.iter().any(|(t, _)| *t == type_name) {
            let known: Vec<&str> = TYPES.iter().map(|(t, _)| *t).collect();
            let hint = checkflow_model::closest(&type_name, known.iter().copied())
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            err(
                rep,
                &mut ok,
                tpos,
                format!("component \"{name}\": unknown component type \"{type_name}\"{hint}"),
            );
            continue;
        }
        if by_name.contains_key(&name) {
            err(
                rep,
                &mut ok,
                c.value.get("name").map_or(pos, pos_of),
                format!("component \"{name}\" is defined twice (names must be unique in a flow)"),
            );
            continue;
        }
        // Inputs as written.
        let mut inputs = Vec::new();
        let input_keys: &[&str] = match type_name.as_str() {
            "union_all" => &["inputs"],
            "merge_join" => &["left", "right"],
            t if t.ends_with("_source") => &[],
            _ => &["input"],
        };
        for key in ["input", "inputs", "left", "right"] {
            let Some(v) = c.value.get(key) else { continue };
            if !input_keys.contains(&key) {
                let what = if input_keys.is_empty() {
                    format!("a {type_name} reads no input")
                } else {
                    format!(
                        "a {type_name} takes {}",
                        input_keys
                            .iter()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )
                };
                err(
                    rep,
                    &mut ok,
                    pos_of(v),
                    format!("component \"{name}\": `{key}` is not a field of {type_name} ({what})"),
                );
                continue;
            }
            match &v.value {
                Node::Seq(items) if key == "inputs" => {
                    for i in items {
                        match i.value.scalar_text() {
                            Some(t) => inputs.push((t, pos_of(i))),
                            None => err(
                                rep,
                                &mut ok,
                                pos_of(i),
                                format!(
                                    "component \"{name}\": each of `inputs` must be a component name"
                                ),
                            ),
                        }
                    }
                }
                n if key != "inputs" => match n.scalar_text() {
                    Some(t) => inputs.push((t, pos_of(v))),
                    None => err(
                        rep,
                        &mut ok,
                        pos_of(v),
                        format!(
                            "component \"{name}\": `{key}` must be a component name (or NAME.OUTPUT)"
                        ),
                    ),
                },
                _ => err(
                    rep,
                    &mut ok,
                    pos_of(v),
                    format!("component \"{name}\": `inputs` must be a list of component names"),
                ),
            }
        }
        for key in input_keys {
            if c.value.get(key).is_none() {
                err(
                    rep,
                    &mut ok,
                    pos,
                    format!("component \"{name}\": a {type_name} needs `{key}`"),
                );
            }
        }
        if type_name == "union_all" && c.value.get("inputs").is_some() && inputs.len() < 2 {
            err(
                rep,
                &mut ok,
                pos,
                format!("component \"{name}\": a union_all needs at least two `inputs`"),
            );
        }
        // Unknown fields.
        let allowed = TYPES
            .iter()
            .find(|(t, _)| *t == type_name)
            .map(|(_, f)| *f)
            .unwrap_or(&[]);
        for (k, v) in fields {
            if ["name", "type", "input", "inputs", "left", "right"].contains(&k.as_str())
                || allowed.contains(&k.as_str())
            {
                continue;
            }
            let hint = checkflow_model::closest(k, allowed.iter().copied())
                .map(|c| format!(" (did you mean `{c}`?)"))
                .unwrap_or_default();
            err(
                rep,
                &mut ok,
                pos_of(v),
                format!("component \"{name}\": unknown field `{k}` for a {type_name}{hint}"),
            );
        }
        by_name.insert(name.clone(), raws.len());
        raws.push(Raw {
            name,
            pos,
            type_name,
            fields,
            inputs,
        });
    }
    // A lookup's `input_ref` is its last input.
    for r in &mut raws {
        if r.type_name == "lookup"
            && let Some((_, v)) = r.fields.iter().find(|(k, _)| k == "input_ref")
        {
            match v.value.scalar_text() {
                Some(t) => r.inputs.push((t, pos_of(v))),
                None => {
                    ok = false;
                    rep.error_at(
                        pos_of(v),
                        format!(
                            "component \"{}\": `input_ref` must be a component name",
                            r.name
                        ),
                    );
                }
            }
        }
    }
    // 2. Resolve input references to (component, output name).
    let mut refs: Vec<Vec<(usize, String, SourcePos)>> = Vec::new();
    for r in &raws {
        let mut v = Vec::new();
        for (text, p) in &r.inputs {
            let found = match by_name.get(text) {
                Some(i) => Some((*i, "output".to_string())),
                None => text
                    .rsplit_once('.')
                    .and_then(|(c, o)| by_name.get(c).map(|i| (*i, o.to_string()))),
            };
            match found {
                Some((i, o)) if raws[i].name == r.name => {
                    ok = false;
                    rep.error_at(*p, format!("component \"{}\" reads its own output", r.name));
                    let _ = (i, o);
                }
                Some((i, o)) => v.push((i, o, *p)),
                None => {
                    ok = false;
                    let hint = checkflow_model::closest(text, raws.iter().map(|r| r.name.as_str()))
                        .map(|c| format!(" (did you mean \"{c}\"?)"))
                        .unwrap_or_default();
                    rep.error_at(*p, format!("component \"{}\": input \"{text}\" is not a component of this flow{hint}", r.name));
                }
            }
        }
        refs.push(v);
    }
    if !ok {
        return None;
    }
    // 3. Order (and cycles).
    let n = raws.len();
    let mut indeg = vec![0usize; n];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, rs) in refs.iter().enumerate() {
        for (from, _, _) in rs {
            indeg[i] += 1;
            readers[*from].push(i);
        }
    }
    let mut order = Vec::with_capacity(n);
    let mut ready: Vec<usize> = (0..n).filter(|i| indeg[*i] == 0).collect();
    ready.reverse();
    while let Some(i) = ready.pop() {
        order.push(i);
        for &r in &readers[i] {
            indeg[r] -= 1;
            if indeg[r] == 0 {
                ready.push(r);
            }
        }
    }
    if order.len() < n {
        let mut stuck: Vec<&str> = (0..n)
            .filter(|i| indeg[*i] > 0)
            .map(|i| raws[i].name.as_str())
            .collect();
        stuck.sort_unstable();
        let first = (0..n).find(|i| indeg[*i] > 0).unwrap_or(0);
        rep.error_at(raws[first].pos, format!("the components {} form a cycle (a component cannot read, directly or not, its own output)", stuck.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")));
        return None;
    }
    // 4. Each component, in order: settings, then its outputs' columns.
    let mut comps: Vec<Option<Comp>> = vec![None; n];
    for &i in &order {
        let r = &raws[i];
        let mut inputs = Vec::new();
        let mut in_cols: Vec<Cols> = Vec::new();
        let mut bad_input = false;
        for (from, oname, p) in &refs[i] {
            let Some(src) = comps[*from].as_ref() else {
                bad_input = true;
                continue;
            };
            match src.outputs.iter().position(|o| o.name == *oname) {
                Some(o) => {
                    inputs.push(Edge {
                        from: *from,
                        output: o,
                    });
                    in_cols.push(src.outputs[o].cols.clone());
                }
                None => {
                    bad_input = true;
                    let have: Vec<String> = src
                        .outputs
                        .iter()
                        .map(|o| format!("\"{}.{}\"", src.name, o.name))
                        .collect();
                    let msg = if have.is_empty() {
                        format!(
                            "component \"{}\": \"{}\" is a {} and has no outputs to read",
                            r.name, src.name, src.type_name
                        )
                    } else {
                        format!(
                            "component \"{}\": \"{}\" has no output \"{oname}\" (it has {})",
                            r.name,
                            src.name,
                            have.join(", ")
                        )
                    };
                    rep.error_at(*p, msg);
                }
            }
        }
        if bad_input {
            ok = false;
            continue;
        }
        let mut f = Fields {
            comp: r.name.clone(),
            pos: r.pos,
            map: r.fields,
            ok: true,
            errs: Vec::new(),
        };
        let built = build(r, &mut f, &in_cols, rep);
        for (p, m) in f.errs.drain(..) {
            rep.error_at(p, m);
        }
        match built {
            Some((kind, outputs)) if f.ok => {
                comps[i] = Some(Comp {
                    name: r.name.clone(),
                    type_name: r.type_name.clone(),
                    kind,
                    inputs,
                    outputs,
                });
            }
            _ => ok = false,
        }
    }
    if !ok {
        return None;
    }
    let comps: Vec<Comp> = comps
        .into_iter()
        .map(|c| c.expect("every component was built (ok)"))
        .collect();
    // 5. Outputs nobody reads.
    for (i, c) in comps.iter().enumerate() {
        for (o, out) in c.outputs.iter().enumerate() {
            let read = comps
                .iter()
                .any(|r| r.inputs.iter().any(|e| e.from == i && e.output == o));
            if out.required && !read {
                ok = false;
                let what = if out.name == "output" {
                    format!(
                        "component \"{}\": its output is not read by any component (add a destination that reads `input: {}`)",
                        c.name, c.name
                    )
                } else {
                    format!(
                        "component \"{}\": its output \"{}.{}\" is not read by any component (the rows it redirects would be lost)",
                        c.name, c.name, out.name
                    )
                };
                rep.error_at(raws[i].pos, what);
            }
        }
    }
    // 6. A merge join reads all of its left input before its right one, and
    // a lookup all of its reference rows before its main input: if both come
    // from one upstream component, that component would wait for the
    // second input to be read while the first is still being read.
    let mut upstream: Vec<Vec<bool>> = vec![vec![false; n]; n];
    for &i in &order {
        upstream[i][i] = true;
        for e in &comps[i].inputs {
            let from = upstream[e.from].clone();
            for (k, f) in from.into_iter().enumerate() {
                upstream[i][k] |= f;
            }
        }
    }
    for (i, c) in comps.iter().enumerate() {
        let reads_in_turn = matches!(
            c.kind,
            Kind::MergeJoin { .. }
                | Kind::Lookup {
                    source: LookupRef::Input,
                    ..
                }
        );
        let (Some(a), Some(b)) = (c.inputs.first(), c.inputs.last()) else {
            continue;
        };
        if !reads_in_turn || c.inputs.len() < 2 {
            continue;
        }
        if let Some(&common) = order
            .iter()
            .find(|&&k| upstream[a.from][k] && upstream[b.from][k])
        {
            ok = false;
            rep.error_at(
                raws[i].pos,
                format!(
                    "component \"{}\": both its inputs come from \"{}\"; a {} reads all of one input before the other, so the two would wait on each other (read the second input with a source of its own, on the same file or table)",
                    c.name, comps[common].name, c.type_name
                ),
            );
        }
    }
    ok.then_some(FlowSpec {
        comps,
        order,
        memory_limit: memory,
        resume: None,
    })
}

fn col_index(
    f: &mut Fields<'_>,
    cols: &Cols,
    name: &str,
    pos: SourcePos,
    what: &str,
) -> Option<usize> {
    match cols.iter().position(|c| c.name == name) {
        Some(i) => Some(i),
        None => {
            let hint = checkflow_model::closest(name, cols.iter().map(|c| c.name.as_str()))
                .map(|c| format!(" (did you mean \"{c}\"?)"))
                .unwrap_or_default();
            f.err(
                pos,
                format!(
                    "unknown column \"{name}\" in `{what}`{hint}; the input has {}",
                    list_cols(cols)
                ),
            );
            None
        }
    }
}

fn list_cols(cols: &Cols) -> String {
    cols.iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn out(name: &str, cols: Cols, required: bool) -> Output {
    Output {
        name: name.to_string(),
        cols,
        required,
    }
}

fn with_errors(mut cols: Cols) -> Cols {
    cols.extend(error_cols());
    cols
}

/// A component's settings and outputs, from its fields and its inputs' columns.
fn build(
    r: &Raw<'_>,
    f: &mut Fields<'_>,
    ins: &[Cols],
    rep: &mut dyn Report,
) -> Option<(Kind, Vec<Output>)> {
    let first = ins.first().cloned().unwrap_or_default();
    match r.type_name.as_str() {
        "flat_file_source" => {
            let files = f.files();
            let header = f.bool("header", true);
            let delimiter = f.byte("delimiter", Some(b','), false);
            let quote = f.byte("quote", Some(b'"'), true);
            let null = f.str("null").map(|(s, _)| s);
            let skip_rows = f.uint("skip_rows").unwrap_or(0);
            let on_error = f.disposition("on_error");
            let cols = if f.get("columns").is_some() {
                read_columns(f, "columns", Some(DataType::WStr { len: None }))?
            } else {
                let p = f.pos;
                f.err(p, "a flat_file_source needs `columns` (the file's columns in order, each a name or { name, type })");
                return None;
            };
            let mut outs = vec![out("output", cols.clone(), true)];
            if on_error == OnError::Redirect {
                let raw: Cols = cols
                    .iter()
                    .map(|c| Col::new(c.name.clone(), DataType::WStr { len: None }))
                    .collect();
                outs.push(out("error", with_errors(raw), true));
            }
            Some((
                Kind::FlatFileSource {
                    files: files?,
                    format: CsvFormat {
                        delimiter: delimiter??,
                        quote: quote?,
                        header,
                    },
                    null,
                    skip_rows,
                    on_error,
                },
                outs,
            ))
        }
        "parquet_source" => {
            let files = f.files();
            let Some(_) = f.get("columns") else {
                let p = f.pos;
                f.err(
                    p,
                    "a parquet_source needs `columns` (the columns to read, each a name or { name, type })",
                );
                return None;
            };
            let cols = read_columns(f, "columns", Some(DataType::WStr { len: None }))?;
            Some((
                Kind::ParquetSource { files: files? },
                vec![out("output", cols, true)],
            ))
        }
        "sql_source" => exprs::sql_source(f, rep),
        "derived_column" => exprs::derived_column(f, &first, rep),
        "conditional_split" => exprs::conditional_split(f, &first, rep),
        "data_conversion" => {
            let on_error = f.disposition("on_error");
            let on_truncation = f.disposition("on_truncation");
            let items = match f.list("columns") {
                Some(i) => i,
                None => {
                    let p = f.pos;
                    if f.get("columns").is_none() {
                        f.err(
                            p,
                            "a data_conversion needs `columns: [{ name, type, as? }]`",
                        );
                    }
                    return None;
                }
            };
            let mut cols = first.clone();
            let mut convert = Vec::new();
            for it in items {
                let p = pos_of(it);
                let name = it.value.get("name").and_then(|n| n.value.scalar_text());
                let ty = it.value.get("type").and_then(|n| n.value.scalar_text());
                let as_ = it.value.get("as").and_then(|n| n.value.scalar_text());
                if let Node::Map(m) = &it.value
                    && let Some((k, v)) = m
                        .iter()
                        .find(|(k, _)| !["name", "type", "as"].contains(&k.as_str()))
                {
                    f.err(
                        pos_of(v),
                        format!(
                            "a column of a data_conversion takes `name`, `type` and `as`, not `{k}`"
                        ),
                    );
                    continue;
                }
                let (Some(name), Some(ty)) = (name, ty) else {
                    f.err(
                        p,
                        "each column of a data_conversion needs `name` and `type`",
                    );
                    continue;
                };
                let Some(src) = col_index(f, &first, &name, p, "columns") else {
                    continue;
                };
                let ty = match parse_type(&ty) {
                    Ok(t) => t,
                    Err(e) => {
                        f.err(p, format!("column \"{name}\": {e}"));
                        continue;
                    }
                };
                let dst = match as_ {
                    Some(a) if a != name => {
                        if cols.iter().any(|c| c.name == a) {
                            f.err(p, format!("column \"{a}\" (`as`) already exists"));
                            continue;
                        }
                        cols.push(Col::new(a, ty.clone()));
                        cols.len() - 1
                    }
                    _ => {
                        cols[src].ty = ty.clone();
                        src
                    }
                };
                convert.push((src, dst, ty));
            }
            let mut outs = vec![out("output", cols, true)];
            if on_error == OnError::Redirect || on_truncation == OnError::Redirect {
                outs.push(out("error", with_errors(first), true));
            }
            Some((
                Kind::DataConversion {
                    convert,
                    on_error,
                    on_truncation,
                },
                outs,
            ))
        }
        "lookup" => {
            let no_match = f.disposition("no_match");
            let conn = f.get("connection").is_some();
            let has_ref = f.get("input_ref").is_some();
            let source = match (conn, has_ref) {
                (true, true) => {
                    let p = f.pos;
                    f.err(
                        p,
                        "give `connection` (with `query` or `table`) or `input_ref`, not both",
                    );
                    None
                }
                (false, false) => {
                    let p = f.pos;
                    f.err(
                        p,
                        "a lookup needs `connection` with `query` or `table`, or `input_ref`",
                    );
                    None
                }
                (false, true) => Some(LookupRef::Input),
                (true, false) => {
                    let c = f
                        .req_str("connection")
                        .and_then(|(c, p)| rep.db_connection(&c, p));
                    let q = match (f.str("query"), f.str("table")) {
                        (Some((q, _)), None) => Some(q),
                        (None, Some((t, _))) => {
                            Some(format!("SELECT * FROM {}", checkflow_tasks::db::ident(&t)))
                        }
                        (Some(_), Some((_, p))) => {
                            f.err(p, "give `query` or `table`, not both");
                            None
                        }
                        (None, None) => {
                            let p = f.pos;
                            f.err(p, "a lookup on a connection needs `query` or `table`");
                            None
                        }
                    };
                    match (c, q) {
                        (Some(c), Some(q)) => Some(LookupRef::Query(c, q)),
                        _ => None,
                    }
                }
            };
            let ref_cols = if has_ref { ins.get(1).cloned() } else { None };
            // on: { input column: reference column }
            let mut on = Vec::new();
            match f.get("on") {
                Some(v) => match &v.value {
                    Node::Map(m) if !m.is_empty() => {
                        for (k, rv) in m {
                            let Some(rc) = rv.value.scalar_text() else {
                                f.err(
                                    pos_of(rv),
                                    format!("`on: {{ {k}: ... }}` must name a reference column"),
                                );
                                continue;
                            };
                            let Some(ic) = col_index(f, &first, k, pos_of(rv), "on") else {
                                continue;
                            };
                            if let Some(rcols) = &ref_cols
                                && !rcols.iter().any(|c| c.name == rc)
                            {
                                f.err(pos_of(rv), format!("unknown column \"{rc}\" in `on`: the reference input has {}", list_cols(rcols)));
                                continue;
                            }
                            on.push((ic, rc));
                        }
                    }
                    _ => {
                        f.err(
                            pos_of(v),
                            "`on` must be a map { input column: reference column }",
                        );
                    }
                },
                None => {
                    let p = f.pos;
                    f.err(p, "a lookup needs `on: { input column: reference column }`");
                }
            }
            let mut add = Vec::new();
            if let Some(items) = f.list("add") {
                for it in items {
                    let p = pos_of(it);
                    let (name, ty) = match &it.value {
                        Node::Str(s) => (s.clone(), None),
                        Node::Map(_) => {
                            match it.value.get("name").and_then(|n| n.value.scalar_text()) {
                                Some(n) => {
                                    (n, it.value.get("type").and_then(|t| t.value.scalar_text()))
                                }
                                None => {
                                    f.err(p, "each of `add` needs `name`");
                                    continue;
                                }
                            }
                        }
                        _ => {
                            f.err(p, "each of `add` must be a column name or { name, type }");
                            continue;
                        }
                    };
                    let ty = match (ty, &ref_cols) {
                        (Some(t), _) => match parse_type(&t) {
                            Ok(t) => t,
                            Err(e) => {
                                f.err(p, format!("column \"{name}\": {e}"));
                                continue;
                            }
                        },
                        (None, Some(rcols)) => match rcols.iter().find(|c| c.name == name) {
                            Some(c) => c.ty.clone(),
                            None => {
                                f.err(p, format!("unknown column \"{name}\" in `add`: the reference input has {}", list_cols(rcols)));
                                continue;
                            }
                        },
                        (None, None) => DataType::WStr { len: None },
                    };
                    if first.iter().any(|c| c.name == name)
                        || add.iter().any(|c: &Col| c.name == name)
                    {
                        f.err(
                            p,
                            format!("column \"{name}\" in `add` already exists in the input"),
                        );
                        continue;
                    }
                    add.push(Col::new(name, ty));
                }
            }
            let mut cols = first.clone();
            cols.extend(add.iter().cloned());
            let mut outs = vec![out("output", cols, true)];
            if no_match == OnError::Redirect {
                outs.push(out("no_match", with_errors(first), true));
            }
            Some((
                Kind::Lookup {
                    source: source?,
                    on,
                    add,
                    no_match,
                },
                outs,
            ))
        }
        "aggregate" => {
            let mut group_by = Vec::new();
            let mut cols = Vec::new();
            if let Some(items) = f.list("group_by") {
                for it in items {
                    let Some(name) = it.value.scalar_text() else {
                        f.err(pos_of(it), "each of `group_by` must be a column name");
                        continue;
                    };
                    if let Some(i) = col_index(f, &first, &name, pos_of(it), "group_by") {
                        cols.push(first[i].clone());
                        group_by.push(name);
                    }
                }
            }
            let mut aggs = Vec::new();
            match f.list("columns") {
                None => {
                    if f.get("columns").is_none() {
                        let p = f.pos;
                        f.err(p, "an aggregate needs `columns: [{ name, op, of }]`");
                    }
                }
                Some(items) => {
                    for it in items {
                        let p = pos_of(it);
                        let name = it.value.get("name").and_then(|n| n.value.scalar_text());
                        let op = it.value.get("op").and_then(|n| n.value.scalar_text());
                        let of = it.value.get("of").and_then(|n| n.value.scalar_text());
                        if let Node::Map(m) = &it.value
                            && let Some((k, v)) = m
                                .iter()
                                .find(|(k, _)| !["name", "op", "of"].contains(&k.as_str()))
                        {
                            f.err(pos_of(v), format!("a column of an aggregate takes `name`, `op` and `of`, not `{k}`"));
                            continue;
                        }
                        let (Some(name), Some(op)) = (name, op) else {
                            f.err(p, "each column of an aggregate needs `name` and `op`");
                            continue;
                        };
                        let op = match op.as_str() {
                            "sum" => AggOp::Sum,
                            "avg" => AggOp::Avg,
                            "min" => AggOp::Min,
                            "max" => AggOp::Max,
                            "count" => AggOp::Count,
                            "count_distinct" => AggOp::CountDistinct,
                            other => {
                                f.err(p, format!("column \"{name}\": unknown op \"{other}\" (sum, avg, min, max, count, count_distinct)"));
                                continue;
                            }
                        };
                        let src = match &of {
                            Some(o) => match col_index(f, &first, o, p, "of") {
                                Some(i) => Some(first[i].ty.clone()),
                                None => continue,
                            },
                            None if op == AggOp::Count => None,
                            None => {
                                f.err(p, format!("column \"{name}\": op {} needs `of` (the column it is computed over)", op_name(op)));
                                continue;
                            }
                        };
                        let ty = match (op, &src) {
                            (AggOp::Count | AggOp::CountDistinct, _) => DataType::I8,
                            (AggOp::Min | AggOp::Max, Some(t)) => t.clone(),
                            (AggOp::Sum | AggOp::Avg, Some(t)) if t.is_integer() => {
                                if op == AggOp::Sum {
                                    DataType::I8
                                } else {
                                    DataType::R8
                                }
                            }
                            (AggOp::Sum | AggOp::Avg, Some(DataType::R4 | DataType::R8)) => {
                                DataType::R8
                            }
                            (
                                AggOp::Sum,
                                Some(DataType::Numeric { scale, .. } | DataType::Decimal { scale }),
                            ) => DataType::Numeric {
                                precision: 38,
                                scale: *scale,
                            },
                            (
                                AggOp::Avg,
                                Some(DataType::Numeric { scale, .. } | DataType::Decimal { scale }),
                            ) => DataType::Numeric {
                                precision: 38,
                                scale: (*scale + 4).min(checkflow_expr::datatype::MAX_SCALE),
                            },
                            (AggOp::Sum | AggOp::Avg, Some(DataType::Cy)) => DataType::Numeric {
                                precision: 38,
                                scale: 4,
                            },
                            (_, Some(t)) => {
                                f.err(p, format!("column \"{name}\": op {} needs a numeric column, but \"{}\" is {}", op_name(op), of.clone().unwrap_or_default(), t));
                                continue;
                            }
                            (_, None) => continue,
                        };
                        if cols.iter().any(|c: &Col| c.name == name) {
                            f.err(p, format!("column \"{name}\" is produced twice"));
                            continue;
                        }
                        cols.push(Col::new(name.clone(), ty));
                        aggs.push(AggCol { name, op, of });
                    }
                }
            }
            Some((
                Kind::Aggregate {
                    group_by,
                    columns: aggs,
                },
                vec![out("output", cols, true)],
            ))
        }
        "sort" => {
            let mut by = Vec::new();
            match f.list("by") {
                None => {
                    if f.get("by").is_none() {
                        let p = f.pos;
                        f.err(p, "a sort needs `by: [{ column, desc? }]`");
                    }
                }
                Some(items) => {
                    for it in items {
                        let p = pos_of(it);
                        let (name, desc) = match &it.value {
                            Node::Str(s) => (Some(s.clone()), false),
                            Node::Map(_) => (
                                it.value.get("column").and_then(|n| n.value.scalar_text()),
                                matches!(
                                    it.value.get("desc").map(|d| &d.value),
                                    Some(Node::Bool(true))
                                ),
                            ),
                            _ => (None, false),
                        };
                        let Some(name) = name else {
                            f.err(p, "each of `by` must be a column name or { column, desc }");
                            continue;
                        };
                        if col_index(f, &first, &name, p, "by").is_some() {
                            by.push((name, desc));
                        }
                    }
                }
            }
            let distinct = f.bool("distinct", false);
            Some((
                Kind::Sort { by, distinct },
                vec![out("output", first, true)],
            ))
        }
        "union_all" => {
            let mut cols = first.clone();
            for (k, other) in ins.iter().enumerate().skip(1) {
                for c in other {
                    match cols.iter().find(|x| x.name == c.name) {
                        Some(x)
                            if x.ty != c.ty
                                && crate::types::arrow_type(&x.ty)
                                    != crate::types::arrow_type(&c.ty) =>
                        {
                            let p = r.inputs.get(k).map_or(f.pos, |i| i.1);
                            f.err(
                                p,
                                format!(
                                    "column \"{}\" is {} in \"{}\" but {} in \"{}\"",
                                    c.name, x.ty, r.inputs[0].0, c.ty, r.inputs[k].0
                                ),
                            );
                        }
                        Some(_) => {}
                        None => cols.push(c.clone()),
                    }
                }
            }
            Some((Kind::UnionAll, vec![out("output", cols, true)]))
        }
        "merge_join" => {
            let kind = match f.str("kind") {
                None => JoinKind::Inner,
                Some((k, p)) => match k.as_str() {
                    "inner" => JoinKind::Inner,
                    "left" => JoinKind::Left,
                    "full" => JoinKind::Full,
                    _ => {
                        f.err(p, format!("`kind: {k}` must be inner, left or full"));
                        JoinKind::Inner
                    }
                },
            };
            let left = first.clone();
            let right = ins.get(1).cloned().unwrap_or_default();
            let mut on = Vec::new();
            match f.get("on") {
                Some(v) => {
                    match &v.value {
                        Node::Map(m) if !m.is_empty() => {
                            for (k, rv) in m {
                                let p = pos_of(rv);
                                let Some(rc) = rv.value.scalar_text() else {
                                    f.err(p, format!("`on: {{ {k}: ... }}` must name a column of the right input"));
                                    continue;
                                };
                                let li = col_index(f, &left, k, p, "on (left input)");
                                let ri = match right.iter().position(|c| c.name == rc) {
                                    Some(i) => Some(i),
                                    None => {
                                        f.err(p, format!("unknown column \"{rc}\" in `on` (right input); the right input has {}", list_cols(&right)));
                                        None
                                    }
                                };
                                if let (Some(li), Some(ri)) = (li, ri) {
                                    let (a, b) = (&left[li].ty, &right[ri].ty);
                                    let family = |t: &DataType| {
                                        if t.is_numeric() {
                                            0
                                        } else if t.is_string() {
                                            1
                                        } else if t.is_date() {
                                            2
                                        } else {
                                            3
                                        }
                                    };
                                    if family(a) != family(b) || family(a) == 3 && a != b {
                                        f.err(p, format!("cannot join column \"{k}\" ({a}) with \"{rc}\" ({b}): the types do not compare"));
                                        continue;
                                    }
                                    on.push((k.clone(), rc));
                                }
                            }
                        }
                        _ => f.err(
                            pos_of(v),
                            "`on` must be a map { left column: right column }",
                        ),
                    }
                }
                None => {
                    let p = f.pos;
                    f.err(p, "a merge_join needs `on: { left column: right column }`");
                }
            }
            let mut cols = left.clone();
            let mut right_keep = Vec::new();
            for c in &right {
                if on.iter().any(|(l, rc)| *rc == c.name && *l == c.name) {
                    continue;
                }
                if cols.iter().any(|x| x.name == c.name) {
                    let p = r.inputs.get(1).map_or(f.pos, |i| i.1);
                    f.err(p, format!("column \"{}\" is in both inputs (rename it on one side first, e.g. with a data_conversion `as`)", c.name));
                    continue;
                }
                cols.push(c.clone());
                right_keep.push(c.name.clone());
            }
            Some((
                Kind::MergeJoin {
                    kind,
                    on,
                    right_keep,
                },
                vec![out("output", cols, true)],
            ))
        }
        "multicast" => Some((Kind::Multicast, vec![out("output", first, true)])),
        "row_count" | "recordset_destination" => {
            let (var, p) = f.req_str("variable")?;
            let (slot, ty) = rep.writable_var(&var, p)?;
            if r.type_name == "row_count" {
                if !(ty.is_integer()
                    || matches!(ty, DataType::R8 | DataType::R4 | DataType::Numeric { .. }))
                {
                    f.err(p, format!("variable \"{var}\" is {}, but a row count needs a number variable (int32, int64)", ty.ssis_name()));
                    return None;
                }
                Some((
                    Kind::RowCount { slot, var },
                    vec![out("output", first, false)],
                ))
            } else {
                if ty != DataType::Object {
                    f.err(p, format!("variable \"{var}\" is {}, but a recordset_destination needs an object variable", ty.ssis_name()));
                    return None;
                }
                Some((Kind::RecordsetDestination { slot, var }, vec![]))
            }
        }
        "audit" => {
            let mut cols = first.clone();
            for c in audit_cols() {
                if cols.iter().any(|x| x.name == c.name) {
                    let p = f.pos;
                    f.err(
                        p,
                        format!(
                            "the input already has a column \"{}\", which audit adds",
                            c.name
                        ),
                    );
                }
                cols.push(c);
            }
            Some((Kind::Audit, vec![out("output", cols, true)]))
        }
        "table_destination" => {
            let conn = f
                .req_str("connection")
                .and_then(|(c, p)| rep.db_connection(&c, p));
            let table = f.req_str("table").map(|t| t.0);
            let create = match f.str("create") {
                None => false,
                Some((c, p)) => match c.as_str() {
                    "never" => false,
                    "if_missing" => true,
                    _ => {
                        f.err(p, format!("`create: {c}` must be never or if_missing"));
                        false
                    }
                },
            };
            let truncate = f.bool("truncate", false);
            let mut mapping: Vec<(usize, String)> = first
                .iter()
                .enumerate()
                .map(|(i, c)| (i, c.name.clone()))
                .collect();
            if let Some(v) = f.get("columns") {
                match &v.value {
                    Node::Map(m) => {
                        for (k, tv) in m {
                            let Some(i) = col_index(f, &first, k, pos_of(tv), "columns") else { continue };
                            match &tv.value {
                                Node::Null => mapping.retain(|(j, _)| *j != i),
                                n => match n.scalar_text() {
                                    Some(t) if !t.trim().is_empty() => {
                                        if let Some(e) = mapping.iter_mut().find(|(j, _)| *j == i) {
                                            e.1 = t;
                                        }
                                    }
                                    _ => f.err(pos_of(tv), format!("`columns: {{ {k}: ... }}` must name a table column (or be null to leave the column out)")),
                                },
                            }
                        }
                    }
                    _ => f.err(pos_of(v), "`columns` must be a map { input column: table column } (null leaves a column out)"),
                }
            }
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, t) in &mapping {
                if let Some(j) = seen.insert(t.to_lowercase(), *i) {
                    let p = f.get("columns").map_or(f.pos, pos_of);
                    f.err(
                        p,
                        format!(
                            "columns \"{}\" and \"{}\" both go into table column \"{t}\"",
                            first[j].name, first[*i].name
                        ),
                    );
                }
            }
            if mapping.is_empty() {
                let p = f.pos;
                f.err(p, "no column goes into the table");
            }
            Some((
                Kind::TableDestination(Box::new(TableDest {
                    conn: conn?,
                    table: table?,
                    create,
                    truncate,
                    mapping,
                })),
                vec![],
            ))
        }
        "flat_file_destination" => {
            let file = f.req_str("file").map(|t| t.0);
            let header = f.bool("header", true);
            let delimiter = f.byte("delimiter", Some(b','), false);
            let quote = f.byte("quote", Some(b'"'), true);
            let overwrite = f.bool("overwrite", true);
            Some((
                Kind::FlatFileDestination {
                    file: file?,
                    format: CsvFormat {
                        delimiter: delimiter??,
                        quote: quote?,
                        header,
                    },
                    overwrite,
                },
                vec![],
            ))
        }
        "parquet_destination" => {
            let file = f.req_str("file").map(|t| t.0);
            let overwrite = f.bool("overwrite", true);
            Some((
                Kind::ParquetDestination {
                    file: file?,
                    overwrite,
                },
                vec![],
            ))
        }
        other => {
            let p = f.pos;
            f.err(p, format!("unknown component type \"{other}\""));
            None
        }
    }
}

/// The columns `audit` adds.
pub fn audit_cols() -> Cols {
    vec![
        Col::new("ExecutionInstanceGUID", DataType::Guid),
        Col::new("PackageName", DataType::WStr { len: None }),
        Col::new("TaskName", DataType::WStr { len: None }),
        Col::new("ExecutionStartTime", DataType::DbTimestamp),
        Col::new("MachineName", DataType::WStr { len: None }),
    ]
}

/// The op's name as written.
pub fn op_name(op: AggOp) -> &'static str {
    match op {
        AggOp::Sum => "sum",
        AggOp::Avg => "avg",
        AggOp::Min => "min",
        AggOp::Max => "max",
        AggOp::Count => "count",
        AggOp::CountDistinct => "count_distinct",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        errors: Vec<(usize, String)>,
    }

    impl Report for Collect {
        fn error_at(&mut self, pos: SourcePos, msg: String) {
            self.errors.push((pos.line, msg));
        }
        fn writable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
            match name {
                "User::N" => Some((0, DataType::I4)),
                "User::R" => Some((1, DataType::Object)),
                _ => {
                    self.error_at(pos, format!("unknown variable \"{name}\""));
                    None
                }
            }
        }
        fn db_connection(&mut self, name: &str, pos: SourcePos) -> Option<Connection> {
            self.error_at(pos, format!("unknown connection \"{name}\""));
            None
        }
        fn readable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
            self.writable_var(name, pos)
        }
        fn variables(&self) -> &dyn checkflow_expr::Scope {
            &NoVars
        }
    }

    struct NoVars;

    impl checkflow_expr::Scope for NoVars {
        fn lookup(&self, _: &checkflow_expr::VarRef) -> Option<checkflow_expr::VarInfo> {
            None
        }
    }

    /// Validates the components written under `components:` (line 6 on).
    fn check(components: &str) -> (Option<FlowSpec>, Vec<(usize, String)>) {
        let text = format!(
            "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: t\ntasks:\n  - name: F\n    type: data_flow\n    components:\n{components}"
        );
        let pkg = checkflow_model::parse(std::path::Path::new("p.yaml"), &text).expect("parses");
        let def = &pkg.tasks[0].value;
        let comps = def.flow_def().components.as_ref().expect("components");
        let mut c = Collect::default();
        let spec = validate(comps, None, &mut c);
        (spec, c.errors)
    }

    const SRC: &str = "      - { name: S, type: flat_file_source, file: in.csv, columns: [a, { name: n, type: DT_I4 }] }\n";

    #[test]
    fn a_valid_flow_gets_its_columns_and_order() {
        let (spec, errs) = check(&format!(
            "{SRC}      - {{ name: G, type: aggregate, input: S, group_by: [a], columns: [{{ name: t, op: sum, of: n }}, {{ name: c, op: count }}] }}\n      - {{ name: O, type: flat_file_destination, input: G, file: o.csv }}\n"
        ));
        assert!(errs.is_empty(), "{errs:?}");
        let spec = spec.expect("valid");
        assert_eq!(spec.order, vec![0, 1, 2]);
        let g = &spec.comps[1].outputs[0].cols;
        assert_eq!(
            g.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
            ["a", "t", "c"]
        );
        assert_eq!(g[1].ty, DataType::I8);
        assert_eq!(spec.memory_limit, DEFAULT_MEMORY);
    }

    #[test]
    fn problems_name_the_line_component_and_column() {
        let (spec, errs) = check(&format!(
            "{SRC}      - {{ name: O, type: sort, input: S, by: [zz] }}\n      - {{ name: D, type: flat_file_destination, input: O, file: o.csv }}\n"
        ));
        assert!(spec.is_none());
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, 8);
        assert!(
            errs[0]
                .1
                .contains("component \"O\": unknown column \"zz\" in `by`"),
            "{errs:?}"
        );
    }

    #[test]
    fn cycles_and_unknown_inputs_are_reported() {
        let (_, errs) = check(&format!(
            "{SRC}      - {{ name: A, type: union_all, inputs: [S, B] }}\n      - {{ name: B, type: multicast, input: A }}\n      - {{ name: D, type: flat_file_destination, input: B, file: o.csv }}\n"
        ));
        assert!(
            errs.iter().any(|e| e.1.contains("form a cycle")),
            "{errs:?}"
        );
        let (_, errs) = check(&format!(
            "{SRC}      - {{ name: D, type: flat_file_destination, input: Q, file: o.csv }}\n"
        ));
        assert!(
            errs.iter()
                .any(|e| e.1.contains("input \"Q\" is not a component")),
            "{errs:?}"
        );
    }

    #[test]
    fn redirect_outputs_must_be_read() {
        let (_, errs) = check(
            "      - { name: S, type: flat_file_source, file: in.csv, columns: [a], on_error: redirect }\n      - { name: D, type: flat_file_destination, input: S, file: o.csv }\n",
        );
        assert!(
            errs.iter().any(|e| e.1.contains("\"S.error\" is not read")),
            "{errs:?}"
        );
    }

    #[test]
    fn sizes_read_with_units() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("100MB"), Some(100_000_000));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("0"), None);
    }
}
