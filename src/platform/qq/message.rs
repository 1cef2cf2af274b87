//! `group_msg_table` in `nt_db/nt_msg.db`: one row per message, columns named by protobuf
//! field numbers, the content in the `"40800"` body protobuf.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use super::body::{self, element_type, Element};
use super::MSG_DB;
use crate::records::{
    representable_seconds, unrepresentable_time, Direction, Kind, MediaKind, MediaLocation,
    MediaRef, Message, RedPacket,
};
use crate::source::sqlite::map_sqlite_error;
use crate::source::stream::Emitter;
use crate::source::SourceError;

pub const TABLE: &str = "group_msg_table";

/// Columns without which no message can be read.
pub const REQUIRED_COLUMNS: [&str; 4] = ["40001", "40011", "40050", "40800"];
/// Where the group number can be: `"40027"`, `"40030"` (integers), `"40021"` (group code, text).
pub const GROUP_COLUMNS: [&str; 3] = ["40027", "40030", "40021"];

/// The columns read per message, in this order; a missing optional column reads as NULL.
const SELECTED: [&str; 9] = [
    "40001", "40003", "40011", "40012", "40013", "40020", "40050", "40090", "40093",
];
const BODY: &str = "40800";

mod msg_type {
    pub const RICH_TEXT: i64 = 2;
    pub const GROUP_FILE: i64 = 3;
    pub const GREY_TIP: i64 = 5;
    pub const VOICE: i64 = 6;
    pub const VIDEO: i64 = 7;
    pub const MERGED_FORWARD: i64 = 8;
    pub const REPLY: i64 = 9;
    pub const RED_PACKET: i64 = 10;
    pub const APP_CARD: i64 = 11;
}
/// subMsgType bits with msgType 2, and grey-tip subtypes.
const SUB_LINK: i64 = 128;
const SUB_RECALL_TIP: i64 = 4;
/// sendType: 1 this device, 2 another device of the account owner.
const SENT_TYPES: [i64; 2] = [1, 2];

/// How rows are tied to a group, decided once from the table's columns and contents.
#[derive(Debug, Clone)]
pub enum GroupKey {
    /// Every row has this integer column set: compared directly (index-friendly).
    Column(&'static str),
    /// Some rows lack the first column: the first non-NULL of these, compared as text.
    Coalesce(Vec<&'static str>),
}

impl GroupKey {
    /// The SQL expression whose value is the group id.
    pub fn expression(&self) -> String {
        match self {
            GroupKey::Column(column) => format!("\"{column}\""),
            GroupKey::Coalesce(columns) => {
                let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
                format!("CAST(COALESCE({}) AS TEXT)", quoted.join(", "))
            }
        }
    }
}

/// The group id as SQLite returns it: integers and text alike become a string.
pub fn group_id_of(value: ValueRef) -> Option<String> {
    match value {
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(f) if f.fract() == 0.0 => Some(format!("{f:.0}")),
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let s = String::from_utf8_lossy(t);
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        ValueRef::Null => None,
    }
}

/// What a producer thread needs to read one group.
pub struct Query {
    pub group_id: String,
    pub key: GroupKey,
    /// Columns of the table, to select NULL for the absent optional ones.
    pub columns: Vec<String>,
    pub has_rowid: bool,
}

impl Query {
    fn sql(&self) -> String {
        let has = |name: &str| self.columns.iter().any(|c| c == name);
        let mut select: Vec<String> = SELECTED
            .iter()
            .map(|c| {
                if has(c) {
                    format!("\"{c}\"")
                } else {
                    "NULL".to_string()
                }
            })
            .collect();
        select.push(format!("\"{BODY}\""));
        select.push(if self.has_rowid { "rowid" } else { "NULL" }.to_string());
        let seq = if has("40003") { "\"40003\", " } else { "" };
        format!(
            "SELECT {} FROM {TABLE} WHERE {} = ?1 ORDER BY \"40050\", {seq}\"40001\"",
            select.join(", "),
            self.key.expression()
        )
    }
}

/// Integers as stored, which is not always as INTEGER.
fn int(row: &Row, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// A non-empty text column; `lossy` is set when invalid UTF-8 was replaced.
fn text(row: &Row, idx: usize, lossy: &mut bool) -> Option<String> {
    let value = match row.get_ref(idx).ok()? {
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            let mut s = String::new();
            *lossy |= body::push_utf8(&mut s, t);
            s
        }
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => f.to_string(),
        ValueRef::Null => return None,
    };
    (!value.is_empty()).then_some(value)
}

pub fn read(conn: &Connection, query: &Query, emit: &mut Emitter) -> Result<(), SourceError> {
    let db_path = Path::new(MSG_DB);
    let mut stmt = conn
        .prepare(&query.sql())
        .map_err(|e| map_sqlite_error(db_path, e))?;
    let bound = bind_value(&query.key, &query.group_id);
    let mut rows = stmt
        .query([bound])
        .map_err(|e| map_sqlite_error(db_path, e))?;
    while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
        let message = interpret(row, &query.group_id);
        if !emit.emit(message) {
            break;
        }
    }
    Ok(())
}

/// Integer columns compare with an integer (so an index can serve); text with text.
pub fn bind_value(key: &GroupKey, group_id: &str) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match (key, group_id.parse::<i64>()) {
        (GroupKey::Column(column), Ok(n)) if *column != "40021" => Value::Integer(n),
        _ => Value::Text(group_id.to_string()),
    }
}

