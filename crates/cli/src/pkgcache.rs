//! The package cache: a large package whose bytes have not changed since an
//! earlier run is not parsed again (parsing YAML is most of a restart's
//! start-up; see BENCHMARKS.md).
//!
//! - **Where:** `$CHECKFLOW_CACHE_DIR`, else `$XDG_CACHE_HOME/checkflow/packages`,
//!   else `~/.cache/checkflow/packages`. `CHECKFLOW_CACHE_DIR=off` (or empty)
//!   turns it off. The folder is created private (0700), entries 0600.
//! - **What:** one file per package text, named by the SHA-256 of the cache
//!   format, checkflow's version and the text. It holds a header line (format,
//!   that key, the payload's length and CRC-32C), the parsed package
//!   (`checkflow_model::cache`, positions included) and, on a line of its
//!   own, the fingerprint of every task
//!   (`checkflow_plan::FingerprintsAhead::kept_form`): a restart of a large
//!   package then need not hash every task again.
//! - **Trust:** an entry is used only if its header names the same key and its
//!   payload has the stated length and checksum and decodes; anything else
//!   is ignored and the text parsed as usual. A cache can make a start-up
//!   faster, never different.
//! - **Writes** go to a temporary file renamed into place (no fsync: a torn
//!   entry fails its checksum). Only texts of at least [`MIN_BYTES`] are kept
//!   (smaller ones parse in a few milliseconds), and at most [`MAX_ENTRIES`]
//!   entries: the least recently used go first.

use checkflow_files::Links;
use checkflow_model::{PackageDef, ParsedStore};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Texts smaller than this are not cached.
pub const MIN_BYTES: usize = 64 * 1024;
/// Entries kept at most.
pub const MAX_ENTRIES: usize = 32;
/// The header's first word; changes when the codec's output changes.
/// (It names the fingerprints' form too: entries keep fingerprints.)
const MAGIC: &str = "checkflow-package-cache-4";

/// The task fingerprints kept with a package, as
/// [`checkflow_plan::FingerprintsAhead::kept_form`] wrote them (and
/// [`checkflow_plan::FingerprintsAhead::from_kept`] checks them).
pub type Fingerprints = Vec<u8>;

/// The package cache in one folder.
pub struct PackageCache {
    dir: PathBuf,
    /// The fingerprints of the package last read or written.
    fingerprints: RefCell<Option<Fingerprints>>,
}

