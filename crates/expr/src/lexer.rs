//! The lexer: expression text -> tokens with byte spans. Knows literals, escapes and operators.

use crate::error::{ExprError, Snippet};

/// A half-open byte range in the expression text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The range `start..end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    /// The smallest range covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// The suffix of a real literal (`F` -> DT_R4, `L` -> DT_R8, none -> DT_R8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RealSuffix {
    None,
    F,
    L,
}

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// An integer literal: its value, and its `U` / `L` suffixes, and whether it was hex.
    Int {
        value: u64,
        unsigned: bool,
        long: bool,
        hex: bool,
    },
    /// A decimal literal without exponent or suffix, as written (`5.8`, `.9`, `6.`).
    Numeric(String),
    /// A floating-point literal as written without its suffix.
    Real(String, RealSuffix),
    /// A string literal, escapes decoded.
    Str(String),
    /// A regular identifier (function name, TRUE/FALSE, type name).
    Ident(String),
    /// A variable: the text after `@`, without brackets.
    Var(String),
    /// A bracketed identifier `[Column Name]` (a data-flow column).
    Bracketed(String),
    /// A lineage identifier `#123`.
    Lineage(String),
    LParen,
    RParen,
    Comma,
    Question,
    Colon,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Gt,
    Le,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    Amp,
    Pipe,
    Caret,
    Tilde,
    Assign,
    Eof,
}

