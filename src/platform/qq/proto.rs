//! A small protobuf wire-format reader for QQ NT message bodies.
//!
//! Bodies come straight from the database and may be truncated, corrupted or hostile:
//! every declared length is checked against the bytes that are really there, nothing is
//! allocated from a declared length (length-delimited values are borrowed slices), and
//! groups are skipped iteratively with a depth limit instead of by recursion.

use std::fmt;

/// Groups nested deeper than this are refused (real bodies use none at all).
pub const MAX_GROUP_DEPTH: usize = 32;
/// The largest field number protobuf allows (2^29 - 1).
pub const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;
/// A varint takes at most 10 bytes.
const MAX_VARINT_LEN: usize = 10;

const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_START_GROUP: u8 = 3;
const WIRE_END_GROUP: u8 = 4;
const WIRE_FIXED32: u8 = 5;

/// Why a buffer is not valid protobuf; `at` is a byte offset into the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended inside a tag or value.
    Truncated { at: usize },
    /// A varint longer than 10 bytes, or one that overflows 64 bits.
    VarintTooLong { at: usize },
    /// A length-delimited value declares more bytes than remain.
    LengthOutOfBounds {
        at: usize,
        declared: u64,
        available: usize,
    },
    /// Wire types 6 and 7 do not exist.
    InvalidWireType { at: usize, wire_type: u8 },
    /// Field number 0 or above 2^29 - 1.
    InvalidFieldNumber { at: usize },
    /// An end-group tag with no matching start-group tag.
    UnexpectedEndGroup { at: usize, field: u32 },
    /// A start-group tag whose end-group tag never comes.
    UnterminatedGroup { at: usize, field: u32 },
    /// Groups nested deeper than [`MAX_GROUP_DEPTH`].
    GroupTooDeep { at: usize },
    /// A known field with a wire type it cannot have (e.g. a text field encoded as a varint).
    WrongWireType { field: u32, wire_type: u8 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { at } => write!(f, "truncated at byte {at}"),
            DecodeError::VarintTooLong { at } => write!(f, "overlong varint at byte {at}"),
            DecodeError::LengthOutOfBounds {
                at,
                declared,
                available,
            } => write!(
                f,
                "length {declared} at byte {at} exceeds the {available} bytes left"
            ),
            DecodeError::InvalidWireType { at, wire_type } => {
                write!(f, "invalid wire type {wire_type} at byte {at}")
            }
            DecodeError::InvalidFieldNumber { at } => {
                write!(f, "invalid field number at byte {at}")
            }
            DecodeError::UnexpectedEndGroup { at, field } => {
                write!(f, "unmatched end of group {field} at byte {at}")
            }
            DecodeError::UnterminatedGroup { at, field } => {
                write!(f, "group {field} opened at byte {at} is never closed")
            }
            DecodeError::GroupTooDeep { at } => {
                write!(
                    f,
                    "groups nested more than {MAX_GROUP_DEPTH} deep at byte {at}"
                )
            }
            DecodeError::WrongWireType { field, wire_type } => {
                write!(f, "field {field} has unexpected wire type {wire_type}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// One field's value; length-delimited values and groups borrow from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    /// The raw contents between a start-group tag and its end-group tag.
    Group(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    /// The wire type this value was encoded with.
    pub fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => WIRE_VARINT,
            Value::Fixed64(_) => WIRE_FIXED64,
            Value::Bytes(_) => WIRE_LEN,
            Value::Group(_) => WIRE_START_GROUP,
            Value::Fixed32(_) => WIRE_FIXED32,
        }
    }
}

/// Iterates over the fields of one message: `(field number, value)`, stopping after the
/// first error.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader {
            buf,
            pos: 0,
            failed: false,
        }
    }

    fn read_field(&mut self) -> Result<(u32, Value<'a>), DecodeError> {
        let tag_at = self.pos;
        let (field, wire_type) = read_key(self.buf, &mut self.pos)?;
        let value = match wire_type {
            WIRE_VARINT => Value::Varint(read_varint(self.buf, &mut self.pos)?),
            WIRE_FIXED64 => {
                let bytes = take(self.buf, &mut self.pos, 8)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(bytes);
                Value::Fixed64(u64::from_le_bytes(raw))
            }
            WIRE_LEN => Value::Bytes(read_len_delimited(self.buf, &mut self.pos)?),
            WIRE_START_GROUP => {
                let start = self.pos;
                let end = skip_group(self.buf, &mut self.pos, field, tag_at)?;
                Value::Group(self.buf.get(start..end).unwrap_or_default())
            }
            WIRE_END_GROUP => return Err(DecodeError::UnexpectedEndGroup { at: tag_at, field }),
            WIRE_FIXED32 => {
                let bytes = take(self.buf, &mut self.pos, 4)?;
                let mut raw = [0u8; 4];
                raw.copy_from_slice(bytes);
                Value::Fixed32(u32::from_le_bytes(raw))
            }
            other => {
                return Err(DecodeError::InvalidWireType {
                    at: tag_at,
                    wire_type: other,
                })
            }
        };
        Ok((field, value))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<(u32, Value<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let field = self.read_field();
        if field.is_err() {
            self.failed = true;
        }
        Some(field)
    }
}

