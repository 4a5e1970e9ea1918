//! The Execute SQL task (`type: sql`): one or more statements on a `sqlite` or
//! `postgres` connection, with parameters from variables and an optional
//! result in variables.
//!
//! - `params: [User::A, ...]` are bound by position in every statement: `?`
//!   (or `?1`, `?2`) in SQLite, `$1`, `$2` in PostgreSQL. A statement takes as
//!   many as it has placeholders, from the first.
//! - `result: none` (default) | `single_row` (the first row of the last
//!   statement, column by column into `result_vars`) | `full` (every row of the
//!   last statement, as a recordset `{"columns": [...], "rows": [[...]]}` in
//!   the object variable `result_var`, which `foreach rows:` iterates).
//! - Several statements run in one transaction (all or nothing); one runs on
//!   its own. Inside a transacted container the task joins the container's
//!   transaction and commits nothing itself.
//! - A timeout or a stop interrupts the running statement.

use crate::db::{self, Connection, Rows, Watch, first_line, split_statements};
use checkflow_expr::{DataType, Value};
use checkflow_model::{TaskDef, pos_of};
use checkflow_plan::{Action, BuildCx, RunCx, TaskError, TaskType, VarValue};
use std::sync::Arc;

pub(crate) struct SqlType;

impl TaskType for SqlType {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn fields(&self) -> &'static [&'static str] {
        &[
            "connection",
            "sql",
            "params",
            "result",
            "result_vars",
            "result_var",
        ]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let data = def.data();
        let conn = connection(def, cx, "sql")?;
        let sql = match &data.sql {
            Some(s) if !s.trim().is_empty() => s.clone(),
            Some(_) => {
                cx.error("`sql` is empty");
                return None;
            }
            None => {
                cx.missing("sql", "sql");
                return None;
            }
        };
        let pos = cx.pos();
        let mut ok = true;
        let mut params = Vec::new();
        for p in data.params.iter().flatten() {
            match cx.readable_var(p, pos) {
                Some((_, DataType::Object)) => {
                    cx.error(format!(
                        "parameter {p} is an object variable; only scalar variables can be parameters"
                    ));
                    ok = false;
                }
                Some((slot, _)) => params.push((p.clone(), slot)),
                None => ok = false,
            }
        }
        let result = match data.result.as_deref().unwrap_or("none") {
            "none" => {
                if data.result_vars.is_some() || data.result_var.is_some() {
                    cx.error(
                        "`result_vars` / `result_var` need `result: single_row` / `result: full`",
                    );
                    ok = false;
                }
                ResultKind::None
            }
            "single_row" => {
                if data.result_var.is_some() {
                    cx.error("`result: single_row` fills `result_vars` (a list); `result_var` is for `result: full`");
                    ok = false;
                }
                let names = data.result_vars.clone().unwrap_or_default();
                if names.is_empty() {
                    cx.error("`result: single_row` needs `result_vars: [User::A, ...]` (one per column, in order)");
                    ok = false;
                }
                let mut vars = Vec::new();
                for n in names {
                    match cx.writable_var(&n, pos) {
                        Some((_, DataType::Object)) => {
                            cx.error(format!(
                                "variable {n} is an object; `result: single_row` fills scalar variables (use `result: full` for a recordset)"
                            ));
                            ok = false;
                        }
                        Some((slot, ty)) => vars.push((n, slot, ty)),
                        None => ok = false,
                    }
                }
                ResultKind::SingleRow(vars)
            }
            "full" => {
                if data.result_vars.is_some() {
                    cx.error("`result: full` fills `result_var` (one object variable); `result_vars` is for `result: single_row`");
                    ok = false;
                }
                match &data.result_var {
                    None => {
                        cx.error("`result: full` needs `result_var` (an object variable)");
                        ok = false;
                        ResultKind::None
                    }
                    Some(n) => match cx.writable_var(n, pos) {
                        Some((slot, DataType::Object)) => ResultKind::Full(slot),
                        Some((_, ty)) => {
                            cx.error(format!(
                                "variable {n} is {}; `result: full` needs an object variable",
                                ty.ssis_name()
                            ));
                            ok = false;
                            ResultKind::None
                        }
                        None => {
                            ok = false;
                            ResultKind::None
                        }
                    },
                }
            }
            other => {
                cx.error(format!(
                    "unknown `result: {other}` (expected none, single_row or full)"
                ));
                return None;
            }
        };
        ok.then(|| {
            Arc::new(SqlAction {
                conn,
                sql,
                params,
                result,
            }) as Arc<dyn Action>
        })
    }
}

