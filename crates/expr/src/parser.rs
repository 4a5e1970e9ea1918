//! The Pratt parser: tokens -> `Ast`. Syntax only; types are checked in `check`.

use crate::ast::{Ast, BinaryOp, Expr, ExprKind, PREC_CAST, PREC_COND, PREC_UNARY, UnaryOp};
use crate::compile::VarRef;
use crate::datatype::DataType;
use crate::error::{ExprError, Snippet};
use crate::lexer::{Span, Tok, Token, tokenize};

/// Deepest nesting accepted, in tree levels. Deeper expressions are an error rather than a
/// risk of overflowing the stack in the checker or the evaluator.
pub const MAX_DEPTH: usize = 128;

/// Longest expression text accepted, in bytes.
pub const MAX_SOURCE_LEN: usize = 1 << 20;

/// Parses an expression into its syntax tree.
pub fn parse(src: &str) -> Result<Ast, ExprError> {
    if src.len() > MAX_SOURCE_LEN {
        return Err(ExprError::Syntax {
            message: format!("expression is longer than {MAX_SOURCE_LEN} bytes"),
            snippet: Snippet::new("", 0, 0),
        });
    }
    let tokens = tokenize(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
    };
    if p.peek() == &Tok::Eof {
        return Err(p.error_here("expected an expression, found an empty text"));
    }
    // An assignment is "@var = expr" at the very start.
    let root = match p.peek().clone() {
        Tok::Var(name) if p.peek_at(1) == &Tok::Assign => {
            let var_span = p.bump().span;
            let target = p.var_ref(&name, var_span)?;
            p.bump();
            let (value, _) = p.expr(0)?;
            let span = var_span.to(value.span);
            Expr::new(ExprKind::Assign(target, Box::new(value)), span)
        }
        _ => p.expr(0)?.0,
    };
    match p.peek() {
        Tok::Eof => Ok(Ast { root }),
        Tok::Assign => Err(p.error_here(
            "\"=\" assigns only as \"@[User::X] = expression\" at the start of an expression; use \"==\" to compare",
        )),
        Tok::RParen => Err(p.error_here("found \")\" without a matching \"(\"")),
        other => {
            let found = other.describe();
            Err(p.error_here(&format!(
                "expected an operator or the end of the expression, found {found}"
            )))
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Whether an identifier names a data type (`DT_...`, any case).
fn is_type_name(name: &str) -> bool {
    name.len() > 3 && name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("DT_"))
}

fn binary_op(tok: &Tok) -> Option<BinaryOp> {
    Some(match tok {
        Tok::Plus => BinaryOp::Add,
        Tok::Minus => BinaryOp::Sub,
        Tok::Star => BinaryOp::Mul,
        Tok::Slash => BinaryOp::Div,
        Tok::Percent => BinaryOp::Mod,
        Tok::EqEq => BinaryOp::Eq,
        Tok::NotEq => BinaryOp::Ne,
        Tok::Lt => BinaryOp::Lt,
        Tok::Gt => BinaryOp::Gt,
        Tok::Le => BinaryOp::Le,
        Tok::Ge => BinaryOp::Ge,
        Tok::Amp => BinaryOp::BitAnd,
        Tok::Pipe => BinaryOp::BitOr,
        Tok::Caret => BinaryOp::BitXor,
        Tok::AndAnd => BinaryOp::And,
        Tok::OrOr => BinaryOp::Or,
        _ => return None,
    })
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let i = (self.pos + n).min(self.tokens.len() - 1);
        &self.tokens[i].tok
    }

    fn span(&self) -> Span {
        self.tokens[self.pos.min(self.tokens.len() - 1)].span
    }

    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// Reads the text of a variable token, refusing names that could not be printed back.
    fn var_ref(&self, text: &str, span: Span) -> Result<VarRef, ExprError> {
        let var = VarRef::parse(text);
        let bad = |part: &str| {
            part.is_empty() || part.contains([':', '[', ']']) || part.chars().any(char::is_control)
        };
        if bad(&var.namespace) || bad(&var.name) {
            return Err(self.error_at(
                span,
                "invalid variable name: write @Name, @[Name] or @[Namespace::Name] (no \":\" or control characters inside a name)",
            ));
        }
        Ok(var)
    }

    fn error_at(&self, span: Span, message: &str) -> ExprError {
        ExprError::Syntax {
            message: message.to_string(),
            snippet: Snippet::new(self.src, span.start, span.end),
        }
    }

    fn error_here(&self, message: &str) -> ExprError {
        self.error_at(self.span(), message)
    }

    fn expected(&self, what: &str) -> ExprError {
        let found = self.peek().describe();
        self.error_here(&format!("expected {what}, found {found}"))
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Span, ExprError> {
        if *self.peek() == tok {
            Ok(self.bump().span)
        } else {
            Err(self.expected(what))
        }
    }

    fn too_deep(&self, depth: usize) -> Result<(), ExprError> {
        if depth > MAX_DEPTH || self.depth > MAX_DEPTH {
            Err(ExprError::TooDeep { limit: MAX_DEPTH })
        } else {
            Ok(())
        }
    }

    /// Parses an expression whose operators bind at least as tightly as `min_prec`.
    /// Returns the node and the depth of its tree.
    fn expr(&mut self, min_prec: u8) -> Result<(Expr, usize), ExprError> {
        self.depth += 1;
        self.too_deep(0)?;
        let result = self.expr_inner(min_prec);
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<(Expr, usize), ExprError> {
        let (mut lhs, mut depth) = self.prefix()?;
        loop {
            if *self.peek() == Tok::Question {
                if PREC_COND < min_prec {
                    break;
                }
                (lhs, depth) = self.conditional(lhs, depth)?;
                continue;
            }
            let Some(op) = binary_op(self.peek()) else {
                break;
            };
            if op.precedence() < min_prec {
                break;
            }
            (lhs, depth) = self.binary(op, lhs, depth)?;
        }
        Ok((lhs, depth))
    }

    /// After the condition of `c ? a : b`, with `?` next.
    #[inline(never)]
    fn conditional(&mut self, cond: Expr, depth: usize) -> Result<(Expr, usize), ExprError> {
        self.bump();
        let (then, d1) = self.expr(0)?;
        self.expect(Tok::Colon, "\":\" of the conditional operator \"? :\"")?;
        // Right to left: the else branch may itself be a conditional.
        let (otherwise, d2) = self.expr(PREC_COND)?;
        let depth = 1 + depth.max(d1).max(d2);
        self.too_deep(depth)?;
        let span = cond.span.to(otherwise.span);
        Ok((
            Expr::new(
                ExprKind::Cond(Box::new(cond), Box::new(then), Box::new(otherwise)),
                span,
            ),
            depth,
        ))
    }

    /// After the left operand, with the operator next.
    #[inline(never)]
    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: Expr,
        depth: usize,
    ) -> Result<(Expr, usize), ExprError> {
        self.bump();
        // Left to right: the right operand binds strictly tighter.
        let (rhs, d) = self.expr(op.precedence() + 1)?;
        let depth = 1 + depth.max(d);
        self.too_deep(depth)?;
        let span = lhs.span.to(rhs.span);
        Ok((
            Expr::new(ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span),
            depth,
        ))
    }

    fn prefix(&mut self) -> Result<(Expr, usize), ExprError> {
        let op = match self.peek() {
            Tok::Minus => UnaryOp::Neg,
            Tok::Bang => UnaryOp::Not,
            Tok::Tilde => UnaryOp::BitNot,
            Tok::LParen => return self.paren(),
            _ => return self.leaf(),
        };
        self.unary(op)
    }

    #[inline(never)]
    fn unary(&mut self, op: UnaryOp) -> Result<(Expr, usize), ExprError> {
        let start = self.bump().span;
        let (e, d) = self.expr(PREC_UNARY)?;
        let span = start.to(e.span);
        Ok((Expr::new(ExprKind::Unary(op, Box::new(e)), span), d + 1))
    }

    /// A cast `(DT_xxx, ...) x` or a parenthesised expression.
    #[inline(never)]
    fn paren(&mut self) -> Result<(Expr, usize), ExprError> {
        let start = self.bump().span;
        if let Tok::Ident(name) = self.peek()
            && is_type_name(name)
            && matches!(self.peek_at(1), Tok::RParen | Tok::Comma)
        {
            let ty = self.type_spec_after_paren(start)?;
            let (e, d) = self.expr(PREC_CAST)?;
            let span = start.to(e.span);
            return Ok((Expr::new(ExprKind::Cast(ty, Box::new(e)), span), d + 1));
        }
        let (e, d) = self.expr(0)?;
        if *self.peek() != Tok::RParen {
            return Err(self.unclosed(start));
        }
        self.bump();
        Ok((e, d))
    }

    #[inline(never)]
    fn unclosed(&self, open: Span) -> ExprError {
        let found = self.peek().describe();
        self.error_here(&format!(
            "expected \")\" to close the \"(\" at column {}, found {found}",
            self.src[..open.start].chars().count() + 1
        ))
    }

    #[inline(never)]
    fn leaf(&mut self) -> Result<(Expr, usize), ExprError> {
        let tok = self.bump();
        let leaf = |kind| Ok((Expr::new(kind, tok.span), 1));
        match tok.tok {
            Tok::Int {
                value,
                unsigned,
                long,
                hex,
            } => leaf(ExprKind::Int {
                value,
                unsigned,
                long,
                hex,
            }),
            Tok::Numeric(text) => leaf(ExprKind::Numeric(text)),
            Tok::Real(text, suffix) => leaf(ExprKind::Real(text, suffix)),
            Tok::Str(s) => leaf(ExprKind::Str(s)),
            Tok::Var(name) => leaf(ExprKind::Var(self.var_ref(&name, tok.span)?)),
            Tok::Ident(name) => self.ident(name, tok.span),
            // Whether a column exists is decided when the expression is checked.
            Tok::Bracketed(name) => leaf(ExprKind::Column {
                name,
                bracketed: true,
            }),
            Tok::Lineage(id) => Err(self.error_at(
                tok.span,
                &format!("lineage identifier #{id} is not available outside a data flow"),
            )),
            Tok::Eof => Err(self.error_at(
                tok.span,
                "expected an operand, found the end of the expression",
            )),
            other => Err(self.error_at(
                tok.span,
                &format!("expected an operand, found {}", other.describe()),
            )),
        }
    }

    #[inline(never)]
    fn ident(&mut self, name: String, span: Span) -> Result<(Expr, usize), ExprError> {
        if *self.peek() == Tok::LParen {
            let upper = name.to_ascii_uppercase();
            let open = self.bump().span;
            if upper == "NULL" {
                let ty = self.type_spec_inside(open)?;
                let end = self.expect(Tok::RParen, "\")\" to close NULL(")?;
                return Ok((Expr::new(ExprKind::Null(ty), span.to(end)), 1));
            }
            let mut args = Vec::new();
            let mut depth = 1;
            if *self.peek() != Tok::RParen {
                loop {
                    let (a, d) = self.expr(0)?;
                    depth = depth.max(d + 1);
                    args.push(a);
                    match self.peek() {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RParen => break,
                        _ => {
                            return Err(self
                                .expected(&format!("\",\" or \")\" in the arguments of {upper}")));
                        }
                    }
                }
            }
            let end = self.bump().span;
            self.too_deep(depth)?;
            return Ok((Expr::new(ExprKind::Call(upper, args), span.to(end)), depth));
        }
        if name.eq_ignore_ascii_case("true") {
            return Ok((Expr::new(ExprKind::Bool(true), span), 1));
        }
        if name.eq_ignore_ascii_case("false") {
            return Ok((Expr::new(ExprKind::Bool(false), span), 1));
        }
        if is_type_name(&name) {
            return Err(self.error_at(
                span,
                &format!("a data type must be written in parentheses as a cast, such as ({name})"),
            ));
        }
        // A bare identifier is a column in a data flow; elsewhere checking refuses it.
        Ok((
            Expr::new(
                ExprKind::Column {
                    name,
                    bracketed: false,
                },
                span,
            ),
            1,
        ))
    }

    /// After "(" of a cast: `DT_NAME [, n]* )`.
    fn type_spec_after_paren(&mut self, open: Span) -> Result<DataType, ExprError> {
        let ty = self.type_spec_inside(open)?;
        self.expect(Tok::RParen, "\")\" to close the cast")?;
        Ok(ty)
    }

    /// `DT_NAME [, n]*` (without the closing parenthesis).
    fn type_spec_inside(&mut self, open: Span) -> Result<DataType, ExprError> {
        let name_span = self.span();
        let Tok::Ident(name) = self.peek().clone() else {
            return Err(self.expected("a data type such as DT_WSTR"));
        };
        self.bump();
        let mut params = Vec::new();
        while *self.peek() == Tok::Comma {
            self.bump();
            match self.peek().clone() {
                Tok::Int {
                    value,
                    unsigned: false,
                    long: false,
                    hex: false,
                } if value <= u64::from(u32::MAX) => {
                    params.push(value as u32);
                    self.bump();
                }
                _ => return Err(self.expected("a whole number as a data type parameter")),
            }
        }
        let end = self.span();
        DataType::from_spec(&name, &params).map_err(|m| {
            let span = if m.starts_with("unknown") || m.contains("not supported") {
                name_span
            } else {
                open.to(end)
            };
            self.error_at(span, &m)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        parse(s).expect("parses").to_string()
    }

    #[test]
    fn precedence_follows_ssis_table() {
        assert_eq!(roundtrip("1 + 2 * 3"), "1 + 2 * 3");
        assert_eq!(roundtrip("(1 + 2) * 3"), "(1 + 2) * 3");
        assert_eq!(roundtrip("1 - (2 - 3)"), "1 - (2 - 3)");
        assert_eq!(roundtrip("1 - 2 - 3"), "1 - 2 - 3");
        assert_eq!(roundtrip("a(1) || b(2) && c(3)"), "A(1) || B(2) && C(3)");
        assert_eq!(roundtrip("1 | 2 ^ 3 & 4"), "1 | 2 ^ 3 & 4");
        assert_eq!(roundtrip("(1 | 2) & 3"), "(1 | 2) & 3");
        assert_eq!(
            roundtrip("TRUE ? 1 : FALSE ? 2 : 3"),
            "TRUE ? 1 : FALSE ? 2 : 3"
        );
        assert_eq!(roundtrip("(TRUE ? 1 : 2) + 1"), "(TRUE ? 1 : 2) + 1");
        assert_eq!(roundtrip("-(DT_I4)@x"), "-(DT_I4)@[User::x]");
        assert_eq!(roundtrip("- -1"), "--1");
        assert_eq!(
            roundtrip("TRUE ? (FALSE ? 1 : 2) : 3"),
            "TRUE ? FALSE ? 1 : 2 : 3"
        );
        assert_eq!(
            roundtrip("(DT_WSTR,10)@n + \"a\""),
            "(DT_WSTR, 10)@[User::n] + \"a\""
        );
        assert_eq!(roundtrip("1 < 2 == 3 > 4"), "1 < 2 == 3 > 4");
    }

    #[test]
    fn assignment_only_at_the_start() {
        assert!(matches!(
            parse("@[User::X] = 1 + 2").map(|a| a.root.kind),
            Ok(ExprKind::Assign(..))
        ));
        let e = parse("1 + @x = 2").expect_err("not an assignment");
        assert!(e.to_string().contains("use \"==\" to compare"), "{e}");
    }

    #[test]
    fn syntax_errors_have_a_caret() {
        let e = parse("1 + * 2").expect_err("bad");
        assert_eq!(
            e.to_string(),
            "syntax error: expected an operand, found \"*\"\n  --> line 1, column 5\n  | 1 + * 2\n  |     ^"
        );
        let e = parse("(1 + 2").expect_err("bad");
        assert!(e.to_string().contains("expected \")\""), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert_eq!(parse(&deep), Err(ExprError::TooDeep { limit: MAX_DEPTH }));
        let neg = format!("{}1", "-".repeat(5000));
        assert_eq!(parse(&neg), Err(ExprError::TooDeep { limit: MAX_DEPTH }));
        let chain = vec!["1"; 1000].join(" + ");
        assert_eq!(parse(&chain), Err(ExprError::TooDeep { limit: MAX_DEPTH }));
    }
}
