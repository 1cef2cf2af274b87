//! QQ NT end to end: simulated sources with edge cases, exported by the binary, checked
//! against nt_msg.db queried directly (with this file's own protobuf decoding).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

const MSG_DB: &str = "nt_db/nt_msg.db";
const INFO_DB: &str = "nt_db/group_info.db";

/// One decoded protobuf field: number and either an integer or bytes.
enum Field<'a> {
    Int(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// All top-level fields, or `None` if the bytes are not valid protobuf (groups skipped).
fn decode(buf: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    let mut depth = 0usize;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        if number == 0 {
            return None;
        }
        let field = match wire {
            0 => Field::Int(varint(buf, &mut pos)?),
            1 => {
                pos = pos.checked_add(8).filter(|p| *p <= buf.len())?;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            3 => {
                depth += 1;
                if depth > 32 {
                    return None;
                }
                continue;
            }
            4 => {
                depth = depth.checked_sub(1)?;
                continue;
            }
            5 => {
                pos = pos.checked_add(4).filter(|p| *p <= buf.len())?;
                continue;
            }
            _ => return None,
        };
        if depth == 0 {
            out.push((number, field));
        }
    }
    (depth == 0).then_some(out)
}

/// An element's type and its string fields.
type Element = (u64, BTreeMap<u64, Vec<u8>>);

/// A body's elements, or `None` when malformed.
fn elements(body: &[u8]) -> Option<Vec<Element>> {
    let mut out = Vec::new();
    for (number, field) in decode(body)? {
        if number != 40800 && number != 48000 {
            continue;
        }
        let Field::Bytes(bytes) = field else {
            return None;
        };
        let mut element_type = 0;
        let mut strings = BTreeMap::new();
        for (inner, value) in decode(bytes)? {
            match (inner, value) {
                (45002, Field::Int(t)) => element_type = t,
                (45101 | 47602 | 45403 | 45402, Field::Bytes(b)) => {
                    strings.insert(inner, b.to_vec());
                }
                (45101 | 47602 | 45403 | 45402 | 45002, _) => return None,
                _ => {}
            }
        }
        out.push((element_type, strings));
    }
    Some(out)
}

struct Expected {
    message_id: String,
    time_utc: String,
    direction: &'static str,
    sender_id: String,
    /// The row's own name (card, else nickname), when it has one.
    sender_name: Option<String>,
    kind: Option<&'static str>,
    /// The exact text, for text messages.
    text: Option<String>,
}

/// What messages.csv must hold per group, by the rules of sources.md §2.
fn expected_messages(root: &Path) -> BTreeMap<String, Vec<Expected>> {
    let (_dir, conn) = ground_truth_db(root, MSG_DB);
    let mut stmt = conn
        .prepare(
            r#"SELECT "40027", "40001", "40011", "40012", "40013", "40020", "40050", "40090", "40093", CAST("40800" AS BLOB)
               FROM group_msg_table ORDER BY CAST("40027" AS TEXT), "40050", "40003", "40001""#,
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let group: i64 = row.get(0).unwrap();
        let msg_id: i64 = row.get(1).unwrap();
        let msg_type: i64 = row.get(2).unwrap();
        let sub: Option<i64> = row.get(3).unwrap();
        let send_type: Option<i64> = row.get(4).unwrap();
        let uid: Option<String> = row.get(5).unwrap();
        let seconds: rusqlite::types::Value = row.get(6).unwrap();
        let card: Option<String> = row.get(7).unwrap();
        let nick: Option<String> = row.get(8).unwrap();
        let body: Option<Vec<u8>> = row.get(9).unwrap();
        let system = msg_type == 5;
        let direction = if system {
            "system"
        } else if matches!(send_type, Some(1 | 2)) {
            "sent"
        } else {
            "received"
        };
        let parsed = body.as_deref().and_then(elements);
        let text_of = |els: &[Element]| -> String {
            els.iter()
                .filter_map(|(t, f)| match t {
                    1 => f.get(&45101),
                    6 => f.get(&47602),
                    _ => None,
                })
                .map(|b| String::from_utf8(b.clone()).unwrap())
                .collect()
        };
        let (kind, text) = match &parsed {
            // A grey tip with no body is still a system message.
            None if system && body.is_none() => (Some("system"), None),
            None => (Some("other"), None),
            Some(els) => match msg_type {
                2 => {
                    let text = text_of(els);
                    let pictures = els.iter().any(|(t, _)| *t == 2);
                    if sub.unwrap_or(0) & 128 != 0 {
                        (Some("link"), None)
                    } else if text.is_empty() && pictures {
                        (Some("image"), None)
                    } else {
                        (Some("text"), Some(text))
                    }
                }
                3 => (Some("file"), None),
                5 if sub == Some(4) => (Some("recall"), None),
                5 => (Some("system"), None),
                6 => (Some("voice"), None),
                7 => (Some("video"), None),
                9 => (Some("quote"), None),
                10 => (Some("red_packet"), None),
                11 => (Some("link"), None),
                8 | 1 | 12 | 17 | 99 => (Some("other"), None),
                _ => (None, None),
            },
        };
        let name = card
            .filter(|c| !c.is_empty())
            .or(nick.filter(|n| !n.is_empty()));
        out.entry(group.to_string()).or_default().push(Expected {
            message_id: msg_id.to_string(),
            time_utc: expected_time_utc(&seconds, 1000),
            direction,
            sender_id: if system {
                String::new()
            } else {
                uid.unwrap_or_default()
            },
            sender_name: if system { None } else { name },
            kind,
            text,
        });
    }
    out
}

fn check_messages_match_database(root: &Path, bundle: &Path) {
    let expected = expected_messages(root);
    let by_group = messages_by_group(bundle, "qq", &expected);
    let mut texts_checked = 0;
    let mut nasty_texts = 0;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (group, want) in &expected {
        let got = &by_group[group];
        assert_eq!(got.len(), want.len(), "message count of {group}");
        for (g, w) in got.iter().zip(want) {
            let id = &w.message_id;
            assert_eq!(g["message_id"], *id, "{group}");
            assert_eq!(g["time_utc"], w.time_utc, "{group} {id}");
            assert!(
                g["time_utc"].is_empty() || g["time_utc"].ends_with(".000Z"),
                "second precision"
            );
            assert_eq!(g["direction"], w.direction, "{group} {id}");
            assert_eq!(g["sender_id"], w.sender_id, "{group} {id}");
            if let Some(name) = &w.sender_name {
                assert_eq!(&g["sender_name"], name, "{group} {id}");
            }
            if let Some(kind) = w.kind {
                assert_eq!(g["kind"], kind, "{group} {id}");
            }
            *kinds.entry(g["kind"].clone()).or_default() += 1;
            if w.kind == Some("other") && !g["raw_type"].is_empty() {
                // Unknown codes keep their raw code.
                assert!(g["raw_type"].chars().next().unwrap().is_ascii_digit());
            }
            if let Some(text) = &w.text {
                assert_eq!(&g["text"], text, "{group} {id}");
                texts_checked += 1;
                if text.contains(['\r', '\n', '"', ',', '\0']) || text.chars().count() >= 10_000 {
                    nasty_texts += 1;
                }
            }
        }
    }
    let malformed = expected
        .values()
        .flatten()
        .filter(|w| w.kind == Some("other"))
        .count();
    assert!(texts_checked > 100, "only {texts_checked} texts compared");
    assert!(
        nasty_texts > 0,
        "the source had no edge-case texts to compare"
    );
    assert!(malformed > 0, "no malformed or unknown rows");
    for kind in [
        "text",
        "image",
        "voice",
        "video",
        "file",
        "link",
        "quote",
        "red_packet",
        "recall",
        "system",
        "other",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} messages: {kinds:?}");
    }
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
    let root = simulate(
        "qq",
        dir.path(),
        "qq",
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
    assert!(root.join(MSG_DB).is_file() && root.join(INFO_DB).is_file());
    assert!(root.join("RecycleBin").is_dir(), "no recycle bin");
    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &[]);
    assert_eq!(snapshot(&root), before, "the export changed the source");

    check_messages_match_database(&root, &bundle);

    let raw = std::fs::read(bundle.join("data/messages.csv")).unwrap();
    assert!(raw.starts_with("\u{FEFF}platform,group_id".as_bytes()));
    assert!(raw.ends_with(b"\r\n"));

    // Malformed bodies are exported as `other` with a warning in the evidence.
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();
    let evidence_text = evidence.to_string();
    assert!(
        evidence_text.contains("malformed message body"),
        "no warning for malformed bodies"
    );
    let sources: Vec<String> = evidence["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap().to_string())
        .collect();
    for db in [MSG_DB, INFO_DB] {
        assert!(
            sources.iter().any(|p| p == db),
            "{db} not in evidence sources"
        );
    }

    // Media: copies are byte-identical; refused and missing files carry their status.
    let media = check_media_rows(&root, &bundle, &["copied", "missing", "outside_root"]);
    for row in media.iter().filter(|r| r["status"] == "copied") {
        assert!(row["source_path"].starts_with("nt_data/"));
    }
    let kinds: Vec<&str> = media.iter().map(|m| m["kind"].as_str()).collect();
    for kind in ["image", "image_thumb", "voice", "video", "file"] {
        assert!(kinds.contains(&kind), "no {kind} media");
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

    // members.csv matches group_member3; groups.csv counts match messages.csv.
    let (_d, info) = ground_truth_db(&root, INFO_DB);
    let members = read_csv(&bundle.join("data/members.csv"));
    let mut stmt = info
        .prepare(
            r#"SELECT "60001", count(*), sum("64016" != 0) FROM group_member3 GROUP BY "60001""#,
        )
        .unwrap();
    let counts: Vec<(i64, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (group, count, left) in counts {
        let of_group: Vec<_> = members
            .iter()
            .filter(|m| m["group_id"] == group.to_string())
            .collect();
        assert_eq!(of_group.len() as i64, count, "members of {group}");
        assert_eq!(
            of_group.iter().filter(|m| m["left"] == "true").count() as i64,
            left,
            "left members of {group}"
        );
        assert!(of_group.iter().filter(|m| m["role"] == "owner").count() <= 1);
    }
    assert!(members.iter().any(|m| m["role"] == "owner"));
    let groups = read_csv(&bundle.join("data/groups.csv"));
    let messages = read_csv(&bundle.join("data/messages.csv"));
    for g in &groups {
        let n = messages
            .iter()
            .filter(|m| m["group_id"] == g["group_id"])
            .count();
        assert_eq!(g["message_count"], n.to_string());
        assert!(g["group_id"].parse::<u64>().is_ok(), "group number as id");
    }
}

#[test]
fn a_source_with_a_wal_is_exported_whole_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "qq",
        dir.path(),
        "qq",
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
    assert!(
        root.join("nt_db/nt_msg.db-wal").exists(),
        "the simulator left no WAL"
    );
    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    assert_eq!(snapshot(&root), before, "the export changed the source");
    check_messages_match_database(&root, &bundle);
}

#[test]
fn inspect_lists_groups_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "qq",
        dir.path(),
        "qq",
        &["--groups", "3", "--messages", "600"],
    );
    let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["platform"], "qq");
    let groups = report["groups"].as_array().unwrap();
    let total: u64 = groups.iter().map(|g| g["messages"].as_u64().unwrap()).sum();
    let (_d, conn) = ground_truth_db(&root, MSG_DB);
    let want: u64 = conn
        .query_row("SELECT count(*) FROM group_msg_table", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, want);
    assert!(
        groups.iter().any(|g| g["state"] == "dissolved"),
        "a dissolved group"
    );
}

