//! The Script task: an embedded, sandboxed [Rhai](https://rhai.rs) script that
//! reads and writes package variables (SSIS's Script Task, without .NET).
//!
//! # What a script sees
//!
//! Each variable in `read_vars` or `write_vars` is a variable of the script's
//! scope under its bare name: `User::Count` is `Count`, `System::PackageName`
//! is `PackageName`. Variables only in `read_vars` are constants: assigning one
//! is a script error. When the script ends, each `write_vars` variable whose
//! value the script changed is converted to the variable's declared type and
//! written back; if any conversion fails, none is written and the task fails.
//!
//! Values going in, by the variable's type:
//!
//! | variable | script value |
//! | --- | --- |
//! | `boolean` | `bool` |
//! | `int32`, `int64` (and the other integer types) | integer (`i64`) |
//! | `double` | float (`f64`) |
//! | `decimal` | float (`f64`), so arithmetic works; write a string back to keep every digit |
//! | `string` | string |
//! | `datetime` | string `2026-11-21 04:30:00` |
//! | `object` | arrays and maps (from its JSON form) |
//! | NULL of any type | `()` |
//!
//! Coming back, a value is converted as an SSIS cast to the variable's type
//! would (`"42"` into an `int32`, `7` into a `string`); a value that does not
//! convert, or an array or map for a scalar variable, is an error that names
//! the variable and both types. `()` writes NULL.
//!
//! # Sandbox
//!
//! The engine gets Rhai's standard library and nothing else: no file, network,
//! process or environment access, no `import` and no `eval`. `print` and
//! `debug` go to the task's log. Operations, strings, arrays and maps are
//! capped (see the constants below), and the engine checks the task's cancel
//! token as it runs, so a task `timeout` or Ctrl-C stops a runaway script.
//!
//! Inline `code` is compiled when the package is validated, so a syntax error
//! (or an undeclared variable) is reported before anything runs. A script
//! `file` (relative to the package folder) is read and compiled when the task
//! runs, so an earlier task may write it.

use checkflow_expr::{DataType, Value};
use checkflow_model::TaskDef;
use checkflow_plan::{Action, BuildCx, LogLevel, RunCx, TaskError, TaskType, VarValue};
use rhai::packages::{Package, StandardPackage};
use rhai::{AST, Dynamic, Engine, EvalAltResult, ParseError, Position, Scope};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};

/// The most operations a script may run (a runaway guard; a task `timeout`
/// stops it sooner).
pub(crate) const MAX_OPERATIONS: u64 = 1_000_000_000;
/// The longest string a script may build, in bytes.
pub(crate) const MAX_STRING_SIZE: usize = 16 << 20;
/// The most elements an array may hold.
pub(crate) const MAX_ARRAY_SIZE: usize = 1_000_000;
/// The most entries a map may hold.
pub(crate) const MAX_MAP_SIZE: usize = 1_000_000;
/// The script runs on its own thread with this much stack, so deep (but
/// bounded) recursion in a script cannot overflow a worker thread.
const STACK_SIZE: usize = 16 << 20;

pub(crate) struct ScriptType;

impl TaskType for ScriptType {
    fn name(&self) -> &'static str {
        "script"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["code", "file", "read_vars", "write_vars"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let (bindings, vars_ok) = bindings(def, cx);
        let source = match (&def.script().code, &def.file) {
            (Some(_), Some(_)) => {
                cx.error("give `code` or `file`, not both");
                return None;
            }
            (None, None) => {
                cx.error(
                    "a script task needs `code` (an inline Rhai script) or `file` (a script file)",
                );
                return None;
            }
            (Some(code), None) => {
                let mut engine = sandbox();
                // With a variable list already reported as wrong, only look
                // for syntax errors: strict mode would repeat those problems.
                engine.set_strict_variables(vars_ok);
                match compile(&engine, code, &bindings) {
                    Ok(ast) => Source::Inline(Arc::new(ast)),
                    Err(e) => {
                        cx.error(format!("`code` does not compile: {}", parse_error(&e)));
                        return None;
                    }
                }
            }
            (None, Some(file)) => Source::File(file.clone()),
        };
        vars_ok.then(|| Arc::new(ScriptAction { source, bindings }) as Arc<dyn Action>)
    }
}

/// One package variable as the script sees it.
#[derive(Debug)]
struct Binding {
    /// Its name in the script: the variable's name without the namespace.
    name: String,
    /// `User::Name`, for messages.
    qualified: String,
    slot: u32,
    ty: DataType,
    /// In `write_vars`: the script may assign it, and its value is written back.
    write: bool,
}

