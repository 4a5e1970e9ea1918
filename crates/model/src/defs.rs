//! The `*Def` types: a package exactly as written in YAML (docs/semantics.md §1).
//!
//! Every struct denies unknown keys, so a typo is a load error with its line and
//! column. Task-specific fields are read flat (`wire.rs`) and kept in a box per
//! task type on [`TaskDef`]; which of them a task type accepts is checked by
//! `checkflow-plan`, which reports the key's position.

use crate::spanned::Spanned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole package file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PackageDef {
    /// The package id (a UUID); a checkpoint must carry the same one.
    pub id: Spanned<String>,
    /// The package name (`System::PackageName`).
    pub name: Spanned<String>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Checkpoint settings.
    #[serde(default)]
    pub checkpoint: Option<Spanned<CheckpointDef>>,
    /// MaxConcurrentExecutables.
    #[serde(default)]
    pub max_concurrent: Option<Spanned<i64>>,
    /// MaximumErrorCount of the package.
    #[serde(default)]
    pub max_errors: Option<Spanned<i64>>,
    /// How untied children run.
    #[serde(default)]
    pub flow: Option<Flow>,
    /// Not applicable to the package: a load error when true (as in SSIS 2005 SP2).
    #[serde(default)]
    pub fail_package_on_failure: Option<Spanned<bool>>,
    /// Variables by name (`Name` or `User::Name`).
    #[serde(default)]
    pub variables: BTreeMap<String, Spanned<VariableDef>>,
    /// Connections by name.
    #[serde(default)]
    pub connections: BTreeMap<String, Spanned<ConnectionDef>>,
    /// How a worker restarts a run that failed with a restart point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Spanned<RestartDef>>,
    /// The package's executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Spanned<Box<TaskDef>>>,
    /// Event handlers of the package (for its own events and, as they
    /// propagate, every executable's in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_handlers: Option<Spanned<Box<EventHandlersDef>>>,
}

/// `event_handlers:` on the package or an executable: for each event, the
/// executables that run when it fires (a small control flow of their own).
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct EventHandlersDef {
    /// OnError: an executable raised an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// OnTaskFailed: an executable failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_task_failed: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// OnPreExecute: an executable is about to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pre_execute: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// OnPostExecute: an executable has finished running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_post_execute: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// OnWarning: an executable logged a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_warning: Option<Vec<Spanned<Box<TaskDef>>>>,
}

/// The executables of one event handler.
pub type HandlerTasks = [Spanned<Box<TaskDef>>];

impl EventHandlersDef {
    /// Each event's key and its handler, in the order above.
    pub fn lists(&self) -> [(&'static str, Option<&HandlerTasks>); 5] {
        [
            ("on_error", self.on_error.as_deref()),
            ("on_task_failed", self.on_task_failed.as_deref()),
            ("on_pre_execute", self.on_pre_execute.as_deref()),
            ("on_post_execute", self.on_post_execute.as_deref()),
            ("on_warning", self.on_warning.as_deref()),
        ]
    }
}

/// `checkpoint:` settings (CheckpointFileName, CheckpointUsage, SaveCheckpoints).
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct CheckpointDef {
    /// A literal path.
    #[serde(default)]
    pub file: Option<Spanned<String>>,
    /// An expression giving the path.
    #[serde(default)]
    pub file_expr: Option<Spanned<String>>,
    /// CheckpointUsage.
    #[serde(default)]
    pub usage: Option<Usage>,
    /// SaveCheckpoints.
    #[serde(default)]
    pub save: Option<bool>,
    /// A `postgres` connection whose database is a shared checkpoint store
    /// (instead of `file` / `file_expr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<Spanned<String>>,
    /// The checkpoint's name in the store (default: the package id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Spanned<String>>,
    /// An expression giving the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_expr: Option<Spanned<String>>,
    /// How long a run holds the store's lease on the key without renewing it
    /// (e.g. `15s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Spanned<String>>,
}

/// `restart:` on the package: how a worker restarts a run that failed with a
/// restart point.
#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RestartDef {
    /// How many times the run is queued again at most.
    #[serde(default)]
    pub attempts: Option<Spanned<i64>>,
    /// How long after the failure (e.g. `1m`).
    #[serde(default)]
    pub delay: Option<Spanned<String>>,
    /// The delay is multiplied by this for every restart before.
    #[serde(default)]
    pub backoff: Option<Spanned<f64>>,
}

