//! The store against the real PostgreSQL test cluster (`CHECKFLOW_TEST_PG_URL`;
//! unset: each test says so and passes, as the database tests of other crates).

use super::*;
use checkflow_journal::{Entry, Journal, NewHeader, RecordedOutcome};
use std::collections::BTreeMap;
use std::path::Path;

/// An error and its sources, as the command line prints them.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn db(test: &str) -> Option<String> {
    checkflow_testkit::pg::fresh_db(test)
}

/// A lease for a run of its own (each call a new run id, as each run has).
fn spec(key: &str, lease_ms: u64) -> LeaseSpec {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    LeaseSpec {
        key: key.into(),
        package_id: "pkg-1".into(),
        run_id: format!("run-{lease_ms}-{n}"),
        duration: Duration::from_millis(lease_ms),
    }
}

fn header() -> NewHeader {
    NewHeader {
        package_id: "pkg-1".into(),
        package_name: "p".into(),
        package_path: "p.yaml".into(),
        config: BTreeMap::new(),
    }
}

fn done(path: &str) -> Entry {
    Entry::Completed {
        path: path.into(),
        outcome: RecordedOutcome::Success,
        fingerprint: "f".into(),
        duration_ms: 1,
        vars: BTreeMap::new(),
    }
}

/// The lease on `key` for a run of its own (with `takeover`, waiting for
/// the holder's lease to expire).
fn take(url: &str, key: &str, lease_ms: u64, takeover: bool) -> Lease {
    Lease::acquire(
        Store::open(url).unwrap(),
        spec(key, lease_ms),
        takeover,
        None,
        |_| {},
    )
    .unwrap()
}

/// A journal created under `lease`, as `checkflow run` makes one.
fn create(lease: &Lease) -> Journal {
    Journal::create_on(Path::new("k"), header(), None, |bytes| {
        lease
            .create(bytes)
            .map(|f| Box::new(f) as Box<dyn checkflow_journal::Storage>)
            .map_err(|e| checkflow_journal::JournalError::Io {
                action: "create checkpoint",
                path: "k".into(),
                source: std::io::Error::other(e.to_string()),
            })
    })
    .expect("create")
}

fn completed(url: &str, key: &str) -> Vec<String> {
    let mut s = Store::open(url).expect("open");
    match read(&mut s, key).expect("read") {
        None => Vec::new(),
        Some(st) => {
            checkflow_journal::read_bytes(Path::new(key), &st.bytes, None)
                .expect("the frames read back as a checkpoint")
                .completed_order
        }
    }
}

#[test]
fn records_written_under_a_lease_read_back_as_a_checkpoint_and_resume() {
    let Some(url) = db("store_roundtrip") else {
        return;
    };
    let lease = take(&url, "k", 5000, false);
    assert_eq!(lease.epoch(), 1);
    let mut j = create(&lease);
    j.append(done("A")).unwrap();
    j.append_all(vec![done("B"), done("C")]).unwrap();
    assert_eq!(completed(&url, "k"), ["A", "B", "C"]);
    lease.release();

    // The next holder continues after the records, with a new epoch.
    let mut lease = take(&url, "k", 5000, false);
    assert_eq!(lease.epoch(), 2);
    let stored = lease.read().unwrap().expect("stored");
    let st = checkflow_journal::read_bytes(Path::new("k"), &stored.bytes, None).unwrap();
    let mut j =
        Journal::resume_on(Path::new("k"), &st, None, Box::new(lease.resume(&stored))).unwrap();
    j.append(done("D")).unwrap();
    assert_eq!(completed(&url, "k"), ["A", "B", "C", "D"]);
    // Success removes every frame.
    j.delete().unwrap();
    assert!(completed(&url, "k").is_empty());
    lease.release();
}

