//! SSIS column types in a flow: how a type string reads (`"DT_WSTR, 20"`),
//! which Arrow type holds its values, and how one value crosses between an
//! Arrow array and `checkflow_expr::Value` (whose casts are SSIS's).

use crate::vexpr;
use checkflow_expr::{DataType, Value};
use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType as ArrowType, Field, Schema, SchemaRef};
use std::sync::Arc;

/// One column of a flow path: its name and SSIS type.
#[derive(Clone, Debug, PartialEq)]
pub struct Col {
    /// The name, as written (case kept; matched exactly).
    pub name: String,
    /// Its SSIS type.
    pub ty: DataType,
}

impl Col {
    /// A column.
    pub fn new(name: impl Into<String>, ty: DataType) -> Col {
        Col {
            name: name.into(),
            ty,
        }
    }
}

/// The columns of a path, in order.
pub type Cols = Vec<Col>;

/// Reads an SSIS type as written in a flow: `DT_I4`, `"DT_WSTR, 20"`,
/// `"DT_NUMERIC, 18, 2"` (or with parentheses, `DT_WSTR(20)`), and checks
/// that a flow can hold it.
pub fn parse_type(text: &str) -> Result<DataType, String> {
    let t = text.trim();
    let (name, rest) = match t.find([',', '(']) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, ""),
    };
    let rest = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim_start_matches(',');
    let mut params = Vec::new();
    for p in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        params.push(
            p.parse::<u32>()
                .map_err(|_| format!("type \"{text}\": `{p}` is not a whole number"))?,
        );
    }
    let ty =
        DataType::from_spec(name.trim(), &params).map_err(|e| format!("type \"{text}\": {e}"))?;
    arrow_type(&ty).map_err(|e| format!("type \"{text}\": {e}"))?;
    Ok(ty)
}

/// The Arrow type that holds values of an SSIS type: the one mapping of the
/// whole flow, [`crate::vexpr::arrow_type`] (its table is there), except that
/// DT_DBTIMESTAMPOFFSET and DT_OBJECT columns are refused in a flow.
pub fn arrow_type(ty: &DataType) -> Result<ArrowType, String> {
    match ty {
        DataType::DbTimestampOffset { .. } | DataType::Object => Err(format!(
            "{} is not supported in a data flow",
            ty.ssis_name()
        )),
        _ => Ok(vexpr::arrow_type(ty)),
    }
}

/// The Arrow schema of a path.
pub fn schema_of(cols: &[Col]) -> SchemaRef {
    Arc::new(Schema::new(
        cols.iter()
            .map(|c| Field::new(&c.name, arrow_type(&c.ty).unwrap_or(ArrowType::Utf8), true))
            .collect::<Vec<_>>(),
    ))
}

/// The type without its declared length (a cast to it never truncates, so
/// [`too_long`] can then tell a value that does not fit).
pub fn unbounded(ty: &DataType) -> DataType {
    match ty {
        DataType::WStr { .. } => DataType::WStr { len: None },
        DataType::Str { codepage, .. } => DataType::Str {
            len: None,
            codepage: *codepage,
        },
        other => other.clone(),
    }
}

/// Whether a string value exceeds the declared length of its type.
pub fn too_long(v: &Value, ty: &DataType) -> Option<u32> {
    let len = match ty {
        DataType::WStr { len: Some(n) } | DataType::Str { len: Some(n), .. } => *n,
        _ => return None,
    };
    match v {
        Value::WStr(s) | Value::Str(s) if s.chars().count() > len as usize => Some(len),
        _ => None,
    }
}

/// Builds the array of one column from values already of its type (`Null`
/// for NULL; the callers cast every value to the column's type first, so a
/// value of another kind is a bug, reported as an error).
pub fn to_array(values: &[Value], ty: &DataType) -> Result<ArrayRef, String> {
    vexpr::array_of(values, ty).map_err(|e| e.to_string())
}

/// The value at `row` of a column of SSIS type `ty` (the array is of
/// [`arrow_type`]`(ty)`; an array of another type reads as NULL).
pub fn value_at(a: &dyn Array, row: usize, ty: &DataType) -> Value {
    vexpr::value_at(a, ty, row).unwrap_or_else(|_| Value::Null(ty.clone()))
}

/// The text a flat file holds for a value (NULL is the caller's business).
pub fn text_of(v: &Value) -> String {
    match v {
        Value::WStr(s) | Value::Str(s) | Value::Text(s) | Value::NText(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_read_as_ssis_types() {
        assert_eq!(parse_type("DT_I4").unwrap(), DataType::I4);
        assert_eq!(
            parse_type("DT_WSTR, 20").unwrap(),
            DataType::WStr { len: Some(20) }
        );
        assert_eq!(
            parse_type("DT_NUMERIC, 18, 2").unwrap(),
            DataType::Numeric {
                precision: 18,
                scale: 2
            }
        );
        assert_eq!(
            parse_type("dt_wstr(5)").unwrap(),
            DataType::WStr { len: Some(5) }
        );
        assert!(
            parse_type("DT_WSTR")
                .unwrap_err()
                .contains("takes 1 parameter")
        );
        assert!(parse_type("DT_NOPE").is_err());
        assert!(
            parse_type("DT_I4, x")
                .unwrap_err()
                .contains("not a whole number")
        );
        assert!(
            parse_type("DT_DBTIMESTAMPOFFSET, 3")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn values_cross_arrow_and_back() {
        let cases = [
            ("DT_I4", "42"),
            ("DT_I8", "-7"),
            ("DT_UI2", "9"),
            ("DT_R8", "1.5"),
            ("DT_BOOL", "true"),
            ("DT_NUMERIC, 18, 2", "12.30"),
            ("DT_WSTR, 10", "abc"),
            ("DT_DBTIMESTAMP", "2024-02-29 13:45:10"),
            ("DT_DBDATE", "2024-02-29"),
            ("DT_DBTIME", "13:45:10"),
            ("DT_CY", "3.1416"),
        ];
        for (t, text) in cases {
            let ty = parse_type(t).unwrap();
            let v = Value::parse_as(text, &ty).unwrap();
            let a = to_array(&[v.clone(), Value::Null(ty.clone())], &ty).unwrap();
            assert_eq!(a.data_type(), &arrow_type(&ty).unwrap(), "{t}");
            assert_eq!(value_at(a.as_ref(), 0, &ty), v, "{t}");
            assert!(value_at(a.as_ref(), 1, &ty).is_null(), "{t}");
        }
    }

    #[test]
    fn a_too_long_text_is_caught_before_any_truncation() {
        let ty = parse_type("DT_WSTR, 3").unwrap();
        let v = Value::parse_as("abcd", &unbounded(&ty)).unwrap();
        assert_eq!(too_long(&v, &ty), Some(3));
    }

    #[test]
    fn declared_lengths_are_checked() {
        let ty = DataType::WStr { len: Some(3) };
        assert_eq!(too_long(&Value::WStr("abcd".into()), &ty), Some(3));
        assert_eq!(too_long(&Value::WStr("abc".into()), &ty), None);
        assert_eq!(
            too_long(&Value::WStr("abcd".into()), &DataType::WStr { len: None }),
            None
        );
    }
}
