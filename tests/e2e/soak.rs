//! The soak test: a package that mixes every commit protocol (transacted
//! sql, a resumable bulk insert, a loop recording its iterations, parallel
//! branches, a child package with a transaction of its own) killed with
//! SIGKILL at random moments at least 200 times, each run restarted until the
//! package succeeds; then every protected row is in its table exactly once
//! and every variable has the value of one clean run. Seeded
//! (`CHECKFLOW_E2E_SEED`), so a failure can be replayed.

use std::time::{Duration, Instant};

use crate::support::*;

const ROWS: u32 = 4000;

/// The crash tests' package ([`protocols_package`]) with a resumable bulk
/// insert after `T1` and a child package, which commits a transaction of its
/// own, in a parallel branch.
fn package() -> String {
    protocols_package(&Protocols {
        name: "soak",
        create: "CREATE TABLE IF NOT EXISTS a (x INTEGER); CREATE TABLE IF NOT EXISTS b (x INTEGER); CREATE TABLE IF NOT EXISTS c (x INTEGER); CREATE TABLE IF NOT EXISTS d (x INTEGER); CREATE TABLE IF NOT EXISTS big (id INTEGER, name TEXT);",
        after_t1: r#"  - name: Bulk
    type: bulk_insert
    connection: dw
    table: big
    file: data.csv
    batch_size: 250
    resume: true
    fail_package_on_failure: true
    after: [T1]
"#,
        each_after: "Bulk",
        items: "x, y, z, w",
        work: r#"{ name: Pause, type: process, command: "sleep 0.01", after: [Inc] }"#,
        branches: r#"      - { name: Child, type: package, path: child.yaml }
      - { name: Side, type: process, command: "sleep 0.02" }
"#,
    })
}

/// The child: a pause, then a transacted container inserting a row into `d`.
fn child() -> String {
    child_yaml(
        &format!("{}connections:\n  dw: {DW}\n", checkpoint_at("child.ckpt")),
        r#"  - { name: Wait, type: process, command: "sleep 0.01" }
  - name: Load
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Wait]
    tasks:
      - { name: InsD, type: sql, connection: dw, sql: "INSERT INTO d VALUES (1)" }
"#,
    )
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::with_package(&package());
    sb.write("child.yaml", &child());
    sb.write("data.csv", &id_name_csv(1..=ROWS));
    sb
}

/// Every protected row once, every variable as one clean run leaves it.
fn check(sb: &Sandbox, ctx: &str) {
    let counts = dw_numbers(
        sb,
        &[
            "COUNT(*) FROM a",
            "COUNT(*) FROM b",
            "COUNT(*) FROM c",
            "COUNT(*) FROM d",
            "COUNT(*) FROM big",
            "COUNT(DISTINCT id) FROM big",
        ],
    );
    let n = i64::from(ROWS);
    assert_eq!(
        counts,
        [1, 1, 1, 1, n, n].map(Some).to_vec(),
        "rows a, b, c, d, big, distinct big ({ctx})"
    );
    assert_eq!(
        sb.read("final.txt").trim(),
        "final mid=1 mid2=1 total=4",
        "variables ({ctx})"
    );
}

#[test]
fn a_package_of_every_commit_protocol_killed_at_random_200_times_loads_everything_exactly_once() {
    // How long a clean run takes: kills fall anywhere inside it.
    let clean = sandbox();
    let t = Instant::now();
    clean.run().output().exit(0);
    let span = t.elapsed().as_millis().max(20) as u64;
    check(&clean, "a clean run");

    let seed = seed_or(0x0005_0AC0_FFEE);
    let mut rng = Rng::new(seed);
    let budget = Instant::now() + Duration::from_secs(240);
    let (mut kills, mut rounds, mut runs) = (0, 0, 0);
    while kills < 200 {
        assert!(
            Instant::now() < budget,
            "only {kills} kills in the time allowed (seed {seed:#x})"
        );
        rounds += 1;
        let sb = sandbox();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ctx = format!("seed {seed:#x}, round {rounds}, attempt {attempt}");
            assert!(attempt < 40, "the package never finishes ({ctx})");
            if sb.exists("run.ckpt") {
                let out = sb
                    .cmd(["checkpoint", "show", "run.ckpt", "--json"])
                    .output();
                assert_eq!(out.code, Some(0), "unreadable checkpoint ({ctx})\n{out:?}");
            }
            let mut run = sb.run().spawn();
            runs += 1;
            // Up to 12 kills a round, then the round runs to its end.
            let kill_at = (attempt <= 12).then(|| Duration::from_millis(rng.below(span)));
            let started = Instant::now();
            let status = run.wait_or_kill(Duration::from_millis(1), || {
                kill_at.is_some_and(|k| started.elapsed() >= k)
            });
            match status {
                // Success deletes the checkpoint, and a kill can land after
                // that and before the process exits: the package is done.
                None if sb.exists("final.txt") && !sb.exists("run.ckpt") => {
                    kills += 1;
                    check(&sb, &ctx);
                    break;
                }
                None => kills += 1,
                Some(s) if s.success() => {
                    check(&sb, &ctx);
                    break;
                }
                Some(_) => {
                    let out = run.finish();
                    panic!("a run failed on its own ({ctx})\n{out:?}");
                }
            }
        }
    }
    eprintln!("soak: {kills} kills over {rounds} rounds and {runs} runs (seed {seed:#x})");
}
