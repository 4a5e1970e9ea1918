//! The variable table: every variable's slot, type, initial value and flags.

use checkflow_expr::{DataType, Scope, Value, VarInfo, VarRef};
use std::collections::HashMap;

/// A variable's value at run time: a scalar the expression language knows, or
/// an `object` (a list, a list of rows, or a recordset) kept as JSON.
#[derive(Clone, Debug, PartialEq)]
pub enum VarValue {
    /// A typed scalar.
    Scalar(Value),
    /// An object variable's content.
    Object(serde_json::Value),
}

impl VarValue {
    /// The JSON form written to checkpoints and reports.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            VarValue::Scalar(v) => v.to_json(),
            VarValue::Object(j) => j.clone(),
        }
    }

    /// Reads the JSON form back for a variable of type `ty`.
    pub fn from_json(json: &serde_json::Value, ty: &DataType) -> Result<VarValue, String> {
        if *ty == DataType::Object {
            return Ok(VarValue::Object(json.clone()));
        }
        Value::from_json(json, ty)
            .map(VarValue::Scalar)
            .map_err(|e| e.to_string())
    }

    /// Reads a value as written in a package, a `--set` or a config file:
    /// strings are parsed as the type, numbers and booleans converted.
    pub fn from_written(json: &serde_json::Value, ty: &DataType) -> Result<VarValue, String> {
        if *ty == DataType::Object {
            return Ok(VarValue::Object(json.clone()));
        }
        let text = match json {
            serde_json::Value::Null => return Ok(VarValue::Scalar(Value::Null(ty.clone()))),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "expected a {} value, found {other}",
                    ty.ssis_name()
                ));
            }
        };
        Value::parse_as(&text, ty)
            .map(VarValue::Scalar)
            .map_err(|e| e.to_string())
    }

    /// The scalar, if this is one.
    pub fn scalar(&self) -> Option<&Value> {
        match self {
            VarValue::Scalar(v) => Some(v),
            VarValue::Object(_) => None,
        }
    }
}

impl std::fmt::Display for VarValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarValue::Scalar(v) => write!(f, "{v}"),
            VarValue::Object(j) => write!(f, "{j}"),
        }
    }
}

/// The read-only `System::` variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemVar {
    /// `System::PackageName`.
    PackageName,
    /// `System::PackageID`.
    PackageId,
    /// `System::StartTime`.
    StartTime,
    /// `System::ExecutionInstanceGUID`.
    ExecutionInstanceGuid,
    /// `System::MachineName`.
    MachineName,
    /// `System::TaskName`: the executable evaluating the expression.
    TaskName,
    /// `System::ContainerStartTime`: when that executable started.
    ContainerStartTime,
    /// `System::ErrorDescription`: inside error paths and event handlers.
    ErrorDescription,
    /// `System::SourceName`: in an event handler, the executable the event is for.
    SourceName,
    /// `System::SourceID`: in an event handler, that executable's path.
    SourceId,
    /// `System::ErrorCode`: in an event handler, the error's code (0 for none).
    ErrorCode,
    /// `System::Propagate`: in an event handler, whether the event goes on to
    /// the handlers above (the one system variable a task may set).
    Propagate,
}

impl SystemVar {
    /// Every system variable.
    pub const ALL: [SystemVar; 12] = [
        SystemVar::PackageName,
        SystemVar::PackageId,
        SystemVar::StartTime,
        SystemVar::ExecutionInstanceGuid,
        SystemVar::MachineName,
        SystemVar::TaskName,
        SystemVar::ContainerStartTime,
        SystemVar::ErrorDescription,
        SystemVar::SourceName,
        SystemVar::SourceId,
        SystemVar::ErrorCode,
        SystemVar::Propagate,
    ];

    /// Its name without the namespace.
    pub fn name(self) -> &'static str {
        match self {
            SystemVar::PackageName => "PackageName",
            SystemVar::PackageId => "PackageID",
            SystemVar::StartTime => "StartTime",
            SystemVar::ExecutionInstanceGuid => "ExecutionInstanceGUID",
            SystemVar::MachineName => "MachineName",
            SystemVar::TaskName => "TaskName",
            SystemVar::ContainerStartTime => "ContainerStartTime",
            SystemVar::ErrorDescription => "ErrorDescription",
            SystemVar::SourceName => "SourceName",
            SystemVar::SourceId => "SourceID",
            SystemVar::ErrorCode => "ErrorCode",
            SystemVar::Propagate => "Propagate",
        }
    }

    /// Its type.
    pub fn data_type(self) -> DataType {
        match self {
            SystemVar::StartTime | SystemVar::ContainerStartTime => DataType::DbTimestamp,
            SystemVar::ErrorCode => DataType::I4,
            SystemVar::Propagate => DataType::Bool,
            _ => DataType::WStr { len: None },
        }
    }
}

/// One declared variable.
#[derive(Clone, Debug)]
pub struct VarDecl {
    /// `User::Name` or `System::Name`.
    pub name: VarRef,
    /// Its type.
    pub ty: DataType,
    /// The value it starts with (before configuration).
    pub initial: VarValue,
    /// EvaluateAsExpression: its value is this expression (compiled after all
    /// variables are declared).
    pub expr: Option<checkflow_expr::Compiled>,
    /// Bound from this environment variable.
    pub env: Option<String>,
    /// Never written in clear, masked in logs.
    pub sensitive: bool,
    /// Tasks may not assign it.
    pub read_only: bool,
    /// A system variable.
    pub system: Option<SystemVar>,
}

/// Every variable, by slot; looked up by qualified name.
#[derive(Clone, Debug, Default)]
pub struct VarTable {
    /// By slot.
    pub decls: Vec<VarDecl>,
    index: HashMap<String, u32>,
}

impl VarTable {
    /// Adds a variable; returns its slot, or `None` if the name is taken.
    pub fn add(&mut self, decl: VarDecl) -> Option<u32> {
        let key = decl.name.qualified();
        if self.index.contains_key(&key) {
            return None;
        }
        let slot = self.decls.len() as u32;
        self.index.insert(key, slot);
        self.decls.push(decl);
        Some(slot)
    }

    /// The slot of `User::X`, `X` or `System::Y`.
    pub fn slot(&self, name: &str) -> Option<u32> {
        self.index.get(&VarRef::parse(name).qualified()).copied()
    }

    /// The declaration in a slot.
    pub fn decl(&self, slot: u32) -> &VarDecl {
        &self.decls[slot as usize]
    }

    /// The slot of a system variable.
    pub fn system_slot(&self, var: SystemVar) -> u32 {
        self.slot(&format!("System::{}", var.name()))
            .expect("system variables are declared by validate")
    }
}

impl Scope for VarTable {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        let slot = *self.index.get(&var.qualified())?;
        let d = &self.decls[slot as usize];
        Some(VarInfo {
            slot,
            ty: d.ty.clone(),
            read_only: d.read_only
                || (d.system.is_some() && d.system != Some(SystemVar::Propagate))
                || d.expr.is_some(),
        })
    }
}
