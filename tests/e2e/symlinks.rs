//! Files checkflow writes are never written through a symbolic link, and
//! nothing it opens may be a FIFO (issue 15, items 8 and 10).
//!
//! Each test puts a link at a path the binary writes, pointing at a decoy
//! file in the sandbox (never at a real system file), runs it, and checks
//! that the link is refused with an error naming it, or replaced by a
//! rename, and that the decoy's bytes are unchanged. The FIFO tests give the
//! binary a FIFO where it reads or writes a file: it must fail at once with
//! an error naming it; a run that does not end within 20 s fails the test
//! (it would otherwise block forever).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use crate::support::*;
use crate::test_server::HttpServer;

const DECOY: &[u8] = b"decoy: these bytes must survive every run\n";

/// Writes the decoy file at `rel` and puts a link to it at `link`.
fn link_to_decoy(sb: &Sandbox, link: &str, rel: &str) {
    std::fs::write(sb.join(rel), DECOY).expect("write the decoy");
    symlink(sb.join(rel), sb.join(link)).expect("symlink");
}

#[track_caller]
fn assert_decoy_untouched(sb: &Sandbox, rel: &str) {
    assert_eq!(
        sb.read_bytes(rel),
        DECOY,
        "the decoy {rel} was written through a link"
    );
}

fn is_link(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
}

fn mkfifo(p: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("run mkfifo");
    assert!(made.success(), "mkfifo {}", p.display());
}

