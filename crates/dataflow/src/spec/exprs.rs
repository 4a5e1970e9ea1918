//! The components whose settings are expressions (derived column,
//! conditional split) and the query source: read from their YAML maps and
//! compiled against the columns of their input, so that a bad expression or
//! column fails validation with its line.

use super::{
    Fields, Kind, OnError, Output, Report, column_type, list_cols, out, read_columns, with_errors,
};
use crate::types::{Col, Cols, arrow_type};
use crate::vexpr::{FlowColumns, VectorExpr};
use checkflow_expr::DataType;
use checkflow_model::{Node, SourcePos, pos_of};

/// One column a derived column computes.
#[derive(Clone, Debug)]
pub struct Derived {
    /// The column's name.
    pub name: String,
    /// The expression, with the cast to the column's type when it has one.
    pub expr: VectorExpr,
    /// Where the result goes in the output: an input column it replaces, or
    /// a new column after them.
    pub dst: usize,
    /// The declared length a text result must fit (checked per row).
    pub max_len: Option<u32>,
}

/// One case of a conditional split: the rows its condition is TRUE for go to
/// the output of the same index.
#[derive(Clone, Debug)]
pub struct Case {
    pub output: String,
    pub expr: VectorExpr,
}

/// The flow columns of a path, for compiling expressions over it.
pub fn flow_columns(cols: &Cols) -> FlowColumns {
    FlowColumns::new(cols.iter().map(|c| (c.name.clone(), c.ty.clone())))
}

/// How a cast to `ty` is written in an expression: `(DT_NUMERIC, 18, 2)`.
fn cast_text(ty: &DataType) -> String {
    let params = match ty {
        DataType::Numeric { precision, scale } => format!(", {precision}, {scale}"),
        DataType::Decimal { scale } => format!(", {scale}"),
        DataType::WStr { len } => format!(", {}", len.unwrap_or(4000)),
        DataType::Str { len, codepage } => format!(", {}, {codepage}", len.unwrap_or(8000)),
        DataType::Bytes { len } => format!(", {}", len.unwrap_or(8000)),
        DataType::Text { codepage } => format!(", {codepage}"),
        DataType::DbTime2 { scale } | DataType::DbTimestamp2 { scale } => format!(", {scale}"),
        _ => String::new(),
    };
    format!("({}{params})", ty.ssis_name())
}

fn is_text(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::WStr { .. } | DataType::Str { .. } | DataType::Text { .. } | DataType::NText
    )
}

/// Whether a value of `from` is already held as `to` is (the same kind; text
/// lengths are checked per row, not cast).
fn same_kind(from: &DataType, to: &DataType) -> bool {
    (is_text(from) && is_text(to)) || crate::types::unbounded(from) == crate::types::unbounded(to)
}

/// The declared length of a text type.
fn text_len(ty: &DataType) -> Option<u32> {
    match ty {
        DataType::WStr { len } | DataType::Str { len, .. } => *len,
        _ => None,
    }
}

/// Compiles `src` over `cols`, reporting a bad expression at `pos`.
fn compile(
    f: &mut Fields<'_>,
    src: &str,
    cols: &FlowColumns,
    rep: &mut dyn Report,
    what: &str,
    pos: SourcePos,
) -> Option<VectorExpr> {
    match VectorExpr::compile(src, cols, rep.variables()) {
        Ok(e) => Some(e),
        Err(e) => {
            f.err(pos, format!("{what}: bad expression \"{src}\": {e}"));
            None
        }
    }
}

