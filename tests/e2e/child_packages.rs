//! Execute Package (`type: package`) and the Script task (`type: script`)
//! through the binary: a child package keeps its own checkpoint, `bind`
//! passes values down, and cancelling the parent stops the child.

use crate::support::*;
use std::time::{Duration, Instant};

#[test]
fn rerun_of_parent_reruns_child_task_and_child_restarts_from_its_own_checkpoint() {
    // The child's second task fails until `fixed` exists; the child keeps its
    // own checkpoint, so a rerun restores its first task.
    let sb = parent_and_child(
        &checkpoint_at("parent.ckpt"),
        P1_CHILD_P2,
        &checkpoint_at("child.ckpt"),
        C1_FAILING_C2_C3,
    );

    let out = sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["P1", "C1", "C2"]), "{out:?}");
    // The child's events reach the parent's log, under the child's name, and
    // the task's error carries the child's.
    let out = out
        .says("[child] start    C2")
        .says("child package child.yaml failed");
    assert!(out.all().contains("C2"), "{out:?}");
    assert_eq!(
        sb.completed("parent.ckpt"),
        vec![("P1".to_owned(), "success".to_owned())]
    );
    // The child's file is its own name with the parent task's key in it.
    let kept = child_checkpoints(&sb);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        sb.completed(&kept[0]),
        vec![("C1".to_owned(), "success".to_owned())]
    );

    sb.touch("fixed");
    let out = sb.run().output().exit(0);
    // P1 restored by the parent, C1 restored by the child: neither runs again.
    assert_eq!(sb.take_ledger(), names(&["C2", "C3", "P2"]), "{out:?}");
    out.says("restored P1")
        .says("[child] restored C1")
        .says("[child] started (restarting from its checkpoint)");
    assert!(!sb.exists("parent.ckpt") && child_checkpoints(&sb).is_empty());
}

#[test]
fn bind_passes_a_value_computed_from_parent_variables() {
    let sb = Sandbox::with_package(&package_yaml(
        "parent",
        r#"variables:
  Base:   { type: int32, value: 20 }
  Region: { type: string, value: "north" }
"#,
        r#"  - name: Child
    type: package
    path: sub/child.yaml
    bind:
      N: "@[User::Base] * 2 + 2"
      User::Label: '"region " + @[User::Region]'
"#,
    ));
    sb.write(
        "sub/child.yaml",
        &child_yaml(
            r#"variables:
  N:     { type: int32, value: 0 }
  Label: { type: string, value: "" }
"#,
            r#"  - name: Show
    type: script
    read_vars: [N, Label]
    code: 'print(`N=${N} Label=${Label} twice=${N * 2}`);'
  - name: Write
    type: process
    command: "true"
    expressions:
      command: '"echo " + (DT_WSTR, 10) @[User::N] + " >> ../ledger.txt"'
"#,
        ),
    );
    let out = sb.run().output().exit(0);
    out.says("[child] Show | N=42 Label=region north twice=84");
    assert_eq!(sb.take_ledger(), names(&["42"]));
}

#[test]
fn a_child_that_does_not_declare_a_bound_variable_fails_the_task() {
    let sb = parent_and_child(
        "",
        "  - { name: Child, type: package, path: child.yaml, bind: { Nope: \"1\" } }\n",
        "",
        "  - { name: C, type: process, command: \"true\" }\n",
    );
    sb.run()
        .output()
        .exit(1)
        .says("could not run (exit code 6)")
        .says("\"User::Nope\" is not declared");
}

#[test]
fn a_missing_child_is_a_validation_error_naming_the_path() {
    let sb = Sandbox::with_package(&package_yaml(
        "parent",
        "",
        r#"  - { name: Child, type: package, path: nowhere/child.yaml }
  - { name: Bad, type: package, path: package.yaml, bind: { X: "1 +" } }
"#,
    ));
    sb.cmd(["validate", "package.yaml"])
        .output()
        .exit(5)
        .says("nowhere/child.yaml does not exist")
        .says("bind `X`: bad expression");
}