/// Runs `cmd` to its end, or kills it and fails the test if it is still
/// running after 20 s: a run blocked on a FIFO would never end on its own.
#[track_caller]
fn within_time(cmd: Cmd) -> Output {
    let running = cmd.spawn();
    let pid = running.pid();
    let (tx, rx) = std::sync::mpsc::channel();
    // `finish` reads both pipes as it waits, so a long output cannot block
    // the child. The child is not reaped before `finish` returns, so `pid`
    // still names it if it has to be killed.
    std::thread::spawn(move || {
        let _ = tx.send(running.finish());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(out) => out,
        Err(_) => {
            // SAFETY: kill(2) with a pid and a signal number; no memory is involved.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let out = rx.recv().expect("the killed run's output");
            panic!("checkflow was still running after 20 s (blocked?)\n{out:?}");
        }
    }
}

/// The one task of the packages here, `A`.
const TASK_A: &str = "  - { name: A, type: process, command: \"echo A >> ledger.txt\" }\n";

fn package(extra: &str) -> String {
    package_yaml("links", &(checkpoint_at("run.ckpt") + extra), TASK_A)
}

#[test]
fn a_link_at_the_lock_file_is_refused_left_in_place_and_its_target_untouched() {
    let sb = Sandbox::with_package(&package(""));
    link_to_decoy(&sb, "run.ckpt.lock", "decoy.txt");
    within_time(sb.run())
        .exit(1)
        .says("run.ckpt.lock is a symbolic link")
        .says("failed to open the lock file of checkpoint");
    assert_decoy_untouched(&sb, "decoy.txt");
    assert!(
        is_link(&sb.join("run.ckpt.lock")),
        "a link checkflow did not make is not removed"
    );
    assert!(sb.ledger().is_empty(), "nothing runs without the lock");
    assert!(!sb.exists("run.ckpt"));
}

#[test]
fn a_link_at_the_checkpoint_is_refused_and_its_target_untouched() {
    // To a file (which is no checkpoint), and to nothing at all: both are
    // refused, not read through nor created behind.
    for (decoy_exists, rel) in [(true, "decoy.ckpt"), (false, "nothing.ckpt")] {
        let sb = Sandbox::with_package(&package(""));
        if decoy_exists {
            link_to_decoy(&sb, "run.ckpt", rel);
        } else {
            symlink(sb.join(rel), sb.join("run.ckpt")).expect("symlink");
        }
        within_time(sb.run())
            .exit(1)
            .says("run.ckpt is a symbolic link")
            .says("failed to read checkpoint");
        if decoy_exists {
            assert_decoy_untouched(&sb, rel);
        } else {
            assert!(!sb.exists(rel), "nothing is created behind a dangling link");
        }
        assert!(is_link(&sb.join("run.ckpt")));
        assert!(sb.ledger().is_empty(), "nothing ran");
        // `checkpoint show` refuses it the same way.
        sb.cmd(["checkpoint", "show", "run.ckpt"])
            .output()
            .exit(1)
            .says("run.ckpt is a symbolic link");
    }
}

#[test]
fn a_run_that_starts_over_refuses_a_link_to_a_file_that_is_not_a_checkpoint() {
    // --restart deny reads no checkpoint, and starting over replaces only a
    // checkpoint: a link to anything else is refused before anything runs,
    // and both the link and what it points to are left as they were.
    let sb = Sandbox::with_package(&package("").replace(
        "A >> ledger.txt\" }",
        "A >> ledger.txt; exit 1\", fail_package_on_failure: true }",
    ));
    link_to_decoy(&sb, "run.ckpt", "decoy.ckpt");
    within_time(sb.run().args(["--restart", "deny"]))
        .exit(1)
        .says("is not a checkflow checkpoint");
    assert_decoy_untouched(&sb, "decoy.ckpt");
    assert!(is_link(&sb.join("run.ckpt")), "the link is left alone");
    assert!(sb.ledger().is_empty(), "nothing ran");
}

#[test]
fn a_link_at_the_report_file_is_refused_and_its_target_untouched() {
    let sb = Sandbox::with_package(&package(""));
    link_to_decoy(&sb, "report.json", "decoy.json");
    within_time(sb.run().args(["--report", "report.json"]))
        .exit(0)
        .says("failed to write report report.json: report.json is a symbolic link");
    assert_decoy_untouched(&sb, "decoy.json");
}

#[test]
fn a_fifo_as_the_report_file_is_refused_at_once() {
    let sb = Sandbox::with_package(&package(""));
    mkfifo(&sb.join("report.json"));
    within_time(sb.run().args(["--report", "report.json"]))
        .exit(0)
        .says("report.json is a FIFO, not a regular file");
}

#[test]
fn a_file_task_never_copies_or_moves_through_a_link_at_its_target() {
    // overwrite: false: a link at the target, even one to nothing, is
    // something there.
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: links\ntasks:\n  - {{ name: Copy, type: file, op: copy, from: in.txt, to: out.txt }}\n"
    ));
    sb.write("in.txt", "new bytes\n");
    link_to_decoy(&sb, "out.txt", "decoy.txt");
    within_time(sb.run()).exit(1).says("out.txt already exists");
    assert_decoy_untouched(&sb, "decoy.txt");

    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: links\ntasks:\n  - {{ name: Copy, type: file, op: copy, from: in.txt, to: out.txt }}\n  - {{ name: Move, type: file, op: move, from: in2.txt, to: out2.txt }}\n"
    ));
    sb.write("in.txt", "new bytes\n");
    sb.write("in2.txt", "more bytes\n");
    symlink(sb.join("created.txt"), sb.join("out.txt")).expect("symlink");
    symlink(sb.join("created2.txt"), sb.join("out2.txt")).expect("symlink");
    within_time(sb.run().args(["--max-concurrent", "1"]))
        .exit(1)
        .says("out.txt already exists");
    assert!(
        !sb.exists("created.txt"),
        "copy created a file behind a dangling link"
    );
    assert!(
        !sb.exists("created2.txt"),
        "move created a file behind a dangling link"
    );
    assert!(
        is_link(&sb.join("out2.txt")),
        "move replaced a link without overwrite"
    );

    // overwrite: true: the link itself is replaced by a new file.
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: links\ntasks:\n  - {{ name: Copy, type: file, op: copy, from: in.txt, to: out.txt, overwrite: true }}\n  - {{ name: Move, type: file, op: move, from: in2.txt, to: out2.txt, overwrite: true, after: [Copy] }}\n"
    ));
    sb.write("in.txt", "new bytes\n");
    sb.write("in2.txt", "more bytes\n");
    link_to_decoy(&sb, "out.txt", "decoy.txt");
    link_to_decoy(&sb, "out2.txt", "decoy2.txt");
    within_time(sb.run()).exit(0);
    assert_decoy_untouched(&sb, "decoy.txt");
    assert_decoy_untouched(&sb, "decoy2.txt");
    assert!(!is_link(&sb.join("out.txt")) && !is_link(&sb.join("out2.txt")));
    assert_eq!(sb.read("out.txt"), "new bytes\n");
    assert_eq!(sb.read("out2.txt"), "more bytes\n");
}