/// Reads a varint at `pos`, advancing it.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, DecodeError> {
    let start = *pos;
    let mut value: u64 = 0;
    for index in 0..MAX_VARINT_LEN {
        let byte = *buf.get(*pos).ok_or(DecodeError::Truncated { at: start })?;
        *pos += 1;
        // The tenth byte may only carry the 64th bit.
        if index == MAX_VARINT_LEN - 1 && byte > 1 {
            return Err(DecodeError::VarintTooLong { at: start });
        }
        value |= u64::from(byte & 0x7F) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::VarintTooLong { at: start })
}

fn read_key(buf: &[u8], pos: &mut usize) -> Result<(u32, u8), DecodeError> {
    let at = *pos;
    let key = read_varint(buf, pos)?;
    let wire_type = (key & 7) as u8;
    let field = key >> 3;
    if field == 0 || field > MAX_FIELD_NUMBER {
        return Err(DecodeError::InvalidFieldNumber { at });
    }
    Ok((field as u32, wire_type))
}

/// Takes `len` bytes at `pos` if they are there.
fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], DecodeError> {
    let at = *pos;
    let end = at.checked_add(len).ok_or(DecodeError::Truncated { at })?;
    let bytes = buf.get(at..end).ok_or(DecodeError::Truncated { at })?;
    *pos = end;
    Ok(bytes)
}

fn read_len_delimited<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8], DecodeError> {
    let at = *pos;
    let declared = read_varint(buf, pos)?;
    let available = buf.len().saturating_sub(*pos);
    match usize::try_from(declared) {
        Ok(len) if len <= available => take(buf, pos, len),
        _ => Err(DecodeError::LengthOutOfBounds {
            at,
            declared,
            available,
        }),
    }
}