#[test]
fn a_package_that_runs_itself_is_stopped() {
    let sb = Sandbox::with_package(&package_yaml(
        "loop",
        "",
        r#"  - { name: Again, type: package, path: package.yaml }
"#,
    ));
    sb.run()
        .output()
        .exit(1)
        .says("already running above this one");
}

#[test]
fn ctrl_c_on_the_parent_stops_the_child_and_its_processes() {
    let sb = parent_and_child(
        "",
        "  - { name: Child, type: package, path: child.yaml }\n",
        &checkpoint_at("child.ckpt"),
        r#"  - { name: C1, type: process, command: "echo C1 >> ledger.txt" }
  - { name: Slow, type: process, command: "echo $$ > slow.pid; echo Slow >> ledger.txt; exec sleep 60" }
"#,
    );
    let run = sb.run().spawn();
    assert!(
        within(Duration::from_secs(30), || sb.ledger().len() >= 2),
        "Slow never started"
    );
    let slow: i32 = sb.read("slow.pid").trim().parse().expect("a pid");
    let t = Instant::now();
    run.signal(libc::SIGINT);
    let out = run.finish();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(20), "{out:?}");
    // The child's `sleep` is gone (the child stopped it as on its own Ctrl-C).
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let running = || unsafe { libc::kill(slow, 0) } == 0;
    assert!(
        within(Duration::from_secs(10), || !running()),
        "the child's process {slow} still runs"
    );
    // The child stopped as a cancelled run does: what finished stays recorded.
    let kept = child_checkpoints(&sb);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        sb.completed(&kept[0]),
        vec![("C1".to_owned(), "success".to_owned())]
    );
}

#[test]
fn a_task_timeout_stops_the_child() {
    let sb = parent_and_child(
        "",
        "  - { name: Child, type: package, path: child.yaml, timeout: 1s }\n",
        "",
        "  - { name: Slow, type: process, command: \"sleep 60\" }\n",
    );
    let t = Instant::now();
    let out = sb.run().output().exit(1);
    assert!(t.elapsed() < Duration::from_secs(20), "{out:?}");
}

#[test]
fn a_script_task_reads_and_writes_variables_in_a_run() {
    let sb = Sandbox::with_package(&package_yaml(
        "scripted",
        &(checkpoint_at("s.ckpt")
            + r#"variables:
  Count: { type: int32, value: 1 }
  Names: { type: object, value: ["a", "b"] }
  Joined: { type: string, value: "" }
"#),
        r#"  - name: Script
    type: script
    read_vars: [Names]
    write_vars: [Count, Joined]
    code: |
      Count += Names.len();
      Joined = "";
      for n in Names { Joined += n; }
      print(`joined ${Joined}`);
  - name: Check
    type: process
    command: "true"
    fail_package_on_failure: true
    expressions:
      command: '"echo " + (DT_WSTR, 10) @[User::Count] + @[User::Joined] + " >> ledger.txt; test -f fixed"'
"#,
    ));
    sb.run().output().exit(1).says("Script | joined ab");
    assert_eq!(sb.take_ledger(), names(&["3ab"]));
    // The checkpoint holds what the script wrote; a restart does not rerun it.
    let doc = sb.show("s.ckpt");
    assert_eq!(doc["variables"]["User::Count"], 3, "{doc}");
    sb.touch("fixed");
    sb.run().output().exit(0).says("restored Script");
    assert_eq!(sb.take_ledger(), names(&["3ab"]));
}

#[test]
fn script_errors_show_their_line_at_validation_and_at_run_time() {
    let sb = Sandbox::with_package(&package_yaml(
        "scripted",
        "",
        r#"  - name: Broken
    type: script
    code: |
      let a = 1;
      let b = ;
"#,
    ));
    sb.cmd(["validate", "package.yaml"])
        .output()
        .exit(5)
        .says("`code` does not compile: line 2, column");

    sb.write(
        "package.yaml",
        &format!(
            "id: {ID}\nname: scripted\ntasks:\n  - name: Throws\n    type: script\n    code: |\n      let a = 1;\n      throw `bad row ${{a}}`;\n"
        ),
    );
    sb.run()
        .output()
        .exit(1)
        .says("script failed at line 2")
        .says("bad row 1");
}

#[test]
fn a_task_timeout_stops_a_runaway_script() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: spin\ntasks:\n  - {{ name: Spin, type: script, code: 'loop {{ }}', timeout: 1s }}\n"
    ));
    let t = Instant::now();
    let out = sb.run().output().exit(1);
    assert!(t.elapsed() < Duration::from_secs(20), "{out:?}");
}

