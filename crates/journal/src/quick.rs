//! The quick path for the frame almost every checkpoint is made of: one
//! `completed` record, written by [`crate::record::Sealer`] in a fixed
//! layout. A restart of a large package reads thousands of them, and a
//! general JSON decoder spent most of the checkpoint read on them.
//!
//! [`records_frame`] reads exactly that layout and nothing else: fields in
//! the order the writer puts them, no white space, strings without escapes,
//! integers of at most 18 digits, variables in clear (or `"omitted"`) whose
//! values are `null`, `true`, `false`, such an integer or such a string. For
//! anything else it answers `None` and the caller decodes the frame with
//! serde as before; what it accepts, it decodes to exactly what serde would
//! (a test compares the two on written frames and on damaged ones).

use crate::entry::RecordedOutcome;
use crate::record::{Record, Stored, StoredVars};

/// The frame's time and records, if `text` is in the layout this reads.
pub(crate) fn records_frame(text: &str) -> Option<(String, Vec<Record>)> {
    let mut c = Cursor {
        b: text.as_bytes(),
        at: 0,
    };
    c.lit(br#"{"kind":"records","at":"#)?;
    let at = c.string()?;
    c.lit(br#","records":["#)?;
    let mut records = Vec::with_capacity(1);
    loop {
        records.push(c.completed()?);
        match c.byte()? {
            b',' => {}
            b']' => break,
            _ => return None,
        }
    }
    c.lit(b"}")?;
    (c.at == c.b.len()).then_some((at.to_string(), records))
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.b.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        let end = self.at + lit.len();
        (self.b.get(self.at..end)? == lit).then(|| self.at = end)
    }

    /// A string without escapes or control characters. The text is UTF-8
    /// and the quotes are ASCII, so the bytes between them are too.
    fn string(&mut self) -> Option<&'a str> {
        self.lit(b"\"")?;
        let rest = &self.b[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest[len] != b'"' {
            return None;
        }
        let s = std::str::from_utf8(&rest[..len]).ok()?;
        self.at += len + 1;
        Some(s)
    }

    /// An integer of at most 18 digits (so it fits any 64-bit type, as
    /// serde reads it), without leading zeros or a negative zero.
    fn integer(&mut self) -> Option<(bool, u64)> {
        let negative = self.b.get(self.at) == Some(&b'-');
        if negative {
            self.at += 1;
        }
        let rest = &self.b[self.at..];
        let len = rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 || len > 18 || (rest[0] == b'0' && (len > 1 || negative)) {
            return None;
        }
        // A fraction or an exponent would make it a float: not read here.
        if matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let v = rest[..len]
            .iter()
            .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
        self.at += len;
        Some((negative, v))
    }

    fn completed(&mut self) -> Option<Record> {
        self.lit(br#"{"kind":"completed","path":"#)?;
        let path = self.string()?.to_string();
        self.lit(br#","outcome":"#)?;
        let outcome = match self.string()? {
            "success" => RecordedOutcome::Success,
            "failure" => RecordedOutcome::Failure,
            "completion" => RecordedOutcome::Completion,
            _ => return None,
        };
        self.lit(br#","fingerprint":"#)?;
        let fingerprint = self.string()?.to_string();
        self.lit(br#","duration_ms":"#)?;
        let (false, duration_ms) = self.integer()? else {
            return None;
        };
        self.lit(br#","vars":{"#)?;
        let mut vars = Vec::new();
        if self.b.get(self.at) == Some(&b'}') {
            self.at += 1;
        } else {
            loop {
                let name = self.string()?.to_string();
                self.lit(b":")?;
                vars.push((name, self.stored()?));
                match self.byte()? {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.lit(b"}")?;
        Some(Record::Completed {
            path,
            outcome,
            fingerprint,
            duration_ms,
            vars: StoredVars(vars),
        })
    }

    fn stored(&mut self) -> Option<Stored> {
        if self.lit(br#""omitted""#).is_some() {
            return Some(Stored::Omitted);
        }
        self.lit(br#"{"clear":"#)?;
        let v = match self.b.get(self.at)? {
            b'n' => self.lit(b"null").map(|_| serde_json::Value::Null)?,
            b't' => self.lit(b"true").map(|_| serde_json::Value::Bool(true))?,
            b'f' => self.lit(b"false").map(|_| serde_json::Value::Bool(false))?,
            b'"' => serde_json::Value::String(self.string()?.to_string()),
            _ => match self.integer()? {
                (false, v) => serde_json::Value::from(v),
                // At most 18 digits: within i64.
                (true, v) => serde_json::Value::from(-(v as i64)),
            },
        };
        self.lit(b"}")?;
        Some(Stored::Clear(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Payload;

    /// What serde makes of `text`, in the quick path's terms.
    fn by_serde(text: &str) -> Option<(String, Vec<Record>)> {
        match serde_json::from_str::<Payload>(text) {
            Ok(Payload::Records { at, records }) => Some((at, records)),
            _ => None,
        }
    }

    fn frame(records: &[Record]) -> String {
        serde_json::to_string(&Payload::Records {
            at: "2026-11-22T10:00:00.123Z".into(),
            records: records.to_vec(),
        })
        .expect("serialize")
    }

    fn completed(path: &str, vars: Vec<(&str, Stored)>) -> Record {
        Record::Completed {
            path: path.into(),
            outcome: RecordedOutcome::Success,
            fingerprint: "2be6a5be4315983dbcac319aa3ed26c0".into(),
            duration_ms: 1234,
            vars: StoredVars(vars.into_iter().map(|(k, v)| (k.into(), v)).collect()),
        }
    }

    fn clear(v: serde_json::Value) -> Stored {
        Stored::Clear(v)
    }

    #[test]
    fn reads_what_the_writer_writes_as_serde_does() {
        use serde_json::json;
        let cases = vec![
            vec![completed("T1", vec![])],
            vec![completed(
                "Load/Dim Customer",
                vec![
                    ("User::N", clear(json!(42))),
                    ("User::Neg", clear(json!(-7))),
                    ("User::Zero", clear(json!(0))),
                    ("User::Big", clear(json!(999_999_999_999_999_999u64))),
                    ("User::S", clear(json!("héllo wörld"))),
                    ("User::Empty", clear(json!(""))),
                    ("User::B", clear(json!(true))),
                    ("User::F", clear(json!(false))),
                    ("User::Null", clear(json!(null))),
                    ("User::Secret", Stored::Omitted),
                    ("User::N", clear(json!(43))),
                ],
            )],
            vec![
                completed("A", vec![("User::X", clear(json!(1)))]),
                Record::Completed {
                    path: "B".into(),
                    outcome: RecordedOutcome::Failure,
                    fingerprint: String::new(),
                    duration_ms: 0,
                    vars: StoredVars::default(),
                },
                Record::Completed {
                    path: "C".into(),
                    outcome: RecordedOutcome::Completion,
                    fingerprint: "x".into(),
                    duration_ms: 999_999_999_999_999_999,
                    vars: StoredVars::default(),
                },
            ],
        ];
        for records in cases {
            let text = frame(&records);
            let quick = records_frame(&text);
            assert!(quick.is_some(), "read quickly: {text}");
            assert_eq!(quick, by_serde(&text), "{text}");
            assert_eq!(quick.map(|q| q.1), Some(records));
        }
    }

    #[test]
    fn leaves_everything_else_to_serde() {
        use serde_json::json;
        // Each of these decodes with serde (or fails there), never here.
        let others = vec![
            frame(&[completed("a\"quoted\\path", vec![])]),
            frame(&[completed("T", vec![("User::S", clear(json!("line\nbreak")))])]),
            frame(&[completed("T", vec![("User::F", clear(json!(1.5)))])]),
            frame(&[completed("T", vec![("User::L", clear(json!(1u64 << 62)))])]),
            frame(&[completed("T", vec![("User::O", clear(json!({"a": 1})))])]),
            frame(&[completed("T", vec![("User::A", clear(json!([1, 2])))])]),
            frame(&[Record::Vars {
                vars: StoredVars(vec![("User::N".into(), clear(json!(1)))]),
            }]),
            frame(&[Record::RunStarted {
                run_id: "r".into(),
                pid: 1,
                host: "h".into(),
            }]),
            frame(&[completed("T", vec![]), Record::Invalidate { path: "T".into() }]),
            frame(&[]),
            r#"{"kind":"records", "at":"t","records":[]}"#.to_string(),
            r#"{"kind":"records","at":"t","records":[{"kind":"completed","path":"T","outcome":"success","fingerprint":"f","duration_ms":01,"vars":{}}]}"#.to_string(),
            r#"{"kind":"records","at":"t","records":[{"kind":"completed","path":"T","outcome":"success","fingerprint":"f","duration_ms":1,"vars":{"User::N":{"clear":-0}}}]}"#.to_string(),
            r#"{"kind":"records","at":"t","records":[{"kind":"completed","path":"T","outcome":"success","fingerprint":"f","duration_ms":1e3,"vars":{}}]}"#.to_string(),
        ];
        for text in others {
            assert_eq!(records_frame(&text), None, "{text}");
        }
        // Sanity: the first of them is a frame serde reads.
        assert!(by_serde(&frame(&[completed("a\"b", vec![])])).is_some());
    }

    /// Damage anywhere in a frame (a byte changed, the text cut short): the
    /// quick path either declines or agrees with serde.
    #[test]
    fn agrees_with_serde_on_damaged_frames() {
        use serde_json::json;
        let text = frame(&[
            completed(
                "Seq/T1",
                vec![
                    ("User::N", clear(json!(-12))),
                    ("User::S", clear(json!("abc"))),
                    ("User::P", Stored::Omitted),
                ],
            ),
            completed("Seq/T2", vec![("User::B", clear(json!(true)))]),
        ]);
        let bytes = text.as_bytes();
        let mut agreed = 0;
        let replacements = b"\"\\{}[],:0123456789-+.eE ntfaxZ\x01";
        for i in 0..bytes.len() {
            for &r in replacements {
                let mut b = bytes.to_vec();
                b[i] = r;
                let Ok(t) = std::str::from_utf8(&b) else {
                    continue;
                };
                if let Some(q) = records_frame(t) {
                    assert_eq!(Some(q), by_serde(t), "{t}");
                    agreed += 1;
                }
            }
            let cut = &text[..i];
            if let Some(q) = records_frame(cut) {
                assert_eq!(Some(q), by_serde(cut), "{cut}");
            }
        }
        // Changed digits, names and letters inside strings are still read.
        assert!(agreed > 100, "{agreed}");
    }
}
