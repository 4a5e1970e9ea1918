//! One node of the typed tree applied to values its operands already have: the same
//! functions [`crate::Compiled::eval`] uses, for evaluators that compute the operands
//! another way (the data flow evaluates a whole batch of rows at a time and calls these for
//! the operations it has no vector kernel for).

use crate::ast::BinaryOp;
use crate::check::{Domain, TExpr, TKind};
use crate::datatype::DataType;
use crate::error::ExprError;
use crate::eval;
use crate::functions::{self, Func};
use crate::value::Value;

/// Applies `node` to its operands' values, in the order of the node's children.
///
/// Leaves (`Const`, `Var`, `Column`) and `Cond` (which evaluates only one branch) are not
/// operations on values: for them this returns an internal error.
pub fn apply(node: &TExpr, mut args: Vec<Value>) -> Result<Value, ExprError> {
    let ty = &node.ty;
    let arity = match &node.kind {
        TKind::Convert(_) | TKind::Neg(_) | TKind::Not(_) | TKind::BitNot(_) => 1,
        TKind::Arith(..)
        | TKind::Concat(..)
        | TKind::Compare(..)
        | TKind::Logic(..)
        | TKind::Bitwise(..) => 2,
        TKind::Call(_, a) => a.len(),
        TKind::Const(_) | TKind::Var(_) | TKind::Column(_) | TKind::Cond(..) => {
            return Err(ExprError::eval(
                "internal error: a leaf or a conditional is not applied to values",
            ));
        }
    };
    if args.len() != arity {
        return Err(ExprError::eval(format!(
            "internal error: {} operand values for an operation that takes {arity}",
            args.len()
        )));
    }
    match &node.kind {
        TKind::Convert(_) => args[0].cast_to(ty),
        TKind::Neg(_) | TKind::Not(_) | TKind::BitNot(_) => {
            eval::unary_value(&node.kind, args.swap_remove(0), ty)
        }
        TKind::Arith(op, ..) => eval::arith(*op, &args[0], &args[1], ty),
        TKind::Concat(..) => {
            let y = args.swap_remove(1);
            let x = args.swap_remove(0);
            eval::concat(x, y, ty)
        }
        TKind::Compare(op, domain, ..) => Ok(compare(*op, *domain, &args[0], &args[1])),
        TKind::Logic(op, ..) => Ok(eval::logic_values(*op, &args[0], &args[1])),
        TKind::Bitwise(op, ..) => eval::bitwise_values(*op, &args[0], &args[1], ty),
        TKind::Call(f, _) => call(*f, args, ty),
        _ => Err(ExprError::eval("internal error: not an operation")),
    }
}

/// `x op y` for numbers, computed in the result type `ty` (checked: overflow and a zero
/// divisor are errors).
pub fn arith(op: BinaryOp, x: &Value, y: &Value, ty: &DataType) -> Result<Value, ExprError> {
    eval::arith(op, x, y, ty)
}

/// A comparison in `domain`; NULL when either side is NULL.
pub fn compare(op: BinaryOp, domain: Domain, x: &Value, y: &Value) -> Value {
    eval::compare_values(op, domain, x, y)
}

/// A built-in function applied to its argument values; `ty` is the call's result type.
pub fn call(func: Func, args: Vec<Value>, ty: &DataType) -> Result<Value, ExprError> {
    functions::apply(func, args, ty)
}

/// A variable's or column's value as the type the checker gave the reference: a NULL takes
/// that type, a value of another kind is cast.
pub fn coerce_input(v: Value, ty: &DataType) -> Result<Value, ExprError> {
    eval::coerce_input(v, ty)
}
