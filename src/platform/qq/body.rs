//! The message body (`"40800"` column): a protobuf whose repeated field 40800 (or 48000 in
//! some versions) holds one element per segment of the message.

use super::proto::{DecodeError, Reader, Value};

pub use super::schema::element_type;
use super::schema::field;

/// One segment of a message; strings are raw bytes borrowed from the body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element<'a> {
    pub element_type: Option<u64>,
    pub text: Option<&'a [u8]>,
    pub file_name: Option<&'a [u8]>,
    pub file_path: Option<&'a [u8]>,
    pub file_size: Option<u64>,
    pub md5: Option<&'a [u8]>,
    pub voice_seconds: Option<u64>,
    pub video_seconds: Option<u64>,
    pub face_text: Option<&'a [u8]>,
    pub red_packet_title: Option<&'a [u8]>,
    pub red_packet_parts: Option<u64>,
}

impl<'a> Element<'a> {
    pub fn is(&self, element_type: u64) -> bool {
        self.element_type == Some(element_type)
    }
}

/// Decodes a body into its elements. Unknown fields of any wire type are skipped; a known
/// field with the wrong wire type, or any malformed bytes, is an error.
pub fn parse(body: &[u8]) -> Result<Vec<Element<'_>>, DecodeError> {
    let mut elements = Vec::new();
    for field in Reader::new(body) {
        let (number, value) = field?;
        if number == field::ELEMENT || number == field::ELEMENT_ALT {
            match value {
                Value::Bytes(bytes) => elements.push(parse_element(bytes)?),
                other => return Err(wrong(number, &other)),
            }
        }
    }
    Ok(elements)
}

fn wrong(field: u32, value: &Value) -> DecodeError {
    DecodeError::WrongWireType {
        field,
        wire_type: value.wire_type(),
    }
}

fn parse_element(bytes: &[u8]) -> Result<Element<'_>, DecodeError> {
    let mut element = Element::default();
    for field in Reader::new(bytes) {
        let (number, value) = field?;
        let slot_bytes = match number {
            field::TEXT => Some(&mut element.text),
            field::FILE_NAME => Some(&mut element.file_name),
            field::FILE_PATH => Some(&mut element.file_path),
            field::MD5 => Some(&mut element.md5),
            field::FACE_TEXT => Some(&mut element.face_text),
            field::RED_PACKET_TITLE => Some(&mut element.red_packet_title),
            _ => None,
        };
        if let Some(slot) = slot_bytes {
            match value {
                Value::Bytes(b) => *slot = Some(b),
                other => return Err(wrong(number, &other)),
            }
            continue;
        }
        let slot_number = match number {
            field::ELEMENT_TYPE => Some(&mut element.element_type),
            field::FILE_SIZE => Some(&mut element.file_size),
            field::VOICE_SECONDS => Some(&mut element.voice_seconds),
            field::VIDEO_SECONDS => Some(&mut element.video_seconds),
            field::RED_PACKET_PARTS => Some(&mut element.red_packet_parts),
            _ => None,
        };
        if let Some(slot) = slot_number {
            match value {
                Value::Varint(n) => *slot = Some(n),
                other => return Err(wrong(number, &other)),
            }
        }
        // Anything else (element id 45001 included) is not needed.
    }
    Ok(element)
}

/// Text and face elements joined in order: the text of a message (sources.md §2).
/// Returns `true` in the flag when some bytes were not valid UTF-8.
pub fn message_text(elements: &[Element]) -> (String, bool) {
    let mut text = String::new();
    let mut lossy = false;
    for element in elements {
        let part = match element.element_type {
            Some(element_type::TEXT) => element.text,
            Some(element_type::FACE) => element.face_text.or(element.text),
            _ => None,
        };
        if let Some(bytes) = part {
            lossy |= push_utf8(&mut text, bytes);
        }
    }
    (text, lossy)
}

/// The text of a grey tip: its type-8 elements' `45101`, else any text elements.
pub fn grey_tip_text(elements: &[Element]) -> (String, bool) {
    let mut text = String::new();
    let mut lossy = false;
    for element in elements.iter().filter(|e| e.is(element_type::GREY_TIP)) {
        if let Some(bytes) = element.text {
            lossy |= push_utf8(&mut text, bytes);
        }
    }
    if text.is_empty() {
        return message_text(elements);
    }
    (text, lossy)
}

/// Appends `bytes` as UTF-8, replacing invalid sequences; `true` when any were replaced.
pub fn push_utf8(out: &mut String, bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(s);
            false
        }
        Err(_) => {
            out.push_str(&String::from_utf8_lossy(bytes));
            true
        }
    }
}

