//! One conversation's rows from its shard(s), joined with `im_image_info` for images.

use std::path::Path;

use rusqlite::{Connection, Rows, Statement};

use super::content::{self, Body, FileInfo};
use super::shards::Shard;
use super::value::{int, quote, text};
use super::DATABASE;
use crate::records::{
    checked_time_ms, Direction, Kind, MediaKind, MediaLocation, MediaRef, Message, RedPacket,
};
use crate::source::sqlite::map_sqlite_error;
use crate::source::stream::Emitter;
use crate::source::SourceError;

use super::schema::{FILE, IMAGE, RED_PACKET, SYSTEM, TEXT, VIDEO, VOICE};

/// How images are found: `im_image_info` columns, decided at open.
#[derive(Debug, Clone)]
pub struct ImageJoin {
    /// `LEFT JOIN …` clause.
    pub join: String,
    /// Expressions for the file path and its size.
    pub path: String,
    pub size: String,
}

/// What a producer thread needs to read one conversation.
pub struct Query {
    pub cid: String,
    /// The account owner's uid: a row it sent is `sent`.
    pub owner: Option<String>,
    pub shards: Vec<Shard>,
    pub images: Option<ImageJoin>,
}

/// One row before interpretation.
struct RawRow {
    row_id: Option<i64>,
    mid: Option<String>,
    sender: Option<String>,
    created_ms: Option<i64>,
    content_type: Option<i64>,
    content: Option<String>,
    recall_status: Option<i64>,
    attachments: Option<String>,
    image_path: Option<String>,
    image_size: Option<i64>,
    lossy: bool,
}

impl RawRow {
    /// What identifies a row when a join repeats it.
    fn same_row(&self, other: &RawRow) -> bool {
        match (self.row_id, other.row_id) {
            (Some(a), Some(b)) => a == b,
            _ => self.mid.is_some() && self.mid == other.mid,
        }
    }
}

fn statement<'c>(
    conn: &'c Connection,
    shard: &Shard,
    query: &Query,
) -> Result<Statement<'c>, SourceError> {
    let db_path = Path::new(DATABASE);
    let recall = if shard.has_recall_status {
        "m.recallStatus"
    } else {
        "NULL"
    };
    let attachments = if shard.has_attachments {
        "m.attachments"
    } else {
        "NULL"
    };
    let (image_path, image_size, join) = match &query.images {
        Some(images) => (
            images.path.as_str(),
            images.size.as_str(),
            images.join.as_str(),
        ),
        None => ("NULL", "NULL", ""),
    };
    let build = |row_id: &str, order: &str| {
        format!(
            "SELECT {row_id}, m.mid, m.senderId, m.createdAt, m.contentType, m.content, {recall}, \
             {attachments}, {image_path}, {image_size} FROM {} m {join} \
             WHERE m.cid = ?1 ORDER BY m.createdAt, {order}",
            quote(&shard.table)
        )
    };
    match conn.prepare(&build("m.rowid", "m.rowid")) {
        Ok(stmt) => Ok(stmt),
        // A WITHOUT ROWID table has no row order of its own: the message id decides.
        Err(_) => conn
            .prepare(&build("NULL", "m.mid"))
            .map_err(|e| map_sqlite_error(db_path, e)),
    }
}

/// A shard's rows for the conversation, with join repeats skipped.
struct Cursor<'s> {
    rows: Rows<'s>,
    last: Option<RawRow>,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<Option<RawRow>, SourceError> {
        let db_path = Path::new(DATABASE);
        while let Some(row) = self.rows.next().map_err(|e| map_sqlite_error(db_path, e))? {
            let mut lossy = false;
            let raw = RawRow {
                row_id: int(row, 0),
                mid: text(row, 1, &mut lossy),
                sender: text(row, 2, &mut lossy),
                created_ms: int(row, 3),
                content_type: int(row, 4),
                content: text(row, 5, &mut lossy),
                recall_status: int(row, 6),
                attachments: text(row, 7, &mut lossy),
                image_path: text(row, 8, &mut lossy),
                image_size: int(row, 9),
                lossy,
            };
            if self.last.as_ref().is_some_and(|last| last.same_row(&raw)) {
                continue;
            }
            // Only the identity of the last row is needed to skip repeats.
            self.last = Some(RawRow {
                row_id: raw.row_id,
                mid: raw.mid.clone(),
                ..RawRow::empty()
            });
            return Ok(Some(raw));
        }
        Ok(None)
    }
}

