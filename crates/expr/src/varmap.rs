//! A variable table of its own, for an expression evaluated outside a
//! package: `checkflow eval`, and tests.

use crate::compile::{Scope, VarInfo, VarRef};
use crate::datatype::DataType;
use crate::eval::Env;
use crate::value::Value;
use std::collections::HashMap;

/// Variables by qualified name (`User::N`), each with a slot, a type, whether
/// it is read-only, and a value.
#[derive(Clone, Debug, Default)]
pub struct VarMap {
    by_name: HashMap<String, VarInfo>,
    values: Vec<Value>,
}

impl VarMap {
    /// An empty table.
    pub fn new() -> VarMap {
        VarMap::default()
    }

    /// Declares `name` (qualified, as `User::N`) in the next slot, and
    /// returns that slot. Declaring a name again points it at the new slot.
    pub fn add(&mut self, name: &str, ty: DataType, read_only: bool, value: Value) -> u32 {
        let slot = self.values.len() as u32;
        self.by_name.insert(
            name.to_string(),
            VarInfo {
                slot,
                ty,
                read_only,
            },
        );
        self.values.push(value);
        slot
    }
}

impl Scope for VarMap {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        self.by_name.get(&var.qualified()).cloned()
    }
}

impl Env for VarMap {
    fn value(&self, slot: u32) -> Value {
        self.values
            .get(slot as usize)
            .cloned()
            .unwrap_or(Value::Null(DataType::I4))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_declared_again_reads_its_new_value() {
        let mut m = VarMap::new();
        assert_eq!(m.add("User::N", DataType::I4, false, Value::I4(1)), 0);
        assert_eq!(m.add("User::N", DataType::I8, true, Value::I8(2)), 1);
        let info = m.lookup(&VarRef::parse("N")).expect("declared");
        assert_eq!((info.slot, info.read_only), (1, true));
        assert_eq!(m.value(info.slot), Value::I8(2));
        assert!(m.lookup(&VarRef::parse("User::Other")).is_none());
        assert_eq!(m.value(7), Value::Null(DataType::I4));
    }
}
