//! When a checkpoint is read, kept, deleted or refused (docs/semantics.md
//! §5.1, §5.2, §5.4, §5.6): scenarios 1, 2, 3, 4, 12, 16 and 17.

use std::time::Duration;

use crate::support::*;

/// Scenario 1's package: three process tasks in series, the middle one
/// forced to fail; `flag` goes on the middle one as written.
fn blog_table(flag: &str) -> String {
    package_yaml(
        "blog_table",
        &checkpoint_at("blog.ckpt"),
        &format!(
            r#"  - {{ name: Success1, type: process, command: "echo Success1 >> ledger.txt" }}
  - {{ name: Failure, type: process, command: "echo Failure >> ledger.txt", force_result: failure{flag} }}
  - {{ name: Success2, type: process, command: "echo Success2 >> ledger.txt" }}
"#
        ),
    )
}

/// A, then B (a restart point that fails until the file `fixed` exists), then C.
fn abc(checkpoint: &str) -> String {
    package_yaml("abc", &format!("{checkpoint}\n"), A_FAILING_B_C)
}

#[test]
fn failure_without_fail_package_on_failure_keeps_no_checkpoint_and_rerun_starts_at_first_task() {
    let sb = Sandbox::with_package(&blog_table(""));

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Success1", "Failure"]));
    assert!(
        !sb.exists("blog.ckpt"),
        "no restart point among the failures: the file must be deleted"
    );

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Success1", "Failure"]));
    assert!(!sb.exists("blog.ckpt"));
}

#[test]
fn fail_package_on_failure_keeps_checkpoint_and_rerun_starts_at_failed_task() {
    let sb = Sandbox::with_package(&blog_table(", fail_package_on_failure: true"));

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Success1", "Failure"]));
    assert_eq!(
        sb.completed("blog.ckpt"),
        vec![("Success1".to_owned(), "success".to_owned())],
        "only Success1 is recorded; the failed restart point is not"
    );

    // The rerun restores Success1 and starts at Failure, which fails again.
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["Failure"]));
    assert!(sb.exists("blog.ckpt"));
}

#[test]
fn fail_package_on_failure_on_the_package_itself_is_a_load_error() {
    let yaml = blog_table("").replace(
        "name: blog_table",
        "name: blog_table\nfail_package_on_failure: true",
    );
    let sb = Sandbox::with_package(&yaml);

    sb.run().output().exit(5).says("fail_package_on_failure");
    assert!(sb.ledger().is_empty(), "nothing may run");
    sb.cmd(["validate", "package.yaml"])
        .output()
        .exit(5)
        .says("fail_package_on_failure");
}

#[test]
fn usage_never_ignores_an_existing_checkpoint_and_save_starts_a_new_one() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: n.ckpt, usage: never, save: true }",
    ));

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert_eq!(
        sb.completed("n.ckpt"),
        vec![("A".to_owned(), "success".to_owned())]
    );

    // The file exists but is not read: A runs again.
    assert_eq!(sb.rerun_fixed(), names(&["A", "B", "C"]));
    assert!(!sb.exists("n.ckpt"), "success deletes the file");
}

#[test]
fn usage_if_exists_starts_fresh_without_a_file_then_restarts_from_the_one_it_created() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: state/ie.ckpt, usage: if_exists, save: true }",
    ));
    sb.touch("state/.keep");

    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("state/ie.ckpt"), "the first run creates the file");

    assert_eq!(sb.rerun_fixed(), names(&["B", "C"]));
}

#[test]
fn usage_always_with_a_missing_file_fails_before_anything_runs_naming_the_path() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: missing.ckpt, usage: always, save: true }",
    ));

    sb.run().output().exit(1).says("missing.ckpt");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert!(!sb.exists("missing.ckpt"));
}

#[test]
fn command_line_checkpoint_options_override_the_package_like_dtexec() {
    // The package itself does no checkpointing at all.
    let sb = Sandbox::with_package(&abc(""));
    let ck = ["--checkpoint-file", "cli.ckpt"];

    // --checkpointing on = save + usage always: the file must exist.
    sb.run()
        .arg("--checkpointing")
        .arg("on")
        .args(ck)
        .output()
        .exit(1)
        .says("cli.ckpt");
    assert!(sb.ledger().is_empty(), "nothing may run");

    // --restart if_possible relaxes the usage: the run starts and saves.
    sb.run()
        .args(["--checkpointing", "on", "--restart", "if_possible"])
        .args(ck)
        .output()
        .exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert_eq!(
        sb.completed("cli.ckpt"),
        vec![("A".to_owned(), "success".to_owned())]
    );

    // --restart deny: the existing file is not read.
    sb.run()
        .args(["--checkpointing", "on", "--restart", "deny"])
        .args(ck)
        .output()
        .exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("cli.ckpt"));

    // --restart force: the file is read; the run resumes at B and succeeds.
    sb.touch("fixed");
    sb.run()
        .args(["--checkpointing", "on", "--restart", "force"])
        .args(ck)
        .output()
        .exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
    assert!(!sb.exists("cli.ckpt"));

    // Without the options the package's own settings (none) apply again.
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
    assert!(!sb.exists("cli.ckpt"));
}

