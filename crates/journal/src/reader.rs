//! Reading a checkpoint: bytes -> frames -> records -> `ResumeState`.
//!
//! 1. The first frame must be a valid header of a version we read.
//! 2. Every later frame is a batch of records, applied in order.
//! 3. Zeros after the last frame are room written ahead (`storage.rs`), not
//!    data. A bad frame with no valid frame after it is a torn tail: dropped
//!    and reported. A bad frame with a valid frame after it is corruption: an
//!    error naming the byte offset. Reading never changes the file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::FORMAT_VERSION;
use crate::error::JournalError;
use crate::frame::{self, MAGIC_PREFIX};
use crate::record::{HeaderRecord, Opener, Payload, Record};
use crate::seal::{FileKey, Key, unhex};
use crate::state::{FileFacts, HeaderInfo, ResumeState};

/// Reads a checkpoint without changing it (for `checkpoint show`, `plan`, and before a restart).
pub fn read(path: &Path, key: Option<&Key>) -> Result<ResumeState, JournalError> {
    // Not through a link (a checkpoint is always a file checkflow renamed
    // into place), and never blocking on a FIFO.
    let bytes = checkflow_files::read(path, checkflow_files::Links::Refuse)
        .map_err(|e| JournalError::io("read checkpoint", path, e))?;
    parse(path, &bytes, key)
}

/// Reads checkpoint bytes the caller already holds (`path` only names the
/// file in errors), as [`read`] reads the file's.
pub fn read_bytes(
    path: &Path,
    bytes: &[u8],
    key: Option<&Key>,
) -> Result<ResumeState, JournalError> {
    parse(path, bytes, key)
}

/// Whether the file at `path` starts as every checkflow checkpoint does (its
/// magic bytes), whatever its format version and whether or not it is whole.
/// Reads three bytes; changes nothing. Decides whether a file may be replaced
/// by a new checkpoint.
pub fn is_checkpoint(path: &Path) -> Result<bool, JournalError> {
    use std::io::Read;
    let mut start = [0u8; MAGIC_PREFIX.len()];
    let mut file =
        std::fs::File::open(path).map_err(|e| JournalError::io("read checkpoint", path, e))?;
    match file.read_exact(&mut start) {
        Ok(()) => Ok(start == MAGIC_PREFIX),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(JournalError::io("read checkpoint", path, e)),
    }
}

