//! The `message` table, joined with `ImgInfo2` (full images) and `appattach` (files).

use std::borrow::Cow;

use md5::{Digest, Md5};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};

use super::xml;
use crate::records::{
    checked_time_ms, Direction, Kind, MediaKind, MediaLocation, MediaRef, Message, Quote,
    RedPacket, RedPacketClaim,
};
use crate::source::sqlite::map_sqlite_error;
use crate::source::stream::Emitter;
use crate::source::SourceError;

use super::schema::{app_type, msg_type};

/// What a producer thread needs to read one conversation.
#[derive(Clone)]
pub struct Query {
    pub talker: String,
    /// Rows before this createTime are not wanted (an increment); rows whose time the
    /// reader cannot use are read all the same.
    pub floor_ms: Option<i64>,
    pub owner: Option<String>,
    pub is_group: bool,
    pub has_imginfo: bool,
    pub has_appattach: bool,
}

/// One row of the joined query. Text columns stay bytes, so that decoding them is the
/// parser thread's work; they borrow SQLite's row buffer until the row is sent on
/// ([`RawRow::into_owned`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RawRow<'a> {
    pub local_id: i64,
    pub server_id: Option<i64>,
    pub type_code: Option<i64>,
    pub is_send: bool,
    pub create_time: Option<i64>,
    pub content: Option<Cow<'a, [u8]>>,
    pub img_path: Option<Cow<'a, [u8]>>,
    pub big_img_path: Option<Cow<'a, [u8]>>,
    pub file_full_path: Option<Cow<'a, [u8]>>,
    pub file_total_len: Option<i64>,
}

impl RawRow<'_> {
    pub fn into_owned(self) -> RawRow<'static> {
        let owned = |bytes: Option<Cow<[u8]>>| bytes.map(|b| Cow::Owned(b.into_owned()));
        RawRow {
            local_id: self.local_id,
            server_id: self.server_id,
            type_code: self.type_code,
            is_send: self.is_send,
            create_time: self.create_time,
            content: owned(self.content),
            img_path: owned(self.img_path),
            big_img_path: owned(self.big_img_path),
            file_full_path: owned(self.file_full_path),
            file_total_len: self.file_total_len,
        }
    }
}

/// A row with its text decoded, before interpretation.
struct Columns {
    local_id: i64,
    server_id: Option<i64>,
    type_code: Option<i64>,
    is_send: bool,
    create_time: Option<i64>,
    content: Option<String>,
    img_path: Option<String>,
    big_img_path: Option<String>,
    file_full_path: Option<String>,
    file_total_len: Option<i64>,
    lossy: bool,
}

impl RawRow<'_> {
    fn decode(self) -> Columns {
        let mut lossy = false;
        let mut text = |bytes: Option<Cow<[u8]>>| {
            bytes.map(|b| {
                String::from_utf8(b.into_owned()).unwrap_or_else(|e| {
                    lossy = true;
                    String::from_utf8_lossy(e.as_bytes()).into_owned()
                })
            })
        };
        let content = text(self.content);
        let img_path = text(self.img_path);
        let big_img_path = text(self.big_img_path);
        let file_full_path = text(self.file_full_path);
        Columns {
            local_id: self.local_id,
            server_id: self.server_id,
            type_code: self.type_code,
            is_send: self.is_send,
            create_time: self.create_time,
            content,
            img_path,
            big_img_path,
            file_full_path,
            file_total_len: self.file_total_len,
            lossy,
        }
    }
}

/// Integers as WeChat stores them, which is not always as INTEGER.
fn int(row: &Row, idx: usize) -> Option<i64> {
    match row.get_ref(idx).ok()? {
        ValueRef::Integer(i) => Some(i),
        ValueRef::Real(f) => Some(f as i64),
        ValueRef::Text(t) => std::str::from_utf8(t).ok()?.trim().parse().ok(),
        _ => None,
    }
}

