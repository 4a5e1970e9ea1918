//! The soak test: a package that mixes every commit protocol (transacted
//! sql, a resumable bulk insert, a loop recording its iterations, parallel
//! branches, a child package with a transaction of its own) killed with
//! SIGKILL at random moments at least 200 times, each run restarted until the
//! package succeeds; then every protected row is in its table exactly once
//! and every variable has the value of one clean run. Seeded
//! (`CHECKFLOW_E2E_SEED`), so a failure can be replayed.

use std::time::{Duration, Instant};

use crate::support::*;

const CHILD_ID: &str = "5c3e7a10-2b4d-4f6e-9a8b-0c1d2e3f4a5b";
const ROWS: usize = 4000;

fn package() -> String {
    format!(
        r#"
id: {ID}
name: soak
checkpoint: {{ file: run.ckpt, usage: if_exists, save: true }}
max_concurrent: 3
connections:
  dw: {{ kind: sqlite, path: dw.db }}
variables:
  Mid: {{ type: int32, value: 0 }}
  Mid2: {{ type: int32, value: 0 }}
  Total: {{ type: int32, value: 0 }}
  Item: {{ type: string, value: "" }}
tasks:
  - name: Create
    type: sql
    connection: dw
    sql: "CREATE TABLE IF NOT EXISTS a (x INTEGER); CREATE TABLE IF NOT EXISTS b (x INTEGER); CREATE TABLE IF NOT EXISTS c (x INTEGER); CREATE TABLE IF NOT EXISTS d (x INTEGER); CREATE TABLE IF NOT EXISTS big (id INTEGER, name TEXT);"
  - name: T1
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Create]
    tasks:
      - {{ name: InsA, type: sql, connection: dw, sql: "INSERT INTO a VALUES (1)" }}
      - {{ name: Count, type: expression, expr: "@[User::Mid] = @[User::Mid] + 1" }}
      - {{ name: InsB, type: sql, connection: dw, sql: "INSERT INTO b VALUES (1)" }}
  - name: Bulk
    type: bulk_insert
    connection: dw
    table: big
    file: data.csv
    batch_size: 250
    resume: true
    fail_package_on_failure: true
    after: [T1]
  - name: Each
    type: foreach
    items: [x, y, z, w]
    map: [User::Item]
    checkpoint_iterations: true
    fail_package_on_failure: true
    after: [Bulk]
    tasks:
      - {{ name: Inc, type: expression, expr: "@[User::Total] = @[User::Total] + 1" }}
      - {{ name: Pause, type: process, command: "sleep 0.01", after: [Inc] }}
  - name: Par
    type: sequence
    flow: parallel
    fail_package_on_failure: true
    after: [Each]
    tasks:
      - name: T2
        type: sequence
        transaction: required
        tasks:
          - {{ name: InsC, type: sql, connection: dw, sql: "INSERT INTO c VALUES (1)" }}
          - {{ name: Count2, type: expression, expr: "@[User::Mid2] = @[User::Mid2] + 1" }}
      - {{ name: Child, type: package, path: child.yaml }}
      - {{ name: Side, type: process, command: "sleep 0.02" }}
  - name: Report
    type: process
    after: [Par]
    command: "true"
    expressions:
      command: '"echo final mid=" + (DT_WSTR, 4)@[User::Mid] + " mid2=" + (DT_WSTR, 4)@[User::Mid2] + " total=" + (DT_WSTR, 4)@[User::Total] + " > final.txt"'
"#
    )
}

fn child() -> String {
    format!(
        r#"
id: {CHILD_ID}
name: child
checkpoint: {{ file: child.ckpt, usage: if_exists, save: true }}
connections:
  dw: {{ kind: sqlite, path: dw.db }}
tasks:
  - {{ name: Wait, type: process, command: "sleep 0.01" }}
  - name: Load
    type: sequence
    transaction: required
    fail_package_on_failure: true
    after: [Wait]
    tasks:
      - {{ name: InsD, type: sql, connection: dw, sql: "INSERT INTO d VALUES (1)" }}
"#
    )
}

fn sandbox() -> Sandbox {
    let sb = Sandbox::with_package(&package());
    sb.write("child.yaml", &child());
    let mut csv = String::from("id,name\n");
    for i in 1..=ROWS {
        csv.push_str(&format!("{i},name {i}\n"));
    }
    sb.write("data.csv", &csv);
    sb
}

/// Every protected row once, every variable as one clean run leaves it.
fn check(sb: &Sandbox, ctx: &str) {
    let counts = sql_rows(
        sb,
        "{ kind: sqlite, path: dw.db }",
        &[],
        "SELECT (SELECT COUNT(*) FROM a), (SELECT COUNT(*) FROM b), (SELECT COUNT(*) FROM c), (SELECT COUNT(*) FROM d), (SELECT COUNT(*) FROM big), (SELECT COUNT(DISTINCT id) FROM big)",
    );
    let n = ROWS as i64;
    assert_eq!(
        counts[0].iter().map(|v| v.as_i64()).collect::<Vec<_>>(),
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
    let mut rng = Rng(seed | 1);
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
            let status = loop {
                if let Some(status) = run.child.try_wait().expect("try_wait") {
                    break Some(status);
                }
                if kill_at.is_some_and(|k| started.elapsed() >= k) {
                    run.child.kill().expect("kill -9");
                    run.child.wait().expect("reap");
                    break None;
                }
                std::thread::sleep(Duration::from_millis(1));
            };
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