/// A small valid source to break in different ways.
fn small_source(dir: &Path) -> std::path::PathBuf {
    simulate(
        "qq",
        dir,
        "qq",
        &["--groups", "2", "--messages", "200", "--seed", "5"],
    )
}

#[test]
fn a_database_that_is_not_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    std::fs::write(root.join(MSG_DB), b"SQLCipher encrypted bytes...........").unwrap();
    export_fails(&root, dir.path(), 5, "not an SQLite database");
}

#[test]
fn a_truncated_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    let path = root.join(MSG_DB);
    let len = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 2).unwrap();
    export_fails(&root, dir.path(), 5, "truncated");
}

#[test]
fn a_database_without_the_message_table_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("qq");
    std::fs::create_dir_all(root.join("nt_db")).unwrap();
    let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
    conn.execute_batch("CREATE TABLE c2c_msg_table (\"40001\" INTEGER PRIMARY KEY);")
        .unwrap();
    drop(conn);
    export_fails(&root, dir.path(), 5, "group_msg_table");
}

#[test]
fn group_info_without_nt_msg_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    std::fs::remove_file(root.join(MSG_DB)).unwrap();
    export_fails(&root, dir.path(), 4, "nt_msg.db");
}

#[test]
fn a_missing_group_info_db_is_a_warning_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    std::fs::remove_file(root.join(INFO_DB)).unwrap();
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    check_counts_only(&root, &bundle);
    let evidence = std::fs::read_to_string(bundle.join("evidence.json")).unwrap();
    assert!(
        evidence.contains("group_info.db"),
        "no warning about group_info.db"
    );
}

