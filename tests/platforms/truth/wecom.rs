//! WeCom (sources.md §3): the session archive's JSON lines and directory files read directly.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, TimeZone, Utc};
use serde_json::Value;

use super::{BadInput, Base, Breakage, Cond, Fact, Members, Message, Outcome, Source, Truth};

const ARCHIVE: &str = "archive/*.jsonl";

pub const SOURCE: Source = Source {
    platform: "wecom",
    dir_name: "wecom",
    read,
    reads_private: true,
    private: Some(Cond::Contains("group_id", "|")),
    wal_db: None,
    // The archive has no system messages: dissolution only from --dissolved-at.
    layout: &["archive", "groups", "users.json"],
    continues: true,
    dissolves: false,
    malformed_rows: false,
    media_statuses: &["copied", "missing", "outside_root"],
    roles: &["owner", "member"],
    // Malformed lines are warnings naming file and line; the simulator cuts one line.
    warnings: &[".jsonl:", "truncated"],
    facts: &[
        // Several archive files, read in name order.
        Fact::AtLeast(3, "sources", &[Cond::Prefix("path", "archive/")]),
        Fact::Some("sources", &[Cond::Eq("path", "users.json")]),
        Fact::Some("sources", &[Cond::Prefix("path", "groups/")]),
        Fact::All(
            "messages",
            &[],
            &[Cond::NotSuffix("message_id", "_switch")],
        ),
        Fact::Some("messages", &[Cond::Eq("kind", "text")]),
        Fact::Some("messages", &[Cond::Eq("kind", "image")]),
        Fact::Some("messages", &[Cond::Eq("kind", "voice")]),
        Fact::Some("messages", &[Cond::Eq("kind", "video")]),
        Fact::Some("messages", &[Cond::Eq("kind", "file")]),
        Fact::Some("messages", &[Cond::Eq("kind", "link")]),
        Fact::Some("messages", &[Cond::Eq("kind", "location")]),
        Fact::Some("messages", &[Cond::Eq("kind", "emoji")]),
        Fact::Some("messages", &[Cond::Eq("kind", "red_packet")]),
        Fact::Some("messages", &[Cond::Eq("kind", "recall")]),
        Fact::Some("messages", &[Cond::Eq("kind", "other")]),
        Fact::All(
            "messages",
            &[Cond::Eq("kind", "recall")],
            &[
                Cond::Prefix("text", "[recall] "),
                Cond::Eq("raw_type", "revoke"),
            ],
        ),
        Fact::All(
            "messages",
            &[Cond::Eq("kind", "file")],
            &[Cond::Prefix("text", "[file] ")],
        ),
        // A malformed text payload is exported as other.
        Fact::Some(
            "messages",
            &[Cond::Eq("kind", "other"), Cond::Eq("raw_type", "text")],
        ),
        Fact::Some("members", &[Cond::Eq("role", "owner")]),
        Fact::All("members", &[], &[Cond::NonEmpty("joined_at_utc")]),
        // External users among the members.
        Fact::Some("members", &[Cond::Prefix("member_id", "wm")]),
    ],
    small: &[
        "--groups",
        "2",
        "--messages",
        "300",
        "--seed",
        "5",
        "--edge-rate",
        "0",
        "--no-media-files",
    ],
    bad_inputs: &[
        BadInput {
            what: "an archive that is not JSON lines",
            base: Base::Small,
            breaks: &[(
                ARCHIVE,
                Breakage::Bytes(b"\x00\x01\x02 binary \xff\xfe bytes\n"),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "not JSON lines",
            },
        },
        BadInput {
            what: "a still encrypted archive",
            base: Base::Small,
            breaks: &[(
                ARCHIVE,
                Breakage::Bytes(br#"{"seq":1,"msgid":"x","publickey_ver":3,"encrypt_random_key":"AbC==","encrypt_chat_msg":"dEf=="}
"#),
            )],
            outcome: Outcome::Refused {
                code: 5,
                message: "still encrypted",
            },
        },
        BadInput {
            what: "directory files without an archive",
            base: Base::Small,
            breaks: &[(ARCHIVE, Breakage::Remove)],
            outcome: Outcome::Refused {
                code: 5,
                message: "archive/*.jsonl",
            },
        },
        BadInput {
            what: "a truncated archive file (loses only its cut line)",
            base: Base::Small,
            breaks: &[(ARCHIVE, Breakage::CutLastLine)],
            outcome: Outcome::Exported {
                warning: "truncated",
                senders_named_by_id: false,
            },
        },
        BadInput {
            what: "missing users and groups",
            base: Base::Small,
            breaks: &[
                ("users.json", Breakage::Remove),
                ("groups", Breakage::RemoveDir),
            ],
            outcome: Outcome::Exported {
                warning: "users.json",
                senders_named_by_id: true,
            },
        },
    ],
};

/// The archive's files, in name order.
pub fn archive_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

fn group_files(root: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(root.join("groups")) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = dir
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// Messages by the rules of §3, members from `groups/<roomid>.json`.
pub fn read(root: &Path, include_private: bool) -> Truth {
    let rel = |p: &Path| p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
    let mut sources: Vec<String> = archive_files(root).iter().map(|p| rel(p)).collect();
    if root.join("users.json").exists() {
        sources.push("users.json".into());
    }
    let mut members = BTreeMap::new();
    for file in group_files(root) {
        sources.push(rel(&file));
        let group: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        members.insert(
            group["roomid"].as_str().unwrap().to_string(),
            Members {
                count: group["members"].as_array().map_or(0, Vec::len),
                left: None,
            },
        );
    }
    Truth {
        messages: expected_messages(root, include_private),
        members,
        sources,
    }
}

/// What messages.csv must hold per conversation: files in name order, lines in order, the
/// first occurrence of each msgid (a line without one is named `file:line`), `switch`
/// records and lines that are not JSON objects left out, stably sorted by msgtime.
/// One-to-one chats (empty roomid) are keyed by the sorted pair `a|b`.
fn expected_messages(root: &Path, include_private: bool) -> BTreeMap<String, Vec<Message>> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut groups: BTreeMap<String, Vec<(i64, Message)>> = BTreeMap::new();
    for path in archive_files(root) {
        let rel = format!("archive/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&path).unwrap();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(line);
            let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text.trim()) else {
                continue;
            };
            let field = |key: &str| object.get(key).and_then(Value::as_str).unwrap_or("");
            if field("action") == "switch" {
                continue;
            }
            let conversation = if field("roomid").is_empty() {
                if !include_private {
                    continue;
                }
                let to = object
                    .get("tolist")
                    .and_then(|t| t.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let mut pair: Vec<&str> = [field("from"), to]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect();
                pair.sort();
                pair.dedup();
                pair.join("|")
            } else {
                field("roomid").to_string()
            };
            let message_id = match object.get("msgid").and_then(Value::as_str) {
                Some(id) if !id.is_empty() => id.to_string(),
                _ => format!("{rel}:{}", index + 1),
            };
            if !seen.insert(message_id.clone()) {
                continue;
            }
            // No time, or one no output can write: exported empty, sorted first.
            let ms: Option<i64> = match object.get("msgtime") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|ms| (-62_167_219_200_000..=253_402_300_799_999).contains(ms));
            let text = (field("msgtype") == "text")
                .then(|| {
                    object
                        .get("text")?
                        .get("content")?
                        .as_str()
                        .map(str::to_string)
                })
                .flatten();
            groups.entry(conversation).or_default().push((
                ms.unwrap_or(i64::MIN),
                Message {
                    message_id,
                    time_utc: ms
                        .map(|ms| {
                            Utc.timestamp_millis_opt(ms)
                                .unwrap()
                                .to_rfc3339_opts(SecondsFormat::Millis, true)
                        })
                        .unwrap_or_default(),
                    // The archive belongs to the enterprise: everything is received.
                    direction: "received",
                    sender_id: field("from").to_string(),
                    sender_name: None,
                    kind: text.is_some().then_some("text"),
                    raw_type: None,
                    text,
                },
            ));
        }
    }
    groups
        .into_iter()
        .map(|(id, mut messages)| {
            messages.sort_by_key(|(ms, _)| *ms);
            (id, messages.into_iter().map(|(_, m)| m).collect())
        })
        .collect()
}
