//! `checkflow eval`: evaluate one expression, print its value and type.

use crate::exit;
use crate::session::Fail;
use checkflow_expr::{Value, VarMap, VarRef};
use serde_json::json;

pub fn eval(expr: &str, sets: &[String], as_json: bool) -> Result<i32, Fail> {
    let mut vars = VarMap::new();
    for s in sets {
        let (name, text) = s.split_once('=').ok_or_else(|| {
            Fail::new(
                exit::BAD_COMMAND_LINE,
                format!("--set \"{s}\": expected User::Name=VALUE"),
            )
        })?;
        let r = VarRef::parse(name.trim());
        let v = Value::infer_from_str(text);
        vars.add(&r.qualified(), v.data_type(), false, v);
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
