//! Benchmarks evaluating a compiled expression (the common property-expression shape).

use std::hint::black_box;

use checkflow_expr::{DataType, Env, Scope, Value, VarInfo, VarRef, compile};
use criterion::{Criterion, criterion_group, criterion_main};

struct Vars;

impl Scope for Vars {
    fn lookup(&self, var: &VarRef) -> Option<VarInfo> {
        let (slot, ty) = match var.qualified().as_str() {
            "User::Dir" => (0, DataType::WStr { len: None }),
            "User::N" => (1, DataType::I4),
            _ => return None,
        };
        Some(VarInfo {
            slot,
            ty,
            read_only: false,
        })
    }
}

struct Values {
    dir: Value,
    n: Value,
}

impl Env for Values {
    fn value(&self, slot: u32) -> Value {
        if slot == 0 {
            self.dir.clone()
        } else {
            self.n.clone()
        }
    }
}

fn bench(c: &mut Criterion) {
    let src = r#"@[User::Dir] + "\\" + (DT_WSTR, 10) @[User::N]"#;
    let compiled = compile(src, &Vars, false).expect("benchmark expression compiles");
    let env = Values {
        dir: Value::WStr("C:\\data\\incoming".into()),
        n: Value::I4(42),
    };
    c.bench_function("eval dir + \"\\\\\" + (DT_WSTR,10) n", |b| {
        b.iter(|| black_box(&compiled).eval(black_box(&env)))
    });
    c.bench_function("compile dir + \"\\\\\" + (DT_WSTR,10) n", |b| {
        b.iter(|| compile(black_box(src), &Vars, false))
    });
    let cond = compile(
        r#"@[User::N] > 40 && DATEPART("dw", (DT_DBTIMESTAMP)"2026-11-21") == 7 ? UPPER(@[User::Dir]) : "x""#,
        &Vars,
        false,
    )
    .expect("compiles");
    c.bench_function("eval conditional with UPPER", |b| {
        b.iter(|| black_box(&cond).eval(black_box(&env)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
