//! One archive line: a decrypted message object, interpreted into what the store keeps.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::records::{representable_ms, unrepresentable_time, Kind, MediaKind};

/// Where a message belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conversation {
    Room(String),
    /// A one-to-one chat: its id (the sorted pair of participants) and the participants.
    Private {
        id: String,
        participants: Vec<String>,
    },
}

impl Conversation {
    pub fn id(&self) -> &str {
        match self {
            Conversation::Room(id) => id,
            Conversation::Private { id, .. } => id,
        }
    }
}

/// A media file the message names, as `media/<md5sum>.<ext>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEntry {
    pub kind: MediaKind,
    pub path: String,
    pub original_name: Option<String>,
    pub declared_size: Option<u64>,
}

/// A message as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub message_id: String,
    pub conversation: Conversation,
    /// `None`: no time the outputs can write (the entry carries the warning).
    pub time_ms: Option<i64>,
    pub sender_id: Option<String>,
    pub kind: Kind,
    pub text: String,
    pub raw_type: String,
    pub media: Option<MediaEntry>,
    pub warning: Option<String>,
}

/// What became of a line.
#[derive(Debug)]
pub enum Outcome {
    Message(Box<Entry>),
    /// A `switch` record: it belongs to no conversation.
    Switch,
    /// Nothing that can be exported; the reason.
    Unusable(String),
}

/// Separates the two participants of a one-to-one chat id.
pub const PRIVATE_SEPARATOR: char = '|';

/// Interprets one parsed line; `fallback_id` (file:line) identifies a message without `msgid`.
pub fn interpret(value: &Value, fallback_id: &str) -> Outcome {
    let Some(object) = value.as_object() else {
        return Outcome::Unusable(format!("not a JSON object but {}", type_name(value)));
    };
    let mut problems: Vec<String> = Vec::new();
    let action = optional_string(object, "action", &mut problems);
    if action.as_deref() == Some("switch") {
        return Outcome::Switch;
    }
    let from = optional_string(object, "from", &mut problems).filter(|s| !s.is_empty());
    let roomid = optional_string(object, "roomid", &mut problems).unwrap_or_default();
    let conversation = if roomid.is_empty() {
        let to = first_recipient(object, &mut problems);
        let mut participants: Vec<String> = from.iter().chain(to.iter()).cloned().collect();
        participants.sort();
        participants.dedup();
        if participants.is_empty() {
            return Outcome::Unusable(
                "no roomid and no from/tolist: belongs to no conversation".into(),
            );
        }
        Conversation::Private {
            id: participants.join(&PRIVATE_SEPARATOR.to_string()),
            participants,
        }
    } else {
        Conversation::Room(roomid)
    };
    let message_id = match optional_string(object, "msgid", &mut problems) {
        Some(id) if !id.is_empty() => id,
        _ => {
            problems.push(format!("no msgid: identified as {fallback_id}"));
            fallback_id.to_string()
        }
    };
    if from.is_none() && !problems.iter().any(|p| p.starts_with("`from`")) {
        problems.push("no `from`: the sender is unknown".into());
    }
    let time_ms = message_time(object, &mut problems);
    let msgtype = optional_string(object, "msgtype", &mut problems);
    let payload = match msgtype.as_deref() {
        Some(t) => describe(t, object.get(t), action.as_deref()),
        None => {
            problems.push("no `msgtype`".into());
            Described::malformed(None, "")
        }
    };
    if let Some(problem) = payload.problem {
        problems.push(problem);
    }
    Outcome::Message(Box::new(Entry {
        message_id,
        conversation,
        time_ms,
        sender_id: from,
        kind: payload.kind,
        text: payload.text,
        raw_type: msgtype.unwrap_or_default(),
        media: payload.media,
        warning: if problems.is_empty() {
            None
        } else {
            Some(problems.join("; "))
        },
    }))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field; a missing or null one is `None`, another type is a problem (numbers are
/// still taken as their digits, so an id written as a number is not lost).
fn optional_string(
    object: &Map<String, Value>,
    key: &str,
    problems: &mut Vec<String>,
) -> Option<String> {
    match object.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Number(n) => {
            problems.push(format!("`{key}` is a number, not a string"));
            Some(n.to_string())
        }
        other => {
            problems.push(format!("`{key}` is {}, not a string", type_name(other)));
            None
        }
    }
}

fn first_recipient(object: &Map<String, Value>, problems: &mut Vec<String>) -> Option<String> {
    match object.get("tolist")? {
        Value::Array(items) => match items.first()? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::String(_) => None,
            other => {
                problems.push(format!("`tolist` holds {}, not strings", type_name(other)));
                None
            }
        },
        Value::Null => None,
        other => {
            problems.push(format!("`tolist` is {}, not an array", type_name(other)));
            None
        }
    }
}

