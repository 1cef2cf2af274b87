//! `export --format csv,jsonl,txt`: the JSON lines and text transcripts hold every message
//! of messages.csv (itself checked against each source's ground truth in tests/platforms),
//! field for field and with the exact text, on every platform.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const PLATFORMS: [&str; 4] = ["wechat", "qq", "wecom", "dingtalk"];

fn exported(platform: &str, dir: &Path) -> std::path::PathBuf {
    let root = simulate(
        platform,
        dir,
        "src",
        &[
            "--groups",
            "3",
            "--messages",
            "1500",
            "--edge-rate",
            "0.2",
            "--seed",
            "5",
        ],
    );
    let bundle = dir.join("bundle");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--format",
        "txt,jsonl,csv",
        "--include-private",
    ]);
    bundle
}

const COLUMNS: [&str; 14] = [
    "platform",
    "group_id",
    "group_name",
    "message_id",
    "time_utc",
    "time_local",
    "sender_id",
    "sender_name",
    "direction",
    "kind",
    "text",
    "media_path",
    "media_sha256",
    "raw_type",
];

#[test]
fn jsonl_holds_every_message_and_its_media_as_messages_csv_does() {
    for platform in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let bundle = exported(platform, dir.path());
        let csv_rows = read_csv(&bundle.join("data/messages.csv"));
        let media_rows = read_csv(&bundle.join("data/media.csv"));
        let text = std::fs::read_to_string(bundle.join("data/messages.jsonl")).unwrap();
        let objects: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert!(csv_rows.len() > 1000, "{platform}: {}", csv_rows.len());
        assert_eq!(objects.len(), csv_rows.len(), "{platform}");
        let mut media_by_message: BTreeMap<(String, String), Vec<&BTreeMap<String, String>>> =
            BTreeMap::new();
        for row in &media_rows {
            media_by_message
                .entry((row["group_id"].clone(), row["message_id"].clone()))
                .or_default()
                .push(row);
        }
        let mut with_media = 0;
        for (row, object) in csv_rows.iter().zip(&objects) {
            for column in COLUMNS {
                assert_eq!(
                    object[column].as_str(),
                    Some(row[column].as_str()),
                    "{platform} {column} of message {}",
                    row["message_id"]
                );
            }
            let want = media_by_message
                .get(&(row["group_id"].clone(), row["message_id"].clone()))
                .cloned()
                .unwrap_or_default();
            let got = object["media"].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{platform} {}", row["message_id"]);
            for (g, w) in got.iter().zip(&want) {
                for field in ["kind", "source_path", "bundle_path", "sha256", "status"] {
                    assert_eq!(
                        g[field].as_str(),
                        Some(w[field].as_str()),
                        "{platform} {field}"
                    );
                }
                let size = g["size"]
                    .as_u64()
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                assert_eq!(size, w["size"], "{platform}");
            }
            with_media += usize::from(!got.is_empty());
        }
        assert!(
            with_media > 50,
            "{platform}: {with_media} messages with media"
        );
        assert_eq!(
            run(&["verify", bundle.to_str().unwrap()]).status.code(),
            Some(0)
        );
    }
}