/// A `derived_column`: `columns: [{ name, expr, type?, replace? }]`.
pub(super) fn derived_column(
    f: &mut Fields<'_>,
    first: &Cols,
    rep: &mut dyn Report,
) -> Option<(Kind, Vec<Output>)> {
    let on_error = f.disposition("on_error");
    let on_truncation = f.disposition("on_truncation");
    let Some(items) = f.list("columns") else {
        if f.get("columns").is_none() {
            let p = f.pos;
            f.err(
                p,
                "a derived_column needs `columns: [{ name, expr, type?, replace? }]`",
            );
        }
        return None;
    };
    let flow = flow_columns(first);
    let mut cols = first.clone();
    let mut derived = Vec::new();
    for it in items {
        let p = pos_of(it);
        if let Node::Map(m) = &it.value
            && let Some((k, v)) = m
                .iter()
                .find(|(k, _)| !["name", "expr", "type", "replace"].contains(&k.as_str()))
        {
            f.err(
                pos_of(v),
                format!(
                    "a column of a derived_column takes `name`, `expr`, `type` and `replace`, not `{k}`"
                ),
            );
            continue;
        }
        let name = it.value.get("name").and_then(|n| n.value.scalar_text());
        let expr = it.value.get("expr");
        let (Some(name), Some(expr)) = (name.filter(|n| !n.trim().is_empty()), expr) else {
            f.err(p, "each column of a derived_column needs `name` and `expr`");
            continue;
        };
        let epos = pos_of(expr);
        let Some(src) = expr.value.scalar_text() else {
            f.err(epos, format!("column \"{name}\": `expr` must be text"));
            continue;
        };
        let replace = match it.value.get("replace").map(|r| &r.value) {
            None => false,
            Some(Node::Bool(b)) => *b,
            Some(other) => {
                f.err(
                    p,
                    format!(
                        "column \"{name}\": `replace` must be true or false, not {}",
                        other.kind()
                    ),
                );
                continue;
            }
        };
        let declared = match it.value.get("type") {
            None => None,
            Some(t) => match column_type(f, t, &name) {
                Some(ty) => Some(ty),
                None => continue,
            },
        };
        let existing = cols.iter().position(|c| c.name == name);
        let dst = match (replace, existing) {
            (true, Some(i)) if i < first.len() => i,
            (true, _) => {
                let hint = checkflow_model::closest(&name, first.iter().map(|c| c.name.as_str()))
                    .map(|c| format!(" (did you mean \"{c}\"?)"))
                    .unwrap_or_default();
                f.err(
                    p,
                    format!(
                        "column \"{name}\" has `replace: true`, but the input has no such column{hint}; it has {}",
                        list_cols(first)
                    ),
                );
                continue;
            }
            (false, Some(_)) => {
                f.err(
                    p,
                    format!(
                        "column \"{name}\" already exists (add `replace: true` to replace the input's column, or choose another name)"
                    ),
                );
                continue;
            }
            (false, None) => cols.len(),
        };
        let what = format!("column \"{name}\"");
        let Some(compiled) = compile(f, &src, &flow, rep, &what, epos) else {
            continue;
        };
        let result = compiled.result_type().clone();
        let target = match (&declared, replace) {
            (Some(t), _) => t.clone(),
            (None, true) => first[dst].ty.clone(),
            (None, false) => result.clone(),
        };
        if let Err(e) = arrow_type(&target) {
            f.err(epos, format!("{what}: {e}"));
            continue;
        }
        let expr = if same_kind(&result, &target) {
            compiled
        } else {
            // The cast to the column's type, as SSIS puts the result into
            // the column: a value that does not convert is a row error.
            let unbounded = match &target {
                DataType::WStr { .. } => DataType::WStr { len: Some(4000) },
                t => t.clone(),
            };
            let wrapped = format!("{}({src})", cast_text(&unbounded));
            match VectorExpr::compile(&wrapped, &flow, rep.variables()) {
                Ok(e) => e,
                Err(e) => {
                    f.err(
                        epos,
                        format!(
                            "{what}: the expression gives {result}, which cannot be converted to the column's type {target}: {e}"
                        ),
                    );
                    continue;
                }
            }
        };
        let max_len =
            text_len(&target).filter(|n| text_len(expr.result_type()).is_none_or(|r| r > *n));
        let col = Col::new(name.clone(), target);
        if dst < cols.len() {
            cols[dst] = col;
        } else {
            cols.push(col);
        }
        derived.push(Derived {
            name,
            expr,
            dst,
            max_len,
        });
    }
    if derived.is_empty() && f.ok {
        let p = f.get("columns").map_or(f.pos, pos_of);
        f.err(p, "`columns` is empty");
    }
    let mut outs = vec![out("output", cols, true)];
    if on_error == OnError::Redirect || on_truncation == OnError::Redirect {
        outs.push(out("error", with_errors(first.clone()), true));
    }
    Some((
        Kind::DerivedColumn {
            columns: derived,
            on_error,
            on_truncation,
        },
        outs,
    ))
}

