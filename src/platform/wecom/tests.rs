//! Importer tests: simulated archives checked against a direct reading of the JSON lines
//! (by the spec's rules, independently of the importer), and hand-written bad inputs.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::pathsafe::{self, Resolved};
use crate::records::{Direction, Kind, MediaLocation, Message};

struct Expected {
    message_id: String,
    time_ms: Option<i64>,
    sender_id: Option<String>,
    msgtype: String,
    /// The content of a text message whose payload is well-formed.
    text: Option<String>,
}

/// Group messages per roomid, by sources.md §3: files in name order, the first occurrence of
/// each msgid, `switch` and non-objects left out, stably sorted by msgtime.
fn direct_read(root: &Path) -> BTreeMap<String, Vec<Expected>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let mut seen: HashSet<String> = HashSet::new();
    let mut groups: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for path in names {
        let rel = format!("archive/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&path).unwrap();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(line);
            let Ok(Value::Object(object)) = serde_json::from_str::<Value>(text.trim()) else {
                continue;
            };
            if object.get("action").and_then(Value::as_str) == Some("switch") {
                continue;
            }
            let roomid = object.get("roomid").and_then(Value::as_str).unwrap_or("");
            if roomid.is_empty() {
                continue;
            }
            let message_id = match object.get("msgid").and_then(Value::as_str) {
                Some(id) => id.to_string(),
                None => format!("{rel}:{}", index + 1),
            };
            if !seen.insert(message_id.clone()) {
                continue;
            }
            let time_ms = match object.get("msgtime") {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            }
            .and_then(crate::records::representable_ms);
            let msgtype = object
                .get("msgtype")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let text = (msgtype == "text")
                .then(|| {
                    object
                        .get("text")?
                        .get("content")?
                        .as_str()
                        .map(str::to_string)
                })
                .flatten();
            groups
                .entry(roomid.to_string())
                .or_default()
                .push(Expected {
                    message_id,
                    time_ms,
                    sender_id: object
                        .get("from")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    msgtype,
                    text,
                });
        }
    }
    for messages in groups.values_mut() {
        messages.sort_by_key(|m| m.time_ms.unwrap_or(i64::MIN));
    }
    groups
}

/// The location (`archive/x.jsonl:N`) of every line that is not blank and not a JSON
/// object, in source order.
fn unreadable_lines(root: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let rel = format!("archive/{}", path.file_name().unwrap().to_string_lossy());
        let bytes = std::fs::read(&path).unwrap();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_start_matches('\u{FEFF}').trim();
            if !text.is_empty() && !matches!(serde_json::from_str(text), Ok(Value::Object(_))) {
                found.push(format!("{rel}:{}", index + 1));
            }
        }
    }
    found
}

fn simulate(dir: &Path, messages: usize, edge_rate: f64, media_files: bool) -> PathBuf {
    let root = dir.join("wecom");
    let mut opts = crate::simulate::SimOptions::new(root.clone());
    opts.groups = 4;
    opts.members = 12;
    opts.messages = messages;
    opts.seed = 7;
    opts.now_ms = 1_749_715_200_000;
    opts.edge_rate = edge_rate;
    opts.media_files = media_files;
    let report = crate::platform::wecom::simulate::simulate_wecom(&opts).unwrap();
    assert_eq!(report.platform, "wecom");
    root
}

fn all_messages(source: &dyn Source, group: &str) -> Vec<Message> {
    source
        .messages(group)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// Every file's bytes and mtime, not following links.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (Vec<u8>, Option<std::time::SystemTime>)> {
    let mut map = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false) {
        let entry = entry.unwrap();
        let meta = entry.path().symlink_metadata().unwrap();
        if meta.is_file() {
            map.insert(
                entry.path().to_path_buf(),
                (std::fs::read(entry.path()).unwrap(), meta.modified().ok()),
            );
        }
    }
    map
}