/// CheckpointUsage.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// The file is not read.
    #[default]
    Never,
    /// Read when it exists.
    IfExists,
    /// Must exist.
    Always,
}

/// How the children of a container without `after` run.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    /// Chained in order on success.
    #[default]
    Sequence,
    /// All at once.
    Parallel,
}

/// A variable declaration.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    /// `boolean`, `int32`, `int64`, `double`, `decimal`, `string`, `datetime`, `object`.
    #[serde(rename = "type")]
    pub ty: Spanned<String>,
    /// The initial value. For a `string` or `decimal` variable, a plain
    /// scalar that YAML reads as a number (`1.10`, `0x1F`) is kept as written
    /// (see `crate::parse`).
    #[serde(default)]
    pub value: Option<Spanned<serde_json::Value>>,
    /// EvaluateAsExpression: the value is this expression, evaluated when read.
    #[serde(default)]
    pub expr: Option<Spanned<String>>,
    /// Bound from this environment variable (configuration).
    #[serde(default)]
    pub env: Option<String>,
    /// Never written in clear to a checkpoint, masked in logs.
    #[serde(default)]
    pub sensitive: bool,
    /// Tasks may not assign it.
    #[serde(default)]
    pub read_only: bool,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// A connection manager.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConnectionDef {
    /// `sqlite`, `postgres`, `ftp`, `http`.
    pub kind: Spanned<String>,
    /// A file path (sqlite).
    #[serde(default)]
    pub path: Option<String>,
    /// A connection URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable that holds the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// Host name.
    #[serde(default)]
    pub host: Option<String>,
    /// Port.
    #[serde(default)]
    pub port: Option<u16>,
    /// User name.
    #[serde(default)]
    pub user: Option<String>,
    /// The environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// One entry of `after:`: a sibling's name, or a full constraint.
#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum AfterDef {
    /// `- Stage`: Stage succeeded.
    Name(String),
    /// `- { task: Stage, on: failure, expr: ... }`.
    Full(ConstraintDef),
}

impl<'de> Deserialize<'de> for AfterDef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = AfterDef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sibling's name or a map { task, on, expr }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AfterDef, E> {
                Ok(AfterDef::Name(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<AfterDef, A::Error> {
                ConstraintDef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(AfterDef::Full)
            }
        }
        d.deserialize_any(V)
    }
}

/// A precedence constraint written as a map.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConstraintDef {
    /// The sibling that must finish first.
    pub task: String,
    /// The result it must have.
    #[serde(default)]
    pub on: On,
    /// A boolean expression that must also hold.
    #[serde(default)]
    pub expr: Option<String>,
}

/// The result a constraint waits for.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum On {
    /// The predecessor succeeded.
    #[default]
    Success,
    /// The predecessor failed.
    Failure,
    /// The predecessor finished either way.
    Completion,
}

/// How several incoming constraints combine.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Logic {
    /// All must hold.
    #[default]
    And,
    /// One suffices.
    Or,
}

/// ForceExecutionResult.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ForceResult {
    /// Always success.
    Success,
    /// Always failure.
    Failure,
    /// Always completion.
    Completion,
}

/// TransactionOption.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransactionOption {
    /// Starts a transaction.
    Required,
    /// Joins the parent's.
    #[default]
    Supported,
    /// Opts out.
    NotSupported,
}

/// `files:` enumerator settings.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FilesDef {
    /// The folder to list.
    pub folder: String,
    /// A wildcard pattern (`*.csv`).
    #[serde(default)]
    pub pattern: Option<String>,
    /// Descend into subfolders.
    #[serde(default)]
    pub recursive: bool,
    /// What each item holds.
    #[serde(default)]
    pub retrieve: Retrieve,
}

/// What a file enumerator hands to each iteration.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Retrieve {
    /// The full path.
    #[default]
    FullPath,
    /// The name without extension.
    Name,
    /// The name with extension.
    NameAndExtension,
}

