//! Crash tests: over a `CrashStorage` (`testing.rs`) that "crashes" at the
//! Nth write, sync or truncation, checks that what a crash leaves on disk reads back as a
//! valid prefix holding every record whose append returned `Ok`.
//!
//! The disk model (see docs/design/journal-format.md): bytes survive a crash
//! if they were synced; of the unsynced bytes after them, any prefix may
//! survive, with any holes in it read back as zeros or as garbage.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use crate::entry::{Entry, NewHeader, RecordedOutcome, StoredValue};
use crate::error::JournalError;
use crate::journal::{Journal, header_frame};
use crate::reader::{parse, record_frames};
use crate::record::Record;
use crate::testing::{CrashStorage, Disk, Rng};

const PATH: &str = "/crash-test/run.ckpt";

fn header() -> NewHeader {
    NewHeader {
        package_id: "pkg-1".into(),
        package_name: "Crash".into(),
        package_path: "crash.yaml".into(),
        config: BTreeMap::from([("User::Env".into(), StoredValue::plain(json!("test")))]),
    }
}

fn completed(path: &str, n: i64) -> Entry {
    Entry::Completed {
        path: path.into(),
        outcome: RecordedOutcome::Success,
        fingerprint: format!("{n:064x}"),
        duration_ms: n as u64,
        vars: BTreeMap::from([("User::N".into(), StoredValue::plain(json!(n)))]),
    }
}

/// The appends of the crash scenario: single records and group commits of every kind.
fn batches() -> Vec<Vec<Entry>> {
    vec![
        vec![Entry::RunStarted {
            run_id: "run-1".into(),
        }],
        vec![completed("Seq/A", 1)],
        vec![
            completed("Seq/B", 2),
            completed("Seq/C", 3),
            completed("D", 4),
        ],
        vec![Entry::Iteration {
            loop_path: "Loop".into(),
            key: "file-1.csv".into(),
            vars: BTreeMap::from([("User::File".into(), StoredValue::plain(json!("file-1.csv")))]),
        }],
        vec![Entry::Vars {
            vars: BTreeMap::from([(
                "User::Big".into(),
                StoredValue::plain(json!("x".repeat(3000))),
            )]),
        }],
        vec![Entry::Invalidate { path: "Seq".into() }],
        vec![completed("Seq/A", 5)],
    ]
}

/// A journal whose file holds just the header, synced, over a crashable disk.
fn fresh(fail_at: Option<usize>, crash: bool) -> (Journal, CrashStorage) {
    let path = Path::new(PATH);
    let (bytes, sealer) = header_frame(path, &header(), None).expect("header");
    let storage = CrashStorage::over(bytes);
    {
        let mut d = storage.disk();
        d.fail_at = fail_at;
        d.crash = crash;
    }
    let j = Journal::from_parts(path, Box::new(storage.clone()), sealer, 1);
    (j, storage)
}

/// The record batches of a file, one per frame.
fn frames_of(bytes: &[u8]) -> Vec<Vec<Record>> {
    record_frames(Path::new(PATH), bytes).expect("a crash image must always read")
}

#[test]
fn crash_at_every_write_and_sync_leaves_a_readable_prefix_with_every_acknowledged_record() {
    let all = batches();
    let (mut reference, ref_disk) = fresh(None, true);
    for b in &all {
        reference
            .append_all(b.clone())
            .expect("append without failures");
    }
    let expected = frames_of(&ref_disk.disk().data);
    assert_eq!(expected.len(), all.len());
    let total_ops = ref_disk.disk().ops;
    assert_eq!(total_ops, 2 * all.len());

    let mut images_checked = 0;
    for n in 0..=total_ops {
        let (mut j, storage) = fresh(Some(n), true);
        let mut acked = 0;
        for b in &all {
            if j.append_all(b.clone()).is_err() {
                break;
            }
            acked += 1;
        }
        assert_eq!(acked, n / 2, "crash at op {n}");
        let disk = storage.disk();
        let mut rng = Rng::new(n as u64);
        for style in 0..5u8 {
            for _ in 0..if style < 2 { 1 } else { 12 } {
                let img = disk.image(&mut rng, style);
                let got = frames_of(&img);
                assert!(
                    got.len() >= acked && got.len() <= (acked + 1).min(all.len()),
                    "crash at op {n}, style {style}: {} frames, {acked} acknowledged",
                    got.len()
                );
                assert_eq!(got[..], expected[..got.len()], "crash at op {n}");
                let state = parse(Path::new(PATH), &img, None).expect("state");
                let used = (state.valid_len + state.torn_tail_bytes) as usize;
                assert!(img[used..].iter().all(|&b| b == 0), "crash at op {n}");
                assert_eq!(used, crate::reader::nonzero_len(&img), "crash at op {n}");
                recover_and_append(&img, got.len(), &expected);
                images_checked += 1;
            }
        }
    }
    assert!(images_checked > 100);
}

