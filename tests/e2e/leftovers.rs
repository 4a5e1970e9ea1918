//! Scenario 19: checkflow is killed while a `process` task runs, and the
//! task's command has started processes of its own; the rerun ends every
//! process of the killed copy (the whole tree, wherever it moved) before it
//! runs the task again, and leaves alone the processes of other checkpoints.
//!
//! Linux only: the leftovers are found through `/proc`.
#![cfg(target_os = "linux")]

use std::time::Duration;

use crate::support::*;

/// `Extract`, then `Load`, which runs `load.sh`.
fn package() -> String {
    package_yaml(
        "leftovers",
        &checkpoint_at("a.ckpt"),
        r#"  - { name: Extract, type: process, command: "echo Extract >> ledger.txt" }
  - { name: Load, type: process, command: "sh load.sh", after: [Extract] }
"#,
    )
}

/// `load.sh`, told what to do by the file `mode` ("MODE NAME"):
/// - `hold NAME`: start three children that outlive the command, their
///   output away from the task's pipes (one plain,
///   one that ignores SIGTERM and has a child of its own, one in a session
///   of its own), write every pid to `NAME.pids` (the command's own to
///   `NAME.main`), mark `NAME.started`, and wait for them;
/// - `check NAME`: write `alive PID` to `NAME.check` for each recorded pid
///   still alive (a zombie is not), then `checked`, and append to the ledger.
const LOAD_SH: &str = r#"
read mode name < mode
alive() { [ -d "/proc/$1" ] && ! grep -q ') Z' "/proc/$1/stat" 2>/dev/null; }
if [ "$mode" = hold ]; then
  exec > /dev/null 2>&1
  sh -c 'echo $$ >> "$0.pids"; exec sleep 300' "$name" &
  sh -c 'trap "" TERM; sleep 300 & echo $! >> "$0.pids"; echo $$ >> "$0.pids"; wait' "$name" &
  setsid sh -c 'echo $$ >> "$0.pids"; exec sleep 300' "$name" &
  echo $$ > "$name.main"
  while [ "$(cat "$name.pids" 2>/dev/null | wc -l)" -lt 4 ]; do sleep 0.05; done
  echo started > "$name.started"
  wait
  exit 0
fi
for p in $(cat "$name.pids" "$name.main" 2>/dev/null); do
  if alive "$p"; then echo "alive $p" >> "$name.check"; fi
done
echo checked >> "$name.check"
echo "Load $name" >> ledger.txt
"#;

fn sandbox() -> Sandbox {
    let sb = Sandbox::with_package(&package());
    sb.write("load.sh", LOAD_SH);
    sb
}

/// Whether `pid` is a live process (not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// The pids a `hold` copy recorded under `name`: its children, and itself.
fn pids(sb: &Sandbox, name: &str) -> (Vec<u32>, u32) {
    let children = sb
        .read(&format!("{name}.pids"))
        .lines()
        .map(|l| l.trim().parse().expect("a pid"))
        .collect();
    let main = sb
        .read(&format!("{name}.main"))
        .trim()
        .parse()
        .expect("a pid");
    (children, main)
}

/// Kills, when dropped, every process working in the sandbox folder: all
/// that the test's runs started, whether the test passed or not. (The
/// folder's name is unique, so no other process is there.)
struct Cleanup<'a>(&'a Sandbox);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for pid in working_in(self.0) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Every live process working in the sandbox folder.
fn working_in(sb: &Sandbox) -> Vec<i32> {
    let Ok(dir) = sb.path().canonicalize() else {
        return Vec::new();
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .filter(|pid| alive(*pid as u32))
        .collect()
}

/// Starts a run in `hold NAME` mode, waits until `Load`'s copy has started
/// its children, and kills checkflow with SIGKILL.
fn run_and_kill_9(sb: &Sandbox, name: &str, args: &[&str]) {
    sb.write("mode", &format!("hold {name}"));
    let mut run = sb.run().args(args).spawn();
    let marker = format!("{name}.started");
    let started = within(Duration::from_secs(60), || {
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!("the run ended before Load started its children: {status}");
        }
        sb.exists(&marker)
    });
    assert!(started, "Load did not start within 60s");
    run.child.kill().expect("kill -9 checkflow");
    run.child.wait().expect("reap checkflow");
}

#[test]
fn rerun_after_kill_9_ends_the_whole_tree_of_the_killed_copy_before_running_the_task_again() {
    let sb = sandbox();
    let _cleanup = Cleanup(&sb);
    run_and_kill_9(&sb, "a", &[]);
    assert_eq!(sb.take_ledger(), names(&["Extract"]));
    let (children, _main) = pids(&sb, "a");
    assert!(
        children.iter().all(|p| alive(*p)),
        "the killed copy's children outlive checkflow"
    );

    let out = rerun_ending_leftovers(&sb);
    for pid in &children {
        assert!(
            out.all().contains(&pid.to_string()),
            "the log names leftover {pid}:\n{}",
            out.all()
        );
    }
    assert_eq!(
        sb.read("a.check"),
        "checked\n",
        "no process of the killed copy was alive when the new copy started"
    );
    assert_eq!(
        sb.take_ledger(),
        names(&["Load a"]),
        "Extract is not run again"
    );
    let (children, main) = pids(&sb, "a");
    assert!(!alive(main) && children.iter().all(|p| !alive(*p)));
}

