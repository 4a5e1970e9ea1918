//! `DataType`: the SSIS data types an expression can produce, with their names and families.

use std::fmt;

/// An SSIS data type as the expression language sees it.
///
/// `WStr`/`Str`/`Bytes` carry a length when it is known (a cast or a literal); `None` means
/// "unbounded", as for a string variable. The time types with fractional seconds carry
/// their digits (`scale`, 0 to 7). `Object` only exists so that the engine can describe
/// object variables; no expression may use one.
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
    Numeric {
        precision: u8,
        scale: u8,
    },
    Decimal {
        scale: u8,
    },
    WStr {
        len: Option<u32>,
    },
    Str {
        len: Option<u32>,
        codepage: u32,
    },
    DbTimestamp,
    DbDate,
    Date,
    /// `DT_DBTIME`: hours, minutes and seconds.
    DbTime,
    /// `DT_DBTIME2`: a time with `scale` fractional-second digits.
    DbTime2 {
        scale: u8,
    },
    /// `DT_DBTIMESTAMP2`: a date-time with `scale` fractional-second digits.
    DbTimestamp2 {
        scale: u8,
    },
    /// `DT_DBTIMESTAMPOFFSET`: a date-time with `scale` digits and a time-zone offset.
    DbTimestampOffset {
        scale: u8,
    },
    /// `DT_FILETIME`: 100-ns intervals since 1601-01-01, kept to milliseconds.
    FileTime,
    /// `DT_CY`: currency, a 64-bit integer scaled by 10,000.
    Cy,
    /// `DT_GUID`.
    Guid,
    /// `DT_BYTES`: binary data of at most `len` bytes (8000 at most).
    Bytes {
        len: Option<u32>,
    },
    /// `DT_TEXT`: a long ANSI/MBCS string in a code page.
    Text {
        codepage: u32,
    },
    /// `DT_NTEXT`: a long Unicode string.
    NText,
    /// `DT_IMAGE`: a long binary value.
    Image,
    Object,
}

