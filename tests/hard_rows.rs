//! Rows that are easy to get wrong, on every platform where they can occur, checked
//! against the source read directly (SQL / JSON), never through chatvault's readers:
//! - an empty system row (NULL or empty content) is kind `system` with empty text and no
//!   warning;
//! - a time that is no time, or one no output can write, is exported empty and warned
//!   (with where), the message kept, also under `--since`, and left out of groups.csv's
//!   first/last;
//! - a damaged `-wal` is warned with the file and the number of frames SQLite ignores.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// (group id, message id) of the planted rows, read from the source.
struct Planted {
    empty_system: Vec<(String, String)>,
    bad_time: Vec<(String, String)>,
}

const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

fn pairs(conn: &rusqlite::Connection, sql: &str) -> Vec<(String, String)> {
    use rusqlite::types::Value as V;
    let text = |v: V| match v {
        V::Integer(n) => n.to_string(),
        V::Text(t) => t,
        other => panic!("{other:?}"),
    };
    let mut stmt = conn.prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| Ok((text(r.get(0)?), text(r.get(1)?))))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn wechat_planted(root: &Path) -> Planted {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let id = "CASE WHEN msgSvrId IS NOT NULL AND msgSvrId != 0 THEN msgSvrId ELSE msgId END";
    Planted {
        empty_system: pairs(
            &conn,
            &format!(
                "SELECT talker, {id} FROM message WHERE talker LIKE '%@chatroom' \
                 AND type = 10000 AND (content IS NULL OR content = '')"
            ),
        ),
        bad_time: pairs(
            &conn,
            &format!(
                "SELECT talker, {id} FROM message WHERE talker LIKE '%@chatroom' \
                 AND NOT (typeof(createTime) = 'integer' AND createTime BETWEEN {MIN_MS} AND {MAX_MS})"
            ),
        ),
    }
}

fn qq_planted(root: &Path) -> Planted {
    let (_dir, conn) = ground_truth_db(root, "nt_db/nt_msg.db");
    Planted {
        empty_system: pairs(
            &conn,
            r#"SELECT "40027", "40001" FROM group_msg_table WHERE "40011" = 5
               AND ("40800" IS NULL OR length("40800") = 0)"#,
        ),
        bad_time: pairs(
            &conn,
            &format!(
                r#"SELECT "40027", "40001" FROM group_msg_table WHERE NOT (typeof("40050") = 'integer'
                   AND "40050" BETWEEN {} AND {})"#,
                MIN_MS / 1000,
                MAX_MS / 1000
            ),
        ),
    }
}

fn dingtalk_planted(root: &Path) -> Planted {
    let (_dir, conn) = ground_truth_db(root, "DBFiles/dingtalk.db");
    let shards: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tbmsg%'")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.map(Result::unwrap).collect()
    };
    let mut planted = Planted {
        empty_system: Vec::new(),
        bad_time: Vec::new(),
    };
    for shard in shards {
        let groups = "cid IN (SELECT cid FROM tbconversation WHERE type = 2)";
        planted.empty_system.extend(pairs(
            &conn,
            &format!(
                "SELECT cid, mid FROM {shard} WHERE {groups} AND contentType = 102 \
                 AND (content IS NULL OR trim(content) = '')"
            ),
        ));
        planted.bad_time.extend(pairs(
            &conn,
            &format!(
                "SELECT cid, mid FROM {shard} WHERE {groups} AND NOT (typeof(createdAt) = 'integer' \
                 AND createdAt BETWEEN {MIN_MS} AND {MAX_MS})"
            ),
        ));
    }
    planted
}

fn wecom_planted(root: &Path) -> Planted {
    let mut bad_time = Vec::new();
    for entry in std::fs::read_dir(root.join("archive")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            let room = o.get("roomid").and_then(Value::as_str).unwrap_or("");
            let Some(id) = o.get("msgid").and_then(Value::as_str) else {
                continue;
            };
            if room.is_empty() || o.get("action").and_then(Value::as_str) == Some("switch") {
                continue;
            }
            let ok = match o.get("msgtime") {
                Some(Value::Number(n)) => {
                    n.as_i64().is_some_and(|ms| (MIN_MS..=MAX_MS).contains(&ms))
                }
                Some(Value::String(s)) => s
                    .trim()
                    .parse::<i64>()
                    .is_ok_and(|ms| (MIN_MS..=MAX_MS).contains(&ms)),
                _ => false,
            };
            if !ok {
                bad_time.push((room.to_string(), id.to_string()));
            }
        }
    }
    bad_time.sort();
    bad_time.dedup();
    Planted {
        empty_system: Vec::new(),
        bad_time,
    }
}