/// Text as stored (decoded later, keeping every valid byte; invalid UTF-8 is replaced
/// and flagged then).
fn text<'a>(row: &'a Row, idx: usize) -> Option<Cow<'a, [u8]>> {
    match row.get_ref(idx).ok()? {
        ValueRef::Text(t) | ValueRef::Blob(t) => Some(Cow::Borrowed(t)),
        ValueRef::Integer(i) => Some(Cow::Owned(i.to_string().into_bytes())),
        ValueRef::Real(f) => Some(Cow::Owned(f.to_string().into_bytes())),
        ValueRef::Null => None,
    }
}

/// The message columns [`RawRow`] is made of (`talker` last), with the media path and
/// attachment looked up from `ImgInfo2` and `appattach` when those tables exist.
pub fn select_sql(has_imginfo: bool, has_appattach: bool) -> String {
    // Media rows are looked up only for the message types that have them, one row each
    // (a join would probe both tables for every message, and repeat a message that has
    // two ImgInfo2 rows).
    let img = if has_imginfo {
        "CASE WHEN m.type = 3 AND m.msgSvrId IS NOT NULL THEN \
         (SELECT i.bigImgPath FROM ImgInfo2 i WHERE i.msgSvrId = m.msgSvrId ORDER BY i.id LIMIT 1) END"
    } else {
        "NULL"
    };
    let is_app = "(m.type = 49 OR (m.type > 65535 AND (m.type & 65535) = 49))";
    let (file_path, file_len) = if has_appattach {
        (
            format!(
                "CASE WHEN {is_app} THEN (SELECT a.fileFullPath FROM appattach a \
                 WHERE a.msgInfoId = m.msgId ORDER BY a.rowid LIMIT 1) END"
            ),
            format!(
                "CASE WHEN {is_app} THEN (SELECT a.totalLen FROM appattach a \
                 WHERE a.msgInfoId = m.msgId ORDER BY a.rowid LIMIT 1) END"
            ),
        )
    } else {
        ("NULL".to_string(), "NULL".to_string())
    };
    format!(
        "SELECT m.msgId, m.msgSvrId, m.type, m.isSend, m.createTime, m.content, m.imgPath, \
         {img}, {file_path}, {file_len}, m.talker FROM message m"
    )
}

/// The row of a [`select_sql`] query, borrowing its text from SQLite.
pub fn raw_row<'a>(row: &'a Row) -> RawRow<'a> {
    RawRow {
        local_id: int(row, 0).unwrap_or_default(),
        server_id: int(row, 1),
        type_code: int(row, 2),
        is_send: int(row, 3) == Some(1),
        create_time: int(row, 4),
        content: text(row, 5),
        img_path: text(row, 6),
        big_img_path: text(row, 7),
        file_full_path: text(row, 8),
        file_total_len: int(row, 9),
    }
}

/// Steps the conversation's rows in order; [`interpret`] turns each into a message.
pub fn read(
    conn: &Connection,
    query: &Query,
    emit: &mut Emitter<RawRow<'static>>,
) -> Result<(), SourceError> {
    let db_path = std::path::Path::new(super::DATABASE);
    // With a floor, the (talker, createTime) index seeks past everything before it. The rows
    // that have no usable time are read again too; in SQLite's order NULL < numbers < text <
    // blob, so `>= floor` also takes text and blob times, and the three ranges below are
    // each one seek (one OR over them, or a typeof() test, would scan the whole talker).
    let select = select_sql(query.has_imginfo, query.has_appattach);
    let sql = match query.floor_ms {
        Some(_) => format!(
            "{select} WHERE m.talker = ?1 AND m.createTime >= ?2 \
             UNION ALL {select} WHERE m.talker = ?1 AND m.createTime IS NULL \
             UNION ALL {select} WHERE m.talker = ?1 AND m.createTime < {} \
             ORDER BY createTime, msgId",
            crate::records::MIN_TIME_MS
        ),
        None => format!("{select} WHERE m.talker = ?1 ORDER BY m.createTime, m.msgId"),
    };
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| map_sqlite_error(db_path, e))?;
    let mut rows = match query.floor_ms {
        Some(floor_ms) => stmt.query(rusqlite::params![&query.talker, floor_ms]),
        None => stmt.query(rusqlite::params![&query.talker]),
    }
    .map_err(|e| map_sqlite_error(db_path, e))?;
    while let Some(row) = rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
        if !emit.emit(raw_row(row).into_owned()) {
            break;
        }
    }
    Ok(())
}

