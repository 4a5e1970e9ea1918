//! Failure paths under `max_errors`, as SSIS: a failure that brings a
//! container to its limit still lets the paths it enables run (the "send a
//! mail when the load fails" pattern with the default limit of 1), nothing
//! else new starts there, and the container fails when they end.
//! `fail_package_on_failure` and `fail_parent_on_failure` still cut it short.

use crate::support::*;

fn package(body: &str) -> Sandbox {
    Sandbox::with_package(&format!(
        "id: {ID}\nname: paths\ncheckpoint: {{ file: run.ckpt, usage: if_exists, save: true }}\ntasks:\n{body}"
    ))
}

/// Scenario 18: a task fails with no restart point and the default
/// `max_errors`; its failure successor runs (the alert is sent), the package
/// fails, and no checkpoint is kept.
#[test]
fn scenario_18_the_failure_path_runs_under_the_default_max_errors_then_the_package_fails() {
    let sb = package(
        r#"  - { name: Load, type: process, command: "echo Load >> ledger.txt; exit 1" }
  - { name: Send Mail, type: process, after: [{ task: Load, on: failure }], command: "echo Mail >> ledger.txt" }
  - { name: Next, type: process, after: [Load], command: "echo Next >> ledger.txt" }
"#,
    );
    let out = sb
        .run_json()
        .output()
        .exit(1)
        .says("the number of errors raised (1) reached the maximum allowed (1)");
    assert_eq!(sb.take_ledger(), names(&["Load", "Mail"]));
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Send Mail"), "succeeded");
    assert_eq!(status_of(&summary, "Next"), "not_run");
    assert!(
        !sb.exists("run.ckpt"),
        "no restart point: no checkpoint kept"
    );
}

/// The same package with `fail_package_on_failure` on the load: the package
/// fails at once, the failure path does not run, and the checkpoint is kept;
/// the rerun starts at the load.
#[test]
fn fail_package_on_failure_cuts_the_failure_path_and_keeps_the_checkpoint() {
    let sb = package(
        r#"  - { name: Load, type: process, fail_package_on_failure: true, command: "echo Load >> ledger.txt; test -f fixed" }
  - { name: Send Mail, type: process, after: [{ task: Load, on: failure }], command: "echo Mail >> ledger.txt" }
"#,
    );
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Load"]));
    assert!(sb.exists("run.ckpt"));
    assert_eq!(sb.rerun_fixed(), names(&["Load"]));
}

/// Nothing but the failure's own paths starts in a container that reached
/// its limit: a branch waiting on a slow task is not started when that task
/// ends. A failure path that succeeds is recorded; the failure is not.
#[test]
fn only_the_failures_own_paths_start_and_they_are_recorded() {
    let sb = package(
        r#"  - { name: Load, type: process, command: "echo Load >> ledger.txt; test -f fixed" }
  - { name: Send Mail, type: process, after: [{ task: Load, on: failure }], command: "echo Mail >> ledger.txt" }
  - { name: Slow, type: process, command: "sleep 0.4; echo Slow >> ledger.txt" }
  - { name: After Slow, type: process, after: [Slow], command: "echo AfterSlow >> ledger.txt" }
  - { name: Gate, type: process, fail_package_on_failure: true, command: "sleep 0.6; echo Gate >> ledger.txt; test -f fixed" }
"#,
    );
    let out = sb.run_json().output().exit(1);
    assert_eq!(
        sorted(sb.take_ledger()),
        names(&["Gate", "Load", "Mail", "Slow"]),
        "After Slow never starts"
    );
    assert_eq!(status_of(&out.summary(), "After Slow"), "not_run");
    let recorded = completed_paths(&sb.show("run.ckpt"));
    assert!(recorded.contains("Send Mail"), "{recorded:?}");
    assert!(recorded.contains("Slow"), "{recorded:?}");
    assert!(
        !recorded.contains("Load"),
        "the failure that reached the limit: {recorded:?}"
    );
    sb.touch("fixed");
    sb.run().output().exit(0);
    assert_eq!(
        sorted(sb.take_ledger()),
        names(&["AfterSlow", "Gate", "Load"])
    );
}

/// A container that reaches its limit runs its own failure path, then
/// fails; its failure in turn lets its own failure path in the package run.
#[test]
fn a_containers_failure_path_runs_after_the_paths_inside_it() {
    let sb = package(
        r#"  - name: Stage
    type: sequence
    tasks:
      - { name: Load, type: process, command: "echo Load >> ledger.txt; exit 1" }
      - { name: Inner Alert, type: process, after: [{ task: Load, on: failure }], command: "echo InnerAlert >> ledger.txt" }
      - { name: Inner Next, type: process, after: [Load], command: "echo InnerNext >> ledger.txt" }
  - { name: Outer Alert, type: process, after: [{ task: Stage, on: failure }], command: "echo OuterAlert >> ledger.txt" }
  - { name: Publish, type: process, after: [Stage], command: "echo Publish >> ledger.txt" }
"#,
    );
    let out = sb.run_json().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&["Load", "InnerAlert", "OuterAlert"])
    );
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Stage"), "failed");
    assert_eq!(status_of(&summary, "Publish"), "not_run");
}

/// `fail_parent_on_failure` cuts its container short at once: the failure
/// path inside does not run, the container's own failure path outside does.
#[test]
fn fail_parent_on_failure_cuts_the_inner_failure_path() {
    let sb = package(
        r#"  - name: Stage
    type: sequence
    max_errors: 5
    tasks:
      - { name: Load, type: process, fail_parent_on_failure: true, command: "echo Load >> ledger.txt; exit 1" }
      - { name: Inner Alert, type: process, after: [{ task: Load, on: failure }], command: "echo InnerAlert >> ledger.txt" }
  - { name: Outer Alert, type: process, after: [{ task: Stage, on: failure }], command: "echo OuterAlert >> ledger.txt" }
"#,
    );
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Load", "OuterAlert"]));
}