/// Messages per group match, and no row is lost.
fn check_counts_only(root: &Path, bundle: &Path) {
    let expected = expected_messages(root);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(rows.len(), total);
}

#[test]
fn malformed_rows_are_exported_as_other_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path());
    let conn = rusqlite::Connection::open(root.join(MSG_DB)).unwrap();
    // A hostile body, a NULL body, text where a blob belongs, NULL columns, an unknown type.
    conn.execute_batch(
        r#"UPDATE group_msg_table SET "40800" = X'82F613FFFFFFFF0F41' WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1);
           UPDATE group_msg_table SET "40800" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 1);
           UPDATE group_msg_table SET "40800" = '<not protobuf>' WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 2);
           UPDATE group_msg_table SET "40011" = 4242, "40012" = NULL, "40090" = NULL, "40093" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table WHERE "40011" = 2 LIMIT 1 OFFSET 3);
           UPDATE group_msg_table SET "40003" = NULL, "40013" = NULL WHERE rowid IN (SELECT rowid FROM group_msg_table LIMIT 5 OFFSET 10);"#,
    )
    .unwrap();
    drop(conn);
    let bundle = dir.path().join("bundle");
    export(&root, &bundle, &["--no-media"]);
    check_counts_only(&root, &bundle);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    assert!(rows
        .iter()
        .any(|r| r["text"] == "<not protobuf>" && r["kind"] == "other"));
    assert!(rows
        .iter()
        .any(|r| r["raw_type"] == "4242" && r["kind"] == "other"));
    let others = rows.iter().filter(|r| r["kind"] == "other").count();
    assert!(others >= 4);
    let evidence = std::fs::read_to_string(bundle.join("evidence.json")).unwrap();
    assert!(evidence.contains("malformed message body"));
    assert!(evidence.contains("40800 is NULL"));
}
