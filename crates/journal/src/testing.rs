//! Test support: a simulated disk that "crashes" at the Nth write or sync
//! (`CrashStorage`), and journals opened over it (`create`, `append_to`), so
//! crash tests outside this crate can run the engine on a disk they control.
//!
//! Not for production use: nothing here touches a file, and nothing here is
//! needed to write a real checkpoint. The disk model is the one in
//! docs/design/journal-format.md (section 2): bytes survive a crash if they
//! were synced; of the unsynced bytes after them, any prefix may survive,
//! with holes in it read back as zeros or as garbage.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::entry::NewHeader;
use crate::error::JournalError;
use crate::journal::Journal;
use crate::lock::Lock;
use crate::seal::Key;
use crate::state::ResumeState;
use crate::storage::Storage;

/// A deterministic xorshift64* generator, so failures reproduce from their
/// seed: the torn tails here, and the kill tests' timings (the end-to-end
/// tests use it too).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..=max`.
    pub fn upto(&mut self, max: usize) -> usize {
        (self.next() % (max as u64 + 1)) as usize
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The simulated disk behind a `CrashStorage`.
#[derive(Default)]
pub(crate) struct Disk {
    /// Everything written, synced or not.
    pub data: Vec<u8>,
    /// How many leading bytes of `data` are durable.
    pub synced: usize,
    /// Operations (write, sync, truncate) attempted so far.
    pub ops: usize,
    pub writes: usize,
    pub syncs: usize,
    /// The operation that fails (0-based).
    pub fail_at: Option<usize>,
    /// true: the failure is a crash (nothing works afterwards); false: only
    /// that one operation fails (an I/O error the journal must not ignore).
    pub crash: bool,
    pub crashed: bool,
    /// Whether a truncation that crashes took effect anyway.
    pub truncate_lands: bool,
    /// The error the failing operation returns (default: "injected failure").
    pub error: Option<fn() -> io::Error>,
}

impl Disk {
    /// What a crash at this moment leaves on disk: the synced bytes, then a
    /// prefix of the unsynced ones, damaged according to `style` (0: none of
    /// them, 1: all, 2: a random prefix, 3: with a zeroed hole, 4: with a
    /// garbage hole); styles 2 to 4 end in zeros half of the time.
    pub(crate) fn image(&self, rng: &mut Rng, style: u8) -> Vec<u8> {
        let unsynced = self.data.len() - self.synced;
        let keep = match style {
            0 => 0,
            1 => unsynced,
            _ => rng.upto(unsynced),
        };
        let mut img = self.data[..self.synced + keep].to_vec();
        if keep > 0 && style >= 3 {
            // A hole: sectors that never reached the disk, read back as
            // zeros (style 3) or stale garbage (style 4).
            let a = self.synced + rng.upto(keep - 1);
            let b = a + rng.upto(self.synced + keep - a - 1) + 1;
            for byte in &mut img[a..b] {
                *byte = if style == 3 { 0 } else { rng.next() as u8 };
            }
        }
        if style >= 2 && rng.upto(1) == 1 {
            // Zeros after it all: room the real journal wrote ahead of its
            // frames (`storage.rs`), or a length that grew without its data.
            img.resize(img.len() + rng.upto(5000), 0);
        }
        img
    }

    fn failure(&self) -> io::Error {
        match self.error {
            Some(make) => make(),
            None => io::Error::other("injected failure"),
        }
    }
}

/// Which of the unsynced bytes a crash image keeps (`CrashStorage::image`).
/// The three `Prefix` kinds end in zeros half of the time, as a real file
/// does after the room the journal writes ahead of its frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Only what was synced.
    Nothing,
    /// Everything written, synced or not.
    All,
    /// The synced bytes and a random prefix of the rest.
    Prefix,
    /// As `Prefix`, with a random run of the unsynced part read back as zeros.
    PrefixWithZeros,
    /// As `Prefix`, with a random run of the unsynced part read back as garbage.
    PrefixWithGarbage,
}

