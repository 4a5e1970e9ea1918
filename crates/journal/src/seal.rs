//! Sealing sensitive values: `Key`, the per-file key derivation and XChaCha20-Poly1305.
//!
//! The file key is `SHA-256("checkflow-journal-key-v1" || 0x00 || salt || key text)`,
//! where `salt` is 16 random bytes stored in the header. Each value is sealed
//! with a fresh random 24-byte nonce and AAD `package id || 0x00 || variable name`,
//! so a ciphertext cannot be moved to another variable or package unnoticed.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The environment variable the key is read from.
pub const KEY_ENV: &str = "CHECKFLOW_KEY";

/// The only algorithm name written in sealed values.
pub(crate) const ALG: &str = "xchacha20poly1305";

const KDF_DOMAIN: &[u8] = b"checkflow-journal-key-v1";
const KEY_CHECK_DOMAIN: &[u8] = b"checkflow-key-check";
const KEY_CHECK_PLAINTEXT: &[u8] = b"checkflow key check v1";

/// The secret that sensitive values are sealed with (the text of `CHECKFLOW_KEY`).
///
/// It is never printed: `Debug` shows `Key(..)`.
#[derive(Clone)]
pub struct Key {
    text: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// The key from `CHECKFLOW_KEY`; `None` if the variable is unset, empty or not UTF-8.
    pub fn from_env() -> Option<Key> {
        match std::env::var(KEY_ENV) {
            Ok(s) if !s.is_empty() => Some(Key::from_text(&s)),
            _ => None,
        }
    }

    /// A key from its text, as it would be given in `CHECKFLOW_KEY`.
    pub fn from_text(s: &str) -> Key {
        Key {
            text: s.as_bytes().to_vec(),
        }
    }
}

/// A sealed value as stored on disk: `{"alg": "xchacha20poly1305", "nonce": hex, "ct": hex}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SealedBox {
    pub alg: String,
    pub nonce: String,
    pub ct: String,
}

/// The key of one file: the user's key stretched with the file's salt.
pub(crate) struct FileKey {
    cipher: XChaCha20Poly1305,
}

impl FileKey {
    pub(crate) fn derive(key: &Key, salt: &[u8]) -> FileKey {
        let mut h = Sha256::new();
        h.update(KDF_DOMAIN);
        h.update([0u8]);
        h.update(salt);
        h.update(&key.text);
        let digest = h.finalize();
        FileKey {
            cipher: XChaCha20Poly1305::new(&digest),
        }
    }

    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<SealedBox, String> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| "sealing a sensitive value failed".to_string())?;
        Ok(SealedBox {
            alg: ALG.to_string(),
            nonce: hex(&nonce),
            ct: hex(&ct),
        })
    }

    /// The plaintext, or `None` if the box does not open with this key and AAD.
    pub(crate) fn open(&self, aad: &[u8], sealed: &SealedBox) -> Option<Vec<u8>> {
        if sealed.alg != ALG {
            return None;
        }
        let nonce = unhex(&sealed.nonce)?;
        if nonce.len() != 24 {
            return None;
        }
        let ct = unhex(&sealed.ct)?;
        self.cipher
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad })
            .ok()
    }

    /// The sealed constant stored in the header, so a wrong key is reported once.
    pub(crate) fn key_check(&self, package_id: &str) -> Result<SealedBox, String> {
        self.seal(&key_check_aad(package_id), KEY_CHECK_PLAINTEXT)
    }

    pub(crate) fn matches(&self, package_id: &str, check: &SealedBox) -> bool {
        self.open(&key_check_aad(package_id), check).as_deref() == Some(KEY_CHECK_PLAINTEXT)
    }
}

/// AAD of a variable's value: package id, a zero byte, the variable's name.
pub(crate) fn value_aad(package_id: &str, name: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(package_id.len() + 1 + name.len());
    aad.extend_from_slice(package_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(name.as_bytes());
    aad
}

fn key_check_aad(package_id: &str) -> Vec<u8> {
    let mut aad = KEY_CHECK_DOMAIN.to_vec();
    aad.push(0);
    aad.extend_from_slice(package_id.as_bytes());
    aad
}

/// 16 random bytes from the operating system.
pub(crate) fn random_salt() -> Result<[u8; 16], String> {
    let mut salt = [0u8; 16];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| format!("no randomness for the key salt: {e}"))?;
    Ok(salt)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)), Some(bytes));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn sealed_value_opens_only_with_same_key_salt_and_aad() {
        let k = FileKey::derive(&Key::from_text("secret"), b"salt-salt-salt-1");
        let b = k.seal(b"pkg\0User::Pw", b"\"hunter2\"").expect("seal");
        assert_eq!(b.alg, ALG);
        assert_eq!(
            k.open(b"pkg\0User::Pw", &b).as_deref(),
            Some(&b"\"hunter2\""[..])
        );
        assert_eq!(k.open(b"pkg\0User::Other", &b), None);
        let other_salt = FileKey::derive(&Key::from_text("secret"), b"salt-salt-salt-2");
        assert_eq!(other_salt.open(b"pkg\0User::Pw", &b), None);
        let other_key = FileKey::derive(&Key::from_text("Secret"), b"salt-salt-salt-1");
        assert_eq!(other_key.open(b"pkg\0User::Pw", &b), None);
    }

    #[test]
    fn key_check_tells_keys_apart() {
        let k = FileKey::derive(&Key::from_text("a"), b"s");
        let check = k.key_check("pkg").expect("seal");
        assert!(k.matches("pkg", &check));
        assert!(!k.matches("other-pkg", &check));
        assert!(!FileKey::derive(&Key::from_text("b"), b"s").matches("pkg", &check));
    }

    #[test]
    fn key_debug_does_not_print_the_key() {
        assert_eq!(format!("{:?}", Key::from_text("topsecret")), "Key(..)");
    }
}