/// The transcript line chatvault must write for a messages.csv row, built here from the
/// row's fields by the format's rule.
fn expected_block(row: &BTreeMap<String, String>) -> String {
    // Every line break a reader might see (\r\n counted once) starts an indented line.
    let indent = |text: &str| {
        text.replace("\r\n", "\n")
            .split([
                '\n', '\r', '\u{0B}', '\u{0C}', '\u{85}', '\u{2028}', '\u{2029}',
            ])
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    let local = &row["time_local"];
    let time = if local.len() >= 29 {
        format!("{} {} {}", &local[..10], &local[11..19], &local[23..])
    } else {
        "(no time)".to_string()
    };
    let sender = if row["direction"] == "system" {
        "*".to_string()
    } else if row["sender_name"].is_empty() {
        row["sender_id"].clone()
    } else {
        indent(&row["sender_name"])
    };
    format!("{time}  {sender}: {}", indent(&row["text"]))
}

#[test]
fn txt_transcripts_hold_every_message_with_its_exact_text() {
    for platform in PLATFORMS {
        let dir = tempfile::tempdir().unwrap();
        let bundle = exported(platform, dir.path());
        let rows = read_csv(&bundle.join("data/messages.csv"));
        let groups = read_csv(&bundle.join("data/groups.csv"));
        let mut by_group: BTreeMap<&str, Vec<&BTreeMap<String, String>>> = BTreeMap::new();
        for row in &rows {
            by_group.entry(&row["group_id"]).or_default().push(row);
        }
        let files: Vec<_> = std::fs::read_dir(bundle.join("data/txt"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(
            files.len(),
            groups.len(),
            "{platform}: one file per conversation"
        );
        let mut multiline = 0;
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            // A message starts in column 0; its further lines are indented. So does the
            // header, whose group name may hold line breaks too.
            let mut blocks: Vec<String> = Vec::new();
            for line in text.split_inclusive('\n') {
                if line.starts_with("    ") {
                    blocks.last_mut().unwrap().push_str(line);
                } else {
                    blocks.push(line.to_string());
                }
            }
            let header = blocks.remove(0);
            assert!(header.starts_with("# "), "{platform}: {header}");
            let group_id = groups
                .iter()
                .map(|g| g["group_id"].as_str())
                .find(|id| header.contains(&format!("({id}, {platform})")))
                .unwrap_or_else(|| panic!("{platform}: no group for {header}"));
            let want = by_group.get(group_id).cloned().unwrap_or_default();
            assert_eq!(blocks.len(), want.len(), "{platform} {group_id}");
            for (block, row) in blocks.iter().zip(want) {
                let block = block.strip_suffix('\n').unwrap();
                let expected = expected_block(row);
                // Copied media follow the text as `  <data/media/…>`.
                let rest = block.strip_prefix(&expected).unwrap_or_else(|| {
                    panic!("{platform}: {block:?} does not start with {expected:?}")
                });
                if !row["media_path"].is_empty() {
                    assert!(
                        rest.contains(&format!("<{}>", row["media_path"])),
                        "{block}"
                    );
                } else {
                    assert!(rest.is_empty() || rest.starts_with("  <"), "{block}");
                }
                multiline += usize::from(row["text"].contains('\n'));
            }
        }
        assert!(
            multiline > 0,
            "{platform}: no text with a line break was checked"
        );
    }
}

/// A WeChat reply's `reply_to` names what its `<refermsg>` does, read here from the
/// database with a pattern of its own; and when the quoted text message is in the export,
/// the quoted text is that message's text.
#[test]
fn jsonl_replies_name_the_message_they_quote() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = exported("wechat", dir.path());
    let (_db_dir, conn) = ground_truth_db(&dir.path().join("src"), "EnMicroMsg.db");
    let svrid = regex::Regex::new(r"<refermsg>[\s\S]*?<svrid>\s*([0-9]+)\s*</svrid>").unwrap();
    let mut statement = conn
        .prepare("SELECT msgSvrId, content FROM message WHERE type IN (49, 822083633) AND content LIKE '%<refermsg>%'")
        .unwrap();
    let truth: BTreeMap<String, String> = statement
        .query_map([], |row| {
            Ok((
                row.get::<_, Option<i64>>(0)?,
                row.get::<_, Option<String>>(1)?,
            ))
        })
        .unwrap()
        .filter_map(|r| {
            let (id, content) = r.unwrap();
            let quoted = svrid.captures(content.as_deref()?)?[1].to_string();
            Some((id?.to_string(), quoted))
        })
        .collect();
    assert!(truth.len() > 20, "{} replies", truth.len());

    let text = std::fs::read_to_string(bundle.join("data/messages.jsonl")).unwrap();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let by_id: BTreeMap<&str, &serde_json::Value> = objects
        .iter()
        .map(|o| (o["message_id"].as_str().unwrap(), o))
        .collect();
    let (mut checked, mut texts) = (0, 0);
    for (reply, quoted) in &truth {
        let Some(object) = by_id.get(reply.as_str()) else {
            continue;
        };
        if object["kind"] != "quote" {
            continue; // a payload the simulator damaged on purpose
        }
        assert_eq!(object["reply_to"]["message_id"], quoted.as_str(), "{reply}");
        checked += 1;
        if let Some(target) = by_id.get(quoted.as_str()) {
            let target_text = target["text"].as_str().unwrap();
            // The reply carries its own copy, which the app made XML-safe.
            if target["kind"] == "text" && !target_text.chars().any(|c| c.is_control()) {
                assert_eq!(object["reply_to"]["text"], target_text, "{reply}");
                texts += 1;
            }
        }
    }
    assert!(
        checked > 20 && texts > 5,
        "{checked} replies, {texts} quoted texts"
    );
    // Messages that quote nothing say so.
    assert!(objects
        .iter()
        .filter(|o| o["kind"] != "quote")
        .all(|o| o["reply_to"].is_null()));
}
