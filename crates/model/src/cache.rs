//! The package cache's codec: a loaded [`PackageDef`] as JSON in the faithful
//! form (every field, every position; see [`crate::spanned`]), so that a
//! package whose bytes have not changed is read back in a few milliseconds
//! instead of being parsed again. Where the bytes are kept, and how they are
//! checked, is the caller's business (`checkflow-cli`'s package cache).
//!
//! The bytes are two JSON documents on two lines: the package without its
//! tasks, then the tasks. The first is small, so whatever depends on the
//! package-level settings alone (reading its checkpoint ahead) can start
//! before the tasks are decoded.

use crate::defs::{PackageDef, TaskDef};
use crate::spanned::{Spanned, faithful};

/// The package as cache bytes.
pub fn encode(def: &mut PackageDef) -> Result<Vec<u8>, serde_json::Error> {
    let tasks = std::mem::take(&mut def.tasks);
    let head = faithful(|| serde_json::to_vec(&*def));
    def.tasks = tasks;
    let mut out = head?;
    // Compact JSON has no raw newline (one inside a string is escaped).
    out.push(b'\n');
    faithful(|| serde_json::to_writer(&mut out, &def.tasks))?;
    Ok(out)
}

/// The package-level fields from cache bytes (its `tasks` empty), and the
/// bytes that hold the tasks.
pub fn decode_head(bytes: &[u8]) -> Result<(PackageDef, &[u8]), serde_json::Error> {
    let Some(nl) = bytes.iter().position(|b| *b == b'\n') else {
        return Err(serde::de::Error::custom("no line break after the package"));
    };
    let head: PackageDef = faithful(|| serde_json::from_slice(&bytes[..nl]))?;
    if !head.tasks.is_empty() {
        return Err(serde::de::Error::custom("tasks in the package line"));
    }
    Ok((head, &bytes[nl + 1..]))
}

/// The tasks from the second part of cache bytes.
pub fn decode_tasks(bytes: &[u8]) -> Result<Vec<Spanned<Box<TaskDef>>>, serde_json::Error> {
    faithful(|| serde_json::from_slice(bytes))
}

/// A package from cache bytes that [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<PackageDef, serde_json::Error> {
    let (mut def, rest) = decode_head(bytes)?;
    def.tasks = decode_tasks(rest)?;
    Ok(def)
}