fn export(root: &Path, out: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-media",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap()
}

/// evidence.json's warnings by `where`.
fn warnings(evidence: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for w in evidence["warnings"].as_array().unwrap() {
        out.entry(w["where"].as_str().unwrap().to_string())
            .or_default()
            .push(w["warning"].as_str().unwrap().to_string());
    }
    out
}

fn hard_rows(platform: &str, planted: fn(&Path) -> Planted, wants_empty_system: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        platform,
        dir.path(),
        "src",
        &["--groups", "4", "--messages", "2000", "--edge-rate", "0.1"],
    );
    let planted = planted(&root);
    assert_eq!(
        !planted.empty_system.is_empty(),
        wants_empty_system,
        "{platform}: empty system rows planted"
    );
    assert!(
        planted.bad_time.len() >= 2,
        "{platform}: {} rows with no writable time planted",
        planted.bad_time.len()
    );
    let bundle = dir.path().join("all");
    let evidence = export(&root, &bundle, &[]);
    let warned = warnings(&evidence);
    let rows = read_csv(&bundle.join("data/messages.csv"));
    let by_id: BTreeMap<(String, String), &BTreeMap<String, String>> = rows
        .iter()
        .map(|r| ((r["group_id"].clone(), r["message_id"].clone()), r))
        .collect();
    for key in &planted.empty_system {
        let row = by_id
            .get(key)
            .unwrap_or_else(|| panic!("{platform}: {key:?} not exported"));
        assert_eq!(
            (
                row["kind"].as_str(),
                row["text"].as_str(),
                row["direction"].as_str()
            ),
            ("system", "", "system"),
            "{platform} {key:?}"
        );
        let at = format!("{} message {}", key.0, key.1);
        assert!(
            !warned.contains_key(&at),
            "{platform}: {at} warned: {:?}",
            warned[&at]
        );
    }
    let mut bad_groups = BTreeSet::new();
    for key in &planted.bad_time {
        let row = by_id
            .get(key)
            .unwrap_or_else(|| panic!("{platform}: {key:?} not exported"));
        assert_eq!(
            (row["time_utc"].as_str(), row["time_local"].as_str()),
            ("", ""),
            "{platform} {key:?}"
        );
        let at = format!("{} message {}", key.0, key.1);
        let said = warned
            .get(&at)
            .unwrap_or_else(|| panic!("{platform}: {at} not warned"));
        assert!(
            said.iter().any(|w| w.contains("time")),
            "{platform} {at}: {said:?}"
        );
        bad_groups.insert(key.0.clone());
    }
    // groups.csv: first/last are the group's earliest and latest writable times.
    for group in read_csv(&bundle.join("data/groups.csv")) {
        let times: Vec<&str> = rows
            .iter()
            .filter(|r| r["group_id"] == group["group_id"] && !r["time_utc"].is_empty())
            .map(|r| r["time_utc"].as_str())
            .collect();
        let (first, last) = (times.iter().min(), times.iter().max());
        assert_eq!(
            (
                Some(&group["first_message_utc"].as_str()),
                Some(&group["last_message_utc"].as_str())
            ),
            (first, last),
            "{platform} {}",
            group["group_id"]
        );
    }
    // A time filter keeps what has no time to be filtered by.
    let since = dir.path().join("since");
    export(&root, &since, &["--since", "2000-01-01"]);
    let kept: BTreeSet<(String, String)> = read_csv(&since.join("data/messages.csv"))
        .into_iter()
        .map(|r| (r["group_id"].clone(), r["message_id"].clone()))
        .collect();
    for key in &planted.bad_time {
        assert!(kept.contains(key), "{platform}: {key:?} dropped by --since");
    }
    // One group alone (WeChat reads it through the index, not the one-scan spool).
    for group in bad_groups {
        let single = dir.path().join("single");
        let _ = std::fs::remove_dir_all(&single);
        export(&root, &single, &["--group", &group]);
        let ids = |rows: &[BTreeMap<String, String>]| -> Vec<String> {
            rows.iter()
                .filter(|r| r["group_id"] == group)
                .map(|r| r["message_id"].clone())
                .collect()
        };
        assert_eq!(
            ids(&read_csv(&single.join("data/messages.csv"))),
            ids(&rows),
            "{platform} {group}: same rows in the same order"
        );
    }
}

