//! WeCom end to end: simulated session archives with edge cases (shuffled files, duplicate
//! msgids, switch records, recalls, malformed lines, external users), exported by the binary
//! and checked against the JSON lines read directly by the spec's rules (sources.md §3).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, TimeZone, Utc};
use common::*;
use serde_json::Value;

struct Expected {
    message_id: String,
    time_utc: String,
    sender_id: String,
    /// The exact content of a text message whose payload is well-formed.
    text: Option<String>,
}

fn archive_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
}

/// What messages.csv must hold per conversation: files in name order, lines in order, the
/// first occurrence of each msgid (a line without one is named `file:line`), `switch`
/// records and lines that are not JSON objects left out, stably sorted by msgtime.
/// One-to-one chats (empty roomid) are keyed by the sorted pair `a|b`.
fn expected_messages(root: &Path, include_private: bool) -> BTreeMap<String, Vec<Expected>> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut groups: BTreeMap<String, Vec<(i64, Expected)>> = BTreeMap::new();
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
                Expected {
                    message_id,
                    time_utc: ms
                        .map(|ms| {
                            Utc.timestamp_millis_opt(ms)
                                .unwrap()
                                .to_rfc3339_opts(SecondsFormat::Millis, true)
                        })
                        .unwrap_or_default(),
                    sender_id: field("from").to_string(),
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

fn check_messages_match_archive(root: &Path, bundle: &Path, include_private: bool) {
    let expected = expected_messages(root, include_private);
    let by_group = messages_by_group(bundle, "wecom", &expected);
    let (mut texts_checked, mut nasty_texts) = (0, 0);
    for (group, want) in &expected {
        let got = &by_group[group];
        assert_eq!(got.len(), want.len(), "message count of {group}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["platform"], "wecom");
            assert_eq!(g["message_id"], w.message_id, "{group}");
            assert_eq!(g["time_utc"], w.time_utc, "{group} {}", w.message_id);
            assert_eq!(g["direction"], "received", "{group} {}", w.message_id);
            assert_eq!(g["sender_id"], w.sender_id, "{group} {}", w.message_id);
            if let Some(text) = &w.text {
                assert_eq!(&g["text"], text, "{group} {}", w.message_id);
                assert_eq!(g["kind"], "text");
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

fn evidence(bundle: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap()
}

#[test]
fn export_matches_the_archive_and_copies_media_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wecom",
        dir.path(),
        "wecom",
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
    assert!(archive_files(&root).len() >= 3, "several archive files");
    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    assert_eq!(snapshot(&root), before, "the export changed the source");

    check_messages_match_archive(&root, &bundle, false);

    let raw = std::fs::read(bundle.join("data/messages.csv")).unwrap();
    assert!(raw.starts_with("\u{FEFF}platform,group_id".as_bytes()));
    assert!(raw.ends_with(b"\r\n"));
    let messages = read_csv(&bundle.join("data/messages.csv"));
    let mut ids = HashSet::new();
    assert!(
        messages.iter().all(|m| ids.insert(m["message_id"].clone())),
        "a msgid exported twice"
    );
    assert!(
        messages
            .iter()
            .all(|m| !m["message_id"].ends_with("_switch")),
        "switch records belong to no group"
    );
    let kinds: HashSet<&str> = messages.iter().map(|m| m["kind"].as_str()).collect();
    for kind in [
        "text",
        "image",
        "voice",
        "video",
        "file",
        "link",
        "location",
        "emoji",
        "red_packet",
        "recall",
        "other",
    ] {
        assert!(kinds.contains(kind), "no {kind} message: {kinds:?}");
    }
    assert!(messages
        .iter()
        .filter(|m| m["kind"] == "recall")
        .all(|m| m["text"].starts_with("[recall] ") && m["raw_type"] == "revoke"));
    assert!(messages
        .iter()
        .filter(|m| m["kind"] == "file")
        .all(|m| m["text"].starts_with("[file] ")));
    assert!(
        messages
            .iter()
            .any(|m| m["kind"] == "other" && m["raw_type"] == "text"),
        "a malformed text payload exported as other"
    );

    // Media: copies are byte-identical; refused and missing files carry their status.
    check_media_rows(&root, &bundle, &["copied", "missing", "outside_root"]);
    // Nothing outside the root was read into the bundle.
    let secret = std::fs::read("/etc/hostname").unwrap_or_default();
    if secret.len() > 4 {
        for entry in walkdir::WalkDir::new(bundle.join("data/media")) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                assert_ne!(std::fs::read(entry.path()).unwrap(), secret);
            }
        }
    }

    // groups.csv and members.csv agree with the export and the directory files.
    let groups = read_csv(&bundle.join("data/groups.csv"));
    for g in &groups {
        let n = messages
            .iter()
            .filter(|m| m["group_id"] == g["group_id"])
            .count();
        assert_eq!(g["message_count"], n.to_string());
    }
    let members = read_csv(&bundle.join("data/members.csv"));
    assert!(members.iter().any(|m| m["role"] == "owner"));
    assert!(members
        .iter()
        .all(|m| ["owner", "member"].contains(&m["role"].as_str())));
    assert!(members.iter().all(|m| !m["joined_at_utc"].is_empty()));
    assert!(
        members.iter().any(|m| m["member_id"].starts_with("wm")),
        "external users among the members"
    );

    // Every archive and directory file is hashed before and after; malformed lines are
    // warnings naming file and line.
    let evidence = evidence(&bundle);
    let sources = evidence["sources"].as_array().unwrap();
    let source_paths: Vec<&str> = sources
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    for file in archive_files(&root) {
        let rel = format!("archive/{}", file.file_name().unwrap().to_string_lossy());
        assert!(source_paths.contains(&rel.as_str()), "{rel} not recorded");
    }
    assert!(source_paths.contains(&"users.json"));
    assert!(source_paths.iter().any(|p| p.starts_with("groups/")));
    for s in sources {
        assert_eq!(s["sha256_before"], s["sha256_after"], "{}", s["path"]);
    }
    let warnings = evidence["warnings"].to_string();
    assert!(warnings.contains(".jsonl:"), "no file:line warnings");
    assert!(
        warnings.contains("truncated"),
        "no warning for the cut line"
    );
}

#[test]
fn one_to_one_chats_only_with_include_private() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wecom",
        dir.path(),
        "wecom",
        &["--groups", "3", "--messages", "1500", "--seed", "11"],
    );
    let groups_only = dir.path().join("groups-only");
    export(&root, &groups_only, &["--no-media"]);
    let rows = read_csv(&groups_only.join("data/messages.csv"));
    assert!(rows.iter().all(|r| !r["group_id"].contains('|')));

    let with_private = dir.path().join("with-private");
    export(&root, &with_private, &["--no-media", "--include-private"]);
    check_messages_match_archive(&root, &with_private, true);
    let rows = read_csv(&with_private.join("data/messages.csv"));
    assert!(rows.iter().any(|r| r["group_id"].contains('|')));
    let media = read_csv(&with_private.join("data/media.csv"));
    assert!(
        media.iter().all(|m| m["status"] != "copied"),
        "--no-media copies nothing"
    );
}

