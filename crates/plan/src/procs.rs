//! Which run on which checkpoint a task's processes belong to: the tag they
//! carry in their environment, so that a later run on the same checkpoint can
//! find the ones a killed run left behind (the search itself is in
//! `checkflow-tasks`).
//!
//! A run that holds a checkpoint's lock is the only run on that checkpoint.
//! Every process a task of such a run starts, and every process those start,
//! inherits [`TAG_ENV`] holding `TAG@RUN`: `TAG` names the checkpoint and the
//! task (a hash of the canonical checkpoint path and the task's path, the
//! same in every run), `RUN` is the run's id. A live process whose tag is one
//! of ours but whose run is not can only be a leftover of an earlier run
//! that was killed. The tag costs no write to disk: the process carries its
//! own record from the moment it exists.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// The environment variable that carries the tags of a process. A process
/// started inside another tagged one (a child package's task, checkflow run
/// by a `process` task) adds its own entry after the inherited ones,
/// separated by a space, so every run above it can still find it.
pub const TAG_ENV: &str = "CHECKFLOW_PROCESS_TAG";

/// The processes of one run on one checkpoint.
pub struct ProcessScope {
    /// A hash of the canonical checkpoint path (hex).
    checkpoint: String,
    run_id: String,
    /// Leftovers found by the one search of this run, by tag: `None` until a
    /// task asks, then each task takes its own entry out.
    found: Mutex<Option<HashMap<String, Vec<u32>>>>,
}

impl ProcessScope {
    /// The scope of run `run_id` on the checkpoint at `checkpoint`, whose lock
    /// the run holds. The path is made canonical (its folder exists once the
    /// lock is taken), so that two spellings of one file give one tag.
    pub fn new(checkpoint: &Path, run_id: &str) -> ProcessScope {
        let canonical = match (checkpoint.parent(), checkpoint.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::fs::canonicalize(dir)
                    .map(|d| d.join(name))
                    .unwrap_or_else(|_| checkpoint.to_path_buf())
            }
            _ => checkpoint.to_path_buf(),
        };
        let h = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        ProcessScope {
            checkpoint: hex(&h[..8]),
            run_id: run_id.to_string(),
            found: Mutex::new(None),
        }
    }

    /// The tag of the task at `path` on this checkpoint: the same in every
    /// run on it.
    pub fn tag(&self, path: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.checkpoint.as_bytes());
        h.update([0]);
        h.update(path.as_bytes());
        format!("{}-{}", self.checkpoint, hex(&h.finalize()[..8]))
    }

    /// The entry a process of the task at `path` carries in [`TAG_ENV`].
    pub fn entry(&self, path: &str) -> String {
        format!("{}@{}", self.tag(path), self.run_id)
    }

    /// Whether `entry` (one item of a [`TAG_ENV`] value) is a tag of this
    /// checkpoint set by another run; if so, the tag.
    pub fn leftover_tag<'e>(&self, entry: &'e str) -> Option<&'e str> {
        let (tag, run) = entry.split_once('@')?;
        let ours = tag
            .strip_prefix(self.checkpoint.as_str())
            .is_some_and(|rest| rest.starts_with('-'));
        (ours && run != self.run_id).then_some(tag)
    }

    /// The leftovers found by this run's search, filled by the first task
    /// that asks.
    pub fn found(&self) -> &Mutex<Option<HashMap<String, Vec<u32>>>> {
        &self.found
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_stable_across_runs_and_a_leftover_is_another_runs_tag_of_this_checkpoint() {
        let dir = std::env::temp_dir();
        let a1 = ProcessScope::new(&dir.join("a.ckpt"), "run1");
        let a2 = ProcessScope::new(&dir.join("./a.ckpt"), "run2");
        let b = ProcessScope::new(&dir.join("b.ckpt"), "run1");
        assert_eq!(a1.tag("\\Package\\Load"), a2.tag("\\Package\\Load"));
        assert_ne!(a1.tag("\\Package\\Load"), a1.tag("\\Package\\Other"));
        assert_ne!(a1.tag("\\Package\\Load"), b.tag("\\Package\\Load"));
        let old = a1.entry("\\Package\\Load");
        assert_eq!(
            a2.leftover_tag(&old),
            Some(a1.tag("\\Package\\Load").as_str())
        );
        assert_eq!(a1.leftover_tag(&old), None, "our own run");
        assert_eq!(b.leftover_tag(&old), None, "another checkpoint");
        assert_eq!(a2.leftover_tag("garbage"), None);
    }
}
