//! Messages of one conversation, streamed from the private store in (time, source order).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use crate::records::{Direction, Kind, MediaKind, MediaLocation, MediaRef, Message};
use crate::source::stream::Emitter;
use crate::source::SourceError;

/// The store keeps kinds as small integers: their index here.
const KINDS: [Kind; 14] = [
    Kind::Text,
    Kind::Image,
    Kind::Voice,
    Kind::Video,
    Kind::File,
    Kind::Link,
    Kind::Emoji,
    Kind::Location,
    Kind::Quote,
    Kind::RedPacket,
    Kind::Transfer,
    Kind::Recall,
    Kind::System,
    Kind::Other,
];

const MEDIA_KINDS: [MediaKind; 7] = [
    MediaKind::Image,
    MediaKind::ImageThumb,
    MediaKind::Voice,
    MediaKind::Video,
    MediaKind::VideoThumb,
    MediaKind::File,
    MediaKind::Emoji,
];

pub fn kind_code(kind: Kind) -> i64 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KINDS.len() - 1) as i64
}

fn kind_from_code(code: i64) -> Kind {
    usize::try_from(code)
        .ok()
        .and_then(|i| KINDS.get(i).copied())
        .unwrap_or(Kind::Other)
}

pub fn media_kind_code(kind: MediaKind) -> i64 {
    MEDIA_KINDS.iter().position(|k| *k == kind).unwrap_or(0) as i64
}

fn media_kind_from_code(code: i64) -> Option<MediaKind> {
    usize::try_from(code)
        .ok()
        .and_then(|i| MEDIA_KINDS.get(i).copied())
}

fn text(row: &Row, idx: usize) -> Option<String> {
    match row.get_ref(idx).ok()? {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(String::from_utf8_lossy(t).into_owned()),
        _ => None,
    }
}

fn int(row: &Row, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

pub fn read(conn: &Connection, conversation: &str, emit: &mut Emitter) -> Result<(), SourceError> {
    let store = std::path::Path::new("wecom message store");
    let error = |e: rusqlite::Error| SourceError::Corrupt {
        path: store.to_path_buf(),
        detail: e.to_string(),
    };
    let mut stmt = conn
        .prepare(
            "SELECT msgid, msgtime, sender, kind, text, raw_type, media_kind, media_path, \
             media_name, media_size, warning FROM message WHERE conv = ?1 ORDER BY msgtime, seq",
        )
        .map_err(error)?;
    let mut rows = stmt.query([conversation]).map_err(error)?;
    while let Some(row) = rows.next().map_err(error)? {
        let media = match (int(row, 6).and_then(media_kind_from_code), text(row, 7)) {
            (Some(kind), Some(path)) => vec![MediaRef {
                kind,
                location: MediaLocation::Path(path),
                original_name: text(row, 8),
                declared_size: int(row, 9).and_then(|s| u64::try_from(s).ok()),
            }],
            _ => Vec::new(),
        };
        let message = Message {
            group_id: conversation.to_string(),
            message_id: text(row, 0).unwrap_or_default(),
            time_ms: int(row, 1).unwrap_or_default(),
            sender_id: text(row, 2),
            sender_name: None,
            // The archive is the enterprise's, not one member's: nothing is "sent".
            direction: Direction::Received,
            kind: kind_from_code(int(row, 3).unwrap_or(-1)),
            text: text(row, 4).unwrap_or_default(),
            raw_type: text(row, 5).unwrap_or_default(),
            media,
            warning: text(row, 10),
        };
        if !emit.emit(message) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for kind in KINDS {
            assert_eq!(kind_from_code(kind_code(kind)), kind);
        }
        for kind in MEDIA_KINDS {
            assert_eq!(media_kind_from_code(media_kind_code(kind)), Some(kind));
        }
        assert_eq!(kind_from_code(99), Kind::Other);
    }
}