/// A string field as text (invalid bytes replaced).
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::super::proto::tests::{bytes_field, key, varint};
    use super::*;
    use proptest::prelude::*;

    fn element(fields: &[(u32, &[u8])], numbers: &[(u32, u64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (field, n) in numbers {
            key(&mut out, *field, 0);
            varint(&mut out, *n);
        }
        for (field, bytes) in fields {
            bytes_field(&mut out, *field, bytes);
        }
        out
    }

    #[test]
    fn text_and_face_elements_are_concatenated_for_both_field_numbers() {
        let mut body = Vec::new();
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(&[(field::TEXT, "你好".as_bytes())], &[(45002, 1)]),
        );
        bytes_field(
            &mut body,
            field::ELEMENT_ALT,
            &element(&[(field::FACE_TEXT, "/捂脸".as_bytes())], &[(45002, 6)]),
        );
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(
                &[(field::FILE_PATH, b"/x/nt_data/Pic/a.jpg")],
                &[(45002, 2)],
            ),
        );
        let elements = parse(&body).unwrap();
        assert_eq!(elements.len(), 3);
        assert_eq!(message_text(&elements), ("你好/捂脸".to_string(), false));
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut el = Vec::new();
        key(&mut el, 45001, 0);
        varint(&mut el, 123);
        key(&mut el, 45999, 1);
        el.extend_from_slice(&[0; 8]);
        key(&mut el, 46000, 3);
        key(&mut el, 1, 0);
        varint(&mut el, 1);
        key(&mut el, 46000, 4);
        key(&mut el, 46001, 5);
        el.extend_from_slice(&[0; 4]);
        bytes_field(&mut el, 46002, b"\xff\xfe junk");
        key(&mut el, 45002, 0);
        varint(&mut el, 1);
        bytes_field(&mut el, field::TEXT, b"ok");
        let mut body = Vec::new();
        key(&mut body, 1, 5);
        body.extend_from_slice(&[1, 2, 3, 4]);
        bytes_field(&mut body, field::ELEMENT, &el);
        let elements = parse(&body).unwrap();
        assert_eq!(message_text(&elements).0, "ok");
    }

    #[test]
    fn a_red_packet_names_its_parts_in_48444() {
        let mut body = Vec::new();
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(
                &[(field::RED_PACKET_TITLE, "恭喜发财".as_bytes())],
                &[(45002, 9), (field::RED_PACKET_PARTS, 5)],
            ),
        );
        let elements = parse(&body).unwrap();
        assert_eq!(elements[0].red_packet_parts, Some(5));
        assert_eq!(elements[0].red_packet_title, Some("恭喜发财".as_bytes()));
    }

    #[test]
    fn known_fields_with_the_wrong_wire_type_are_errors() {
        let mut body = Vec::new();
        key(&mut body, field::ELEMENT, 0);
        varint(&mut body, 5);
        assert!(matches!(
            parse(&body),
            Err(DecodeError::WrongWireType { field: 40800, .. })
        ));
        let mut el = Vec::new();
        key(&mut el, field::TEXT, 0);
        varint(&mut el, 5);
        let mut body = Vec::new();
        bytes_field(&mut body, field::ELEMENT, &el);
        assert!(parse(&body).is_err());
    }

    #[test]
    fn a_truncated_element_is_an_error() {
        let mut body = Vec::new();
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(&[(field::TEXT, b"hello world")], &[(45002, 1)]),
        );
        for cut in 1..body.len() {
            assert!(parse(&body[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_and_flagged() {
        let mut body = Vec::new();
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(&[(field::TEXT, b"a\xffb")], &[(45002, 1)]),
        );
        let elements = parse(&body).unwrap();
        assert_eq!(message_text(&elements), ("a\u{FFFD}b".to_string(), true));
    }

    #[test]
    fn grey_tip_text_prefers_type_8_elements() {
        let mut body = Vec::new();
        bytes_field(
            &mut body,
            field::ELEMENT,
            &element(&[(field::TEXT, "群主已解散该群".as_bytes())], &[(45002, 8)]),
        );
        let elements = parse(&body).unwrap();
        assert_eq!(grey_tip_text(&elements).0, "群主已解散该群");
        assert_eq!(message_text(&elements).0, "");
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(elements) = parse(&bytes) {
                let _ = message_text(&elements);
                let _ = grey_tip_text(&elements);
            }
        }
    }
}