pub(crate) fn interpret(row: &Row, group_id: &str) -> Message {
    let mut warnings: Vec<&'static str> = Vec::new();
    let mut detail: Option<String> = None;
    let mut lossy = false;
    let msg_id = int(row, 0);
    let msg_type = int(row, 2);
    let sub_type = int(row, 3);
    let send_type = int(row, 4);
    let uid = text(row, 5, &mut lossy);
    let seconds = int(row, 6);
    let card = text(row, 7, &mut lossy);
    let nickname = text(row, 8, &mut lossy);
    let rowid = int(row, 10);

    let message_id = match (msg_id, rowid) {
        (Some(id), _) => id.to_string(),
        (None, Some(rowid)) => {
            warnings.push("no msgId (40001): the row id is used");
            format!("rowid:{rowid}")
        }
        (None, None) => {
            warnings.push("no msgId (40001)");
            String::new()
        }
    };
    let time_ms = match seconds {
        Some(s) => {
            let time = representable_seconds(s);
            if time.is_none() {
                detail = Some(unrepresentable_time("message time (40050)", s));
            }
            time
        }
        None => {
            warnings.push("no message time (40050): time left empty");
            None
        }
    };
    let is_system = msg_type == Some(msg_type::GREY_TIP);
    let direction = if is_system {
        Direction::System
    } else if send_type.is_some_and(|t| SENT_TYPES.contains(&t)) {
        Direction::Sent
    } else {
        Direction::Received
    };
    let (sender_id, sender_name) = if is_system {
        (None, None)
    } else {
        (uid, card.or(nickname))
    };
    let raw_type = match (msg_type, sub_type) {
        (Some(t), Some(s)) => format!("{t}/{s}"),
        (Some(t), None) => t.to_string(),
        (None, _) => String::new(),
    };

    let described = match row.get_ref(9) {
        Ok(ValueRef::Blob(bytes)) | Ok(ValueRef::Text(bytes)) => match body::parse(bytes) {
            Ok(elements) => describe(msg_type, sub_type, &elements, time_ms),
            Err(error) => {
                let malformed = format!("malformed message body: {error}");
                detail = Some(match detail.take() {
                    Some(d) => format!("{d}; {malformed}"),
                    None => malformed,
                });
                Described::other(printable(bytes))
            }
        },
        // A grey tip with no body is still a system message, only an empty one.
        _ if is_system => Described {
            kind: Kind::System,
            ..Described::other(String::new())
        },
        _ => {
            warnings.push("no message body (40800 is NULL)");
            Described::other(String::new())
        }
    };
    let Described {
        kind,
        text,
        media,
        red_packet,
        warning,
        lossy: body_lossy,
    } = described;
    if lossy || body_lossy {
        warnings.push("text is not valid UTF-8; invalid bytes replaced");
    }
    if let Some(w) = warning {
        warnings.push(w);
    }
    let warning = match (detail, warnings.is_empty()) {
        (None, true) => None,
        (None, false) => Some(warnings.join("; ")),
        (Some(d), true) => Some(d),
        (Some(d), false) => Some(format!("{d}; {}", warnings.join("; "))),
    };
    Message {
        group_id: group_id.to_string(),
        message_id,
        time_ms,
        sender_id,
        sender_name,
        direction,
        kind,
        text,
        raw_type,
        media,
        quote: None,
        red_packet,
        claim: None,
        warning,
    }
}

/// A body that does not parse, shown as text when it is printable UTF-8.
fn printable(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            s.to_string()
        }
        _ => format!("[unreadable message body, {} bytes]", bytes.len()),
    }
}

