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
