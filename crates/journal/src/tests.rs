//! Tests through the public API on real files: round trips, torn tails,
//! corruption, versions, sealing, modes, invalidation, and the reader fuzzed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::json;

use crate::frame;
use crate::reader::parse;
use crate::{
    Entry, FORMAT_VERSION, Journal, JournalError, Key, NewHeader, RecordedOutcome, Restored,
    StoredValue, lock, read,
};

const SECRET: &str = "hunter2-very-secret-value";

fn header() -> NewHeader {
    NewHeader {
        package_id: "{6A3C-11F0-PKG}".into(),
        package_name: "Nightly load".into(),
        package_path: "/etl/packages/nightly.yaml".into(),
        config: BTreeMap::from([
            ("User::Server".into(), StoredValue::plain(json!("db01"))),
            (
                "User::Password".into(),
                StoredValue::sensitive(json!(SECRET)),
            ),
        ]),
    }
}

fn completed(path: &str, outcome: RecordedOutcome, vars: BTreeMap<String, StoredValue>) -> Entry {
    Entry::Completed {
        path: path.into(),
        outcome,
        fingerprint: "ab12".into(),
        duration_ms: 1500,
        vars,
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state/nightly.ckpt");
    Fixture { _dir: dir, path }
}

/// Creates a file, appends `entries` one by one, and returns the file's
/// length after the header and after each append.
fn write(path: &Path, key: Option<&Key>, entries: Vec<Entry>) -> Vec<u64> {
    let l = lock(path).expect("lock");
    let mut j = Journal::create(path, header(), key, &l).expect("create");
    let mut ends = vec![frame_bytes(path).len() as u64];
    for e in entries {
        j.append(e).expect("append");
        ends.push(frame_bytes(path).len() as u64);
    }
    ends
}

/// A checkpoint's bytes without the zeros written ahead of its frames.
fn frame_bytes(path: &Path) -> Vec<u8> {
    let mut bytes = fs::read(path).expect("read");
    bytes.truncate(crate::reader::nonzero_len(&bytes));
    bytes
}

fn three_completions() -> Vec<Entry> {
    vec![
        completed("A", RecordedOutcome::Success, BTreeMap::new()),
        completed("B", RecordedOutcome::Failure, BTreeMap::new()),
        completed("C", RecordedOutcome::Completion, BTreeMap::new()),
    ]
}

#[test]
fn every_entry_kind_round_trips() {
    let f = fixture();
    let vars = |n: i64| BTreeMap::from([("User::N".to_string(), StoredValue::plain(json!(n)))]);
    write(
        &f.path,
        None,
        vec![
            Entry::RunStarted {
                run_id: "run-1".into(),
            },
            completed("Load/Customers", RecordedOutcome::Success, vars(1)),
            Entry::Iteration {
                loop_path: "Each file".into(),
                key: "a.csv".into(),
                vars: vars(2),
            },
            Entry::Iteration {
                loop_path: "Each file".into(),
                key: "b.csv".into(),
                vars: BTreeMap::new(),
            },
            Entry::Vars { vars: vars(3) },
            completed("Load/Orders", RecordedOutcome::Failure, BTreeMap::new()),
            Entry::Invalidate {
                path: "Load/Orders".into(),
            },
            Entry::RunStarted {
                run_id: "run-2".into(),
            },
        ],
    );
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.runs, 2);
    assert_eq!(s.run_history[0].run_id, "run-1");
    assert_eq!(s.run_history[1].pid, std::process::id());
    assert_eq!(s.completed_order, ["Load/Customers"]);
    let c = &s.completed["Load/Customers"];
    assert_eq!(c.outcome, RecordedOutcome::Success);
    assert_eq!((c.fingerprint.as_str(), c.duration_ms), ("ab12", 1500));
    assert!(c.at.ends_with('Z') && c.at.len() == 24, "{}", c.at);
    assert_eq!(s.iterations["Each file"], ["a.csv", "b.csv"]);
    assert_eq!(s.vars["User::N"], Restored::Value(json!(3)));
    assert_eq!(s.torn_tail_bytes, 0);
    assert_eq!(s.valid_len, frame_bytes(&f.path).len() as u64);
    assert!(
        fs::metadata(&f.path).expect("stat").len() >= s.valid_len + 60 * 1024,
        "room is written ahead of the frames"
    );
    assert!(s.last_written_at.is_some());
    assert!(!s.key_mismatch);
}