/// The task's connection, checked: it exists and is sqlite or postgres.
pub(crate) fn connection(def: &TaskDef, cx: &mut BuildCx<'_>, kind: &str) -> Option<Connection> {
    let Some(name) = &def.data().connection else {
        cx.missing("connection", kind);
        return None;
    };
    let c = cx.connection(&name.value, &["sqlite", "postgres"])?;
    match Connection::from_def(&name.value, &c, cx.package_dir()) {
        Ok(c) => Some(c),
        Err(e) => {
            cx.error_at(pos_of(name), e);
            None
        }
    }
}

enum ResultKind {
    None,
    /// Variable name, slot, type, per column.
    SingleRow(Vec<(String, u32, DataType)>),
    /// The object variable's slot.
    Full(u32),
}

struct SqlAction {
    conn: Connection,
    sql: String,
    params: Vec<(String, u32)>,
    result: ResultKind,
}

impl SqlAction {
    fn param_values(&self, cx: &dyn RunCx) -> Result<Vec<Value>, TaskError> {
        self.params
            .iter()
            .map(|(name, slot)| match cx.get(*slot) {
                VarValue::Scalar(v) => Ok(v),
                VarValue::Object(_) => Err(TaskError::new(format!(
                    "parameter {name} holds an object; only scalars can be parameters"
                ))),
            })
            .collect()
    }
}

impl Action for SqlAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let sql = cx.prop_string("sql", &self.sql);
        let statements = split_statements(&sql);
        if statements.is_empty() {
            return Err(TaskError::new("`sql` holds no statement"));
        }
        let params = self.param_values(cx)?;
        let token = cx.cancel_token().clone();
        let conn = &self.conn;
        let rows = db::with_db(&*cx, conn, |db, mode| {
            let watch = Watch::start(&token, db.interrupter());
            // Several statements are one unit of work unless the container's
            // transaction already makes them one.
            let own_tx = mode == db::Mode::Own && statements.len() > 1;
            if own_tx {
                db.begin().map_err(|e| {
                    TaskError::new(format!(
                        "cannot begin a transaction on {}: {e}",
                        conn.describe()
                    ))
                })?;
            }
            let mut last = Rows::default();
            for (i, stmt) in statements.iter().enumerate() {
                let want_rows =
                    i + 1 == statements.len() && !matches!(self.result, ResultKind::None);
                match db.statement(stmt, &params, want_rows) {
                    Ok(r) => last = r,
                    Err(e) => {
                        if own_tx {
                            let _ = db.rollback();
                        }
                        if watch.fired() || token.is_cancelled() {
                            return Err(TaskError::new(format!(
                                "statement {} of {} on {} was cancelled (`{}`)",
                                i + 1,
                                statements.len(),
                                conn.describe(),
                                first_line(stmt)
                            )));
                        }
                        let which = if statements.len() > 1 {
                            format!("statement {} of {}", i + 1, statements.len())
                        } else {
                            "the statement".to_string()
                        };
                        return Err(TaskError::new(format!(
                            "{which} failed on {}: {e} (`{}`)",
                            conn.describe(),
                            first_line(stmt)
                        )));
                    }
                }
            }
            if own_tx {
                db.commit().map_err(|e| {
                    TaskError::new(format!("COMMIT failed on {}: {e}", conn.describe()))
                })?;
            }
            Ok(last)
        })?;
        let last_stmt = statements.last().map(|s| first_line(s)).unwrap_or_default();
        match &self.result {
            ResultKind::None => Ok(()),
            ResultKind::SingleRow(vars) => {
                if rows.columns.is_empty() {
                    return Err(TaskError::new(format!(
                        "`result: single_row` needs the last statement to return rows; `{last_stmt}` returns none"
                    )));
                }
                let Some(row) = rows.rows.first() else {
                    return Err(TaskError::new(format!(
                        "`result: single_row`: the query returned no row (`{last_stmt}`)"
                    )));
                };
                if row.len() < vars.len() {
                    return Err(TaskError::new(format!(
                        "`result: single_row`: the query returned {} column(s) but `result_vars` names {} variable(s) (`{last_stmt}`)",
                        row.len(),
                        vars.len()
                    )));
                }
                let mut values = Vec::with_capacity(vars.len());
                for (i, ((name, slot, ty), cell)) in vars.iter().zip(row).enumerate() {
                    let v = cell.to_value(ty).map_err(|e| {
                        TaskError::new(format!(
                            "cannot assign column {} (\"{}\") to variable {name} ({}): {e}",
                            i + 1,
                            rows.columns[i],
                            ty.ssis_name()
                        ))
                    })?;
                    values.push((*slot, v));
                }
                for (slot, v) in values {
                    cx.set(slot, VarValue::Scalar(v))?;
                }
                Ok(())
            }
            ResultKind::Full(slot) => {
                if rows.columns.is_empty() {
                    return Err(TaskError::new(format!(
                        "`result: full` needs the last statement to return rows; `{last_stmt}` returns none"
                    )));
                }
                cx.set(*slot, VarValue::Object(rows.to_recordset()))
            }
        }
    }
}
