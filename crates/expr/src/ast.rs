//! The syntax tree (`Ast`, `Expr`) as parsed, before types, and its pretty-printer.
//!
//! Spans are kept for error messages but are not part of equality: two trees are equal when
//! they mean the same, which is what the parse/print round-trip test relies on.

use std::fmt;

use crate::compile::VarRef;
use crate::datatype::DataType;
use crate::lexer::{RealSuffix, Span};

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Ast {
    /// The top node.
    pub root: Expr,
}

/// One node and where it was written.
#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        self.kind == other.kind
    }
}

impl Expr {
    /// A node with a span.
    pub fn new(kind: ExprKind, span: Span) -> Expr {
        Expr { kind, span }
    }
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
}

impl UnaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Neg => "-",
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
        }
    }
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Gt => ">",
            BinaryOp::Le => "<=",
            BinaryOp::Ge => ">=",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitOr => "|",
            BinaryOp::BitXor => "^",
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
        }
    }

    /// Binding power: higher binds tighter (SSIS operator precedence table).
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 2,
            BinaryOp::And => 3,
            BinaryOp::BitOr => 4,
            BinaryOp::BitXor => 5,
            BinaryOp::BitAnd => 6,
            BinaryOp::Eq | BinaryOp::Ne => 7,
            BinaryOp::Lt | BinaryOp::Gt | BinaryOp::Le | BinaryOp::Ge => 8,
            BinaryOp::Add | BinaryOp::Sub => 9,
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 10,
        }
    }

    /// Every binary operator (for tests and generators).
    pub const ALL: [BinaryOp; 16] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Gt,
        BinaryOp::Le,
        BinaryOp::Ge,
        BinaryOp::BitAnd,
        BinaryOp::BitOr,
        BinaryOp::BitXor,
        BinaryOp::And,
        BinaryOp::Or,
    ];
}

/// Precedence of the conditional operator.
pub(crate) const PREC_COND: u8 = 1;
/// Precedence of casts (one below the other prefix operators).
pub(crate) const PREC_CAST: u8 = 11;
/// Precedence of `-`, `!`, `~`.
pub(crate) const PREC_UNARY: u8 = 12;
/// Precedence of literals, variables, calls: never parenthesised.
const PREC_ATOM: u8 = 13;

/// What a node is.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal with its suffixes (`37`, `5U`, `9L`, `7UL`, `0xFF`).
    Int {
        value: u64,
        unsigned: bool,
        long: bool,
        hex: bool,
    },
    /// A decimal literal as written (`5.8`), typed DT_NUMERIC.
    Numeric(String),
    /// A floating-point literal as written, without suffix.
    Real(String, RealSuffix),
    /// A string literal (decoded).
    Str(String),
    /// `TRUE` / `FALSE`.
    Bool(bool),
    /// `NULL(DT_xxx, ...)`.
    Null(DataType),
    /// `@[Namespace::Name]` or `@Name`.
    Var(VarRef),
    /// A data-flow column: `[Unit Price]` (`bracketed`) or a bare identifier `amount`.
    /// Outside a data flow (a `Scope` without columns) it is an error when checked.
    Column { name: String, bracketed: bool },
    /// `-x`, `!x`, `~x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `c ? a : b`.
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `(DT_xxx, ...) x`.
    Cast(DataType, Box<Expr>),
    /// `NAME(args)`; the name is upper-cased.
    Call(String, Vec<Expr>),
    /// `@[User::X] = expr` (only at the top).
    Assign(VarRef, Box<Expr>),
}

impl ExprKind {
    fn precedence(&self) -> u8 {
        match self {
            ExprKind::Binary(op, ..) => op.precedence(),
            ExprKind::Cond(..) | ExprKind::Assign(..) => PREC_COND,
            ExprKind::Cast(..) => PREC_CAST,
            ExprKind::Unary(..) => PREC_UNARY,
            _ => PREC_ATOM,
        }
    }
}

