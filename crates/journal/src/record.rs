//! `Record`: the on-disk form of frame payloads, and the `Sealer`/`Opener`
//! that turn engine values into stored ones and back.
//!
//! A payload is one JSON object tagged by `"kind"`: the first frame holds a
//! `"header"`, every later frame a `"records"` batch (one append = one frame,
//! so a group append is all-or-nothing). See docs/design/journal-format.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, Outcome, VarValue};
use crate::seal::{FileKey, SealedBox, value_aad};
use crate::state::Restored;

/// A variable's value on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stored {
    /// `{"clear": <json>}`: a value that is not sensitive.
    Clear(serde_json::Value),
    /// `{"sealed": {"alg", "nonce", "ct"}}`: a sensitive value, encrypted.
    Sealed(SealedBox),
    /// `"omitted"`: a sensitive value written without a key.
    Omitted,
}

/// The payload of one frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Payload {
    /// Always the first frame, and only there.
    Header(HeaderRecord),
    /// Every later frame: what one `append` or `append_all` wrote.
    Records { at: String, records: Vec<Record> },
}

/// The header: which package the file belongs to, and how its values are sealed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct HeaderRecord {
    pub created_at: String,
    pub package_id: String,
    pub package_name: String,
    pub package_path: String,
    /// "checkflow-journal <version>", for people reading a file.
    pub writer: String,
    /// 16 random bytes, hex: mixed into the file key.
    pub salt: String,
    /// A sealed constant, present when the file was created with a key.
    pub key_check: Option<SealedBox>,
    pub config: BTreeMap<String, Stored>,
}

/// One record inside a `records` frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Record {
    RunStarted {
        run_id: String,
        pid: u32,
        host: String,
    },
    Completed {
        path: String,
        outcome: Outcome,
        fingerprint: String,
        duration_ms: u64,
        vars: BTreeMap<String, Stored>,
    },
    Iteration {
        loop_path: String,
        key: String,
        vars: BTreeMap<String, Stored>,
    },
    Vars {
        vars: BTreeMap<String, Stored>,
    },
    Invalidate {
        path: String,
    },
    TxCommitting {
        path: String,
        marker: String,
        connections: Vec<String>,
    },
}

/// Turns engine values into stored ones: sensitive values are sealed, or
/// omitted when the file has no key.
pub(crate) struct Sealer {
    pub package_id: String,
    pub key: Option<FileKey>,
}

impl Sealer {
    pub(crate) fn stored(&self, name: &str, v: &VarValue) -> Result<Stored, String> {
        if !v.sensitive {
            return Ok(Stored::Clear(v.value.clone()));
        }
        let Some(key) = &self.key else {
            return Ok(Stored::Omitted);
        };
        let plain = serde_json::to_vec(&v.value)
            .map_err(|e| format!("encoding the value of {name} failed: {e}"))?;
        Ok(Stored::Sealed(
            key.seal(&value_aad(&self.package_id, name), &plain)?,
        ))
    }

    pub(crate) fn vars(
        &self,
        vars: &BTreeMap<String, VarValue>,
    ) -> Result<BTreeMap<String, Stored>, String> {
        vars.iter()
            .map(|(k, v)| Ok((k.clone(), self.stored(k, v)?)))
            .collect()
    }

    pub(crate) fn record(&self, entry: Entry, pid: u32, host: &str) -> Result<Record, String> {
        Ok(match entry {
            Entry::RunStarted { run_id } => Record::RunStarted {
                run_id,
                pid,
                host: host.to_string(),
            },
            Entry::Completed {
                path,
                outcome,
                fingerprint,
                duration_ms,
                vars,
            } => Record::Completed {
                path,
                outcome,
                fingerprint,
                duration_ms,
                vars: self.vars(&vars)?,
            },
            Entry::Iteration {
                loop_path,
                key,
                vars,
            } => Record::Iteration {
                loop_path,
                key,
                vars: self.vars(&vars)?,
            },
            Entry::Vars { vars } => Record::Vars {
                vars: self.vars(&vars)?,
            },
            Entry::Invalidate { path } => Record::Invalidate { path },
            Entry::TxCommitting {
                path,
                marker,
                connections,
            } => Record::TxCommitting {
                path,
                marker,
                connections,
            },
        })
    }
}

