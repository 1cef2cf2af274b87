//! DingTalk end to end: simulated sources with edge cases (and rows only in the WAL),
//! exported by the binary, checked against the sharded database queried directly.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{SecondsFormat, TimeZone, Utc};
use common::*;
use rusqlite::types::Value;

const DB: &str = "DBFiles/dingtalk.db";
/// The account directory's name carries the owner's uid.
const OWNER: &str = "123456";
const ROOT_NAME: &str = "123456_v2";

struct Expected {
    message_id: String,
    time_utc: String,
    direction: &'static str,
    sender_id: String,
    kind: &'static str,
    raw_type: String,
    /// The exact text, for text messages with parseable content.
    text: Option<String>,
}

fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::Integer(i) => Some(i.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(String::from_utf8(b.clone()).unwrap()),
        Value::Real(f) => Some(f.to_string()),
        Value::Null => None,
    }
}

/// `attachments[0].extension` decodes (a JSON string holding JSON, or an object), or is absent.
fn attachments_ok(attachments: Option<&str>) -> bool {
    let Some(raw) = attachments.filter(|a| !a.trim().is_empty()) else {
        return true;
    };
    let Ok(list) = serde_json::from_str::<serde_json::Value>(raw) else {
        return false;
    };
    let Some(first) = list.as_array().and_then(|a| a.first()) else {
        return list.is_null() || list.as_array().is_some();
    };
    match first.get("extension") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::String(inner)) => serde_json::from_str::<serde_json::Value>(inner)
            .map(|v| v.is_object())
            .unwrap_or(false),
        Some(serde_json::Value::Object(_)) => true,
        Some(_) => false,
    }
}

/// The kind sources.md §4 gives a row.
fn expected_kind(
    content_type: Option<i64>,
    content: Option<&str>,
    attachments: Option<&str>,
    recall: i64,
) -> (&'static str, Option<String>) {
    if recall > 0 {
        return ("recall", None);
    }
    let body = content
        .filter(|c| !c.trim().is_empty())
        .map(serde_json::from_str::<serde_json::Value>);
    let object = match &body {
        Some(Ok(v)) if v.is_object() => Some(v),
        _ => None,
    };
    let text = object.and_then(|v| v.get("text")).and_then(|t| t.as_str());
    let media_body_ok = body.is_none() || object.is_some();
    match content_type {
        Some(1) => match text {
            Some(t) => ("text", Some(t.to_string())),
            None => ("other", None),
        },
        // An empty system row (NULL, blank, or no `text`) is still a system row.
        Some(102) => (
            if body.is_none() || object.is_some() {
                "system"
            } else {
                "other"
            },
            None,
        ),
        Some(2) => (if media_body_ok { "image" } else { "other" }, None),
        Some(code @ (300 | 400 | 501)) => {
            if media_body_ok && attachments_ok(attachments) {
                (
                    match code {
                        300 => "voice",
                        400 => "video",
                        _ => "file",
                    },
                    None,
                )
            } else {
                ("other", None)
            }
        }
        Some(902) => (
            if object.is_some() {
                "red_packet"
            } else {
                "other"
            },
            None,
        ),
        _ => ("other", None),
    }
}

/// How SQLite orders a value: NULL, then numbers, then text.
type SqlOrder = (u8, i64, String);

fn sql_order(value: &Value) -> SqlOrder {
    match value {
        Value::Null => (0, 0, String::new()),
        Value::Integer(i) => (1, *i, String::new()),
        Value::Real(f) => (1, *f as i64, String::new()),
        Value::Text(t) => (2, 0, t.clone()),
        Value::Blob(_) => (3, 0, String::new()),
    }
}

/// RFC 3339 with milliseconds for an integer time of years 0000-9999; empty for anything
/// else (no time, text, an instant no output can write).
fn time_utc(value: &Value) -> String {
    match value {
        Value::Integer(ms) if (-62_167_219_200_000..=253_402_300_799_999).contains(ms) => Utc
            .timestamp_millis_opt(*ms)
            .unwrap()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        _ => String::new(),
    }
}