impl Tail {
    /// Every kind, mildest first.
    pub const ALL: [Tail; 5] = [
        Tail::Nothing,
        Tail::All,
        Tail::Prefix,
        Tail::PrefixWithZeros,
        Tail::PrefixWithGarbage,
    ];

    fn style(self) -> u8 {
        match self {
            Tail::Nothing => 0,
            Tail::All => 1,
            Tail::Prefix => 2,
            Tail::PrefixWithZeros => 3,
            Tail::PrefixWithGarbage => 4,
        }
    }
}

/// A simulated disk for one journal. Clones share the disk: give one to the
/// journal (`create`, `append_to`) and keep one to inspect it.
///
/// It counts operations — each write, sync and truncation is one — and can
/// make the Nth of them (counted from 1) either **crash** the disk (that
/// operation fails, and so does every later one, as if the machine died) or
/// merely **fail** (that one operation returns an error, e.g. ENOSPC, and the
/// disk works again afterwards).
#[derive(Clone)]
pub struct CrashStorage(pub(crate) Arc<Mutex<Disk>>);

impl Default for CrashStorage {
    fn default() -> Self {
        CrashStorage::new()
    }
}

impl CrashStorage {
    /// An empty disk that never fails.
    pub fn new() -> CrashStorage {
        CrashStorage::over(Vec::new())
    }

    /// A disk that crashes at its `n`th operation (counted from 1).
    pub fn crash_at(n: usize) -> CrashStorage {
        let s = CrashStorage::new();
        s.disk().fail_at = n.checked_sub(1);
        s
    }

    /// A disk whose `n`th operation (counted from 1) fails with `error()`;
    /// the ones before and after it work.
    pub fn fail_at(n: usize, error: fn() -> io::Error) -> CrashStorage {
        let s = CrashStorage::new();
        {
            let mut d = s.disk();
            d.fail_at = n.checked_sub(1);
            d.crash = false;
            d.error = Some(error);
        }
        s
    }

    /// A disk holding `data`, all of it synced (a file found after a crash).
    /// Nothing fails on it unless set with `then_crash_at`.
    pub fn holding(data: Vec<u8>) -> CrashStorage {
        CrashStorage::over(data)
    }

    /// Makes the `n`th operation from now (counted from 1) crash the disk.
    pub fn then_crash_at(self, n: usize) -> CrashStorage {
        {
            let mut d = self.disk();
            d.fail_at = n.checked_sub(1).map(|k| d.ops + k);
            d.crash = true;
        }
        self
    }

    pub(crate) fn over(data: Vec<u8>) -> CrashStorage {
        let synced = data.len();
        CrashStorage(Arc::new(Mutex::new(Disk {
            data,
            synced,
            crash: true,
            ..Disk::default()
        })))
    }

    pub(crate) fn disk(&self) -> MutexGuard<'_, Disk> {
        // A test that panicked while holding the disk leaves it consistent
        // (every operation updates it under the lock in one step).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Operations attempted so far (writes, syncs and truncations).
    pub fn ops(&self) -> usize {
        self.disk().ops
    }

    /// Writes attempted so far.
    pub fn writes(&self) -> usize {
        self.disk().writes
    }

    /// Syncs attempted so far.
    pub fn syncs(&self) -> usize {
        self.disk().syncs
    }

    /// Whether the disk has crashed.
    pub fn crashed(&self) -> bool {
        self.disk().crashed
    }

    /// Every byte written, synced or not.
    pub fn written(&self) -> Vec<u8> {
        self.disk().data.clone()
    }

    /// The bytes that are durable.
    pub fn synced(&self) -> Vec<u8> {
        let d = self.disk();
        d.data[..d.synced].to_vec()
    }