/// `msgtime`, UTC milliseconds; `None` (with a problem) when it holds no instant the
/// outputs can write: the time is then exported empty, never as a made-up date.
fn message_time(object: &Map<String, Value>, problems: &mut Vec<String>) -> Option<i64> {
    let ms = match object.get("msgtime") {
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(ms), _) => ms,
            (None, Some(f)) if f.is_finite() && f.abs() < 9.0e15 => {
                problems.push("`msgtime` is not a whole number of milliseconds".into());
                f.trunc() as i64
            }
            _ => {
                problems.push(unrepresentable_time("`msgtime`", n));
                return None;
            }
        },
        Some(Value::String(s)) => match s.trim().parse::<i64>() {
            Ok(ms) => {
                problems.push("`msgtime` is a string, not a number".into());
                ms
            }
            Err(_) => {
                problems.push(format!("`msgtime` {s:?} is not a time: time left empty"));
                return None;
            }
        },
        Some(other) => {
            problems.push(format!(
                "`msgtime` is {}, not a number: time left empty",
                type_name(other)
            ));
            return None;
        }
        None => {
            problems.push("no `msgtime`: time left empty".into());
            return None;
        }
    };
    let time = representable_ms(ms);
    if time.is_none() {
        problems.push(unrepresentable_time("`msgtime`", ms));
    }
    time
}

/// A payload's kind, one-line text and media.
struct Described {
    kind: Kind,
    text: String,
    media: Option<MediaEntry>,
    problem: Option<String>,
}

impl Described {
    fn new(kind: Kind, text: String) -> Described {
        Described {
            kind,
            text,
            media: None,
            problem: None,
        }
    }

    /// An unparseable payload: kind `other`, the payload itself as the text.
    fn malformed(payload: Option<&Value>, what: &str) -> Described {
        Described {
            kind: Kind::Other,
            text: payload.map(raw_text).unwrap_or_default(),
            media: None,
            problem: (!what.is_empty()).then(|| format!("malformed {what} payload")),
        }
    }
}

/// A payload as printable text: a string as it is, anything else as compact JSON.
fn raw_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Message types of the spec; others are kept as kind `other`.
fn is_known_type(msgtype: &str) -> bool {
    matches!(
        msgtype,
        "text"
            | "image"
            | "voice"
            | "video"
            | "file"
            | "link"
            | "location"
            | "emotion"
            | "redpacket"
            | "revoke"
    )
}

fn describe(msgtype: &str, payload: Option<&Value>, action: Option<&str>) -> Described {
    if !is_known_type(msgtype) {
        // Unknown types are valid data: kept as `other` with the payload, no warning.
        return Described::malformed(payload, "");
    }
    let Some(fields) = payload.and_then(Value::as_object) else {
        return Described::malformed(payload, msgtype);
    };
    describe_fields(msgtype, fields, action)
        .unwrap_or_else(|| Described::malformed(payload, msgtype))
}