impl Tok {
    /// How the token is described in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Int { .. } | Tok::Numeric(_) | Tok::Real(..) => "a number".to_string(),
            Tok::Str(_) => "a string".to_string(),
            Tok::Ident(s) => format!("\"{s}\""),
            Tok::Var(s) => format!("variable @{s}"),
            Tok::Bracketed(s) => format!("[{s}]"),
            Tok::Lineage(s) => format!("#{s}"),
            Tok::Eof => "the end of the expression".to_string(),
            other => format!("\"{}\"", other.symbol()),
        }
    }

    /// The text of an operator or punctuation token.
    pub fn symbol(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Question => "?",
            Tok::Colon => ":",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Gt => ">",
            Tok::Le => "<=",
            Tok::Ge => ">=",
            Tok::AndAnd => "&&",
            Tok::OrOr => "||",
            Tok::Bang => "!",
            Tok::Amp => "&",
            Tok::Pipe => "|",
            Tok::Caret => "^",
            Tok::Tilde => "~",
            Tok::Assign => "=",
            _ => "",
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits `src` into tokens, ending with `Tok::Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, ExprError> {
    let mut lx = Lexer {
        src,
        bytes: src.as_bytes(),
        pos: 0,
    };
    let mut out = Vec::new();
    loop {
        let t = lx.next()?;
        let eof = t.tok == Tok::Eof;
        out.push(t);
        if eof {
            return Ok(out);
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '$' | '#')
}

impl<'a> Lexer<'a> {
    fn err(&self, start: usize, end: usize, message: impl Into<String>) -> ExprError {
        ExprError::Syntax {
            message: message.into(),
            snippet: Snippet::new(self.src, start, end),
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_byte(&self, ahead: usize) -> u8 {
        self.bytes.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn next(&mut self) -> Result<Token, ExprError> {
        while let Some(c) = self.peek_char() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::Eof,
                span: Span::new(start, start),
            });
        };
        let tok = match c {
            '0'..='9' => self.number()?,
            '.' if self.peek_byte(1).is_ascii_digit() => self.number()?,
            '"' => self.string()?,
            '@' => self.variable()?,
            '[' => {
                let inner = self.bracketed(start)?;
                Tok::Bracketed(inner)
            }
            '#' => {
                self.pos += 1;
                let s = self.pos;
                while self.peek_byte(0).is_ascii_digit() {
                    self.pos += 1;
                }
                if s == self.pos {
                    return Err(self.err(start, start + 1, "expected digits after \"#\""));
                }
                Tok::Lineage(self.src[s..self.pos].to_string())
            }
            c if is_ident_start(c) => {
                while let Some(c) = self.peek_char() {
                    if is_ident_continue(c) {
                        self.pos += c.len_utf8();
                    } else {
                        break;
                    }
                }
                Tok::Ident(self.src[start..self.pos].to_string())
            }
            _ => self.operator(start, c)?,
        };
        Ok(Token {
            tok,
            span: Span::new(start, self.pos),
        })
    }

    fn operator(&mut self, start: usize, c: char) -> Result<Tok, ExprError> {
        let two = |a: u8| self.peek_byte(1) == a;
        let (tok, len) = match c {
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '?' => (Tok::Question, 1),
            ':' => (Tok::Colon, 1),
            '+' => (Tok::Plus, 1),
            '-' => (Tok::Minus, 1),
            '*' => (Tok::Star, 1),
            '/' => (Tok::Slash, 1),
            '%' => (Tok::Percent, 1),
            '~' => (Tok::Tilde, 1),
            '^' => (Tok::Caret, 1),
            '=' if two(b'=') => (Tok::EqEq, 2),
            '=' => (Tok::Assign, 1),
            '!' if two(b'=') => (Tok::NotEq, 2),
            '!' if matches!(self.peek_byte(1), b'>' | b'<') => {
                return Err(self.err(
                    start,
                    start + 2,
                    "\"!\" cannot be combined with another operator; write \"<=\" for \"!>\" and \">=\" for \"!<\"",
                ));
            }
            '!' => (Tok::Bang, 1),
            '<' if two(b'=') => (Tok::Le, 2),
            '<' => (Tok::Lt, 1),
            '>' if two(b'=') => (Tok::Ge, 2),
            '>' => (Tok::Gt, 1),
            '&' if two(b'&') => (Tok::AndAnd, 2),
            '&' => (Tok::Amp, 1),
            '|' if two(b'|') => (Tok::OrOr, 2),
            '|' => (Tok::Pipe, 1),
            other => {
                return Err(self.err(
                    start,
                    start + other.len_utf8(),
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        self.pos += len;
        Ok(tok)
    }

    fn bracketed(&mut self, start: usize) -> Result<String, ExprError> {
        // Called with the cursor on "[".
        self.pos += 1;
        match self.src[self.pos..].find(']') {
            Some(i) => {
                let inner = self.src[self.pos..self.pos + i].to_string();
                self.pos += i + 1;
                Ok(inner)
            }
            None => Err(self.err(start, self.src.len(), "expected \"]\" to close \"[\"")),
        }
    }

    fn variable(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.pos += 1;
        match self.peek_char() {
            Some('[') => {
                let inner = self.bracketed(start + 1)?;
                if inner.trim().is_empty() {
                    return Err(self.err(start, self.pos, "expected a variable name inside @[ ]"));
                }
                Ok(Tok::Var(inner))
            }
            Some(c) if is_ident_start(c) => {
                let s = self.pos;
                while let Some(c) = self.peek_char() {
                    // "@" and "#" may continue an identifier, but ":" never does: a namespace
                    // needs brackets, which is reported below.
                    if is_ident_continue(c) {
                        self.pos += c.len_utf8();
                    } else {
                        break;
                    }
                }
                if self.src[self.pos..].starts_with("::") {
                    return Err(self.err(
                        start,
                        self.pos + 2,
                        format!(
                            "a variable with a namespace must be bracketed: write @[{}::...]",
                            &self.src[s..self.pos]
                        ),
                    ));
                }
                Ok(Tok::Var(self.src[s..self.pos].to_string()))
            }
            _ => Err(self.err(
                start,
                start + 1,
                "expected a variable name after \"@\" (such as @MyVar or @[User::MyVar])",
            )),
        }
    }

    fn digits(&mut self) -> usize {
        let s = self.pos;
        while self.peek_byte(0).is_ascii_digit() {
            self.pos += 1;
        }
        self.pos - s
    }

    fn number(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        if self.peek_byte(0) == b'0' && matches!(self.peek_byte(1), b'x' | b'X') {
            self.pos += 2;
            let s = self.pos;
            while self.peek_byte(0).is_ascii_hexdigit() {
                self.pos += 1;
            }
            if s == self.pos {
                return Err(self.err(start, self.pos, "expected hexadecimal digits after \"0x\""));
            }
            let digits = &self.src[s..self.pos];
            let (unsigned, long) = self.int_suffix(start)?;
            let value = u64::from_str_radix(digits, 16).map_err(|_| {
                self.err(
                    start,
                    self.pos,
                    "hexadecimal literal is too large for 64 bits",
                )
            })?;
            return Ok(Tok::Int {
                value,
                unsigned,
                long,
                hex: true,
            });
        }
        let int_digits = self.digits();
        let mut has_point = false;
        let mut frac_digits = 0;
        if self.peek_byte(0) == b'.' {
            has_point = true;
            self.pos += 1;
            frac_digits = self.digits();
        }
        if int_digits == 0 && frac_digits == 0 {
            return Err(self.err(start, self.pos, "expected digits"));
        }
        let mut has_exp = false;
        if matches!(self.peek_byte(0), b'e' | b'E') {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek_byte(0), b'+' | b'-') {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = save + 1;
                return Err(self.err(start, self.pos, "expected digits in the exponent"));
            }
            has_exp = true;
        }
        let body_end = self.pos;
        let body = self.src[start..body_end].to_string();
        if !has_point && !has_exp {
            let (unsigned, long) = self.int_suffix(start)?;
            let value = body.parse::<u64>().map_err(|_| {
                self.err(start, self.pos, "integer literal is too large for 64 bits")
            })?;
            return Ok(Tok::Int {
                value,
                unsigned,
                long,
                hex: false,
            });
        }
        let suffix = match self.peek_byte(0) {
            b'f' | b'F' => {
                self.pos += 1;
                RealSuffix::F
            }
            b'l' | b'L' => {
                self.pos += 1;
                RealSuffix::L
            }
            _ => RealSuffix::None,
        };
        self.reject_trailing(start)?;
        if !has_exp && suffix == RealSuffix::None {
            Ok(Tok::Numeric(body))
        } else {
            Ok(Tok::Real(body, suffix))
        }
    }

    fn int_suffix(&mut self, start: usize) -> Result<(bool, bool), ExprError> {
        let (mut unsigned, mut long) = (false, false);
        loop {
            match self.peek_byte(0) {
                b'u' | b'U' if !unsigned => unsigned = true,
                b'l' | b'L' if !long => long = true,
                _ => break,
            }
            self.pos += 1;
        }
        self.reject_trailing(start)?;
        Ok((unsigned, long))
    }

    fn reject_trailing(&mut self, start: usize) -> Result<(), ExprError> {
        if let Some(c) = self.peek_char()
            && (is_ident_continue(c) || c == '.')
        {
            let mut end = self.pos;
            for c in self.src[self.pos..].chars() {
                if is_ident_continue(c) || c == '.' {
                    end += c.len_utf8();
                } else {
                    break;
                }
            }
            return Err(self.err(
                start,
                end,
                format!("invalid numeric literal \"{}\"", &self.src[start..end]),
            ));
        }
        Ok(())
    }

    fn string(&mut self) -> Result<Tok, ExprError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek_char() else {
                return Err(self.err(
                    start,
                    start + 1,
                    "unterminated string literal: expected a closing quotation mark",
                ));
            };
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(Tok::Str(out)),
                '\0' => {
                    return Err(self.err(
                        self.pos - 1,
                        self.pos,
                        "a NUL character is not allowed in a string (it is the string terminator)",
                    ));
                }
                '\\' => {
                    let esc_start = self.pos - 1;
                    let Some(e) = self.peek_char() else {
                        continue;
                    };
                    self.pos += e.len_utf8();
                    let ch = match e {
                        'a' => '\u{7}',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        'v' => '\u{b}',
                        '"' => '"',
                        '\\' => '\\',
                        'x' | 'X' => self.hex_escape(esc_start)?,
                        other => {
                            return Err(self.err(
                                esc_start,
                                self.pos,
                                format!(
                                    "unknown escape sequence \"\\{other}\"; write \"\\\\\" for a backslash"
                                ),
                            ));
                        }
                    };
                    out.push(ch);
                }
                other => out.push(other),
            }
        }
    }

    fn hex4(&mut self, esc_start: usize) -> Result<u32, ExprError> {
        let s = self.pos;
        let mut n = 0;
        while n < 4 && self.peek_byte(0).is_ascii_hexdigit() {
            self.pos += 1;
            n += 1;
        }
        if n != 4 {
            return Err(self.err(
                esc_start,
                self.pos,
                "expected four hexadecimal digits after \"\\x\"",
            ));
        }
        u32::from_str_radix(&self.src[s..self.pos], 16)
            .map_err(|_| self.err(esc_start, self.pos, "invalid \"\\x\" escape"))
    }

    fn hex_escape(&mut self, esc_start: usize) -> Result<char, ExprError> {
        let code = self.hex4(esc_start)?;
        if code == 0 {
            return Err(self.err(
                esc_start,
                self.pos,
                "\"\\x0000\" is not allowed in a string (it is the string terminator)",
            ));
        }
        if (0xD800..0xDC00).contains(&code) && self.src[self.pos..].starts_with("\\x") {
            // A UTF-16 surrogate pair written as two escapes, as SSIS strings are UTF-16.
            let save = self.pos;
            self.pos += 2;
            let low = self.hex4(esc_start)?;
            if (0xDC00..0xE000).contains(&low) {
                let c = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                if let Some(ch) = char::from_u32(c) {
                    return Ok(ch);
                }
            }
            self.pos = save;
        }
        char::from_u32(code).ok_or_else(|| {
            self.err(
                esc_start,
                self.pos,
                format!("\"\\x{code:04X}\" is not a valid character on its own"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s)
            .expect("lexes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn numbers_with_suffixes() {
        assert_eq!(
            toks("37L 5u 7945ul 0xFFu")[..4],
            [
                Tok::Int {
                    value: 37,
                    unsigned: false,
                    long: true,
                    hex: false
                },
                Tok::Int {
                    value: 5,
                    unsigned: true,
                    long: false,
                    hex: false
                },
                Tok::Int {
                    value: 7945,
                    unsigned: true,
                    long: true,
                    hex: false
                },
                Tok::Int {
                    value: 255,
                    unsigned: true,
                    long: false,
                    hex: true
                },
            ]
        );
        assert_eq!(toks(".9")[0], Tok::Numeric(".9".into()));
        assert_eq!(toks("6.")[0], Tok::Numeric("6.".into()));
        assert_eq!(toks("13e-2f")[0], Tok::Real("13e-2".into(), RealSuffix::F));
        assert_eq!(toks("1.E-4f")[0], Tok::Real("1.E-4".into(), RealSuffix::F));
    }

    #[test]
    fn operators_and_variables() {
        assert_eq!(
            toks("@[User::X]>=@y&&!@z")[..6],
            [
                Tok::Var("User::X".into()),
                Tok::Ge,
                Tok::Var("y".into()),
                Tok::AndAnd,
                Tok::Bang,
                Tok::Var("z".into())
            ]
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            toks(r#""a\\b\"c\n\x0041""#)[0],
            Tok::Str("a\\b\"c\nA".into())
        );
        assert!(tokenize(r#""\x0000""#).is_err());
        assert!(tokenize("\"a\0b\"").is_err());
        assert!(tokenize(r#""\q""#).is_err());
        assert!(tokenize("\"abc").is_err());
        assert_eq!(toks(r#""\xD83D\xDE00""#)[0], Tok::Str("😀".into()));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for s in [
            "5 !> 3",
            "0x",
            "1e",
            "12abc",
            "@",
            "@[",
            "$",
            "99999999999999999999999",
        ] {
            assert!(tokenize(s).is_err(), "{s}");
        }
    }
}