    /// What a crash at this moment leaves on disk: the synced bytes, then
    /// the unsynced ones as `tail` says; `seed` picks the random prefix and
    /// hole, so an image can be made again.
    pub fn image(&self, tail: Tail, seed: u64) -> Vec<u8> {
        self.disk().image(&mut Rng::new(seed), tail.style())
    }

    /// Counts an operation; `Err` if the disk is down or this one fails
    /// (`Err(true)`: this operation is the one that fails).
    fn begin(d: &mut Disk) -> Result<(), bool> {
        if d.crashed {
            return Err(false);
        }
        let op = d.ops;
        d.ops += 1;
        if d.fail_at == Some(op) {
            d.crashed = d.crash;
            return Err(true);
        }
        Ok(())
    }
}

impl Storage for CrashStorage {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut d = self.disk();
        d.writes += 1;
        match CrashStorage::begin(&mut d) {
            Ok(()) => {
                d.data.extend_from_slice(buf);
                Ok(())
            }
            Err(this_op) => {
                // A write interrupted by a crash may have reached the page
                // cache whole; `image` decides how much of it survives.
                if this_op {
                    d.data.extend_from_slice(buf);
                }
                Err(d.failure())
            }
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut d = self.disk();
        d.syncs += 1;
        if CrashStorage::begin(&mut d).is_err() {
            return Err(d.failure());
        }
        d.synced = d.data.len();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut d = self.disk();
        let len = len as usize;
        match CrashStorage::begin(&mut d) {
            Ok(()) => {}
            Err(true) if d.truncate_lands => {}
            Err(_) => return Err(d.failure()),
        }
        // set_len + sync_all: the new length and everything before it are durable.
        d.data.truncate(len);
        d.synced = d.data.len();
        if d.crashed {
            return Err(d.failure());
        }
        Ok(())
    }

    fn size(&mut self) -> io::Result<u64> {
        Ok(self.disk().data.len() as u64)
    }

    fn continue_at(&mut self, len: u64) {
        // The file's zeros after `len` read back as no bytes at all, so the
        // model drops them; like the real call, this is not an operation.
        let mut d = self.disk();
        let len = len as usize;
        assert!(
            d.data[len.min(d.data.len())..].iter().all(|&b| b == 0),
            "continue_at over bytes that are not zeros"
        );
        d.data.truncate(len);
        d.synced = d.synced.min(len);
    }

    fn remove(self: Box<Self>, name: &Path) -> io::Result<()> {
        // As the real journal's: the file at the checkpoint's name goes (the
        // simulated disk's crashes are about its writes and syncs).
        drop(self);
        crate::storage::remove_file_durably(name)
    }
}

/// `Journal::create` over `storage` instead of a file: the header frame is
/// put on the disk, synced, without counting as an operation — the real
/// `create` is atomic (a rename), so a crash inside it leaves no new file and
/// needs no simulation. `storage` must be empty. Requires the lock for `path`,
/// as `Journal::create` does; nothing is written at `path`.
pub fn create(
    path: &Path,
    header: NewHeader,
    key: Option<&Key>,
    lock: &Lock,
    storage: &CrashStorage,
) -> Result<Journal, JournalError> {
    lock.covers(path)?;
    Journal::create_on(path, header, key, |bytes| {
        let mut d = storage.disk();
        assert!(d.data.is_empty(), "create needs an empty CrashStorage");
        d.data = bytes.to_vec();
        d.synced = d.data.len();
        Ok(Box::new(storage.clone()))
    })
}

/// `Journal::append_to` over `storage` (which holds the file `state` was
/// read from, e.g. `CrashStorage::holding(bytes)`): checks the key and the
/// length, cuts the torn tail, then appends. Requires the lock for `path`.
pub fn append_to(
    path: &Path,
    state: &ResumeState,
    key: Option<&Key>,
    lock: &Lock,
    storage: &CrashStorage,
) -> Result<Journal, JournalError> {
    lock.covers(path)?;
    Journal::resume_on(path, state, key, Box::new(storage.clone()))
}