/// Skips a group whose start tag (for `field`, at `tag_at`) was just read; returns where
/// its contents end (the offset of the matching end-group tag).
fn skip_group(
    buf: &[u8],
    pos: &mut usize,
    field: u32,
    tag_at: usize,
) -> Result<usize, DecodeError> {
    // The open groups' field numbers, innermost last; a fixed array, so no allocation.
    let mut open = [0u32; MAX_GROUP_DEPTH];
    open[0] = field;
    let mut depth = 1;
    loop {
        if *pos >= buf.len() {
            return Err(DecodeError::UnterminatedGroup { at: tag_at, field });
        }
        let inner_at = *pos;
        let (inner, wire_type) = read_key(buf, pos)?;
        match wire_type {
            WIRE_VARINT => {
                read_varint(buf, pos)?;
            }
            WIRE_FIXED64 => {
                take(buf, pos, 8)?;
            }
            WIRE_LEN => {
                read_len_delimited(buf, pos)?;
            }
            WIRE_START_GROUP => {
                if depth >= MAX_GROUP_DEPTH {
                    return Err(DecodeError::GroupTooDeep { at: inner_at });
                }
                open[depth] = inner;
                depth += 1;
            }
            WIRE_END_GROUP => {
                if open[depth - 1] != inner {
                    return Err(DecodeError::UnexpectedEndGroup {
                        at: inner_at,
                        field: inner,
                    });
                }
                depth -= 1;
                if depth == 0 {
                    return Ok(inner_at);
                }
            }
            WIRE_FIXED32 => {
                take(buf, pos, 4)?;
            }
            other => {
                return Err(DecodeError::InvalidWireType {
                    at: inner_at,
                    wire_type: other,
                })
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tiny encoder for building test inputs.
    pub(crate) fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    pub(crate) fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
        varint(out, (u64::from(field) << 3) | u64::from(wire_type));
    }

    pub(crate) fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
        key(out, field, WIRE_LEN);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    fn all(buf: &[u8]) -> Result<Vec<(u32, Value<'_>)>, DecodeError> {
        Reader::new(buf).collect()
    }

    #[test]
    fn reads_every_wire_type() {
        let mut buf = Vec::new();
        key(&mut buf, 1, WIRE_VARINT);
        varint(&mut buf, 300);
        key(&mut buf, 2, WIRE_FIXED64);
        buf.extend_from_slice(&7u64.to_le_bytes());
        bytes_field(&mut buf, 40800, b"hello");
        key(&mut buf, 4, WIRE_START_GROUP);
        key(&mut buf, 5, WIRE_VARINT);
        varint(&mut buf, 1);
        key(&mut buf, 4, WIRE_END_GROUP);
        key(&mut buf, 6, WIRE_FIXED32);
        buf.extend_from_slice(&9u32.to_le_bytes());
        let fields = all(&buf).unwrap();
        assert_eq!(
            fields,
            vec![
                (1, Value::Varint(300)),
                (2, Value::Fixed64(7)),
                (40800, Value::Bytes(b"hello")),
                (4, Value::Group(&[0x28, 0x01])),
                (6, Value::Fixed32(9)),
            ]
        );
    }

    #[test]
    fn empty_input_has_no_fields() {
        assert_eq!(all(&[]).unwrap(), vec![]);
    }

    #[test]
    fn max_varint_and_overflow() {
        let mut buf = Vec::new();
        key(&mut buf, 1, WIRE_VARINT);
        varint(&mut buf, u64::MAX);
        assert_eq!(all(&buf).unwrap(), vec![(1, Value::Varint(u64::MAX))]);
        // Eleven continuation bytes, and a tenth byte carrying more than one bit.
        let too_long = [
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
        ];
        assert!(matches!(
            all(&too_long),
            Err(DecodeError::VarintTooLong { .. })
        ));
        let overflow = [
            0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
        ];
        assert!(matches!(
            all(&overflow),
            Err(DecodeError::VarintTooLong { .. })
        ));
    }

    #[test]
    fn truncated_inputs_fail_cleanly() {
        let mut buf = Vec::new();
        bytes_field(&mut buf, 40800, b"some element bytes");
        let boundary = buf.len();
        key(&mut buf, 2, WIRE_FIXED64);
        buf.extend_from_slice(&1u64.to_le_bytes());
        // Every cut that is not between two fields leaves a field unfinished.
        for cut in (1..buf.len()).filter(|c| *c != boundary) {
            assert!(all(&buf[..cut]).is_err(), "cut at {cut} parsed");
        }
        assert!(matches!(all(&[0x80]), Err(DecodeError::Truncated { .. })));
        assert!(matches!(
            all(&[0x0D, 1, 2]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn huge_declared_lengths_allocate_nothing_and_fail() {
        let mut buf = Vec::new();
        key(&mut buf, 40800, WIRE_LEN);
        varint(&mut buf, u64::MAX);
        buf.extend_from_slice(b"abc");
        assert!(matches!(
            all(&buf),
            Err(DecodeError::LengthOutOfBounds { available: 3, .. })
        ));
        let mut buf = Vec::new();
        key(&mut buf, 1, WIRE_LEN);
        varint(&mut buf, 0xFFFF_FFFF);
        assert!(matches!(
            all(&buf),
            Err(DecodeError::LengthOutOfBounds { .. })
        ));
    }

    #[test]
    fn invalid_wire_types_and_field_numbers() {
        assert!(matches!(
            all(&[0x0E, 0]),
            Err(DecodeError::InvalidWireType { wire_type: 6, .. })
        ));
        assert!(matches!(
            all(&[0x0F, 0]),
            Err(DecodeError::InvalidWireType { wire_type: 7, .. })
        ));
        assert!(matches!(
            all(&[0x00, 0]),
            Err(DecodeError::InvalidFieldNumber { .. })
        ));
        let mut buf = Vec::new();
        varint(&mut buf, (MAX_FIELD_NUMBER + 1) << 3);
        buf.push(0);
        assert!(matches!(
            all(&buf),
            Err(DecodeError::InvalidFieldNumber { .. })
        ));
    }

    #[test]
    fn groups_must_be_balanced() {
        // A stray end-group at the top level.
        let mut buf = Vec::new();
        key(&mut buf, 3, WIRE_END_GROUP);
        assert!(matches!(
            all(&buf),
            Err(DecodeError::UnexpectedEndGroup { .. })
        ));
        // A group that never ends.
        let mut buf = Vec::new();
        key(&mut buf, 3, WIRE_START_GROUP);
        key(&mut buf, 1, WIRE_VARINT);
        varint(&mut buf, 5);
        assert!(matches!(
            all(&buf),
            Err(DecodeError::UnterminatedGroup { field: 3, .. })
        ));
        // Ended by the wrong field number.
        let mut buf = Vec::new();
        key(&mut buf, 3, WIRE_START_GROUP);
        key(&mut buf, 4, WIRE_END_GROUP);
        assert!(matches!(
            all(&buf),
            Err(DecodeError::UnexpectedEndGroup { field: 4, .. })
        ));
        // Nested groups within the limit are skipped whole.
        let mut buf = Vec::new();
        for field in 1..=5 {
            key(&mut buf, field, WIRE_START_GROUP);
        }
        for field in (1..=5).rev() {
            key(&mut buf, field, WIRE_END_GROUP);
        }
        bytes_field(&mut buf, 9, b"after");
        let fields = all(&buf).unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1], (9, Value::Bytes(b"after")));
    }

    #[test]
    fn a_group_bomb_is_refused_without_recursion() {
        // A million nested start-group tags: must fail fast, not overflow the stack.
        let mut buf = Vec::new();
        for _ in 0..1_000_000 {
            key(&mut buf, 1, WIRE_START_GROUP);
        }
        assert!(matches!(all(&buf), Err(DecodeError::GroupTooDeep { .. })));
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut buf = Vec::new();
        key(&mut buf, 1, WIRE_VARINT);
        varint(&mut buf, 1);
        buf.extend_from_slice(&[0x0F, 0x08, 0x01]);
        let mut reader = Reader::new(&buf);
        assert_eq!(reader.next(), Some(Ok((1, Value::Varint(1)))));
        assert!(matches!(reader.next(), Some(Err(_))));
        assert_eq!(reader.next(), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut count = 0usize;
            for field in Reader::new(&bytes) {
                count += 1;
                if let Ok((number, value)) = field {
                    prop_assert!(number >= 1 && u64::from(number) <= MAX_FIELD_NUMBER);
                    if let Value::Bytes(b) | Value::Group(b) = value {
                        prop_assert!(b.len() <= bytes.len());
                    }
                }
            }
            // Every field consumes at least one byte.
            prop_assert!(count <= bytes.len());
        }

        #[test]
        fn never_panics_on_mutated_valid_bodies(
            texts in proptest::collection::vec(".{0,20}", 0..5),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
            cut in any::<usize>(),
        ) {
            let mut buf = Vec::new();
            for text in &texts {
                let mut element = Vec::new();
                key(&mut element, 45002, WIRE_VARINT);
                varint(&mut element, 1);
                bytes_field(&mut element, 45101, text.as_bytes());
                bytes_field(&mut buf, 40800, &element);
            }
            for (at, byte) in flips {
                if !buf.is_empty() {
                    let at = at % buf.len();
                    buf[at] ^= byte;
                }
            }
            let cut = if buf.is_empty() { 0 } else { cut % (buf.len() + 1) };
            for field in Reader::new(&buf[..cut]) {
                if let Ok((_, Value::Bytes(inner))) = field {
                    for inner_field in Reader::new(inner) {
                        let _ = inner_field;
                    }
                }
            }
        }
    }
}
