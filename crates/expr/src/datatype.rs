//! `DataType`: the SSIS data types an expression can produce, with their names and families.

use std::fmt;

/// An SSIS data type as the expression language sees it.
///
/// `WStr`/`Str` carry a length when it is known (a cast or a literal); `None` means
/// "unbounded", as for a string variable. `Object` only exists so that the engine can
/// describe object variables; no expression may use one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    I1,
    I2,
    I4,
    I8,
    UI1,
    UI2,
    UI4,
    UI8,
    R4,
    R8,
    Numeric { precision: u8, scale: u8 },
    Decimal { scale: u8 },
    WStr { len: Option<u32> },
    Str { len: Option<u32>, codepage: u32 },
    DbTimestamp,
    DbDate,
    Date,
    Object,
}

/// Largest precision a `DT_NUMERIC` may declare (as in SSIS).
pub const MAX_PRECISION: u8 = 38;
/// Largest scale the exact decimal arithmetic can hold (rust_decimal's 96-bit mantissa).
pub const MAX_SCALE: u8 = 28;
/// Precision of `DT_DECIMAL` (a 96-bit mantissa holds 28 to 29 digits).
pub const DECIMAL_PRECISION: u8 = 29;

impl DataType {
    /// The SSIS name, e.g. `"DT_WSTR"`, `"DT_I4"`, `"DT_NUMERIC"` (`"DT_OBJECT"` for objects).
    pub fn ssis_name(&self) -> &'static str {
        match self {
            DataType::Bool => "DT_BOOL",
            DataType::I1 => "DT_I1",
            DataType::I2 => "DT_I2",
            DataType::I4 => "DT_I4",
            DataType::I8 => "DT_I8",
            DataType::UI1 => "DT_UI1",
            DataType::UI2 => "DT_UI2",
            DataType::UI4 => "DT_UI4",
            DataType::UI8 => "DT_UI8",
            DataType::R4 => "DT_R4",
            DataType::R8 => "DT_R8",
            DataType::Numeric { .. } => "DT_NUMERIC",
            DataType::Decimal { .. } => "DT_DECIMAL",
            DataType::WStr { .. } => "DT_WSTR",
            DataType::Str { .. } => "DT_STR",
            DataType::DbTimestamp => "DT_DBTIMESTAMP",
            DataType::DbDate => "DT_DBDATE",
            DataType::Date => "DT_DATE",
            DataType::Object => "DT_OBJECT",
        }
    }

    /// Maps a package variable type (`boolean`, `int32`, `int64`, `double`, `decimal`,
    /// `string`, `datetime`, `object`) to its SSIS type.
    ///
    /// `decimal` becomes `DT_NUMERIC` with precision 29 and scale 10 (room for the exact
    /// values a .NET `Decimal` variable holds in practice); `string` is an unbounded `DT_WSTR`.
    pub fn from_variable_type(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "boolean" | "bool" => DataType::Bool,
            "int32" => DataType::I4,
            "int64" => DataType::I8,
            "double" => DataType::R8,
            "decimal" => DataType::Numeric {
                precision: DECIMAL_PRECISION,
                scale: 10,
            },
            "string" => DataType::WStr { len: None },
            "datetime" => DataType::DbTimestamp,
            "object" => DataType::Object,
            _ => return None,
        })
    }

    /// Parses an SSIS type name with its parameters as written in a cast, e.g. `DT_WSTR` with
    /// `[10]`. Returns a message describing the problem when the name or the parameters are wrong.
    pub fn from_spec(name: &str, params: &[u32]) -> Result<DataType, String> {
        let upper = name.to_ascii_uppercase();
        let want = |n: usize, usage: &str| -> Result<(), String> {
            if params.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{upper} takes {n} parameter{}: write {usage}",
                    if n == 1 { "" } else { "s" }
                ))
            }
        };
        let ty = match upper.as_str() {
            "DT_BOOL" | "DT_I1" | "DT_I2" | "DT_I4" | "DT_I8" | "DT_UI1" | "DT_UI2" | "DT_UI4"
            | "DT_UI8" | "DT_R4" | "DT_R8" | "DT_DBTIMESTAMP" | "DT_DBDATE" | "DT_DATE" => {
                want(0, &format!("({upper})"))?;
                match upper.as_str() {
                    "DT_BOOL" => DataType::Bool,
                    "DT_I1" => DataType::I1,
                    "DT_I2" => DataType::I2,
                    "DT_I4" => DataType::I4,
                    "DT_I8" => DataType::I8,
                    "DT_UI1" => DataType::UI1,
                    "DT_UI2" => DataType::UI2,
                    "DT_UI4" => DataType::UI4,
                    "DT_UI8" => DataType::UI8,
                    "DT_R4" => DataType::R4,
                    "DT_R8" => DataType::R8,
                    "DT_DBTIMESTAMP" => DataType::DbTimestamp,
                    "DT_DBDATE" => DataType::DbDate,
                    _ => DataType::Date,
                }
            }
            "DT_WSTR" => {
                want(1, "(DT_WSTR, charcount)")?;
                let len = params[0];
                if len == 0 || len > 4000 {
                    return Err(format!(
                        "the length of DT_WSTR must be between 1 and 4000, not {len}"
                    ));
                }
                DataType::WStr { len: Some(len) }
            }
            "DT_STR" => {
                want(2, "(DT_STR, charcount, codepage)")?;
                let len = params[0];
                if len == 0 || len > 8000 {
                    return Err(format!(
                        "the length of DT_STR must be between 1 and 8000, not {len}"
                    ));
                }
                DataType::Str {
                    len: Some(len),
                    codepage: params[1],
                }
            }
            "DT_NUMERIC" => {
                want(2, "(DT_NUMERIC, precision, scale)")?;
                let (p, s) = (params[0], params[1]);
                if p == 0 || p > u32::from(MAX_PRECISION) {
                    return Err(format!(
                        "the precision of DT_NUMERIC must be between 1 and {MAX_PRECISION}, not {p}"
                    ));
                }
                if s > p {
                    return Err(format!(
                        "the scale of DT_NUMERIC ({s}) cannot exceed its precision ({p})"
                    ));
                }
                if s > u32::from(MAX_SCALE) {
                    return Err(format!(
                        "checkflow supports a DT_NUMERIC scale of at most {MAX_SCALE}, not {s}"
                    ));
                }
                DataType::Numeric {
                    precision: p as u8,
                    scale: s as u8,
                }
            }
            "DT_DECIMAL" => {
                want(1, "(DT_DECIMAL, scale)")?;
                let s = params[0];
                if s > u32::from(MAX_SCALE) {
                    return Err(format!(
                        "the scale of DT_DECIMAL must be between 0 and {MAX_SCALE}, not {s}"
                    ));
                }
                DataType::Decimal { scale: s as u8 }
            }
            "DT_BYTES"
            | "DT_TEXT"
            | "DT_NTEXT"
            | "DT_IMAGE"
            | "DT_GUID"
            | "DT_CY"
            | "DT_DBTIME"
            | "DT_DBTIME2"
            | "DT_DBTIMESTAMP2"
            | "DT_DBTIMESTAMPOFFSET"
            | "DT_FILETIME" => {
                return Err(format!(
                    "the data type {upper} is not supported by checkflow expressions"
                ));
            }
            _ => return Err(format!("unknown data type {name}")),
        };
        Ok(ty)
    }

    /// True for the integer types, signed and unsigned.
    pub fn is_integer(&self) -> bool {
        self.is_signed_integer() || self.is_unsigned_integer()
    }

    /// True for `DT_I1` .. `DT_I8`.
    pub fn is_signed_integer(&self) -> bool {
        matches!(
            self,
            DataType::I1 | DataType::I2 | DataType::I4 | DataType::I8
        )
    }

    /// True for `DT_UI1` .. `DT_UI8`.
    pub fn is_unsigned_integer(&self) -> bool {
        matches!(
            self,
            DataType::UI1 | DataType::UI2 | DataType::UI4 | DataType::UI8
        )
    }

    /// True for every numeric type: integers, reals and decimals.
    pub fn is_numeric(&self) -> bool {
        self.is_integer() || self.is_real() || self.is_decimal()
    }

    /// True for `DT_R4` and `DT_R8`.
    pub fn is_real(&self) -> bool {
        matches!(self, DataType::R4 | DataType::R8)
    }

    /// True for `DT_NUMERIC` and `DT_DECIMAL`.
    pub fn is_decimal(&self) -> bool {
        matches!(self, DataType::Numeric { .. } | DataType::Decimal { .. })
    }

    /// True for `DT_WSTR` and `DT_STR`.
    pub fn is_string(&self) -> bool {
        matches!(self, DataType::WStr { .. } | DataType::Str { .. })
    }

    /// True for the date and time types.
    pub fn is_date(&self) -> bool {
        matches!(
            self,
            DataType::DbTimestamp | DataType::DbDate | DataType::Date
        )
    }

    /// Byte width of an integer type (0 for other types).
    pub(crate) fn int_width(&self) -> u8 {
        match self {
            DataType::I1 | DataType::UI1 => 1,
            DataType::I2 | DataType::UI2 => 2,
            DataType::I4 | DataType::UI4 => 4,
            DataType::I8 | DataType::UI8 => 8,
            _ => 0,
        }
    }

    /// Precision and scale when seen as a decimal (integers as `(digits, 0)`).
    pub(crate) fn decimal_shape(&self) -> Option<(u8, u8)> {
        Some(match self {
            DataType::Numeric { precision, scale } => (*precision, *scale),
            DataType::Decimal { scale } => (DECIMAL_PRECISION, *scale),
            DataType::I1 | DataType::UI1 => (3, 0),
            DataType::I2 | DataType::UI2 => (5, 0),
            DataType::I4 | DataType::UI4 => (10, 0),
            DataType::I8 => (19, 0),
            DataType::UI8 => (20, 0),
            _ => return None,
        })
    }

    /// How many characters the text form of a value of this type may need; used in the
    /// advice "cast with (DT_WSTR, n)".
    pub(crate) fn display_len(&self) -> u32 {
        match self {
            DataType::Bool => 5,
            DataType::I1 => 4,
            DataType::I2 => 6,
            DataType::I4 => 11,
            DataType::I8 => 20,
            DataType::UI1 => 3,
            DataType::UI2 => 5,
            DataType::UI4 => 10,
            DataType::UI8 => 20,
            DataType::R4 => 15,
            DataType::R8 => 24,
            DataType::Numeric { precision, .. } => u32::from(*precision) + 2,
            DataType::Decimal { .. } => 31,
            DataType::WStr { len } | DataType::Str { len, .. } => len.unwrap_or(4000),
            DataType::DbTimestamp | DataType::Date => 23,
            DataType::DbDate => 10,
            DataType::Object => 4000,
        }
    }

    /// The cast that converts a value to this type, as written in an expression.
    pub fn cast_spec(&self) -> String {
        match self {
            DataType::Numeric { precision, scale } => {
                format!("(DT_NUMERIC, {precision}, {scale})")
            }
            DataType::Decimal { scale } => format!("(DT_DECIMAL, {scale})"),
            DataType::WStr { len } => format!("(DT_WSTR, {})", len.unwrap_or(4000)),
            DataType::Str { len, codepage } => {
                format!("(DT_STR, {}, {codepage})", len.unwrap_or(8000))
            }
            other => format!("({})", other.ssis_name()),
        }
    }
}

