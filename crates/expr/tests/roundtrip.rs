//! Property tests: random syntax trees print and parse back to the same tree, and no input
//! makes the parser or the compiler panic.

use checkflow_expr::ast::{BinaryOp, Expr, ExprKind, UnaryOp};
use checkflow_expr::lexer::{RealSuffix, Span};
use checkflow_expr::{Ast, DataType, Scope, VarInfo, VarRef, compile, parse};
use proptest::prelude::*;

fn e(kind: ExprKind) -> Expr {
    Expr::new(kind, Span::default())
}

fn data_type() -> impl Strategy<Value = DataType> {
    prop_oneof![
        Just(DataType::Bool),
        Just(DataType::I1),
        Just(DataType::I2),
        Just(DataType::I4),
        Just(DataType::I8),
        Just(DataType::UI1),
        Just(DataType::UI2),
        Just(DataType::UI4),
        Just(DataType::UI8),
        Just(DataType::R4),
        Just(DataType::R8),
        Just(DataType::DbTimestamp),
        Just(DataType::DbDate),
        Just(DataType::Date),
        Just(DataType::DbTime),
        Just(DataType::FileTime),
        Just(DataType::Cy),
        Just(DataType::Guid),
        Just(DataType::NText),
        Just(DataType::Image),
        (0u8..=7).prop_map(|scale| DataType::DbTime2 { scale }),
        (0u8..=7).prop_map(|scale| DataType::DbTimestamp2 { scale }),
        (0u8..=7).prop_map(|scale| DataType::DbTimestampOffset { scale }),
        (1u32..=8000).prop_map(|n| DataType::Bytes { len: Some(n) }),
        prop_oneof![Just(1252u32), Just(65001)].prop_map(|codepage| DataType::Text { codepage }),
        (1u32..=4000).prop_map(|n| DataType::WStr { len: Some(n) }),
        (1u32..=8000, prop_oneof![Just(1252u32), Just(65001)]).prop_map(|(n, codepage)| {
            DataType::Str {
                len: Some(n),
                codepage,
            }
        }),
        (1u8..=38)
            .prop_flat_map(|p| (Just(p), 0..=p.min(28)))
            .prop_map(|(precision, scale)| DataType::Numeric { precision, scale }),
        (0u8..=28).prop_map(|scale| DataType::Decimal { scale }),
    ]
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (any::<u64>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(value, unsigned, long, hex)| e(ExprKind::Int {
                value,
                unsigned,
                long,
                hex
            })
        ),
        prop_oneof!["[0-9]{1,5}\\.[0-9]{0,4}", "\\.[0-9]{1,4}"]
            .prop_map(|t| e(ExprKind::Numeric(t))),
        (
            "[0-9]{1,3}(\\.[0-9]{0,3})?[eE][+-]?[0-9]{1,2}",
            prop_oneof![
                Just(RealSuffix::None),
                Just(RealSuffix::F),
                Just(RealSuffix::L)
            ]
        )
            .prop_map(|(t, s)| e(ExprKind::Real(t, s))),
        "[0-9]{1,3}\\.[0-9]{1,3}[fFlL]".prop_map(|t| {
            let (body, suffix) = t.split_at(t.len() - 1);
            let s = if suffix.eq_ignore_ascii_case("f") {
                RealSuffix::F
            } else {
                RealSuffix::L
            };
            e(ExprKind::Real(body.to_string(), s))
        }),
        any::<String>().prop_map(|s| e(ExprKind::Str(s.replace('\0', "")))),
        any::<bool>().prop_map(|b| e(ExprKind::Bool(b))),
        data_type().prop_map(|t| e(ExprKind::Null(t))),
        (
            "[A-Za-z_][A-Za-z0-9_]{0,8}",
            "[A-Za-z_][A-Za-z0-9_ ]{0,8}[A-Za-z0-9_]"
        )
            .prop_map(|(namespace, name)| e(ExprKind::Var(VarRef { namespace, name }))),
    ]
}

const FUNCS: [&str; 8] = [
    "LEN",
    "SUBSTRING",
    "DATEADD",
    "GETDATE",
    "ISNULL",
    "REPLACE",
    "ABS",
    "FOO",
];

fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(6, 64, 3, |inner| {
        prop_oneof![
            (
                prop_oneof![
                    Just(UnaryOp::Neg),
                    Just(UnaryOp::Not),
                    Just(UnaryOp::BitNot)
                ],
                inner.clone()
            )
                .prop_map(|(op, a)| e(ExprKind::Unary(op, Box::new(a)))),
            (
                proptest::sample::select(BinaryOp::ALL.to_vec()),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(op, a, b)| e(ExprKind::Binary(
                    op,
                    Box::new(a),
                    Box::new(b)
                ))),
            (inner.clone(), inner.clone(), inner.clone()).prop_map(|(c, a, b)| e(ExprKind::Cond(
                Box::new(c),
                Box::new(a),
                Box::new(b)
            ))),
            (data_type(), inner.clone()).prop_map(|(t, a)| e(ExprKind::Cast(t, Box::new(a)))),
            (
                proptest::sample::select(FUNCS.to_vec()),
                proptest::collection::vec(inner, 0..4)
            )
                .prop_map(|(f, args)| e(ExprKind::Call(f.to_string(), args))),
        ]
    })
}

struct AnyVar;

impl Scope for AnyVar {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        let ty = match var.name.len() % 4 {
            0 => DataType::I4,
            1 => DataType::WStr { len: None },
            2 => DataType::DbTimestamp,
            _ => DataType::Bool,
        };
        Some(VarInfo {
            slot: 0,
            ty,
            read_only: false,
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn printed_tree_parses_back_to_itself(root in expr()) {
        let ast = Ast { root };
        let text = ast.to_string();
        let back = parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&ast), "printed as {}", text);
        // Printing is stable too.
        prop_assert_eq!(back.map(|a| a.to_string()), Ok(text));
    }

    #[test]
    fn compiling_random_trees_never_panics(root in expr()) {
        let text = Ast { root }.to_string();
        let _ = compile(&text, &AnyVar, true);
    }

    #[test]
    fn compiling_random_text_never_panics(text in "\\PC{0,60}") {
        let _ = compile(&text, &AnyVar, true);
    }

    #[test]
    fn compiling_operator_soup_never_panics(
        text in "[-+*/%&|^~!=<>?:(),\"@\\[\\]#. 0-9a-zA-Z_xXeEuUlLfF\\\\]{0,40}"
    ) {
        let _ = compile(&text, &AnyVar, true);
    }
}
