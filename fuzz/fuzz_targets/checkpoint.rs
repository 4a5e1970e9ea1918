//! Fuzz target `checkpoint`: damaged checkpoint files read with
//! `checkflow_journal::read`. Reading may fail, never panic or hang; and a
//! file that reads back must accept a new record and then read back again
//! (what a restart does with it).
//!
//! The first input byte picks how the file is made:
//!
//! - `0`: the rest of the input, as is;
//! - `1`: a valid checkpoint (written once with the journal API), with
//!   byte edits (flip, insert, delete, truncate) taken from the input;
//! - `2`: the same checkpoint split into frames, frame payloads edited and
//!   frames dropped, repeated or swapped, then framed again with valid
//!   checksums, so the edits reach the record decoder;
//! - `3`: one frame's payload replaced by the rest of the input (valid
//!   checksum), so the fuzzer writes records itself.

#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use checkflow_journal::{Entry, Journal, Key, NewHeader, RecordedOutcome, StoredValue, lock, read};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// The key the valid checkpoint is sealed with.
fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| Key::from_text("fuzz-key-0123456789abcdef"))
}

/// A folder for this process's files: in memory where possible, since every
/// append syncs.
fn work_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| checkflow_fuzz::scratch_dir("checkpoint"))
}

fn vars(pairs: &[(&str, StoredValue)]) -> BTreeMap<String, StoredValue> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}

/// A checkpoint holding every kind of record, plain and sealed values,
/// written by the journal itself.
fn valid_checkpoint() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = work_dir().join("valid.ckpt");
        let _ = std::fs::remove_file(&path);
        let header = NewHeader {
            package_id: "0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11".into(),
            package_name: "fuzz".into(),
            package_path: "/etl/fuzz.yaml".into(),
            config: vars(&[
                ("User::Server", StoredValue::plain(json!("db01"))),
                ("User::Password", StoredValue::sensitive(json!("hunter2"))),
            ]),
        };
        let guard = lock(&path).expect("lock the valid checkpoint");
        let mut j =
            Journal::create(&path, header, Some(key()), &guard).expect("create a checkpoint");
        let entries = [
            Entry::RunStarted {
                run_id: "run-1".into(),
            },
            Entry::Completed {
                path: "Stage".into(),
                outcome: RecordedOutcome::Success,
                fingerprint: "ab12".into(),
                duration_ms: 1500,
                vars: vars(&[
                    ("User::N", StoredValue::plain(json!(5))),
                    ("User::Rows", StoredValue::plain(json!([[1, "a"], [2, "b"]]))),
                    ("User::Token", StoredValue::sensitive(json!("s3cret"))),
                ]),
            },
            Entry::Iteration {
                loop_path: "Load/Each file".into(),
                key: "/data/in/1.csv".into(),
                vars: vars(&[("User::File", StoredValue::plain(json!("/data/in/1.csv")))]),
            },
            Entry::Vars {
                vars: vars(&[("User::When", StoredValue::plain(json!("2026-11-21 04:30:00")))]),
            },
            Entry::Completed {
                path: "Load/Soft".into(),
                outcome: RecordedOutcome::Failure,
                fingerprint: "cd34".into(),
                duration_ms: 7,
                vars: BTreeMap::new(),
            },
            Entry::Invalidate {
                path: "Load".into(),
            },
        ];
        j.append(entries[0].clone()).expect("append");
        j.append_all(entries[1..3].to_vec())
            .expect("append a group");
        for e in &entries[3..] {
            j.append(e.clone()).expect("append");
        }
        drop(j);
        drop(guard);
        let bytes = std::fs::read(&path).expect("read the valid checkpoint back");
        read(&path, Some(key())).expect("the valid checkpoint reads back");
        bytes
    })
}

/// CRC-32C of the length field then the payload, as `frame.rs` computes it.
fn frame(version: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    let mut out = b"CFJ".to_vec();
    out.push(version);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payloads of a well-formed file, in order.
fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]])
            as usize;
        out.push(bytes[at + 12..at + 12 + len].to_vec());
        at += 12 + len;
    }
    out
}

/// Applies byte edits, four input bytes each: op, position (u16), value.
fn edit(bytes: &mut Vec<u8>, ops: &[u8]) {
    for op in ops.chunks_exact(4) {
        let len = bytes.len().max(1);
        let at = usize::from(u16::from_le_bytes([op[1], op[2]])) % len;
        match op[0] % 4 {
            0 if !bytes.is_empty() => bytes[at] ^= op[3].max(1),
            1 => bytes.insert(at.min(bytes.len()), op[3]),
            2 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {}
        }
    }
}

/// Reads the file; if it reads, continues it as a restart would and reads it again.
fn check(bytes: &[u8]) {
    let path = work_dir().join("input.ckpt");
    std::fs::write(&path, bytes).expect("write the input");
    let _ = read(&path, None);
    let Ok(state) = read(&path, Some(key())) else {
        return;
    };
    if state.key_mismatch {
        return;
    }
    let guard = lock(&path).expect("lock the input");
    let Ok(mut j) = Journal::append_to(&path, &state, Some(key()), &guard) else {
        return;
    };
    if j.append(Entry::RunStarted {
        run_id: "fuzz-restart".into(),
    })
    .is_err()
    {
        return;
    }
    drop(j);
    if let Err(e) = read(&path, Some(key())) {
        panic!("a file that read back, once continued, no longer reads: {e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check(rest),
        1 => {
            let mut bytes = valid_checkpoint().to_vec();
            edit(&mut bytes, rest);
            check(&bytes);
        }
        2 => {
            let valid = valid_checkpoint();
            let mut frames = payloads(valid);
            for op in rest.chunks_exact(5) {
                let n = frames.len().max(1);
                let i = usize::from(op[0] >> 2) % n;
                match op[0] & 3 {
                    0 if !frames.is_empty() => edit(&mut frames[i], &op[1..5]),
                    1 if frames.len() > 1 => {
                        frames.remove(i);
                    }
                    2 if !frames.is_empty() && frames.len() < 64 => {
                        let f = frames[i].clone();
                        frames.insert(i, f);
                    }
                    3 if !frames.is_empty() => {
                        let j = usize::from(op[1]) % frames.len();
                        frames.swap(i, j);
                    }
                    _ => {}
                }
            }
            let bytes: Vec<u8> = frames.iter().flat_map(|p| frame(valid[3], p)).collect();
            check(&bytes);
        }
        _ => {
            let valid = valid_checkpoint();
            let mut frames = payloads(valid);
            let Some((&which, payload)) = rest.split_first() else {
                return;
            };
            let i = usize::from(which) % frames.len();
            frames[i] = payload.to_vec();
            let bytes: Vec<u8> = frames.iter().flat_map(|p| frame(valid[3], p)).collect();
            check(&bytes);
        }
    }
});