/// The fields of a payload object, however it was parsed.
trait Fields {
    fn text(&self, key: &str) -> Option<&str>;
    fn unsigned(&self, key: &str) -> Option<u64>;
    fn float(&self, key: &str) -> Option<f64>;
}

impl Fields for Map<String, Value> {
    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
    fn unsigned(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }
    fn float(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Value::as_f64)
    }
}

/// A known type's payload; `None` when it lacks what the type needs (malformed).
fn describe_fields(msgtype: &str, fields: &dyn Fields, action: Option<&str>) -> Option<Described> {
    let text_of = |key: &str| fields.text(key);
    let number_of = |key: &str| fields.unsigned(key);
    let mut described = match msgtype {
        "text" => Described::new(Kind::Text, text_of("content")?.to_string()),
        "image" => Described::new(Kind::Image, "[image]".into()),
        "voice" => Described::new(Kind::Voice, with_seconds("[voice]", fields)),
        "video" => Described::new(Kind::Video, with_seconds("[video]", fields)),
        "file" => {
            let name = text_of("filename").unwrap_or_default();
            Described::new(Kind::File, joined("[file]", &[name]))
        }
        "link" => Described::new(
            Kind::Link,
            joined(
                "[link]",
                &[
                    text_of("title").unwrap_or_default(),
                    text_of("link_url").unwrap_or_default(),
                ],
            ),
        ),
        "location" => {
            let title = text_of("title").filter(|t| !t.is_empty());
            let place = title.or(text_of("address")).unwrap_or_default();
            Described::new(Kind::Location, joined("[location]", &[place]))
        }
        "emotion" => Described::new(Kind::Emoji, "[emoji]".into()),
        "redpacket" => Described::new(
            Kind::RedPacket,
            joined("[red packet]", &[text_of("wish").unwrap_or_default()]),
        ),
        // "revoke": the notice names the message it withdraws.
        "revoke" => Described::new(Kind::Recall, joined("[recall]", &[text_of("pre_msgid")?])),
        _ => return None,
    };
    if msgtype == "revoke" && action.is_some_and(|a| a != "recall") {
        described.problem = Some(format!(
            "revoke record with action `{}`",
            action.unwrap_or_default()
        ));
    }
    let media = match msgtype {
        "image" => Some((MediaKind::Image, Some("jpg"), number_of("filesize"))),
        "voice" => Some((MediaKind::Voice, Some("amr"), number_of("voice_size"))),
        "video" => Some((MediaKind::Video, Some("mp4"), number_of("filesize"))),
        "file" => Some((MediaKind::File, text_of("fileext"), number_of("filesize"))),
        _ => None,
    };
    if let Some((kind, extension, declared_size)) = media {
        match text_of("md5sum").filter(|m| !m.is_empty()) {
            Some(md5sum) => {
                let extension = extension.unwrap_or_default();
                if !is_safe_name(md5sum) || !(extension.is_empty() || is_safe_name(extension)) {
                    // Still named as the archive says: the export refuses it if it escapes.
                    described.problem =
                        Some("media name (md5sum/fileext) has unsafe characters".into());
                }
                let path = if extension.is_empty() {
                    format!("{}/{md5sum}", super::MEDIA_DIR)
                } else {
                    format!("{}/{md5sum}.{extension}", super::MEDIA_DIR)
                };
                described.media = Some(MediaEntry {
                    kind,
                    path,
                    original_name: (kind == MediaKind::File)
                        .then(|| text_of("filename").unwrap_or_default().to_string())
                        .filter(|n| !n.is_empty()),
                    declared_size,
                });
            }
            None => described.problem = Some(format!("{msgtype} without md5sum: no file")),
        }
    }
    Some(described)
}

/// Letters, digits, `_`, `-` and single dots: a name that stays one path component.
fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// `[voice] 5s`; just `[voice]` when the length is unknown.
fn with_seconds(label: &str, fields: &dyn Fields) -> String {
    match fields.float("play_length") {
        Some(seconds) => format!("{label} {seconds}s"),
        None => label.to_string(),
    }
}