#[test]
fn header_preserves_package_identity_and_config() {
    let f = fixture();
    write(&f.path, None, Vec::new());
    let s = read(&f.path, None).expect("read");
    let h = &s.header;
    assert_eq!(h.format_version, FORMAT_VERSION);
    assert_eq!(h.package_id, "{6A3C-11F0-PKG}");
    assert_eq!(h.package_name, "Nightly load");
    assert_eq!(h.package_path, "/etl/packages/nightly.yaml");
    assert_eq!(h.config["User::Server"], Restored::Value(json!("db01")));
    assert_eq!(h.config["User::Password"], Restored::Omitted);
    assert_eq!(h.created_at.len(), 24);
    assert_eq!(s.last_written_at, None);
    assert_eq!(s.runs, 0);
}

#[test]
fn completing_again_moves_a_path_to_the_end_of_the_order() {
    let f = fixture();
    let mut entries = three_completions();
    entries.push(completed("A", RecordedOutcome::Failure, BTreeMap::new()));
    write(&f.path, None, entries);
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.completed_order, ["B", "C", "A"]);
    assert_eq!(s.completed["A"].outcome, RecordedOutcome::Failure);
}

#[test]
fn an_iteration_key_finished_twice_is_kept_twice() {
    // A collection holding an item twice: each finished occurrence counts,
    // so a restart skips only as many as finished.
    let f = fixture();
    let iteration = |key: &str| Entry::Iteration {
        loop_path: "Loop".into(),
        key: key.into(),
        vars: BTreeMap::new(),
    };
    write(
        &f.path,
        None,
        vec![iteration("a"), iteration("a"), iteration("b")],
    );
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.iterations["Loop"], ["a", "a", "b"]);
}

#[test]
fn record_counts_only_grow_and_survive_an_invalidation() {
    let f = fixture();
    let done = |p: &str| completed(p, RecordedOutcome::Success, BTreeMap::new());
    write(
        &f.path,
        None,
        vec![
            done("Load"),
            done("Seq/Inner"),
            Entry::Invalidate {
                path: "Load".into(),
            },
            done("Load"),
            Entry::Invalidate { path: "Seq".into() },
        ],
    );
    let s = read(&f.path, None).expect("read");
    let counts: Vec<(&str, u32)> = s
        .record_counts
        .iter()
        .map(|(p, n)| (p.as_str(), *n))
        .collect();
    // Each record counts for the path it names; forgetting "Seq" does not
    // lower "Seq/Inner" (an execution below it sums the counts of its containers).
    assert_eq!(counts, [("Load", 3), ("Seq", 1), ("Seq/Inner", 1)]);
    assert!(!s.completed.contains_key("Seq/Inner"));
}

#[test]
fn invalidate_removes_the_path_its_descendants_and_their_iterations() {
    let f = fixture();
    let done = |p: &str| completed(p, RecordedOutcome::Success, BTreeMap::new());
    let iter = |l: &str, k: &str| Entry::Iteration {
        loop_path: l.into(),
        key: k.into(),
        vars: BTreeMap::new(),
    };
    write(
        &f.path,
        None,
        vec![
            done("a/b"),
            done("a/b/c"),
            done("a/bc"),
            done("a"),
            iter("a/b", "1"),
            iter("a/b/loop", "2"),
            iter("a/bc", "3"),
            Entry::Invalidate { path: "a/b".into() },
        ],
    );
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.completed_order, ["a/bc", "a"]);
    assert_eq!(
        s.completed.keys().collect::<Vec<_>>(),
        [&"a".to_string(), &"a/bc".to_string()]
    );
    assert_eq!(
        s.iterations.keys().collect::<Vec<_>>(),
        [&"a/bc".to_string()]
    );
}

#[test]
fn a_torn_last_frame_is_dropped_at_every_byte_offset() {
    let f = fixture();
    let ends = write(&f.path, None, three_completions());
    let bytes = frame_bytes(&f.path);
    let last_start = ends[2] as usize;
    for cut in last_start..bytes.len() {
        let s = parse(&f.path, &bytes[..cut], None).expect("torn tail reads");
        assert_eq!(s.completed_order, ["A", "B"], "cut at {cut}");
        assert_eq!(s.valid_len, last_start as u64);
        // The torn bytes end at the last that is not zero: a frame's length
        // and checksum fields can end in zeros.
        let torn = (crate::reader::nonzero_len(&bytes[..cut]) - last_start) as u64;
        assert!(torn <= (cut - last_start) as u64 && (cut == last_start) == (torn == 0));
        assert_eq!(s.torn_tail_bytes, torn);
        // The same frame, its length kept but its end never written (zeros).
        let mut holed = bytes.clone();
        holed[cut..].fill(0);
        let s = parse(&f.path, &holed, None).expect("zero-filled tail reads");
        assert_eq!(s.completed_order, ["A", "B"], "zeros from {cut}");
        assert_eq!(s.valid_len, last_start as u64);
        assert_eq!(
            s.torn_tail_bytes, torn,
            "zeros after the torn bytes are not part of them"
        );
    }
    // Through the real reader too.
    fs::write(&f.path, &bytes[..bytes.len() - 3]).expect("write");
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.torn_tail_bytes, (bytes.len() - 3 - last_start) as u64);
}