/// An executable: a task or a container. Fields not used by its type are
/// rejected by validation.
///
/// Fields common to every executable are here; those of one task type (or a
/// few) are in a box of their own, read through [`TaskDef::process`],
/// [`TaskDef::data`] and the like, which give an empty set when none was
/// written. A package of ten thousand tasks then holds ten thousand small
/// definitions, not ten thousand with room for every type's fields.
///
/// Serializing it gives the text its fingerprint is computed from: every field
/// that affects what it does, in the order of the package format (docs/semantics.md §1.3),
/// exactly as when every field was held flat; `name`, `description`, `after`,
/// `after_logic` and `tasks` are left out.
#[derive(Debug, Deserialize, Clone)]
#[serde(from = "crate::wire::TaskWire")]
pub struct TaskDef {
    // -- common to every executable (docs/semantics.md §1.3) --
    /// Unique among siblings; no `/`.
    pub name: Spanned<String>,
    /// A task type or a container type.
    pub kind: Spanned<String>,
    /// Free text; not part of the fingerprint.
    pub description: Option<String>,
    /// Precedence constraints.
    pub after: Option<Spanned<Vec<AfterDef>>>,
    /// How constraints combine.
    pub after_logic: Option<Logic>,
    /// Not run; counts as success.
    pub disabled: Option<bool>,
    /// FailPackageOnFailure.
    pub fail_package_on_failure: Option<bool>,
    /// FailParentOnFailure.
    pub fail_parent_on_failure: Option<bool>,
    /// MaximumErrorCount (containers).
    pub max_errors: Option<Spanned<i64>>,
    /// ForceExecutionResult.
    pub force_result: Option<ForceResult>,
    /// TransactionOption.
    pub transaction: Option<TransactionOption>,
    /// A container that restarts as one unit.
    pub restart_unit: Option<bool>,
    /// Re-runs of a failed task before it counts as failed.
    pub retries: Option<Spanned<i64>>,
    /// Wait between retries (`1s`, `500ms`).
    pub retry_delay: Option<Spanned<String>>,
    /// Fail after this long.
    pub timeout: Option<Spanned<String>>,
    /// Property expressions.
    pub expressions: Option<Spanned<BTreeMap<String, String>>>,
    /// Event handlers (not part of the fingerprint: they are never
    /// checkpointed, so changing one does not change what a restart skips).
    pub event_handlers: Option<Spanned<Box<EventHandlersDef>>>,

    // -- containers --
    /// Children.
    pub tasks: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// How untied children run.
    pub flow: Option<Flow>,

    // -- expression --
    /// The assignment to evaluate.
    pub expr: Option<Spanned<String>>,

    // -- bulk_insert source, script file --
    /// A file (bulk_insert source, script file).
    pub file: Option<String>,

    // -- the fields of one task type (or a few), boxed; `None` when none is set --
    /// The fields of `for_loop` and `foreach` containers.
    pub loops: Option<Box<LoopFields>>,
    /// The fields of `process` tasks.
    pub process: Option<Box<ProcessFields>>,
    /// The fields of `sql`, `bulk_insert` and `download` tasks (but `file`, which `script` shares).
    pub data: Option<Box<DataFields>>,
    /// The fields of `file` tasks.
    pub file_op: Option<Box<FileOpFields>>,
    /// The fields of `script` tasks (and `file`, on [`TaskDef`]).
    pub script: Option<Box<ScriptFields>>,
    /// The fields of `package` tasks.
    pub child: Option<Box<ChildFields>>,
    /// The fields of `data_flow` tasks (but `resume`, which `bulk_insert` shares).
    pub flow_def: Option<Box<DataFlowFields>>,
}