/// The label and the non-empty parts, separated by spaces.
fn joined(label: &str, parts: &[&str]) -> String {
    let mut text = label.to_string();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        text.push(' ');
        text.push_str(part);
    }
    text
}

/// A JSON string, borrowed from the line when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StrVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for StrVisitor<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Str<'a>, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(StrVisitor(PhantomData))
    }
}

/// `tolist`: only its first entry matters (the partner of a one-to-one chat).
struct FirstString<'a>(Option<Str<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for FirstString<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for ListVisitor<'a> {
            type Value = FirstString<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<Str<'a>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(FirstString(first))
            }
        }
        deserializer.deserialize_seq(ListVisitor(PhantomData))
    }
}

/// Every payload field `describe_fields` reads, whatever the type.
#[derive(Deserialize)]
struct FastPayload<'a> {
    #[serde(borrow)]
    content: Option<Str<'a>>,
    #[serde(borrow)]
    md5sum: Option<Str<'a>>,
    #[serde(borrow)]
    filename: Option<Str<'a>>,
    #[serde(borrow)]
    fileext: Option<Str<'a>>,
    #[serde(borrow)]
    title: Option<Str<'a>>,
    #[serde(borrow)]
    address: Option<Str<'a>>,
    #[serde(borrow)]
    link_url: Option<Str<'a>>,
    #[serde(borrow)]
    wish: Option<Str<'a>>,
    #[serde(borrow)]
    pre_msgid: Option<Str<'a>>,
    filesize: Option<u64>,
    voice_size: Option<u64>,
    play_length: Option<f64>,
}

impl Fields for FastPayload<'_> {
    fn text(&self, key: &str) -> Option<&str> {
        let field = match key {
            "content" => &self.content,
            "md5sum" => &self.md5sum,
            "filename" => &self.filename,
            "fileext" => &self.fileext,
            "title" => &self.title,
            "address" => &self.address,
            "link_url" => &self.link_url,
            "wish" => &self.wish,
            "pre_msgid" => &self.pre_msgid,
            _ => return None,
        };
        field.as_ref().map(|s| s.0.as_ref())
    }
    fn unsigned(&self, key: &str) -> Option<u64> {
        match key {
            "filesize" => self.filesize,
            "voice_size" => self.voice_size,
            _ => None,
        }
    }
    fn float(&self, key: &str) -> Option<f64> {
        (key == "play_length").then_some(self.play_length).flatten()
    }
}

/// A line as the fast path reads it; any other shape fails and goes the general way.
#[derive(Deserialize)]
struct FastLine<'a> {
    #[serde(borrow)]
    msgid: Option<Str<'a>>,
    #[serde(borrow)]
    action: Option<Str<'a>>,
    #[serde(borrow)]
    from: Option<Str<'a>>,
    #[serde(borrow)]
    tolist: Option<FirstString<'a>>,
    #[serde(borrow)]
    roomid: Option<Str<'a>>,
    msgtime: Option<i64>,
    #[serde(borrow)]
    msgtype: Option<Str<'a>>,
    #[serde(borrow)]
    text: Option<FastPayload<'a>>,
    #[serde(borrow)]
    image: Option<FastPayload<'a>>,
    #[serde(borrow)]
    voice: Option<FastPayload<'a>>,
    #[serde(borrow)]
    video: Option<FastPayload<'a>>,
    #[serde(borrow)]
    file: Option<FastPayload<'a>>,
    #[serde(borrow)]
    link: Option<FastPayload<'a>>,
    #[serde(borrow)]
    location: Option<FastPayload<'a>>,
    #[serde(borrow)]
    emotion: Option<FastPayload<'a>>,
    #[serde(borrow)]
    redpacket: Option<FastPayload<'a>>,
    #[serde(borrow)]
    revoke: Option<FastPayload<'a>>,
}