impl RawRow {
    fn empty() -> RawRow {
        RawRow {
            row_id: None,
            mid: None,
            sender: None,
            created_ms: None,
            content_type: None,
            content: None,
            recall_status: None,
            attachments: None,
            image_path: None,
            image_size: None,
            lossy: false,
        }
    }
}

/// Streams the conversation's rows in (createdAt, shard, row) order. A conversation normally
/// lives in one shard; when it is spread over several, their sorted rows are merged.
pub fn read(conn: &Connection, query: &Query, emit: &mut Emitter) -> Result<(), SourceError> {
    let db_path = Path::new(DATABASE);
    let mut statements = Vec::with_capacity(query.shards.len());
    for shard in &query.shards {
        statements.push(statement(conn, shard, query)?);
    }
    let mut cursors = Vec::with_capacity(statements.len());
    for stmt in &mut statements {
        let rows = stmt
            .query([&query.cid])
            .map_err(|e| map_sqlite_error(db_path, e))?;
        cursors.push(Cursor { rows, last: None });
    }
    let mut heads = Vec::with_capacity(cursors.len());
    for cursor in &mut cursors {
        heads.push(cursor.next()?);
    }
    loop {
        // NULL times sort first, as SQLite orders them; ties go to the lower shard.
        let next = heads
            .iter()
            .enumerate()
            .filter_map(|(i, head)| head.as_ref().map(|h| (h.created_ms.unwrap_or(i64::MIN), i)))
            .min();
        let Some((_, index)) = next else {
            break;
        };
        let Some(raw) = heads[index].take() else {
            break;
        };
        heads[index] = cursors[index].next()?;
        if !emit.emit(interpret(raw, query)) {
            break;
        }
    }
    Ok(())
}

/// What the content type makes of a row.
struct Parsed {
    kind: Kind,
    text: String,
    media: Vec<MediaRef>,
    red_packet: Option<Box<RedPacket>>,
    warnings: Vec<String>,
}

fn interpret(raw: RawRow, query: &Query) -> Message {
    let mut warnings: Vec<String> = Vec::new();
    if raw.lossy {
        warnings.push("text is not valid UTF-8; invalid bytes replaced".into());
    }
    let message_id = match (&raw.mid, raw.row_id) {
        (Some(mid), _) if !mid.is_empty() => mid.clone(),
        (_, Some(row_id)) => row_id.to_string(),
        _ => String::new(),
    };
    let time_ms = checked_time_ms("createdAt", raw.created_ms, &mut warnings);
    let is_system = raw.content_type == Some(SYSTEM);
    let sender_id = if is_system {
        None
    } else {
        raw.sender
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "0")
            .map(str::to_string)
    };
    let direction = if is_system {
        Direction::System
    } else if sender_id.is_some() && sender_id == query.owner {
        Direction::Sent
    } else {
        Direction::Received
    };
    let mut parsed = if raw.recall_status.is_some_and(|r| r > 0) {
        Parsed {
            kind: Kind::Recall,
            text: "[recalled]".into(),
            media: Vec::new(),
            red_packet: None,
            warnings: Vec::new(),
        }
    } else {
        parse(&raw)
    };
    warnings.append(&mut parsed.warnings);
    Message {
        group_id: query.cid.clone(),
        message_id,
        time_ms,
        sender_id,
        sender_name: None,
        direction,
        kind: parsed.kind,
        text: parsed.text,
        raw_type: raw.content_type.map(|c| c.to_string()).unwrap_or_default(),
        media: parsed.media,
        quote: None,
        red_packet: parsed.red_packet,
        claim: None,
        warning: if warnings.is_empty() {
            None
        } else {
            Some(warnings.join("; "))
        },
    }
}