/// Resolves `read_vars` and `write_vars`: the ones that resolved, and whether
/// all did (problems are reported to `cx`).
fn bindings(def: &TaskDef, cx: &mut BuildCx<'_>) -> (Vec<Binding>, bool) {
    let pos = cx.pos();
    let mut out: Vec<Binding> = Vec::new();
    let mut ok = true;
    let writes = def.script().write_vars.iter().flatten().map(|n| (n, true));
    let reads = def.script().read_vars.iter().flatten().map(|n| (n, false));
    for (name, write) in writes.chain(reads) {
        let resolved = if write {
            cx.writable_var(name, pos)
        } else {
            cx.readable_var(name, pos)
        };
        let Some((slot, ty)) = resolved else {
            ok = false;
            continue;
        };
        // A variable in both lists is read-write.
        if out.iter().any(|b| b.slot == slot) {
            continue;
        }
        let var = &cx.vars().decl(slot).name;
        let (bare, qualified) = (var.name.clone(), var.qualified());
        if let Some(other) = out.iter().find(|b| b.name == bare) {
            cx.error(format!(
                "variables \"{}\" and \"{qualified}\" would both be `{bare}` in the script; give the script only one of them",
                other.qualified
            ));
            ok = false;
            continue;
        }
        if !is_identifier(&bare) {
            cx.error(format!(
                "variable \"{qualified}\" cannot be used in a script: `{bare}` is not a valid Rhai variable name"
            ));
            ok = false;
            continue;
        }
        out.push(Binding {
            name: bare,
            qualified,
            slot,
            ty,
            write,
        });
    }
    (out, ok)
}

/// Whether a Rhai script can name a variable so: a letter or `_`, then
/// letters, digits and `_` (ASCII, as Rhai's own rule).
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name != "_"
}

enum Source {
    /// `code`, compiled at validation.
    Inline(Arc<AST>),
    /// `file`, as written (read and compiled when the task runs).
    File(String),
}

struct ScriptAction {
    source: Source,
    bindings: Vec<Binding>,
}

/// The engine every script runs in: the standard library, the limits, and no
/// way out of the sandbox. (`Engine::new_raw` has no module resolver and
/// prints nowhere; we add only what is listed here.)
fn sandbox() -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    // `import` would load modules from files; `eval` would compile text at
    // run time past validation. Neither is needed.
    engine.disable_symbol("import");
    engine.disable_symbol("eval");
    engine.set_strict_variables(true);
    engine.set_max_operations(MAX_OPERATIONS);
    engine.set_max_string_size(MAX_STRING_SIZE);
    engine.set_max_array_size(MAX_ARRAY_SIZE);
    engine.set_max_map_size(MAX_MAP_SIZE);
    engine
}

/// Compiles a script against the task's variables (so strict mode knows
/// them). They are ordinary variables here, not constants: compiling with a
/// constant in scope would fold its placeholder value into the script.
fn compile(engine: &Engine, code: &str, bindings: &[Binding]) -> Result<AST, ParseError> {
    let mut scope = Scope::new();
    for b in bindings {
        scope.push_dynamic(b.name.as_str(), Dynamic::UNIT);
    }
    engine.compile_with_scope(&scope, code)
}

/// "line 3, column 7: <what>" from a Rhai parse error.
fn parse_error(e: &ParseError) -> String {
    format!("{}{}", at(e.1), e.0)
}