#[test]
fn a_held_key_is_refused_naming_the_holder_and_a_takeover_waits_for_expiry() {
    let Some(url) = db("store_held") else { return };
    let first = take(&url, "k", 1500, false);
    let e = Lease::acquire(
        Store::open(&url).unwrap(),
        spec("k", 1500),
        false,
        None,
        |_| {},
    )
    .err()
    .expect("held");
    let msg = e.to_string();
    assert!(
        msg.contains("another run holds it") && msg.contains("run-1500") && msg.contains("epoch 1"),
        "{msg}"
    );
    // The holder stops renewing (as if its machine died): the lease lapses.
    let mut first = first;
    first.stop_renewing();
    let t = std::time::Instant::now();
    let mut told = None;
    let second = Lease::acquire(
        Store::open(&url).unwrap(),
        spec("k", 1500),
        true,
        None,
        |h| told = Some(h.to_string()),
    )
    .unwrap();
    assert!(told.expect("told whom it waits for").contains("run-1500"));
    assert_eq!(second.epoch(), 2);
    assert!(
        t.elapsed() < Duration::from_millis(3000),
        "{:?}",
        t.elapsed()
    );
    // The first holder's hold ran out on its own clock, and its writes are fenced.
    assert!(first.check().is_err());
    second.release();
}

#[test]
fn a_holder_that_lost_its_lease_writes_nothing() {
    let Some(url) = db("store_fenced") else {
        return;
    };
    let mut old = take(&url, "k", 1000, false);
    let mut j = create(&old);
    j.append(done("A")).unwrap();
    // Paused longer than its lease: another run takes the key over...
    old.stop_renewing();
    std::thread::sleep(Duration::from_millis(1100));
    let new = take(&url, "k", 1000, true);
    // ...and the old holder's next write is refused, its journal stops.
    let e = chain(&j.append(done("B")).expect_err("fenced"));
    assert!(e.contains("lost its lease"), "{e}");
    assert!(j.append(done("C")).is_err());
    let why = old.why_lost().expect("lost");
    assert!(why.contains("epoch 2"), "{why}");
    assert_eq!(completed(&url, "k"), ["A"]);
    new.release();
}

#[test]
fn the_fence_refuses_a_write_even_when_the_local_clock_still_says_held() {
    // A holder whose own clock has not noticed (the renewal thread was
    // slow) still cannot write: the epoch is checked in the transaction.
    let Some(url) = db("store_fence_db") else {
        return;
    };
    let old = take(&url, "k", 60_000, false);
    let mut j = create(&old);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute(
        "UPDATE checkflow_lease SET epoch = epoch + 1, run_id = 'intruder'",
        &[],
    )
    .unwrap();
    let e = chain(&j.append(done("A")).expect_err("fenced"));
    assert!(e.contains("intruder"), "{e}");
    assert!(completed(&url, "k").is_empty());
}

#[test]
fn a_write_sent_again_after_its_commit_landed_is_not_stored_twice() {
    let Some(url) = db("store_idem") else { return };
    let lease = take(&url, "k", 5000, false);
    let mut f = lease.create(b"HEADER").unwrap();
    use checkflow_journal::Storage;
    f.write_all(b"ONE").unwrap();
    f.sync().unwrap();
    // The same frame at the same position again, as a retry after a lost
    // answer sends it: accepted, and one row.
    f.write_fenced(1, std::sync::Arc::new(b"ONE".to_vec()), false)
        .unwrap();
    let e = f
        .write_fenced(1, std::sync::Arc::new(b"TWO".to_vec()), false)
        .expect_err("differs");
    assert!(matches!(e, StoreError::Conflict { seq: 1, .. }), "{e}");
    let mut s = Store::open(&url).unwrap();
    assert_eq!(read(&mut s, "k").unwrap().unwrap().bytes, b"HEADERONE");
}

#[test]
fn bad_stores_fail_with_clear_errors() {
    let e = Store::open("not a url at all =").expect_err("bad url");
    assert!(
        e.to_string().contains("not a PostgreSQL connection string"),
        "{e}"
    );
    // Nothing listens on port 1 of the loopback.
    let e = Store::open("postgres://nobody:secret@127.0.0.1:1/x?connect_timeout=2")
        .expect_err("unreachable");
    let msg = e.to_string();
    assert!(
        msg.contains("127.0.0.1:1") && !msg.contains("secret"),
        "{msg}"
    );
    let Some(url) = db("store_newer") else { return };
    Store::open(&url).unwrap();
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute("UPDATE checkflow_store_version SET version = 99", &[])
        .unwrap();
    let e = Store::open(&url).expect_err("newer");
    assert!(e.to_string().contains("version 99"), "{e}");
}

