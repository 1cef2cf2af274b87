//! Anonymized exports: nothing that names a member, and no planted PII, survives anywhere
//! in the bundle (directory or zip, with or without media), also after NFKC.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::leaks::*;
use common::*;
use regex::Regex;

/// Every member id, alias and name the source knows (2+ characters, 3+ if ASCII-only).
fn originals(root: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let mut strings = BTreeSet::new();
    let mut stmt = conn
        .prepare("SELECT username, alias, conRemark, nickname FROM rcontact WHERE username NOT LIKE '%@chatroom'")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok([0, 1, 2, 3].map(|i| {
                r.get::<_, Option<String>>(i)
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            }))
        })
        .unwrap();
    for row in rows {
        strings.extend(row.unwrap());
    }
    let mut stmt = conn
        .prepare("SELECT memberlist, displayname FROM chatroom")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?,
                r.get::<_, Option<String>>(1)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (members, names) = row.unwrap();
        strings.extend(members.unwrap_or_default().split(';').map(str::to_string));
        // Nicknames with `、` make the split ambiguous; the whole entries are checked too.
        strings.extend(names.unwrap_or_default().split('、').map(str::to_string));
    }
    let owner: String = conn
        .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
        .unwrap();
    strings.insert(owner);
    // Free text only: XML payloads carry server ids (quoted `svrid`s) that are message ids, not PII.
    let mut stmt = conn
        .prepare("SELECT CAST(content AS BLOB) FROM message WHERE type IN (1, 10000)")
        .unwrap();
    let texts: Vec<String> = stmt
        .query_map([], |r| r.get::<_, Option<Vec<u8>>>(0))
        .unwrap()
        .filter_map(|c| c.unwrap().map(|b| String::from_utf8_lossy(&b).into_owned()))
        .collect();
    let names = searchable(strings);
    (names, planted_pii(&texts))
}

fn wechat_originals(root: &Path) -> Originals {
    let (names, pii) = originals(root);
    Originals { names, pii }
}

/// Every value of the given columns (any type, as text), skipping NULLs.
fn column_values(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    use rusqlite::types::Value;
    let mut stmt = conn.prepare(sql).unwrap();
    let width = stmt.column_count();
    let mut rows = stmt.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        for i in 0..width {
            match row.get::<_, Value>(i).unwrap() {
                Value::Text(t) => out.push(t),
                Value::Integer(n) => out.push(n.to_string()),
                Value::Blob(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
                _ => {}
            }
        }
    }
    out
}

/// QQ: `group_member3` uids, QQ numbers, cards and nicknames; the senders' uids, numbers,
/// cards and nicknames as `group_msg_table` stores them; group owners. PII: the message
/// bodies' bytes, read as text.
fn qq_originals(root: &Path) -> Originals {
    let (_a, info) = ground_truth_db(root, "nt_db/group_info.db");
    let mut strings = column_values(
        &info,
        r#"SELECT "1000", "1002", "64003", "20002" FROM group_member3"#,
    );
    strings.extend(column_values(
        &info,
        r#"SELECT "60002" FROM group_detail_info_ver1"#,
    ));
    let (_b, msg) = ground_truth_db(root, "nt_db/nt_msg.db");
    strings.extend(column_values(
        &msg,
        r#"SELECT DISTINCT "40020", "40033", "40090", "40093" FROM group_msg_table"#,
    ));
    let bodies = column_values(&msg, r#"SELECT "40800" FROM group_msg_table"#);
    Originals {
        names: searchable(strings.into_iter().filter(|s| s != "0")),
        pii: planted_pii(&bodies),
    }
}

/// WeCom: `users.json` ids and names, `groups/*.json` creators and members, every
/// archive line's `from` and `tolist`. PII: text contents.
fn wecom_originals(root: &Path) -> Originals {
    use serde_json::Value;
    let mut strings = Vec::new();
    let users: Value =
        serde_json::from_slice(&std::fs::read(root.join("users.json")).unwrap()).unwrap();
    for user in users.as_array().unwrap() {
        for key in ["userid", "name"] {
            strings.extend(user[key].as_str().map(str::to_string));
        }
    }
    for entry in std::fs::read_dir(root.join("groups")).unwrap() {
        let Ok(group) =
            serde_json::from_slice::<Value>(&std::fs::read(entry.unwrap().path()).unwrap())
        else {
            continue;
        };
        strings.extend(group["creator"].as_str().map(str::to_string));
        for member in group["members"].as_array().into_iter().flatten() {
            strings.extend(member["memberid"].as_str().map(str::to_string));
        }
    }
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(root.join("archive")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for line in bytes.split(|b| *b == b'\n') {
            let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line) else {
                continue;
            };
            strings.extend(
                object
                    .get("from")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            );
            for to in object
                .get("tolist")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                strings.extend(to.as_str().map(str::to_string));
            }
            if let Some(text) = object.get("text").and_then(|t| t["content"].as_str()) {
                texts.push(text.to_string());
            }
        }
    }
    Originals {
        names: searchable(strings),
        pii: planted_pii(&texts),
    }
}

