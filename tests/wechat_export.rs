//! WeChat end to end: simulated sources with edge cases, exported by the binary, checked
//! against the database queried directly.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;

struct Expected {
    message_id: String,
    time_utc: String,
    direction: &'static str,
    sender_id: String,
    /// The exact text, for text messages with content.
    text: Option<String>,
}

/// What messages.csv must hold for each group, computed from the database by the spec's
/// rules (sources.md §1), independently of the importer.
fn expected_messages(root: &Path) -> BTreeMap<String, Vec<Expected>> {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let owner: String = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT talker, msgId, msgSvrId, type, isSend, createTime, CAST(content AS BLOB) FROM message \
             WHERE talker LIKE '%@chatroom' ORDER BY talker, createTime, msgId",
        )
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    let mut out: BTreeMap<String, Vec<Expected>> = BTreeMap::new();
    while let Some(row) = rows.next().unwrap() {
        let talker: String = row.get(0).unwrap();
        let local: i64 = row.get(1).unwrap();
        let server: Option<i64> = row.get(2).unwrap();
        let kind: Option<i64> = row.get(3).unwrap();
        let is_send: Option<i64> = row.get(4).unwrap();
        let created: rusqlite::types::Value = row.get(5).unwrap();
        let content: Option<Vec<u8>> = row.get(6).unwrap();
        let content = content.map(|c| String::from_utf8(c).unwrap());
        let (direction, sender_id, payload) = if kind == Some(10000) {
            ("system", String::new(), content.clone())
        } else if is_send == Some(1) {
            ("sent", owner.clone(), content.clone())
        } else {
            match content.as_deref().and_then(|c| {
                let colon = c.find(':')?;
                let nl = c.find('\n')?;
                (colon > 0 && colon < nl).then(|| (c[..colon].to_string(), c[nl + 1..].to_string()))
            }) {
                Some((sender, payload)) => ("received", sender, Some(payload)),
                None => ("received", String::new(), content.clone()),
            }
        };
        out.entry(talker).or_default().push(Expected {
            message_id: match server {
                Some(s) if s != 0 => s.to_string(),
                _ => local.to_string(),
            },
            time_utc: expected_time_utc(&created, 1),
            direction,
            sender_id,
            text: if kind == Some(1) { payload } else { None },
        });
    }
    out
}

fn check_messages_match_database(root: &Path, bundle: &Path) {
    let expected = expected_messages(root);
    let by_group = messages_by_group(bundle, "wechat", &expected);
    let mut texts_checked = 0;
    let mut nasty_texts = 0;
    for (group, want) in &expected {
        let got = &by_group[group];
        assert_eq!(got.len(), want.len(), "message count of {group}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["message_id"], w.message_id, "{group}");
            assert_eq!(g["time_utc"], w.time_utc, "{group} {}", w.message_id);
            assert_eq!(g["direction"], w.direction, "{group} {}", w.message_id);
            assert_eq!(g["sender_id"], w.sender_id, "{group} {}", w.message_id);
            if let Some(text) = &w.text {
                assert_eq!(&g["text"], text, "{group} {}", w.message_id);
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

#[test]
fn export_matches_the_database_and_copies_media_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
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
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(snapshot(&root), before, "the export changed the source");

    check_messages_match_database(&root, &bundle);

    let raw = std::fs::read(bundle.join("data/messages.csv")).unwrap();
    assert!(
        raw.starts_with("\u{FEFF}platform,group_id".as_bytes()),
        "BOM and header"
    );
    assert!(raw.ends_with(b"\r\n"), "CRLF line ends");

    // Media: copies are byte-identical; refused and missing files carry their status.
    check_media_rows(
        &root,
        &bundle,
        &["copied", "missing", "outside_root", "not_downloaded"],
    );
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

    // members.csv and groups.csv agree with the export.
    let groups = read_csv(&bundle.join("data/groups.csv"));
    let messages = read_csv(&bundle.join("data/messages.csv"));
    for g in &groups {
        let n = messages
            .iter()
            .filter(|m| m["group_id"] == g["group_id"])
            .count();
        assert_eq!(g["message_count"], n.to_string());
    }
    let members = read_csv(&bundle.join("data/members.csv"));
    assert!(!members.is_empty());
    assert!(members
        .iter()
        .all(|m| ["owner", "admin", "member"].contains(&m["role"].as_str())));
}

/// Rows far out of time order (a phone whose clock jumped back and forth) still come out
/// in (createTime, msgId) order per group, exported all together, one group at a time, or
/// a few at once.
#[test]
fn rows_out_of_time_order_are_exported_in_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "4", "--messages", "4000", "--seed", "11"],
    );
    {
        let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
        // A third of the rows moved back by up to 200 days, others forward, in a pattern
        // that makes many interleaved ascending runs.
        conn.execute_batch(
            "UPDATE message SET createTime = createTime - (msgId * 7919 % 4800) * 3600000 \
               WHERE msgId % 3 = 0;
             UPDATE message SET createTime = createTime + (msgId % 7) * 86400000 \
               WHERE msgId % 5 = 1;",
        )
        .unwrap();
    }
    let bundle = dir.path().join("all");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--no-media",
    ]);
    check_messages_match_database(&root, &bundle);

    // One group alone is read through the index; the rows must be the same, in order.
    let whole = read_csv(&bundle.join("data/messages.csv"));
    let group = whole[0]["group_id"].clone();
    let single = dir.path().join("single");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        single.to_str().unwrap(),
        "--no-media",
        "--group",
        &group,
    ]);
    let ids = |rows: &[BTreeMap<String, String>]| -> Vec<String> {
        rows.iter()
            .filter(|r| r["group_id"] == group)
            .map(|r| r["message_id"].clone())
            .collect()
    };
    assert_eq!(
        ids(&read_csv(&single.join("data/messages.csv"))),
        ids(&whole)
    );
}