/// A set of optional fields that one task type (or a few) takes: the
/// struct, an empty value to lend, and the accessor on [`TaskDef`] that lends
/// it when the definition has none.
macro_rules! field_group {
    (
        $(#[$m:meta])* $name:ident, read by $(#[$am:meta])* $accessor:ident
        { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $( $(#[$fm])* pub $field: Option<$ty>, )*
        }

        impl TaskDef {
            $(#[$am])*
            pub fn $accessor(&self) -> &$name {
                self.$accessor.as_deref().unwrap_or(&$name::EMPTY)
            }
        }

        impl $name {
            /// Every field unset.
            pub const EMPTY: $name = $name { $( $field: None, )* };

            /// Whether no field is set.
            pub fn is_empty(&self) -> bool {
                true $( && self.$field.is_none() )*
            }
        }
    };
}

field_group! {
    /// The fields of `for_loop` and `foreach` containers.
    LoopFields, read by
    /// The `for_loop` and `foreach` fields (all unset if none was written).
    loops {
        /// for_loop InitExpression.
        init: Spanned<String>,
        /// for_loop EvalExpression.
        eval: Spanned<String>,
        /// for_loop AssignExpression.
        assign: Spanned<String>,
        /// foreach items enumerator.
        items: Spanned<Vec<serde_json::Value>>,
        /// foreach file enumerator.
        files: Spanned<FilesDef>,
        /// foreach recordset enumerator (an object variable).
        rows: Spanned<String>,
        /// Variables that receive each item's values, by position.
        map: Spanned<Vec<String>>,
        /// Record each finished iteration (beyond SSIS).
        checkpoint_iterations: bool,
    }
}

field_group! {
    /// The fields of `process` tasks.
    ProcessFields, read by
    /// The `process` fields (all unset if none was written).
    process {
        /// A shell command line.
        command: Spanned<String>,
        /// A program to run without a shell.
        program: Spanned<String>,
        /// Its arguments.
        args: Vec<String>,
        /// Working directory.
        cwd: String,
        /// Extra environment.
        env: BTreeMap<String, String>,
        /// Exit codes that mean success.
        success_codes: Vec<i32>,
        /// Variable that receives standard output.
        stdout_var: Spanned<String>,
        /// Variable that receives standard error.
        stderr_var: Spanned<String>,
    }
}

field_group! {
    /// The fields of `sql`, `bulk_insert` and `download` tasks (but `file`, which `script` shares).
    DataFields, read by
    /// The `sql`, `bulk_insert` and `download` fields (all unset if none was written).
    data {
        /// A connection name.
        connection: Spanned<String>,
        /// SQL text.
        sql: String,
        /// Parameters bound from variables.
        params: Vec<String>,
        /// `none`, `single_row`, `full`.
        result: String,
        /// Variables for a single row.
        result_vars: Vec<String>,
        /// Object variable for a full result.
        result_var: String,
        /// Target table.
        table: String,
        /// Field delimiter.
        delimiter: String,
        /// First line is a header.
        header: bool,
        /// Quote character.
        quote: String,
        /// Null marker.
        null: String,
        /// Target columns.
        columns: Vec<String>,
        /// Empty the table first.
        truncate: bool,
        /// Rows per committed batch.
        batch_size: u64,
        /// Resume a partial load or download.
        resume: bool,
        /// Source URL.
        url: String,
        /// Expected SHA-256.
        sha256: String,
    }
}

field_group! {
    /// The fields of `file` tasks.
    FileOpFields, read by
    /// The `file` task's fields (all unset if none was written).
    file_op {
        /// `copy`, `move`, `rename`, `delete`, `mkdir`, `rmdir`, `clear_dir`.
        op: Spanned<String>,
        /// Source path.
        from: Spanned<String>,
        /// Destination path.
        to: Spanned<String>,
        /// Replace an existing destination.
        overwrite: bool,
    }
}

field_group! {
    /// The fields of `script` tasks (and `file`, on [`TaskDef`]).
    ScriptFields, read by
    /// The `script` fields (all unset if none was written).
    script {
        /// Script source.
        code: String,
        /// Variables the script may read.
        read_vars: Vec<String>,
        /// Variables the script may write.
        write_vars: Vec<String>,
    }
}

field_group! {
    /// The fields of `package` tasks.
    ChildFields, read by
    /// The `package` task's fields (all unset if none was written).
    child {
        /// Child package path.
        path: String,
        /// Child variable bindings.
        bind: BTreeMap<String, String>,
    }
}

field_group! {
    /// The fields of `data_flow` tasks (but `resume`, on [`DataFields`]).
    DataFlowFields, read by
    /// The `data_flow` fields (all unset if none was written).
    flow_def {
        /// The components, each a map checked by the data flow task type.
        components: Spanned<Vec<Spanned<crate::Node>>>,
        /// Memory the row-holding components may use before they spill (`512MiB`).
        memory_limit: Spanned<String>,
        /// Rows per commit with `resume: true`.
        commit_rows: Spanned<u64>,
    }
}

impl Serialize for TaskDef {
    /// Every set field in the order of the package format, as the derived
    /// `Serialize` of the flat definition wrote them (the golden test in
    /// `tests.rs` holds both forms).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use crate::spanned::{fingerprinting, fingerprinting_or_none};
        use serde::ser::SerializeStruct;
        let (loops, process, data, file_op, script, child, flow) = self.groups();
        // (key, whether it is left out, value), in order.
        macro_rules! fields {
            ($($key:literal, $skip:expr, $val:expr;)*) => {{
                let len = 0 $( + usize::from(!$skip) )*;
                let mut st = s.serialize_struct("TaskDef", len)?;
                $( if $skip { st.skip_field($key)?; } else { st.serialize_field($key, $val)?; } )*
                st.end()
            }};
        }
        fields! {
            "name", fingerprinting(&self.name), &self.name;
            "type", false, &self.kind;
            "description", fingerprinting_or_none(&self.description), &self.description;
            "after", fingerprinting_or_none(&self.after), &self.after;
            "after_logic", fingerprinting_or_none(&self.after_logic), &self.after_logic;
            "disabled", self.disabled.is_none(), &self.disabled;
            "fail_package_on_failure", self.fail_package_on_failure.is_none(), &self.fail_package_on_failure;
            "fail_parent_on_failure", self.fail_parent_on_failure.is_none(), &self.fail_parent_on_failure;
            "max_errors", self.max_errors.is_none(), &self.max_errors;
            "force_result", self.force_result.is_none(), &self.force_result;
            "transaction", self.transaction.is_none(), &self.transaction;
            "restart_unit", self.restart_unit.is_none(), &self.restart_unit;
            "retries", self.retries.is_none(), &self.retries;
            "retry_delay", self.retry_delay.is_none(), &self.retry_delay;
            "timeout", self.timeout.is_none(), &self.timeout;
            "expressions", self.expressions.is_none(), &self.expressions;
            "event_handlers", fingerprinting_or_none(&self.event_handlers), &self.event_handlers;
            "tasks", fingerprinting_or_none(&self.tasks), &self.tasks;
            "flow", self.flow.is_none(), &self.flow;
            "init", loops.init.is_none(), &loops.init;
            "eval", loops.eval.is_none(), &loops.eval;
            "assign", loops.assign.is_none(), &loops.assign;
            "items", loops.items.is_none(), &loops.items;
            "files", loops.files.is_none(), &loops.files;
            "rows", loops.rows.is_none(), &loops.rows;
            "map", loops.map.is_none(), &loops.map;
            "checkpoint_iterations", loops.checkpoint_iterations.is_none(), &loops.checkpoint_iterations;
            "command", process.command.is_none(), &process.command;
            "program", process.program.is_none(), &process.program;
            "args", process.args.is_none(), &process.args;
            "cwd", process.cwd.is_none(), &process.cwd;
            "env", process.env.is_none(), &process.env;
            "success_codes", process.success_codes.is_none(), &process.success_codes;
            "stdout_var", process.stdout_var.is_none(), &process.stdout_var;
            "stderr_var", process.stderr_var.is_none(), &process.stderr_var;
            "expr", self.expr.is_none(), &self.expr;
            "connection", data.connection.is_none(), &data.connection;
            "sql", data.sql.is_none(), &data.sql;
            "params", data.params.is_none(), &data.params;
            "result", data.result.is_none(), &data.result;
            "result_vars", data.result_vars.is_none(), &data.result_vars;
            "result_var", data.result_var.is_none(), &data.result_var;
            "table", data.table.is_none(), &data.table;
            "file", self.file.is_none(), &self.file;
            "delimiter", data.delimiter.is_none(), &data.delimiter;
            "header", data.header.is_none(), &data.header;
            "quote", data.quote.is_none(), &data.quote;
            "null", data.null.is_none(), &data.null;
            "columns", data.columns.is_none(), &data.columns;
            "truncate", data.truncate.is_none(), &data.truncate;
            "batch_size", data.batch_size.is_none(), &data.batch_size;
            "resume", data.resume.is_none(), &data.resume;
            "url", data.url.is_none(), &data.url;
            "sha256", data.sha256.is_none(), &data.sha256;
            "op", file_op.op.is_none(), &file_op.op;
            "from", file_op.from.is_none(), &file_op.from;
            "to", file_op.to.is_none(), &file_op.to;
            "overwrite", file_op.overwrite.is_none(), &file_op.overwrite;
            "code", script.code.is_none(), &script.code;
            "read_vars", script.read_vars.is_none(), &script.read_vars;
            "write_vars", script.write_vars.is_none(), &script.write_vars;
            "path", child.path.is_none(), &child.path;
            "bind", child.bind.is_none(), &child.bind;
            "components", flow.components.is_none(), &flow.components;
            "memory_limit", flow.memory_limit.is_none(), &flow.memory_limit;
            "commit_rows", flow.commit_rows.is_none(), &flow.commit_rows;
        }
    }
}

/// Every field group of a definition, lent (empty where it has none).
type Groups<'a> = (
    &'a LoopFields,
    &'a ProcessFields,
    &'a DataFields,
    &'a FileOpFields,
    &'a ScriptFields,
    &'a ChildFields,
    &'a DataFlowFields,
);

impl TaskDef {
    /// Every field group, in the order of the package format.
    fn groups(&self) -> Groups<'_> {
        (
            self.loops(),
            self.process(),
            self.data(),
            self.file_op(),
            self.script(),
            self.child(),
            self.flow_def(),
        )
    }

    /// Whether a property expression sets `property` (docs/semantics.md §1.3
    /// `expressions`): then the value written for it, if any, may not be the
    /// one the task runs with.
    pub fn set_by_expression(&self, property: &str) -> bool {
        self.expressions
            .as_ref()
            .is_some_and(|e| e.value.contains_key(property))
    }

    /// Calls `each` with every key set on this definition, in declaration
    /// order, for checking that a task type accepts them. Common keys are not
    /// listed.
    pub fn each_specific_key(&self, mut each: impl FnMut(&'static str)) {
        let (loops, process, data, file_op, script, child, flow) = self.groups();
        macro_rules! check {
            ($($key:literal: $field:expr),*) => { $( if $field.is_some() { each($key); } )* };
        }
        check!(
            "tasks": self.tasks,
            "flow": self.flow,
            "init": loops.init,
            "eval": loops.eval,
            "assign": loops.assign,
            "items": loops.items,
            "files": loops.files,
            "rows": loops.rows,
            "map": loops.map,
            "checkpoint_iterations": loops.checkpoint_iterations,
            "command": process.command,
            "program": process.program,
            "args": process.args,
            "cwd": process.cwd,
            "env": process.env,
            "success_codes": process.success_codes,
            "stdout_var": process.stdout_var,
            "stderr_var": process.stderr_var,
            "expr": self.expr,
            "connection": data.connection,
            "sql": data.sql,
            "params": data.params,
            "result": data.result,
            "result_vars": data.result_vars,
            "result_var": data.result_var,
            "table": data.table,
            "file": self.file,
            "delimiter": data.delimiter,
            "header": data.header,
            "quote": data.quote,
            "null": data.null,
            "columns": data.columns,
            "truncate": data.truncate,
            "batch_size": data.batch_size,
            "resume": data.resume,
            "url": data.url,
            "sha256": data.sha256,
            "op": file_op.op,
            "from": file_op.from,
            "to": file_op.to,
            "overwrite": file_op.overwrite,
            "code": script.code,
            "read_vars": script.read_vars,
            "write_vars": script.write_vars,
            "path": child.path,
            "bind": child.bind,
            "components": flow.components,
            "memory_limit": flow.memory_limit,
            "commit_rows": flow.commit_rows,
            "max_errors": self.max_errors,
            "restart_unit": self.restart_unit
        );
    }
}
