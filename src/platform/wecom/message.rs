//! Messages of one conversation, streamed from the private store in (time, source order).

use super::store::{Record, Store};

use crate::records::{Direction, Kind, MediaKind, MediaLocation, MediaRef, Message};
use crate::source::stream::Emitter;
use crate::source::SourceError;

/// The store keeps kinds as one byte: their index here.
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

/// Streams the kept messages of one conversation in (time, source order).
pub fn read(store: &Store, conversation: &str, emit: &mut Emitter) -> Result<(), SourceError> {
    store.read(conversation, |record| {
        emit.emit(to_message(record, conversation))
    })
}

fn to_message(record: &Record, conversation: &str) -> Message {
    let media = match (
        media_kind_from_code(i64::from(record.media_kind)),
        record.media_path,
    ) {
        (Some(kind), Some(path)) => vec![MediaRef {
            kind,
            location: MediaLocation::Path(path.to_string()),
            original_name: record.media_name.map(str::to_string),
            declared_size: record.media_size,
        }],
        _ => Vec::new(),
    };
    Message {
        group_id: conversation.to_string(),
        message_id: record.msgid.to_string(),
        time_ms: (record.time_ms != super::store::NO_TIME).then_some(record.time_ms),
        sender_id: record.sender.map(str::to_string),
        sender_name: None,
        // The archive is the enterprise's, not one member's: nothing is "sent".
        direction: Direction::Received,
        kind: kind_from_code(i64::from(record.kind)),
        text: record.text.to_string(),
        raw_type: record.raw_type.to_string(),
        media,
        quote: None,
        red_packet: None,
        claim: None,
        warning: record.warning.map(str::to_string),
    }
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