pub fn interpret(raw: RawRow, query: &Query) -> Message {
    let mut raw = raw.decode();
    let mut warnings: Vec<String> = Vec::new();
    if raw.lossy {
        warnings.push("text is not valid UTF-8; invalid bytes replaced".into());
    }
    let message_id = match raw.server_id {
        Some(id) if id != 0 => id.to_string(),
        _ => raw.local_id.to_string(),
    };
    let time_ms = checked_time_ms("createTime", raw.create_time, &mut warnings);
    let type_code = raw.type_code.unwrap_or(-1);
    let content = raw.content.take();
    let has_content = content.is_some();
    let content = content.unwrap_or_default();

    // The payload is `content[payload_start..]`: after the sender prefix, if any.
    let (direction, sender_id, payload_start) = if type_code == msg_type::SYSTEM {
        (Direction::System, None, 0)
    } else if raw.is_send {
        (Direction::Sent, query.owner.clone(), 0)
    } else if query.is_group {
        match split_sender(&content) {
            Some((sender, start)) => (Direction::Received, Some(sender.to_string()), start),
            None => {
                if has_content {
                    warnings.push("received group message without a `sender:` prefix".into());
                }
                (Direction::Received, None, 0)
            }
        }
    } else {
        (Direction::Received, Some(query.talker.clone()), 0)
    };

    let mut parsed = parse_payload(type_code, &content[payload_start..], &raw);
    if !has_content && type_code == msg_type::SYSTEM {
        // An empty system message is still one: nothing to show, nothing malformed.
        parsed.kind = Kind::System;
        parsed.text = Some(String::new());
    } else if !has_content
        && type_code != msg_type::IMAGE
        && type_code != msg_type::VOICE
        && type_code != msg_type::VIDEO
    {
        parsed.kind = Kind::Other;
        parsed.text = None;
        parsed.warning = Some("no content (NULL)".into());
    }
    if let Some(w) = parsed.warning.take() {
        warnings.push(w);
    }
    let text = parsed.text.unwrap_or_else(|| {
        // The payload itself: reuse the content's buffer rather than copy it.
        let mut content = content;
        content.drain(..payload_start);
        content
    });
    Message {
        group_id: query.talker.clone(),
        message_id,
        time_ms,
        sender_id,
        sender_name: None,
        direction,
        kind: parsed.kind,
        text,
        raw_type: parsed.raw_type,
        media: parsed.media,
        quote: parsed.quote,
        red_packet: parsed.red_packet,
        claim: parsed.claim,
        warning: if warnings.is_empty() {
            None
        } else {
            Some(warnings.join("; "))
        },
    }
}

/// `<wxid>:\n<payload>`: the sender is everything before the first `:`, the payload
/// everything after the first newline (returned as its byte offset).
fn split_sender(content: &str) -> Option<(&str, usize)> {
    let newline = content.find('\n')?;
    let colon = content[..newline].find(':')?;
    if colon == 0 {
        return None;
    }
    Some((&content[..colon], newline + 1))
}

struct Parsed {
    kind: Kind,
    /// `None`: the payload itself, verbatim.
    text: Option<String>,
    raw_type: String,
    media: Vec<MediaRef>,
    quote: Option<Box<Quote>>,
    red_packet: Option<Box<RedPacket>>,
    claim: Option<Box<RedPacketClaim>>,
    warning: Option<String>,
}