#[test]
fn a_bad_checksum_on_the_last_frame_is_a_torn_tail() {
    let f = fixture();
    let ends = write(&f.path, None, three_completions());
    let mut bytes = frame_bytes(&f.path);
    let n = bytes.len();
    bytes[n - 2] ^= 0x40;
    let s = parse(&f.path, &bytes, None).expect("reads");
    assert_eq!(s.completed_order, ["A", "B"]);
    assert_eq!(s.torn_tail_bytes, n as u64 - ends[2]);
}

#[test]
fn any_bit_flip_in_a_middle_frame_is_an_error_naming_its_offset() {
    let f = fixture();
    let ends = write(&f.path, None, three_completions());
    let bytes = frame_bytes(&f.path);
    let (start, end) = (ends[1] as usize, ends[2] as usize);
    for at in start..end {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[at] ^= 1 << bit;
            let err = parse(&f.path, &b, None).expect_err("corruption must fail");
            let JournalError::Corrupt { offset, .. } = &err else {
                panic!("byte {at} bit {bit}: expected Corrupt, got {err:?}");
            };
            assert_eq!(*offset, start as u64, "byte {at} bit {bit}");
            let msg = err.to_string();
            assert!(msg.contains(&format!("at byte {start}")), "{msg}");
            assert!(msg.contains(&f.path.display().to_string()), "{msg}");
        }
    }
    fs::write(&f.path, {
        let mut b = bytes.clone();
        b[start + 20] ^= 1;
        b
    })
    .expect("write");
    assert!(matches!(
        read(&f.path, None),
        Err(JournalError::Corrupt { .. })
    ));
}

#[test]
fn a_checksummed_frame_that_does_not_decode_is_corruption_even_at_the_end() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let clean = frame_bytes(&f.path);
    let end = clean.len() as u64;
    for (payload, says) in [
        (&b"{\"kind\":\"nonsense\"}"[..], "does not decode"),
        (&b"{\"kind\":\"records\",\"at\":\"\xff\"}"[..], "not UTF-8"),
    ] {
        let mut bytes = clean.clone();
        bytes.extend_from_slice(&frame::encode(1, payload).expect("frame"));
        let err = parse(&f.path, &bytes, None).expect_err("must fail");
        assert!(
            matches!(&err, JournalError::Corrupt { offset, reason, .. } if *offset == end && reason.contains(says)),
            "{err:?}"
        );
    }
}

#[test]
fn a_variable_named_twice_in_one_record_keeps_its_later_value() {
    // Records hold their variables as a list, not a map (reader.rs): a name
    // written twice must still restore as a map would have kept it.
    let f = fixture();
    write(&f.path, None, three_completions());
    let mut bytes = frame_bytes(&f.path);
    let payload = br#"{"kind":"records","at":"t","records":[{"kind":"vars","vars":{"User::Twice":{"clear":1},"User::Twice":{"clear":2}}}]}"#;
    bytes.extend_from_slice(&frame::encode(1, payload).expect("frame"));
    let st = parse(&f.path, &bytes, None).expect("reads");
    assert_eq!(
        st.vars.get("User::Twice"),
        Some(&Restored::Value(serde_json::json!(2)))
    );
    assert_eq!(st.last_written_at.as_deref(), Some("t"));
}