/// The shard tables of a database, with their numbers.
fn shards(conn: &rusqlite::Connection) -> Vec<(u32, String)> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tbmsg\\_%' ESCAPE '\\'")
        .unwrap();
    let names: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut numbered: Vec<(u32, String)> = names
        .into_iter()
        .filter_map(|n| n["tbmsg_".len()..].parse().ok().map(|i| (i, n)))
        .collect();
    numbered.sort();
    numbered
}

/// What messages.csv must hold for each group, computed from the database (with its WAL) by
/// the spec's rules, independently of the importer.
fn expected_messages(root: &Path, owner: Option<&str>) -> BTreeMap<String, Vec<Expected>> {
    let (_dir, conn) = ground_truth_db(root, DB);
    // (cid, createdAt as SQLite orders it, shard, rowid) orders rows; the rest is what the
    // export must show.
    let mut rows: Vec<((String, SqlOrder, u32, i64), Expected)> = Vec::new();
    for (number, table) in shards(&conn) {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT m.cid, m.rowid, m.mid, m.senderId, m.createdAt, m.contentType, \
                 CAST(m.content AS BLOB), m.recallStatus, CAST(m.attachments AS BLOB) \
                 FROM {table} m JOIN tbconversation c ON c.cid = m.cid WHERE c.type = 2"
            ))
            .unwrap();
        let mut result = stmt.query([]).unwrap();
        while let Some(row) = result.next().unwrap() {
            let cid: String = row.get(0).unwrap();
            let rowid: i64 = row.get(1).unwrap();
            let mid = as_text(&row.get::<_, Value>(2).unwrap()).unwrap_or_default();
            let sender = as_text(&row.get::<_, Value>(3).unwrap()).unwrap_or_default();
            let created: Value = row.get(4).unwrap();
            let content_type: Option<i64> = row.get(5).unwrap();
            let content: Option<Vec<u8>> = row.get(6).unwrap();
            let content = content.map(|c| String::from_utf8(c).unwrap());
            let recall: Option<i64> = row.get(7).unwrap();
            let attachments: Option<Vec<u8>> = row.get(8).unwrap();
            let attachments = attachments.map(|c| String::from_utf8(c).unwrap());
            let (direction, sender_id) = if content_type == Some(102) {
                ("system", String::new())
            } else if owner.is_some_and(|o| o == sender) {
                ("sent", sender)
            } else {
                ("received", sender)
            };
            let (kind, text) = expected_kind(
                content_type,
                content.as_deref(),
                attachments.as_deref(),
                recall.unwrap_or(0),
            );
            rows.push((
                (cid, sql_order(&created), number, rowid),
                Expected {
                    message_id: mid,
                    time_utc: time_utc(&created),
                    direction,
                    sender_id,
                    kind,
                    raw_type: content_type.map(|c| c.to_string()).unwrap_or_default(),
                    text,
                },
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    for ((cid, ..), expected) in rows {
        out.entry(cid).or_default().push(expected);
    }
    out
}

fn check_messages_match_database(root: &Path, bundle: &Path, owner: Option<&str>) {
    let expected = expected_messages(root, owner);
    let by_group = messages_by_group(bundle, "dingtalk", &expected);
    let mut texts_checked = 0;
    let mut nasty_texts = 0;
    let mut others = 0;
    for (group, want) in &expected {
        let got = &by_group[group];
        assert_eq!(got.len(), want.len(), "message count of {group}");
        for (g, w) in got.iter().zip(want) {
            let id = &w.message_id;
            assert_eq!(g["message_id"], *id, "{group}");
            assert_eq!(g["time_utc"], w.time_utc, "{group} {id}");
            assert_eq!(g["direction"], w.direction, "{group} {id}");
            assert_eq!(g["sender_id"], w.sender_id, "{group} {id}");
            assert_eq!(g["kind"], w.kind, "{group} {id}");
            assert_eq!(g["raw_type"], w.raw_type, "{group} {id}");
            others += usize::from(w.kind == "other");
            if let Some(text) = &w.text {
                assert_eq!(&g["text"], text, "{group} {id}");
                texts_checked += 1;
                if text.contains(['\r', '\n', '"', ',', '\0']) || text.chars().count() >= 10_000 {
                    nasty_texts += 1;
                }
            }
        }
    }
    assert!(texts_checked > 100, "only {texts_checked} texts compared");
    assert!(
        nasty_texts > 0,
        "the source had no edge-case texts to compare"
    );
    assert!(others > 0, "the source had no unknown or malformed rows");
}

fn simulate_dingtalk(dir: &Path, extra: &[&str]) -> std::path::PathBuf {
    simulate("dingtalk", dir, ROOT_NAME, extra)
}

fn export(root: &Path, bundle: &Path, extra: &[&str]) {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

#[test]
fn export_matches_the_database_and_copies_media_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate_dingtalk(
        dir.path(),
        &[
            "--groups",
            "4",
            "--messages",
            "3000",
            "--edge-rate",
            "0.1",
            "--seed",
            "7",
        ],
    );
    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    assert_eq!(snapshot(&root), before, "the export changed the source");

    check_messages_match_database(&root, &bundle, Some(OWNER));
    let messages = read_csv(&bundle.join("data/messages.csv"));
    assert!(messages.iter().any(|m| m["direction"] == "sent"));
    assert!(messages.iter().any(|m| m["group_id"].contains('+')));
    assert!(messages.iter().any(|m| m["group_id"].contains('/')));
    assert!(
        messages
            .iter()
            .any(|m| m["direction"] == "system" && m["text"] == "群主已解散该群"),
        "the dissolution notice is a system message"
    );
    for (kind, prefix) in [
        ("image", "[image]"),
        ("voice", "[voice] "),
        ("file", "[file] "),
        ("red_packet", "[red packet] "),
    ] {
        assert!(
            messages
                .iter()
                .any(|m| m["kind"] == kind && m["text"].starts_with(prefix)),
            "no {kind} described as {prefix:?}"
        );
    }

    // Media: copies are byte-identical; refused and missing files carry their status.
    let media = check_media_rows(&root, &bundle, &["copied", "missing", "outside_root"]);
    for kind in ["image", "voice", "video", "file"] {
        assert!(
            media
                .iter()
                .any(|m| m["kind"] == kind && m["status"] == "copied"),
            "no copied {kind}"
        );
    }
    let secret = std::fs::read("/etc/hostname").unwrap_or_default();
    if secret.len() > 4 {
        for entry in walkdir::WalkDir::new(bundle.join("data/media")) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                assert_ne!(std::fs::read(entry.path()).unwrap(), secret);
            }
        }
    }

    // groups.csv and members.csv agree with the export and the database.
    let groups = read_csv(&bundle.join("data/groups.csv"));
    assert_eq!(groups.len(), 4);
    for g in &groups {
        let n = messages
            .iter()
            .filter(|m| m["group_id"] == g["group_id"])
            .count();
        assert_eq!(g["message_count"], n.to_string());
    }
    let members = read_csv(&bundle.join("data/members.csv"));
    assert!(members.iter().any(|m| m["role"] == "owner"));
    assert!(members.iter().any(|m| m["role"] == "admin"));
    assert!(members
        .iter()
        .all(|m| ["owner", "admin", "member"].contains(&m["role"].as_str())));
    assert!(members.iter().all(|m| m["joined_at_utc"].ends_with('Z')));

    // The database was recorded with equal hashes before and after.
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();
    let sources = evidence["sources"].as_array().unwrap();
    let db = sources
        .iter()
        .find(|s| s["path"] == DB)
        .expect("the database is recorded");
    assert_eq!(db["sha256_before"], db["sha256_after"]);
    let warnings = evidence["warnings"].to_string();
    assert!(
        warnings.contains("JSON"),
        "malformed rows are reported: {warnings}"
    );
}