/// The common case, read without building a JSON tree: a well-formed line of a known type.
/// `None` for anything else (bad JSON, missing or mistyped fields, unknown types): the caller
/// then parses it generally with [`interpret`], which gives the same result for the lines
/// both can read and explains the rest.
pub fn interpret_fast(line: &[u8]) -> Option<Outcome> {
    let fast: FastLine = serde_json::from_slice(line).ok()?;
    let action = fast.action.as_ref().map(|a| a.0.as_ref());
    if action == Some("switch") {
        return Some(Outcome::Switch);
    }
    let message_id = fast.msgid.filter(|m| !m.0.is_empty())?.0;
    let from = fast.from.filter(|f| !f.0.is_empty())?.0;
    // A time the outputs cannot write is explained by the general path.
    let time_ms = Some(representable_ms(fast.msgtime?)?);
    let msgtype = fast.msgtype?.0;
    let payload = match msgtype.as_ref() {
        "text" => fast.text,
        "image" => fast.image,
        "voice" => fast.voice,
        "video" => fast.video,
        "file" => fast.file,
        "link" => fast.link,
        "location" => fast.location,
        "emotion" => fast.emotion,
        "redpacket" => fast.redpacket,
        "revoke" => fast.revoke,
        _ => None,
    }?;
    let described = describe_fields(&msgtype, &payload, action)?;
    let roomid = fast.roomid.map(|r| r.0).unwrap_or_default();
    let conversation = if roomid.is_empty() {
        let to = fast
            .tolist
            .and_then(|t| t.0)
            .map(|t| t.0)
            .filter(|t| !t.is_empty());
        let mut participants: Vec<String> = std::iter::once(from.as_ref())
            .chain(to.as_deref())
            .map(str::to_string)
            .collect();
        participants.sort();
        participants.dedup();
        Conversation::Private {
            id: participants.join(&PRIVATE_SEPARATOR.to_string()),
            participants,
        }
    } else {
        Conversation::Room(roomid.into_owned())
    };
    Some(Outcome::Message(Box::new(Entry {
        message_id: message_id.into_owned(),
        conversation,
        time_ms,
        sender_id: Some(from.into_owned()),
        kind: described.kind,
        text: described.text,
        raw_type: msgtype.into_owned(),
        media: described.media,
        warning: described.problem,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The general interpretation, checked against the fast path when that reads the line.
    fn entry(value: Value) -> Entry {
        let general = match interpret(&value, "archive/a.jsonl:1") {
            Outcome::Message(entry) => *entry,
            other => panic!("{other:?}"),
        };
        if let Some(fast) = interpret_fast(value.to_string().as_bytes()) {
            match fast {
                Outcome::Message(fast) => assert_eq!(*fast, general),
                other => panic!("{other:?}"),
            }
        }
        general
    }

    #[test]
    fn text_message_in_a_group() {
        let e = entry(
            json!({"msgid":"m1","action":"send","from":"zhangsan","tolist":["lisi"],
            "roomid":"wr1","msgtime":1718150400123i64,"msgtype":"text","text":{"content":"a,\"b\"\n"}}),
        );
        assert_eq!(e.conversation, Conversation::Room("wr1".into()));
        assert_eq!(e.time_ms, Some(1718150400123));
        assert_eq!(e.kind, Kind::Text);
        assert_eq!(e.text, "a,\"b\"\n");
        assert_eq!(e.raw_type, "text");
        assert_eq!(e.warning, None);
    }

    #[test]
    fn one_to_one_chats_are_named_by_the_sorted_pair() {
        let e = entry(
            json!({"msgid":"m1","action":"send","from":"zs","tolist":["wmEXT"],
            "roomid":"","msgtime":1,"msgtype":"text","text":{"content":"hi"}}),
        );
        assert_eq!(
            e.conversation,
            Conversation::Private {
                id: "wmEXT|zs".into(),
                participants: vec!["wmEXT".into(), "zs".into()]
            }
        );
    }

    #[test]
    fn switch_records_and_non_objects() {
        let switch = json!({"msgid":"s1","action":"switch","time":1,"user":"zs"});
        assert!(matches!(interpret(&switch, "x"), Outcome::Switch));
        assert!(matches!(interpret(&json!([1]), "x"), Outcome::Unusable(_)));
    }

    #[test]
    fn recall_names_the_withdrawn_message() {
        let e = entry(
            json!({"msgid":"m2","action":"recall","from":"zs","tolist":[],"roomid":"wr1",
            "msgtime":5,"msgtype":"revoke","revoke":{"pre_msgid":"m1"}}),
        );
        assert_eq!(e.kind, Kind::Recall);
        assert_eq!(e.text, "[recall] m1");
        assert_eq!(e.warning, None);
    }

    #[test]
    fn media_paths_and_descriptions() {
        let file = entry(
            json!({"msgid":"m3","from":"zs","roomid":"wr1","msgtime":5,"msgtype":"file",
            "file":{"filename":"报价单.xlsx","fileext":"xlsx","md5sum":"abc","filesize":12}}),
        );
        assert_eq!(file.text, "[file] 报价单.xlsx");
        let media = file.media.unwrap();
        assert_eq!(media.path, "media/abc.xlsx");
        assert_eq!(media.original_name.as_deref(), Some("报价单.xlsx"));
        assert_eq!(media.declared_size, Some(12));
        let voice = entry(
            json!({"msgid":"m4","from":"zs","roomid":"wr1","msgtime":5,"msgtype":"voice",
            "voice":{"md5sum":"def","voice_size":100,"play_length":5}}),
        );
        assert_eq!(voice.text, "[voice] 5s");
        assert_eq!(voice.media.unwrap().path, "media/def.amr");
        let evil = entry(
            json!({"msgid":"m5","from":"zs","roomid":"wr1","msgtime":5,"msgtype":"image",
            "image":{"md5sum":"../../etc/passwd","filesize":1}}),
        );
        assert!(evil.warning.is_some());
        assert_eq!(evil.media.unwrap().path, "media/../../etc/passwd.jpg");
    }

    #[test]
    fn malformed_and_unknown_payloads() {
        let bad = entry(
            json!({"msgid":"m6","from":"zs","roomid":"wr1","msgtime":5,"msgtype":"text",
            "text":{"content":42}}),
        );
        assert_eq!(bad.kind, Kind::Other);
        assert_eq!(bad.text, "{\"content\":42}");
        assert!(bad.warning.unwrap().contains("malformed text payload"));
        let unknown = entry(json!({"msgid":"m7","from":"zs","roomid":"wr1","msgtime":5,
            "msgtype":"meeting_voice_call","meeting_voice_call":{"endtime":1}}));
        assert_eq!(unknown.kind, Kind::Other);
        assert_eq!(unknown.raw_type, "meeting_voice_call");
        assert_eq!(unknown.warning, None);
        let no_id = entry(
            json!({"from":"zs","roomid":"wr1","msgtime":"7","msgtype":"text","text":{"content":"x"}}),
        );
        assert_eq!(no_id.message_id, "archive/a.jsonl:1");
        assert_eq!(no_id.time_ms, Some(7));
        assert!(no_id.warning.is_some());
    }

    #[test]
    fn times_that_cannot_be_times_are_none_and_warned() {
        for msgtime in [
            json!(9223372036854775807i64),
            json!(-9223372036854775807i64),
            json!(1e300),
            json!("昨天"),
            json!(null),
        ] {
            let e = entry(
                json!({"msgid":"m","from":"zs","roomid":"wr1","msgtime":msgtime,
                "msgtype":"text","text":{"content":"x"}}),
            );
            assert_eq!(e.time_ms, None, "{msgtime}");
            assert!(
                e.warning.as_deref().is_some_and(|w| w.contains("msgtime")),
                "{msgtime}: {:?}",
                e.warning
            );
        }
    }
}