#[test]
fn a_newer_format_version_is_refused_with_both_versions() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let mut bytes = frame_bytes(&f.path);
    bytes[3] = 2;
    fs::write(&f.path, &bytes).expect("write");
    let err = read(&f.path, None).expect_err("newer version");
    assert!(
        matches!(
            err,
            JournalError::NewerFormat {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("written by a newer checkflow, format version 2; this build reads up to 1"),
        "{err}"
    );
}

#[test]
fn a_file_without_a_valid_header_is_not_a_checkpoint() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let good = frame_bytes(&f.path);
    let records_first = {
        let mut b =
            frame::encode(1, br#"{"kind":"records","at":"x","records":[]}"#).expect("frame");
        b.extend_from_slice(&good);
        b
    };
    let mut bad_header_crc = good.clone();
    bad_header_crc[20] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", b"hello, world, this is not a checkpoint".to_vec()),
        ("magic only", b"CFJ\x01".to_vec()),
        ("version 0", b"CFJ\x00rest".to_vec()),
        ("records first", records_first),
        ("header checksum", bad_header_crc),
        ("header cut", good[..30].to_vec()),
    ];
    for (name, bytes) in cases {
        let err = parse(&f.path, &bytes, None).expect_err(name);
        assert!(
            matches!(err, JournalError::NotACheckpoint { .. }),
            "{name}: {err:?}"
        );
        assert!(
            err.to_string().contains("not a checkflow checkpoint"),
            "{name}"
        );
    }
    let missing = read(&f.path.with_extension("nope"), None).expect_err("missing file");
    assert!(matches!(missing, JournalError::Io { .. }));
}

#[test]
fn sensitive_values_are_sealed_and_never_written_in_clear() {
    let f = fixture();
    let key = Key::from_text("correct horse battery staple");
    let secret_var = BTreeMap::from([
        (
            "User::Token".to_string(),
            StoredValue::sensitive(json!(SECRET)),
        ),
        ("User::Rows".to_string(), StoredValue::plain(json!(42))),
    ]);
    write(
        &f.path,
        Some(&key),
        vec![completed("A", RecordedOutcome::Success, secret_var)],
    );
    let bytes = frame_bytes(&f.path);
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(SECRET), "a secret is in the file in clear");
    assert!(!text.contains("hunter2"));
    assert!(text.contains("xchacha20poly1305"));

    let s = read(&f.path, Some(&key)).expect("read with key");
    assert!(!s.key_mismatch);
    assert_eq!(s.vars["User::Token"], Restored::Value(json!(SECRET)));
    assert_eq!(s.vars["User::Rows"], Restored::Value(json!(42)));
    assert_eq!(
        s.header.config["User::Password"],
        Restored::Value(json!(SECRET))
    );

    let s = read(&f.path, None).expect("read without key");
    assert!(!s.key_mismatch);
    assert_eq!(s.vars["User::Token"], Restored::Sealed);
    assert_eq!(s.header.config["User::Password"], Restored::Sealed);
    assert_eq!(s.vars["User::Rows"], Restored::Value(json!(42)));

    let wrong = Key::from_text("Correct horse battery staple");
    let s = read(&f.path, Some(&wrong)).expect("read with a wrong key");
    assert!(s.key_mismatch);
    assert_eq!(s.vars["User::Token"], Restored::Sealed);

    let l = lock(&f.path).expect("lock");
    let err = Journal::append_to(&f.path, &s, Some(&wrong), &l).expect_err("wrong key");
    assert!(matches!(err, JournalError::KeyMismatch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("CHECKFLOW_KEY does not match the key this checkpoint was written with")
    );
}

#[test]
fn a_sealed_value_moved_to_another_variable_is_caught() {
    let f = fixture();
    let key = Key::from_text("k");
    let vars =
        |name: &str| BTreeMap::from([(name.to_string(), StoredValue::sensitive(json!(SECRET)))]);
    write(
        &f.path,
        Some(&key),
        vec![Entry::Vars {
            vars: vars("User::AAAA"),
        }],
    );
    // Rename the variable in place (same length, so re-frame it with a valid CRC).
    let bytes = frame_bytes(&f.path);
    let (_, start) = frame::decode_at(&bytes, 0, 1).expect("header");
    let (payload, _) = frame::decode_at(&bytes, start, 1).expect("records frame");
    let moved = String::from_utf8_lossy(payload).replace("User::AAAA", "User::BBBB");
    let mut forged = bytes[..start].to_vec();
    forged.extend_from_slice(&frame::encode(1, moved.as_bytes()).expect("frame"));
    let err = parse(&f.path, &forged, Some(&key)).expect_err("moved ciphertext");
    assert!(
        err.to_string()
            .contains("does not open with the checkpoint's key"),
        "{err}"
    );
    // Without a key it cannot be checked, and reads as sealed.
    let s = parse(&f.path, &forged, None).expect("read without key");
    assert_eq!(s.vars["User::BBBB"], Restored::Sealed);
}