fn parse_payload(type_code: i64, payload: &str, raw: &Columns) -> Parsed {
    let mut parsed = Parsed {
        kind: Kind::Other,
        text: None,
        raw_type: if raw.type_code.is_some() {
            type_code.to_string()
        } else {
            String::new()
        },
        media: Vec::new(),
        quote: None,
        red_packet: None,
        claim: None,
        warning: None,
    };
    let malformed = |parsed: &mut Parsed, what: &str| {
        parsed.kind = Kind::Other;
        parsed.text = None;
        parsed.warning = Some(format!("malformed {what} payload"));
    };
    match type_code {
        msg_type::TEXT => {
            parsed.kind = Kind::Text;
        }
        msg_type::IMAGE => {
            parsed.media = image_refs(raw);
            if xml::has_element(payload, "img") {
                parsed.kind = Kind::Image;
                parsed.text = Some("[image]".into());
            } else {
                malformed(&mut parsed, "image");
            }
        }
        msg_type::VOICE => {
            parsed.media = voice_refs(raw);
            match xml::attribute(payload, "voicemsg", "voicelength") {
                Some(ms) => {
                    parsed.kind = Kind::Voice;
                    let seconds = ms.parse::<f64>().map(|v| v / 1000.0).unwrap_or(0.0);
                    parsed.text = Some(format!("[voice] {}s", seconds.round()));
                }
                None => malformed(&mut parsed, "voice"),
            }
        }
        msg_type::VIDEO => {
            parsed.media = video_refs(raw);
            if xml::has_element(payload, "videomsg") {
                parsed.kind = Kind::Video;
                let seconds = xml::attribute(payload, "videomsg", "playlength").unwrap_or_default();
                parsed.text = Some(format!("[video] {seconds}s"));
            } else {
                malformed(&mut parsed, "video");
            }
        }
        msg_type::EMOJI => {
            if xml::has_element(payload, "emoji") {
                parsed.kind = Kind::Emoji;
                parsed.text = Some("[emoji]".into());
            } else {
                malformed(&mut parsed, "emoji");
            }
        }
        msg_type::LOCATION => {
            if xml::has_element(payload, "location") {
                parsed.kind = Kind::Location;
                let name = xml::attribute(payload, "location", "poiname")
                    .filter(|s| !s.is_empty())
                    .or_else(|| xml::attribute(payload, "location", "label"))
                    .unwrap_or_default();
                parsed.text = Some(format!("[location] {name}").trim_end().to_string());
            } else {
                malformed(&mut parsed, "location");
            }
        }
        msg_type::SYSTEM => {
            if payload.contains("撤回") {
                parsed.kind = Kind::Recall;
            } else if xml::has_element(payload, "sysmsg")
                && xml::attribute(payload, "sysmsg", "type").as_deref() == Some("paymsg")
            {
                parsed.kind = Kind::System;
                let id = xml::element_text(payload, "paymsgid").unwrap_or_default();
                let claimer = xml::element_text(payload, "claimer").unwrap_or_default();
                parsed.text = Some(format!("[red packet claimed] {id} by {claimer}"));
                let id = id.trim();
                if !id.is_empty() {
                    parsed.claim = Some(Box::new(RedPacketClaim {
                        packet_id: id.to_string(),
                        claimer_id: Some(claimer.trim().to_string()).filter(|c| !c.is_empty()),
                    }));
                }
            } else {
                parsed.kind = Kind::System;
            }
        }
        code if code == msg_type::APP || (code > 0xFFFF && code & 0xFFFF == msg_type::APP) => {
            parse_app_message(code, payload, raw, &mut parsed);
        }
        _ => {
            parsed.kind = Kind::Other;
        }
    }
    parsed
}

