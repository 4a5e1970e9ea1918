//! `compile`: parse + type-check once, against a `Scope`; `Compiled` then evaluates many times.

use std::sync::Arc;

use crate::ast::ExprKind;
use crate::check::{Checker, Ctx, TExpr};
use crate::datatype::DataType;
use crate::error::{ExprError, Snippet};
use crate::eval::{Env, eval};
use crate::parser::parse;

/// A variable reference as written: namespace (`User` when omitted) and name (case-sensitive).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VarRef {
    pub namespace: String,
    pub name: String,
}

impl VarRef {
    /// `"Namespace::Name"`.
    pub fn qualified(&self) -> String {
        // Pushed, not `format!`ed: a checkpoint record names each variable it holds.
        let mut s = String::with_capacity(self.namespace.len() + 2 + self.name.len());
        s.push_str(&self.namespace);
        s.push_str("::");
        s.push_str(&self.name);
        s
    }

    /// Reads `"User::X"`, `"X"` or `"System::Y"` (surrounding spaces are ignored).
    pub fn parse(text: &str) -> VarRef {
        let t = text.trim();
        match t.split_once("::") {
            Some((ns, name)) => VarRef {
                namespace: ns.trim().to_string(),
                name: name.trim().to_string(),
            },
            None => VarRef {
                namespace: "User".to_string(),
                name: t.to_string(),
            },
        }
    }
}

/// What the engine tells the compiler about one variable.
#[derive(Clone, Debug)]
pub struct VarInfo {
    /// Where `Env::value` finds the variable at run time.
    pub slot: u32,
    /// Its declared type.
    pub ty: DataType,
    /// Whether an assignment may write it.
    pub read_only: bool,
}

/// What a data flow tells the compiler about one column of its rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Where `Env::column` finds the column's value at run time (in a data flow, the
    /// column's index in the batch).
    pub slot: u32,
    /// The column's SSIS type.
    pub ty: DataType,
}

/// Resolves variable names (and, in a data flow, column names) at compile time (the engine
/// implements it).
pub trait Scope {
    /// The variable's slot and type, or `None` when it does not exist.
    fn lookup(&self, var: &VarRef) -> Option<VarInfo>;

    /// The column called `name` (`amount`, or `Unit Price` written `[Unit Price]`), or `None`
    /// when there is no such column. Outside a data flow there are no columns: the default
    /// refuses every name, and a column reference is then a syntax error.
    fn column(&self, name: &str) -> Option<ColumnInfo> {
        let _ = name;
        None
    }
}

/// A parsed and type-checked expression, ready to evaluate any number of times.
#[derive(Clone, Debug)]
pub struct Compiled {
    source: Arc<str>,
    root: Arc<TExpr>,
    result_type: DataType,
    assignment: Option<(u32, VarRef)>,
    variables: Arc<[VarRef]>,
    columns: Arc<[(String, u32)]>,
}

/// Parses and type-checks `src`. `allow_assign` permits a top-level `@[User::X] = expr`.
pub fn compile(src: &str, scope: &dyn Scope, allow_assign: bool) -> Result<Compiled, ExprError> {
    let ast = parse(src)?;
    let mut ck = Checker {
        src,
        scope,
        vars: Vec::new(),
        columns: Vec::new(),
    };
    let (root, result_type, assignment) = match &ast.root.kind {
        ExprKind::Assign(var, value) => {
            let target_span = ast.root.span;
            let snippet = Snippet::new(src, target_span.start, target_span.start + 1);
            if !allow_assign {
                return Err(ExprError::Assignment {
                    message: format!(
                        "an assignment to \"{}\" is not allowed here (only an Expression task or a for_loop init/assign may assign); use \"==\" to compare",
                        var.qualified()
                    ),
                    snippet,
                });
            }
            let info = scope
                .lookup(var)
                .ok_or_else(|| ExprError::UnknownVariable {
                    name: var.qualified(),
                    snippet: snippet.clone(),
                })?;
            if info.read_only {
                return Err(ExprError::ReadOnly {
                    name: var.qualified(),
                    snippet,
                });
            }
            if info.ty == DataType::Object {
                return Err(ck.type_error(
                    target_span,
                    format!(
                        "variable \"{}\" has type DT_OBJECT (object), which an expression cannot assign",
                        var.qualified()
                    ),
                ));
            }
            let value = ck.check(value, Ctx::Root)?;
            let converted = assign_convert(&ck, value, &info.ty, var)?;
            (converted, info.ty.clone(), Some((info.slot, var.clone())))
        }
        _ => {
            let root = ck.check(&ast.root, Ctx::Root)?;
            let ty = root.ty.clone();
            (root, ty, None)
        }
    };
    Ok(Compiled {
        source: Arc::from(src),
        root: Arc::new(root),
        result_type,
        assignment,
        variables: ck.vars.into(),
        columns: ck.columns.into(),
    })
}

