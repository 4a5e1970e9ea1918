//! How a task definition is read: every field flat, as a package and the
//! cache write it. [`TaskDef`] keeps the fields of each task type in a box of
//! their own, so a definition takes a fraction of the memory; the two are
//! converted once, as each definition is read.

use crate::defs::*;
use crate::spanned::Spanned;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A [`TaskDef`] as written (see its fields for what each one means).
#[derive(Deserialize)]
#[serde(rename = "TaskDef", deny_unknown_fields)]
pub(crate) struct TaskWire {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    after: Option<Spanned<Vec<AfterDef>>>,
    #[serde(default)]
    after_logic: Option<Logic>,
    #[serde(default)]
    disabled: Option<bool>,
    #[serde(default)]
    fail_package_on_failure: Option<bool>,
    #[serde(default)]
    fail_parent_on_failure: Option<bool>,
    #[serde(default)]
    max_errors: Option<Spanned<i64>>,
    #[serde(default)]
    force_result: Option<ForceResult>,
    #[serde(default)]
    transaction: Option<TransactionOption>,
    #[serde(default)]
    restart_unit: Option<bool>,
    #[serde(default)]
    retries: Option<Spanned<i64>>,
    #[serde(default)]
    retry_delay: Option<Spanned<String>>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    expressions: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    event_handlers: Option<Spanned<Box<EventHandlersDef>>>,
    #[serde(default)]
    tasks: Option<Vec<Spanned<Box<TaskDef>>>>,
    #[serde(default)]
    flow: Option<Flow>,
    #[serde(default)]
    init: Option<Spanned<String>>,
    #[serde(default)]
    eval: Option<Spanned<String>>,
    #[serde(default)]
    assign: Option<Spanned<String>>,
    #[serde(default)]
    items: Option<Spanned<Vec<serde_json::Value>>>,
    #[serde(default)]
    files: Option<Spanned<FilesDef>>,
    #[serde(default)]
    rows: Option<Spanned<String>>,
    #[serde(default)]
    map: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    checkpoint_iterations: Option<bool>,
    #[serde(default)]
    command: Option<Spanned<String>>,
    #[serde(default)]
    program: Option<Spanned<String>>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    cwd: Option<String>,
    #[serde(default)]
    env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    success_codes: Option<Vec<i32>>,
    #[serde(default)]
    stdout_var: Option<Spanned<String>>,
    #[serde(default)]
    stderr_var: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default)]
    connection: Option<Spanned<String>>,
    #[serde(default)]
    sql: Option<String>,
    #[serde(default)]
    params: Option<Vec<String>>,
    #[serde(default)]
    result: Option<String>,
    #[serde(default)]
    result_vars: Option<Vec<String>>,
    #[serde(default)]
    result_var: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    header: Option<bool>,
    #[serde(default)]
    quote: Option<String>,
    #[serde(default)]
    null: Option<String>,
    #[serde(default)]
    columns: Option<Vec<String>>,
    #[serde(default)]
    truncate: Option<bool>,
    #[serde(default)]
    batch_size: Option<u64>,
    #[serde(default)]
    resume: Option<bool>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    op: Option<Spanned<String>>,
    #[serde(default)]
    from: Option<Spanned<String>>,
    #[serde(default)]
    to: Option<Spanned<String>>,
    #[serde(default)]
    overwrite: Option<bool>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    read_vars: Option<Vec<String>>,
    #[serde(default)]
    write_vars: Option<Vec<String>>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    bind: Option<BTreeMap<String, String>>,
    #[serde(default)]
    components: Option<Spanned<Vec<Spanned<crate::Node>>>>,
    #[serde(default)]
    memory_limit: Option<Spanned<String>>,
    #[serde(default)]
    commit_rows: Option<Spanned<u64>>,
}

impl From<TaskWire> for TaskDef {
    fn from(w: TaskWire) -> TaskDef {
        let loops = LoopFields {
            init: w.init,
            eval: w.eval,
            assign: w.assign,
            items: w.items,
            files: w.files,
            rows: w.rows,
            map: w.map,
            checkpoint_iterations: w.checkpoint_iterations,
        };
        let process = ProcessFields {
            command: w.command,
            program: w.program,
            args: w.args,
            cwd: w.cwd,
            env: w.env,
            success_codes: w.success_codes,
            stdout_var: w.stdout_var,
            stderr_var: w.stderr_var,
        };
        let data = DataFields {
            connection: w.connection,
            sql: w.sql,
            params: w.params,
            result: w.result,
            result_vars: w.result_vars,
            result_var: w.result_var,
            table: w.table,
            delimiter: w.delimiter,
            header: w.header,
            quote: w.quote,
            null: w.null,
            columns: w.columns,
            truncate: w.truncate,
            batch_size: w.batch_size,
            resume: w.resume,
            url: w.url,
            sha256: w.sha256,
        };
        let file_op = FileOpFields {
            op: w.op,
            from: w.from,
            to: w.to,
            overwrite: w.overwrite,
        };
        let script = ScriptFields {
            code: w.code,
            read_vars: w.read_vars,
            write_vars: w.write_vars,
        };
        let child = ChildFields {
            path: w.path,
            bind: w.bind,
        };
        let flow_def = DataFlowFields {
            components: w.components,
            memory_limit: w.memory_limit,
            commit_rows: w.commit_rows,
        };
        TaskDef {
            name: w.name,
            kind: w.kind,
            description: w.description,
            after: w.after,
            after_logic: w.after_logic,
            disabled: w.disabled,
            fail_package_on_failure: w.fail_package_on_failure,
            fail_parent_on_failure: w.fail_parent_on_failure,
            max_errors: w.max_errors,
            force_result: w.force_result,
            transaction: w.transaction,
            restart_unit: w.restart_unit,
            retries: w.retries,
            retry_delay: w.retry_delay,
            timeout: w.timeout,
            expressions: w.expressions,
            event_handlers: w.event_handlers,
            tasks: w.tasks,
            flow: w.flow,
            expr: w.expr,
            file: w.file,
            loops: (!loops.is_empty()).then(|| Box::new(loops)),
            process: (!process.is_empty()).then(|| Box::new(process)),
            data: (!data.is_empty()).then(|| Box::new(data)),
            file_op: (!file_op.is_empty()).then(|| Box::new(file_op)),
            script: (!script.is_empty()).then(|| Box::new(script)),
            child: (!child.is_empty()).then(|| Box::new(child)),
            flow_def: (!flow_def.is_empty()).then(|| Box::new(flow_def)),
        }
    }
}