#[test]
fn rows_only_in_the_wal_are_exported_and_the_source_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate_dingtalk(
        dir.path(),
        &[
            "--groups",
            "3",
            "--messages",
            "1500",
            "--wal",
            "--seed",
            "3",
        ],
    );
    let wal = root.join(format!("{DB}-wal"));
    assert!(wal.exists(), "the simulator left no WAL");

    // The database file alone, without its WAL, lacks the newest rows.
    let alone = tempfile::tempdir().unwrap();
    std::fs::copy(root.join(DB), alone.path().join("dingtalk.db")).unwrap();
    let main_only: std::collections::HashSet<String> = {
        let conn = rusqlite::Connection::open(alone.path().join("dingtalk.db")).unwrap();
        let mut ids = std::collections::HashSet::new();
        for (_, table) in shards(&conn) {
            let mut stmt = conn.prepare(&format!("SELECT mid FROM {table}")).unwrap();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                ids.insert(as_text(&row.get::<_, Value>(0).unwrap()).unwrap());
            }
        }
        ids
    };

    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    assert_eq!(snapshot(&root), before, "the export changed the source");
    check_messages_match_database(&root, &bundle, Some(OWNER));

    let messages = read_csv(&bundle.join("data/messages.csv"));
    let only_in_wal = messages
        .iter()
        .filter(|m| !main_only.contains(&m["message_id"]))
        .count();
    assert!(
        only_in_wal >= 30,
        "{only_in_wal} exported rows came from the WAL"
    );

    // Every source file read hashes the same before and after, the WAL included.
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();
    let sources = evidence["sources"].as_array().unwrap();
    for path in [DB.to_string(), format!("{DB}-wal")] {
        let entry = sources
            .iter()
            .find(|s| s["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} is not recorded: {sources:?}"));
        assert_eq!(entry["sha256_before"], entry["sha256_after"]);
        assert_eq!(
            entry["sha256_before"].as_str().unwrap(),
            sha256_file(&root.join(&path))
        );
    }
}

