//! The normalized record model every platform's importer produces and every sink consumes.

use std::fmt;

/// A conversation: a group chat, or (with `is_group == false`) a one-to-one chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub owner_id: Option<String>,
    /// The member count the platform declares, when it stores one.
    pub declared_member_count: Option<u64>,
    pub created_ms: Option<i64>,
    pub is_group: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    /// Another id the person is known by (WeChat `alias`, QQ number): needed to anonymize text.
    pub alias: Option<String>,
    pub display_name: String,
    pub group_nickname: String,
    /// Every other name the source holds for this member (DingTalk `realName` behind a
    /// `nick`, WeChat `nickname` behind a remark): never shown, but in anonymized exports
    /// replaced wherever it occurs, like the names above.
    pub other_names: Vec<String>,
    pub role: Role,
    pub joined_ms: Option<i64>,
    pub left: bool,
}

impl Member {
    /// The name shown for this member in the group: group nickname, else display name, else id.
    pub fn shown_name(&self) -> &str {
        if !self.group_nickname.is_empty() {
            &self.group_nickname
        } else if !self.display_name.is_empty() {
            &self.display_name
        } else {
            &self.member_id
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Sent,
    Received,
    System,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
            Direction::System => "system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    Image,
    Voice,
    Video,
    File,
    Link,
    Emoji,
    Location,
    Quote,
    RedPacket,
    Transfer,
    Recall,
    System,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Image => "image",
            Kind::Voice => "voice",
            Kind::Video => "video",
            Kind::File => "file",
            Kind::Link => "link",
            Kind::Emoji => "emoji",
            Kind::Location => "location",
            Kind::Quote => "quote",
            Kind::RedPacket => "red_packet",
            Kind::Transfer => "transfer",
            Kind::Recall => "recall",
            Kind::System => "system",
            Kind::Other => "other",
        }
    }
}

/// What a media reference is, for `media.csv` and the cleanup plan's categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    ImageThumb,
    Voice,
    Video,
    VideoThumb,
    File,
    Emoji,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::ImageThumb => "image_thumb",
            MediaKind::Voice => "voice",
            MediaKind::Video => "video",
            MediaKind::VideoThumb => "video_thumb",
            MediaKind::File => "file",
            MediaKind::Emoji => "emoji",
        }
    }

    pub fn is_thumbnail(self) -> bool {
        matches!(self, MediaKind::ImageThumb | MediaKind::VideoThumb)
    }
}

/// What a file in a source's cache directories is, for the cleanup plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheClass {
    Media(MediaKind),
    Avatar,
    /// Under a recycle bin (QQ `RecycleBin/`): its own retention clock.
    RecycleBin,
    /// A database or journal the importer reads: never deleted.
    Database,
    Other,
}

/// Where the importer says a media file is. The importer does not check the path: the
/// sink resolves it against the source root and refuses anything that escapes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaLocation {
    /// A path as the source names it: relative to the root, or absolute (then it must lie inside the root).
    Path(String),
    /// The platform never downloaded the file (WeChat `SERVERID://…`).
    NotDownloaded(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    pub kind: MediaKind,
    pub location: MediaLocation,
    /// The file's original name when the source records one (received files).
    pub original_name: Option<String>,
    /// The size the source declares, if any (the copied size is what counts).
    pub declared_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub group_id: String,
    /// The platform's unique id (falls back to the local row id).
    pub message_id: String,
    /// UTC instant, milliseconds since the Unix epoch; `None` when the source gives no time
    /// or one the outputs cannot write (see [`representable_ms`]); the importer then warns.
    pub time_ms: Option<i64>,
    /// `None` for system messages.
    pub sender_id: Option<String>,
    /// A name the source stores with the message itself (QQ's card/nickname); the pipeline
    /// otherwise names the sender from the member list.
    pub sender_name: Option<String>,
    pub direction: Direction,
    pub kind: Kind,
    pub text: String,
    /// The source's own type code(s), e.g. `49/6`.
    pub raw_type: String,
    /// The primary file first, then thumbnails.
    pub media: Vec<MediaRef>,
    /// What a reply quotes, when the source records it.
    pub quote: Option<Box<Quote>>,
    /// A red packet's terms (for `check`), when this message sends one and the source
    /// records them.
    pub red_packet: Option<Box<RedPacket>>,
    /// The red packet this system message says was claimed, when the source names it by
    /// id (WeChat's `paymsg`); text claims (`张三领取了李四的红包`) are read by `check`.
    pub claim: Option<Box<RedPacketClaim>>,
    /// Set when the row could not be fully parsed; the message is still exported.
    pub warning: Option<String>,
}

