//! Incremental exports: `export --after` holds exactly the messages added since its
//! predecessor (ground truth: the rows this test inserts), a whole export equals the chain's
//! bundles joined, and `verify --chain` accepts a sound chain and rejects broken ones.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Appends `n` text messages to every group, after its last message; for the first group
/// also two at exactly its last message's time. Returns the new message ids by group.
fn append(root: &Path, n: usize, tag: &str) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
    let groups: Vec<(String, i64)> = conn
        .prepare(
            "SELECT talker, MAX(createTime) FROM message WHERE talker LIKE '%@chatroom' \
             GROUP BY talker ORDER BY talker",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut next: i64 = conn
        .query_row("SELECT MAX(msgId) + 1 FROM message", [], |r| r.get(0))
        .unwrap();
    let mut added = BTreeMap::new();
    for (i, (talker, last)) in groups.iter().enumerate() {
        let mut times: Vec<i64> = (1..=n as i64).map(|k| last + k * 60_000).collect();
        if i == 0 {
            times.insert(0, *last);
            times.insert(0, *last);
        }
        let ids: &mut Vec<String> = added.entry(talker.clone()).or_default();
        for t in times {
            let svr = 8_000_000_000_000 + next;
            conn.execute(
                "INSERT INTO message (msgId, msgSvrId, type, status, isSend, createTime, talker, content) \
                 VALUES (?1, ?2, 1, 2, 1, ?3, ?4, ?5)",
                rusqlite::params![next, svr, t, talker, format!("{tag} {next}")],
            )
            .unwrap();
            ids.push(svr.to_string());
            next += 1;
        }
    }
    added
}

/// A simulated WeChat account `src` in `dir` without edge cases, so that every message the
/// test adds is one it can count.
fn wechat_source(dir: &Path, groups: u32, messages: u32, seed: u32) -> PathBuf {
    let [groups, messages, seed] = [groups, messages, seed].map(|n| n.to_string());
    simulate(
        "wechat",
        dir,
        "src",
        &[
            "--groups",
            &groups,
            "--messages",
            &messages,
            "--seed",
            &seed,
            "--edge-rate",
            "0",
        ],
    )
}

fn export(root: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--no-media",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn rows_by_group(bundle: &Path) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut by_group: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for row in read_csv(&bundle.join("data/messages.csv")) {
        by_group
            .entry(row["group_id"].clone())
            .or_default()
            .push(row);
    }
    by_group
}

