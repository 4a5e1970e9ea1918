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
    let text = serde_json::to_string(def).unwrap_or_default();
    hash_parts(&[&text], children)
}

/// SHA-256 of the parts, first 16 bytes in hex.
pub(crate) fn hash_parts(parts: &[&str], children: &[String]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    for c in children {
        h.update(c.as_bytes());
        h.update([1]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