/// What a red packet's message says of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedPacket {
    /// The id claims name it by (WeChat `paymsgid`).
    pub id: Option<String>,
    /// Into how many parts it was split; `None` when the source does not say.
    pub parts: Option<u64>,
    /// The total, in fen, when the source records it.
    pub amount_fen: Option<u64>,
}

/// A claim of a red packet named by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RedPacketClaim {
    pub packet_id: String,
    pub claimer_id: Option<String>,
}

/// The message a reply quotes, as the reply itself records it (the quoted message may be
/// outside the export, or gone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quote {
    /// The quoted message's `message_id`, when the source names it.
    pub message_id: Option<String>,
    pub sender_id: Option<String>,
    pub sender_name: Option<String>,
    /// The quoted text as the reply carries it (a placeholder such as `[image]` for media).
    pub text: String,
}

/// The first and last instants the outputs can write: RFC 3339 years 0000 to 9999, in
/// milliseconds since the Unix epoch.
pub const MIN_TIME_MS: i64 = -62_167_219_200_000;
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// `ms` if it is an instant the outputs can write, else `None` (the importer warns and the
/// time is exported empty, never as a made-up date).
pub fn representable_ms(ms: i64) -> Option<i64> {
    (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms).then_some(ms)
}

/// `seconds` × 1000 if that is an instant the outputs can write.
pub fn representable_seconds(seconds: i64) -> Option<i64> {
    seconds.checked_mul(1000).and_then(representable_ms)
}

/// A message time read from `column` (milliseconds), if the outputs can write it; a
/// missing or unwritable time is left empty with a warning saying so.
pub fn checked_time_ms(column: &str, ms: Option<i64>, warnings: &mut Vec<String>) -> Option<i64> {
    match ms {
        Some(ms) => {
            let time = representable_ms(ms);
            if time.is_none() {
                warnings.push(unrepresentable_time(column, ms));
            }
            time
        }
        None => {
            warnings.push(format!("no {column}: time left empty"));
            None
        }
    }
}

/// The warning for a time column that holds no writable instant.
pub fn unrepresentable_time(column: &str, value: impl fmt::Display) -> String {
    format!("{column} {value} is not a representable time (years 0000-9999): time left empty")
}

/// A problem the importer met that does not stop the export, with where it was met.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    #[serde(rename = "where")]
    pub location: String,
    #[serde(rename = "warning")]
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

impl Message {
    /// A system message announcing that the group was dissolved (`群主已解散该群`, or any
    /// system text containing `解散`): the default dissolution time of retention.md.
    pub fn announces_dissolution(&self) -> bool {
        self.direction == Direction::System && self.text.contains("解散")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn representable_times_are_years_0000_to_9999() {
        let (first, last) = utc_bounds();
        assert_eq!(
            (first.as_str(), last.as_str()),
            ("0000-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")
        );
        assert_eq!(representable_ms(MIN_TIME_MS - 1), None);
        assert_eq!(representable_ms(MAX_TIME_MS + 1), None);
        assert_eq!(representable_ms(i64::MAX), None);
        assert_eq!(representable_ms(0), Some(0));
        assert_eq!(representable_seconds(i64::MAX), None);
        assert_eq!(
            representable_seconds(1_750_000_000),
            Some(1_750_000_000_000)
        );
    }

    fn utc_bounds() -> (String, String) {
        (
            crate::timefmt::utc_millis(MIN_TIME_MS),
            crate::timefmt::utc_millis(MAX_TIME_MS),
        )
    }
}