/// A `conditional_split`: `outputs: [{ name, expr }]`, `default`, `on_error`.
pub(super) fn conditional_split(
    f: &mut Fields<'_>,
    first: &Cols,
    rep: &mut dyn Report,
) -> Option<(Kind, Vec<Output>)> {
    let on_error = f.disposition("on_error");
    let default = f
        .str("default")
        .map(|(d, _)| d)
        .unwrap_or_else(|| "default".to_string());
    if default == "error" {
        let p = f.get("default").map_or(f.pos, pos_of);
        f.err(
            p,
            "`default: error` names the error output; give the default output another name",
        );
    }
    let Some(items) = f.list("outputs") else {
        if f.get("outputs").is_none() {
            let p = f.pos;
            f.err(
                p,
                "a conditional_split needs `outputs: [{ name, expr }]` (the first true condition wins)",
            );
        }
        return None;
    };
    let flow = flow_columns(first);
    let mut cases: Vec<Case> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for it in items {
        let p = pos_of(it);
        if let Node::Map(m) = &it.value
            && let Some((k, v)) = m
                .iter()
                .find(|(k, _)| !["name", "expr"].contains(&k.as_str()))
        {
            f.err(
                pos_of(v),
                format!("an output of a conditional_split takes `name` and `expr`, not `{k}`"),
            );
            continue;
        }
        let name = it.value.get("name").and_then(|n| n.value.scalar_text());
        let expr = it.value.get("expr");
        let (Some(name), Some(expr)) = (name.filter(|n| !n.trim().is_empty()), expr) else {
            f.err(
                p,
                "each output of a conditional_split needs `name` and `expr`",
            );
            continue;
        };
        if names.contains(&name) || name == default || name == "error" {
            f.err(
                p,
                format!(
                    "output \"{name}\" is named twice (the outputs, `default` and `error` need distinct names)"
                ),
            );
            continue;
        }
        names.push(name.clone());
        let epos = pos_of(expr);
        let Some(src) = expr.value.scalar_text() else {
            f.err(epos, format!("output \"{name}\": `expr` must be text"));
            continue;
        };
        let what = format!("output \"{name}\"");
        let Some(e) = compile(f, &src, &flow, rep, &what, epos) else {
            continue;
        };
        if e.result_type() != &DataType::Bool {
            f.err(
                epos,
                format!(
                    "{what}: the condition \"{src}\" gives {}, but a condition must give DT_BOOL (write a comparison such as `amount > 0`)",
                    e.result_type()
                ),
            );
            continue;
        }
        cases.push(Case {
            output: name,
            expr: e,
        });
    }
    if cases.is_empty() && f.ok {
        let p = f.get("outputs").map_or(f.pos, pos_of);
        f.err(p, "`outputs` is empty");
    }
    let mut outs: Vec<Output> = cases
        .iter()
        .map(|c| out(&c.output, first.clone(), false))
        .collect();
    outs.push(out(&default, first.clone(), false));
    if on_error == OnError::Redirect {
        outs.push(out("error", with_errors(first.clone()), true));
    }
    Some((Kind::ConditionalSplit { cases, on_error }, outs))
}

/// A `sql_source`: `connection`, `query` or `table`, `params`, `columns`.
pub(super) fn sql_source(f: &mut Fields<'_>, rep: &mut dyn Report) -> Option<(Kind, Vec<Output>)> {
    let conn = f
        .req_str("connection")
        .and_then(|(c, p)| rep.db_connection(&c, p));
    let query = match (f.str("query"), f.str("table")) {
        (Some((q, _)), None) => Some(q),
        (None, Some((t, _))) => Some(format!("SELECT * FROM {}", checkflow_tasks::db::ident(&t))),
        (Some(_), Some((_, p))) => {
            f.err(p, "give `query` or `table`, not both");
            None
        }
        (None, None) => {
            let p = f.pos;
            f.err(p, "a sql_source needs `query` or `table`");
            None
        }
    };
    let mut params = Vec::new();
    if let Some(items) = f.list("params") {
        for it in items {
            match it.value.scalar_text() {
                Some(v) => {
                    if let Some((slot, _)) = rep.readable_var(&v, pos_of(it)) {
                        params.push(slot);
                    } else {
                        f.ok = false;
                    }
                }
                None => f.err(pos_of(it), "each of `params` must be a variable name"),
            }
        }
    }
    let Some(_) = f.get("columns") else {
        let p = f.pos;
        f.err(
            p,
            "a sql_source needs `columns` (the query's columns to read, each a name or { name, type }; untyped ones are DT_WSTR)",
        );
        return None;
    };
    let cols = read_columns(f, "columns", Some(DataType::WStr { len: None }))?;
    Some((
        Kind::SqlSource {
            conn: conn?,
            query: query?,
            params,
        },
        vec![out("output", cols, true)],
    ))
}
