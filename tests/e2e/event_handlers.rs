//! Event handlers: `on_pre_execute`, `on_post_execute`, `on_error`,
//! `on_task_failed` and `on_warning` on the package or any executable. Each
//! fires for the executable it is attached to and, going up, for every
//! descendant's event until a handler sets `System::Propagate` to false. A
//! handler sees the event through `System::SourceName`, `SourceID`,
//! `ErrorCode` and `ErrorDescription`; one that fails is an error of the
//! executable it is attached to. Handlers are never checkpointed, and a
//! restart fires none for what it restores.

use crate::support::*;

/// A handler that appends `line` (an expression) to the ledger.
fn log(name: &str, line: &str) -> String {
    format!(
        r#"{{ name: {name}, type: process, command: "true", expressions: {{ command: "\"echo '\" + {line} + \"' >> ledger.txt\"" }} }}"#
    )
}

/// Handlers for every event on the package, each writing the event and its
/// system variables.
fn every_event() -> String {
    let src = r#"@[System::SourceName] + \"|\" + @[System::SourceID]"#;
    let err = r#"(DT_WSTR,5)@[System::ErrorCode] + \"|\" + @[System::ErrorDescription]"#;
    format!(
        "event_handlers:\n  on_pre_execute: [{}]\n  on_post_execute: [{}]\n  on_error: [{}]\n  on_task_failed: [{}]\n  on_warning: [{}]\n",
        log("Pre", &format!(r#"\"pre|\" + {src}"#)),
        log("Post", &format!(r#"\"post|\" + {src}"#)),
        log("Err", &format!(r#"\"error|\" + {src} + \"|\" + {err}"#)),
        log("Failed", &format!(r#"\"failed|\" + {src}"#)),
        log(
            "Warn",
            &format!(r#"\"warning|\" + {src} + \"|\" + @[System::ErrorDescription]"#)
        ),
    )
}

fn package(handlers: &str, tasks: &str) -> Sandbox {
    Sandbox::with_package(&format!(
        "id: {ID}\nname: demo\ncheckpoint: {{ file: run.ckpt, usage: if_exists, save: true }}\nvariables:\n  Count: {{ type: int32, value: 0 }}\n{handlers}tasks:\n{tasks}"
    ))
}

#[test]
fn every_event_fires_in_order_with_its_system_variables() {
    let sb = package(
        &every_event(),
        "  - { name: Seq, type: sequence, tasks: [{ name: A, type: process, command: \"echo careful >&2\" }, { name: B, type: process, command: \"exit 3\" }] }\n",
    );
    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&[
            "pre|demo|",
            "pre|Seq|Seq",
            "pre|A|Seq/A",
            "warning|A|Seq/A|careful",
            "post|A|Seq/A",
            "pre|B|Seq/B",
            "error|B|Seq/B|1|command `exit 3` exited with code 3",
            "failed|B|Seq/B",
            "post|B|Seq/B",
            "error|Seq|Seq|3|the number of errors raised (1) reached the maximum allowed (1)",
            "failed|Seq|Seq",
            "post|Seq|Seq",
            "error|demo||3|the number of errors raised (2) reached the maximum allowed (1)",
            "failed|demo|",
            "post|demo|",
        ])
    );
    assert!(!sb.exists("run.ckpt"), "no restart point: nothing kept");
}

/// An event goes up from the executable to each ancestor with a handler for
/// it, innermost first; a handler that sets `System::Propagate` to false
/// stops it there.
#[test]
fn an_event_propagates_upwards_until_a_handler_sets_propagate_false() {
    let inner = |propagate: bool| {
        let stop = if propagate {
            String::new()
        } else {
            r#", { name: Stop, type: expression, expr: "@[System::Propagate] = false" }"#
                .to_string()
        };
        format!(
            "  - name: Outer\n    type: sequence\n    event_handlers:\n      on_error: [{}]\n    tasks:\n      - name: Inner\n        type: sequence\n        event_handlers:\n          on_error: [{}{stop}]\n        tasks:\n          - {{ name: T, type: process, command: \"exit 1\" }}\n",
            log("O", r#"\"outer|\" + @[System::SourceID]"#),
            log("I", r#"\"inner|\" + @[System::SourceID]"#),
        )
    };
    let top = format!(
        "event_handlers:\n  on_error: [{}]\n",
        log("P", r#"\"package|\" + @[System::SourceID]"#)
    );
    let sb = package(&top, &inner(true));
    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&[
            "inner|Outer/Inner/T",
            "outer|Outer/Inner/T",
            "package|Outer/Inner/T",
            "inner|Outer/Inner",
            "outer|Outer/Inner",
            "package|Outer/Inner",
            "outer|Outer",
            "package|Outer",
            "package|",
        ])
    );
    let sb = package(&top, &inner(false));
    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&[
            "inner|Outer/Inner/T",
            "inner|Outer/Inner",
            "outer|Outer",
            "package|Outer",
            "package|",
        ]),
        "Inner's handler stops the events of Inner and what it holds"
    );
}

/// A handler attached to the executable itself that fails makes it fail
/// (its error names the handler), and the failure events fire for it.
#[test]
fn a_failing_handler_of_a_task_fails_that_task() {
    let sb = package(
        "",
        &format!(
            "  - name: A\n    type: process\n    command: \"echo A >> ledger.txt\"\n    event_handlers:\n      on_post_execute: [{{ name: Broken, type: process, command: \"exit 4\" }}]\n      on_error: [{}]\n  - {{ name: B, type: process, command: \"echo B >> ledger.txt\" }}\n",
            log(
                "Note",
                r#"\"error|\" + (DT_WSTR,5)@[System::ErrorCode] + \"|\" + @[System::ErrorDescription]"#
            )
        ),
    );
    let out = sb
        .run_json()
        .output()
        .exit(1)
        .says("its on_post_execute handler failed");
    assert_eq!(
        sb.take_ledger(),
        names(&[
            "A",
            "error|4|its on_post_execute handler failed: Broken: command `exit 4` exited with code 4",
        ])
    );
    let summary = out.summary();
    assert_eq!(status_of(&summary, "A"), "failed");
    assert_eq!(status_of(&summary, "B"), "not_run");
}

/// A handler on a container that fails for a descendant's event is one more
/// error of the container: at its `max_errors` (1 here, the package's) it
/// fails, and nothing new starts; the task whose event it was succeeds.
#[test]
fn a_failing_handler_is_an_error_of_the_container_it_is_attached_to() {
    let sb = package(
        "event_handlers:\n  on_warning: [{ name: Broken, type: process, command: \"exit 5\" }]\n",
        "  - { name: A, type: process, command: \"echo A >> ledger.txt; echo careful >&2\" }\n  - { name: B, type: process, command: \"echo B >> ledger.txt\" }\n",
    );
    let out =
        sb.run_json().output().exit(1).says(
            "demo: its on_warning handler failed: Broken: command `exit 5` exited with code 5",
        );
    assert_eq!(sb.take_ledger(), names(&["A"]));
    let summary = out.summary();
    assert_eq!(status_of(&summary, "A"), "succeeded");
    assert_eq!(status_of(&summary, "B"), "not_run");

    // Under a higher limit the error is counted and the run goes on.
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: demo\nmax_errors: 2\nevent_handlers:\n  on_warning: [{{ name: Broken, type: process, command: \"exit 5\" }}]\ntasks:\n  - {{ name: A, type: process, command: \"echo A >> ledger.txt; echo careful >&2\" }}\n  - {{ name: B, type: process, command: \"echo B >> ledger.txt\" }}\n"
    ));
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
}

/// A handler's `on_pre_execute` failing: the executable fails without running.
#[test]
fn a_failing_pre_execute_handler_keeps_its_executable_from_running() {
    let sb = package(
        "",
        "  - name: A\n    type: process\n    command: \"echo A >> ledger.txt\"\n    event_handlers:\n      on_pre_execute: [{ name: Gate, type: process, command: \"exit 1\" }]\n",
    );
    let out = sb.run_json().output().exit(1);
    assert!(sb.take_ledger().is_empty(), "A never ran");
    assert_eq!(status_of(&out.summary(), "A"), "failed");
}

/// Variables a handler sets are the package's: later tasks see them.
#[test]
fn variables_set_by_a_handler_are_seen_by_later_tasks() {
    let sb = package(
        "event_handlers:\n  on_post_execute: [{ name: Count, type: expression, expr: \"@[User::Count] = @[User::Count] + 1\" }]\n",
        &format!(
            "  - {{ name: A, type: process, command: \"true\" }}\n  - {{ name: B, type: process, command: \"true\" }}\n  - {}\n",
            log("Show", r#"\"count=\" + (DT_WSTR,5)@[User::Count]"#)
        ),
    );
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["count=2"]));
}

/// The restart after a failure fires no handler for what it restores: A ran
/// and was recorded, so only the package and B fire again. The checkpoint
/// holds no handler and no handler's executable.
#[test]
fn a_restart_fires_no_handler_for_restored_executables() {
    let handlers = format!(
        "event_handlers:\n  on_pre_execute: [{}]\n  on_post_execute: [{}]\n",
        log("Pre", r#"\"pre|\" + @[System::SourceID]"#),
        log("Post", r#"\"post|\" + @[System::SourceID]"#)
    );
    let sb = package(
        &handlers,
        "  - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n  - { name: B, type: process, fail_package_on_failure: true, command: \"echo B >> ledger.txt; test -f fixed\" }\n",
    );
    sb.run().output().exit(1);
    assert_eq!(
        sb.take_ledger(),
        names(&[
            "pre|", "pre|A", "A", "post|A", "pre|B", "B", "post|B", "post|"
        ])
    );
    assert_eq!(
        completed_paths(&sb.show("run.ckpt")),
        ["A".to_string()].into()
    );
    sb.touch("fixed");
    sb.run().output().exit(0).says("restored A");
    assert_eq!(
        sb.take_ledger(),
        names(&["pre|", "pre|B", "B", "post|B", "post|"]),
        "no handler fires for the restored A"
    );
}

/// An executable inside a handler cannot have handlers of its own; an
/// unknown event is a load error naming the key.
#[test]
fn handlers_in_handlers_and_unknown_events_are_refused() {
    let sb = package(
        "event_handlers:\n  on_error:\n    - name: Alert\n      type: sequence\n      event_handlers:\n        on_error: [{ name: X, type: process, command: \"true\" }]\n",
        "  - { name: A, type: process, command: \"true\" }\n",
    );
    sb.run().output().exit(5).says(
        "\"Alert\" is in the on_error handler of the package: an executable inside an event handler cannot have event handlers of its own",
    );
    let sb = package(
        "event_handlers:\n  on_failure: [{ name: X, type: process, command: \"true\" }]\n",
        "  - { name: A, type: process, command: \"true\" }\n",
    );
    sb.run().output().exit(5).says("unknown field `on_failure`");
}

/// kill -9 inside a handler: nothing of the handler was recorded, so the
/// rerun fires it again, restores what finished before, and runs the task
/// the handler was for once.
#[test]
fn a_kill_inside_a_handler_loses_nothing_and_doubles_nothing() {
    let sb = package(
        "",
        "  - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n  - name: B\n    type: process\n    command: \"echo B >> ledger.txt\"\n    event_handlers:\n      on_pre_execute: [{ name: Gate, type: process, command: \"echo gate >> ledger.txt; test -f once || { touch once; kill -9 $PPID; sleep 5; }\" }]\n",
    );
    let out = sb.run().output();
    assert_eq!(out.code, None, "killed by its handler: {}", out.all());
    assert_eq!(sb.take_ledger(), names(&["A", "gate"]));
    assert_eq!(
        completed_paths(&sb.show("run.ckpt")),
        ["A".to_string()].into()
    );
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["gate", "B"]));
}

/// `plan` lists every handler, with what it is attached to.
#[test]
fn plan_lists_the_handlers() {
    let sb = package(
        "event_handlers:\n  on_error: [{ name: Alert, type: process, command: \"true\" }, { name: Page, type: process, command: \"true\" }]\n",
        "  - name: A\n    type: process\n    command: \"true\"\n    event_handlers:\n      on_post_execute: [{ name: Tidy, type: process, command: \"true\" }]\n",
    );
    sb.cmd(["plan", "package.yaml"])
        .output()
        .exit(0)
        .stdout_has("  on_error of package \"demo\": Alert, Page\n")
        .stdout_has("  on_post_execute of A: Tidy\n");
    let v = sb.plan();
    assert_eq!(
        v["handlers"],
        serde_json::json!([
            {"of": "", "event": "on_error", "executables": ["Alert", "Page"]},
            {"of": "A", "event": "on_post_execute", "executables": ["Tidy"]},
        ])
    );
}

/// SIGTERM while a handler runs stops the run as anywhere else (exit 3): a
/// task whose `on_post_execute` handler was cut short still ends as it did,
/// and is recorded; a task whose `on_pre_execute` handler was cut short
/// never starts. The rerun restores the one, and fires the other's handler
/// again before running it once.
#[test]
fn sigterm_inside_a_handler_stops_the_run_and_loses_nothing() {
    let sb = package(
        "",
        "  - name: A\n    type: process\n    command: \"echo A >> ledger.txt\"\n    event_handlers:\n      on_post_execute: [{ name: Stop, type: process, command: \"echo stop >> ledger.txt; test -f a-once || { touch a-once; kill -TERM $PPID; sleep 5; }\" }]\n  - name: B\n    type: process\n    command: \"echo B >> ledger.txt\"\n    event_handlers:\n      on_pre_execute: [{ name: Gate, type: process, command: \"echo gate >> ledger.txt; test -f b-once || { touch b-once; kill -TERM $PPID; sleep 5; }\" }]\n",
    );
    sb.run().output().exit(3);
    assert_eq!(sb.take_ledger(), names(&["A", "stop"]));
    assert_eq!(
        completed_paths(&sb.show("run.ckpt")),
        ["A".to_string()].into()
    );
    sb.run().output().exit(3);
    assert_eq!(
        sb.take_ledger(),
        names(&["gate"]),
        "A restored, B cut short"
    );
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["gate", "B"]));
}
