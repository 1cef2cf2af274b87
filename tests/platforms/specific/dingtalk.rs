//! DingTalk only.

use std::path::Path;

use crate::common::*;
use crate::suite::{assert_matches_truth, export};
use crate::truth::dingtalk::{owner, DB, MINIMAL, SOURCE};

/// A hand-written DingTalk database (not the simulator's), so the importer is held to the
/// spec rather than to one writer.
fn handmade(dir: &Path, ddl: &str) -> std::path::PathBuf {
    let root = dir.join(SOURCE.dir_name);
    std::fs::create_dir_all(root.join("DBFiles")).unwrap();
    let conn = rusqlite::Connection::open(root.join(DB)).unwrap();
    conn.execute_batch(ddl).unwrap();
    root
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
    assert_eq!(owner(&root), None);
    assert_matches_truth(&SOURCE, &root, &bundle, false);
    let messages = read_csv(&bundle.join("data/messages.csv"));
    assert!(messages.iter().all(|m| m["direction"] != "sent"));
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
