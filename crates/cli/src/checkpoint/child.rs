//! The checkpoints of a child package run by a parent's task: one per task,
//! loop iteration and parent execution (docs/design/commit-protocols.md §4).

use crate::session::failed_to;
use checkflow_journal as journal;
use std::path::{Path, PathBuf};

/// The checkpoint file of a child run by a parent's task (`--child-of KEY`):
/// `KEY` inserted before the extension (`child.ckpt` -> `child.KEY.ckpt`).
pub(crate) fn child_checkpoint_path(p: &Path, key: &str) -> PathBuf {
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, p.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}.{key}.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}.{key}"),
        (None, _) => key.to_string(),
    };
    p.with_file_name(name)
}

/// Removes the checkpoints that other parent executions of the same task in
/// the same iteration left beside `mine` (a child that failed, then a parent
/// that went on without it, or a parent started over): no run will resume
/// them, since the parent execution they belong to is over. One another run
/// holds is left alone.
pub(crate) fn remove_stale_child_checkpoints(mine: &Path, key: &str, warnings: &mut Vec<String>) {
    let (Some(dir), Some(name)) = (mine.parent(), mine.file_name()) else {
        return;
    };
    let name = name.to_string_lossy();
    let Some((instance, _)) = key.split_once('-') else {
        return;
    };
    let Some(at) = name.find(key) else {
        return;
    };
    let (head, tail) = (&name[..at], &name[at + key.len()..]);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let other = e.file_name().to_string_lossy().into_owned();
        let Some(mid) = other
            .strip_prefix(head)
            .and_then(|r| r.strip_suffix(tail))
            .and_then(|r| r.strip_prefix(instance))
            .and_then(|r| r.strip_prefix('-'))
        else {
            continue;
        };
        if other == name || mid.is_empty() || !mid.bytes().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        let path = dir.join(&other);
        let removed = journal::lock(&path).and_then(|held| journal::delete(&path, &held));
        if let Err(e) = removed
            && !matches!(e, journal::JournalError::Locked { .. })
        {
            warnings.push(failed_to(&e));
        }
    }
}