#[test]
fn wechat_hard_rows() {
    hard_rows("wechat", wechat_planted, true);
}

#[test]
fn qq_hard_rows() {
    hard_rows("qq", qq_planted, true);
}

#[test]
fn dingtalk_hard_rows() {
    hard_rows("dingtalk", dingtalk_planted, true);
}

#[test]
fn wecom_hard_rows() {
    // The archive has no system messages (sources.md §3).
    hard_rows("wecom", wecom_planted, false);
}

/// A copy of `root` with 4 KB in the middle of its `wal` overwritten.
fn damaged_copy(root: &Path, wal: &str, into: &Path) -> PathBuf {
    let status = std::process::Command::new("cp")
        .args(["-a", root.to_str().unwrap(), into.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let path = into.join(wal);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle - 2048..middle + 2048].fill(0x5A);
    std::fs::write(&path, bytes).unwrap();
    into.to_path_buf()
}

/// Whole frames of a WAL, from its header's page size (big-endian at byte 8).
fn frames(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    let page = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as u64;
    (bytes.len() as u64 - 32) / (page + 24)
}

fn damaged_wal(platform: &str, name: &str, wal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        platform,
        dir.path(),
        name,
        &["--groups", "3", "--messages", "6000", "--wal"],
    );
    assert!(root.join(wal).exists(), "{platform}: --wal wrote no {wal}");
    let is_wal_warning =
        |w: &Value| w["where"] == wal && w["warning"].as_str().unwrap().contains("frames");

    // An intact log: no warning about it.
    let intact = dir.path().join("intact");
    let evidence = export(&root, &intact, &[]);
    assert!(
        !evidence["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(is_wal_warning),
        "{platform}: {:?}",
        evidence["warnings"]
    );
    let whole = read_csv(&intact.join("data/messages.csv")).len();

    let damaged = damaged_copy(&root, wal, &dir.path().join(format!("{name}-damaged")));
    let total = frames(&damaged.join(wal));
    let before = snapshot(&damaged);
    let bundle = dir.path().join("damaged-bundle");
    let evidence = export(&damaged, &bundle, &[]);
    assert_eq!(
        before,
        snapshot(&damaged),
        "{platform}: the source was changed"
    );
    let found: Vec<&Value> = evidence["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| is_wal_warning(w))
        .collect();
    assert_eq!(found.len(), 1, "{platform}: {:?}", evidence["warnings"]);
    let text = found[0]["warning"].as_str().unwrap();
    let ignored: u64 = text
        .split(" of its ")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{platform}: no frame count in {text:?}"));
    assert!(ignored > 0 && ignored <= total, "{platform}: {text}");
    assert!(
        text.contains(&format!("of its {total} frames")),
        "{platform}: {text}"
    );
    // Fewer rows, none invented, and the summary and inspect say why.
    let rows = read_csv(&bundle.join("data/messages.csv")).len();
    assert!(rows < whole, "{platform}: {rows} of {whole} rows");
    let out = run_ok(&["inspect", damaged.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(wal) && shown.contains("frames ignored"),
        "{platform}: {shown}"
    );
    let again = dir.path().join("summary");
    let out = run_ok(&[
        "export",
        damaged.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--no-media",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("frames ignored"), "{platform}: {said}");
}

#[test]
fn a_damaged_wechat_wal_is_warned() {
    damaged_wal("wechat", "wx", "EnMicroMsg.db-wal");
}

#[test]
fn a_damaged_qq_wal_is_warned() {
    damaged_wal("qq", "qq", "nt_db/nt_msg.db-wal");
}

#[test]
fn a_damaged_dingtalk_wal_is_warned() {
    damaged_wal("dingtalk", "123456_v2", "DBFiles/dingtalk.db-wal");
}