/// DingTalk: every profile's uid, nick, realName, mobile and e-mail; member and owner
/// uids; every shard's senders. PII: text and system contents.
fn dingtalk_originals(root: &Path) -> Originals {
    let (_dir, conn) = ground_truth_db(root, "DBFiles/dingtalk.db");
    let mut strings = column_values(
        &conn,
        "SELECT uid, nick, realName, mobile, email FROM tbuser_profile_v2",
    );
    strings.extend(column_values(
        &conn,
        "SELECT uid FROM tbconversation_member",
    ));
    strings.extend(column_values(&conn, "SELECT ownerId FROM tbconversation"));
    let shards = column_values(
        &conn,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'tbmsg%'",
    );
    let mut texts = Vec::new();
    for shard in shards {
        strings.extend(column_values(
            &conn,
            &format!("SELECT DISTINCT senderId FROM {shard}"),
        ));
        texts.extend(column_values(
            &conn,
            &format!("SELECT content FROM {shard} WHERE contentType IN (1, 102)"),
        ));
    }
    Originals {
        names: searchable(strings.into_iter().filter(|s| s != "0")),
        pii: planted_pii(&texts),
    }
}

/// The same leak test on every platform; only the ground-truth reader differs.
macro_rules! leak_tests {
    ($($test:ident: $platform:literal => $originals:expr;)*) => {$(
        #[test]
        fn $test() {
            anonymized_exports_leak_nothing($platform, $originals);
        }
    )*};
}

leak_tests! {
    wechat_anonymized_exports_leak_nothing: "wechat" => wechat_originals;
    qq_anonymized_exports_leak_nothing: "qq" => qq_originals;
    wecom_anonymized_exports_leak_nothing: "wecom" => wecom_originals;
    dingtalk_anonymized_exports_leak_nothing: "dingtalk" => dingtalk_originals;
}