#[test]
fn without_a_uid_in_the_directory_name_every_message_is_received() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "dingtalk",
        dir.path(),
        "dingtalk-backup",
        &["--groups", "2", "--messages", "600", "--no-media-files"],
    );
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    check_messages_match_database(&root, &bundle, None);
    let messages = read_csv(&bundle.join("data/messages.csv"));
    assert!(messages.iter().all(|m| m["direction"] != "sent"));
}

#[test]
fn private_chats_only_with_include_private_and_inspect_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate_dingtalk(
        dir.path(),
        &["--groups", "3", "--messages", "600", "--no-media-files"],
    );
    let groups_only = dir.path().join("groups");
    export(&root, &groups_only, &["--no-media"]);
    let rows = read_csv(&groups_only.join("data/messages.csv"));
    assert!(rows.iter().all(|r| !r["group_id"].contains(':')));
    let private = dir.path().join("private");
    export(&root, &private, &["--no-media", "--include-private"]);
    let rows = read_csv(&private.join("data/messages.csv"));
    assert!(rows.iter().any(|r| r["group_id"].contains(':')));

    let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["platform"], "dingtalk");
    let groups = report["groups"].as_array().unwrap();
    let total: u64 = groups
        .iter()
        .filter(|g| !g["id"].as_str().unwrap_or_default().contains(':'))
        .map(|g| g["messages"].as_u64().unwrap())
        .sum();
    let want: usize = expected_messages(&root, Some(OWNER))
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(total as usize, want);
    assert!(
        groups.iter().any(|g| g["state"] == "dissolved"),
        "a dissolved group"
    );
}

// ------------------------------------------------------------------ bad inputs

/// A hand-written DingTalk database (not the simulator's), so the importer is held to the
/// spec rather than to one writer.
fn handmade(dir: &Path, ddl: &str) -> std::path::PathBuf {
    let root = dir.join(ROOT_NAME);
    std::fs::create_dir_all(root.join("DBFiles")).unwrap();
    let conn = rusqlite::Connection::open(root.join(DB)).unwrap();
    conn.execute_batch(ddl).unwrap();
    root
}