#[test]
fn inspect_lists_groups_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wecom",
        dir.path(),
        "wecom",
        &["--groups", "3", "--messages", "600"],
    );
    let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["platform"], "wecom");
    let groups = report["groups"].as_array().unwrap();
    let total: u64 = groups.iter().map(|g| g["messages"].as_u64().unwrap()).sum();
    let want: usize = expected_messages(&root, false).values().map(Vec::len).sum();
    assert_eq!(total, want as u64);
    assert!(
        groups.iter().all(|g| g["state"] != "dissolved"),
        "the archive has no dissolution messages"
    );
}

fn small_source(dir: &Path) -> PathBuf {
    simulate(
        "wecom",
        dir,
        "wecom",
        &[
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
    )
}

/// Replaces every archive file with `bytes`.
fn overwrite_archive(root: &Path, bytes: &[u8]) {
    for file in archive_files(root) {
        std::fs::write(file, bytes).unwrap();
    }
}

#[test]
fn an_archive_that_is_not_json_lines_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    overwrite_archive(&root, b"\x00\x01\x02 binary \xff\xfe bytes\n");
    export_fails(&root, dir.path(), 5, "not JSON lines");
}

#[test]
fn a_still_encrypted_archive_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    overwrite_archive(
        &root,
        br#"{"seq":1,"msgid":"x","publickey_ver":3,"encrypt_random_key":"AbC==","encrypt_chat_msg":"dEf=="}
"#,
    );
    export_fails(&root, dir.path(), 5, "still encrypted");
}