/// Most fractional-second digits DT_DBTIME2, DT_DBTIMESTAMP2 and DT_DBTIMESTAMPOFFSET hold.
pub const MAX_FRACTION_DIGITS: u8 = 7;
/// Longest DT_BYTES, in bytes.
pub const MAX_BYTES: u32 = 8000;

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
            DataType::DbTime => "DT_DBTIME",
            DataType::DbTime2 { .. } => "DT_DBTIME2",
            DataType::DbTimestamp2 { .. } => "DT_DBTIMESTAMP2",
            DataType::DbTimestampOffset { .. } => "DT_DBTIMESTAMPOFFSET",
            DataType::FileTime => "DT_FILETIME",
            DataType::Cy => "DT_CY",
            DataType::Guid => "DT_GUID",
            DataType::Bytes { .. } => "DT_BYTES",
            DataType::Text { .. } => "DT_TEXT",
            DataType::NText => "DT_NTEXT",
            DataType::Image => "DT_IMAGE",
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
            | "DT_UI8" | "DT_R4" | "DT_R8" | "DT_DBTIMESTAMP" | "DT_DBDATE" | "DT_DATE"
            | "DT_DBTIME" | "DT_FILETIME" | "DT_CY" | "DT_GUID" | "DT_NTEXT" | "DT_IMAGE" => {
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
                    "DT_DBTIME" => DataType::DbTime,
                    "DT_FILETIME" => DataType::FileTime,
                    "DT_CY" => DataType::Cy,
                    "DT_GUID" => DataType::Guid,
                    "DT_NTEXT" => DataType::NText,
                    "DT_IMAGE" => DataType::Image,
                    _ => DataType::Date,
                }
            }
            "DT_DBTIME2" | "DT_DBTIMESTAMP2" | "DT_DBTIMESTAMPOFFSET" => {
                want(1, &format!("({upper}, fractional_seconds)"))?;
                let fs = params[0];
                if fs > u32::from(MAX_FRACTION_DIGITS) {
                    return Err(format!(
                        "the fractional seconds of {upper} must be between 0 and {MAX_FRACTION_DIGITS}, not {fs}"
                    ));
                }
                let scale = fs as u8;
                match upper.as_str() {
                    "DT_DBTIME2" => DataType::DbTime2 { scale },
                    "DT_DBTIMESTAMP2" => DataType::DbTimestamp2 { scale },
                    _ => DataType::DbTimestampOffset { scale },
                }
            }
            "DT_BYTES" => {
                want(1, "(DT_BYTES, bytecount)")?;
                let len = params[0];
                if len == 0 || len > MAX_BYTES {
                    return Err(format!(
                        "the length of DT_BYTES must be between 1 and {MAX_BYTES}, not {len}"
                    ));
                }
                DataType::Bytes { len: Some(len) }
            }
            "DT_TEXT" => {
                want(1, "(DT_TEXT, codepage)")?;
                DataType::Text {
                    codepage: params[0],
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

    /// True for every numeric type: integers, reals, decimals and currency (DT_CY).
    pub fn is_numeric(&self) -> bool {
        self.is_integer() || self.is_real() || self.is_decimal() || *self == DataType::Cy
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

    /// True for the date and time types (those with a date and the time-only ones).
    pub fn is_date(&self) -> bool {
        matches!(
            self,
            DataType::DbTimestamp
                | DataType::DbDate
                | DataType::Date
                | DataType::DbTime
                | DataType::DbTime2 { .. }
                | DataType::DbTimestamp2 { .. }
                | DataType::DbTimestampOffset { .. }
                | DataType::FileTime
        )
    }

    /// True for `DT_DBTIME` and `DT_DBTIME2`, the time types without a date.
    pub fn is_time_only(&self) -> bool {
        matches!(self, DataType::DbTime | DataType::DbTime2 { .. })
    }

    /// True for the large-object types `DT_TEXT`, `DT_NTEXT` and `DT_IMAGE`, which only
    /// cast and compare for equality.
    pub fn is_blob(&self) -> bool {
        matches!(
            self,
            DataType::Text { .. } | DataType::NText | DataType::Image
        )
    }

    /// How many fractional-second digits a date or time type keeps (0 for other types).
    pub fn fraction_digits(&self) -> u8 {
        match self {
            DataType::DbTime2 { scale }
            | DataType::DbTimestamp2 { scale }
            | DataType::DbTimestampOffset { scale } => *scale,
            DataType::DbTimestamp | DataType::Date | DataType::FileTime => 3,
            _ => 0,
        }
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
            DataType::Cy => (19, 4),
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
            DataType::DbTime => 8,
            DataType::DbTime2 { scale } => 9 + u32::from(*scale),
            DataType::DbTimestamp2 { scale } => 20 + u32::from(*scale),
            DataType::DbTimestampOffset { scale } => 27 + u32::from(*scale),
            DataType::FileTime => 23,
            DataType::Cy => 21,
            DataType::Guid => 38,
            DataType::Bytes { len } => len.map_or(4000, |n| (n * 2).min(4000)),
            DataType::Text { .. } | DataType::NText | DataType::Image | DataType::Object => 4000,
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
            DataType::Bytes { len } => format!("(DT_BYTES, {})", len.unwrap_or(MAX_BYTES)),
            DataType::Text { codepage } => format!("(DT_TEXT, {codepage})"),
            DataType::DbTime2 { scale }
            | DataType::DbTimestamp2 { scale }
            | DataType::DbTimestampOffset { scale } => {
                format!("({}, {scale})", self.ssis_name())
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
            DataType::Bytes { len: Some(n) } => write!(f, "DT_BYTES({n})"),
            DataType::Text { codepage } => write!(f, "DT_TEXT({codepage})"),
            DataType::DbTime2 { scale }
            | DataType::DbTimestamp2 { scale }
            | DataType::DbTimestampOffset { scale } => {
                write!(f, "{}({scale})", self.ssis_name())
            }
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
        assert_eq!(
            DataType::from_spec("DT_DBTIME2", &[5]),
            Ok(DataType::DbTime2 { scale: 5 })
        );
        assert!(DataType::from_spec("DT_DBTIMESTAMP2", &[8]).is_err());
        assert!(DataType::from_spec("DT_DBTIMESTAMPOFFSET", &[]).is_err());
        assert_eq!(
            DataType::from_spec("DT_BYTES", &[16]),
            Ok(DataType::Bytes { len: Some(16) })
        );
        assert!(DataType::from_spec("DT_BYTES", &[8001]).is_err());
        assert_eq!(
            DataType::from_spec("dt_text", &[1252]),
            Ok(DataType::Text { codepage: 1252 })
        );
        assert_eq!(DataType::from_spec("DT_GUID", &[]), Ok(DataType::Guid));
        assert!(DataType::from_spec("DT_CY", &[4]).is_err());
    }
}
