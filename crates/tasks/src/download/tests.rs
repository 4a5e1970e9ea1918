//! The download task against real servers on 127.0.0.1: the HTTP test server
//! in `test_server.rs` (byte ranges, ETags, faults) and pyftpdlib.

use super::*;
use crate::testcx::TestCx;
use checkflow_plan::VarTable;
use checkflow_testkit::servers::{FtpOptions, FtpServer, HttpServer, bytes};

fn action(url: &str) -> DownloadAction {
    DownloadAction {
        url: url.to_string(),
        to: "out/file.bin".into(),
        connection: None,
        resume: true,
        sha256: None,
        overwrite: true,
    }
}

fn sha_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

struct Fixture {
    dir: tempfile::TempDir,
    server: HttpServer,
    body: Vec<u8>,
}

const LEN: usize = 3 * 1024 * 1024 + 123;

impl Fixture {
    fn new() -> Fixture {
        let server = HttpServer::start();
        let body = bytes(LEN, 7);
        server.add("/f.bin", body.clone());
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            server,
            body,
        }
    }
    fn cx(&self) -> TestCx {
        TestCx::new(self.dir.path(), &VarTable::default())
    }
    fn out(&self) -> PathBuf {
        self.dir.path().join("out/file.bin")
    }
    fn part(&self) -> PathBuf {
        self.dir.path().join("out/file.bin.part")
    }
    fn run(&self, a: &DownloadAction) -> (Result<(), TaskError>, TestCx) {
        let mut cx = self.cx();
        let r = a.run(&mut cx);
        (r, cx)
    }
}

#[test]
fn downloads_a_file_and_asks_for_identity_encoding() {
    let f = Fixture::new();
    let (r, cx) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
    assert!(!f.part().exists());
    assert!(!f.dir.path().join("out/file.bin.part.meta").exists());
    let hits = f.server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].accept_encoding.as_deref(), Some("identity"));
    assert_eq!(hits[0].range_start, None);
    let p = cx.progress.lock().unwrap().clone();
    assert_eq!(p.last(), Some(&(LEN as u64, Some(LEN as u64))));
}

#[test]
fn a_cut_connection_is_retried_and_resumed_with_range_and_if_range() {
    let f = Fixture::new();
    f.server.cut_at("/f.bin", Some(1_000_000));
    // The second request (the retry) is served in full.
    let server_url = f.server.url("/f.bin");
    let a = action(&server_url);
    let handle = std::thread::scope(|s| {
        let h = s.spawn(|| f.run(&a));
        // Lift the fault once the first request was cut.
        while f.server.hits().is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
        f.server.cut_at("/f.bin", None);
        h.join().unwrap()
    });
    let (r, cx) = handle;
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
    let hits = f.server.hits();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!((hits[0].status, hits[0].sent), (200, 1_000_000));
    assert_eq!(hits[1].range_start, Some(1_000_000));
    assert_eq!(hits[1].if_range.as_deref(), Some("\"v1\""));
    assert_eq!(hits[1].status, 206);
    assert_eq!(hits[1].sent, LEN as u64 - 1_000_000);
    assert!(cx.log_text().contains("retrying"), "{}", cx.log_text());
}

#[test]
fn gives_up_after_a_few_attempts_and_keeps_the_partial_bytes() {
    let f = Fixture::new();
    f.server.cut_at("/f.bin", Some(500_000));
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    let e = r.unwrap_err().message;
    assert!(e.contains("gave up after 4 attempts"), "{e}");
    assert_eq!(std::fs::metadata(f.part()).unwrap().len(), 500_000);
    let hits = f.server.hits();
    assert_eq!(hits.len(), 4);
    assert!(hits[1..].iter().all(|h| h.range_start == Some(500_000)));

    // The next run resumes from the kept bytes.
    f.server.cut_at("/f.bin", None);
    f.server.clear_hits();
    let (r, cx) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
    let hits = f.server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].range_start, hits[0].status), (Some(500_000), 206));
    assert_eq!(hits[0].sent, LEN as u64 - 500_000);
    assert!(
        cx.log_text().contains("found 500000 partial bytes"),
        "{}",
        cx.log_text()
    );
}

/// Leaves 400,000 bytes in the part file: every attempt of one run is cut there.
fn leave_partial(f: &Fixture) {
    f.server.cut_at("/f.bin", Some(400_000));
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    assert!(r.is_err());
    f.server.cut_at("/f.bin", None);
    f.server.clear_hits();
}