/// Turns stored values back into `Restored` ones. `key` is set only when the
/// caller's key matched the file's key check.
pub(crate) struct Opener<'a> {
    pub package_id: &'a str,
    pub key: Option<FileKey>,
}

impl Opener<'_> {
    /// The restored value; an error only when a sealed value does not open
    /// although the key check passed (the file was tampered with).
    pub(crate) fn restore(&self, name: &str, s: &Stored) -> Result<Restored, String> {
        match s {
            Stored::Clear(v) => Ok(Restored::Value(v.clone())),
            Stored::Omitted => Ok(Restored::Omitted),
            Stored::Sealed(b) => {
                let Some(key) = &self.key else {
                    return Ok(Restored::Sealed);
                };
                let plain = key
                    .open(&value_aad(self.package_id, name), b)
                    .ok_or_else(|| {
                        format!(
                            "the sealed value of {name} does not open with the checkpoint's key"
                        )
                    })?;
                serde_json::from_slice(&plain)
                    .map(Restored::Value)
                    .map_err(|e| format!("the sealed value of {name} is not JSON: {e}"))
            }
        }
    }

    pub(crate) fn restore_all(
        &self,
        vars: &BTreeMap<String, Stored>,
    ) -> Result<BTreeMap<String, Restored>, String> {
        vars.iter()
            .map(|(k, v)| Ok((k.clone(), self.restore(k, v)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Key;
    use serde_json::json;

    #[test]
    fn payloads_have_a_stable_json_shape() {
        let p = Payload::Records {
            at: "2026-01-02T03:04:05.006Z".into(),
            records: vec![
                Record::Invalidate { path: "a/b".into() },
                Record::Vars {
                    vars: BTreeMap::from([
                        ("User::A".into(), Stored::Clear(json!(1))),
                        ("User::B".into(), Stored::Omitted),
                    ]),
                },
            ],
        };
        let text = serde_json::to_string(&p).expect("serialize");
        assert_eq!(
            text,
            r#"{"kind":"records","at":"2026-01-02T03:04:05.006Z","records":[{"kind":"invalidate","path":"a/b"},{"kind":"vars","vars":{"User::A":{"clear":1},"User::B":"omitted"}}]}"#
        );
        let back: Payload = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, p);
    }

    #[test]
    fn sealer_seals_omits_or_passes_through() {
        let with_key = Sealer {
            package_id: "p".into(),
            key: Some(FileKey::derive(&Key::from_text("k"), b"salt")),
        };
        let without = Sealer {
            package_id: "p".into(),
            key: None,
        };
        let secret = VarValue::sensitive(json!("hunter2"));
        let plain = VarValue::plain(json!("hello"));
        assert_eq!(
            without.stored("User::S", &secret).expect("stored"),
            Stored::Omitted
        );
        assert_eq!(
            with_key.stored("User::P", &plain).expect("stored"),
            Stored::Clear(json!("hello"))
        );
        let sealed = with_key.stored("User::S", &secret).expect("stored");
        assert!(matches!(sealed, Stored::Sealed(_)));
        let opener = Opener {
            package_id: "p",
            key: Some(FileKey::derive(&Key::from_text("k"), b"salt")),
        };
        assert_eq!(
            opener.restore("User::S", &sealed).expect("opens"),
            Restored::Value(json!("hunter2"))
        );
        assert!(opener.restore("User::T", &sealed).is_err());
        let keyless = Opener {
            package_id: "p",
            key: None,
        };
        assert_eq!(
            keyless.restore("User::S", &sealed).expect("no key"),
            Restored::Sealed
        );
    }
}
