//! The run's variables: one shared store, and the expression environment of a
//! task (which adds the task-scoped `System::` values).

use checkflow_expr::{Compiled, Env, Value};
use checkflow_plan::{NodeId, SystemVar, VarTable, VarValue};
use std::sync::{Arc, RwLock};

/// Every variable's current value, shared by the dispatcher and running tasks.
///
/// A change is owned by the **unit** whose record will carry it: the nearest
/// executable, the changer itself or an ancestor, whose completion is
/// recorded. A task inside a loop, a transacted container or a restart unit
/// changes variables on behalf of that unit, and its changes wait for the
/// unit's own record; a sibling that completes meanwhile does not carry them
/// (a restart that reruns the unit must find the values from before it).
pub struct VarStore {
    values: RwLock<Vec<VarValue>>,
    /// Per slot: the unit that changed it last and has not recorded it yet.
    dirty: RwLock<Vec<Option<NodeId>>>,
    table: Arc<VarTable>,
}

impl VarStore {
    /// A store holding `values` (one per slot of `table`).
    pub fn new(table: Arc<VarTable>, values: Vec<VarValue>) -> VarStore {
        let n = values.len();
        VarStore {
            values: RwLock::new(values),
            dirty: RwLock::new(vec![None; n]),
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

    /// Stores a value, changed on behalf of `unit` (see the type's notes).
    pub fn set(&self, slot: u32, value: VarValue, unit: NodeId) {
        // Both locks at once: a record taken between the two writes would
        // carry the new value without owning it, or own it with the old one.
        let mut dirty = self.dirty.write().unwrap_or_else(|e| e.into_inner());
        let mut values = self.values.write().unwrap_or_else(|e| e.into_inner());
        values[slot as usize] = value;
        dirty[slot as usize] = Some(unit);
    }

    /// Takes the variables `unit` changed and has not recorded, with their
    /// current values; they are no longer pending.
    pub fn take_dirty(&self, unit: NodeId) -> Vec<(u32, VarValue)> {
        self.pending(unit, true)
    }

    /// The variables `unit` changed and has not recorded, left pending (an
    /// intent to commit carries them, the completion after it takes them).
    pub fn peek_dirty(&self, unit: NodeId) -> Vec<(u32, VarValue)> {
        self.pending(unit, false)
    }

    fn pending(&self, unit: NodeId, take: bool) -> Vec<(u32, VarValue)> {
        let mut dirty = self.dirty.write().unwrap_or_else(|e| e.into_inner());
        if !dirty.contains(&Some(unit)) {
            return Vec::new();
        }
        let values = self.values.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (i, d) in dirty.iter_mut().enumerate() {
            if *d == Some(unit) {
                if take {
                    *d = None;
                }
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
    /// The unit an assignment changes a variable on behalf of.
    pub unit: NodeId,
}

impl Env for TaskEnv<'_> {
    fn value(&self, slot: u32) -> Value {
        let decl = self.store.table().decl(slot);
        match decl.system {
            Some(SystemVar::TaskName) => return Value::WStr(self.task_name.to_string()),
            Some(SystemVar::ContainerStartTime) => return Value::DbTimestamp(self.start),
            // On an error path, the failed predecessor's error; in an event
            // handler, the event's (a value of the handler's own store).
            Some(SystemVar::ErrorDescription) if self.error.is_some() => {
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
        env.store.set(slot, VarValue::Scalar(v.clone()), env.unit);
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> VarStore {
        let table = VarTable::default();
        VarStore::new(
            Arc::new(table),
            vec![
                VarValue::Scalar(Value::I4(0)),
                VarValue::Scalar(Value::I4(0)),
            ],
        )
    }

    #[test]
    fn a_record_takes_only_the_changes_of_its_own_unit() {
        let s = store();
        let (unit, sibling) = (NodeId(3), NodeId(5));
        s.set(0, VarValue::Scalar(Value::I4(4)), unit);
        s.set(1, VarValue::Scalar(Value::I4(1)), sibling);
        assert_eq!(
            s.take_dirty(sibling),
            vec![(1, VarValue::Scalar(Value::I4(1)))]
        );
        assert!(s.take_dirty(sibling).is_empty(), "taken once");
        // An intent peeks; the completion after it takes.
        assert_eq!(
            s.peek_dirty(unit),
            vec![(0, VarValue::Scalar(Value::I4(4)))]
        );
        assert_eq!(
            s.take_dirty(unit),
            vec![(0, VarValue::Scalar(Value::I4(4)))]
        );
        assert!(s.take_dirty(unit).is_empty());
        // The last writer owns a change.
        s.set(0, VarValue::Scalar(Value::I4(5)), unit);
        s.set(0, VarValue::Scalar(Value::I4(6)), sibling);
        assert!(s.take_dirty(unit).is_empty());
        assert_eq!(
            s.take_dirty(sibling),
            vec![(0, VarValue::Scalar(Value::I4(6)))]
        );
    }
}
