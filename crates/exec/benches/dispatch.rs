//! Benchmarks the dispatcher alone: chains and parallel branches of in-memory
//! Expression tasks, run with a no-op reporter and a recorder that keeps
//! nothing, so the figures hold no process start, YAML parsing or journal I/O.
//!
//! The package is parsed and validated once per size, outside the timing.
//! `CHECKFLOW_BENCH_MAX` (default 100000) caps the chain sizes.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use checkflow_exec::{
    Event, NoRecorder, PackageOutcome, Record, Recorder, Reporter, Resume, RunOptions, run,
};
use checkflow_model::LoadedPackage;
use checkflow_plan::Plan;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const EXPR: &str = "@[User::N] = @[User::N] + 1";

fn header(out: &mut String) {
    out.push_str("id: 6c1d4c1e-0000-4000-8000-00000000be0c\nname: dispatch_bench\n");
    out.push_str("variables:\n  N: { type: int32, value: 0 }\n");
}

fn chain_yaml(n: usize) -> String {
    let mut s = String::new();
    header(&mut s);
    s.push_str("tasks:\n");
    for i in 1..=n {
        s.push_str(&format!(
            "  - {{ name: T{i}, type: expression, expr: '{EXPR}' }}\n"
        ));
    }
    s
}

fn branches_yaml(branches: usize, n: usize) -> String {
    let mut s = String::new();
    header(&mut s);
    s.push_str(&format!(
        "max_concurrent: {branches}\nflow: parallel\ntasks:\n"
    ));
    for b in 1..=branches {
        s.push_str(&format!("  - name: B{b}\n    type: sequence\n    tasks:\n"));
        for i in 1..=n {
            s.push_str(&format!(
                "      - {{ name: T{i}, type: expression, expr: '{EXPR}' }}\n"
            ));
        }
    }
    s
}

/// Parses with a budget large enough for 100,000 tasks (the default YAML
/// budget stops near 35,000 tasks; see BENCHMARKS.md) and validates.
fn plan(text: String) -> Plan {
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: 50_000_000,
            max_events: 50_000_000,
        },
    };
    let def =
        serde_saphyr::from_str_with_options(&text, options).expect("the generated package parses");
    let pkg = LoadedPackage {
        def,
        path: PathBuf::from("bench.yaml"),
        dir: std::env::temp_dir(),
        text,
    };
    checkflow_plan::validate(&pkg, &checkflow_tasks::registry())
        .expect("the generated package is valid")
}

struct Quiet;

impl Reporter for Quiet {
    fn event(&mut self, event: &Event) {
        black_box(event);
    }
}

/// Accepts every batch at once (a journal whose sync is free) and counts
/// batches, to show how many records each flush would write.
#[derive(Default)]
struct Counting {
    batches: usize,
    records: usize,
}

impl Recorder for Counting {
    fn record(&mut self, batch: Vec<Record>) -> Result<(), checkflow_exec::RecordError> {
        self.batches += 1;
        self.records += batch.len();
        black_box(batch);
        Ok(())
    }
}

fn options(plan: &Plan) -> RunOptions {
    RunOptions {
        max_concurrent: plan.package.max_concurrent,
        resume: Resume::default(),
        initial: plan.vars.decls.iter().map(|d| d.initial.clone()).collect(),
        interrupt: Arc::new(AtomicBool::new(false)),
        tx_prefix: "bench".into(),
        processes: None,
    }
}

fn run_with(plan: &Plan, recorder: &mut dyn Recorder) {
    let r = run(plan, options(plan), recorder, &mut Quiet);
    assert_eq!(r.outcome, PackageOutcome::Success, "{:?}", r.errors);
}

fn sizes() -> Vec<usize> {
    let max = std::env::var("CHECKFLOW_BENCH_MAX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    [1_000, 10_000, 100_000]
        .into_iter()
        .filter(|&n| n <= max)
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("dispatch chain");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in sizes() {
        let t = Instant::now();
        let p = plan(chain_yaml(n));
        eprintln!(
            "chain of {n}: parse + validate {:.1} µs per task (once, not part of the figure)",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("no recorder", n), &p, |b, p| {
            b.iter(|| run_with(p, &mut NoRecorder))
        });
        g.bench_with_input(BenchmarkId::new("free recorder", n), &p, |b, p| {
            b.iter(|| run_with(p, &mut Counting::default()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("dispatch branches");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    let p = plan(branches_yaml(8, 1_000));
    let mut probe = Counting::default();
    run_with(&p, &mut probe);
    eprintln!(
        "8 branches x 1000: {} records in {} flushes ({:.2} records per flush)",
        probe.records,
        probe.batches,
        probe.records as f64 / probe.batches as f64
    );
    g.throughput(Throughput::Elements(8_000));
    g.bench_function("8x1000 free recorder", |b| {
        b.iter(|| run_with(&p, &mut Counting::default()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