#[test]
fn directory_files_without_an_archive_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    for file in archive_files(&root) {
        std::fs::remove_file(file).unwrap();
    }
    export_fails(&root, dir.path(), 5, "archive/*.jsonl");
}

#[test]
fn a_truncated_archive_file_loses_only_its_cut_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    let file = archive_files(&root).pop().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    // Cut in the middle of the last line.
    let last_line_start = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let cut = last_line_start + (bytes.len() - last_line_start) / 2;
    std::fs::write(&file, &bytes[..cut]).unwrap();
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    check_counts_only(&root, &bundle);
    let warnings = evidence(&bundle)["warnings"].to_string();
    assert!(warnings.contains("truncated"), "{warnings}");
}

#[test]
fn missing_users_and_groups_are_warnings_not_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    std::fs::remove_file(root.join("users.json")).unwrap();
    std::fs::remove_dir_all(root.join("groups")).unwrap();
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    check_counts_only(&root, &bundle);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    assert!(
        rows.iter().all(|r| r["sender_name"] == r["sender_id"]),
        "without users.json senders are named by id"
    );
    let warnings = evidence(&bundle)["warnings"].to_string();
    assert!(warnings.contains("users.json"), "{warnings}");
}

/// Messages per group match, and no row is lost.
fn check_counts_only(root: &Path, bundle: &Path) {
    let expected = expected_messages(root, false);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(rows.len(), total);
}

#[test]
fn malformed_lines_are_exported_as_other_or_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    let rows = read_csv(&{
        let bundle = dir.path().join("before");
        export(&root, &bundle, &["--no-media"]);
        bundle.join("data/messages.csv")
    });
    let roomid = rows[0]["group_id"].clone();
    let extra = format!(
        concat!(
            "{{\"msgid\":\"bad-payload\",\"action\":\"send\",\"from\":\"zs\",\"tolist\":[],\"roomid\":\"{r}\",\"msgtime\":1749000000000,\"msgtype\":\"text\",\"text\":\"not an object\"}}\n",
            "{{\"msgid\":\"unknown-type\",\"action\":\"send\",\"from\":\"zs\",\"tolist\":[],\"roomid\":\"{r}\",\"msgtime\":1749000000001,\"msgtype\":\"hologram\",\"hologram\":{{\"x\":1}}}}\n",
            "{{\"msgid\":\"string-time\",\"action\":\"send\",\"from\":\"zs\",\"tolist\":[],\"roomid\":\"{r}\",\"msgtime\":\"1749000000002\",\"msgtype\":\"text\",\"text\":{{\"content\":\"ok\"}}}}\n",
            "{{\"msgid\":\"evil-media\",\"action\":\"send\",\"from\":\"zs\",\"tolist\":[],\"roomid\":\"{r}\",\"msgtime\":1749000000003,\"msgtype\":\"file\",\"file\":{{\"filename\":\"x\",\"fileext\":\"/../../../etc/passwd\",\"md5sum\":\"..\",\"filesize\":1}}}}\n",
            "{{\"msgid\":\"no-json\"\n",
            "[\"an\",\"array\"]\n",
        ),
        r = roomid
    );
    let file = archive_files(&root).remove(0);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(extra.as_bytes());
    std::fs::write(&file, bytes).unwrap();

    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    check_counts_only(&root, &bundle);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    let row = |id: &str| rows.iter().find(|r| r["message_id"] == id).unwrap();
    assert_eq!(row("bad-payload")["kind"], "other");
    assert_eq!(row("bad-payload")["text"], "not an object");
    assert_eq!(row("unknown-type")["kind"], "other");
    assert_eq!(row("unknown-type")["raw_type"], "hologram");
    assert_eq!(row("string-time")["kind"], "text");
    assert_eq!(row("string-time")["time_utc"], "2025-06-04T01:20:00.002Z");
    let media = read_csv(&bundle.join("data/media.csv"));
    let evil = media
        .iter()
        .find(|m| m["message_id"] == "evil-media")
        .unwrap();
    assert_eq!(evil["status"], "outside_root");
    let warnings = evidence(&bundle)["warnings"].to_string();
    let rel = format!("archive/{}", file.file_name().unwrap().to_string_lossy());
    for what in [
        "malformed text payload",
        "not JSON",
        "not a JSON object",
        "unsafe",
    ] {
        assert!(warnings.contains(what), "no warning {what:?}: {warnings}");
    }
    assert!(warnings.contains(&format!("{rel}:")), "{warnings}");
}
