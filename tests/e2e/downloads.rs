//! Scenario 5 (docs/semantics.md §8): several large downloads, one task each; one fails; the
//! rerun downloads only that file, resuming it from its partial bytes.
//!
//! The files come from an HTTP server running in a thread of this test
//! process (it records every request it answers) and, when pyftpdlib is
//! available, one from a real FTP server.

use crate::support::*;
use crate::test_server::{FtpOptions, FtpServer, HttpServer, bytes};

const MB: usize = 1024 * 1024;
const CUT: u64 = 8 * MB as u64;

#[test]
fn rerun_downloads_only_the_failed_file_and_resumes_it_from_its_partial_bytes() {
    let server = HttpServer::start();
    let files: Vec<(&str, Vec<u8>)> = ["a", "b", "c"]
        .iter()
        .zip(1u64..)
        .map(|(name, seed)| (*name, bytes(20 * MB, seed)))
        .collect();
    for (name, body) in &files {
        server.add(&format!("/{name}.bin"), body.clone());
    }
    // Every request for b.bin ends at 8 MB in this run: the task's own retries
    // cannot finish it, so the task fails.
    server.cut_at("/b.bin", Some(CUT));

    let ftp_root = tempfile::tempdir().expect("temp dir");
    let ftp_body = bytes(5 * MB, 9);
    std::fs::write(ftp_root.path().join("d.bin"), &ftp_body).expect("write d.bin");
    let ftp = match FtpServer::start(ftp_root.path(), FtpOptions::default()) {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("SKIPPED (FTP part only): {why}");
            None
        }
    };
    let ftp_task = match &ftp {
        Some(s) => format!(
            "  - {{ name: GetD, type: download, url: \"{}\", to: data/d.bin, connection: ftp }}\n",
            s.url("d.bin")
        ),
        None => String::new(),
    };
    let ftp_port = ftp.as_ref().map_or(21, |s| s.port);
    let yaml = package_yaml(
        "downloads",
        &(checkpoint_at("dl.ckpt")
            + &format!(
                r#"flow: parallel
connections:
  ftp: {{ kind: ftp, host: 127.0.0.1, port: {ftp_port}, user: etl, password_env: CHECKFLOW_E2E_FTP_PASSWORD }}
"#
            )),
        &format!(
            r#"  - {{ name: GetA, type: download, url: "{a}", to: data/a.bin }}
  - {{ name: GetB, type: download, url: "{b}", to: data/b.bin, fail_package_on_failure: true }}
  - {{ name: GetC, type: download, url: "{c}", to: data/c.bin }}
{ftp_task}"#,
            a = server.url("/a.bin"),
            b = server.url("/b.bin"),
            c = server.url("/c.bin")
        ),
    );
    let sb = Sandbox::with_package(&yaml);

    let out = sb
        .run()
        .env("CHECKFLOW_E2E_FTP_PASSWORD", "secret")
        .output()
        .exit(1)
        .says("GetB");
    assert!(
        !out.all().contains("secret"),
        "a password was shown\n{out:?}"
    );
    for (name, body) in [&files[0], &files[2]] {
        assert!(
            sb.read_bytes(&format!("data/{name}.bin")) == *body,
            "{name}.bin differs"
        );
    }
    assert!(!sb.exists("data/b.bin"));
    assert_eq!(
        std::fs::metadata(sb.join("data/b.bin.part"))
            .expect("b.bin.part is kept")
            .len(),
        CUT,
        "the partial bytes of b.bin are kept for the rerun"
    );
    if ftp.is_some() {
        assert!(sb.read_bytes("data/d.bin") == ftp_body, "d.bin differs");
    }
    let mut done: Vec<String> = sb
        .completed("dl.ckpt")
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    done.sort();
    let mut expect = names(&["GetA", "GetC"]);
    if ftp.is_some() {
        expect.push("GetD".into());
    }
    assert_eq!(done, expect);
    let a_time = sb.modified("data/a.bin");
    let d_time = ftp.as_ref().map(|_| sb.modified("data/d.bin"));

    // The server is fixed; the rerun asks only for the rest of b.bin.
    server.cut_at("/b.bin", None);
    server.clear_hits();
    sb.run()
        .env("CHECKFLOW_E2E_FTP_PASSWORD", "secret")
        .output()
        .exit(0);
    let hits = server.hits();
    assert_eq!(hits.len(), 1, "only b.bin is fetched again: {hits:?}");
    let hit = &hits[0];
    assert_eq!(hit.path, "/b.bin");
    assert_eq!(hit.range_start, Some(CUT), "resumed at the partial length");
    assert_eq!(hit.if_range.as_deref(), Some("\"v1\""));
    assert_eq!(hit.status, 206);
    assert_eq!(
        hit.sent,
        20 * MB as u64 - CUT,
        "only the missing bytes are served"
    );
    for (name, body) in &files {
        assert!(
            sb.read_bytes(&format!("data/{name}.bin")) == *body,
            "{name}.bin differs after the rerun"
        );
    }
    assert!(!sb.exists("data/b.bin.part"));
    assert!(!sb.exists("data/b.bin.part.meta"));
    assert_eq!(sb.modified("data/a.bin"), a_time, "a.bin was not rewritten");
    if let Some(t) = d_time {
        assert_eq!(sb.modified("data/d.bin"), t, "d.bin was not rewritten");
        assert!(sb.read_bytes("data/d.bin") == ftp_body);
    }
    assert!(!sb.exists("dl.ckpt"), "success deletes the checkpoint");
}

#[test]
fn download_fields_are_validated_before_anything_runs() {
    let yaml = package_yaml(
        "bad_downloads",
        "",
        r#"  - { name: NoTo, type: download, url: "http://127.0.0.1:1/x" }
  - { name: BadScheme, type: download, url: "gopher://u:hunter22@h/x", to: x }
  - { name: BadHash, type: download, url: "http://127.0.0.1:1/x", to: y, sha256: abc }
  - { name: Stray, type: download, url: "http://127.0.0.1:1/x", to: z, command: "echo" }
"#,
    );
    let sb = Sandbox::with_package(&yaml);
    let out = sb.run().output();
    assert_ne!(out.code, Some(0), "{out:?}");
    let out = out
        .says("a download task needs `to`")
        .says("unsupported URL scheme \"gopher\"")
        .says("`sha256` must be 64 hexadecimal digits")
        .says("field `command` does not apply to a download");
    assert!(!out.all().contains("hunter22"), "{out:?}");
}

/// `url_env` is where a base URL with credentials comes from. A value without
/// its scheme is described, not printed (a password in it would show).
#[test]
fn a_url_env_value_without_a_scheme_does_not_show_its_password() {
    let sb = Sandbox::with_package(&package_yaml(
        "dl",
        r#"connections:
  web: { kind: http, url_env: CHECKFLOW_E2E_BASE }
"#,
        r#"  - { name: Get, type: download, connection: web, url: data/x.csv, to: out/x.csv }
"#,
    ));
    let out = sb
        .run()
        .env("CHECKFLOW_E2E_BASE", "etl:hunter2-secret@127.0.0.1:9")
        .output()
        .exit(1);
    assert!(!out.all().contains("hunter2-secret"), "{out:?}");
    assert!(
        out.all().contains("CHECKFLOW_E2E_BASE"),
        "names the variable: {out:?}"
    );
}
