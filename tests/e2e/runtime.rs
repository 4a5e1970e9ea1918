//! How a run behaves while it runs (docs/semantics.md §1.3, §5.4, §7): timeouts,
//! retries, cancellation, the summary and the report.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

#[test]
fn summary_reports_succeeded_failed_restored_not_run_and_disabled() {
    let yaml = package_yaml(
        "statuses",
        &checkpoint_at("st.ckpt"),
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: Off, type: process, command: "echo Off >> ledger.txt", disabled: true }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }
  - { name: C, type: process, command: "echo C >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);

    let out = sb.run_json().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&["A", "B"]),
        "a disabled task never runs"
    );
    let summary = out.summary();
    assert_eq!(status_of(&summary, "A"), "succeeded");
    assert_eq!(status_of(&summary, "Off"), "disabled");
    assert_eq!(status_of(&summary, "B"), "failed");
    assert_eq!(status_of(&summary, "C"), "not_run");
    assert_eq!(summary["outcome"], "failure", "{summary:#}");

    sb.touch("fixed");
    let out = sb.run_json().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
    let summary = out.summary();
    assert_eq!(status_of(&summary, "A"), "restored");
    assert_eq!(status_of(&summary, "B"), "succeeded");
    assert_eq!(status_of(&summary, "C"), "succeeded");
    // The log says it was restored.
    let restored_logged = out
        .json_lines()
        .iter()
        .any(|l| l["path"] == "A" && l.to_string().to_lowercase().contains("restored"));
    assert!(restored_logged, "no log line says A was restored\n{out:?}");
}