#[test]
fn a_simulated_archive_reads_back_like_the_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    // Enough for archive files of several read blocks, parsed on several threads.
    let root = simulate(dir.path(), 12_000, 0.1, true);
    assert!(probe(&root).unwrap());
    let before = snapshot(&root);
    let source = WecomSource::open(&root).unwrap();
    let expected = direct_read(&root);

    let groups = source.groups().unwrap();
    let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "groups sorted by id");
    let group_ids: Vec<&String> = groups
        .iter()
        .filter(|g| g.is_group)
        .map(|g| &g.id)
        .collect();
    assert_eq!(group_ids, expected.keys().collect::<Vec<_>>());
    assert!(groups.iter().any(|g| !g.is_group), "one-to-one chats");
    assert!(
        groups.iter().any(|g| g.is_group && g.name.is_empty()),
        "a group without groups/<roomid>.json"
    );

    let (mut texts, mut nasty, mut recalls, mut others) = (0, 0, 0, 0);
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for (group, want) in &expected {
        let got = all_messages(&source, group);
        assert_eq!(got.len(), want.len(), "message count of {group}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.message_id, w.message_id, "{group}");
            assert_eq!(g.time_ms, w.time_ms, "{}", w.message_id);
            assert_eq!(g.sender_id, w.sender_id, "{}", w.message_id);
            assert_eq!(g.direction, Direction::Received);
            assert_eq!(g.group_id, *group);
            assert_eq!(g.raw_type, w.msgtype);
            if let Some(text) = &w.text {
                assert_eq!(g.kind, Kind::Text, "{}", w.message_id);
                assert_eq!(&g.text, text, "{}", w.message_id);
                texts += 1;
                if text.contains(['\r', '\n', '"', ',', '\0']) || text.chars().count() >= 10_000 {
                    nasty += 1;
                }
            }
            if g.kind == Kind::Recall {
                recalls += 1;
                assert!(g.text.starts_with("[recall] "), "{}", g.text);
            }
            if g.kind == Kind::Other {
                others += 1;
            }
            for media in &g.media {
                let MediaLocation::Path(path) = &media.location else {
                    panic!("WeCom media are always paths");
                };
                assert!(path.starts_with("media/"), "{path}");
                let status = match pathsafe::resolve(&root, path) {
                    Resolved::Inside { .. } => "inside",
                    Resolved::Outside => "outside",
                    Resolved::Missing { .. } => "missing",
                };
                *statuses.entry(status).or_default() += 1;
            }
        }
    }
    assert!(texts > 1000, "only {texts} texts compared");
    assert!(nasty > 0, "no edge-case texts compared");
    assert!(
        recalls > 0 && others > 0,
        "recalls {recalls}, others {others}"
    );
    for status in ["inside", "outside", "missing"] {
        assert!(
            statuses.contains_key(status),
            "no {status} media: {statuses:?}"
        );
    }

    // Malformed lines are warnings with file:line, and none was fatal.
    let warnings = source.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.location.starts_with("archive/") && w.location.contains(".jsonl:")),
        "{warnings:?}"
    );
    assert!(warnings.iter().any(|w| w.message.contains("truncated")));
    assert!(warnings.len() < 1000, "all listed");
    // Every unreadable line is reported where it is, and line warnings come in source order.
    let skipped: Vec<&str> = warnings
        .iter()
        .filter(|w| w.message.ends_with("line skipped"))
        .map(|w| w.location.as_str())
        .collect();
    let unreadable = unreadable_lines(&root);
    assert!(unreadable.len() > 10, "{unreadable:?}");
    for location in &unreadable {
        assert!(skipped.contains(&location.as_str()), "{location}");
    }
    let line_of = |location: &str| -> (String, u64) {
        let (file, line) = location.rsplit_once(':').unwrap();
        (file.to_string(), line.parse().unwrap())
    };
    let in_order: Vec<(String, u64)> = warnings
        .iter()
        .filter(|w| w.location.starts_with("archive/") && !w.message.contains("appeared before"))
        .map(|w| line_of(&w.location))
        .collect();
    assert!(in_order.windows(2).all(|w| w[0] < w[1]), "{in_order:?}");
    let archive_bytes: u64 = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    assert!(archive_bytes > 1 << 20, "a file of several blocks");

    // Names and members.
    let named = groups
        .iter()
        .find(|g| g.is_group && !g.name.is_empty())
        .unwrap();
    let members = source.members(&named.id).unwrap();
    assert!(!members.is_empty());
    assert!(members.iter().any(|m| m.role == Role::Owner));
    assert!(members.iter().all(|m| m.joined_ms.is_some()));
    assert!(!source.people().is_empty());
    let private = groups.iter().find(|g| !g.is_group).unwrap();
    assert_eq!(source.members(&private.id).unwrap().len(), 2);
    assert!(!all_messages(&source, &private.id).is_empty());

    // Every archive and directory file is listed; reading changed nothing.
    let files: Vec<String> = source
        .source_files()
        .into_iter()
        .map(|f| f.rel_path)
        .collect();
    assert!(files.iter().any(|f| f == "users.json"));
    assert!(files.iter().any(|f| f.starts_with("groups/")));
    assert!(files.iter().filter(|f| f.starts_with("archive/")).count() >= 3);
    for file in &files {
        assert_eq!(cache_class(file), CacheClass::Database, "{file}");
    }
    drop(source);
    assert!(snapshot(&root) == before, "reading changed the source");
}