#[test]
fn a_source_with_a_wal_is_exported_whole_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
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
        root.join("EnMicroMsg.db-wal").exists(),
        "the simulator left no WAL"
    );
    let before = snapshot(&root);
    let bundle = dir.path().join("bundle");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--no-media",
    ]);
    assert_eq!(snapshot(&root), before, "the export changed the source");
    check_messages_match_database(&root, &bundle);
}

#[test]
fn filters_and_csv_options() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "900"],
    );
    let all = dir.path().join("all");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        all.to_str().unwrap(),
        "--no-media",
    ]);
    let rows = read_csv(&all.join("data/messages.csv"));
    let group = rows[0]["group_id"].clone();
    let mid = rows[rows.len() / 2]["time_utc"].clone();

    let some = dir.path().join("some");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        some.to_str().unwrap(),
        "--group",
        &group,
        "--since",
        &mid,
        "--no-bom",
        "--csv-raw",
        "--tz",
        "-05:00",
        "--no-media",
    ]);
    let raw = std::fs::read(some.join("data/messages.csv")).unwrap();
    assert!(raw.starts_with(b"platform,"), "--no-bom");
    let got = read_csv(&some.join("data/messages.csv"));
    let want = rows
        .iter()
        .filter(|r| r["group_id"] == group && r["time_utc"] >= mid)
        .count();
    assert_eq!(got.len(), want);
    assert!(got.iter().all(|r| r["time_local"].ends_with("-05:00")));
    let media = read_csv(&some.join("data/media.csv"));
    assert!(
        media.iter().all(|m| m["status"] != "copied"),
        "--no-media copies nothing"
    );

    // One-to-one chats only with --include-private.
    assert!(rows.iter().all(|r| r["group_id"].ends_with("@chatroom")));
    let private = dir.path().join("private");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        private.to_str().unwrap(),
        "--include-private",
        "--no-media",
    ]);
    let with_private = read_csv(&private.join("data/messages.csv"));
    assert!(with_private
        .iter()
        .any(|r| !r["group_id"].ends_with("@chatroom")));
}

#[test]
fn inspect_lists_groups_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "600"],
    );
    let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["platform"], "wechat");
    let groups = report["groups"].as_array().unwrap();
    let total: u64 = groups.iter().map(|g| g["messages"].as_u64().unwrap()).sum();
    let (_d, conn) = ground_truth_db(&root, "EnMicroMsg.db");
    let want: u64 = conn
        .query_row(
            "SELECT count(*) FROM message WHERE talker LIKE '%@chatroom'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(total, want);
    assert!(
        groups.iter().any(|g| g["state"] == "dissolved"),
        "a dissolved group"
    );
    let text = run_ok(&["inspect", root.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("@chatroom"));
}
