//! One value read from a database ([`Cell`]), the rows of a result ([`Rows`]),
//! and how they become variables: a typed scalar for `result: single_row`, a
//! JSON recordset for `result: full`.

use checkflow_expr::{DataType, Value};
use jiff::civil::{Date, DateTime};
use rust_decimal::Decimal;

/// One value of a result row, in the few shapes both databases share.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL NULL.
    Null,
    /// A boolean (PostgreSQL `boolean`; SQLite has none).
    Bool(bool),
    /// Any integer.
    Int(i64),
    /// A floating-point number.
    Real(f64),
    /// An exact decimal (PostgreSQL `numeric`).
    Dec(Decimal),
    /// Text.
    Text(String),
    /// A date and time without zone (a `timestamptz` is read in UTC).
    Timestamp(DateTime),
    /// A date.
    Date(Date),
    /// Bytes (shown as hex).
    Bytes(Vec<u8>),
}

impl Cell {
    /// The SSIS type this value reads as by itself.
    pub fn natural_type(&self) -> &'static str {
        match self {
            Cell::Null => "NULL",
            Cell::Bool(_) => "DT_BOOL",
            Cell::Int(_) => "DT_I8",
            Cell::Real(_) => "DT_R8",
            Cell::Dec(_) => "DT_DECIMAL",
            Cell::Text(_) => "DT_WSTR",
            Cell::Timestamp(_) => "DT_DBTIMESTAMP",
            Cell::Date(_) => "DT_DBDATE",
            Cell::Bytes(_) => "DT_BYTES",
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// The value as a typed scalar of its natural type.
    fn natural(&self) -> Value {
        match self {
            Cell::Null => Value::Null(DataType::WStr { len: None }),
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(i) => Value::I8(*i),
            Cell::Real(f) => Value::R8(*f),
            Cell::Dec(d) => Value::Decimal {
                value: *d,
                scale: d.scale().min(28) as u8,
            },
            Cell::Text(s) => Value::WStr(s.clone()),
            Cell::Timestamp(t) => Value::DbTimestamp(*t),
            Cell::Date(d) => Value::DbDate(*d),
            Cell::Bytes(b) => Value::WStr(Cell::hex(b)),
        }
    }

    /// Converts for a variable of type `ty`, or says why it cannot (the
    /// caller names the variable and the column).
    ///
    /// Allowed: anything into a string; numbers into numbers (an integer type
    /// only takes whole values, within range); integers into booleans (SQLite
    /// stores them so); dates into dates; text into dates (SQLite stores dates
    /// as text). Text never silently becomes a number.
    pub fn to_value(&self, ty: &DataType) -> Result<Value, String> {
        if *self == Cell::Null {
            return Ok(Value::Null(ty.clone()));
        }
        let ok = match (self, ty) {
            (_, t) if t.is_string() => true,
            (Cell::Bool(_), DataType::Bool) => true,
            (Cell::Int(_), DataType::Bool) => true,
            (Cell::Int(_), t) if t.is_numeric() => true,
            (Cell::Real(f), t) if t.is_integer() => f.fract() == 0.0,
            (Cell::Dec(d), t) if t.is_integer() => d.fract().is_zero(),
            (Cell::Real(_) | Cell::Dec(_), t) if t.is_numeric() => true,
            (Cell::Timestamp(_) | Cell::Date(_) | Cell::Text(_), t) if t.is_date() => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "the column holds {} ({}), which does not convert to {}",
                self.describe(),
                self.natural_type(),
                ty.ssis_name()
            ));
        }
        let v = match self {
            // A whole real or decimal goes through an integer, so the cast
            // checks the range instead of rounding.
            Cell::Real(f) if ty.is_integer() => Value::I8(*f as i64),
            Cell::Dec(d) if ty.is_integer() => {
                let i: i64 = d
                    .to_string()
                    .parse()
                    .map_err(|_| format!("{d} is out of range for {}", ty.ssis_name()))?;
                Value::I8(i)
            }
            other => other.natural(),
        };
        v.cast_to(ty).map_err(|e| {
            format!(
                "the column holds {} ({}), which does not convert to {}: {e}",
                self.describe(),
                self.natural_type(),
                ty.ssis_name()
            )
        })
    }

    /// The value, shortened for messages.
    fn describe(&self) -> String {
        let s = match self {
            Cell::Text(s) => format!("'{s}'"),
            other => other.natural().to_string(),
        };
        if s.chars().count() > 40 {
            format!("{}...", s.chars().take(40).collect::<String>())
        } else {
            s
        }
    }

    /// The JSON form kept in an object variable (and so in the checkpoint):
    /// numbers and booleans as JSON, decimals, dates and text as strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Cell::Null => J::Null,
            Cell::Bool(b) => J::Bool(*b),
            Cell::Int(i) => J::from(*i),
            Cell::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Cell::Dec(d) => J::String(d.to_string()),
            Cell::Text(s) => J::String(s.clone()),
            Cell::Bytes(b) => J::String(Cell::hex(b)),
            Cell::Timestamp(_) | Cell::Date(_) => J::String(self.natural().to_string()),
        }
    }
}

/// The result of one statement: column names and rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rows {
    /// Column names, in order (empty for a statement that returns no rows).
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
    /// Rows changed, for statements that change rows.
    pub affected: u64,
}

impl Rows {
    /// The recordset form `foreach rows:` iterates:
    /// `{"columns": [...], "rows": [[...], ...]}`.
    pub fn to_recordset(&self) -> serde_json::Value {
        serde_json::json!({
            "columns": self.columns,
            "rows": self
                .rows
                .iter()
                .map(|r| r.iter().map(Cell::to_json).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        })
    }
}
