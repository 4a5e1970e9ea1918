//! Benchmarks the journal: appending one completed-task record (one frame, one
//! `fdatasync`) on tmpfs, where the sync costs next to nothing, and on the
//! build folder's disk, where it is the real cost; appending a batch of 8
//! (group commit); and reading a checkpoint of 10,000 records back.
//!
//! tmpfs is `/dev/shm` (skipped where it does not exist); the disk folder is
//! Cargo's `CARGO_TARGET_TMPDIR`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use checkflow_journal::{Entry, Journal, NewHeader, RecordedOutcome, StoredValue, lock, read};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// The record an Expression task writes: its path, fingerprint and one variable.
fn entry(i: u64) -> Entry {
    let mut vars = BTreeMap::new();
    vars.insert(
        "User::N".to_string(),
        StoredValue::plain(serde_json::json!(i)),
    );
    Entry::Completed {
        path: format!("T{i}"),
        outcome: RecordedOutcome::Success,
        fingerprint: "2be6a5be4315983dbcac319aa3ed26c0".to_string(),
        duration_ms: 0,
        vars,
    }
}

fn header() -> NewHeader {
    NewHeader {
        package_id: "6c1d4c1e-0000-4000-8000-00000000be0c".to_string(),
        package_name: "journal_bench".to_string(),
        package_path: "bench.yaml".to_string(),
        config: BTreeMap::new(),
    }
}

/// Times `iters` appends of `batch` records each to a fresh file in `dir`.
fn appends(dir: &Path, iters: u64, batch: u64) -> Duration {
    let path = dir.join(format!("append-bench-{}.ckpt", std::process::id()));
    let lock = lock(&path).expect("lock the bench checkpoint");
    let mut j = Journal::create(&path, header(), None, &lock).expect("create the bench checkpoint");
    let t = Instant::now();
    for i in 0..iters {
        let entries = (0..batch).map(|k| entry(i * batch + k)).collect();
        j.append_all(entries).expect("append");
    }
    let elapsed = t.elapsed();
    j.delete().expect("delete the bench checkpoint");
    drop(lock);
    elapsed
}

fn folders() -> Vec<(&'static str, PathBuf)> {
    let mut v = Vec::new();
    if Path::new("/dev/shm").is_dir() {
        v.push(("tmpfs", PathBuf::from("/dev/shm")));
    }
    v.push(("disk", PathBuf::from(env!("CARGO_TARGET_TMPDIR"))));
    v
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("journal append");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for (name, dir) in folders() {
        for batch in [1u64, 8] {
            g.throughput(Throughput::Elements(batch));
            g.bench_with_input(
                BenchmarkId::new(format!("{name}, records per frame"), batch),
                &dir,
                |b, dir| b.iter_custom(|iters| appends(dir, iters, batch)),
            );
        }
    }
    g.finish();

    // A checkpoint as a 10,000-task chain leaves it: one frame per record.
    let dir = folders()[0].1.clone();
    let path = dir.join(format!("read-bench-{}.ckpt", std::process::id()));
    let lock = lock(&path).expect("lock the bench checkpoint");
    let mut j = Journal::create(&path, header(), None, &lock).expect("create");
    for i in 0..10_000 {
        j.append(entry(i)).expect("append");
    }
    let mut g = c.benchmark_group("journal read");
    g.sample_size(20);
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("10000 records", |b| {
        b.iter(|| black_box(read(&path, None).expect("read")))
    });
    g.finish();
    j.delete().expect("delete");
}

criterion_group!(benches, bench);
criterion_main!(benches);