const MINIMAL: &str = "
CREATE TABLE tbconversation (cid TEXT, type INTEGER, title TEXT, memberCount INTEGER, createAt INTEGER, ownerId INTEGER, status INTEGER);
CREATE TABLE tbuser_profile_v2 (uid INTEGER, nick TEXT, realName TEXT, mobile TEXT, email TEXT);
CREATE TABLE tbconversation_member (cid TEXT, uid INTEGER, role INTEGER, joinAt INTEGER);
CREATE TABLE im_image_info (cid TEXT, mid INTEGER, local_path TEXT, size INTEGER);
INSERT INTO tbconversation VALUES ('cidAB+/x==', 2, '测试群', 3, 1700000000000, 123456, 1);
INSERT INTO tbuser_profile_v2 VALUES (123456, '', '本人', NULL, NULL), (222, '小明', '王明', NULL, NULL), (333, NULL, '李四', NULL, NULL);
INSERT INTO tbconversation_member VALUES ('cidAB+/x==', 123456, 1, 1700000000000), ('cidAB+/x==', 222, 2, 1700000001000);
";

#[test]
fn a_database_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(ROOT_NAME);
    std::fs::create_dir_all(root.join("DBFiles")).unwrap();
    std::fs::write(
        root.join(DB),
        (0..8192u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    export_fails(&root, dir.path(), 5, "is not an SQLite database");
}

#[test]
fn a_truncated_database() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate_dingtalk(
        dir.path(),
        &["--groups", "2", "--messages", "3000", "--no-media-files"],
    );
    assert!(!root.join(format!("{DB}-wal")).exists());
    let db = root.join(DB);
    let len = std::fs::metadata(&db).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    file.set_len(len / 2).unwrap();
    let out = dir.path().join("bundle");
    let result = run(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(exit_code(&result), 5, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn a_missing_table_or_column() {
    let dir = tempfile::tempdir().unwrap();
    let no_conversations = handmade(
        &dir.path().join("a"),
        "CREATE TABLE tbmsg_000 (cid TEXT, mid INTEGER, senderId INTEGER, createdAt INTEGER, contentType INTEGER, content TEXT);",
    );
    export_fails(
        &no_conversations,
        dir.path(),
        5,
        "not a dingtalk database: no table `tbconversation` in DBFiles/dingtalk.db",
    );
    let no_column = handmade(
        &dir.path().join("b"),
        &format!(
            "{MINIMAL} CREATE TABLE tbmsg_007 (cid TEXT, mid INTEGER, senderId INTEGER, contentType INTEGER, content TEXT);"
        ),
    );
    export_fails(
        &no_column,
        dir.path(),
        5,
        "`tbmsg_007` in DBFiles/dingtalk.db has no column `createdAt`",
    );
}

#[test]
fn missing_shards_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let root = handmade(dir.path(), MINIMAL);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    assert!(read_csv(&bundle.join("data/messages.csv")).is_empty());
    let groups = read_csv(&bundle.join("data/groups.csv"));
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0]["group_id"], "cidAB+/x==");
    let members = read_csv(&bundle.join("data/members.csv"));
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[0]["display_name"], "本人",
        "nick empty: the real name"
    );
    assert_eq!(members[1]["display_name"], "小明");
    assert_eq!(members[1]["role"], "admin");
}

