//! Text forms of the binary and currency types: DT_BYTES and DT_IMAGE as hexadecimal,
//! DT_GUID as `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (with its byte layout), and DT_CY
//! (a 64-bit integer scaled by 10,000) as a decimal.

use rust_decimal::{Decimal, RoundingStrategy};

/// Bytes as lowercase hexadecimal digits, two a byte, without a `0x` prefix.
pub(crate) fn format_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Reads hexadecimal digits (either case, an optional `0x` prefix, surrounding spaces
/// allowed) into bytes.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, &'static str> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if !t.len().is_multiple_of(2) {
        return Err("expected an even number of hexadecimal digits, such as 0A1B");
    }
    let digits = t.as_bytes();
    let mut out = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks(2) {
        let hi = hex_digit(pair[0]).ok_or("expected hexadecimal digits (0-9, A-F)")?;
        let lo = hex_digit(pair[1]).ok_or("expected hexadecimal digits (0-9, A-F)")?;
        out.push(hi << 4 | lo);
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A GUID as SSIS writes it: uppercase, in braces.
pub(crate) fn format_guid(g: u128) -> String {
    let h = format!("{g:032X}");
    format!(
        "{{{}-{}-{}-{}-{}}}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Reads `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` (braces required, hex digits in either
/// case) into the 128-bit number the digits spell.
pub(crate) fn parse_guid(text: &str) -> Result<u128, &'static str> {
    const FORM: &str = "expected a GUID in braces, such as {6F9619FF-8B86-D011-B42D-00C04FC964FF}";
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or(FORM)?;
    let groups: Vec<&str> = inner.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return Err(FORM);
    }
    let digits: String = groups.concat();
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FORM);
    }
    u128::from_str_radix(&digits, 16).map_err(|_| FORM)
}

/// The 16 bytes of a GUID in the Windows layout SSIS uses for DT_GUID: the first three
/// groups little-endian, the last eight bytes as written.
pub(crate) fn guid_to_bytes(g: u128) -> [u8; 16] {
    let be = g.to_be_bytes();
    let mut out = be;
    out[0..4].copy_from_slice(&[be[3], be[2], be[1], be[0]]);
    out[4..6].copy_from_slice(&[be[5], be[4]]);
    out[6..8].copy_from_slice(&[be[7], be[6]]);
    out
}

/// The inverse of [`guid_to_bytes`]; `None` unless there are exactly 16 bytes.
pub(crate) fn guid_from_bytes(bytes: &[u8]) -> Option<u128> {
    let b: [u8; 16] = bytes.try_into().ok()?;
    let mut be = b;
    be[0..4].copy_from_slice(&[b[3], b[2], b[1], b[0]]);
    be[4..6].copy_from_slice(&[b[5], b[4]]);
    be[6..8].copy_from_slice(&[b[7], b[6]]);
    Some(u128::from_be_bytes(be))
}

/// Scale of DT_CY.
pub(crate) const CY_SCALE: u32 = 4;

/// A currency value as an exact decimal.
pub(crate) fn cy_decimal(units: i64) -> Decimal {
    Decimal::new(units, CY_SCALE)
}

/// Rounds a decimal to four places (half away from zero) as a currency value; `None` when
/// it does not fit 64 bits.
pub(crate) fn decimal_to_cy(d: Decimal) -> Option<i64> {
    let mut r = d.round_dp_with_strategy(CY_SCALE, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(CY_SCALE);
    if r.scale() != CY_SCALE {
        return None;
    }
    i64::try_from(r.mantissa()).ok()
}

/// A currency value's text: its digits without trailing zeros (`12.5`, `-3`, `0.0001`).
pub(crate) fn format_cy(units: i64) -> String {
    cy_decimal(units).normalize().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(format_hex(&[0x0a, 0xff, 0x00]), "0aff00");
        assert_eq!(parse_hex("0x0AFF00"), Ok(vec![0x0a, 0xff, 0x00]));
        assert_eq!(parse_hex(""), Ok(vec![]));
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn guids_read_and_print_with_braces() {
        let text = "{6F9619FF-8B86-D011-B42D-00C04FC964FF}";
        let g = parse_guid("{6f9619ff-8b86-d011-b42d-00c04fc964ff}").expect("guid");
        assert_eq!(format_guid(g), text);
        assert!(parse_guid("6F9619FF-8B86-D011-B42D-00C04FC964FF").is_err());
        assert!(parse_guid("{6F9619FF-8B86-D011-B42D-00C04FC964F}").is_err());
        let bytes = guid_to_bytes(g);
        assert_eq!(&bytes[0..4], &[0xff, 0x19, 0x96, 0x6f]);
        assert_eq!(
            &bytes[8..],
            &[0xb4, 0x2d, 0x00, 0xc0, 0x4f, 0xc9, 0x64, 0xff]
        );
        assert_eq!(guid_from_bytes(&bytes), Some(g));
        assert_eq!(guid_from_bytes(&bytes[1..]), None);
    }

    #[test]
    fn currency_keeps_four_places() {
        assert_eq!(decimal_to_cy(Decimal::new(125, 1)), Some(125_000));
        assert_eq!(format_cy(125_000), "12.5");
        assert_eq!(format_cy(-30_000), "-3");
        assert_eq!(format_cy(1), "0.0001");
        assert_eq!(decimal_to_cy(Decimal::new(123_456, 5)), Some(12_346));
        assert_eq!(format_cy(i64::MAX), "922337203685477.5807");
        assert_eq!(decimal_to_cy(Decimal::new(i64::MAX, 0)), None);
    }
}