struct Described {
    kind: Kind,
    text: String,
    media: Vec<MediaRef>,
    red_packet: Option<Box<RedPacket>>,
    warning: Option<&'static str>,
    lossy: bool,
}

impl Described {
    fn other(text: String) -> Described {
        Described {
            kind: Kind::Other,
            text,
            media: Vec::new(),
            red_packet: None,
            warning: None,
            lossy: false,
        }
    }
}

fn describe(
    msg_type: Option<i64>,
    sub_type: Option<i64>,
    elements: &[Element],
    time_ms: Option<i64>,
) -> Described {
    let (text, lossy) = body::message_text(elements);
    let mut out = Described {
        lossy,
        ..Described::other(text)
    };
    let first = |t: u64| elements.iter().find(|e| e.is(t));
    let Some(code) = msg_type else {
        out.warning = Some("no msgType (40011)");
        return out;
    };
    match code {
        msg_type::RICH_TEXT => {
            for picture in elements.iter().filter(|e| e.is(element_type::PICTURE)) {
                out.media.extend(picture_refs(picture, time_ms));
            }
            let has_picture = elements.iter().any(|e| e.is(element_type::PICTURE));
            out.kind = if sub_type.is_some_and(|s| s & SUB_LINK != 0) {
                Kind::Link
            } else if out.text.is_empty() && has_picture {
                out.text = "[image]".into();
                Kind::Image
            } else {
                Kind::Text
            };
        }
        msg_type::GROUP_FILE => match first(element_type::FILE) {
            Some(file) => {
                let name = file.file_name.map(body::lossy).unwrap_or_default();
                out.kind = Kind::File;
                out.text = format!("[file] {name}").trim_end().to_string();
                out.media.extend(media_ref(file, MediaKind::File, time_ms));
            }
            None => out.warning = Some("group file message without a file element"),
        },
        msg_type::GREY_TIP => {
            let (tip, tip_lossy) = body::grey_tip_text(elements);
            out.text = tip;
            out.lossy |= tip_lossy;
            // A recall notice is subtype 4; older rows without a subtype say so in words.
            out.kind = if sub_type == Some(SUB_RECALL_TIP)
                || (sub_type.is_none() && out.text.contains("撤回"))
            {
                Kind::Recall
            } else {
                Kind::System
            };
        }
        msg_type::VOICE => match first(element_type::VOICE) {
            Some(voice) => {
                out.kind = Kind::Voice;
                out.text = match voice.voice_seconds {
                    Some(s) => format!("[voice] {s}s"),
                    None => "[voice]".into(),
                };
                out.media
                    .extend(media_ref(voice, MediaKind::Voice, time_ms));
            }
            None => out.warning = Some("voice message without a voice element"),
        },
        msg_type::VIDEO => match first(element_type::VIDEO) {
            Some(video) => {
                out.kind = Kind::Video;
                out.text = match video.video_seconds {
                    Some(s) => format!("[video] {s}s"),
                    None => "[video]".into(),
                };
                out.media
                    .extend(media_ref(video, MediaKind::Video, time_ms));
            }
            None => out.warning = Some("video message without a video element"),
        },
        msg_type::MERGED_FORWARD => {
            // Merged forwards have no kind of their own.
            out.text = format!("[merged forward] {}", out.text)
                .trim_end()
                .to_string();
        }
        msg_type::REPLY => out.kind = Kind::Quote,
        msg_type::RED_PACKET => match first(element_type::RED_PACKET) {
            Some(packet) => {
                let title = packet.red_packet_title.map(body::lossy).unwrap_or_default();
                out.kind = Kind::RedPacket;
                out.text = format!("[red packet] {title}").trim_end().to_string();
                // Claims name no packet id: they are grey tips naming the sender.
                out.red_packet = Some(Box::new(RedPacket {
                    id: None,
                    parts: packet.red_packet_parts.filter(|&n| n > 0),
                    amount_fen: None,
                }));
            }
            None => out.warning = Some("red packet message without a red packet element"),
        },
        msg_type::APP_CARD => {
            out.kind = Kind::Link;
            out.text = format!("[card] {}", out.text).trim_end().to_string();
        }
        _ => {}
    }
    out
}

/// `YYYY-MM` of the instant in China time, the month folder QQ files media under.
fn month_folder(time_ms: Option<i64>) -> Option<String> {
    let local = chrono::DateTime::from_timestamp_millis(time_ms?.checked_add(8 * 3_600_000)?)?;
    Some(local.format("%Y-%m").to_string())
}