/// Converts an assigned value to the variable's type where SSIS converts implicitly:
/// numbers to any numeric type (range checked when it runs), strings to strings, dates to
/// dates. Anything else is a type error that suggests the cast.
fn assign_convert(
    ck: &Checker<'_>,
    value: TExpr,
    target: &DataType,
    var: &crate::compile::VarRef,
) -> Result<TExpr, ExprError> {
    let from = value.ty.clone();
    let ok = from == *target
        || (from.is_numeric() && target.is_numeric())
        || (from.is_string() && target.is_string())
        || (from.is_date() && target.is_date());
    if !ok {
        return Err(ck.type_error(
            value.span,
            format!(
                "cannot assign a {} value to variable \"{}\" of type {}; cast it explicitly, e.g. {}",
                from.ssis_name(),
                var.qualified(),
                target.ssis_name(),
                target.cast_spec()
            ),
        ));
    }
    let target = match target {
        // A string variable takes the whole string, whatever length the expression had.
        DataType::WStr { .. } => DataType::WStr { len: None },
        other => other.clone(),
    };
    if from == target
        || (from.is_string()
            && target.is_string()
            && matches!(target, DataType::WStr { .. })
            && matches!(from, DataType::WStr { .. }))
    {
        return Ok(value);
    }
    ck.convert(value, &target)
}

impl Compiled {
    /// The expression text as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The type `eval` returns; for an assignment, the target variable's type.
    pub fn result_type(&self) -> &DataType {
        &self.result_type
    }

    /// The target slot and name of an assignment.
    pub fn assignment(&self) -> Option<(u32, &VarRef)> {
        self.assignment.as_ref().map(|(s, v)| (*s, v))
    }

    /// Every variable the expression reads, in order of first use.
    pub fn variables(&self) -> Vec<VarRef> {
        self.variables.to_vec()
    }

    /// Every column the expression reads (name as written, slot), in order of first use.
    pub fn columns(&self) -> &[(String, u32)] {
        &self.columns
    }

    /// The typed tree, for evaluators other than [`Compiled::eval`] (the data flow's
    /// vectorised one). For an assignment, the converted value.
    pub fn tree(&self) -> &TExpr {
        &self.root
    }

    /// Evaluates. For an assignment, returns the value to store, already converted to the
    /// variable's type; the caller stores it.
    pub fn eval(&self, env: &dyn Env) -> Result<Value, ExprError> {
        let v = eval(&self.root, env)?;
        // NULLs carry the declared result type (with its parameters) for the caller.
        Ok(match v {
            Value::Null(t)
                if t.ssis_name() != self.result_type.ssis_name() || t != self.result_type =>
            {
                match &self.result_type {
                    DataType::WStr { .. } | DataType::Str { .. } => Value::Null(t),
                    other => Value::Null(other.clone()),
                }
            }
            other => other,
        })
    }
}

use crate::value::Value;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VarMap;

    fn vars() -> VarMap {
        let mut m = VarMap::new();
        m.add("User::N", DataType::I4, false, Value::I4(42));
        m.add(
            "System::PackageName",
            DataType::WStr { len: None },
            true,
            Value::WStr("pkg".into()),
        );
        m.add(
            "User::O",
            DataType::Object,
            false,
            Value::Null(DataType::Object),
        );
        m.add(
            "User::S",
            DataType::WStr { len: None },
            false,
            Value::WStr("x".into()),
        );
        m
    }

    #[test]
    fn assignment_converts_to_variable_type() {
        let v = vars();
        let c = compile("@[User::N] = @N + 1.6", &v, true).expect("compiles");
        assert_eq!(c.result_type(), &DataType::I4);
        assert_eq!(
            c.assignment().map(|(s, r)| (s, r.qualified())),
            Some((0, "User::N".to_string()))
        );
        assert_eq!(c.eval(&v), Ok(Value::I4(44)));
        assert_eq!(c.variables(), vec![VarRef::parse("N")]);
    }

    #[test]
    fn assignment_rules() {
        let v = vars();
        assert!(matches!(
            compile("@[User::N] = 1", &v, false),
            Err(ExprError::Assignment { .. })
        ));
        let e = compile("@[System::PackageName] = \"x\"", &v, true).expect_err("read-only");
        assert!(e.to_string().contains("System::PackageName"), "{e}");
        let e = compile("@[User::N] = \"x\"", &v, true).expect_err("type");
        assert!(e.to_string().contains("(DT_I4)"), "{e}");
        let e = compile("@[User::S] = 5", &v, true).expect_err("type");
        assert!(e.to_string().contains("(DT_WSTR"), "{e}");
    }

    #[test]
    fn object_variables_are_rejected() {
        let v = vars();
        let e = compile("ISNULL(@O)", &v, false).expect_err("object");
        assert!(e.to_string().contains("User::O"), "{e}");
    }

    #[test]
    fn deepest_expressions_fit_a_one_megabyte_stack() {
        let depth = crate::parser::MAX_DEPTH - 2;
        let forms = [
            format!("{}1{}", "(".repeat(depth), ")".repeat(depth)),
            format!("{}@N", "-".repeat(depth)),
            vec!["@N"; depth].join(" + "),
            format!("{}@N{}", "ABS(".repeat(depth), ")".repeat(depth)),
            format!("{}1", "@N > 1 ? 1 : ".repeat(depth)),
        ];
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let v = vars();
                forms
                    .iter()
                    .map(|f| compile(f, &v, false).and_then(|c| c.eval(&v)).map(|_| ()))
                    .collect::<Vec<_>>()
            })
            .expect("spawns");
        let results = handle.join().expect("no stack overflow");
        for r in results {
            assert!(matches!(r, Ok(()) | Err(ExprError::Eval { .. })), "{r:?}");
        }
    }

    #[test]
    fn compiled_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Compiled>();
    }
}