#[test]
fn a_file_task_refuses_a_fifo_as_its_source_at_once() {
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: links\ntasks:\n  - {{ name: Copy, type: file, op: copy, from: in.pipe, to: out.txt }}\n"
    ));
    mkfifo(&sb.join("in.pipe"));
    within_time(sb.run())
        .exit(1)
        .says("in.pipe is a FIFO, not a regular file");
    assert!(!sb.exists("out.txt"));
}

fn download_package(url: &str, overwrite: bool) -> String {
    format!(
        "id: {ID}\nname: links\ntasks:\n  - {{ name: Get, type: download, url: \"{url}\", to: got.bin, overwrite: {overwrite} }}\n"
    )
}

#[test]
fn a_download_never_writes_through_a_link_at_its_part_or_sidecar_files() {
    let server = HttpServer::start();
    server.add("/f.bin", b"downloaded bytes".to_vec());
    let url = server.url("/f.bin");
    for name in ["got.bin.part", "got.bin.part.meta.tmp"] {
        let sb = Sandbox::with_package(&download_package(&url, true));
        link_to_decoy(&sb, name, "decoy.bin");
        within_time(sb.run())
            .exit(1)
            .says(&format!("{name} is a symbolic link"));
        assert_decoy_untouched(&sb, "decoy.bin");
        assert!(is_link(&sb.join(name)), "the link {name} is left alone");
        assert!(!sb.exists("got.bin"));
    }
}

#[test]
fn a_download_replaces_a_link_at_its_target_by_the_rename_or_refuses_it() {
    let server = HttpServer::start();
    server.add("/f.bin", b"downloaded bytes".to_vec());
    let url = server.url("/f.bin");

    let sb = Sandbox::with_package(&download_package(&url, true));
    link_to_decoy(&sb, "got.bin", "decoy.bin");
    within_time(sb.run()).exit(0);
    assert_decoy_untouched(&sb, "decoy.bin");
    assert!(
        !is_link(&sb.join("got.bin")),
        "the rename replaced the link"
    );
    assert_eq!(sb.read_bytes("got.bin"), b"downloaded bytes");

    // Without overwrite, a link to nothing is something there too.
    let sb = Sandbox::with_package(&download_package(&url, false));
    symlink(sb.join("behind.bin"), sb.join("got.bin")).expect("symlink");
    within_time(sb.run()).exit(1).says("got.bin already exists");
    assert!(!sb.exists("behind.bin"));
    assert!(is_link(&sb.join("got.bin")));
}

#[test]
fn a_fifo_as_the_package_fails_at_once_with_exit_4() {
    let sb = Sandbox::new();
    mkfifo(&sb.join("package.yaml"));
    within_time(sb.run())
        .exit(4)
        .says("package.yaml is a FIFO, not a regular file");
    // Through a link too: a link to a package is fine, a link to a FIFO is not.
    symlink(sb.join("package.yaml"), sb.join("link.yaml")).expect("symlink");
    within_time(sb.cmd(["validate", "link.yaml"]))
        .exit(4)
        .says("link.yaml is a FIFO, not a regular file");
}

