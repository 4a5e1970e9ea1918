//! `Record`: the on-disk form of frame payloads, and the `Sealer`/`Opener`
//! that turn engine values into stored ones and back.
//!
//! A payload is one JSON object tagged by `"kind"`: the first frame holds a
//! `"header"`, every later frame a `"records"` batch (one append = one frame,
//! so a group append is all-or-nothing). See docs/design/journal-format.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{Entry, RecordedOutcome, StoredValue};
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

/// The variables of one record: a JSON object on disk, a list in memory.
///
/// A restart reads one of these per recorded task and only walks it once, so
/// a list in the order written (the writer's map is sorted by name) costs one
/// allocation where a `BTreeMap` cost a node of eleven slots. A name written
/// twice is applied twice, the later value winning, as a map would keep it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StoredVars(pub Vec<(String, Stored)>);

impl Serialize for StoredVars {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de> Deserialize<'de> for StoredVars {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = StoredVars;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of variable names to stored values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<StoredVars, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(0).min(64));
                while let Some(e) = m.next_entry()? {
                    out.push(e);
                }
                Ok(StoredVars(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The payload of one frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "FlatPayload")]
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
    pub config: StoredVars,
}

/// One record inside a `records` frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "FlatRecord")]
pub(crate) enum Record {
    RunStarted {
        run_id: String,
        pid: u32,
        host: String,
    },
    Completed {
        path: String,
        outcome: RecordedOutcome,
        fingerprint: String,
        duration_ms: u64,
        vars: StoredVars,
    },
    Iteration {
        loop_path: String,
        key: String,
        vars: StoredVars,
    },
    Vars {
        vars: StoredVars,
    },
    Invalidate {
        path: String,
    },
    TxCommitting {
        path: String,
        marker: String,
        connections: Vec<String>,
        /// Absent in files written before intents carried variables.
        #[serde(default)]
        vars: StoredVars,
    },
}

// Reading. serde's internally tagged enums buffer every object before they
// look at its tag, and a `records` frame would be buffered twice (the frame,
// then each record): most of a restart's checkpoint read. Instead each object
// is read in one pass into a struct with every variant's fields, and the tag
// then picks the variant and checks that its fields are there. What is
// written, and what is accepted, stay as before.

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum PayloadKind {
    Header,
    Records,
}

#[derive(Deserialize)]
pub(crate) struct FlatPayload {
    kind: PayloadKind,
    at: Option<String>,
    records: Option<Vec<Record>>,
    created_at: Option<String>,
    package_id: Option<String>,
    package_name: Option<String>,
    package_path: Option<String>,
    writer: Option<String>,
    salt: Option<String>,
    key_check: Option<SealedBox>,
    config: Option<StoredVars>,
}

/// A field the tag requires.
fn need<T>(v: Option<T>, field: &'static str) -> Result<T, String> {
    v.ok_or_else(|| format!("missing field `{field}`"))
}

impl TryFrom<FlatPayload> for Payload {
    type Error = String;

