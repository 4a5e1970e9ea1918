//! Fingerprints: a hash of every field that affects what an executable does.
//!
//! Left out: `name` (it is in the path), `description`, `after` and
//! `after_logic` (they decide *when* it runs, not what it does) and `tasks`
//! (children contribute their own fingerprints instead).

use checkflow_model::TaskDef;
use sha2::{Digest, Sha256};

/// The fingerprint of a definition whose children have `children` fingerprints.
pub(crate) fn fingerprint(def: &TaskDef, children: &[String]) -> String {
    // `TaskDef`'s Serialize leaves out the fields that do not affect what it
    // does and the unset ones; fields come in declaration order, so the text
    // is canonical.
    let mut h = Sha256::new();
    // Writing into the hasher cannot fail; a serialization error would leave
    // the text short, as `unwrap_or_default` on a string did.
    let _ = serde_json::to_writer(HashWriter(&mut h), def);
    h.update([0]);
    finish(h, children)
}

/// Fingerprints of the definitions without children (tasks, and empty
/// containers), computed ahead by another thread while validation runs: in a
/// restart of a large package, hashing every task is a fifth of validation,
/// and the thread that read the checkpoint is idle by then.
///
/// Slots follow the pre-order of the package's definitions, which is also
/// the order of node ids when validation succeeds. Each slot remembers the
/// definition it was computed from, and validation uses a slot only for that
/// same definition; any other is computed as before. Validation walks its
/// own way and marks what it computed, the helper walks from the other end
/// and skips what is already there, so they meet and little is hashed twice.
pub struct FingerprintsAhead {
    slots: Vec<std::sync::OnceLock<(usize, String)>>,
    stop: std::sync::atomic::AtomicBool,
    /// Fingerprints kept with the package, if it came with them.
    kept: Option<Kept>,
}

/// Fingerprints kept with a package: for each slot, the address of its
/// definition and 32 bytes (hex digits, or [`NOT_A_LEAF`]).
struct Kept {
    defs: Vec<usize>,
    bytes: Vec<u8>,
}

/// A container's place in the kept form.
const NOT_A_LEAF: &[u8; 32] = b"--------------------------------";

impl FingerprintsAhead {
    /// Empty slots for every definition of `pkg`.
    pub fn new(pkg: &checkflow_model::PackageDef) -> FingerprintsAhead {
        FingerprintsAhead {
            slots: (0..crate::build::count_defs(&pkg.tasks))
                .map(|_| std::sync::OnceLock::new())
                .collect(),
            stop: std::sync::atomic::AtomicBool::new(false),
            kept: None,
        }
    }

    /// Fills the slots of `pkg`'s definitions without children, last first,
    /// until every slot is filled or validation no longer needs them. `pkg`
    /// must be the package [`FingerprintsAhead::new`] was given.
    pub fn fill(&self, pkg: &checkflow_model::PackageDef) {
        if self.kept.is_some() {
            return;
        }
        let mut defs = Vec::with_capacity(self.slots.len());
        preorder(&pkg.tasks, &mut |d| defs.push(d));
        for (slot, d) in self.slots.iter().zip(&defs).rev() {
            if self.stop.load(std::sync::atomic::Ordering::Relaxed) {
                return;
            }
            if is_leaf(d) && slot.get().is_none() {
                let fp = fingerprint(d, &[]);
                let _ = slot.set((key(d), fp));
            }
        }
    }

    /// The fingerprints of `pkg`'s definitions without children in the form
    /// [`FingerprintsAhead::from_kept`] takes back (the package cache keeps it
    /// with the package): 32 hex digits per definition in pre-order, 32 `-`
    /// for a container.
    pub fn kept_form(pkg: &checkflow_model::PackageDef) -> Vec<u8> {
        let mut out = Vec::with_capacity(crate::build::count_defs(&pkg.tasks) * 32);
        preorder(&pkg.tasks, &mut |d| {
            if is_leaf(d) {
                out.extend_from_slice(fingerprint(d, &[]).as_bytes());
            } else {
                out.extend_from_slice(NOT_A_LEAF);
            }
        });
        out
    }

