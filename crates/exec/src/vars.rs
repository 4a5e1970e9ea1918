//! The run's variables: one shared store, and the expression environment of a
//! task (which adds the task-scoped `System::` values).

use checkflow_expr::{Compiled, Env, Value};
use checkflow_plan::{SystemVar, VarTable, VarValue};
use std::sync::{Arc, RwLock};

/// Every variable's current value, shared by the dispatcher and running tasks.
pub struct VarStore {
    values: RwLock<Vec<VarValue>>,
    dirty: RwLock<Vec<bool>>,
    table: Arc<VarTable>,
}

impl VarStore {
    /// A store holding `values` (one per slot of `table`).
    pub fn new(table: Arc<VarTable>, values: Vec<VarValue>) -> VarStore {
        let n = values.len();
        VarStore {
            values: RwLock::new(values),
            dirty: RwLock::new(vec![false; n]),
            table,
        }
    }

    /// The variable table.
    pub fn table(&self) -> &VarTable {
        &self.table
    }

    /// The stored value of a slot (not evaluating expression variables).
    pub fn raw(&self, slot: u32) -> VarValue {
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        values[slot as usize].clone()
    }

    /// Stores a value and marks it changed.
    pub fn set(&self, slot: u32, value: VarValue) {
        {
            let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
            values[slot as usize] = value;
        }
        let mut dirty = self.dirty.write().unwrap_or_else(|e| e.into_inner());
        dirty[slot as usize] = true;
    }

    /// Takes the variables changed since the last call, with their values.
    pub fn take_dirty(&self) -> Vec<(u32, VarValue)> {
        let mut dirty = self.dirty.write().unwrap_or_else(|e| e.into_inner());
        if !dirty.iter().any(|d| *d) {
            return Vec::new();
        }
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (i, d) in dirty.iter_mut().enumerate() {
            if *d {
                *d = false;
                out.push((i as u32, values[i].clone()));
            }
        }
        out
    }

    /// Every value (for reports).
    pub fn snapshot(&self) -> Vec<VarValue> {
        self.values
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The expression environment of one executable: the store, plus its own
/// `System::TaskName`, `System::ContainerStartTime` and `System::ErrorDescription`.
pub struct TaskEnv<'a> {
    /// The shared store.
    pub store: &'a VarStore,
    /// `System::TaskName`.
    pub task_name: &'a str,
    /// `System::ContainerStartTime`.
    pub start: jiff::civil::DateTime,
    /// `System::ErrorDescription`.
    pub error: Option<&'a str>,
}

impl Env for TaskEnv<'_> {
    fn value(&self, slot: u32) -> Value {
        let decl = self.store.table().decl(slot);
        match decl.system {
            Some(SystemVar::TaskName) => return Value::WStr(self.task_name.to_string()),
            Some(SystemVar::ContainerStartTime) => return Value::DbTimestamp(self.start),
            Some(SystemVar::ErrorDescription) => {
                return Value::WStr(self.error.unwrap_or("").to_string());
            }
            _ => {}
        }
        if let Some(expr) = &decl.expr {
            // Validation rejected cycles among expression variables, so this recursion ends.
            return expr
                .eval(self)
                .unwrap_or_else(|_| Value::Null(decl.ty.clone()));
        }
        match self.store.raw(slot) {
            VarValue::Scalar(v) => v,
            VarValue::Object(_) => Value::Null(decl.ty.clone()),
        }
    }
}

/// Evaluates an expression in an environment, storing an assignment's value.
pub fn eval_and_assign(expr: &Compiled, env: &TaskEnv<'_>) -> Result<Value, String> {
    let v = expr.eval(env).map_err(|e| e.to_string())?;
    if let Some((slot, _)) = expr.assignment() {
        env.store.set(slot, VarValue::Scalar(v.clone()));
    }
    Ok(v)
}