#[test]
fn a_restart_leaves_alone_the_processes_of_another_checkpoint() {
    let sb = sandbox();
    let _cleanup = Cleanup(&sb);
    // The same package and task, on checkpoint b.ckpt, killed while Load runs.
    run_and_kill_9(&sb, "b", &["--checkpoint-file", "b.ckpt"]);
    run_and_kill_9(&sb, "a", &[]);
    sb.take_ledger();
    let (b_children, _) = pids(&sb, "b");
    assert!(b_children.iter().all(|p| alive(*p)));

    let out = rerun_ending_leftovers(&sb);
    assert_eq!(sb.read("a.check"), "checked\n");
    let all = out.all();
    let warning: Vec<&str> = all.lines().filter(|l| l.contains("left running")).collect();
    for pid in &b_children {
        assert!(
            alive(*pid),
            "b.ckpt's leftover {pid} was not touched by a.ckpt's restart"
        );
        assert!(
            warning.iter().all(|l| !l.contains(&pid.to_string())),
            "{warning:?}"
        );
    }
    let (a_children, _) = pids(&sb, "a");
    assert!(a_children.iter().all(|p| !alive(*p)));
}

/// The rerun in `check a` mode after a killed run: it succeeds and says it
/// found processes left running by the earlier run.
fn rerun_ending_leftovers(sb: &Sandbox) -> Output {
    sb.write("mode", "check a");
    sb.run()
        .output()
        .exit(0)
        .says("left running in an earlier run")
}

/// Runs the package stopped at the crash point `point`: killed for `=kill`,
/// exit 3 for `=term` ([`stopped_code`]).
fn stop_at(sb: &Sandbox, point: &str) {
    let out = sb.run().failpoint(point).output();
    assert_eq!(out.code, stopped_code(point), "{point}: {out:?}");
}

/// Runs the package with `CHECKFLOW_TEST_FAILPOINT=point`, expecting `code`.
fn run_at(sb: &Sandbox, point: &str, code: i32) -> Output {
    sb.run().failpoint(point).output().exit(code)
}

/// The crash points of the protocol, under kill -9 and SIGTERM: whatever
/// the killed or stopped run left, the next run ends it, runs Load once and
/// finds nothing of an earlier copy alive.
#[test]
fn a_run_stopped_right_after_starting_the_process_leaves_nothing_for_the_rerun_to_run_beside() {
    for action in ["kill", "term"] {
        let sb = sandbox();
        let _cleanup = Cleanup(&sb);
        sb.write("mode", "hold a");
        stop_at(&sb, &format!("process-after-spawn@2={action}"));
        if action == "kill" {
            // The killed run's command may not have read `mode` yet (the run
            // died right after starting it): let it reach its hold before the
            // rerun's mode is written, or that copy would run the check itself.
            // (It may also be gone already: then there is nothing to wait for.)
            assert!(
                within(Duration::from_secs(30), || sb.exists("a.started")
                    || working_in(&sb).is_empty()),
                "the killed copy neither held nor ended"
            );
        }
        sb.write("mode", "check a");
        sb.run().output().exit(0);
        assert_eq!(sb.read("a.check"), "checked\n", "{action}");
        assert_eq!(sb.take_ledger(), names(&["Extract", "Load a"]), "{action}");
    }
}

#[test]
fn a_rerun_stopped_while_ending_the_leftovers_leaves_the_rest_to_the_next() {
    for action in ["kill", "term"] {
        let sb = sandbox();
        let _cleanup = Cleanup(&sb);
        run_and_kill_9(&sb, "a", &[]);
        sb.take_ledger();
        sb.write("mode", "check a");
        stop_at(&sb, &format!("process-after-leftover-signal={action}"));
        assert!(!sb.exists("a.check"), "{action}: Load did not start");
        run_at(&sb, "", 0);
        assert_eq!(sb.read("a.check"), "checked\n", "{action}");
        assert_eq!(sb.take_ledger(), names(&["Load a"]), "{action}");
    }
}

/// A child package without a checkpoint of its own runs `load.sh`; the
/// parent, which has one, is killed while it runs. The child run stops on
/// the parent's death (its task's group is killed), but the child in a
/// session of its own runs on, carrying the parent's tag; the parent's rerun
/// ends it before it starts the child package again.
#[test]
fn a_child_package_of_a_killed_parent_leaves_nothing_for_the_parents_rerun_to_run_beside() {
    let sb = parent_and_child(
        &checkpoint_at("parent.ckpt"),
        "  - { name: Child, type: package, path: child.yaml }\n",
        "",
        "  - { name: Load, type: process, command: \"sh load.sh\" }\n",
    );
    sb.write("load.sh", LOAD_SH);
    let _cleanup = Cleanup(&sb);
    run_and_kill_9(&sb, "a", &[]);
    let (children, _) = pids(&sb, "a");
    assert!(
        children.iter().any(|p| alive(*p)),
        "some of the killed copy's children outlive checkflow"
    );

    rerun_ending_leftovers(&sb).says("task \"Child\" left running in an earlier run");
    assert_eq!(sb.read("a.check"), "checked\n");
    assert_eq!(sb.take_ledger(), names(&["Load a"]));
}