#[test]
fn sensitive_values_without_a_key_are_omitted() {
    let f = fixture();
    let secret_var = BTreeMap::from([(
        "User::Token".to_string(),
        StoredValue::sensitive(json!(SECRET)),
    )]);
    write(&f.path, None, vec![Entry::Vars { vars: secret_var }]);
    let bytes = frame_bytes(&f.path);
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET));
    let s = read(&f.path, Some(&Key::from_text("any"))).expect("read");
    assert!(!s.key_mismatch, "a keyless file matches any key");
    assert_eq!(s.vars["User::Token"], Restored::Omitted);
    assert_eq!(s.header.config["User::Password"], Restored::Omitted);
}

#[test]
fn appending_with_the_right_key_keeps_sealing() {
    let f = fixture();
    let key = Key::from_text("k1");
    write(&f.path, Some(&key), three_completions());
    let s = read(&f.path, Some(&key)).expect("read");
    let l = lock(&f.path).expect("lock");
    let mut j = Journal::append_to(&f.path, &s, Some(&key), &l).expect("append_to");
    j.append(Entry::Vars {
        vars: BTreeMap::from([("User::T".into(), StoredValue::sensitive(json!(SECRET)))]),
    })
    .expect("append");
    assert!(!String::from_utf8_lossy(&frame_bytes(&f.path)).contains(SECRET));
    let s = read(&f.path, Some(&key)).expect("read");
    assert_eq!(s.vars["User::T"], Restored::Value(json!(SECRET)));
    assert_eq!(s.completed_order, ["A", "B", "C"]);
}

#[cfg(unix)]
#[test]
fn the_file_is_owner_only_after_create_and_its_mode_is_left_alone_after() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    // An existing world-readable file is replaced by an owner-only one.
    fs::create_dir_all(f.path.parent().expect("parent")).expect("mkdir");
    fs::write(&f.path, b"old").expect("write");
    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o644)).expect("chmod");
    write(&f.path, None, three_completions());
    assert_eq!(mode(&f.path), 0o600);

    fs::set_permissions(&f.path, fs::Permissions::from_mode(0o640)).expect("chmod");
    let s = read(&f.path, None).expect("read");
    let l = lock(&f.path).expect("lock");
    let mut j = Journal::append_to(&f.path, &s, None, &l).expect("append_to");
    j.append(completed("D", RecordedOutcome::Success, BTreeMap::new()))
        .expect("append");
    assert_eq!(mode(&f.path), 0o640);
}

#[test]
fn append_to_cuts_a_torn_tail_before_appending() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let clean = frame_bytes(&f.path);
    let mut torn = clean.clone();
    torn.extend_from_slice(&frame::encode(1, b"{\"kind\":\"records\"").expect("frame")[..15]);
    fs::write(&f.path, &torn).expect("write");

    let s = read(&f.path, None).expect("read");
    assert_eq!(s.torn_tail_bytes, 15);
    let l = lock(&f.path).expect("lock");
    let mut j = Journal::append_to(&f.path, &s, None, &l).expect("append_to");
    assert_eq!(
        fs::metadata(&f.path).expect("stat").len(),
        clean.len() as u64,
        "the torn tail is cut"
    );
    j.append(completed("D", RecordedOutcome::Success, BTreeMap::new()))
        .expect("append");
    let s = read(&f.path, None).expect("read");
    assert_eq!(s.torn_tail_bytes, 0);
    assert_eq!(s.completed_order, ["A", "B", "C", "D"]);
}

#[test]
fn append_to_refuses_a_file_that_changed_since_it_was_read() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let s = read(&f.path, None).expect("read");
    let mut bytes = frame_bytes(&f.path);
    bytes.extend_from_slice(b"more");
    fs::write(&f.path, &bytes).expect("write");
    let l = lock(&f.path).expect("lock");
    let err = Journal::append_to(&f.path, &s, None, &l).expect_err("stale");
    assert!(matches!(err, JournalError::Stale { .. }), "{err:?}");
}

#[test]
fn create_and_append_to_need_the_lock_for_that_file() {
    let f = fixture();
    let other = f.path.with_file_name("other.ckpt");
    let l = lock(&other).expect("lock");
    let err = Journal::create(&f.path, header(), None, &l).expect_err("wrong lock");
    assert!(matches!(err, JournalError::WrongLock { .. }), "{err:?}");
    assert!(!f.path.exists());
}

