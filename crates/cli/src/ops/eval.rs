//! `checkflow eval`: evaluate one expression, print its value and type.

use crate::exit;
use crate::session::Fail;
use checkflow_expr::{DataType, Env, Scope, Value, VarInfo, VarRef};
use serde_json::json;
use std::collections::HashMap;

struct Vars {
    by_name: HashMap<String, (u32, Value)>,
    values: Vec<Value>,
}

impl Scope for Vars {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        self.by_name.get(&var.qualified()).map(|(slot, v)| VarInfo {
            slot: *slot,
            ty: v.data_type(),
            read_only: false,
        })
    }
}

impl Env for Vars {
    fn value(&self, slot: u32) -> Value {
        self.values
            .get(slot as usize)
            .cloned()
            .unwrap_or(Value::Null(DataType::I4))
    }
}

pub fn eval(expr: &str, sets: &[String], as_json: bool) -> Result<i32, Fail> {
    let mut vars = Vars {
        by_name: HashMap::new(),
        values: Vec::new(),
    };
    for s in sets {
        let (name, text) = s.split_once('=').ok_or_else(|| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("--set \"{s}\": expected User::Name=VALUE"),
            )
        })?;
        let r = VarRef::parse(name.trim());
        let v = Value::infer_from_str(text);
        let slot = vars.values.len() as u32;
        vars.values.push(v.clone());
        vars.by_name.insert(r.qualified(), (slot, v));
    }
    let compiled = checkflow_expr::compile(expr, &vars, true)
        .map_err(|e| Fail::new(exit::INVALID, e.to_string()))?;
    let v = compiled
        .eval(&vars)
        .map_err(|e| Fail::new(exit::FAILURE, e.to_string()))?;
    let ty = v.data_type();
    if as_json {
        super::emit(&format!(
            "{}\n",
            json!({"value": v.to_json(), "type": ty.ssis_name()})
        ))?;
    } else {
        super::emit(&format!("{v} ({})\n", ty.ssis_name()))?;
    }
    Ok(exit::SUCCESS)
}
