//! Fuzz target `expr`: parses, type-checks and evaluates arbitrary text; nothing may panic.

#![no_main]

use checkflow_expr::{DataType, Env, Scope, Value, VarInfo, VarRef, compile, parse};
use libfuzzer_sys::fuzz_target;

/// Every variable exists; its type depends on its name, so all types get exercised.
struct Vars;

fn type_of(name: &str) -> DataType {
    match name.len() % 6 {
        0 => DataType::I4,
        1 => DataType::WStr { len: None },
        2 => DataType::DbTimestamp,
        3 => DataType::Bool,
        4 => DataType::R8,
        _ => DataType::Numeric {
            precision: 29,
            scale: 10,
        },
    }
}

impl Scope for Vars {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        let ty = type_of(&var.name);
        Some(VarInfo {
            slot: (var.name.len() % 6) as u32,
            ty,
            read_only: var.namespace == "System",
        })
    }
}

impl Env for Vars {
    fn value(&self, slot: u32) -> Value {
        match slot {
            0 => Value::I4(-7),
            1 => Value::WStr("C:\\data".into()),
            2 => Value::parse_as("2026-11-21 04:30:00", &DataType::DbTimestamp)
                .unwrap_or(Value::Null(DataType::DbTimestamp)),
            3 => Value::Bool(true),
            4 => Value::R8(0.25),
            _ => Value::Null(DataType::Numeric {
                precision: 29,
                scale: 10,
            }),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ast) = parse(text) {
        // What the printer writes must parse back to the same tree.
        let printed = ast.to_string();
        assert_eq!(parse(&printed).as_ref(), Ok(&ast), "printed as {printed}");
    }
    if let Ok(compiled) = compile(text, &Vars, true) {
        let _ = compiled.eval(&Vars);
    }
});
