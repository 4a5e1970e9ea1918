//! The `*Def` types: a package exactly as written in YAML (SPEC §1).
//!
//! Every struct denies unknown keys, so a typo is a load error with its line and
//! column. Task-specific fields live flat on [`TaskDef`]; which of them a task
//! type accepts is checked by `checkflow-plan`, which reports the key's position.

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
    /// The package's executables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Spanned<Box<TaskDef>>>,
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
    /// The initial value.
    #[serde(default)]
    pub value: Option<serde_json::Value>,
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
/// Serializing it gives the text its fingerprint is computed from: every field
/// that affects what it does, in declaration order; `name`, `description`,
/// `after`, `after_logic` and `tasks` are left out.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct TaskDef {
    // -- common to every executable (SPEC §1.1) --
    /// Unique among siblings; no `/`.
    #[serde(skip_serializing_if = "crate::spanned::fingerprinting")]
    pub name: Spanned<String>,
    /// A task type or a container type.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// Free text; not part of the fingerprint.
    #[serde(
        default,
        skip_serializing_if = "crate::spanned::fingerprinting_or_none"
    )]
    pub description: Option<String>,
    /// Precedence constraints.
    #[serde(
        default,
        skip_serializing_if = "crate::spanned::fingerprinting_or_none"
    )]
    pub after: Option<Spanned<Vec<AfterDef>>>,
    /// How constraints combine.
    #[serde(
        default,
        skip_serializing_if = "crate::spanned::fingerprinting_or_none"
    )]
    pub after_logic: Option<Logic>,
    /// Not run; counts as success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    /// FailPackageOnFailure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_package_on_failure: Option<bool>,
    /// FailParentOnFailure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_parent_on_failure: Option<bool>,
    /// MaximumErrorCount (containers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_errors: Option<Spanned<i64>>,
    /// ForceExecutionResult.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_result: Option<ForceResult>,
    /// TransactionOption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionOption>,
    /// A container that restarts as one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_unit: Option<bool>,
    /// Re-runs of a failed task before it counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<Spanned<i64>>,
    /// Wait between retries (`1s`, `500ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Spanned<String>>,
    /// Fail after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Spanned<String>>,
    /// Property expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expressions: Option<Spanned<BTreeMap<String, String>>>,

    // -- containers --
    /// Children.
    #[serde(
        default,
        skip_serializing_if = "crate::spanned::fingerprinting_or_none"
    )]
    pub tasks: Option<Vec<Spanned<Box<TaskDef>>>>,
    /// How untied children run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    /// for_loop InitExpression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<Spanned<String>>,
    /// for_loop EvalExpression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval: Option<Spanned<String>>,
    /// for_loop AssignExpression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign: Option<Spanned<String>>,
    /// foreach items enumerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Spanned<Vec<serde_json::Value>>>,
    /// foreach file enumerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Spanned<FilesDef>>,
    /// foreach recordset enumerator (an object variable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Spanned<String>>,
    /// Variables that receive each item's values, by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Spanned<Vec<String>>>,
    /// Record each finished iteration (beyond SSIS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_iterations: Option<bool>,

    // -- process --
    /// A shell command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Spanned<String>>,
    /// A program to run without a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<Spanned<String>>,
    /// Its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<BTreeMap<String, String>>,
    /// Exit codes that mean success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_codes: Option<Vec<i32>>,
    /// Variable that receives standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout_var: Option<Spanned<String>>,
    /// Variable that receives standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_var: Option<Spanned<String>>,

    // -- expression --
    /// The assignment to evaluate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<Spanned<String>>,

    // -- sql, bulk_insert, download --
    /// A connection name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Spanned<String>>,
    /// SQL text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Parameters bound from variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// `none`, `single_row`, `full`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// Variables for a single row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_vars: Option<Vec<String>>,
    /// Object variable for a full result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_var: Option<String>,
    /// Target table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// A file (bulk_insert source, script file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Field delimiter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// First line is a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    /// Quote character.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    /// Null marker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null: Option<String>,
    /// Target columns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// Empty the table first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Rows per committed batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u64>,
    /// Resume a partial load or download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<bool>,
    /// Source URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Expected SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,

    // -- file --
    /// `copy`, `move`, `rename`, `delete`, `mkdir`, `rmdir`, `clear_dir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<Spanned<String>>,
    /// Source path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Spanned<String>>,
    /// Destination path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Spanned<String>>,
    /// Replace an existing destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,

    // -- script --
    /// Script source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Variables the script may read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_vars: Option<Vec<String>>,
    /// Variables the script may write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_vars: Option<Vec<String>>,

    // -- package --
    /// Child package path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Child variable bindings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BTreeMap<String, String>>,
}

impl TaskDef {
    /// Whether a property expression sets `property` (SPEC §1.1
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
        macro_rules! check {
            ($($field:ident),*) => { $( if self.$field.is_some() { each(stringify!($field)); } )* };
        }
        check!(
            tasks,
            flow,
            init,
            eval,
            assign,
            items,
            files,
            rows,
            map,
            checkpoint_iterations,
            command,
            program,
            args,
            cwd,
            env,
            success_codes,
            stdout_var,
            stderr_var,
            expr,
            connection,
            sql,
            params,
            result,
            result_vars,
            result_var,
            table,
            file,
            delimiter,
            header,
            quote,
            null,
            columns,
            truncate,
            batch_size,
            resume,
            url,
            sha256,
            op,
            from,
            to,
            overwrite,
            code,
            read_vars,
            write_vars,
            path,
            bind,
            max_errors,
            restart_unit
        );
    }
}
