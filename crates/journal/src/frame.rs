//! Frames: the checksummed envelope around every payload on disk.
//!
//! ```text
//! offset  size  field
//! 0       3     magic "CFJ"
//! 3       1     format version (1)
//! 4       4     payload length, u32 little-endian
//! 8       4     CRC-32C of bytes 4..8 then the payload, u32 little-endian
//! 12      len   payload (UTF-8 JSON, see `record.rs`)
//! ```
//!
//! This module knows nothing about what payloads mean; `reader.rs` does.

/// The first three bytes of every frame.
pub(crate) const MAGIC_PREFIX: [u8; 3] = *b"CFJ";

/// Bytes before the payload: magic (4), length (4), CRC (4).
pub(crate) const FRAME_HEADER_LEN: usize = 12;

/// Why the bytes at an offset are not a whole, valid frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Fewer bytes remain than the frame header or its declared length needs.
    Short { remaining: usize, needed: usize },
    /// The first four bytes are not "CFJ" followed by the expected version.
    BadMagic,
    /// The payload's CRC-32C does not match the one stored in the frame.
    BadChecksum { stored: u32, computed: u32 },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Short { remaining, needed } => {
                write!(f, "short frame: {remaining} bytes left, {needed} needed")
            }
            FrameError::BadMagic => write!(f, "bad frame magic"),
            FrameError::BadChecksum { stored, computed } => write!(
                f,
                "checksum mismatch: stored {stored:08x}, computed {computed:08x}"
            ),
        }
    }
}

/// The four magic bytes for a format version.
pub(crate) fn magic(version: u8) -> [u8; 4] {
    [MAGIC_PREFIX[0], MAGIC_PREFIX[1], MAGIC_PREFIX[2], version]
}

/// CRC-32C over the length field and the payload. Covering the length
/// means a header whose length and CRC were both lost to zeros (len 0, CRC 0)
/// does not pass for a valid empty frame.
fn checksum(len_field: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_field), payload)
}

/// Wraps a payload in a frame. Fails only if the payload exceeds `u32::MAX` bytes.
pub(crate) fn encode(version: u8, payload: &[u8]) -> Result<Vec<u8>, String> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        format!(
            "record of {} bytes exceeds the 4 GiB frame limit",
            payload.len()
        )
    })?;
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&magic(version));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&checksum(&len.to_le_bytes(), payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Decodes the frame starting at `off`: its payload and the offset just after it.
pub(crate) fn decode_at(
    bytes: &[u8],
    off: usize,
    version: u8,
) -> Result<(&[u8], usize), FrameError> {
    let remaining = bytes.len().saturating_sub(off);
    if remaining < FRAME_HEADER_LEN {
        return Err(FrameError::Short {
            remaining,
            needed: FRAME_HEADER_LEN,
        });
    }
    if bytes[off..off + 4] != magic(version) {
        return Err(FrameError::BadMagic);
    }
    let len = u32_at(bytes, off + 4) as usize;
    let needed = FRAME_HEADER_LEN.saturating_add(len);
    if remaining < needed {
        return Err(FrameError::Short { remaining, needed });
    }
    let stored = u32_at(bytes, off + 8);
    let payload = &bytes[off + FRAME_HEADER_LEN..off + needed];
    let computed = checksum(&bytes[off + 4..off + 8], payload);
    if stored != computed {
        return Err(FrameError::BadChecksum { stored, computed });
    }
    Ok((payload, off + needed))
}

/// The offset of the first whole, valid frame that starts after `from`, if any.
///
/// Used only when the frame at `from` is bad, to tell a torn tail (nothing
/// valid follows) from corruption in the middle (a valid frame follows). The
/// magic ends in the version byte 0x01, which JSON payloads never contain raw
/// (JSON escapes control characters), so candidates are rare.
pub(crate) fn valid_frame_after(bytes: &[u8], from: usize, version: u8) -> Option<usize> {
    let m = magic(version);
    let mut at = from + 1;
    while at + FRAME_HEADER_LEN <= bytes.len() {
        let window = &bytes[at..];
        let next = window.windows(4).position(|w| w == m)?;
        let candidate = at + next;
        if decode_at(bytes, candidate, version).is_ok() {
            return Some(candidate);
        }
        at = candidate + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let a = encode(1, b"{\"a\":1}").expect("small payload");
        let b = encode(1, b"").expect("empty payload");
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let (p, next) = decode_at(&all, 0, 1).expect("first frame");
        assert_eq!(p, b"{\"a\":1}");
        assert_eq!(next, a.len());
        let (p, next) = decode_at(&all, next, 1).expect("second frame");
        assert_eq!(p, b"");
        assert_eq!(next, all.len());
        assert_eq!(&a[..4], b"CFJ\x01");
    }

    #[test]
    fn every_kind_of_damage_is_told_apart() {
        let f = encode(1, b"payload").expect("small payload");
        for cut in 0..f.len() {
            assert!(matches!(
                decode_at(&f[..cut], 0, 1),
                Err(FrameError::Short { .. })
            ));
        }
        let mut bad = f.clone();
        bad[0] ^= 1;
        assert_eq!(decode_at(&bad, 0, 1), Err(FrameError::BadMagic));
        assert_eq!(decode_at(&f, 0, 2), Err(FrameError::BadMagic));
        let mut bad = f.clone();
        bad[FRAME_HEADER_LEN + 2] ^= 0x10;
        assert!(matches!(
            decode_at(&bad, 0, 1),
            Err(FrameError::BadChecksum { .. })
        ));
    }

    #[test]
    fn a_zeroed_length_and_checksum_is_not_a_valid_empty_frame() {
        let mut f = magic(1).to_vec();
        f.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            decode_at(&f, 0, 1),
            Err(FrameError::BadChecksum { .. })
        ));
    }

    #[test]
    fn valid_frame_after_finds_the_next_good_frame_only() {
        let a = encode(1, b"aaaa").expect("small payload");
        let b = encode(1, b"bbbb").expect("small payload");
        let mut all = a.clone();
        all.extend_from_slice(&b);
        all[FRAME_HEADER_LEN] ^= 0xff;
        assert_eq!(valid_frame_after(&all, 0, 1), Some(a.len()));
        assert_eq!(valid_frame_after(&all, a.len(), 1), None);
        assert_eq!(valid_frame_after(&[0u8; 40], 0, 1), None);
    }
}
