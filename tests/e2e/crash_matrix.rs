//! The crash matrix: every crash point of every commit protocol
//! (docs/design/commit-protocols.md), each hit by kill -9 and by SIGTERM,
//! then the package restarted until it succeeds. After each case every row
//! a protocol protects is in its table exactly once, and every variable has
//! the value one clean run gives it.

use crate::support::*;

/// Transacted work (two containers, one in a parallel branch, each changing a
/// variable), a loop that records its iterations and counts them, and a
/// report of the final values.
fn package() -> String {
    protocols_package(&Protocols {
        name: "matrix",
        create: "CREATE TABLE IF NOT EXISTS a (x INTEGER); CREATE TABLE IF NOT EXISTS b (x INTEGER); CREATE TABLE IF NOT EXISTS c (x INTEGER);",
        after_t1: "",
        each_after: "T1",
        items: "x, y, z",
        work: r#"{ name: Touch, type: process, command: "true", after: [Inc] }"#,
        branches: "      - { name: Side, type: process, command: \"true\" }\n",
    })
}

/// Runs one case: the first run with `failpoint`, then restarts until the
/// package succeeds. `None` if the point was never reached (the first run
/// succeeded).
fn case(failpoint: &str) -> Option<()> {
    let sb = Sandbox::with_package(&package());
    let first = sb.run().failpoint(failpoint).output();
    if first.code == Some(0) {
        return None;
    }
    assert!(
        matches!(first.code, None | Some(1) | Some(3)),
        "{failpoint}: killed, failed or cancelled\n{}",
        first.all()
    );
    let mut runs = 0;
    loop {
        runs += 1;
        assert!(runs <= 3, "{failpoint}: the restarts do not finish");
        let doc = sb
            .cmd(["checkpoint", "show", "run.ckpt", "--json"])
            .output();
        assert!(
            doc.code == Some(0) || !sb.exists("run.ckpt"),
            "{failpoint}: the checkpoint reads\n{}",
            doc.all()
        );
        let out = sb.run().output();
        if out.code == Some(0) {
            break;
        }
        assert_eq!(out.code, Some(1), "{failpoint}: {}", out.all());
    }
    assert_eq!(
        dw_numbers(
            &sb,
            &["COUNT(*) FROM a", "COUNT(*) FROM b", "COUNT(*) FROM c"]
        ),
        vec![Some(1), Some(1), Some(1)],
        "{failpoint}: every committed row exactly once"
    );
    assert_eq!(
        sb.read("final.txt").trim(),
        "final mid=1 mid2=1 total=3",
        "{failpoint}: no variable lost or counted twice"
    );
    assert!(!sb.exists("run.ckpt"), "{failpoint}: deleted on success");
    Some(())
}

/// Runs the cases `point(1)`, `point(2)`, ... (the Nth time a crash point
/// is hit) until one is never reached; returns that first unreached N.
fn cases_until_unreached(point: impl Fn(u32) -> String) -> u32 {
    let mut n = 1;
    while case(&point(n)).is_some() {
        n += 1;
    }
    n
}

#[test]
fn every_commit_crash_point_under_kill_and_term_leaves_each_row_and_variable_exactly_once() {
    let mut hit = 0;
    for action in ["kill", "term"] {
        // The transaction protocol's steps, for each of the two containers.
        for point in [
            "tx-after-intent",
            "tx-after-connection-commit",
            "tx-after-commit",
        ] {
            for n in 1..=2 {
                let fp = format!("{point}@{n}={action}");
                assert!(case(&fp).is_some(), "{fp} was never reached");
                hit += 1;
            }
        }
        // Between the checkpoint's creation and its first run record.
        let fp = format!("checkpoint-after-create={action}");
        assert!(case(&fp).is_some(), "{fp} was never reached");
        hit += 1;
        // Every task start: a crash while each task runs.
        let n = cases_until_unreached(|n| format!("task-start@{n}={action}"));
        hit += n - 1;
        assert!(n > 10, "{action}: only {n} task starts");
    }
    // A failed checkpoint write at each write of the run.
    assert!(case("checkpoint-after-create=error").is_some());
    hit += 1;
    let n = cases_until_unreached(|n| format!("checkpoint-write@{n}=error"));
    hit += n - 1;
    assert!(n > 5, "only {n} checkpoint writes");
    eprintln!("crash matrix: {hit} cases");
}

/// A download's rename into place: the part file is synced, renamed over the
/// target, the folder synced, the sidecar removed, then the task's record
/// follows. A crash at either side of the rename, by kill -9, SIGTERM or a
/// failed rename, leaves either the part file (resumed) or the complete file
/// (fetched again whole, or kept where its hash matches and `overwrite` is
/// off), never a torn or missing one.
#[test]
fn a_downloads_rename_under_kill_term_and_error_leaves_the_complete_file_once() {
    use crate::test_server::{HttpServer, bytes};
    let server = HttpServer::start();
    let body = bytes(300_000, 7);
    server.add("/big.bin", body.clone());
    let sha = {
        use std::process::Command;
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("b");
        std::fs::write(&f, &body).expect("write");
        let out = Command::new("sha256sum")
            .arg(&f)
            .output()
            .expect("sha256sum");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .expect("a hash")
            .to_string()
    };
    for overwrite in [true, false] {
        for fp in [
            "download-before-rename=kill",
            "download-before-rename=term",
            "download-before-rename=error",
            "download-after-rename=kill",
            "download-after-rename=term",
        ] {
            let ctx = format!("{fp}, overwrite {overwrite}");
            let sb = Sandbox::with_package(&package_yaml(
                "dl",
                &checkpoint_at("run.ckpt"),
                &format!(
                    r#"  - {{ name: Get, type: download, url: "{url}", to: data/big.bin, sha256: {sha}, overwrite: {overwrite}, fail_package_on_failure: true }}
  - {{ name: Use, type: process, command: "cmp -s data/big.bin data/want.bin && echo Use >> ledger.txt", after: [Get] }}
"#,
                    url = server.url("/big.bin")
                ),
            ));
            std::fs::create_dir_all(sb.join("data")).expect("mkdir");
            std::fs::write(sb.join("data/want.bin"), &body).expect("write");
            let first = sb.run().failpoint(fp).output();
            assert_ne!(
                first.code,
                Some(0),
                "{ctx}: the point was reached\n{first:?}"
            );
            let mut n = 0;
            while sb.run().output().code != Some(0) {
                n += 1;
                assert!(n < 3, "{ctx}: the restart does not finish");
            }
            assert_eq!(
                sb.read_bytes("data/big.bin"),
                body,
                "{ctx}: the complete file"
            );
            assert!(!sb.exists("data/big.bin.part"), "{ctx}: no part file left");
            assert!(
                !sb.exists("data/big.bin.part.meta"),
                "{ctx}: no sidecar left"
            );
            assert_eq!(sb.take_ledger(), names(&["Use"]), "{ctx}");
        }
    }
}