#[test]
fn a_clean_simulation_has_no_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(dir.path(), 500, 0.0, false);
    let source = WecomSource::open(&root).unwrap();
    assert_eq!(source.warnings(), Vec::<Warning>::new());
    let total: usize = source
        .groups()
        .unwrap()
        .iter()
        .filter(|g| g.is_group)
        .map(|g| all_messages(&source, &g.id).len())
        .sum();
    assert_eq!(total, 500);
}

/// Writes a hand-made account directory.
fn write(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, bytes) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

const LINE_A: &str = r#"{"msgid":"a","action":"send","from":"zs","tolist":["ls"],"roomid":"wr1","msgtime":3000,"msgtype":"text","text":{"content":"third"}}"#;
const LINE_B: &str = r#"{"msgid":"b","action":"send","from":"ls","tolist":["zs"],"roomid":"wr1","msgtime":1000,"msgtype":"text","text":{"content":"first"}}"#;
const LINE_C: &str = r#"{"msgid":"c","action":"send","from":"zs","tolist":["ls"],"roomid":"wr1","msgtime":2000,"msgtype":"text","text":{"content":"second"}}"#;

#[test]
fn lines_in_any_order_come_out_in_time_order_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let second_file = format!(
        "{LINE_B}\n{LINE_A}\n{}\n",
        r#"{"msgid":"s","action":"switch","time":5,"user":"zs"}"#
    );
    let tampered = LINE_C.replace("second", "changed");
    write(
        root,
        &[
            ("archive/2.jsonl", second_file.as_bytes()),
            ("archive/1.jsonl", format!("{LINE_A}\n{LINE_C}\n").as_bytes()),
            ("archive/3.jsonl", format!("{tampered}\n").as_bytes()),
            ("users.json", r#"[{"userid":"zs","name":"张三","kind":"internal"}]"#.as_bytes()),
            (
                "groups/wr1.json",
                r#"{"roomid":"wr1","roomname":"项目组","creator":"zs","room_create_time":10,"members":[{"memberid":"zs","jointime":10},{"memberid":"ls","jointime":20}]}"#.as_bytes(),
            ),
        ],
    );
    let source = WecomSource::open(root).unwrap();
    let messages = all_messages(&source, "wr1");
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["first", "second", "third"]);
    assert_eq!(source.display_name("zs").as_deref(), Some("张三"));
    assert_eq!(source.display_name("ls"), None);
    let group = &source.groups().unwrap()[0];
    assert_eq!(group.name, "项目组");
    assert_eq!(group.owner_id.as_deref(), Some("zs"));
    assert_eq!(group.created_ms, Some(10_000));
    let members = source.members("wr1").unwrap();
    assert_eq!(members[1].joined_ms, Some(20_000));
    assert_eq!(members[0].role, Role::Owner);
    let warnings = source.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].location, "archive/3.jsonl:1");
    assert!(warnings[0].message.contains("different content"));
}