/// Reopens a crash image like the next run would, appends one more record,
/// and checks that the file then holds the surviving prefix plus that record.
fn recover_and_append(img: &[u8], survived: usize, expected: &[Vec<Record>]) {
    let path = Path::new(PATH);
    let state = parse(path, img, None).expect("state");
    let storage = CrashStorage::over(img.to_vec());
    let mut j = Journal::resume_on(path, &state, None, Box::new(storage.clone())).expect("resume");
    j.append(completed("After", 99))
        .expect("append after recovery");
    let bytes = storage.disk().data.clone();
    let state = parse(path, &bytes, None).expect("state after recovery");
    assert_eq!(state.torn_tail_bytes, 0);
    let got = frames_of(&bytes);
    assert_eq!(got.len(), survived + 1);
    assert_eq!(got[..survived], expected[..survived]);
    assert!(state.completed.contains_key("After"));
}

#[test]
fn crash_while_cutting_a_torn_tail_or_appending_after_it_stays_readable() {
    let (mut j, storage) = fresh(None, true);
    j.append(completed("A", 1)).expect("append");
    j.append(completed("B", 2)).expect("append");
    let clean = storage.disk().data.clone();
    // A torn third frame: the start of what would have been written.
    let mut torn = clean.clone();
    let (mut j3, s3) = fresh(None, true);
    j3.append(completed("A", 1)).expect("append");
    j3.append(completed("B", 2)).expect("append");
    j3.append(completed("C", 3)).expect("append");
    let full = s3.disk().data.clone();
    torn.extend_from_slice(&full[clean.len()..clean.len() + 20]);

    let path = Path::new(PATH);
    let state = parse(path, &torn, None).expect("torn file reads");
    assert_eq!(state.torn_tail_bytes, 20);
    assert_eq!(state.valid_len, clean.len() as u64);

    // Ops after resuming: 0 = truncate, 1 = write, 2 = sync.
    for n in 0..=3 {
        for lands in [false, true] {
            let storage = CrashStorage::over(torn.clone());
            {
                let mut d = storage.disk();
                d.fail_at = Some(n);
                d.truncate_lands = lands;
            }
            let result = Journal::resume_on(path, &state, None, Box::new(storage.clone()))
                .and_then(|mut j| j.append(completed("D", 4)));
            assert_eq!(result.is_ok(), n == 3, "crash at op {n}");
            let disk = storage.disk();
            let mut rng = Rng::new(7);
            for style in 0..5 {
                let img = disk.image(&mut rng, style);
                let st = parse(path, &img, None).expect("readable after crash");
                assert!(st.completed.contains_key("A") && st.completed.contains_key("B"));
                assert!(!st.completed.contains_key("C"));
                if n == 3 {
                    assert!(st.completed.contains_key("D"));
                }
            }
        }
    }
}

#[test]
fn a_failed_write_poisons_the_journal() {
    let (mut j, storage) = fresh(Some(2), false);
    j.append(completed("A", 1)).expect("ops 0 and 1 succeed");
    let err = j.append(completed("B", 2)).expect_err("op 2 fails");
    assert!(
        matches!(
            err,
            JournalError::Io {
                action: "write to checkpoint",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(j.is_poisoned());
    let ops = storage.disk().ops;
    // The disk works again, but the journal must not.
    for _ in 0..3 {
        let err = j.append(completed("C", 3)).expect_err("poisoned");
        assert!(matches!(err, JournalError::Poisoned { .. }), "{err:?}");
        assert!(err.to_string().contains(PATH), "{err}");
    }
    assert_eq!(
        storage.disk().ops,
        ops,
        "a poisoned journal touches nothing"
    );
}

#[test]
fn a_failed_sync_poisons_the_journal() {
    let (mut j, storage) = fresh(Some(1), false);
    let err = j.append(completed("A", 1)).expect_err("the sync fails");
    assert!(
        matches!(
            err,
            JournalError::Io {
                action: "sync checkpoint",
                ..
            }
        ),
        "{err:?}"
    );
    let writes = storage.disk().writes;
    let err = j.append_all(vec![completed("B", 2)]).expect_err("poisoned");
    assert!(
        err.to_string()
            .contains("an earlier write failed (sync failed"),
        "{err}"
    );
    assert_eq!(storage.disk().writes, writes);
}

#[test]
fn append_all_writes_every_record_with_one_write_and_one_sync() {
    let (mut j, storage) = fresh(None, true);
    j.append_all(vec![
        completed("A", 1),
        completed("B", 2),
        completed("C", 3),
    ])
    .expect("group append");
    j.append_all(Vec::new()).expect("an empty group is a no-op");
    {
        let d = storage.disk();
        assert_eq!((d.writes, d.syncs), (1, 1));
    }
    j.append(completed("D", 4)).expect("single append");
    let d = storage.disk();
    assert_eq!((d.writes, d.syncs), (2, 2));
    let state = parse(Path::new(PATH), &d.data, None).expect("state");
    assert_eq!(state.completed_order, ["A", "B", "C", "D"]);
}

#[test]
fn image_model_keeps_synced_bytes() {
    let mut d = Disk {
        data: vec![1; 100],
        synced: 40,
        ..Disk::default()
    };
    let mut rng = Rng::new(1);
    for style in 0..5 {
        for _ in 0..50 {
            let img = d.image(&mut rng, style);
            assert!(img.len() >= 40 && img.len() <= 100 + 5000);
            assert!(img[..40].iter().all(|&b| b == 1));
            assert!(img[100.min(img.len())..].iter().all(|&b| b == 0));
        }
    }
    d.synced = 100;
    assert_eq!(d.image(&mut rng, 4).len(), 100);
}