fn is_md5(bytes: &[u8]) -> bool {
    bytes.len() == 32 && bytes.iter().all(u8::is_ascii_hexdigit)
}

/// Where an element's file is: its device path resolved by the part after `nt_data/`,
/// or for a picture with only an md5, the place QQ's layout puts it.
fn location(element: &Element, kind: MediaKind, time_ms: Option<i64>) -> Option<String> {
    if let Some(path) = element.file_path.filter(|p| !p.is_empty()) {
        let path = body::lossy(path);
        return Some(match path.find("nt_data/") {
            Some(at) => path[at..].to_string(),
            None => path,
        });
    }
    let md5 = element.md5.filter(|m| is_md5(m))?;
    if kind != MediaKind::Image {
        return None;
    }
    let extension = element
        .file_name
        .map(body::lossy)
        .and_then(|name| {
            let (_, ext) = name.rsplit_once('.')?;
            let ext = ext.to_ascii_lowercase();
            matches!(ext.as_str(), "jpg" | "jpeg" | "png" | "gif").then_some(ext)
        })
        .unwrap_or_else(|| "jpg".into());
    let md5 = body::lossy(md5).to_ascii_lowercase();
    Some(format!(
        "nt_data/Pic/{}/Ori/{md5}.{extension}",
        month_folder(time_ms)?
    ))
}

fn media_ref(element: &Element, kind: MediaKind, time_ms: Option<i64>) -> Option<MediaRef> {
    let location = location(element, kind, time_ms)?;
    let original_name = match kind {
        MediaKind::File => element
            .file_name
            .map(body::lossy)
            .filter(|n| !n.is_empty())
            .or_else(|| location.rsplit('/').next().map(str::to_string)),
        _ => None,
    };
    Some(MediaRef {
        kind,
        location: MediaLocation::Path(location),
        original_name,
        declared_size: element.file_size,
    })
}

/// A picture and, when it lies in the `Pic/<month>/Ori/` layout, its thumbnail.
fn picture_refs(element: &Element, time_ms: Option<i64>) -> Vec<MediaRef> {
    let Some(primary) = media_ref(element, MediaKind::Image, time_ms) else {
        return Vec::new();
    };
    let thumbnail = match &primary.location {
        MediaLocation::Path(path) => thumbnail_of(path),
        MediaLocation::NotDownloaded(_) => None,
    };
    let mut refs = vec![primary];
    if let Some(thumb) = thumbnail {
        refs.push(MediaRef {
            kind: MediaKind::ImageThumb,
            location: MediaLocation::Path(thumb),
            original_name: None,
            declared_size: None,
        });
    }
    refs
}