#[test]
fn malformed_lines_are_warnings_never_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let body = [
        "\u{FEFF}",
        LINE_B,
        "\n{\"msgid\":\"x\",\"roomid\":\"wr1\"",
        "\n[1,2]\n\n   \n",
        r#"{"msgid":"d","from":"zs","roomid":"wr1","msgtime":"4000","msgtype":"text","text":{"content":7}}"#,
        "\n",
        r#"{"from":"zs","roomid":"wr1","msgtime":5000,"msgtype":"vote","vote":{"title":"午饭"}}"#,
        "\n",
        r#"{"msgid":"e","from":"zs","roomid":"wr1","msgtime":6000,"msgtype":"image","image":{"md5sum":"../../x","filesize":"big"}}"#,
        "\n",
        r#"{"msgid":"f","tolist":[],"roomid":"","msgtime":1,"msgtype":"text","text":{"content":"lost"}}"#,
        "\n",
        r#"{"msgid":"g","from":"zs","roomid":"wr1","msgtime":7000,"msgtype":"text","text":{"content":"cut"#,
    ]
    .concat();
    write(root, &[("archive/a.jsonl", body.as_bytes())]);
    let source = WecomSource::open(root).unwrap();
    let messages = all_messages(&source, "wr1");
    let summary: Vec<(&str, Kind, &str)> = messages
        .iter()
        .map(|m| (m.message_id.as_str(), m.kind, m.text.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("b", Kind::Text, "first"),
            ("d", Kind::Other, "{\"content\":7}"),
            ("archive/a.jsonl:7", Kind::Other, "{\"title\":\"午饭\"}"),
            ("e", Kind::Image, "[image]"),
        ]
    );
    assert!(messages[1].warning.is_some() && messages[2].warning.is_some());
    assert_eq!(messages[3].media[0].declared_size, None);
    assert_eq!(
        pathsafe::resolve(
            root,
            match &messages[3].media[0].location {
                MediaLocation::Path(p) => p,
                other => panic!("{other:?}"),
            }
        ),
        Resolved::Outside
    );
    let locations: Vec<String> = source.warnings().into_iter().map(|w| w.location).collect();
    for expected in [
        "archive/a.jsonl:2",
        "archive/a.jsonl:3",
        "archive/a.jsonl:6",
        "archive/a.jsonl:7",
        "archive/a.jsonl:8",
        "archive/a.jsonl:9",
        "archive/a.jsonl:10",
        "users.json",
        "groups",
    ] {
        assert!(
            locations.iter().any(|l| l == expected),
            "{expected} not in {locations:?}"
        );
    }
    assert!(source
        .warnings()
        .iter()
        .any(|w| w.location == "archive/a.jsonl:10" && w.message.contains("truncated")));
    // The one group is known from its messages only (no groups/ directory).
    assert_eq!(source.groups().unwrap().len(), 1);
    assert_eq!(source.members("wr1").unwrap(), Vec::new());
}

#[test]
fn detection_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    assert!(!probe(root).unwrap(), "an empty directory");
    std::fs::create_dir(root.join("archive")).unwrap();
    assert!(!probe(root).unwrap(), "an empty archive directory alone");
    write(root, &[("users.json", b"[]")]);
    let err = probe(root).unwrap_err().to_string();
    assert!(err.contains("archive/*.jsonl"), "{err}");

    write(
        root,
        &[("archive/a.jsonl", b"\x00\x01binary\xff garbage\n")],
    );
    let err = probe(root).unwrap_err().to_string();
    assert!(err.contains("not JSON lines"), "{err}");

    write(
        root,
        &[(
            "archive/a.jsonl",
            br#"{"seq":1,"msgid":"x","publickey_ver":1,"encrypt_random_key":"abc","encrypt_chat_msg":"def"}"#,
        )],
    );
    let err = probe(root).unwrap_err().to_string();
    assert!(err.contains("still encrypted"), "{err}");

    write(
        root,
        &[("archive/b.jsonl", format!("{LINE_A}\n").as_bytes())],
    );
    assert!(probe(root).unwrap());
    assert_eq!(
        crate::source::detect(root).unwrap().name(),
        WECOM.name,
        "no other platform claims it"
    );
    let empty = tempfile::tempdir().unwrap();
    write(empty.path(), &[("archive/a.jsonl", b"")]);
    assert!(probe(empty.path()).unwrap(), "an empty archive file");
    let source = WecomSource::open(empty.path()).unwrap();
    assert!(source.groups().unwrap().is_empty());
}