#[test]
fn every_json_log_line_is_an_object_and_each_task_logs_start_and_finish() {
    let yaml = package_yaml(
        "log",
        "",
        r#"  - { name: A, type: process, command: "echo hello-from-a" }
  - { name: B, type: process, command: "exit 3" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let out = sb.run_json().output().exit(1);
    let lines = out.json_lines();
    assert!(lines.iter().all(Value::is_object), "{out:?}");
    for (path, status) in [("A", "succeeded"), ("B", "failed")] {
        let started = lines
            .iter()
            .any(|l| l["event"] == "started" && l["path"] == path);
        let finished = lines
            .iter()
            .find(|l| l["event"] == "finished" && l["path"] == path)
            .unwrap_or_else(|| panic!("no finished event for {path}\n{out:?}"));
        assert!(started, "no started event for {path}\n{out:?}");
        assert_eq!(finished["status"], status, "{finished}");
        assert!(finished["duration_ms"].is_u64(), "{finished}");
    }
    assert!(
        out.stdout.contains("hello-from-a"),
        "task output is logged\n{out:?}"
    );
}

#[test]
fn report_option_writes_the_run_summary_as_json() {
    let yaml = package_yaml(
        "report",
        "",
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt", disabled: true }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().args(["--report", "report.json"]).output().exit(0);
    let report: Value = serde_json::from_str(&sb.read("report.json")).expect("report is JSON");
    assert_eq!(report["package_id"], ID, "{report:#}");
    assert_eq!(report["outcome"], "success", "{report:#}");
    assert_eq!(report["exit_code"], 0, "{report:#}");
    assert_eq!(status_of(&report, "A"), "succeeded");
    assert_eq!(status_of(&report, "B"), "disabled");
}

#[test]
fn timeout_fails_the_task_and_kills_its_whole_process_tree() {
    let yaml = package_yaml(
        "timeout",
        "",
        r#"  - name: Slow
    type: process
    timeout: 1s
    command: "(sleep 3; echo grandchild >> ledger.txt) & sleep 3; echo child >> ledger.txt"
  - { name: After, type: process, command: "echo After >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let start = Instant::now();
    let out = sb.run_json().output().exit(1);
    assert_eq!(status_of(&out.summary(), "Slow"), "failed");
    out.says_ci("time");

    // Give the killed commands time to have written, had they survived.
    if let Some(rest) = Duration::from_secs(4).checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
    assert!(
        sb.ledger().is_empty(),
        "the timed-out process tree kept running: {:?}",
        sb.ledger()
    );
}

#[test]
fn retries_run_a_failing_task_again_until_it_succeeds() {
    let yaml = package_yaml(
        "retries",
        "",
        r#"  - name: Flaky
    type: process
    retries: 3
    retry_delay: 10ms
    command: "echo try >> ledger.txt; test $(wc -l < ledger.txt) -ge 3"
  - name: Hopeless
    type: process
    retries: 1
    retry_delay: 10ms
    command: "echo hopeless >> hopeless.txt; exit 1"
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let out = sb.run_json().output().exit(1);
    assert_eq!(
        sb.ledger(),
        names(&["try", "try", "try"]),
        "succeeds at the third attempt"
    );
    assert_eq!(
        sb.read("hopeless.txt").lines().count(),
        2,
        "one run plus one retry"
    );
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Flaky"), "succeeded");
    assert_eq!(status_of(&summary, "Hopeless"), "failed");
    let attempts: Vec<_> = out
        .json_lines()
        .into_iter()
        .filter(|l| l["event"] == "started" && l["path"] == "Flaky")
        .map(|l| l["attempt"].clone())
        .collect();
    assert_eq!(attempts, vec![1, 2, 3], "{out:?}");
}

fn cancel_with(signal: libc::c_int) {
    let yaml = package_yaml(
        "cancel",
        &checkpoint_at("c.ckpt"),
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fast || sleep 30" }
  - { name: C, type: process, command: "echo C >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let run = sb.run().spawn();
    assert!(
        within(Duration::from_secs(30), || sb.ledger().len() >= 2),
        "B never started"
    );
    run.signal(signal);
    run.finish().exit(3);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert_eq!(
        sb.completed("c.ckpt"),
        vec![("A".to_owned(), "success".to_owned())],
        "what finished stays recorded; the cancelled task does not"
    );

    sb.touch("fast");
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
}

#[test]
fn sigterm_cancels_with_exit_3_and_keeps_what_finished() {
    cancel_with(libc::SIGTERM);
}

#[test]
fn sigint_cancels_with_exit_3_and_keeps_what_finished() {
    cancel_with(libc::SIGINT);
}

/// The most tasks seen running at once, from `+name` / `-name` lines
/// written as each task starts and ends. Every line is written while its
/// task runs, so this never overstates the real overlap.
fn max_overlap(ledger: &[String]) -> usize {
    let (mut now, mut max) = (0usize, 0usize);
    for line in ledger {
        if line.starts_with('+') {
            now += 1;
            max = max.max(now);
        } else {
            now -= 1;
        }
    }
    max
}

fn wide_package(max_concurrent: u32) -> String {
    let mut tasks = String::new();
    for i in 0..8 {
        tasks += &format!(
            "  - {{ name: W{i}, type: process, command: \"echo +W{i} >> ledger.txt; sleep 0.2; echo -W{i} >> ledger.txt\" }}\n"
        );
    }
    format!(
        "id: {ID}\nname: wide\nflow: parallel\nmax_concurrent: {max_concurrent}\ntasks:\n{tasks}"
    )
}

#[test]
fn max_concurrent_bounds_how_many_tasks_run_at_once() {
    let sb = Sandbox::with_package(&wide_package(2));
    sb.run().output().exit(0);
    let ledger = sb.take_ledger();
    assert_eq!(ledger.len(), 16, "{ledger:?}");
    assert!(max_overlap(&ledger) <= 2, "{ledger:?}");

    // The command line overrides the package.
    sb.run().args(["--max-concurrent", "1"]).output().exit(0);
    let ledger = sb.take_ledger();
    assert_eq!(ledger.len(), 16, "{ledger:?}");
    assert_eq!(max_overlap(&ledger), 1, "{ledger:?}");
}

/// The text summary's count line names every status that occurred,
/// `completed` (`force_result: completion`) among them, and adds up to the
/// executables listed.
#[test]
fn text_summary_counts_completed_and_every_other_status() {
    let yaml = package_yaml(
        "counts",
        r#"flow: parallel
"#,
        r#"  - { name: A, type: process, command: "true" }
  - { name: Done, type: process, command: "false", force_result: completion }
  - { name: Off, type: process, command: "true", disabled: true }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let out = sb.run().output().exit(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(" succeeded, "))
        .unwrap_or_else(|| panic!("no count line\n{out:?}"))
        .trim()
        .to_owned();
    assert_eq!(
        line,
        "1 succeeded, 0 failed, 1 completed, 0 restored, 1 disabled"
    );
}

/// A loop's child ends once per iteration: the summary gives its last status
/// and how all its runs ended, so `failed x3` does not hide two successes.
#[test]
fn summary_tallies_how_a_loop_child_ended_in_every_iteration() {
    let yaml = package_yaml(
        "tally",
        r#"variables:
  Item: { type: string }
"#,
        r#"  - name: Each
    type: foreach
    items: [a, b, c]
    map: [User::Item]
    tasks:
      - name: Work
        type: process
        command: "true"
        expressions: { command: '"test " + @[User::Item] + " != c"' }
  - { name: Once, type: process, command: "true", after: [{ task: Each, on: completion }] }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let out = sb.run().output().exit(1);
    assert!(out.stdout.contains("x3 (2 succeeded, 1 failed)"), "{out:?}");
    let out = sb.run_json().output().exit(1);
    let summary = out.summary();
    let work = executable_of(&summary, "Each/Work");
    assert_eq!(work["status"], "failed");
    assert_eq!(work["runs"], 3);
    assert_eq!(
        work["ended"],
        serde_json::json!({"succeeded": 2, "failed": 1, "completed": 0})
    );
    for e in summary["executables"].as_array().expect("executables") {
        if e["path"] != "Each/Work" {
            assert!(e.get("ended").is_none(), "ran once: no tally\n{e}");
        }
    }
}
