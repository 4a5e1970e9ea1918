//! Reading the checkpoint ahead, on a second thread, while the package is
//! validated.

use crate::args::RunOpts;
use crate::config::effective_settings;
use checkflow_journal as journal;
use checkflow_model::Usage;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checkpoint read on a second thread while the package is validated (a
/// restart of a large package spends about as long in each). It is only a
/// guess made before the lock is taken: [`Prefetch::take`] hands it over only
/// if the file still holds exactly the bytes that were read (compared byte
/// for byte, which costs a small part of parsing them), and otherwise the
/// file is read again under the lock.
pub(crate) struct Prefetch {
    path: PathBuf,
    handle: std::thread::JoinHandle<Option<(journal::ResumeState, Vec<u8>)>>,
    /// Work for the thread once the checkpoint is read: the loaded package,
    /// whose task fingerprints it computes while validation runs. Sent at
    /// most once; the thread ends when it is sent or dropped.
    after: Option<std::sync::mpsc::Sender<Arc<Loaded>>>,
}

/// A loaded package and the fingerprints computed ahead for it.
pub(crate) struct Loaded {
    pub(crate) pkg: checkflow_model::LoadedPackage,
    pub(crate) fingerprints: checkflow_plan::FingerprintsAhead,
}

impl Prefetch {
    /// Starts reading the checkpoint the package names literally (or
    /// `--checkpoint-file`), if that file exists and may be read at all.
    pub(crate) fn start(
        def: &checkflow_model::PackageDef,
        dir: &Path,
        opts: &RunOpts,
    ) -> Option<Prefetch> {
        // The settings as validation will make them (same defaults).
        let c = def.checkpoint.as_ref();
        // A checkpoint in a store is read under its lease, not ahead.
        if opts.checkpoint_store.is_some() || c.is_some_and(|c| c.value.store.is_some()) {
            return None;
        }
        let usage = c.and_then(|c| c.value.usage).unwrap_or_default();
        if effective_settings(usage, false, opts).0 == Usage::Never {
            return None;
        }
        let path = match &opts.checkpoint_file {
            Some(p) => p.clone(),
            None => {
                let f = c?.value.file.as_ref()?;
                checkflow_plan::resolve_path(dir, &f.value)
            }
        };
        Prefetch::spawn(path)
    }

    /// Starts reading `path` on a second thread, if it is a file.
    pub(crate) fn spawn(path: PathBuf) -> Option<Prefetch> {
        // Only a file that is there, and not through a link or a FIFO (the
        // main read refuses those and says why).
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let p = path.clone();
        let (after, next) = std::sync::mpsc::channel::<Arc<Loaded>>();
        let handle = std::thread::Builder::new()
            .name("checkpoint-prefetch".into())
            .spawn(move || {
                // The state of exactly these bytes, kept to compare with the
                // file under the lock.
                let t = crate::timing::start();
                let bytes = checkflow_files::read(&p, checkflow_files::Links::Refuse).ok();
                let st = bytes.as_ref().and_then(|b| {
                    journal::read_bytes(&p, b, journal::Key::from_env().as_ref()).ok()
                });
                crate::timing::phase("checkpoint read ahead (second thread)", t);
                // What validation will ask for next.
                warm_up();
                // Then the task fingerprints, if the package loaded (the
                // sender is dropped otherwise).
                if let Ok(loaded) = next.recv() {
                    let t = crate::timing::start();
                    loaded.fingerprints.fill(&loaded.pkg.def);
                    crate::timing::phase("fingerprints ahead (second thread)", t);
                }
                Some((st?, bytes?))
            })
            .ok()?;
        Some(Prefetch {
            path,
            handle,
            after: Some(after),
        })
    }

    /// Hands the thread the loaded package (once): whether it took it.
    pub(crate) fn hand_over(&mut self, loaded: &Arc<Loaded>) -> bool {
        self.after
            .take()
            .is_some_and(|tx| tx.send(Arc::clone(loaded)).is_ok())
    }

    /// The state read ahead, if it is of `path` and the file still holds the
    /// bytes it was read from. (A run holds the lock by now, so the file
    /// cannot change after this check; `plan` takes no lock and reads a
    /// snapshot either way.)
    pub(crate) fn take(mut self, path: &Path) -> Option<journal::ResumeState> {
        if self.path != path {
            return None;
        }
        // No more work is coming: a thread still waiting for it ends.
        self.after = None;
        let (st, bytes) = self.handle.join().ok()??;
        holds_exactly(path, &bytes).then_some(st)
    }
}

/// Looks up, off the critical path, what a session asks the system for
/// once: the CPU count (validation's default for max_concurrent; it reads
/// cgroup files) and the local time zone (the run's start time; finding its
/// name walks the zoneinfo folder, about a millisecond here). Both are kept
/// for the process, so a later ask is free.
pub(crate) fn warm_up() {
    checkflow_plan::cpus();
    let _ = jiff::tz::TimeZone::try_system();
}

/// Whether the file at `path` holds exactly `expected`: read through one
/// small buffer, not into a second copy of the file (megabytes of fresh
/// memory for a large checkpoint).
fn holds_exactly(path: &Path, expected: &[u8]) -> bool {
    use std::io::Read;
    let Ok(mut f) = checkflow_files::open_read(path, checkflow_files::Links::Refuse) else {
        return false;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return at == expected.len(),
            Ok(n) => {
                if expected.get(at..at + n) != Some(&buf[..n]) {
                    return false;
                }
                at += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn completed(path: &str) -> journal::Entry {
        journal::Entry::Completed {
            path: path.into(),
            outcome: journal::RecordedOutcome::Success,
            fingerprint: "f".into(),
            duration_ms: 1,
            vars: BTreeMap::new(),
        }
    }

    /// A new checkpoint at `path` recording `task`, and the lock it is held by.
    fn journal_with(path: &Path, task: &str) -> (journal::Lock, journal::Journal) {
        let lock = journal::lock(path).expect("lock");
        let header = journal::NewHeader {
            package_id: "id".into(),
            package_name: "p".into(),
            package_path: "p.yaml".into(),
            config: BTreeMap::new(),
        };
        let mut j = journal::Journal::create(path, header, None, &lock).expect("create");
        j.append_all(vec![completed(task)]).expect("append");
        (lock, j)
    }

    /// Waits until the thread has read the file (it is given no package, so
    /// it ends there).
    fn wait(p: &mut Prefetch) {
        p.after = None;
        while !p.handle.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn a_prefetched_checkpoint_is_used_only_if_the_file_is_unchanged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.ckpt");
        let (_lock, mut j) = journal_with(&path, "A");

        // Unchanged: handed over, with what the file holds.
        let pf = Prefetch::spawn(path.clone()).expect("a file to read");
        let st = pf.take(&path).expect("unchanged, so used");
        assert!(st.completed.contains_key("A"));

        // Another path: not used.
        let pf = Prefetch::spawn(path.clone()).expect("a file to read");
        assert!(pf.take(&dir.path().join("other.ckpt")).is_none());

        // Appended to after it was read: not used (the caller reads again).
        let mut pf = Prefetch::spawn(path.clone()).expect("a file to read");
        wait(&mut pf);
        j.append_all(vec![completed("B")]).expect("append");
        assert!(pf.take(&path).is_none());

        // Not a journal: nothing to hand over; the caller's read reports it.
        std::fs::write(dir.path().join("junk.ckpt"), b"junk").expect("write");
        let pf = Prefetch::spawn(dir.path().join("junk.ckpt")).expect("a file");
        assert!(pf.take(&dir.path().join("junk.ckpt")).is_none());

        // No file: no thread.
        assert!(Prefetch::spawn(dir.path().join("none.ckpt")).is_none());
    }

    #[test]
    fn holds_exactly_compares_every_byte_and_the_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        // Larger than the comparison buffer, so more than one read.
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        assert!(holds_exactly(&path, &bytes));
        assert!(
            !holds_exactly(&path, &bytes[..bytes.len() - 1]),
            "file longer"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!holds_exactly(&path, &longer), "file shorter");
        let mut flipped = bytes.clone();
        flipped[150_000] ^= 1;
        assert!(!holds_exactly(&path, &flipped), "one byte differs");
        assert!(!holds_exactly(&dir.path().join("none"), &bytes), "no file");
    }

    /// (inode, length, mtime) would not identify the contents: the mtime can
    /// be set back (`cp -p`, `touch -r`, a restore), or not move on a file
    /// system with coarse times. The bytes are compared instead.
    #[test]
    fn a_prefetched_checkpoint_is_not_used_after_an_in_place_rewrite_that_keeps_its_mtime() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.ckpt");
        let other = dir.path().join("y.ckpt");
        journal_with(&path, "A");
        journal_with(&other, "B");
        let new_bytes = std::fs::read(&other).expect("read");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").len(),
            new_bytes.len() as u64,
            "same length, different records"
        );

        let mut pf = Prefetch::spawn(path.clone()).expect("a file to read");
        wait(&mut pf);
        let mtime = std::fs::metadata(&path)
            .expect("stat")
            .modified()
            .expect("mtime");
        std::fs::write(&path, &new_bytes).expect("rewrite in place");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .expect("set the mtime back");

        let used = pf.take(&path);
        assert!(
            used.as_ref()
                .is_none_or(|st| st.completed.contains_key("B")),
            "the prefetched state of the old contents was used: {:?}",
            used.map(|st| st.completed.keys().cloned().collect::<Vec<_>>())
        );
    }
}
