//! Foreach enumerators: the items a loop iterates over, each with its identity.
//!
//! The identity (`key`) is what `checkpoint_iterations` records: the item's
//! values (a lone string is its own key, anything else its JSON text), or a
//! file's full path — never its position, so a changed collection resumes right.
//! Equal items share one identity and are counted: [`split_finished`] skips as
//! many of them as finished. A `files:` enumerator's folder is listed by
//! `checkflow_files::list`, the one place that reads folders.

use crate::vars::VarStore;
use checkflow_model::Retrieve;
use checkflow_plan::{Enumerator, VarTable, VarValue};
use std::collections::HashMap;

/// One item of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// Its identity.
    pub key: String,
    /// Its values, mapped by position onto the loop's `map` variables.
    pub values: Vec<serde_json::Value>,
}

fn key_of(values: &[serde_json::Value]) -> String {
    match values {
        [serde_json::Value::String(s)] => s.clone(),
        [one] => one.to_string(),
        many => serde_json::Value::Array(many.to_vec()).to_string(),
    }
}

/// Lists the items of an enumerator, now.
pub fn enumerate(e: &Enumerator, store: &VarStore, vars: &VarTable) -> Result<Vec<Item>, String> {
    match e {
        Enumerator::Items(rows) => Ok(rows
            .iter()
            .map(|r| Item {
                key: key_of(r),
                values: r.clone(),
            })
            .collect()),
        Enumerator::Files {
            folder,
            pattern,
            recursive,
            retrieve,
        } => {
            let files =
                checkflow_files::list(folder, pattern, *recursive).map_err(|e| e.to_string())?;
            Ok(files
                .into_iter()
                .map(|p| {
                    let value = match retrieve {
                        Retrieve::FullPath => p.display().to_string(),
                        Retrieve::Name => p
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        Retrieve::NameAndExtension => p
                            .file_name()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    };
                    Item {
                        key: p.display().to_string(),
                        values: vec![serde_json::Value::String(value)],
                    }
                })
                .collect())
        }
        Enumerator::Rows(slot) => {
            let name = vars.decl(*slot).name.qualified();
            match store.raw(*slot) {
                VarValue::Object(json) => {
                    rows_of(&json).map_err(|e| format!("variable {name}: {e}"))
                }
                VarValue::Scalar(_) => Err(format!("variable {name} holds no rows")),
            }
        }
    }
}

/// Splits a loop's items into those a restart runs, each with its 1-based
/// position in the collection, and the identities it skips, in order.
///
/// `finished` counts the recorded iterations of each identity. An identity
/// finished `n` times skips its first `n` equal items in the collection and
/// runs the others: a loop runs its items in order, so the ones that finished
/// were the first ones. Items that are not in `finished` all run, and
/// finished identities no longer in the collection skip nothing.
pub fn split_finished(
    items: Vec<Item>,
    finished: &HashMap<String, usize>,
) -> (Vec<(u64, Item)>, Vec<String>) {
    let mut left = finished.clone();
    let mut run = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    for (i, it) in items.into_iter().enumerate() {
        match left.get_mut(&it.key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                skipped.push(it.key);
            }
            _ => run.push((i as u64 + 1, it)),
        }
    }
    (run, skipped)
}

/// The rows of an object value: a list (of values, lists or maps), or a
/// recordset `{ "columns": [...], "rows": [[...], ...] }`.
pub fn rows_of(json: &serde_json::Value) -> Result<Vec<Item>, String> {
    use serde_json::Value as J;
    // A row is a list of values, a map (its values in written order), or one value.
    fn row(r: &J) -> Vec<J> {
        match r {
            J::Array(a) => a.clone(),
            J::Object(m) => m.values().cloned().collect(),
            other => vec![other.clone()],
        }
    }
    let rows: Vec<Vec<J>> = match json {
        J::Null => Vec::new(),
        J::Array(list) => list.iter().map(row).collect(),
        J::Object(m) => match m.get("rows") {
            Some(J::Array(rows)) => rows.iter().map(row).collect(),
            _ => return Err("expected a list of rows or a recordset with \"rows\"".into()),
        },
        _ => return Err("expected a list of rows or a recordset".into()),
    };
    Ok(rows
        .into_iter()
        .map(|r| Item {
            key: key_of(&r),
            values: r,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_shapes_and_keys() {
        let rows = rows_of(&serde_json::json!([["a", 1], ["b", 2]])).expect("rows");
        assert_eq!(rows[0].key, r#"["a",1]"#);
        let rs =
            rows_of(&serde_json::json!({"columns": ["x"], "rows": [["k"]]})).expect("recordset");
        assert_eq!(rs[0].key, "k");
        assert!(rows_of(&serde_json::json!(5)).is_err());
    }

    fn items(keys: &[&str]) -> Vec<Item> {
        keys.iter()
            .map(|k| Item {
                key: (*k).to_string(),
                values: vec![serde_json::Value::String((*k).to_string())],
            })
            .collect()
    }

    #[test]
    fn an_equal_item_is_skipped_as_many_times_as_it_finished() {
        let finished = HashMap::from([("a".to_string(), 1)]);
        let (run, skipped) = split_finished(items(&["a", "a", "b"]), &finished);
        assert_eq!(skipped, ["a"]);
        let run: Vec<(u64, &str)> = run.iter().map(|(p, it)| (*p, it.key.as_str())).collect();
        assert_eq!(run, [(2, "a"), (3, "b")]);
    }

    #[test]
    fn finished_identities_gone_from_the_collection_skip_nothing() {
        let finished = HashMap::from([("gone".to_string(), 2), ("b".to_string(), 3)]);
        let (run, skipped) = split_finished(items(&["a", "b"]), &finished);
        assert_eq!(skipped, ["b"]);
        assert_eq!(run.len(), 1);
        assert_eq!(run[0].1.key, "a");
    }
}