#[test]
fn create_replaces_an_existing_file_and_delete_removes_it() {
    let f = fixture();
    write(&f.path, None, three_completions());
    write(&f.path, None, Vec::new());
    let s = read(&f.path, None).expect("read");
    assert!(s.completed.is_empty());

    let l = lock(&f.path).expect("lock");
    let j = Journal::create(&f.path, header(), None, &l).expect("create");
    assert_eq!(j.path(), f.path);
    j.delete().expect("delete");
    assert!(!f.path.exists());
    let dir = f.path.parent().expect("parent");
    let names: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["nightly.ckpt.lock"], "no temp files left behind");
}

#[test]
fn journal_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Journal>();
    assert_send::<crate::Lock>();
}

#[test]
fn key_from_text_and_env() {
    // Only reads the environment: tests run in parallel, so it is not set here.
    if std::env::var_os(crate::KEY_ENV).is_none() {
        assert!(Key::from_env().is_none());
    }
    let a = Key::from_text("x");
    assert_eq!(format!("{a:?}"), "Key(..)");
}

fn sample_file() -> (Vec<u8>, u64) {
    let f = fixture();
    let ends = write(&f.path, None, three_completions());
    (frame_bytes(&f.path), ends[2])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever follows the header, the reader returns a state or an error; it never panics.
    #[test]
    fn the_reader_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..300), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let (mut bytes, _) = sample_file();
        for (at, x) in flips {
            let n = bytes.len();
            bytes[at % n] ^= x;
        }
        bytes.extend_from_slice(&garbage);
        let _ = parse(Path::new("fuzz.ckpt"), &bytes, None);
    }

    /// A last frame cut anywhere, with any stretch of what survived zeroed
    /// or scrambled, reads as the records before it.
    #[test]
    fn a_damaged_last_frame_reads_as_the_prefix(cut in any::<proptest::sample::Index>(), hole in any::<(proptest::sample::Index, proptest::sample::Index)>(), noise in any::<u8>()) {
        let (bytes, last_start) = sample_file();
        let last_start = last_start as usize;
        let end = last_start + cut.index(bytes.len() - last_start + 1);
        let mut img = bytes[..end].to_vec();
        if end > last_start {
            let a = last_start + hole.0.index(end - last_start);
            let b = a + hole.1.index(end - a) + 1;
            for byte in &mut img[a..b.min(end)] {
                *byte = if noise == 0 { 0 } else { byte.wrapping_add(noise) };
            }
        }
        let s = parse(Path::new("fuzz.ckpt"), &img, None).expect("reads");
        let whole = end == bytes.len() && img == bytes;
        if whole {
            prop_assert_eq!(s.completed_order.len(), 3);
        } else {
            prop_assert_eq!(&s.completed_order, &["A", "B"]);
            prop_assert_eq!(s.valid_len, last_start as u64);
        }
    }
}

/// The key the golden files were sealed with.
const GOLDEN_KEY: &str = "golden-key";

fn golden_entries() -> Vec<Vec<Entry>> {
    let vars = BTreeMap::from([
        ("User::Rows".to_string(), StoredValue::plain(json!(1200))),
        (
            "User::Token".to_string(),
            StoredValue::sensitive(json!(SECRET)),
        ),
    ]);
    vec![
        vec![Entry::RunStarted {
            run_id: "run-1".into(),
        }],
        vec![completed("Load/Customers", RecordedOutcome::Success, vars)],
        vec![
            completed("Load/Orders", RecordedOutcome::Failure, BTreeMap::new()),
            Entry::Iteration {
                loop_path: "Each file".into(),
                key: "a.csv".into(),
                vars: BTreeMap::new(),
            },
        ],
        vec![Entry::Vars {
            vars: BTreeMap::from([(
                "User::Note".to_string(),
                StoredValue::plain(json!({"a": [1, null, "x"]})),
            )]),
        }],
        vec![Entry::Invalidate {
            path: "Load/Orders".into(),
        }],
    ]
}

/// Writes `testdata/v<N>.ckpt`. Run by hand, once per released format:
/// `cargo test -p checkflow-journal -- --ignored regenerate_golden`.
#[test]
#[ignore = "writes the golden file; run by hand when a format version is released"]
fn regenerate_golden() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("golden.ckpt");
    let l = lock(&path).expect("lock");
    let mut j =
        Journal::create(&path, header(), Some(&Key::from_text(GOLDEN_KEY)), &l).expect("create");
    for batch in golden_entries() {
        j.append_all(batch).expect("append");
    }
    let out = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(format!("v{FORMAT_VERSION}.ckpt"));
    fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
    fs::copy(&path, &out).expect("copy");
}