    /// Fingerprints of `pkg` from those kept with this very package, in the
    /// form [`FingerprintsAhead::kept_form`] gave: validation then uses them
    /// instead of hashing every task again, and [`FingerprintsAhead::fill`]
    /// has nothing to do (nor any slot to fill). Bytes that do not fit
    /// (another length, anything but lower-case hex digits where a task is,
    /// or other than `-` where a container is) are refused whole: `None`, and
    /// the fingerprints are computed as usual.
    pub fn from_kept(
        pkg: &checkflow_model::PackageDef,
        kept: Vec<u8>,
    ) -> Option<FingerprintsAhead> {
        let count = crate::build::count_defs(&pkg.tasks);
        if kept.len() != count * 32 {
            return None;
        }
        let mut defs = Vec::with_capacity(count);
        let mut fits = true;
        preorder(&pkg.tasks, &mut |d| {
            let i = defs.len() * 32;
            let fp = &kept[i..i + 32];
            fits &= if is_leaf(d) {
                fp.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            } else {
                fp == NOT_A_LEAF
            };
            defs.push(key(d));
        });
        fits.then(|| FingerprintsAhead {
            slots: Vec::new(),
            stop: std::sync::atomic::AtomicBool::new(false),
            kept: Some(Kept { defs, bytes: kept }),
        })
    }

    /// The fingerprint of `def`, the definition at pre-order position
    /// `index`, with no children: from its slot if it was computed from this
    /// definition, else computed now (and the slot marked).
    pub(crate) fn leaf(&self, index: usize, def: &TaskDef) -> String {
        if let Some(k) = &self.kept
            && k.defs.get(index) == Some(&key(def))
        {
            let fp = &k.bytes[index * 32..index * 32 + 32];
            if fp != NOT_A_LEAF {
                // Checked by `from_kept`: ASCII hex digits.
                return String::from_utf8_lossy(fp).into_owned();
            }
        }
        match self.slots.get(index) {
            Some(slot) => match slot.get() {
                Some((k, fp)) if *k == key(def) => fp.clone(),
                Some(_) => fingerprint(def, &[]),
                None => {
                    let fp = fingerprint(def, &[]);
                    let _ = slot.set((key(def), fp.clone()));
                    fp
                }
            },
            None => fingerprint(def, &[]),
        }
    }

    /// Validation has every fingerprint it needs: the helper may stop.
    pub(crate) fn done(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A definition's identity while the package is borrowed: its address.
fn key(d: &TaskDef) -> usize {
    d as *const TaskDef as usize
}

fn is_leaf(d: &TaskDef) -> bool {
    d.tasks.as_ref().is_none_or(|t| t.is_empty())
}

/// Calls `each` with every definition, parents before their children.
fn preorder<'a>(
    defs: &'a [checkflow_model::Spanned<Box<TaskDef>>],
    each: &mut dyn FnMut(&'a TaskDef),
) {
    for d in defs {
        each(&d.value);
        if let Some(children) = &d.value.tasks {
            preorder(children, each);
        }
    }
}

/// Feeds serialized bytes straight into the hash (no intermediate string).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// SHA-256 of the parts, first 16 bytes in hex.
pub(crate) fn hash_parts(parts: &[&str], children: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    finish(h, children)
}

fn finish(mut h: Sha256, children: &[String]) -> String {
    for c in children {
        h.update(c.as_bytes());
        h.update([1]);
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(32);
    for b in &h.finalize()[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fingerprints are stored in checkpoints: the streamed hash must equal
    /// the hash of the serialized text that earlier versions computed.
    #[test]
    fn streamed_fingerprint_equals_the_hash_of_the_serialized_text() {
        let yaml = "id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: p\ntasks:\n  - { name: A, type: process, command: \"echo hi\", retries: 2, env: { X: '1' } }\n";
        let pkg = checkflow_model::parse(std::path::Path::new("p.yaml"), yaml).expect("a package");
        let def = &pkg.tasks[0].value;
        let children = vec!["00ff".to_string(), "abcd".to_string()];
        let text = serde_json::to_string(def).expect("json");
        assert_eq!(fingerprint(def, &children), hash_parts(&[&text], &children));
        assert_eq!(fingerprint(def, &[]), hash_parts(&[&text], &[]));
        // The hex form: 16 bytes, lower case.
        let fp = fingerprint(def, &[]);
        assert_eq!(fp.len(), 32);
        assert!(
            fp.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(
            hash_parts(&["package"], &[]),
            Sha256::digest(b"package\0")[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
    }
}