/// "line L, column C: " (or nothing when Rhai gave no position).
fn at(pos: Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

impl Action for ScriptAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let (ast, origin) = match &self.source {
            Source::Inline(ast) => (ast.clone(), "script".to_string()),
            Source::File(f) => {
                let path = cx.prop_path("file", f);
                let code = checkflow_files::read_to_string(&path, checkflow_files::Links::Follow)
                    .map_err(|e| {
                    TaskError::new(format!("cannot read script file {}: {e}", path.display()))
                })?;
                let ast = compile(&sandbox(), &code, &self.bindings).map_err(|e| {
                    TaskError::new(format!(
                        "script file {} does not compile: {}",
                        path.display(),
                        parse_error(&e)
                    ))
                })?;
                (Arc::new(ast), format!("script file {}", path.display()))
            }
        };

        let mut scope = Scope::new();
        let mut before = Vec::with_capacity(self.bindings.len());
        for b in &self.bindings {
            let v = to_dynamic(&cx.get(b.slot));
            before.push(v.clone());
            if b.write {
                scope.push_dynamic(b.name.as_str(), v);
            } else {
                scope.push_constant_dynamic(b.name.as_str(), v);
            }
        }

        let (tx, rx) = channel::<(LogLevel, String)>();
        let engine = running_engine(cx.cancel_token().clone(), tx);
        // The script runs on its own thread while this one forwards its
        // `print` and `debug` lines to the log as they come (the log needs
        // `cx`, which stays here). The channel closes when the engine, which
        // holds the senders, is dropped at the end of the script.
        let outcome = std::thread::scope(|s| {
            let scope = &mut scope;
            let ast = &ast;
            let handle = std::thread::Builder::new()
                .name("script".into())
                .stack_size(STACK_SIZE)
                .spawn_scoped(s, move || {
                    let r = engine.run_ast_with_scope(scope, ast);
                    drop(engine);
                    r
                })
                .map_err(|e| TaskError::new(format!("cannot start the script thread: {e}")))?;
            for (level, line) in rx {
                cx.log(level, &line);
            }
            handle
                .join()
                .map_err(|_| TaskError::new("the script engine panicked"))
        })?;
        if let Err(e) = outcome {
            return Err(TaskError::new(run_error(*e, &origin)));
        }

        // Convert every changed write variable before writing any, so a bad
        // value leaves all of them as they were.
        let mut writes = Vec::new();
        let mut problems = Vec::new();
        for (b, old) in self.bindings.iter().zip(&before) {
            if !b.write {
                continue;
            }
            let Some(new) = scope.get_value::<Dynamic>(&b.name) else {
                continue;
            };
            let new = new.flatten();
            if same(&new, old) {
                continue;
            }
            match from_dynamic(&new, &b.ty) {
                Ok(v) => writes.push((b.slot, v)),
                Err(why) => problems.push(format!(
                    "cannot write {} to variable \"{}\" of type {}: {why}",
                    describe(&new),
                    b.qualified,
                    b.ty.ssis_name()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(TaskError::new(format!(
                "{origin} finished, but {}",
                problems.join("; ")
            )));
        }
        for (slot, v) in writes {
            cx.set(slot, v)?;
        }
        Ok(())
    }
}

/// The sandbox plus this run's hooks: the cancel token and the log.
fn running_engine(token: checkflow_plan::CancelToken, tx: Sender<(LogLevel, String)>) -> Engine {
    let mut engine = sandbox();
    engine.on_progress(move |ops| {
        // An atomic load is cheap, but there is no need to pay it every operation.
        if ops % 256 == 0 && token.is_cancelled() {
            Some(Dynamic::from("cancelled"))
        } else {
            None
        }
    });
    let print = tx.clone();
    engine.on_print(move |s| {
        let _ = print.send((LogLevel::Info, s.to_string()));
    });
    engine.on_debug(move |s, _src, pos| {
        let line = match pos.line() {
            Some(l) => format!("debug (line {l}): {s}"),
            None => format!("debug: {s}"),
        };
        let _ = tx.send((LogLevel::Info, line));
    });
    engine
}

/// A runtime error as one message, with the line it happened on.
fn run_error(mut e: EvalAltResult, origin: &str) -> String {
    match e {
        EvalAltResult::ErrorTerminated(..) => {
            format!("{origin} was stopped (task timeout, Ctrl-C or the package stopping)")
        }
        EvalAltResult::ErrorTooManyOperations(pos) => format!(
            "{origin} failed at {}it ran more than {MAX_OPERATIONS} operations (a runaway loop?)",
            at(pos)
        ),
        _ => {
            let pos = e.take_position();
            format!("{origin} failed at {}{e}", at(pos))
        }
    }
}

/// A variable's value as the script sees it (see the module docs).
pub(crate) fn to_dynamic(v: &VarValue) -> Dynamic {
    match v {
        VarValue::Object(j) => json_to_dynamic(j),
        VarValue::Scalar(v) => match v {
            Value::Null(_) => Dynamic::UNIT,
            Value::Bool(b) => Dynamic::from_bool(*b),
            Value::I1(i) => Dynamic::from_int(i64::from(*i)),
            Value::I2(i) => Dynamic::from_int(i64::from(*i)),
            Value::I4(i) => Dynamic::from_int(i64::from(*i)),
            Value::I8(i) => Dynamic::from_int(*i),
            Value::UI1(i) => Dynamic::from_int(i64::from(*i)),
            Value::UI2(i) => Dynamic::from_int(i64::from(*i)),
            Value::UI4(i) => Dynamic::from_int(i64::from(*i)),
            // Past i64::MAX the value goes in as a float (Rhai has no u64).
            Value::UI8(i) => match i64::try_from(*i) {
                Ok(i) => Dynamic::from_int(i),
                Err(_) => Dynamic::from_float(*i as f64),
            },
            Value::R4(f) => Dynamic::from_float(f64::from(*f)),
            Value::R8(f) => Dynamic::from_float(*f),
            Value::Numeric { .. } | Value::Decimal { .. } | Value::Cy(_) => {
                Dynamic::from_float(v.to_string().parse().unwrap_or(f64::NAN))
            }
            Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s) => {
                Dynamic::from(s.clone())
            }
            // Dates, times, GUIDs and binary values go in as their text forms.
            _ => Dynamic::from(v.to_string()),
        },
    }
}

/// A script value converted for a variable of type `ty`; the error says why not.
pub(crate) fn from_dynamic(d: &Dynamic, ty: &DataType) -> Result<VarValue, String> {
    if *ty == DataType::Object {
        return dynamic_to_json(d).map(VarValue::Object);
    }
    let v = if d.is_unit() {
        Value::Null(ty.clone())
    } else if let Ok(b) = d.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = d.as_int() {
        Value::I8(i)
    } else if let Ok(f) = d.as_float() {
        Value::R8(f)
    } else if let Ok(c) = d.as_char() {
        Value::WStr(c.to_string())
    } else if d.is_string() {
        Value::WStr(d.clone().into_string().unwrap_or_default())
    } else {
        return Err("only a bool, number, string or () can go into a scalar variable".into());
    };
    v.cast_to(ty)
        .map(VarValue::Scalar)
        .map_err(|e| e.to_string())
}

/// "integer 42", "string \"abc\"", "array": the value and its Rhai type, for messages.
fn describe(d: &Dynamic) -> String {
    if d.is_unit() {
        "()".into()
    } else if d.is_int() {
        format!("integer {d}")
    } else if d.is_float() {
        format!("float {d}")
    } else if d.is_bool() {
        format!("bool {d}")
    } else if d.is_string() || d.is_char() {
        let s = d.to_string();
        let cut: String = s.chars().take(40).collect();
        let more = if cut.len() < s.len() { "..." } else { "" };
        format!("string {cut:?}{more}")
    } else {
        d.type_name().to_string()
    }
}

/// An object variable's JSON as script values.
fn json_to_dynamic(j: &serde_json::Value) -> Dynamic {
    use serde_json::Value as J;
    match j {
        J::Null => Dynamic::UNIT,
        J::Bool(b) => Dynamic::from_bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Dynamic::from(s.clone()),
        J::Array(a) => Dynamic::from_array(a.iter().map(json_to_dynamic).collect()),
        J::Object(m) => Dynamic::from_map(
            m.iter()
                .map(|(k, v)| (k.as_str().into(), json_to_dynamic(v)))
                .collect(),
        ),
    }
}

/// Script values as JSON for an object variable.
fn dynamic_to_json(d: &Dynamic) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    let d = d.clone().flatten();
    if d.is_unit() {
        Ok(J::Null)
    } else if let Ok(b) = d.as_bool() {
        Ok(J::Bool(b))
    } else if let Ok(i) = d.as_int() {
        Ok(J::from(i))
    } else if let Ok(f) = d.as_float() {
        serde_json::Number::from_f64(f)
            .map(J::Number)
            .ok_or_else(|| format!("the float {f} has no JSON form"))
    } else if d.is_string() || d.is_char() {
        Ok(J::String(d.to_string()))
    } else if d.is_array() {
        let a = d.into_array().unwrap_or_default();
        a.iter()
            .map(dynamic_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(J::Array)
    } else if d.is_map() {
        let m = d.cast::<rhai::Map>();
        let mut out = serde_json::Map::new();
        for (k, v) in &m {
            out.insert(k.to_string(), dynamic_to_json(v)?);
        }
        Ok(J::Object(out))
    } else {
        Err(format!(
            "a {} cannot be stored in an object variable",
            d.type_name()
        ))
    }
}

/// Whether the script left a value as it went in (so it is not written back,
/// and a decimal does not lose digits on a round trip through f64).
fn same(a: &Dynamic, b: &Dynamic) -> bool {
    if a.is_unit() || b.is_unit() {
        return a.is_unit() && b.is_unit();
    }
    if let (Ok(x), Ok(y)) = (a.as_bool(), b.as_bool()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_int(), b.as_int()) {
        return x == y;
    }
    if let (Ok(x), Ok(y)) = (a.as_float(), b.as_float()) {
        return x.to_bits() == y.to_bits();
    }
    if a.is_string() && b.is_string() {
        return a.to_string() == b.to_string();
    }
    if a.is_array() && b.is_array() {
        let (Some(x), Some(y)) = (a.read_lock::<rhai::Array>(), b.read_lock::<rhai::Array>())
        else {
            return false;
        };
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| same(p, q));
    }
    if a.is_map() && b.is_map() {
        let (Some(x), Some(y)) = (a.read_lock::<rhai::Map>(), b.read_lock::<rhai::Map>()) else {
            return false;
        };
        return x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)));
    }
    false
}

#[cfg(test)]
mod tests;