/// Writes a string literal with the escapes the lexer reads back.
pub fn write_string_literal(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '\\' => f.write_str("\\\\")?,
            '"' => f.write_str("\\\"")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{7}' => f.write_str("\\a")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{b}' => f.write_str("\\v")?,
            '\u{c}' => f.write_str("\\f")?,
            c if c.is_control() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(f, "\\x{unit:04X}")?;
                }
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Writes `(DT_xxx, p1, p2)`.
pub fn write_type_spec(f: &mut impl fmt::Write, ty: &DataType) -> fmt::Result {
    match ty {
        DataType::WStr { len: Some(n) } => write!(f, "(DT_WSTR, {n})"),
        DataType::Str {
            len: Some(n),
            codepage,
        } => write!(f, "(DT_STR, {n}, {codepage})"),
        DataType::Numeric { precision, scale } => {
            write!(f, "(DT_NUMERIC, {precision}, {scale})")
        }
        DataType::Decimal { scale } => write!(f, "(DT_DECIMAL, {scale})"),
        DataType::WStr { len: None } | DataType::Str { len: None, .. } => {
            write!(f, "({})", ty.ssis_name())
        }
        other => f.write_str(&other.cast_spec()),
    }
}

impl Expr {
    fn write_child(&self, f: &mut fmt::Formatter<'_>, min_prec: u8) -> fmt::Result {
        if self.kind.precedence() < min_prec {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Int {
                value,
                unsigned,
                long,
                hex,
            } => {
                if *hex {
                    write!(f, "0x{value:X}")?;
                } else {
                    write!(f, "{value}")?;
                }
                if *unsigned {
                    f.write_str("U")?;
                }
                if *long {
                    f.write_str("L")?;
                }
                Ok(())
            }
            ExprKind::Numeric(text) => f.write_str(text),
            ExprKind::Real(text, suffix) => {
                f.write_str(text)?;
                match suffix {
                    RealSuffix::None => Ok(()),
                    RealSuffix::F => f.write_str("F"),
                    RealSuffix::L => f.write_str("L"),
                }
            }
            ExprKind::Str(s) => write_string_literal(f, s),
            ExprKind::Bool(b) => f.write_str(if *b { "TRUE" } else { "FALSE" }),
            ExprKind::Null(ty) => {
                f.write_str("NULL")?;
                write_type_spec(f, ty)
            }
            ExprKind::Var(v) => write!(f, "@[{}]", v.qualified()),
            ExprKind::Column {
                name,
                bracketed: false,
            } => f.write_str(name),
            ExprKind::Column { name, .. } => write!(f, "[{name}]"),
            ExprKind::Unary(op, e) => {
                // Prefix forms (other unary operators, casts) follow directly: "--1" lexes as
                // two minus signs, and no operator token starts with "!" followed by "(".
                // Adding parentheses here would deepen the text the parser sees.
                f.write_str(op.symbol())?;
                e.write_child(f, PREC_CAST)
            }
            ExprKind::Binary(op, l, r) => {
                let p = op.precedence();
                l.write_child(f, p)?;
                write!(f, " {} ", op.symbol())?;
                r.write_child(f, p + 1)
            }
            ExprKind::Cond(c, a, b) => {
                c.write_child(f, PREC_COND + 1)?;
                f.write_str(" ? ")?;
                // The middle operand runs up to ":", so it never needs parentheses.
                a.write_child(f, 0)?;
                f.write_str(" : ")?;
                b.write_child(f, PREC_COND)
            }
            ExprKind::Cast(ty, e) => {
                write_type_spec(f, ty)?;
                e.write_child(f, PREC_CAST)
            }
            ExprKind::Call(name, args) => {
                write!(f, "{name}(")?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_str(")")
            }
            ExprKind::Assign(v, e) => write!(f, "@[{}] = {e}", v.qualified()),
        }
    }
}

impl fmt::Display for Ast {
    /// Prints the expression so that parsing the text gives back an equal tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.root)
    }
}