fn parse_app_message(code: i64, payload: &str, raw: &Columns, parsed: &mut Parsed) {
    let app_type = xml::element_text(payload, "appmsg")
        .and_then(|_| xml::element_text(payload, "type"))
        .and_then(|t| t.trim().parse::<i64>().ok());
    // Codes above 65535 name their family too; the payload's own <type> wins when present.
    let family = app_type.or(match code {
        msg_type::RED_PACKET => Some(app_type::RED_PACKET),
        msg_type::TRANSFER => Some(app_type::TRANSFER),
        msg_type::QUOTE => Some(app_type::QUOTE),
        msg_type::FILE => Some(app_type::FILE),
        _ => None,
    });
    if let Some(n) = app_type {
        parsed.raw_type = format!("{code}/{n}");
    }
    let title = xml::element_text(payload, "title").unwrap_or_default();
    match family {
        Some(app_type::LINK) if app_type.is_some() => {
            parsed.kind = Kind::Link;
            let url = xml::element_text(payload, "url").unwrap_or_default();
            parsed.text = Some(format!("[link] {title} {url}").trim_end().to_string());
        }
        Some(app_type::FILE) => {
            parsed.media = file_refs(raw, &title);
            if app_type.is_some() {
                parsed.kind = Kind::File;
                parsed.text = Some(format!("[file] {title}").trim_end().to_string());
            } else {
                parsed.kind = Kind::Other;
                parsed.warning = Some("malformed file payload".into());
            }
        }
        Some(app_type::QUOTE) if app_type.is_some() => {
            parsed.kind = Kind::Quote;
            parsed.text = Some(title);
            parsed.quote = quoted(payload);
        }
        Some(app_type::TRANSFER) if xml::has_element(payload, "wcpayinfo") => {
            parsed.kind = Kind::Transfer;
            let fee = xml::element_text(payload, "feedesc").unwrap_or_default();
            let memo = xml::element_text(payload, "pay_memo").unwrap_or_default();
            parsed.text = Some(format!("[transfer] {fee} {memo}").trim_end().to_string());
        }
        Some(app_type::RED_PACKET) if xml::has_element(payload, "wcpayinfo") => {
            parsed.kind = Kind::RedPacket;
            let wish = xml::element_text(payload, "sendertitle")
                .filter(|s| !s.is_empty())
                .unwrap_or(title);
            parsed.text = Some(format!("[red packet] {wish}").trim_end().to_string());
            let number =
                |tag| xml::element_text(payload, tag).and_then(|t| t.trim().parse::<u64>().ok());
            parsed.red_packet = Some(Box::new(RedPacket {
                id: xml::element_text(payload, "paymsgid")
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty()),
                parts: number("totalnum").filter(|&n| n > 0),
                amount_fen: None,
            }));
        }
        Some(_) if app_type.is_some() => {
            parsed.kind = Kind::Other;
        }
        _ => {
            parsed.kind = Kind::Other;
            parsed.warning = Some("malformed app message payload".into());
        }
    }
}