#[test]
fn a_server_that_ignores_range_gets_the_whole_file_again() {
    let f = Fixture::new();
    leave_partial(&f);
    f.server.ignore_range("/f.bin", true);
    let (r, cx) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
    let hits = f.server.hits();
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].range_start, hits[0].status), (Some(400_000), 200));
    assert!(cx.log_text().contains("starting over"), "{}", cx.log_text());
}

#[test]
fn a_changed_file_is_not_spliced_onto_old_bytes() {
    let f = Fixture::new();
    leave_partial(&f);
    let new_body = bytes(LEN - 1000, 99);
    f.server.replace("/f.bin", new_body.clone(), Some("\"v2\""));
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), new_body);
    let hits = f.server.hits();
    assert_eq!(hits[0].if_range.as_deref(), Some("\"v1\""));
    assert_eq!(
        hits[0].status, 200,
        "If-Range failed, so the whole new file"
    );
}

#[test]
fn an_etag_that_changes_on_every_request_means_starting_over() {
    let f = Fixture::new();
    f.server.new_etag_each_request("/f.bin", true);
    f.server.cut_at("/f.bin", Some(300_000));
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    assert!(r.is_err());
    // Each retry sent If-Range with the last ETag seen, which no longer matched.
    let hits = f.server.hits();
    assert!(hits[1..].iter().all(|h| h.status == 200), "{hits:?}");
    f.server.cut_at("/f.bin", None);
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn last_modified_is_the_validator_when_there_is_no_strong_etag() {
    let f = Fixture::new();
    f.server.set_etag("/f.bin", Some("W/\"weak\""));
    f.server
        .set_last_modified("/f.bin", Some("Tue, 03 Nov 2026 10:00:00 GMT"));
    leave_partial(&f);
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    let hits = f.server.hits();
    assert_eq!(
        hits[0].if_range.as_deref(),
        Some("Tue, 03 Nov 2026 10:00:00 GMT")
    );
    assert_eq!(hits[0].status, 206);
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn without_a_validator_the_partial_bytes_are_not_trusted() {
    let f = Fixture::new();
    f.server.set_etag("/f.bin", None);
    leave_partial(&f);
    let (r, cx) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(f.server.hits()[0].range_start, None);
    assert!(cx.log_text().contains("starting over"), "{}", cx.log_text());
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn a_complete_part_file_is_finished_after_a_416() {
    let f = Fixture::new();
    // All the bytes arrived, but the run stopped before the rename.
    std::fs::create_dir_all(f.dir.path().join("out")).unwrap();
    std::fs::write(f.part(), &f.body).unwrap();
    std::fs::write(
        f.dir.path().join("out/file.bin.part.meta"),
        format!(
            "checkflow-download 1\nurl: {}\nvalidator: etag \"v1\"\ntotal: {LEN}\n",
            f.server.url("/f.bin")
        ),
    )
    .unwrap();
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(f.server.hits()[0].status, 416);
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn resume_false_always_starts_over() {
    let f = Fixture::new();
    leave_partial(&f);
    let mut a = action(&f.server.url("/f.bin"));
    a.resume = false;
    let (r, _) = f.run(&a);
    r.unwrap();
    assert_eq!(f.server.hits()[0].range_start, None);
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn server_errors_are_retried_and_client_errors_are_not() {
    let f = Fixture::new();
    f.server.fail_next("/f.bin", &[503, 500]);
    let (r, _) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    assert_eq!(f.server.hits().len(), 3);

    let (r, _) = f.run(&action(&f.server.url("/missing.bin")));
    let e = r.unwrap_err().message;
    assert!(e.contains("404"), "{e}");
    assert!(e.contains("/missing.bin"), "{e}");
}

#[test]
fn sha256_mismatch_names_both_hashes_and_removes_the_part_file() {
    let f = Fixture::new();
    let mut a = action(&f.server.url("/f.bin"));
    let wrong = "0".repeat(64);
    a.sha256 = Some(wrong.clone());
    let (r, _) = f.run(&a);
    let e = r.unwrap_err().message;
    assert!(e.contains(&wrong), "{e}");
    assert!(e.contains(&sha_hex(&f.body)), "{e}");
    assert!(!f.part().exists());
    assert!(!f.out().exists());

    a.sha256 = Some(sha_hex(&f.body).to_uppercase().to_lowercase());
    let (r, _) = f.run(&a);
    r.unwrap();
}

#[test]
fn overwrite_false_refuses_an_existing_file_unless_its_hash_matches() {
    let f = Fixture::new();
    std::fs::create_dir_all(f.dir.path().join("out")).unwrap();
    std::fs::write(f.out(), b"old").unwrap();
    let mut a = action(&f.server.url("/f.bin"));
    a.overwrite = false;
    let e = f.run(&a).0.unwrap_err().message;
    assert!(e.contains("already exists (set overwrite: true"), "{e}");
    assert_eq!(std::fs::read(f.out()).unwrap(), b"old");

    std::fs::write(f.out(), &f.body).unwrap();
    a.sha256 = Some(sha_hex(&f.body));
    f.run(&a).0.unwrap();
    assert!(f.server.hits().is_empty(), "nothing was downloaded");

    // The default replaces it.
    std::fs::write(f.out(), b"old").unwrap();
    f.run(&action(&f.server.url("/f.bin"))).0.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn cancellation_stops_the_copy_promptly_and_keeps_the_bytes() {
    let f = Fixture::new();
    f.server
        .chunk_delay("/f.bin", Some(Duration::from_millis(20)));
    let a = action(&f.server.url("/f.bin"));
    let mut cx = f.cx();
    let token = cx.token.clone();
    let started = Instant::now();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            token.cancel();
        });
        a.run(&mut cx)
    });
    let e = r.unwrap_err().message;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(e.contains("cancelled"), "{e}");
    let kept = std::fs::metadata(f.part()).unwrap().len();
    assert!(kept > 0 && kept < LEN as u64, "{kept}");

    // The server records a request when it stops sending, which for the
    // cancelled one is a moment after the client went away: wait for it, so
    // that it is not cleared too early and then taken for the resumed one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.server.hits().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    f.server.chunk_delay("/f.bin", None);
    f.server.clear_hits();
    f.run(&a).0.unwrap();
    assert_eq!(f.server.hits()[0].range_start, Some(kept));
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn progress_is_reported_at_most_every_half_second() {
    let f = Fixture::new();
    f.server
        .chunk_delay("/f.bin", Some(Duration::from_millis(25)));
    let started = Instant::now();
    let (r, cx) = f.run(&action(&f.server.url("/f.bin")));
    r.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let n = cx.progress.lock().unwrap().len();
    // One at the start and one at the end, and one per half second between.
    assert!(n >= 3, "{n} reports in {secs} s");
    assert!(
        (n as f64) <= 2.0 + secs / 0.5 + 1.0,
        "{n} reports in {secs} s"
    );
}

#[test]
fn credentials_from_the_url_are_sent_and_never_shown() {
    let f = Fixture::new();
    // base64("etl:p4ss word")
    f.server
        .require_auth("/f.bin", "Basic ZXRsOnA0c3Mgd29yZA==");
    let with_creds = f
        .server
        .url("/f.bin")
        .replace("http://", "http://etl:p4ss%20word@");
    let (r, _) = f.run(&action(&with_creds));
    r.unwrap();

    let bad = f
        .server
        .url("/f.bin")
        .replace("http://", "http://etl:hunter22@");
    let (r, cx) = f.run(&action(&bad));
    let e = r.unwrap_err().message;
    assert!(e.contains("401"), "{e}");
    assert!(!e.contains("hunter22"), "{e}");
    assert!(!cx.log_text().contains("hunter22"), "{}", cx.log_text());
    let gone = "http://etl:hunter22@127.0.0.1:1/f.bin";
    let (r, cx) = f.run(&action(gone));
    let e = r.unwrap_err().message;
    assert!(
        !e.contains("hunter22") && !cx.log_text().contains("hunter22"),
        "{e}"
    );
}

#[test]
fn credentials_from_a_connection_with_the_password_in_the_environment() {
    let f = Fixture::new();
    f.server.require_auth("/f.bin", "Basic ZXRsOnNlY3JldA==");
    let yaml = format!(
        "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\nconnections:\n  web: {{ kind: http, url: \"{}\", user: etl, password_env: CHECKFLOW_TEST_DL_PW }}\ntasks: []\n",
        f.server.url("/")
    );
    let pkg = checkflow_model::parse(Path::new("p.yaml"), &yaml).unwrap();
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var("CHECKFLOW_TEST_DL_PW", "secret") };
    let mut a = action("f.bin");
    a.connection = Some(pkg.connections["web"].value.clone());
    let (r, _) = f.run(&a);
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

fn ftp_or_skip(root: &Path, opts: FtpOptions) -> Option<FtpServer> {
    match FtpServer::start(root, opts) {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("SKIPPED: FTP test needs pyftpdlib: {why}");
            None
        }
    }
}

fn ftp_action(url: &str) -> DownloadAction {
    action(&url.replace("ftp://", "ftp://etl:secret@"))
}

#[test]
fn ftp_download_and_resume_with_rest() {
    let root = tempfile::tempdir().unwrap();
    let body = bytes(2 * 1024 * 1024 + 17, 3);
    std::fs::write(root.path().join("data.bin"), &body).unwrap();
    // 512 KB/s, so the first run can be stopped half-way.
    let Some(server) = ftp_or_skip(
        root.path(),
        FtpOptions {
            rate: 512 * 1024,
            ..FtpOptions::default()
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = ftp_action(&server.url("data.bin"));
    let mut cx = TestCx::new(dir.path(), &VarTable::default());
    cx.cancel_at = Some(1);
    let e = a.run(&mut cx).unwrap_err().message;
    assert!(e.contains("cancelled"), "{e}");
    let part = dir.path().join("out/file.bin.part");
    let kept = std::fs::metadata(&part).unwrap().len();
    assert!(kept > 0 && kept < body.len() as u64, "{kept}");

    let mut cx = TestCx::new(dir.path(), &VarTable::default());
    a.run(&mut cx).unwrap();
    assert!(
        cx.log_text().contains(&format!(
            "resuming {} at byte {kept}",
            server.url("data.bin")
        )),
        "{}",
        cx.log_text()
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/file.bin")).unwrap(),
        body
    );
    assert!(!cx.log_text().contains("secret"));
}

#[test]
fn ftp_server_without_rest_sends_the_whole_file() {
    let root = tempfile::tempdir().unwrap();
    let body = bytes(2 * 1024 * 1024, 5);
    std::fs::write(root.path().join("data.bin"), &body).unwrap();
    let Some(server) = ftp_or_skip(
        root.path(),
        FtpOptions {
            no_rest: true,
            rate: 512 * 1024,
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = ftp_action(&server.url("data.bin"));
    let mut cx = TestCx::new(dir.path(), &VarTable::default());
    cx.cancel_at = Some(1);
    assert!(a.run(&mut cx).is_err());
    assert!(dir.path().join("out/file.bin.part").exists());

    let mut cx = TestCx::new(dir.path(), &VarTable::default());
    a.run(&mut cx).unwrap();
    assert!(
        cx.log_text().contains("refused to resume"),
        "{}",
        cx.log_text()
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/file.bin")).unwrap(),
        body
    );
}

#[test]
fn ftp_missing_file_and_bad_login_fail_without_retrying_forever() {
    let root = tempfile::tempdir().unwrap();
    let Some(server) = ftp_or_skip(root.path(), FtpOptions::default()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut cx = TestCx::new(dir.path(), &VarTable::default());
    let e = ftp_action(&server.url("nope.bin"))
        .run(&mut cx)
        .unwrap_err()
        .message;
    assert!(e.contains("550"), "{e}");
    let bad = server
        .url("nope.bin")
        .replace("ftp://", "ftp://etl:wrongpw@");
    let e = action(&bad).run(&mut cx).unwrap_err().message;
    assert!(e.contains("refused the login of user etl"), "{e}");
    assert!(!e.contains("wrongpw"), "{e}");
}

#[test]
fn a_connection_can_take_its_base_url_from_the_environment() {
    let f = Fixture::new();
    let yaml = "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\nconnections:\n  web: { kind: http, url_env: CHECKFLOW_TEST_DL_BASE }\ntasks: []\n";
    let pkg = checkflow_model::parse(Path::new("p.yaml"), yaml).unwrap();
    let mut a = action("f.bin");
    a.connection = Some(pkg.connections["web"].value.clone());
    // Unset: the error names the variable.
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::remove_var("CHECKFLOW_TEST_DL_BASE") };
    let (r, _) = f.run(&a);
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("CHECKFLOW_TEST_DL_BASE") && e.contains("not set"),
        "{e}"
    );
    // SAFETY: as above.
    unsafe { std::env::set_var("CHECKFLOW_TEST_DL_BASE", f.server.url("/")) };
    let (r, _) = f.run(&a);
    r.unwrap();
    assert_eq!(std::fs::read(f.out()).unwrap(), f.body);
}

#[test]
fn a_url_given_by_a_property_expression_needs_no_literal_url() {
    let yaml = r#"
id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11
name: p
variables:
  Base: { type: string, value: "http://127.0.0.1:9" }
tasks:
  - name: Get
    type: download
    to: out/x.csv
    expressions: { url: '@[User::Base] + "/x.csv"' }
  - { name: Bare, type: download, to: out/y.csv }
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(&path, yaml).unwrap();
    let pkg = checkflow_model::load(&path).unwrap();
    let e = checkflow_plan::validate(&pkg, &crate::registry())
        .err()
        .expect("Bare has no URL at all")
        .to_string();
    assert!(e.contains("Bare") && e.contains("url"), "{e}");
    assert!(
        !e.contains("\"Get\""),
        "Get's URL comes from its expression: {e}"
    );
}