fn chain(bundles: &[&PathBuf]) -> (i32, String) {
    let mut args = vec!["verify", "--chain"];
    args.extend(bundles.iter().map(|b| b.to_str().unwrap()));
    let out = run(&args);
    (
        exit_code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn increments_hold_exactly_the_new_messages_and_chain_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat_source(dir.path(), 3, 1500, 11);
    let b1 = dir.path().join("b1");
    assert_eq!(exit_code(&export(&root, &b1, &[])), 0);

    let added = append(&root, 20, "second");
    let b2 = dir.path().join("b2");
    let out = export(&root, &b2, &["--after", b1.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Exactly the new messages, group by group, in order.
    let got: BTreeMap<String, Vec<String>> = rows_by_group(&b2)
        .into_iter()
        .map(|(g, rows)| (g, rows.iter().map(|r| r["message_id"].clone()).collect()))
        .collect();
    assert_eq!(got, added);
    // Nothing changed among the members: none listed.
    assert!(read_csv(&b2.join("data/members.csv")).is_empty());
    let b1_digest = std::fs::read_to_string(dir.path().join("b1.sha256")).unwrap();
    let bag_info = std::fs::read_to_string(b2.join("bag-info.txt")).unwrap();
    assert!(bag_info.contains(&format!(
        "Chatvault-Previous-Bag-Digest: {}\n",
        b1_digest.split(' ').next().unwrap()
    )));
    assert!(bag_info.contains("Chatvault-Chain-Index: 1\n"));

    // A whole export of the source now equals B1 and B2 joined, row for row.
    let whole = dir.path().join("whole");
    assert_eq!(exit_code(&export(&root, &whole, &[])), 0);
    let (first, second) = (rows_by_group(&b1), rows_by_group(&b2));
    for (group, rows) in rows_by_group(&whole) {
        let mut joined = first.get(&group).cloned().unwrap_or_default();
        joined.extend(second.get(&group).cloned().unwrap_or_default());
        assert_eq!(rows, joined, "{group}");
    }

    let added = append(&root, 5, "third");
    let b3 = dir.path().join("b3");
    assert_eq!(
        exit_code(&export(&root, &b3, &["--after", b2.to_str().unwrap()])),
        0
    );
    let got: usize = rows_by_group(&b3).values().map(Vec::len).sum();
    assert_eq!(got, added.values().map(Vec::len).sum::<usize>());
    assert!(std::fs::read_to_string(b3.join("bag-info.txt"))
        .unwrap()
        .contains("Chatvault-Chain-Index: 2\n"));

    let (code, shown) = chain(&[&b1, &b2, &b3]);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("chain OK"));

    // Broken chains, each with its reason.
    let (code, shown) = chain(&[&b1, &b3, &b2]);
    assert_eq!(code, 8);
    assert!(shown.contains("b3 does not continue b1"), "{shown}");
    let (code, shown) = chain(&[&b1, &b3]);
    assert_eq!(code, 8, "a missing middle link");
    assert!(shown.contains("does not continue"), "{shown}");
    // Another increment after B1, in B2's place.
    let other = dir.path().join("b2-other");
    assert_eq!(
        exit_code(&export(&root, &other, &["--after", b1.to_str().unwrap()])),
        0
    );
    let (code, shown) = chain(&[&b1, &other, &b3]);
    assert_eq!(code, 8, "a swapped bundle");
    assert!(shown.contains("b3 does not continue b2-other"), "{shown}");
    // A tampered link.
    let messages = b2.join("data/messages.csv");
    let mut bytes = std::fs::read(&messages).unwrap();
    let at = bytes.len() - 4;
    bytes[at] ^= 1;
    std::fs::write(&messages, bytes).unwrap();
    let (code, shown) = chain(&[&b1, &b2, &b3]);
    assert_eq!(code, 8);
    assert!(shown.contains("b2 does not verify"), "{shown}");
    // And an increment of a tampered bundle is refused.
    let refused = dir.path().join("refused");
    let out = export(&root, &refused, &["--after", b2.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        8,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!refused.exists());
}

#[test]
fn an_increment_must_come_from_the_same_account_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat_source(dir.path(), 2, 300, 12);
    let k1 = dir.path().join("k1");
    let k2 = dir.path().join("k2");
    let anon = dir.path().join("anon");
    let key = |k: &PathBuf| {
        vec![
            "--anonymize".to_string(),
            "--key-file".into(),
            k.to_str().unwrap().into(),
        ]
    };
    let args: Vec<String> = key(&k1);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(exit_code(&export(&root, &anon, &refs)), 0);
    append(&root, 3, "more");
    for (name, extra, words) in [
        ("plain-after-anon", vec![], "it is anonymized"),
        ("other-key", key(&k2), "another key"),
    ] {
        let out_dir = dir.path().join(name);
        let mut all: Vec<&str> = extra.iter().map(String::as_str).collect();
        all.extend(["--after", anon.to_str().unwrap()]);
        let out = export(&root, &out_dir, &all);
        assert_eq!(exit_code(&out), 2, "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(words),
            "{name}"
        );
        assert!(!out_dir.exists());
    }
    // The same key continues it.
    let same = dir.path().join("same");
    let mut all = refs.clone();
    all.extend(["--after", anon.to_str().unwrap()]);
    assert_eq!(exit_code(&export(&root, &same, &all)), 0);
    assert_eq!(chain(&[&anon, &same]).0, 0);

    // Another account, and another platform.
    let other = simulate(
        "wechat",
        dir.path(),
        "other",
        &["--groups", "2", "--messages", "300", "--seed", "99"],
    );
    let qq = simulate(
        "qq",
        dir.path(),
        "qq",
        &["--groups", "2", "--messages", "300"],
    );
    let plain = dir.path().join("plain");
    assert_eq!(exit_code(&export(&root, &plain, &[])), 0);
    for (source, words) in [(&other, "it is of account"), (&qq, "it is a wechat bundle")] {
        let out_dir = dir.path().join("x");
        let out = export(source, &out_dir, &["--after", plain.to_str().unwrap()]);
        assert_eq!(exit_code(&out), 2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(words),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn changes_behind_the_mark_are_listed_not_exported_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat_source(dir.path(), 2, 400, 13);
    let b1 = dir.path().join("b1");
    assert_eq!(exit_code(&export(&root, &b1, &[])), 0);
    let held = read_csv(&b1.join("data/messages.csv"));
    let text_rows: Vec<&BTreeMap<String, String>> =
        held.iter().filter(|r| r["kind"] == "text").collect();
    let (edited, removed) = (text_rows[3], text_rows[7]);
    let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
    let by_svr = |id: &str| -> i64 { id.parse().unwrap() };
    // The edit keeps the sender prefix of a received group message.
    let content: String = conn
        .query_row(
            "SELECT content FROM message WHERE msgSvrId = ?1",
            [by_svr(&edited["message_id"])],
            |r| r.get(0),
        )
        .unwrap();
    let new_content = format!("{content} (edited)");
    conn.execute(
        "UPDATE message SET content = ?1 WHERE msgSvrId = ?2",
        rusqlite::params![new_content, by_svr(&edited["message_id"])],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM message WHERE msgSvrId = ?1",
        [by_svr(&removed["message_id"])],
    )
    .unwrap();
    drop(conn);
    let added = append(&root, 4, "new");

    let b2 = dir.path().join("b2");
    let out = export(&root, &b2, &["--after", b1.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout)
        .contains("changes behind the previous bundle's marks: 2"));
    let changes = read_csv(&b2.join("data/changes.csv"));
    let sha = |t: &str| {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(t.as_bytes()))
    };
    let edit = changes
        .iter()
        .find(|c| c["message_id"] == edited["message_id"])
        .expect("the edit");
    assert_eq!(
        (edit["change"].as_str(), edit["field"].as_str()),
        ("changed", "text")
    );
    assert_eq!(edit["old_sha256"], sha(&edited["text"]));
    assert_eq!(
        edit["new_sha256"],
        sha(&format!("{} (edited)", edited["text"]))
    );
    let gone = changes
        .iter()
        .find(|c| c["message_id"] == removed["message_id"])
        .expect("the deletion");
    assert_eq!(gone["change"], "deleted");
    assert_eq!(changes.len(), 2, "{changes:?}");
    // Neither is exported again: the increment holds only the new messages.
    let got: usize = rows_by_group(&b2).values().map(Vec::len).sum();
    assert_eq!(got, added.values().map(Vec::len).sum::<usize>());

    // Without the comparison: no changes.csv, the same new messages.
    let b2_fast = dir.path().join("b2-fast");
    assert_eq!(
        exit_code(&export(
            &root,
            &b2_fast,
            &["--after", b1.to_str().unwrap(), "--no-changes"]
        )),
        0
    );
    assert!(!b2_fast.join("data/changes.csv").exists());
    assert_eq!(
        std::fs::read(b2_fast.join("data/messages.csv")).unwrap(),
        std::fs::read(b2.join("data/messages.csv")).unwrap()
    );
}

/// Rewrites `rel` of a directory bundle and seals it again (tag manifest and bag-digest
/// sidecar), as a forger who knows the format would: the bundle then verifies alone.
fn reseal(bundle: &Path, rel: &str, bytes: &[u8]) {
    use sha2::{Digest, Sha256};
    std::fs::write(bundle.join(rel), bytes).unwrap();
    let tagmanifest = bundle.join("tagmanifest-sha256.txt");
    let lines: String = std::fs::read_to_string(&tagmanifest)
        .unwrap()
        .lines()
        .map(|line| match line.split_once("  ") {
            Some((_, path)) if path == rel => {
                format!("{:x}  {path}\n", Sha256::digest(bytes))
            }
            _ => format!("{line}\n"),
        })
        .collect();
    std::fs::write(&tagmanifest, &lines).unwrap();
    let sidecar = bundle.with_extension("sha256");
    let old = std::fs::read_to_string(&sidecar).unwrap();
    let rest = old.split_once(' ').unwrap().1;
    std::fs::write(
        &sidecar,
        format!("{:x} {rest}", Sha256::digest(lines.as_bytes())),
    )
    .unwrap();
}

#[test]
fn earlier_links_must_be_beside_and_a_forged_overlap_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat_source(dir.path(), 2, 400, 14);
    let (b1, b2, b3) = (
        dir.path().join("b1"),
        dir.path().join("b2"),
        dir.path().join("b3"),
    );
    assert_eq!(exit_code(&export(&root, &b1, &[])), 0);
    append(&root, 6, "second");
    assert_eq!(
        exit_code(&export(&root, &b2, &["--after", b1.to_str().unwrap()])),
        0
    );
    append(&root, 4, "third");

    // B3 compares what lies behind B2's marks with B1 and B2: without B1 beside B2 it
    // cannot, and says so; --no-changes does without the comparison.
    let away = dir.path().join("away");
    std::fs::create_dir(&away).unwrap();
    std::fs::rename(&b1, away.join("b1")).unwrap();
    let out = export(&root, &b3, &["--after", b2.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("it continues b1") && stderr.contains("not beside it"),
        "{stderr}"
    );
    assert!(!b3.exists());
    let fast = dir.path().join("b3-fast");
    assert_eq!(
        exit_code(&export(
            &root,
            &fast,
            &["--after", b2.to_str().unwrap(), "--no-changes"]
        )),
        0
    );
    std::fs::rename(away.join("b1"), &b1).unwrap();
    let out = export(&root, &b3, &["--after", b2.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing changed behind the marks, though B3's predecessor holds only ten messages.
    assert!(read_csv(&b3.join("data/changes.csv")).is_empty());
    assert_eq!(chain(&[&b1, &b2, &b3]).0, 0);

    // A B2 whose marks were edited to start behind B1's, sealed again: it verifies alone,
    // and the chain check finds the overlap.
    let mut evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b2.join("evidence.json")).unwrap()).unwrap();
    let last_of_b1 = evidence["predecessor"]["high_water"][0]["last_time_ms"]
        .as_i64()
        .unwrap();
    evidence["high_water"][0]["first_time_ms"] = (last_of_b1 - 60_000).into();
    reseal(
        &b2,
        "evidence.json",
        &serde_json::to_vec_pretty(&evidence).unwrap(),
    );
    assert_eq!(exit_code(&run(&["verify", b2.to_str().unwrap()])), 0);
    let (code, shown) = chain(&[&b1, &b2]);
    assert_eq!(code, 8, "{shown}");
    assert!(shown.contains("b2 overlaps b1"), "{shown}");
}

/// A directory predecessor is verified beside the increment, not before it; what is read
/// from it first (evidence.json's marks, members.csv) must still be proven by its digest.
#[test]
fn a_predecessor_whose_marks_or_members_were_edited_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat_source(dir.path(), 2, 200, 5);
    // Three copies of the same bundle: one edited each way, one left alone.
    let [b1, b1_members, b1_pristine] = ["b1", "b1-members", "b1-pristine"].map(|name| {
        let bundle = dir.path().join(name);
        assert_eq!(exit_code(&export(&root, &bundle, &[])), 0);
        bundle
    });
    append(&root, 3, "later");

    // Marks moved back in evidence.json, to make the increment take everything again.
    let evidence = b1.join("evidence.json");
    let text = std::fs::read_to_string(&evidence).unwrap();
    let edited = text.replacen("\"last_time_ms\": 1", "\"last_time_ms\": 0", 1);
    assert_ne!(edited, text, "the marks are where this test expects them");
    std::fs::write(&evidence, edited).unwrap();
    let refused = dir.path().join("refused");
    let out = export(&root, &refused, &["--after", b1.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        8,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!refused.exists());

    // A member renamed in members.csv, and its line in the payload manifest rewritten to
    // match: the tag manifest, hence the bag digest, still tells.
    let members = b1_members.join("data/members.csv");
    let text = std::fs::read_to_string(&members).unwrap();
    let line = text.lines().nth(1).unwrap().to_string();
    let edited = text.replacen(&line, &line.replacen(',', ",x", 2), 1);
    std::fs::write(&members, &edited).unwrap();
    let manifest = b1_members.join("manifest-sha256.txt");
    use sha2::{Digest, Sha256};
    let sha256_hex = |t: &str| format!("{:x}", Sha256::digest(t.as_bytes()));
    let old = sha256_hex(&text);
    let new = sha256_hex(&edited);
    let listed = std::fs::read_to_string(&manifest).unwrap();
    assert!(listed.contains(&old));
    std::fs::write(&manifest, listed.replace(&old, &new)).unwrap();
    let out = export(&root, &refused, &["--after", b1_members.to_str().unwrap()]);
    assert_eq!(
        exit_code(&out),
        8,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!refused.exists());

    // The untouched bundle is accepted.
    let accepted = dir.path().join("accepted");
    let out = export(
        &root,
        &accepted,
        &["--after", b1_pristine.to_str().unwrap()],
    );
    assert_eq!(
        exit_code(&out),
        0,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