impl PackageCache {
    /// The cache the environment asks for, or `None` when it is turned off or
    /// there is no home folder to keep it in.
    pub fn from_env() -> Option<PackageCache> {
        let dir = match std::env::var_os("CHECKFLOW_CACHE_DIR") {
            Some(d) if d.is_empty() || d == "off" => return None,
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
                Some(d) => PathBuf::from(d).join("checkflow").join("packages"),
                None => PathBuf::from(std::env::var_os("HOME").filter(|d| !d.is_empty())?)
                    .join(".cache")
                    .join("checkflow")
                    .join("packages"),
            },
        };
        Some(PackageCache::at(dir))
    }

    /// A cache in this folder.
    pub fn at(dir: impl Into<PathBuf>) -> PackageCache {
        PackageCache {
            dir: dir.into(),
            fingerprints: RefCell::new(None),
        }
    }

    /// The task fingerprints kept with the package this cache last gave
    /// back or kept, once.
    pub fn take_fingerprints(&self) -> Option<Fingerprints> {
        self.fingerprints.take()
    }

    fn key(text: &str) -> String {
        let mut h = Sha256::new();
        h.update(MAGIC.as_bytes());
        h.update([0]);
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    fn read(&self, key: &str, head: &mut dyn FnMut(&PackageDef)) -> Option<PackageDef> {
        let path = self.entry(key);
        // Not through a link, and never blocking on a FIFO put in the folder.
        let bytes = checkflow_files::read(&path, Links::Refuse).ok()?;
        let payload = check(&bytes, key)?;
        let (mut def, rest) = checkflow_model::cache::decode_head(payload).ok()?;
        head(&def);
        // The fingerprints are the last line (compact JSON, above it, has
        // no raw line break in a string).
        let nl = rest.iter().rposition(|b| *b == b'\n')?;
        def.tasks = checkflow_model::cache::decode_tasks(&rest[..nl]).ok()?;
        *self.fingerprints.borrow_mut() = Some(rest[nl + 1..].to_vec());
        // Least recently *used* goes first: a hit counts as a use.
        if let Ok(f) = checkflow_files::open(fs::File::options().append(true), &path, Links::Refuse)
        {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(def)
    }

    fn write(&self, key: &str, def: &mut PackageDef) -> std::io::Result<()> {
        let mut payload = checkflow_model::cache::encode(def).map_err(std::io::Error::other)?;
        let fingerprints = checkflow_plan::FingerprintsAhead::kept_form(def);
        payload.push(b'\n');
        payload.extend_from_slice(&fingerprints);
        *self.fingerprints.borrow_mut() = Some(fingerprints);
        create_private_dir(&self.dir)?;
        let header = format!(
            "{MAGIC} {key} {} {:08x}\n",
            payload.len(),
            crc32c::crc32c(&payload)
        );
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        // Created new (never through a link): if that fails, the name holds
        // nothing of ours to clean up.
        let mut f = private_file(&tmp)?;
        let written = (|| {
            f.write_all(header.as_bytes())?;
            f.write_all(&payload)?;
            // The rename moves whatever the name holds now: only the file
            // just written. (A link at the entry's name is replaced, not
            // written through.)
            if !checkflow_files::same_file(&f, &tmp) {
                return Err(std::io::Error::other("the temporary file was replaced"));
            }
            fs::rename(&tmp, self.entry(key))
        })();
        if written.is_err() && checkflow_files::same_file(&f, &tmp) {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        self.evict();
        Ok(())
    }

    /// Removes the least recently used entries beyond [`MAX_ENTRIES`].
    fn evict(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = rd
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        let excess = entries.len() - MAX_ENTRIES;
        for (_, path) in entries.into_iter().take(excess) {
            let _ = fs::remove_file(path);
        }
    }
}

/// The payload of an entry, if its header names `key` and the payload has the
/// stated length and checksum.
fn check<'a>(bytes: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let nl = bytes.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..nl]).ok()?;
    let payload = &bytes[nl + 1..];
    let mut words = header.split(' ');
    let ok = words.next() == Some(MAGIC)
        && words.next() == Some(key)
        && words.next()?.parse::<usize>().ok()? == payload.len()
        && u32::from_str_radix(words.next()?, 16).ok()? == crc32c::crc32c(payload)
        && words.next().is_none();
    ok.then_some(payload)
}

impl ParsedStore for PackageCache {
    fn get(&self, text: &str, head: &mut dyn FnMut(&PackageDef)) -> Option<PackageDef> {
        if text.len() < MIN_BYTES {
            return None;
        }
        self.read(&Self::key(text), head)
    }

    fn put(&self, text: &str, def: &mut PackageDef) {
        if text.len() < MIN_BYTES {
            return;
        }
        // A cache that cannot be written (read-only home, full disk) only
        // means the next start-up parses again.
        let _ = self.write(&Self::key(text), def);
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

fn private_file(path: &Path) -> std::io::Result<fs::File> {
    let mut o = fs::File::options();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    checkflow_files::open(&o, path, Links::Refuse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A package text over [`MIN_BYTES`].
    fn big_text(tasks: usize) -> String {
        let mut t = String::from("id: 7a1c0d7e-0000-4000-8000-000000000001\nname: big\ntasks:\n");
        for i in 0..tasks {
            t.push_str(&format!(
                "  - {{ name: T{i}, type: expression, expr: '1 == 1' }}\n"
            ));
        }
        assert!(t.len() >= MIN_BYTES);
        t
    }

    fn parse(text: &str) -> PackageDef {
        checkflow_model::parse(Path::new("big.yaml"), text).expect("parses")
    }

    fn only_entry(dir: &Path) -> PathBuf {
        let entries: Vec<_> = fs::read_dir(dir).expect("dir").flatten().collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].path()
    }

    #[test]
    fn an_entry_gives_back_the_parsed_package() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PackageCache::at(dir.path().join("c"));
        let text = big_text(2000);
        assert!(cache.get(&text, &mut |_| {}).is_none());
        let mut def = parse(&text);
        cache.put(&text, &mut def);
        let back = cache.get(&text, &mut |_| {}).expect("a hit");
        assert_eq!(format!("{back:?}"), format!("{def:?}"));
        // Another text (one byte more) is another entry.
        assert!(cache.get(&format!("{text}\n"), &mut |_| {}).is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&dir.path().join("c")), 0o700);
            assert_eq!(mode(&only_entry(&dir.path().join("c"))), 0o600);
        }
    }

    #[test]
    fn task_fingerprints_are_kept_with_the_package() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PackageCache::at(dir.path());
        let text = big_text(2000);
        let mut def = parse(&text);
        let fresh = checkflow_plan::FingerprintsAhead::kept_form(&def);
        assert_eq!(fresh.len(), 2000 * 32);
        cache.put(&text, &mut def);
        assert_eq!(cache.take_fingerprints().as_ref(), Some(&fresh), "kept");
        assert!(cache.take_fingerprints().is_none(), "given once");
        let back = cache.get(&text, &mut |_| {}).expect("a hit");
        assert_eq!(
            cache.take_fingerprints().as_ref(),
            Some(&fresh),
            "read back"
        );
        assert!(
            checkflow_plan::FingerprintsAhead::from_kept(&back, fresh.clone()).is_some(),
            "they fit the package"
        );
        assert_eq!(checkflow_plan::FingerprintsAhead::kept_form(&back), fresh);
    }

    #[test]
    fn small_texts_are_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PackageCache::at(dir.path());
        let text = "id: x\nname: small\n";
        cache.put(text, &mut parse(text));
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 0);
    }

    #[test]
    fn a_damaged_entry_is_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PackageCache::at(dir.path());
        let text = big_text(2000);
        cache.put(&text, &mut parse(&text));
        let entry = only_entry(dir.path());
        let good = fs::read(&entry).expect("read");
        let nl = good.iter().position(|b| *b == b'\n').expect("header");
        // A flipped bit in a task's name, the payload cut short, a header for
        // another key: each is a miss, not a wrong package.
        let name = nl
            + 1
            + good[nl + 1..]
                .windows(4)
                .position(|w| w == b"T150")
                .expect("T150");
        let mut flipped = good.clone();
        flipped[name + 1] ^= 0x01;
        let cut = good[..good.len() - 10].to_vec();
        let mut other_key = good.clone();
        other_key[MAGIC.len() + 1] ^= 0x01;
        for bad in [flipped, cut, other_key, b"".to_vec(), b"\n".to_vec()] {
            fs::write(&entry, &bad).expect("write");
            assert!(cache.get(&text, &mut |_| {}).is_none());
        }
        fs::write(&entry, &good).expect("write");
        assert!(cache.get(&text, &mut |_| {}).is_some());
    }

    #[test]
    fn the_least_recently_used_entries_go_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = PackageCache::at(dir.path());
        let base = big_text(1700);
        let mut def = parse(&base);
        let texts: Vec<String> = (0..=MAX_ENTRIES)
            .map(|i| format!("{base}# {i}\n"))
            .collect();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for (i, t) in texts.iter().enumerate().take(MAX_ENTRIES) {
            cache.put(t, &mut def);
            // Entry 0 is the oldest; entry 1 was used last.
            let f = fs::File::options()
                .append(true)
                .open(cache.entry(&PackageCache::key(t)))
                .expect("open");
            f.set_modified(old + std::time::Duration::from_secs(i as u64))
                .expect("mtime");
        }
        assert!(cache.get(&texts[1], &mut |_| {}).is_some());
        cache.put(&texts[MAX_ENTRIES], &mut def);
        assert!(
            cache.get(&texts[0], &mut |_| {}).is_none(),
            "the oldest is gone"
        );
        for t in &texts[1..] {
            assert!(cache.get(t, &mut |_| {}).is_some());
        }
    }
}