#[test]
fn checkpoint_file_option_replaces_the_packages_file() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: own.ckpt, usage: if_exists, save: true }",
    ));

    sb.run()
        .args(["--checkpoint-file", "moved.ckpt"])
        .output()
        .exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("moved.ckpt"));
    assert!(!sb.exists("own.ckpt"));

    // A run without the option does not see moved.ckpt.
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));

    sb.touch("fixed");
    sb.run()
        .args(["--checkpoint-file", "moved.ckpt"])
        .output()
        .exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
    assert!(!sb.exists("moved.ckpt"));
}

#[test]
fn package_id_mismatch_fails_before_anything_runs_names_both_ids_and_leaves_the_file() {
    let checkpoint = "checkpoint: { file: shared.ckpt, usage: if_exists, save: true }";
    let sb = Sandbox::with_package(&abc(checkpoint).replace(ID, OTHER_ID));
    sb.run().output().exit(1);
    sb.take_ledger();
    let before = sb.read_bytes("shared.ckpt");

    sb.write("package.yaml", &abc(checkpoint));
    sb.run().output().exit(1).says(ID).says(OTHER_ID);
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(
        sb.read_bytes("shared.ckpt"),
        before,
        "the file must be untouched"
    );
}

#[test]
fn success_deletes_the_checkpoint_and_the_next_run_starts_from_the_beginning() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: s.ckpt, usage: if_exists, save: true }",
    ));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(sb.exists("s.ckpt"));

    assert_eq!(sb.rerun_fixed(), names(&["B", "C"]));
    assert!(!sb.exists("s.ckpt"), "success deletes the file");

    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
    assert!(!sb.exists("s.ckpt"));
}

#[test]
fn checkpoint_path_from_file_expr_is_created_there_relative_to_the_package() {
    let yaml = package_yaml(
        "expr_path",
        r#"variables:
  StateDir: { type: string, value: state }
checkpoint:
  file_expr: '@[User::StateDir] + "/from_expr.ckpt"'
  usage: if_exists
  save: true
"#,
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: B, type: process, command: "echo B >> ledger.txt; test -f fixed", fail_package_on_failure: true }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    sb.touch("state/.keep");
    // Run from another folder: the path resolves against the package's folder.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let pkg = sb.join("package.yaml");

    sb.cmd(["run"])
        .arg(&pkg)
        .current_dir(elsewhere.path())
        .output()
        .exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(
        sb.exists("state/from_expr.ckpt"),
        "the file must be where the expression says"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path())
            .expect("read dir")
            .count(),
        0,
        "nothing may be written to the caller's folder"
    );

    sb.touch("fixed");
    sb.cmd(["run"])
        .arg(&pkg)
        .current_dir(elsewhere.path())
        .output()
        .exit(0);
    assert_eq!(sb.take_ledger(), names(&["B"]));
    assert!(!sb.exists("state/from_expr.ckpt"));
}

/// Frames of a checkpoint file: (offset, total length). See
/// docs/design/journal-format.md: magic `CFJ`, version byte, u32 LE length,
/// u32 crc, payload; then zeros written ahead of the frames, to the end.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() && bytes[at..].iter().any(|&b| b != 0) {
        assert_eq!(&bytes[at..at + 3], b"CFJ", "frame magic at byte {at}");
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        out.push((at, 12 + len));
        at += 12 + len;
    }
    assert!(
        bytes[at..].iter().all(|&b| b == 0),
        "only zeros follow the last frame (byte {at})"
    );
    out
}