fn not_a_checkpoint(path: &Path, reason: impl Into<String>) -> JournalError {
    JournalError::NotACheckpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// A file's version and header, and where its first record frame starts.
pub(crate) struct Head {
    pub version: u8,
    pub header: HeaderRecord,
    pub frames_at: usize,
}

/// Where the record frames of a file end.
pub(crate) struct FramesEnd {
    pub valid_len: u64,
    pub torn_tail_bytes: u64,
}

/// The records of each frame of a file, in order, stopping at a torn tail
/// (for tests of what a file holds; a restart applies each frame as it is
/// read instead).
#[cfg(test)]
pub(crate) fn record_frames(path: &Path, bytes: &[u8]) -> Result<Vec<Vec<Record>>, JournalError> {
    let head = read_head(path, bytes)?;
    let mut frames = Vec::new();
    read_frames(path, bytes, &head, |_, _, records| {
        frames.push(records);
        Ok(())
    })?;
    Ok(frames)
}

/// Checks a file's magic and version and reads its header.
pub(crate) fn read_head(path: &Path, bytes: &[u8]) -> Result<Head, JournalError> {
    if bytes.len() < 4 || bytes[..3] != MAGIC_PREFIX {
        return Err(not_a_checkpoint(
            path,
            "it does not start with the checkpoint magic",
        ));
    }
    // The version byte is checked before anything else: a newer format may
    // frame its records differently.
    let version = bytes[3];
    if u32::from(version) > FORMAT_VERSION {
        return Err(JournalError::NewerFormat {
            path: path.to_path_buf(),
            found: u32::from(version),
            supported: FORMAT_VERSION,
        });
    }
    if version == 0 {
        return Err(not_a_checkpoint(path, "format version 0"));
    }

    // The header is written by an atomic rename, so it is never torn: any
    // damage to it is an error, never a torn tail.
    let (payload, frames_at) = frame::decode_at(bytes, 0, version).map_err(|e| {
        not_a_checkpoint(path, format!("the first record is not a valid header: {e}"))
    })?;
    let header = match serde_json::from_slice::<Payload>(payload) {
        Ok(Payload::Header(h)) => h,
        Ok(Payload::Records { .. }) => {
            return Err(not_a_checkpoint(path, "the first record is not a header"));
        }
        Err(e) => {
            return Err(not_a_checkpoint(
                path,
                format!("the header does not decode: {e}"),
            ));
        }
    };
    Ok(Head {
        version,
        header,
        frames_at,
    })
}

/// Calls `each(offset, at, records)` with every record frame after the
/// header, in order, as it is read: a restart holds one frame at a time, not
/// the whole file's records. Stops at the zeros written ahead or at a torn
/// tail; a bad frame with a valid one after it is an error.
pub(crate) fn read_frames(
    path: &Path,
    bytes: &[u8],
    head: &Head,
    mut each: impl FnMut(u64, String, Vec<Record>) -> Result<(), JournalError>,
) -> Result<FramesEnd, JournalError> {
    let version = head.version;
    let mut off = head.frames_at;
    let mut torn_tail_bytes = 0u64;
    while off < bytes.len() {
        match frame::decode_at(bytes, off, version) {
            Ok((payload, next)) => {
                // The checksum matched, so these are the bytes that were
                // written: failing to decode them is never a torn write.
                let corrupt = |reason: String| JournalError::Corrupt {
                    path: path.to_path_buf(),
                    offset: off as u64,
                    reason,
                };
                // Checked as UTF-8 once, not string by string as
                // `from_slice` does: most of a frame is strings.
                let text = std::str::from_utf8(payload)
                    .map_err(|e| corrupt(format!("the record is not UTF-8: {e}")))?;
                // Almost every frame is one `completed` record in the
                // writer's own layout: read directly, the rest by serde.
                let (at, records) = match crate::quick::records_frame(text) {
                    Some(quick) => quick,
                    None => match serde_json::from_str::<Payload>(text) {
                        Ok(Payload::Records { at, records }) => (at, records),
                        Ok(Payload::Header(_)) => {
                            return Err(corrupt("a second header".to_string()));
                        }
                        Err(e) => {
                            return Err(corrupt(format!("the record does not decode: {e}")));
                        }
                    },
                };
                each(off as u64, at, records)?;
                off = next;
            }
            Err(bad) => {
                // Zeros written ahead of the frames (`storage.rs`), and any a
                // crash left in their place, are not part of any frame.
                let used = off + nonzero_len(&bytes[off..]);
                if used == off {
                    break;
                }
                // Only the last append can be unsynced at a crash, and one
                // append is one frame; so a valid frame after a bad one means
                // the bad one was once whole: corruption, not a torn write.
                if let Some(later) = frame::valid_frame_after(&bytes[..used], off, version) {
                    return Err(JournalError::Corrupt {
                        path: path.to_path_buf(),
                        offset: off as u64,
                        reason: format!("{bad}; a valid record follows at byte {later}"),
                    });
                }
                torn_tail_bytes = (used - off) as u64;
                break;
            }
        }
    }
    Ok(FramesEnd {
        valid_len: off as u64,
        torn_tail_bytes,
    })
}

/// The length of `bytes` without its trailing zeros.
pub(crate) fn nonzero_len(bytes: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let mut end = bytes.len();
    // Whole blocks first: OR-ing a fixed-size block compiles to a few vector
    // instructions, so megabytes of zeros written ahead cost well under a
    // millisecond.
    while end >= BLOCK && bytes[end - BLOCK..end].iter().fold(0u8, |a, &b| a | b) == 0 {
        end -= BLOCK;
    }
    while end > 0 && bytes[end - 1] == 0 {
        end -= 1;
    }
    end
}

/// Reads checkpoint bytes into a `ResumeState`; `path` is for messages.
pub(crate) fn parse(
    path: &Path,
    bytes: &[u8],
    key: Option<&Key>,
) -> Result<ResumeState, JournalError> {
    let head = read_head(path, bytes)?;
    let h = &head.header;
    let salt =
        unhex(&h.salt).ok_or_else(|| not_a_checkpoint(path, "the header's salt is not hex"))?;

    let file_key = key.map(|k| FileKey::derive(k, &salt));
    let (key_mismatch, usable_key) = match (file_key, &h.key_check) {
        (Some(k), Some(check)) => {
            if k.matches(&h.package_id, check) {
                (false, Some(k))
            } else {
                (true, None)
            }
        }
        // Written without a key: nothing in it is sealed, any key "matches".
        _ => (false, None),
    };
    let opener = Opener {
        package_id: &h.package_id,
        key: usable_key,
    };
    let config = opener
        .restore_all(&h.config)
        .map_err(|reason| JournalError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        })?;

    let mut state = ResumeState {
        header: HeaderInfo {
            format_version: u32::from(head.version),
            package_id: h.package_id.clone(),
            package_name: h.package_name.clone(),
            package_path: h.package_path.clone(),
            created_at: h.created_at.clone(),
            config,
        },
        completed: BTreeMap::new(),
        completed_order: Vec::new(),
        iterations: BTreeMap::new(),
        tx_intents: BTreeMap::new(),
        vars: BTreeMap::new(),
        vars_set_by_tasks: BTreeSet::new(),
        record_counts: BTreeMap::new(),
        runs: 0,
        run_history: Vec::new(),
        last_written_at: None,
        torn_tail_bytes: 0,
        valid_len: 0,
        key_mismatch,
        file: FileFacts {
            version: head.version,
            salt,
            key_check: h.key_check.clone(),
            len: bytes.len() as u64,
        },
    };
    let end = read_frames(path, bytes, &head, |offset, at, records| {
        for r in records {
            state
                .apply(&at, r, &opener)
                .map_err(|reason| JournalError::Corrupt {
                    path: path.to_path_buf(),
                    offset,
                    reason,
                })?;
        }
        state.last_written_at = Some(at);
        Ok(())
    })?;
    state.torn_tail_bytes = end.torn_tail_bytes;
    state.valid_len = end.valid_len;
    Ok(state)
}