/// A parent binding its sensitive `Password` ("s3cret-value") to its child's
/// `Pw`; the child runs `child_tasks`.
fn binding_a_secret(child_tasks: &str) -> Sandbox {
    parent_and_child(
        "variables:\n  Password: { type: string, value: \"s3cret-value\", sensitive: true }\n",
        "  - { name: Child, type: package, path: child.yaml, bind: { Pw: \"@[User::Password]\" } }\n",
        "variables:\n  Pw: { type: string, value: \"\" }\n",
        child_tasks,
    )
}

/// Bound values do not travel on the child's command line (every user can
/// read it in the process list), nor in a file: they go on its standard input.
#[test]
fn bound_values_are_not_on_the_childs_command_line() {
    let sb = binding_a_secret(
        r#"  - { name: Argv, type: process, command: "tr '\\0' '\\n' < /proc/$PPID/cmdline > argv.txt" }
  - name: Got
    type: process
    command: "true"
    expressions:
      command: '"echo " + @[User::Pw] + " >> ledger.txt"'
"#,
    );
    sb.run().output().exit(0);
    assert_eq!(
        sb.take_ledger(),
        names(&["s3cret-value"]),
        "the value arrived"
    );
    let argv: Vec<String> = sb.read("argv.txt").lines().map(str::to_owned).collect();
    assert!(
        argv.iter().any(|a| a == "run"),
        "the child's argv: {argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a.contains("s3cret")),
        "the value is on the command line: {argv:?}"
    );
    let config = argv
        .iter()
        .position(|a| a == "--config")
        .map(|i| argv[i + 1].clone());
    assert_eq!(
        config.as_deref(),
        Some("-"),
        "read from standard input: {argv:?}"
    );
}

/// The bound values are JSON, but the child reads `--config` with a YAML
/// parser, which refuses characters YAML does not allow in a stream (DEL, C1
/// controls) that serde_json writes raw: they are escaped.
#[test]
fn a_bound_value_with_a_control_character_reaches_the_child() {
    let sb = parent_and_child(
        r#"variables:
  Text: { type: string, value: "a\x7Fb\u0080c" }
"#,
        "  - { name: Child, type: package, path: child.yaml, bind: { V: \"@[User::Text]\" } }\n",
        "variables:\n  V: { type: string, value: \"\" }\n",
        r#"  - name: Got
    type: process
    command: "true"
    expressions:
      command: '"echo " + @[User::V] + " >> ledger.txt"'
"#,
    );
    let out = sb.run().output();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(sb.take_ledger(), vec!["a\u{7f}b\u{80}c".to_string()]);
}

/// A parent killed with SIGKILL (a case checkpoints exist for) leaves no
/// bound values behind (here a sensitive one) in the temp folder.
#[cfg(unix)]
#[test]
fn a_parent_killed_while_its_child_runs_leaves_no_bind_file() {
    let sb = binding_a_secret(
        "  - { name: Wait, type: process, command: \"touch started; sleep 5\" }\n",
    );
    std::fs::create_dir_all(sb.join("tmp")).expect("tmp");
    let tmp = sb.join("tmp");
    let run = sb
        .run()
        .env("TMPDIR", tmp.to_str().expect("utf-8 path"))
        .spawn();
    assert!(
        within(Duration::from_secs(20), || sb.exists("started")),
        "the child never started"
    );
    run.signal(libc::SIGKILL);
    let _ = run.finish();
    std::thread::sleep(Duration::from_secs(6));
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .expect("list tmp")
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            format!(
                "{}: {}",
                p.display(),
                std::fs::read_to_string(&p).unwrap_or_default()
            )
        })
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