/// Files written by each released format must keep reading the same.
#[test]
fn golden_v1_still_reads() {
    let bytes = include_bytes!("../testdata/v1.ckpt");
    let p = Path::new("testdata/v1.ckpt");
    let s = parse(p, bytes, Some(&Key::from_text(GOLDEN_KEY))).expect("golden v1");
    assert_eq!(s.header.format_version, 1);
    assert_eq!(s.header.package_id, "{6A3C-11F0-PKG}");
    assert_eq!(
        s.header.config["User::Password"],
        Restored::Value(json!(SECRET))
    );
    assert_eq!(s.runs, 1);
    assert_eq!(s.completed_order, ["Load/Customers"]);
    assert_eq!(
        s.completed["Load/Customers"].outcome,
        RecordedOutcome::Success
    );
    assert_eq!(s.iterations["Each file"], ["a.csv"]);
    assert_eq!(s.vars["User::Rows"], Restored::Value(json!(1200)));
    assert_eq!(s.vars["User::Token"], Restored::Value(json!(SECRET)));
    assert_eq!(
        s.vars["User::Note"],
        Restored::Value(json!({"a": [1, null, "x"]}))
    );
    assert_eq!((s.torn_tail_bytes, s.valid_len), (0, bytes.len() as u64));
    assert!(!String::from_utf8_lossy(bytes).contains(SECRET));
    let s = parse(p, bytes, None).expect("golden v1 without key");
    assert_eq!(s.vars["User::Token"], Restored::Sealed);
}

/// Set in the child process of `a_writer_killed_at_random_moments_leaves_every_acknowledged_record`.
const CHILD_ENV: &str = "CHECKFLOW_JOURNAL_TEST_CHILD";

/// The child: appends records forever, printing each index once its append returned.
#[test]
#[ignore = "runs only as the child process of the kill test"]
fn child_writer() {
    use std::io::Write as _;
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(path);
    let l = lock(&path).expect("child lock");
    let mut j = match read(&path, None) {
        Ok(s) => Journal::append_to(&path, &s, None, &l).expect("child append_to"),
        Err(_) => Journal::create(&path, header(), None, &l).expect("child create"),
    };
    let pid = std::process::id();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let big = BTreeMap::from([(
            "User::Pad".to_string(),
            StoredValue::plain(json!("p".repeat((i % 7) as usize * 500))),
        )]);
        j.append(completed(
            &format!("P{pid}/T{i}"),
            RecordedOutcome::Success,
            big,
        ))
        .expect("child append");
        writeln!(out, "acked {pid} {i}").expect("child stdout");
        out.flush().expect("child stdout");
    }
}

/// A child process appends records and is killed (SIGKILL on Unix) at a
/// random moment, several times over the same file: every append it
/// acknowledged is in the file, and the next run can lock and continue.
#[test]
fn a_writer_killed_at_random_moments_leaves_every_acknowledged_record() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let f = fixture();
    let exe = std::env::current_exe().expect("test binary");
    let mut rng = crate::testing::Rng::new(0x5eed);
    let mut acked: Vec<String> = Vec::new();
    for _round in 0..4 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "tests::child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &f.path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let stop_after = 5 + rng.upto(60);
        let mut seen = 0;
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("child line");
            if let Some(rest) = line.strip_prefix("acked ") {
                let (pid, i) = rest.split_once(' ').expect("pid and index");
                acked.push(format!("P{pid}/T{i}"));
                seen += 1;
                if seen == stop_after {
                    break;
                }
            }
        }
        child.kill().expect("kill child");
        child.wait().expect("reap child");
        assert!(seen > 0, "the child acknowledged nothing");

        let s = read(&f.path, None).expect("readable after kill");
        for p in &acked {
            assert!(s.completed.contains_key(p), "acknowledged {p} is missing");
        }
        // The dead child's lock is gone with it, even if its lock file is not.
        drop(lock(&f.path).expect("lock after kill"));
    }
}