fn anonymized_export(root: &Path, out: &Path, key: &Path, extra: &[&str]) {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--anonymize",
        "--key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

fn column(path: &Path, name: &str) -> Vec<String> {
    read_csv(path)
        .into_iter()
        .map(|r| r[name].clone())
        .collect()
}

#[test]
fn anonymized_bundles_leak_no_names_ids_or_pii() {
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
            "0.15",
            "--seed",
            "21",
        ],
    );
    let (names, pii) = originals(&root);
    assert!(names.len() > 50, "{} names", names.len());
    assert!(
        pii.len() > 10,
        "only {} planted PII values: {pii:?}",
        pii.len()
    );
    let key = dir.path().join("case.key");
    run_ok(&["keygen", key.to_str().unwrap()]);

    // The leak search itself runs on every platform (leak_tests! above); here, what is
    // particular to WeChat's planted PII and to the tag files.
    let plain = dir.path().join("plain");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]);
    let caught_pii = std::panic::catch_unwind(|| assert_no_leaks(&plain, &BTreeSet::new(), &pii));
    assert!(
        caught_pii.is_err(),
        "the PII search found nothing in a plain export"
    );
    for (name, extra) in [("dir", &[][..]), ("dir-media", &["--with-media"][..])] {
        let out = dir.path().join(name);
        anonymized_export(&root, &out, &key, extra);
        assert_no_leaks(&out, &names, &pii);
    }

    // Media copied with --with-media keep only message-id names, and bag-info says so.
    let media = read_csv(&dir.path().join("dir-media/data/media.csv"));
    assert!(media.iter().any(|m| m["status"] == "copied"));
    let plain = read_csv(&dir.path().join("dir/data/media.csv"));
    assert!(
        plain.iter().all(|m| m["status"] != "copied"),
        "media are left out by default"
    );
    let bag_info = std::fs::read_to_string(dir.path().join("dir/bag-info.txt")).unwrap();
    assert!(bag_info.contains("Chatvault-Anonymized: yes"));
    let fingerprint = run_ok(&["keygen", dir.path().join("other.key").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&fingerprint.stdout).contains("fingerprint"));
    let key_bytes = std::fs::read(&key).unwrap();
    let expected = sha256_hex(&key_bytes);
    assert!(bag_info.contains(&format!("Chatvault-Key-Fingerprint: {}", &expected[..16])));
    let evidence = std::fs::read(dir.path().join("dir/evidence.json")).unwrap();
    assert!(
        !evidence
            .windows(key_bytes.len())
            .any(|w| w == key_bytes.as_slice()),
        "the key itself"
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}

#[test]
fn pseudonyms_are_stable_per_key_and_counts_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "900", "--edge-rate", "0.1"],
    );
    let (k1, k2) = (dir.path().join("k1"), dir.path().join("k2"));
    run_ok(&["keygen", k1.to_str().unwrap()]);
    run_ok(&["keygen", k2.to_str().unwrap()]);
    // keygen refuses to overwrite.
    assert!(!run(&["keygen", k1.to_str().unwrap()]).status.success());

    let plain = dir.path().join("plain");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
        "--no-media",
    ]);
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    anonymized_export(&root, &a, &k1, &[]);
    anonymized_export(&root, &b, &k1, &[]);
    anonymized_export(&root, &c, &k2, &[]);

    let ids = |bundle: &Path| column(&bundle.join("data/members.csv"), "member_id");
    assert_eq!(ids(&a), ids(&b), "same key, same pseudonyms");
    let re = Regex::new("^m_[a-z2-7]{12}$").unwrap();
    assert!(ids(&a).iter().all(|p| re.is_match(p)));
    let different: usize = ids(&a).iter().zip(ids(&c)).filter(|(x, y)| *x != y).count();
    assert_eq!(
        different,
        ids(&a).len(),
        "a different key gives different pseudonyms"
    );

    // Same messages in the same order.
    let msgs = |bundle: &Path| column(&bundle.join("data/messages.csv"), "message_id");
    assert_eq!(msgs(&a), msgs(&plain));

    // `chatvault pseudonym` answers "which rows are mine?" without a mapping.
    let plain_members = read_csv(&plain.join("data/members.csv"));
    let anon_members = read_csv(&a.join("data/members.csv"));
    let someone = &plain_members[3]["member_id"];
    let out = run_ok(&[
        "pseudonym",
        "--key-file",
        k1.to_str().unwrap(),
        "--platform",
        "wechat",
        someone,
    ]);
    let printed = String::from_utf8(out.stdout).unwrap();
    let pseudonym = printed.split('\t').next().unwrap();
    assert_eq!(anon_members[3]["member_id"], pseudonym);
    let senders = column(&a.join("data/messages.csv"), "sender_id");
    let plain_senders = column(&plain.join("data/messages.csv"), "sender_id");
    let mine = plain_senders.iter().filter(|s| *s == someone).count();
    assert_eq!(senders.iter().filter(|s| *s == pseudonym).count(), mine);

    // The formula guard still applies to replaced text: no raw cell starts a formula.
    let raw = std::fs::read(a.join("data/messages.csv")).unwrap();
    let mut reader = csv::ReaderBuilder::new().from_reader(&raw[3..]);
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?}");
        }
    }
}