#[test]
fn malformed_rows_are_exported_as_other_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let ddl = format!(
        r#"{MINIMAL}
CREATE TABLE tbmsg_003 (cid TEXT, mid INTEGER, senderId INTEGER, createdAt INTEGER, contentType INTEGER, content TEXT, recallStatus INTEGER, attachments TEXT);
CREATE TABLE tbmsg_090 (cid TEXT, mid INTEGER, senderId INTEGER, createdAt INTEGER, contentType INTEGER, content TEXT, recallStatus INTEGER, attachments TEXT);
CREATE TABLE unrelated (x TEXT);
INSERT INTO tbmsg_003 VALUES
 ('cidAB+/x==', 1, 222, 1700000005000, 1, '{{"text":"broken', 0, NULL),
 ('cidAB+/x==', 2, 222, 1700000001000, 1, '{{"text":"第一条, \"引号\"\n换行"}}', 0, NULL),
 ('cidAB+/x==', 3, 123456, 1700000002000, 501, '{{"filename":"a.pdf"}}', 0, '[{{"extension":"{{not json"}}]'),
 ('cidAB+/x==', 4, 444, 1700000003000, 7777, '{{"whatever":1}}', 0, NULL),
 ('cidAB+/x==', 5, 222, 1700000004000, 1, NULL, 0, NULL),
 ('cidAB+/x==', 6, 222, 1700000006000, 1, '{{"text":"撤回的"}}', 2, NULL),
 ('cidAB+/x==', 7, 222, 1700000007000, 501, '{{}}', 0, '[{{"extension":"{{\"f_name\":\"报价单.xlsx\",\"f_size\":\"12\",\"path\":\"resource_cache/x/报价单.xlsx\"}}"}}]'),
 ('cidAB+/x==', 8, 0, 1700000009000, 102, '{{"text":"群主已解散该群"}}', 0, NULL),
 ('cidAB+/x==', 9, 222, 1700000007000, 2, '{{"filename":"i.jpg"}}', 0, NULL),
 ('cidAB+/x==', 12, 333, 1700000008000, 300, '{{"duration":4600}}', 0, 'not json');
INSERT INTO tbmsg_090 VALUES
 ('cidAB+/x==', 10, 222, 1700000001500, 902, '{{"title":"恭喜发财","count":3}}', 0, NULL),
 ('cidAB+/x==', 11, 222, 1700000007000, 400, NULL, 0, '[{{"extension":{{"f_name":"v.mp4","path":"../outside.mp4"}}}}]');
INSERT INTO im_image_info VALUES ('cidAB+/x==', 9, 'ImageFiles/ab/i.jpg', 3);
"#
    );
    let root = handmade(dir.path(), &ddl);
    std::fs::create_dir_all(root.join("ImageFiles/ab")).unwrap();
    std::fs::write(root.join("ImageFiles/ab/i.jpg"), b"jpg").unwrap();
    std::fs::create_dir_all(root.join("resource_cache/x")).unwrap();
    std::fs::write(
        root.join("resource_cache/x/报价单.xlsx"),
        b"PK\x03\x04 twelve",
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    let got: Vec<(&str, &str, &str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["message_id"].as_str(),
                r["kind"].as_str(),
                r["direction"].as_str(),
                r["text"].as_str(),
                r["sender_name"].as_str(),
            )
        })
        .collect();
    // Two shards merged in time order; equal times keep shard order (003 before 090).
    assert_eq!(
        got,
        vec![
            ("2", "text", "received", "第一条, \"引号\"\n换行", "小明"),
            (
                "10",
                "red_packet",
                "received",
                "[red packet] 恭喜发财",
                "小明"
            ),
            ("3", "other", "sent", "{\"filename\":\"a.pdf\"}", "本人"),
            ("4", "other", "received", "{\"whatever\":1}", "444"),
            ("5", "other", "received", "", "小明"),
            ("1", "other", "received", "{\"text\":\"broken", "小明"),
            ("6", "recall", "received", "[recalled]", "小明"),
            ("7", "file", "received", "[file] 报价单.xlsx", "小明"),
            ("9", "image", "received", "[image]", "小明"),
            ("11", "video", "received", "[video]", "小明"),
            ("12", "other", "received", "{\"duration\":4600}", "李四"),
            ("8", "system", "system", "群主已解散该群", ""),
        ]
    );
    assert_eq!(rows[3]["raw_type"], "7777");
    assert_eq!(rows[11]["sender_id"], "");
    let media = read_csv(&bundle.join("data/media.csv"));
    let status = |id: &str| {
        media
            .iter()
            .find(|m| m["message_id"] == id)
            .map(|m| m["status"].clone())
    };
    assert_eq!(status("7").as_deref(), Some("copied"));
    assert_eq!(status("9").as_deref(), Some("copied"));
    assert_eq!(status("11").as_deref(), Some("outside_root"));
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();
    let warnings = evidence["warnings"].as_array().unwrap();
    for id in ["1", "3", "5", "12"] {
        assert!(
            warnings.iter().any(|w| w["where"]
                .as_str()
                .unwrap_or_default()
                .ends_with(&format!("message {id}"))),
            "no warning for message {id}: {warnings:?}"
        );
    }
}
