//! `Journal`: the writer. Creates a checkpoint atomically, appends one frame
//! per `append`/`append_all` and syncs it before returning, and refuses all
//! further work after a failed write or sync.

use std::path::{Path, PathBuf};

use crate::FORMAT_VERSION;
use crate::entry::{Entry, NewHeader};
use crate::error::JournalError;
use crate::frame;
use crate::fsutil;
use crate::lock::Lock;
use crate::record::{HeaderRecord, Payload, Sealer};
use crate::seal::{FileKey, Key, hex, random_salt};
use crate::state::ResumeState;
use crate::storage::{FileStorage, Storage};
use crate::time::now_rfc3339;

/// An open checkpoint that records can be appended to.
pub struct Journal {
    path: PathBuf,
    storage: Box<dyn Storage>,
    sealer: Sealer,
    version: u8,
    pid: u32,
    host: String,
    /// Set by the first failed write or sync; every later append fails with it.
    poisoned: Option<String>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// The version byte written in every frame by this build.
pub(crate) fn version_byte() -> u8 {
    u8::try_from(FORMAT_VERSION).expect("FORMAT_VERSION fits in the frame's version byte")
}

fn encode_error(path: &Path, reason: impl Into<String>) -> JournalError {
    JournalError::Encode {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The header frame for a new file, and the sealer its records will use.
pub(crate) fn header_frame(
    path: &Path,
    header: &NewHeader,
    key: Option<&Key>,
) -> Result<(Vec<u8>, Sealer), JournalError> {
    let salt = random_salt().map_err(|e| encode_error(path, e))?;
    let sealer = Sealer {
        package_id: header.package_id.clone(),
        key: key.map(|k| FileKey::derive(k, &salt)),
    };
    let key_check = match &sealer.key {
        Some(k) => Some(
            k.key_check(&header.package_id)
                .map_err(|e| encode_error(path, e))?,
        ),
        None => None,
    };
    let record = HeaderRecord {
        created_at: now_rfc3339(),
        package_id: header.package_id.clone(),
        package_name: header.package_name.clone(),
        package_path: header.package_path.clone(),
        writer: concat!("checkflow-journal ", env!("CARGO_PKG_VERSION")).to_string(),
        salt: hex(&salt),
        key_check,
        config: sealer
            .vars(header.config.clone())
            .map_err(|e| encode_error(path, e))?,
    };
    let payload = serde_json::to_vec(&Payload::Header(record))
        .map_err(|e| encode_error(path, format!("encoding the header failed: {e}")))?;
    let bytes = frame::encode(version_byte(), &payload).map_err(|e| encode_error(path, e))?;
    Ok((bytes, sealer))
}

impl Journal {
    /// Starts a new checkpoint file, replacing any existing one atomically. Requires the lock.
    ///
    /// With a key, sensitive values are sealed; without, they are written as
    /// omitted. The key is fixed here for the life of the file.
    pub fn create(
        path: &Path,
        header: NewHeader,
        key: Option<&Key>,
        lock: &Lock,
    ) -> Result<Journal, JournalError> {
        lock.covers(path)?;
        let (bytes, sealer) = header_frame(path, &header, key)?;
        let file = fsutil::create_atomically(path, &bytes)?;
        let storage = FileStorage::new(file, bytes.len() as u64)
            .map_err(|e| JournalError::io("open checkpoint", path, e))?;
        Ok(Journal::from_parts(
            path,
            Box::new(storage),
            sealer,
            version_byte(),
        ))
    }

    /// Continues an existing file after `read`: truncates the torn tail (if
    /// any), then appends after the last frame. Requires the lock.
    ///
    /// Fails if the file's length is not the one `read` saw (it changed in
    /// between), or if `key` does not match the key the file was created with.
    /// A file created without a key stays keyless: its sensitive values are
    /// still written as omitted.
    pub fn append_to(
        path: &Path,
        state: &ResumeState,
        key: Option<&Key>,
        lock: &Lock,
    ) -> Result<Journal, JournalError> {
        lock.covers(path)?;
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true);
        // Never through a link: a link put at the checkpoint's name since
        // `read` must not lead the appends into its target.
        let storage = checkflow_files::open(&opts, path, checkflow_files::Links::Refuse)
            .and_then(|file| FileStorage::new(file, state.valid_len))
            .map_err(|e| JournalError::io("open checkpoint", path, e))?;
        Journal::resume_on(path, state, key, Box::new(storage))
    }

    /// A new checkpoint on a storage of the caller's (a shared store):
    /// `install` receives the header frame and must put it in place of
    /// whatever the checkpoint held, atomically and durably, and return the
    /// storage the records are then appended to. `name` names the
    /// checkpoint in errors. The caller holds the checkpoint (a lock or a
    /// lease of its own).
    pub fn create_on(
        name: &Path,
        header: NewHeader,
        key: Option<&Key>,
        install: impl FnOnce(&[u8]) -> Result<Box<dyn Storage>, JournalError>,
    ) -> Result<Journal, JournalError> {
        let (bytes, sealer) = header_frame(name, &header, key)?;
        let storage = install(&bytes)?;
        Ok(Journal::from_parts(name, storage, sealer, version_byte()))
    }

    /// `append_to` on any storage, holding the checkpoint `state` was read
    /// from: checks the key and the length, cuts the torn tail.
    pub fn resume_on(
        path: &Path,
        state: &ResumeState,
        key: Option<&Key>,
        mut storage: Box<dyn Storage>,
    ) -> Result<Journal, JournalError> {
        let package_id = state.header.package_id.clone();
        let file_key = match (key, &state.file.key_check) {
            (Some(k), Some(check)) => {
                let fk = FileKey::derive(k, &state.file.salt);
                if !fk.matches(&package_id, check) {
                    return Err(JournalError::KeyMismatch {
                        path: path.to_path_buf(),
                    });
                }
                Some(fk)
            }
            _ => None,
        };
        let len = storage
            .size()
            .map_err(|e| JournalError::io("read the length of checkpoint", path, e))?;
        if len != state.file.len {
            return Err(JournalError::Stale {
                path: path.to_path_buf(),
                reason: format!("{len} bytes now, {} when read", state.file.len),
            });
        }
        if state.torn_tail_bytes > 0 {
            storage
                .truncate(state.valid_len)
                .map_err(|e| JournalError::io("truncate the torn tail of checkpoint", path, e))?;
        } else if len > state.valid_len {
            // Only zeros follow the frames (written ahead, `storage.rs`).
            storage.continue_at(state.valid_len);
        }
        Ok(Journal::from_parts(
            path,
            storage,
            Sealer {
                package_id,
                key: file_key,
            },
            state.file.version,
        ))
    }

    pub(crate) fn from_parts(
        path: &Path,
        storage: Box<dyn Storage>,
        sealer: Sealer,
        version: u8,
    ) -> Journal {
        Journal {
            path: path.to_path_buf(),
            storage,
            sealer,
            version,
            pid: std::process::id(),
            host: fsutil::hostname(),
            poisoned: None,
        }
    }

    /// Appends one record; it is durable (synced) when this returns `Ok`.
    pub fn append(&mut self, entry: Entry) -> Result<(), JournalError> {
        self.append_all(vec![entry])
    }

    /// Appends several records as one frame with one sync (group commit):
    /// after a crash, either all of them are in the file or none is.
    pub fn append_all(&mut self, entries: Vec<Entry>) -> Result<(), JournalError> {
        if let Some(cause) = &self.poisoned {
            return Err(JournalError::Poisoned {
                path: self.path.clone(),
                cause: cause.clone(),
            });
        }
        if entries.is_empty() {
            return Ok(());
        }
        // Encoding happens before any byte is written, so its failures leave
        // the file as it was and do not poison the journal.
        let records = entries
            .into_iter()
            .map(|e| self.sealer.record(e, self.pid, &self.host))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| encode_error(&self.path, e))?;
        let payload = serde_json::to_vec(&Payload::Records {
            at: now_rfc3339(),
            records,
        })
        .map_err(|e| encode_error(&self.path, format!("encoding records failed: {e}")))?;
        let bytes =
            frame::encode(self.version, &payload).map_err(|e| encode_error(&self.path, e))?;

        if let Err(e) = self.storage.write_all(&bytes) {
            self.poisoned = Some(format!("write failed: {e}"));
            return Err(JournalError::io("write to checkpoint", &self.path, e));
        }
        // After a failed fsync the kernel may have dropped the dirty pages
        // and cleared the error; retrying could "succeed" without the data.
        if let Err(e) = self.storage.sync() {
            self.poisoned = Some(format!("sync failed: {e}"));
            return Err(JournalError::io("sync checkpoint", &self.path, e));
        }
        Ok(())
    }

    /// The checkpoint's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True once a write or sync failed; every append fails from then on.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.is_some()
    }

    /// The package succeeded: remove the file and make the removal durable.
    pub fn delete(self) -> Result<(), JournalError> {
        let Journal { path, storage, .. } = self;
        storage
            .remove(&path)
            .map_err(|e| JournalError::io("delete checkpoint", &path, e))
    }
}

/// Removes the checkpoint at `path`, which the caller holds the lock of, and
/// makes the removal durable: for a run that restarted from the file without
/// writing to it (`save: false`) and succeeded.
pub fn delete(path: &Path, _held: &Lock) -> Result<(), JournalError> {
    crate::storage::remove_file_durably(path)
        .map_err(|e| JournalError::io("delete checkpoint", path, e))
}
