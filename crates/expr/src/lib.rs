//! checkflow-expr: the SSIS expression language, independent of packages.
//!
//! The steps, each in its own module:
//!
//! 1. `lexer`: text -> tokens (literals, escapes, operators), with byte spans.
//! 2. `parser`: tokens -> [`Ast`] (a Pratt parser with SSIS's precedence table).
//! 3. `check`: [`Ast`] + [`Scope`] -> typed tree (promotion rules, casts, function
//!    signatures, constant folding).
//! 4. `eval`: typed tree + [`Env`] -> [`Value`] (checked arithmetic, NULL propagation).
//!
//! [`compile`] runs steps 1 to 3 once; [`Compiled::eval`] runs step 4 as often as needed.
//! The engine resolves variables through [`Scope`] (names to slots and types) and [`Env`]
//! (slots to values). Decisions taken where the SSIS documentation is silent are listed in
//! this crate's README.

pub mod ast;
mod binary;
mod check;
pub mod compile;
pub mod datatype;
pub mod dates;
pub mod error;
pub mod eval;
pub mod functions;
pub mod lexer;
pub mod parser;
pub mod scalar;
mod temporal;
pub mod value;
mod varmap;

pub use ast::Ast;
pub use compile::{ColumnInfo, Compiled, Scope, VarInfo, VarRef, compile};
pub use datatype::DataType;
pub use error::ExprError;
pub use eval::Env;
pub use parser::parse;
pub use value::Value;
pub use varmap::VarMap;

/// The typed tree [`Compiled::tree`] gives: what each node computes and its type.
pub mod typed {
    pub use crate::check::{Domain, TExpr, TKind};
}

/// The crates whose types appear in [`Value`] (decimals and civil dates and times), so that
/// users build and read values with the same versions.
pub use jiff;
pub use rust_decimal;