#[test]
fn only_the_current_claim_of_a_run_may_end_it() {
    let Some(url) = db("store_claims") else {
        return;
    };
    let mut s = Store::open(&url).unwrap();
    let run = NewRun {
        queue: "q".into(),
        package_path: "/p.yaml".into(),
        package_hash: "h".into(),
        package_id: "pkg-1".into(),
        key: "k".into(),
        args: Vec::new(),
        config: None,
        restart: RestartPolicy::default(),
    };
    let id = s.submit(&run).unwrap();
    let mut a = Worker::new(Store::open(&url).unwrap(), "q", Duration::from_secs(30));
    let first = a.claim().unwrap().expect("claimed");
    assert_eq!((first.id, first.token, first.takeover), (id, 1, false));
    // Worker a stops renewing its claim; no run holds the key's lease: b
    // takes the run over with a new token.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute(
        "UPDATE checkflow_run SET claimed_until = now() - interval '1 s'",
        &[],
    )
    .unwrap();
    let mut b = Worker::new(Store::open(&url).unwrap(), "q", Duration::from_secs(30));
    let second = b.claim().unwrap().expect("taken over");
    assert_eq!(
        (second.token, second.takeover, second.attempts),
        (2, true, 1)
    );
    // a's run, still alive, finishes under its old claim: it ends nothing
    // and deletes no frame; a's worker cannot end it either.
    let mut lease = take(&url, "k", 5000, false);
    let mut j = create(&lease);
    j.append(done("A")).unwrap();
    let old = Claim { id, token: 1 };
    assert!(!lease.claim_is_current(old).unwrap());
    let end = RunEnd {
        exit_code: Some(0),
        ..Default::default()
    };
    assert_eq!(lease.end_run(old, end.clone(), true).unwrap(), None);
    assert_eq!(
        completed(&url, "k"),
        ["A"],
        "the frames stay for the current claim's run"
    );
    assert_eq!(a.finish(old, "k", |_| end.clone()).unwrap(), Ended::NotMine);
    // The current claim's run ends it, and its checkpoint with it.
    let new = Claim { id, token: 2 };
    assert_eq!(
        lease.end_run(new, end, true).unwrap(),
        Some(RunState::Succeeded)
    );
    assert!(completed(&url, "k").is_empty());
    // Its heartbeat does not take a run that ended for lost.
    assert!(b.heartbeat(&[new]).unwrap().is_empty());
    assert_eq!(a.heartbeat(&[old]).unwrap(), vec![old]);
}

/// A worker records the end of a run that could not: from whether the
/// run's checkpoint is in the store, read in the same transaction.
#[test]
fn a_worker_reads_whether_the_checkpoint_is_there_as_it_records_the_end() {
    let Some(url) = db("store_finish_kept") else {
        return;
    };
    let mut s = Store::open(&url).unwrap();
    let new_run = |key: &str| NewRun {
        queue: "q".into(),
        package_path: "/p.yaml".into(),
        package_hash: "h".into(),
        package_id: "pkg-1".into(),
        key: key.into(),
        args: Vec::new(),
        config: None,
        restart: RestartPolicy::default(),
    };
    let mut w = Worker::new(Store::open(&url).unwrap(), "q", Duration::from_secs(30));
    let seen = std::cell::Cell::new(None);
    let end_of = |kept: bool| {
        seen.set(Some(kept));
        RunEnd {
            exit_code: Some(0),
            hand_back: kept,
            ..Default::default()
        }
    };
    let claim = |c: &Claimed| Claim {
        id: c.id,
        token: c.token,
    };
    // No checkpoint under its key: it ends.
    s.submit(&new_run("other")).unwrap();
    let first = w.claim().unwrap().expect("claimed");
    assert_eq!(
        w.finish(claim(&first), "other", end_of).unwrap(),
        Ended::Wrote(RunState::Succeeded)
    );
    assert_eq!(seen.get(), Some(false));
    // Stopped with its checkpoint in the store: back to the queue.
    s.submit(&new_run("k")).unwrap();
    let second = w.claim().unwrap().expect("claimed");
    assert_eq!(second.key, "k", "{second:?}");
    let lease = take(&url, "k", 5000, false);
    create(&lease).append(done("A")).unwrap();
    lease.release();
    assert_eq!(
        w.finish(claim(&second), "k", end_of).unwrap(),
        Ended::Wrote(RunState::Queued)
    );
    assert_eq!(seen.get(), Some(true));
}