/// `…/Pic/<month>/Ori/<md5>.<ext>` → `…/Pic/<month>/Thumb/<md5>_0.jpg`.
fn thumbnail_of(path: &str) -> Option<String> {
    let (dir, file) = path.rsplit_once('/')?;
    let month_dir = dir.strip_suffix("/Ori")?;
    let (_, month) = month_dir.rsplit_once('/')?;
    if !month_dir.ends_with(&format!("Pic/{month}")) {
        return None;
    }
    let stem = file.rsplit_once('.').map_or(file, |(stem, _)| stem);
    // Pictures are named by their md5; anything else gets no guessed thumbnail.
    if stem.is_empty()
        || !stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    Some(format!("{month_dir}/Thumb/{stem}_0.jpg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(element_type: u64) -> Element<'static> {
        Element {
            element_type: Some(element_type),
            ..Element::default()
        }
    }

    #[test]
    fn device_paths_resolve_after_nt_data() {
        let mut picture = el(element_type::PICTURE);
        picture.file_path = Some(
            b"/storage/emulated/0/Android/data/com.tencent.mobileqq/files/nt_data/Pic/2025-06/Ori/abc.jpg",
        );
        let refs = picture_refs(&picture, Some(0));
        assert_eq!(
            refs[0].location,
            MediaLocation::Path("nt_data/Pic/2025-06/Ori/abc.jpg".into())
        );
        assert_eq!(
            refs[1].location,
            MediaLocation::Path("nt_data/Pic/2025-06/Thumb/abc_0.jpg".into())
        );
        assert_eq!(refs[1].kind, MediaKind::ImageThumb);
        // Paths elsewhere stay as they are, for the sink to refuse.
        picture.file_path = Some(b"/etc/passwd");
        let refs = picture_refs(&picture, Some(0));
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].location, MediaLocation::Path("/etc/passwd".into()));
    }

    #[test]
    fn a_picture_with_only_an_md5_is_found_by_layout() {
        let mut picture = el(element_type::PICTURE);
        picture.md5 = Some(b"0123456789ABCDEF0123456789abcdef");
        picture.file_name = Some(b"x.PNG");
        // 2025-06-30T20:00:00Z is July 1st in China.
        let refs = picture_refs(&picture, Some(1_751_313_600_000));
        assert_eq!(
            refs[0].location,
            MediaLocation::Path(
                "nt_data/Pic/2025-07/Ori/0123456789abcdef0123456789abcdef.png".into()
            )
        );
        picture.md5 = Some(b"../../../../etc/passwd");
        assert!(picture_refs(&picture, Some(0)).is_empty());
    }

    #[test]
    fn thumbnails_only_for_the_pic_layout() {
        assert_eq!(thumbnail_of("nt_data/Video/2025-06/Ori/a.mp4"), None);
        assert_eq!(thumbnail_of("nt_data/Pic/2025-06/Ori/..jpg"), None);
        assert_eq!(thumbnail_of("Ori/a.jpg"), None);
    }

    #[test]
    fn kinds_by_type() {
        let mut text = el(element_type::TEXT);
        text.text = Some(b"hi");
        let mut face = el(element_type::FACE);
        face.face_text = Some("/捂脸".as_bytes());
        let d = describe(Some(2), Some(17), &[text.clone(), face], Some(0));
        assert_eq!((d.kind, d.text.as_str()), (Kind::Text, "hi/捂脸"));
        let d = describe(Some(2), Some(2), &[el(element_type::PICTURE)], Some(0));
        assert_eq!((d.kind, d.text.as_str()), (Kind::Image, "[image]"));
        let mut tip = el(element_type::GREY_TIP);
        tip.text = Some("\"张三\"撤回了一条消息".as_bytes());
        assert_eq!(
            describe(Some(5), Some(4), &[tip.clone()], Some(0)).kind,
            Kind::Recall
        );
        assert_eq!(
            describe(Some(5), Some(12), &[tip], Some(0)).kind,
            Kind::System
        );
        let mut voice = el(element_type::VOICE);
        voice.voice_seconds = Some(5);
        assert_eq!(
            describe(Some(6), None, &[voice], Some(0)).text,
            "[voice] 5s"
        );
        let mut packet = el(element_type::RED_PACKET);
        packet.red_packet_title = Some("恭喜发财".as_bytes());
        let d = describe(Some(10), None, &[packet.clone()], Some(0));
        assert_eq!(
            (d.kind, d.text.as_str()),
            (Kind::RedPacket, "[red packet] 恭喜发财")
        );
        // Parts (48444) when the packet says; absent or 0 is unknown.
        assert_eq!(d.red_packet.as_deref().map(|r| r.parts), Some(None));
        packet.red_packet_parts = Some(5);
        let d = describe(Some(10), None, &[packet.clone()], Some(0));
        assert_eq!(d.red_packet.as_deref().and_then(|r| r.parts), Some(5));
        packet.red_packet_parts = Some(0);
        let d = describe(Some(10), None, &[packet], Some(0));
        assert_eq!(d.red_packet.as_deref().and_then(|r| r.parts), None);
        let mut file = el(element_type::FILE);
        file.file_name = Some("报价单.xlsx".as_bytes());
        file.file_path = Some("/sdcard/nt_data/File/报价单.xlsx".as_bytes());
        file.file_size = Some(10);
        let d = describe(Some(3), None, &[file], Some(0));
        assert_eq!(
            (d.kind, d.text.as_str()),
            (Kind::File, "[file] 报价单.xlsx")
        );
        assert_eq!(d.media[0].original_name.as_deref(), Some("报价单.xlsx"));
        assert_eq!(d.media[0].declared_size, Some(10));
        let d = describe(Some(3), None, &[text.clone()], Some(0));
        assert_eq!(d.kind, Kind::Other);
        assert!(d.warning.is_some());
        let d = describe(Some(77), None, &[text], Some(0));
        assert_eq!((d.kind, d.warning), (Kind::Other, None));
    }

    #[test]
    fn unparseable_bodies_are_shown_when_printable() {
        assert_eq!(printable(b"plain words"), "plain words");
        assert_eq!(
            printable(b"\x08\x96\x01"),
            "[unreadable message body, 3 bytes]"
        );
    }
}