#[test]
fn a_commit_intent_stays_until_its_completion_or_invalidation() {
    let f = fixture();
    let intent = |p: &str| Entry::TxCommitting {
        path: p.into(),
        marker: format!("m-{p}"),
        connections: vec!["dw".into()],
        vars: BTreeMap::from([("User::Mid".to_string(), StoredValue::plain(json!(1)))]),
    };
    write(
        &f.path,
        None,
        vec![
            intent("Load"),
            intent("Other"),
            completed("Load", RecordedOutcome::Success, BTreeMap::new()),
            intent("Seq/Inner"),
            Entry::Invalidate { path: "Seq".into() },
        ],
    );
    let st = read(&f.path, None).expect("read");
    assert_eq!(st.tx_intents.keys().collect::<Vec<_>>(), ["Other"]);
    assert_eq!(st.tx_intents["Other"].marker, "m-Other");
    assert_eq!(st.tx_intents["Other"].connections, ["dw"]);
    // An intent's variables hold only if its commit was made: they are kept
    // with the intent, not applied to the state's variables.
    assert_eq!(
        st.tx_intents["Other"].vars.get("User::Mid"),
        Some(&Restored::Value(json!(1)))
    );
    assert!(!st.vars.contains_key("User::Mid"));
    assert!(!st.vars_set_by_tasks.contains("User::Mid"));
}

#[test]
fn frames_are_written_over_zeros_written_ahead_and_a_restart_continues_after_the_last() {
    let f = fixture();
    let big = |n: i64| {
        let v = BTreeMap::from([(
            "User::Big".to_string(),
            StoredValue::plain(json!("x".repeat(20_000))),
        )]);
        completed(&format!("T{n}"), RecordedOutcome::Success, v)
    };
    let l = lock(&f.path).expect("lock");
    let mut j = Journal::create(&f.path, header(), None, &l).expect("create");
    let mut lens = Vec::new();
    for n in 0..40 {
        j.append(big(n)).expect("append");
        lens.push(fs::metadata(&f.path).expect("stat").len());
    }
    drop(j);
    // Room grows in runs (half the file, at least 64 KiB), not frame by frame.
    let mut runs = lens.clone();
    runs.dedup();
    assert!(runs.len() >= 3 && runs.len() <= 12, "file lengths {runs:?}");
    assert!(
        runs.iter().all(|len| len % 4096 == 0),
        "whole pages: {runs:?}"
    );
    let frames = frame_bytes(&f.path);
    let len = fs::metadata(&f.path).expect("stat").len();
    assert!(len > frames.len() as u64);

    let s = read(&f.path, None).expect("read");
    assert_eq!(s.completed_order.len(), 40);
    assert_eq!((s.valid_len, s.torn_tail_bytes), (frames.len() as u64, 0));

    // A restart writes its first frame right after the last one, over the
    // zeros: nothing is cut and the file does not grow.
    let mut j = Journal::append_to(&f.path, &s, None, &l).expect("append_to");
    assert_eq!(fs::metadata(&f.path).expect("stat").len(), len);
    j.append(completed(
        "After",
        RecordedOutcome::Success,
        BTreeMap::new(),
    ))
    .expect("append");
    assert_eq!(fs::metadata(&f.path).expect("stat").len(), len);
    let s2 = read(&f.path, None).expect("read again");
    assert_eq!(s2.completed_order.len(), 41);
    assert_eq!(s2.completed_order.last().map(String::as_str), Some("After"));
    let after = frame_bytes(&f.path);
    assert_eq!(
        after[..frames.len()],
        frames[..],
        "the earlier frames are untouched"
    );
    assert_eq!(&after[frames.len()..frames.len() + 4], b"CFJ\x01");
}

#[test]
fn bytes_in_the_zeros_after_the_frames_are_a_torn_tail_and_a_frame_there_is_corruption() {
    let f = fixture();
    write(&f.path, None, three_completions());
    let frames = frame_bytes(&f.path);
    let mut bytes = fs::read(&f.path).expect("read");
    assert!(bytes.len() > frames.len() + 1000);

    let mut stray = bytes.clone();
    stray[frames.len() + 500] = 0x41;
    let s = parse(&f.path, &stray, None).expect("a stray byte is a torn tail");
    assert_eq!(s.completed_order, ["A", "B", "C"]);
    assert_eq!((s.valid_len, s.torn_tail_bytes), (frames.len() as u64, 501));

    // A whole frame after a gap of zeros: the zeros are a bad frame with a
    // valid one after it, which a crash cannot make.
    let extra =
        frame::encode(1, b"{\"kind\":\"records\",\"at\":\"x\",\"records\":[]}").expect("frame");
    let at = frames.len() + 100;
    bytes[at..at + extra.len()].copy_from_slice(&extra);
    let err = parse(&f.path, &bytes, None).expect_err("must fail");
    assert!(
        matches!(err, JournalError::Corrupt { offset, .. } if offset == frames.len() as u64),
        "{err:?}"
    );
}