#[test]
fn a_linked_archive_file_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        &[("secret.jsonl", format!("{LINE_A}\n").as_bytes())],
    );
    write(
        dir.path(),
        &[("archive/b.jsonl", format!("{LINE_B}\n").as_bytes())],
    );
    std::os::unix::fs::symlink(
        outside.path().join("secret.jsonl"),
        dir.path().join("archive/link.jsonl"),
    )
    .unwrap();
    let source = WecomSource::open(dir.path()).unwrap();
    let ids: Vec<String> = all_messages(&source, "wr1")
        .into_iter()
        .map(|m| m.message_id)
        .collect();
    assert_eq!(ids, ["b"]);
    assert!(source
        .warnings()
        .iter()
        .any(|w| w.location == "archive/link.jsonl"));
    assert!(source
        .source_files()
        .iter()
        .all(|f| f.rel_path != "archive/link.jsonl"));
}

#[test]
fn cache_layout() {
    assert_eq!(
        cache_class("media/abc.jpg"),
        CacheClass::Media(MediaKind::Image)
    );
    assert_eq!(
        cache_class("media/abc.amr"),
        CacheClass::Media(MediaKind::Voice)
    );
    assert_eq!(
        cache_class("media/abc.mp4"),
        CacheClass::Media(MediaKind::Video)
    );
    assert_eq!(
        cache_class("media/abc.xlsx"),
        CacheClass::Media(MediaKind::File)
    );
    assert_eq!(cache_class("archive/x.jsonl"), CacheClass::Database);
    assert_eq!(cache_class("groups/wr1.json"), CacheClass::Database);
    assert_eq!(cache_class("users.json"), CacheClass::Database);
    assert_eq!(cache_class("notes.txt"), CacheClass::Other);
}

#[test]
fn a_dropped_stream_stops_and_the_store_outlives_the_source_handle() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(dir.path(), 5000, 0.0, false);
    let source = WecomSource::open(&root).unwrap();
    let group = source
        .groups()
        .unwrap()
        .into_iter()
        .find(|g| g.is_group)
        .unwrap()
        .id;
    let mut stream = source.messages(&group).unwrap();
    assert!(stream.next().is_some());
    drop(stream);
    let stream = source.messages(&group).unwrap();
    drop(source);
    assert!(stream.count() > 100);
}

#[test]
fn the_fast_path_agrees_with_the_general_one_on_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(dir.path(), 4000, 0.3, false);
    let (mut fast_lines, mut general_only) = (0, 0);
    for file in archive::archive_files(&root).unwrap() {
        for line in std::fs::read(&file.path).unwrap().split(|b| *b == b'\n') {
            let general = serde_json::from_slice::<Value>(line)
                .ok()
                .map(|v| record::interpret(&v, "fallback"));
            match (record::interpret_fast(line), general) {
                (None, _) => general_only += 1,
                (Some(record::Outcome::Message(fast)), Some(record::Outcome::Message(general))) => {
                    assert_eq!(fast, general, "{}", String::from_utf8_lossy(line));
                    fast_lines += 1;
                }
                (Some(record::Outcome::Switch), Some(record::Outcome::Switch)) => {}
                (fast, general) => {
                    panic!("{fast:?} vs {general:?}: {}", String::from_utf8_lossy(line))
                }
            }
        }
    }
    assert!(
        fast_lines > 3000 && general_only > 50,
        "{fast_lines} {general_only}"
    );
}