/// The `<refermsg>` of a reply: the quoted message's server id (this reader's
/// `message_id`), its sender, and its text, or a placeholder for what is not text.
fn quoted(payload: &str) -> Option<Box<Quote>> {
    let refer = xml::element_inner(payload, "refermsg")?;
    let field = |tag| {
        xml::element_text(refer, tag)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let content = xml::element_text(refer, "content").unwrap_or_default();
    let text = match field("type").and_then(|t| t.parse::<i64>().ok()) {
        None | Some(msg_type::TEXT) => content,
        Some(msg_type::IMAGE) => "[image]".to_string(),
        Some(msg_type::VOICE) => "[voice]".to_string(),
        Some(msg_type::VIDEO) => "[video]".to_string(),
        Some(msg_type::APP) => match xml::element_text(&content, "title") {
            Some(title) if !title.is_empty() => title,
            _ => "[app message]".to_string(),
        },
        Some(code) => format!("[type {code}]"),
    };
    Some(Box::new(Quote {
        message_id: field("svrid").filter(|id| id != "0"),
        sender_id: field("chatusr").or_else(|| field("fromusr")),
        sender_name: field("displayname"),
        text,
    }))
}

fn split_dirs(name: &str) -> Option<(&str, &str)> {
    Some((name.get(0..2)?, name.get(2..4)?))
}

fn image_refs(raw: &Columns) -> Vec<MediaRef> {
    let mut refs = Vec::new();
    if let Some(big) = raw.big_img_path.as_deref().filter(|s| !s.is_empty()) {
        let location = if big.starts_with("SERVERID://") {
            MediaLocation::NotDownloaded(big.to_string())
        } else {
            let stem = big.strip_suffix(".jpg").unwrap_or(big);
            match split_dirs(stem) {
                Some((a, b)) => MediaLocation::Path(format!("image2/{a}/{b}/{stem}.jpg")),
                None => MediaLocation::Path(format!("image2/{stem}.jpg")),
            }
        };
        refs.push(MediaRef {
            kind: MediaKind::Image,
            location,
            original_name: None,
            declared_size: None,
        });
    }
    if let Some(thumb) = raw
        .img_path
        .as_deref()
        .and_then(|p| p.strip_prefix("THUMBNAIL_DIRPATH://th_"))
    {
        let location = match split_dirs(thumb) {
            Some((a, b)) => MediaLocation::Path(format!("image2/{a}/{b}/th_{thumb}")),
            None => MediaLocation::Path(format!("image2/th_{thumb}")),
        };
        refs.push(MediaRef {
            kind: MediaKind::ImageThumb,
            location,
            original_name: None,
            declared_size: None,
        });
    }
    refs
}

fn voice_refs(raw: &Columns) -> Vec<MediaRef> {
    let Some(key) = raw.img_path.as_deref().filter(|k| !k.is_empty()) else {
        return Vec::new();
    };
    let hash = Md5::digest(key.as_bytes());
    let hex = crate::digest::hex(&hash);
    vec![MediaRef {
        kind: MediaKind::Voice,
        location: MediaLocation::Path(format!(
            "voice2/{}/{}/msg_{key}.amr",
            &hex[0..2],
            &hex[2..4]
        )),
        original_name: None,
        declared_size: None,
    }]
}

fn video_refs(raw: &Columns) -> Vec<MediaRef> {
    let Some(key) = raw.img_path.as_deref().filter(|k| !k.is_empty()) else {
        return Vec::new();
    };
    vec![
        MediaRef {
            kind: MediaKind::Video,
            location: MediaLocation::Path(format!("video/{key}.mp4")),
            original_name: None,
            declared_size: None,
        },
        MediaRef {
            kind: MediaKind::VideoThumb,
            location: MediaLocation::Path(format!("video/{key}.jpg")),
            original_name: None,
            declared_size: None,
        },
    ]
}

fn file_refs(raw: &Columns, title: &str) -> Vec<MediaRef> {
    let Some(device_path) = raw.file_full_path.as_deref().filter(|p| !p.is_empty()) else {
        return Vec::new();
    };
    // A device path is resolved against the account directory by the part after MicroMsg/.
    let location = match device_path.find("MicroMsg/") {
        Some(at) => device_path[at + "MicroMsg/".len()..].to_string(),
        None => device_path.to_string(),
    };
    let file_name = location.rsplit('/').next().unwrap_or_default();
    let original_name = if file_name.is_empty() {
        title.to_string()
    } else {
        file_name.to_string()
    };
    vec![MediaRef {
        kind: MediaKind::File,
        location: MediaLocation::Path(location),
        original_name: Some(original_name),
        declared_size: raw.file_total_len.and_then(|n| u64::try_from(n).ok()),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_the_sender_prefix_at_the_first_colon_and_newline() {
        assert_eq!(
            split_sender("wxid_a:\nhello: world\nline"),
            Some(("wxid_a", 8))
        );
        assert_eq!(split_sender("no prefix"), None);
        assert_eq!(split_sender("line\nthen: colon"), None);
    }
}