#[test]
fn a_fifo_as_the_checkpoint_fails_at_once() {
    let sb = Sandbox::with_package(&package(""));
    mkfifo(&sb.join("run.ckpt"));
    within_time(sb.run())
        .exit(1)
        .says("failed to read checkpoint")
        .says("run.ckpt is a FIFO, not a regular file");
    assert!(sb.ledger().is_empty(), "nothing ran");
    within_time(sb.cmd(["checkpoint", "show", "run.ckpt"]))
        .exit(1)
        .says("run.ckpt is a FIFO, not a regular file");
}

#[test]
fn a_fifo_as_the_config_file_fails_at_once() {
    let sb = Sandbox::with_package(&package_yaml(
        "links",
        "variables:\n  N: { type: int32, value: 0 }\n",
        TASK_A,
    ));
    mkfifo(&sb.join("config.yaml"));
    within_time(sb.run().args(["--config", "config.yaml"]))
        .exit(6)
        .says("config.yaml is a FIFO, not a regular file");
    assert!(sb.ledger().is_empty(), "nothing ran");
}

/// A package over the cache's 64 KiB minimum.
fn big_package() -> String {
    cacheable_package("", 1500, "1 == 1", "")
}

#[test]
fn a_link_or_a_fifo_at_a_package_cache_entry_is_not_followed_and_is_replaced() {
    let sb = Sandbox::with_package(&big_package());
    let cache = sb.join("cache");
    let cache_env = cache.to_str().expect("utf-8").to_owned();
    within_time(sb.run().env("CHECKFLOW_CACHE_DIR", &cache_env)).exit(0);
    let entry = std::fs::read_dir(&cache)
        .expect("the cache folder")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("one cache entry");

    // A link to a copy of the good entry: reading through it would use it
    // and mark it used (its modification time).
    std::fs::rename(&entry, sb.join("decoy.json")).expect("move the entry away");
    let good = sb.read_bytes("decoy.json");
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .append(true)
        .open(sb.join("decoy.json"))
        .and_then(|f| f.set_modified(old))
        .expect("age the decoy");
    symlink(sb.join("decoy.json"), &entry).expect("symlink");
    within_time(sb.run().env("CHECKFLOW_CACHE_DIR", &cache_env)).exit(0);
    assert_eq!(sb.read_bytes("decoy.json"), good);
    let when = std::fs::metadata(sb.join("decoy.json"))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(when, old, "the decoy was touched through the link");
    assert!(
        !is_link(&entry),
        "the entry was written anew in the link's place"
    );

    // A FIFO there would block the read forever.
    std::fs::remove_file(&entry).expect("remove the entry");
    mkfifo(&entry);
    within_time(sb.run().env("CHECKFLOW_CACHE_DIR", &cache_env)).exit(0);
    assert!(std::fs::metadata(&entry).expect("stat").is_file());
}

#[test]
fn a_fifo_as_a_tasks_input_file_fails_the_task_at_once() {
    let sb = Sandbox::with_package(&package_yaml(
        "inputs",
        r#"max_errors: 2
flow: parallel
connections:
  dw: { kind: sqlite, path: dw.db }
"#,
        r#"  - { name: Create, type: sql, connection: dw, sql: "CREATE TABLE t (id INTEGER, name TEXT)" }
  - { name: Load, type: bulk_insert, connection: dw, table: t, file: rows.csv, after: [Create] }
  - { name: Compute, type: script, file: code.rhai }
"#,
    ));
    mkfifo(&sb.join("rows.csv"));
    mkfifo(&sb.join("code.rhai"));
    let out = within_time(sb.run_json()).exit(1);
    let summary = out.summary();
    assert_eq!(status_of(&summary, "Load"), "failed");
    assert_eq!(status_of(&summary, "Compute"), "failed");
    out.says("rows.csv is a FIFO, not a regular file")
        .says("code.rhai is a FIFO, not a regular file");
}