/// A checkpoint with A, B, C recorded (D failed), frame by frame.
fn four_task_checkpoint() -> Sandbox {
    let yaml = package_yaml(
        "damaged",
        &checkpoint_at("d.ckpt"),
        &(ledger_tasks(&["A", "B", "C"])
            + r#"  - { name: D, type: process, command: "echo D >> ledger.txt; test -f fixed", fail_package_on_failure: true }
"#),
    );
    let sb = Sandbox::with_package(&yaml);
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C", "D"]));
    assert_eq!(sb.completed("d.ckpt").len(), 3);
    sb
}

#[test]
fn tampered_checkpoint_fails_before_anything_runs_with_a_clear_error() {
    let sb = four_task_checkpoint();
    let mut bytes = sb.read_bytes("d.ckpt");
    let fr = frames(&bytes);
    assert!(
        fr.len() >= 4,
        "expected a header and several record frames: {fr:?}"
    );
    // Flip one bit in the middle of the payload of the second frame, which
    // has whole frames after it: damage, not a torn tail.
    let (off, len) = fr[1];
    bytes[off + 12 + (len - 12) / 2] ^= 0x04;
    std::fs::write(sb.join("d.ckpt"), &bytes).expect("write damaged file");

    sb.run().output().exit(1).says("d.ckpt").says_ci("corrupt");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(
        sb.read_bytes("d.ckpt"),
        bytes,
        "a damaged file is left alone"
    );
    let show = sb.cmd(["checkpoint", "show", "d.ckpt"]).output();
    assert_ne!(
        show.code,
        Some(0),
        "show must not present a corrupt file as valid\n{show:?}"
    );
}

#[test]
fn checkpoint_truncated_inside_its_first_record_fails_before_anything_runs() {
    let sb = four_task_checkpoint();
    let bytes = sb.read_bytes("d.ckpt");
    let (off, len) = frames(&bytes)[0];
    let cut = &bytes[..off + len / 2];
    std::fs::write(sb.join("d.ckpt"), cut).expect("write truncated file");

    sb.run().output().exit(1).says("d.ckpt");
    assert!(sb.ledger().is_empty(), "nothing may run");
    assert_eq!(sb.read_bytes("d.ckpt"), cut, "the file is left alone");
}

#[test]
fn checkpoint_torn_in_its_last_record_restarts_from_the_records_before_it() {
    let sb = four_task_checkpoint();
    let bytes = sb.read_bytes("d.ckpt");
    let fr = frames(&bytes);
    let last = sb.completed("d.ckpt").last().expect("a record").0.clone();
    assert_eq!(last, "C");
    // Zero the second half of the last frame (C's completion), as a crash
    // before its sync would: the file keeps its length (the room written
    // ahead of the frames), and its end reads back as zeros.
    let (off, len) = *fr.last().expect("frames");
    let mut torn = bytes.clone();
    torn[off + len / 2..].fill(0);
    std::fs::write(sb.join("d.ckpt"), &torn).expect("write torn file");
    assert_eq!(
        sb.completed("d.ckpt"),
        names(&["A", "B"])
            .into_iter()
            .map(|p| (p, "success".to_owned()))
            .collect::<Vec<_>>(),
        "the torn record is dropped"
    );

    assert_eq!(sb.rerun_fixed(), names(&["C", "D"]));
}

#[test]
fn second_run_on_a_held_checkpoint_fails_at_start_naming_the_holder() {
    let yaml = package_yaml(
        "locked",
        &checkpoint_at("lock.ckpt"),
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt; sleep 2" }
  - { name: B, type: process, command: "echo B >> ledger.txt" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let first = sb.run().spawn();
    assert!(
        within(Duration::from_secs(30), || !sb.ledger().is_empty()),
        "the first run never started A"
    );

    let pid = first.pid().to_string();
    sb.run().output().exit(1).says("lock.ckpt").says(&pid);

    first.finish().exit(0);
    assert_eq!(
        sb.take_ledger(),
        names(&["A", "B"]),
        "the second run ran nothing"
    );
    assert!(!sb.exists("lock.ckpt"));
}

#[test]
fn checkpointing_off_neither_reads_nor_writes_a_checkpoint() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: off.ckpt, usage: if_exists, save: true }",
    ));

    sb.run().args(["--checkpointing", "off"]).output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    assert!(!sb.exists("off.ckpt"), "off: nothing is saved");

    // With a checkpoint present, off does not restart from it.
    sb.run().output().exit(1);
    sb.take_ledger();
    assert!(sb.exists("off.ckpt"));
    sb.touch("fixed");
    sb.run().args(["--checkpointing", "off"]).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["A", "B", "C"]));
}

/// `save: false` after a run that saved: the restart reads the file and
/// writes nothing to it. A failure leaves the file as it was (its restart
/// point still holds); a success deletes it, as every success does
/// (docs/semantics.md §5.4), so the next run starts from the beginning
/// instead of restoring the same records forever.
#[test]
fn a_restart_with_save_false_keeps_the_file_on_failure_and_deletes_it_on_success() {
    let sb = Sandbox::with_package(&abc(
        "checkpoint: { file: s.ckpt, usage: if_exists, save: true }",
    ));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    let before = sb.read_bytes("s.ckpt");

    sb.write(
        "package.yaml",
        &abc("checkpoint: { file: s.ckpt, usage: if_exists, save: false }"),
    );
    let out = sb.run_json().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["B"]), "A is restored");
    assert_eq!(out.summary()["checkpoint"]["kept"], true);
    assert_eq!(
        sb.read_bytes("s.ckpt"),
        before,
        "save: false writes nothing"
    );

    sb.touch("fixed");
    sb.run()
        .output()
        .exit(0)
        .says("deleted: the package succeeded");
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
    assert!(!sb.exists("s.ckpt"), "success deletes the file");

    sb.run().output().exit(0);
    assert_eq!(
        sb.take_ledger(),
        names(&["A", "B", "C"]),
        "the next run starts from the beginning"
    );
}