    fn try_from(f: FlatPayload) -> Result<Payload, String> {
        Ok(match f.kind {
            PayloadKind::Header => Payload::Header(HeaderRecord {
                created_at: need(f.created_at, "created_at")?,
                package_id: need(f.package_id, "package_id")?,
                package_name: need(f.package_name, "package_name")?,
                package_path: need(f.package_path, "package_path")?,
                writer: need(f.writer, "writer")?,
                salt: need(f.salt, "salt")?,
                key_check: f.key_check,
                config: need(f.config, "config")?,
            }),
            PayloadKind::Records => Payload::Records {
                at: need(f.at, "at")?,
                records: need(f.records, "records")?,
            },
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RecordKind {
    RunStarted,
    Completed,
    Iteration,
    Vars,
    Invalidate,
    TxCommitting,
}

#[derive(Deserialize)]
pub(crate) struct FlatRecord {
    kind: RecordKind,
    run_id: Option<String>,
    pid: Option<u32>,
    host: Option<String>,
    path: Option<String>,
    outcome: Option<RecordedOutcome>,
    fingerprint: Option<String>,
    duration_ms: Option<u64>,
    vars: Option<StoredVars>,
    loop_path: Option<String>,
    key: Option<String>,
    marker: Option<String>,
    connections: Option<Vec<String>>,
}

impl TryFrom<FlatRecord> for Record {
    type Error = String;

    fn try_from(f: FlatRecord) -> Result<Record, String> {
        Ok(match f.kind {
            RecordKind::RunStarted => Record::RunStarted {
                run_id: need(f.run_id, "run_id")?,
                pid: need(f.pid, "pid")?,
                host: need(f.host, "host")?,
            },
            RecordKind::Completed => Record::Completed {
                path: need(f.path, "path")?,
                outcome: need(f.outcome, "outcome")?,
                fingerprint: need(f.fingerprint, "fingerprint")?,
                duration_ms: need(f.duration_ms, "duration_ms")?,
                vars: need(f.vars, "vars")?,
            },
            RecordKind::Iteration => Record::Iteration {
                loop_path: need(f.loop_path, "loop_path")?,
                key: need(f.key, "key")?,
                vars: need(f.vars, "vars")?,
            },
            RecordKind::Vars => Record::Vars {
                vars: need(f.vars, "vars")?,
            },
            RecordKind::Invalidate => Record::Invalidate {
                path: need(f.path, "path")?,
            },
            RecordKind::TxCommitting => Record::TxCommitting {
                path: need(f.path, "path")?,
                marker: need(f.marker, "marker")?,
                connections: need(f.connections, "connections")?,
                vars: f.vars.unwrap_or_default(),
            },
        })
    }
}

/// Turns engine values into stored ones: sensitive values are sealed, or
/// omitted when the file has no key.
pub(crate) struct Sealer {
    pub package_id: String,
    pub key: Option<FileKey>,
}

impl Sealer {
    /// A value as stored: in clear (moved, not copied), sealed when it is
    /// sensitive, or omitted when it is sensitive and the file has no key.
    pub(crate) fn stored(&self, name: &str, v: StoredValue) -> Result<Stored, String> {
        if !v.sensitive {
            return Ok(Stored::Clear(v.value));
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

    /// Variables as stored; names and values are moved (a record is written
    /// per task).
    pub(crate) fn vars(&self, vars: BTreeMap<String, StoredValue>) -> Result<StoredVars, String> {
        vars.into_iter()
            .map(|(k, v)| {
                let s = self.stored(&k, v)?;
                Ok((k, s))
            })
            .collect::<Result<_, String>>()
            .map(StoredVars)
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
                vars: self.vars(vars)?,
            },
            Entry::Iteration {
                loop_path,
                key,
                vars,
            } => Record::Iteration {
                loop_path,
                key,
                vars: self.vars(vars)?,
            },
            Entry::Vars { vars } => Record::Vars {
                vars: self.vars(vars)?,
            },
            Entry::Invalidate { path } => Record::Invalidate { path },
            Entry::TxCommitting {
                path,
                marker,
                connections,
                vars,
            } => Record::TxCommitting {
                path,
                marker,
                connections,
                vars: self.vars(vars)?,
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
            _ => self.restore_owned(name, s.clone()),
        }
    }

    /// [`Opener::restore`] of a value the caller no longer needs (not copied).
    pub(crate) fn restore_owned(&self, name: &str, s: Stored) -> Result<Restored, String> {
        match s {
            Stored::Clear(v) => Ok(Restored::Value(v)),
            Stored::Omitted => Ok(Restored::Omitted),
            Stored::Sealed(b) => {
                let Some(key) = &self.key else {
                    return Ok(Restored::Sealed);
                };
                let plain = key
                    .open(&value_aad(self.package_id, name), &b)
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
        vars: &StoredVars,
    ) -> Result<BTreeMap<String, Restored>, String> {
        vars.0
            .iter()
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
                    vars: StoredVars(vec![
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
    fn every_payload_and_record_reads_back_as_written() {
        let vars = StoredVars(vec![
            ("User::A".to_string(), Stored::Clear(json!({"x": [1, 2]}))),
            (
                "User::S".to_string(),
                Stored::Sealed(SealedBox {
                    alg: "a".into(),
                    nonce: "n".into(),
                    ct: "c".into(),
                }),
            ),
        ]);
        let header = Payload::Header(HeaderRecord {
            created_at: "t".into(),
            package_id: "id".into(),
            package_name: "n".into(),
            package_path: "p.yaml".into(),
            writer: "checkflow 0".into(),
            salt: "00".into(),
            key_check: None,
            config: vars.clone(),
        });
        let records = Payload::Records {
            at: "t".into(),
            records: vec![
                Record::RunStarted {
                    run_id: "r".into(),
                    pid: 7,
                    host: "h".into(),
                },
                Record::Completed {
                    path: "A/B".into(),
                    outcome: RecordedOutcome::Failure,
                    fingerprint: "f".into(),
                    duration_ms: 12,
                    vars: vars.clone(),
                },
                Record::Iteration {
                    loop_path: "L".into(),
                    key: "k".into(),
                    vars: vars.clone(),
                },
                Record::Vars { vars },
                Record::Invalidate { path: "A".into() },
                Record::TxCommitting {
                    path: "T".into(),
                    marker: "m".into(),
                    connections: vec!["db".into()],
                    vars: StoredVars::default(),
                },
            ],
        };
        for p in [header, records] {
            let text = serde_json::to_string(&p).expect("serialize");
            let back: Payload = serde_json::from_str(&text).expect("deserialize");
            assert_eq!(back, p, "{text}");
        }
        // The tag need not come first, and unknown fields are ignored (as before).
        let back: Payload = serde_json::from_str(
            r#"{"records":[{"path":"a","kind":"invalidate","later":1}],"at":"t","kind":"records"}"#,
        )
        .expect("deserialize");
        assert_eq!(
            back,
            Payload::Records {
                at: "t".into(),
                records: vec![Record::Invalidate { path: "a".into() }]
            }
        );
        // A field the tag needs, missing; an unknown tag.
        for (bad, says) in [
            (
                r#"{"kind":"records","at":"t","records":[{"kind":"completed","path":"a"}]}"#,
                "missing field `outcome`",
            ),
            (r#"{"kind":"records","records":[]}"#, "missing field `at`"),
            (r#"{"kind":"later","at":"t"}"#, "unknown variant `later`"),
        ] {
            let e = serde_json::from_str::<Payload>(bad)
                .expect_err(bad)
                .to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
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
        let secret = StoredValue::sensitive(json!("hunter2"));
        let plain = StoredValue::plain(json!("hello"));
        assert_eq!(
            without.stored("User::S", secret.clone()).expect("stored"),
            Stored::Omitted
        );
        assert_eq!(
            with_key.stored("User::P", plain).expect("stored"),
            Stored::Clear(json!("hello"))
        );
        let sealed = with_key.stored("User::S", secret).expect("stored");
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