impl fmt::Display for DataType {
    /// The SSIS name with parameters, e.g. `DT_NUMERIC(10,2)` or `DT_WSTR(10)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataType::Numeric { precision, scale } => write!(f, "DT_NUMERIC({precision},{scale})"),
            DataType::Decimal { scale } => write!(f, "DT_DECIMAL({scale})"),
            DataType::WStr { len: Some(n) } => write!(f, "DT_WSTR({n})"),
            DataType::Str {
                len: Some(n),
                codepage,
            } => write!(f, "DT_STR({n},{codepage})"),
            other => f.write_str(other.ssis_name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_types_map_to_ssis_types() {
        assert_eq!(DataType::from_variable_type("int32"), Some(DataType::I4));
        assert_eq!(DataType::from_variable_type("int64"), Some(DataType::I8));
        assert_eq!(DataType::from_variable_type("double"), Some(DataType::R8));
        assert_eq!(
            DataType::from_variable_type("string"),
            Some(DataType::WStr { len: None })
        );
        assert_eq!(
            DataType::from_variable_type("datetime"),
            Some(DataType::DbTimestamp)
        );
        assert_eq!(
            DataType::from_variable_type("boolean"),
            Some(DataType::Bool)
        );
        assert_eq!(
            DataType::from_variable_type("object"),
            Some(DataType::Object)
        );
        assert_eq!(
            DataType::from_variable_type("decimal").map(|t| t.ssis_name()),
            Some("DT_NUMERIC")
        );
        assert_eq!(DataType::from_variable_type("blob"), None);
    }

    #[test]
    fn specs_check_their_parameters() {
        assert_eq!(
            DataType::from_spec("dt_wstr", &[10]),
            Ok(DataType::WStr { len: Some(10) })
        );
        assert!(DataType::from_spec("DT_WSTR", &[]).is_err());
        assert!(DataType::from_spec("DT_NUMERIC", &[5, 6]).is_err());
        assert!(DataType::from_spec("DT_I4", &[1]).is_err());
        assert!(DataType::from_spec("DT_FOO", &[]).is_err());
    }
}
