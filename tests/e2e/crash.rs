//! Scenario 15: the process dies (kill -9) at random moments, many times
//! over; every rerun resumes, no recorded task runs twice, and the file is
//! always readable (docs/semantics.md §5.4, §5.6).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::support::*;

/// 20 tasks and a loop of 4: sequences (one a restart unit), parallel
/// containers and a loop with recorded iterations, at most 4 at once. Each
/// task writes its name to the ledger when it starts, then works a little.
/// Returns the YAML and every task's path by its (unique) name; a loop's
/// iteration is written `Loop[item]`.
fn big_package() -> (String, BTreeMap<String, String>) {
    let mut paths = BTreeMap::new();
    let mut body = String::new();
    let task = |name: &str, indent: &str, sleep: &str| {
        format!(
            "{indent}- {{ name: {name}, type: process, command: \"echo {name} >> ledger.txt; sleep {sleep}\" }}\n"
        )
    };
    for name in ["T01", "T02", "T03"] {
        body += &task(name, "  ", "0.03");
        paths.insert(name.to_owned(), name.to_owned());
    }
    let containers: [(&str, &str, &[&str]); 3] = [
        (
            "Fan",
            "parallel",
            &["P01", "P02", "P03", "P04", "P05", "P06"],
        ),
        (
            "Chain",
            "sequence\n    restart_unit: true",
            &["S01", "S02", "S03", "S04"],
        ),
        ("Fan2", "parallel", &["Q01", "Q02", "Q03", "Q04"]),
    ];
    for (i, (cname, flow, children)) in containers.iter().enumerate() {
        body += &format!("  - name: {cname}\n    type: sequence\n    flow: {flow}\n    tasks:\n");
        for (j, child) in children.iter().enumerate() {
            let sleep = format!("0.0{}", 2 + (j % 5));
            body += &task(child, "      ", &sleep);
            paths.insert((*child).to_owned(), format!("{cname}/{child}"));
        }
        let between = format!("M{:02}", i + 1);
        body += &task(&between, "  ", "0.02");
        paths.insert(between.clone(), between);
    }
    // A loop whose finished iterations are recorded, keyed by item; its
    // iterations write the item to the ledger.
    body += r#"  - name: Each
    type: foreach
    items: [E1, E2, E3, E4]
    map: [User::Item]
    checkpoint_iterations: true
    tasks:
      - name: Work
        type: process
        command: "echo placeholder"
        expressions:
          command: '"echo " + @[User::Item] + " >> ledger.txt; sleep 0.03"'
"#;
    for item in ["E1", "E2", "E3", "E4"] {
        paths.insert(item.to_owned(), format!("Each[{item}]"));
    }
    let yaml = format!(
        "id: {ID}\nname: crashy\nmax_concurrent: 4\ncheckpoint: {{ file: crash.ckpt, usage: if_exists, save: true }}\nvariables:\n  Item: {{ type: string, value: \"\" }}\ntasks:\n{body}"
    );
    (yaml, paths)
}

#[test]
fn kill_9_at_random_moments_never_reruns_a_recorded_task_and_the_file_stays_readable() {
    let (yaml, paths) = big_package();
    assert_eq!(paths.len(), 24);
    let seed = seed_or(0x9E37_79B9_7F4A_7C15);
    let mut rng = Rng::new(seed);
    let budget = Instant::now() + Duration::from_secs(120);
    let (mut kills, mut rounds, mut resumed) = (0, 0, 0);

    while kills < 30 && Instant::now() < budget {
        rounds += 1;
        let sb = Sandbox::with_package(&yaml);
        let mut ran_ever = BTreeSet::new();
        for attempt in 0.. {
            let ctx = format!("seed {seed:#x}, round {rounds}, attempt {attempt}");
            // What is recorded now must not run in this attempt.
            let recorded = if sb.exists("crash.ckpt") {
                let out = sb
                    .cmd(["checkpoint", "show", "crash.ckpt", "--json"])
                    .output();
                assert_eq!(out.code, Some(0), "unreadable checkpoint ({ctx})\n{out:?}");
                recorded_units(&out.json())
            } else {
                BTreeSet::new()
            };
            resumed += usize::from(!recorded.is_empty());
            let seen_before = sb.ledger().len();

            let mut run = sb.run().spawn();
            // Kill once a random number of tasks has started, plus a random
            // few milliseconds; the last attempts of a round run to the end.
            let kill_after = (attempt < 6).then(|| (rng.below(20), rng.below(40)));
            let status = run.wait_or_kill(Duration::from_millis(2), || match kill_after {
                Some((tasks, ms)) if sb.ledger().len() - seen_before >= tasks as usize => {
                    std::thread::sleep(Duration::from_millis(ms));
                    true
                }
                _ => false,
            });
            kills += usize::from(status.is_none());
            let ledger = sb.ledger();
            for name in &ledger[seen_before..] {
                let path = &paths[name];
                let parent = path.split(['/', '[']).next().expect("a path");
                assert!(
                    !recorded.contains(path) && !recorded.contains(parent),
                    "{path} ran although recorded as complete ({ctx}); recorded: {recorded:?}"
                );
                ran_ever.insert(name.clone());
            }
            match status {
                None => continue,
                Some(s) if s.success() => break,
                Some(s) if s.code().is_some() => {
                    let out = run.finish();
                    panic!("run failed ({ctx})\n{out:?}");
                }
                // Our kill raced with its exit: check it as any other kill.
                Some(_) => continue,
            }
        }
        let all: BTreeSet<String> = paths.keys().cloned().collect();
        assert_eq!(ran_ever, all, "every task must have run (round {rounds})");
        assert!(!sb.exists("crash.ckpt"), "success deletes the checkpoint");
    }
    eprintln!("{kills} kills in {rounds} rounds, {resumed} resumed runs (seed {seed:#x})");
    assert!(kills >= 10, "only {kills} kills landed in {rounds} rounds");
    assert!(
        resumed >= 5,
        "only {resumed} runs resumed from a checkpoint"
    );
}