fn parse(raw: &RawRow) -> Parsed {
    let content = raw.content.as_deref();
    let mut parsed = Parsed {
        kind: Kind::Other,
        text: content.unwrap_or_default().to_string(),
        media: Vec::new(),
        red_packet: None,
        warnings: Vec::new(),
    };
    let Some(code) = raw.content_type else {
        parsed.warnings.push("no contentType".into());
        return parsed;
    };
    let is_media = matches!(code, IMAGE | VOICE | VIDEO | FILE);
    // Media rows may carry no content at all; every other known type needs its JSON.
    let body: Option<Body> = match content.filter(|c| !c.trim().is_empty()) {
        None if is_media => Some(Body::default()),
        // An empty system message is still one: nothing to show, nothing malformed.
        None if code == SYSTEM => {
            parsed.kind = Kind::System;
            parsed.text = String::new();
            return parsed;
        }
        None => {
            if matches!(code, TEXT | RED_PACKET) {
                parsed.warnings.push("no content (NULL)".into());
                return parsed;
            }
            None
        }
        Some(c) => match content::parse_body(c) {
            Ok(body) => Some(body),
            Err(e) => {
                if matches!(
                    code,
                    TEXT | IMAGE | SYSTEM | VOICE | VIDEO | FILE | RED_PACKET
                ) {
                    parsed.warnings.push(e);
                }
                None
            }
        },
    };
    let file = if matches!(code, VOICE | VIDEO | FILE) {
        match content::parse_attachment(raw.attachments.as_deref().unwrap_or_default()) {
            Ok(file) => file,
            Err(e) => {
                parsed.warnings.push(e);
                if content.is_none_or(|c| c.trim().is_empty()) {
                    parsed.text = raw.attachments.clone().unwrap_or_default();
                }
                return parsed;
            }
        }
    } else {
        None
    };
    match code {
        IMAGE => parsed.media = image_refs(raw),
        VOICE => parsed.media = file_refs(file.as_ref(), MediaKind::Voice, false),
        VIDEO => parsed.media = file_refs(file.as_ref(), MediaKind::Video, false),
        FILE => parsed.media = file_refs(file.as_ref(), MediaKind::File, true),
        _ => {}
    }
    // Unknown codes, and known ones whose content did not parse, stay `other` with the raw text.
    let Some(body) = body else {
        return parsed;
    };
    match code {
        TEXT | SYSTEM => match body.text {
            Some(text) => {
                parsed.kind = if code == TEXT {
                    Kind::Text
                } else {
                    Kind::System
                };
                parsed.text = text;
            }
            None if code == SYSTEM => {
                parsed.kind = Kind::System;
                parsed.text = String::new();
            }
            None => parsed.warnings.push("content has no `text`".into()),
        },
        IMAGE => {
            parsed.kind = Kind::Image;
            parsed.text = "[image]".into();
        }
        VOICE => {
            parsed.kind = Kind::Voice;
            parsed.text = match body.duration.as_ref().and_then(content::number) {
                Some(ms) => format!("[voice] {}s", (ms / 1000.0).round()),
                None => "[voice]".into(),
            };
        }
        VIDEO => {
            parsed.kind = Kind::Video;
            parsed.text = "[video]".into();
        }
        FILE => {
            parsed.kind = Kind::File;
            let name = file
                .as_ref()
                .and_then(|f| f.f_name.clone())
                .filter(|n| !n.is_empty())
                .or(body.filename)
                .unwrap_or_default();
            parsed.text = format!("[file] {name}").trim_end().to_string();
        }
        RED_PACKET => {
            parsed.kind = Kind::RedPacket;
            let title = body.title.unwrap_or_default();
            parsed.text = format!("[red packet] {title}").trim_end().to_string();
            parsed.red_packet = Some(Box::new(RedPacket {
                id: None,
                parts: body
                    .count
                    .as_ref()
                    .and_then(|c| c.as_u64().or_else(|| c.as_str()?.trim().parse().ok()))
                    .filter(|&n| n > 0),
                amount_fen: None,
            }));
        }
        _ => {}
    }
    parsed
}

fn image_refs(raw: &RawRow) -> Vec<MediaRef> {
    match raw.image_path.as_deref().filter(|p| !p.is_empty()) {
        Some(path) => vec![MediaRef {
            kind: MediaKind::Image,
            location: MediaLocation::Path(path.to_string()),
            original_name: None,
            declared_size: raw.image_size.and_then(|n| u64::try_from(n).ok()),
        }],
        None => Vec::new(),
    }
}

fn file_refs(file: Option<&FileInfo>, kind: MediaKind, keep_name: bool) -> Vec<MediaRef> {
    let Some(file) = file else {
        return Vec::new();
    };
    let Some(path) = file.path.as_deref().filter(|p| !p.is_empty()) else {
        return Vec::new();
    };
    vec![MediaRef {
        kind,
        location: MediaLocation::Path(path.to_string()),
        original_name: if keep_name {
            file.f_name.clone().filter(|n| !n.is_empty())
        } else {
            None
        },
        declared_size: file
            .f_size
            .as_ref()
            .and_then(content::number)
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64),
    }]
}
