//! `chatvault check`: each rule's status and evidence against the source's ground truth
//! (SQL on the simulated WeChat database), with the time boundaries to the second.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use common::*;
use regex::Regex;
use serde_json::Value;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn wechat(dir: &Path, extra: &[&str]) -> PathBuf {
    let mut args = vec!["--groups", "3", "--messages", "2000", "--seed", "3"];
    args.extend_from_slice(extra);
    simulate("wechat", dir, "src", &args)
}

/// `check --json` with `args`: the exit code and the report.
fn check(root: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["check", root.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = run(&all);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (exit_code(&out), report)
}

/// The finding of `rule` for `group`.
fn finding<'a>(report: &'a Value, group: &str, rule: &str) -> &'a Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == group)
        .unwrap_or_else(|| panic!("no group {group}"))["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} for {group}"))
}

fn status<'a>(report: &'a Value, group: &str, rule: &str) -> &'a str {
    finding(report, group, rule)["status"].as_str().unwrap()
}

fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn now_ms() -> i64 {
    chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis()
}

struct Packet {
    id: String,
    talker: String,
    time_ms: i64,
    parts: u64,
    claims: u64,
}

/// Red packets and their claims, read from the database with patterns of this test's own.
fn packets(root: &Path) -> Vec<Packet> {
    let (_dir, conn) = ground_truth_db(root, "EnMicroMsg.db");
    let paymsgid = Regex::new(r"<paymsgid>\s*([^<\s]+)\s*</paymsgid>").unwrap();
    let totalnum = Regex::new(r"<totalnum>\s*([0-9]+)\s*</totalnum>").unwrap();
    let mut claims: HashMap<String, u64> = HashMap::new();
    let mut statement = conn
        .prepare("SELECT content FROM message WHERE type = 10000 AND content LIKE '%paymsg%'")
        .unwrap();
    for content in statement
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .unwrap()
    {
        if let Some(id) = content
            .unwrap()
            .and_then(|c| Some(paymsgid.captures(&c)?[1].to_string()))
        {
            *claims.entry(id).or_default() += 1;
        }
    }
    let mut statement = conn
        .prepare(
            "SELECT COALESCE(NULLIF(msgSvrId, 0), msgId), talker, createTime, content FROM message \
             WHERE type = 436207665 OR (type = 49 AND content LIKE '%<type>2001</type>%')",
        )
        .unwrap();
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Option<String>>(3)?,
            ))
        })
        .unwrap();
    rows.filter_map(|row| {
        let (svr, talker, time_ms, content) = row.unwrap();
        let content = content?;
        let parts: u64 = totalnum.captures(&content)?[1].parse().ok()?;
        let pay = paymsgid.captures(&content)?[1].to_string();
        Some(Packet {
            id: svr.to_string(),
            talker,
            time_ms,
            parts,
            claims: claims.get(&pay).copied().unwrap_or(0),
        })
    })
    .collect()
}

/// Message ids a finding's evidence lists (`message 123 …`).
fn listed_ids(finding: &Value) -> BTreeSet<String> {
    finding["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            Some(
                e.as_str()?
                    .strip_prefix("message ")?
                    .split(' ')
                    .next()?
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn red_packets_younger_than_24_hours_with_unclaimed_parts_block_to_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat(dir.path(), &[]);
    let all = packets(&root);
    let now = now_ms();
    let young_unclaimed = |now: i64| -> BTreeMap<String, BTreeSet<String>> {
        let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for p in &all {
            if p.time_ms > now - DAY_MS && p.time_ms <= now && p.claims < p.parts {
                by_group
                    .entry(p.talker.clone())
                    .or_default()
                    .insert(p.id.clone());
            }
        }
        by_group
    };
    assert!(
        !young_unclaimed(now).is_empty(),
        "the simulator planted no unclaimed red packet"
    );
    // Also a reference time at which a fully claimed packet is young: it must not block.
    let claimed = all
        .iter()
        .filter(|p| p.claims >= p.parts && p.parts > 0)
        .max_by_key(|p| p.time_ms)
        .expect("a fully claimed red packet");
    let claimed_now = claimed.time_ms + 12 * 3600 * 1000;
    for reference in [now, claimed_now] {
        let expected = young_unclaimed(reference);
        let (code, report) = check(&root, &["--now", &utc(reference)]);
        assert_eq!(code, 14);
        for group in report["groups"].as_array().unwrap() {
            let id = group["group_id"].as_str().unwrap();
            let f = finding(&report, id, "block.red_packet");
            let want = expected.get(id).cloned().unwrap_or_default();
            assert_eq!(listed_ids(f), want, "{id} at {}", utc(reference));
            assert_eq!(
                f["status"],
                if want.is_empty() { "ok" } else { "block" },
                "{id}"
            );
        }
    }
    let (_, report) = check(&root, &["--now", &utc(claimed_now)]);
    assert!(
        !listed_ids(finding(&report, &claimed.talker, "block.red_packet")).contains(&claimed.id)
    );

    // The boundary: a packet blocks until exactly 24 hours after it was sent.
    let packet = all
        .iter()
        .filter(|p| p.claims < p.parts && p.time_ms > now - DAY_MS && p.time_ms <= now)
        .max_by_key(|p| p.time_ms)
        .unwrap();
    let just_before = utc(packet.time_ms + DAY_MS - 1000);
    let (_, report) = check(&root, &["--now", &just_before]);
    assert!(listed_ids(finding(&report, &packet.talker, "block.red_packet")).contains(&packet.id));
    let refunded = utc(packet.time_ms + DAY_MS);
    let (_, report) = check(&root, &["--now", &refunded]);
    assert!(!listed_ids(finding(&report, &packet.talker, "block.red_packet")).contains(&packet.id));
    // Sent after the reference time: not counted either.
    let before_sending = utc(packet.time_ms - 1000);
    let (_, report) = check(&root, &["--now", &before_sending]);
    assert!(!listed_ids(finding(&report, &packet.talker, "block.red_packet")).contains(&packet.id));
}

#[test]
fn the_owner_the_member_counts_and_the_missing_files_are_the_sources() {
    let mut statuses = BTreeSet::new();
    for members in ["35", "45"] {
        let dir = tempfile::tempdir().unwrap();
        let root = wechat(dir.path(), &["--members", members]);
        let bundle = dir.path().join("bundle");
        run_ok(&[
            "export",
            root.to_str().unwrap(),
            "--out",
            bundle.to_str().unwrap(),
        ]);
        let (_db, conn) = ground_truth_db(&root, "EnMicroMsg.db");
        let holder: String = conn
            .query_row("SELECT value FROM userinfo WHERE id = 2", [], |r| r.get(0))
            .unwrap();
        let (_, report) = check(&root, &["--now", NOW]);
        let csv_members = read_csv(&bundle.join("data/members.csv"));
        let media = read_csv(&bundle.join("data/media.csv"));
        for group in report["groups"].as_array().unwrap() {
            let id = group["group_id"].as_str().unwrap();
            let owner: String = conn
                .query_row(
                    "SELECT roomowner FROM chatroom WHERE chatroomname = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap();
            let want = if owner == holder { "ok" } else { "block" };
            assert_eq!(status(&report, id, "owner.transferred"), want, "{id}");

            let current = csv_members
                .iter()
                .filter(|m| m["group_id"] == id && m["left"] == "false")
                .count();
            assert_eq!(group["members"], current as u64, "{id}");
            let want = if current > 40 { "warn" } else { "ok" };
            assert_eq!(status(&report, id, "notify.over_40"), want, "{id}");
            statuses.insert(want);

            let unfetched: BTreeSet<String> = media
                .iter()
                .filter(|m| {
                    m["group_id"] == id
                        && !m["kind"].ends_with("_thumb")
                        && (m["status"] == "missing" || m["status"] == "not_downloaded")
                })
                .map(|m| m["message_id"].clone())
                .collect();
            let f = finding(&report, id, "files.fetch");
            assert_eq!(
                f["status"],
                if unfetched.is_empty() { "ok" } else { "warn" }
            );
            let summary = f["summary"].as_str().unwrap();
            if !unfetched.is_empty() {
                let count: usize = summary.split(' ').next().unwrap().parse().unwrap();
                assert!(count >= unfetched.len(), "{id}: {summary}");
            }
        }
    }
    assert_eq!(statuses.len(), 2, "both sides of 40 members: {statuses:?}");
}

/// Inserts a text message sent by the account holder into `talker` at `time_ms`.
fn post(root: &Path, talker: &str, time_ms: i64, text: &str) -> i64 {
    let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
    let id: i64 = conn
        .query_row("SELECT MAX(msgId) + 1 FROM message", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "INSERT INTO message (msgId, msgSvrId, type, status, isSend, createTime, talker, content) \
         VALUES (?1, ?2, 1, 2, 1, ?3, ?4, ?5)",
        rusqlite::params![id, 9_000_000_000_000 + id, time_ms, talker, text],
    )
    .unwrap();
    id
}

fn unpost(root: &Path, id: i64) {
    let conn = rusqlite::Connection::open(root.join("EnMicroMsg.db")).unwrap();
    conn.execute("DELETE FROM message WHERE msgId = ?1", [id])
        .unwrap();
}

#[test]
fn the_notice_period_is_measured_to_the_second_by_hash_or_by_words() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat(dir.path(), &[]);
    // A group the account holder owns, so that its messages count as the owner's.
    let (_, report) = check(&root, &["--now", NOW]);
    let group = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_id"].as_str().unwrap().to_string())
        .find(|g| status(&report, g, "owner.transferred") == "ok")
        .expect("a group the account holder owns");
    let dissolve = now_ms() + 2 * DAY_MS;
    let at = utc(dissolve);
    let base = [
        "--now",
        NOW,
        "--group",
        group.as_str(),
        "--dissolve-at",
        at.as_str(),
    ];

    let (_, report) = check(&root, &base);
    assert_eq!(status(&report, &group, "notice.default"), "warn");
    for (lead_ms, want) in [
        (25 * 3600 * 1000, "ok"),
        (DAY_MS, "ok"),
        (DAY_MS - 1000, "warn"),
        (23 * 3600 * 1000, "warn"),
    ] {
        let id = post(
            &root,
            &group,
            dissolve - lead_ms,
            "各位：本群将于后天解散，请自行保存聊天记录。",
        );
        let (_, report) = check(&root, &base);
        let f = finding(&report, &group, "notice.default");
        assert_eq!(f["status"], want, "{lead_ms} ms before: {f}");
        assert!(
            listed_ids(f).contains(&(9_000_000_000_000 + id).to_string()),
            "{f}"
        );
        unpost(&root, id);
    }

    // By the announcement's hash: a text without the words, posted with CRLF.
    let notice = dir.path().join("notice.txt");
    std::fs::write(
        &notice,
        "Farewell, and thank you all.\nThe history is exported.\n",
    )
    .unwrap();
    let id = post(
        &root,
        &group,
        dissolve - 31 * DAY_MS,
        "Farewell, and thank you all.\r\nThe history is exported.",
    );
    let typed = format!("{group}=commercial");
    let mut args = base.to_vec();
    args.extend([
        "--announcement",
        notice.to_str().unwrap(),
        "--group-type",
        &typed,
    ]);
    let (_, report) = check(&root, &args);
    assert_eq!(status(&report, &group, "notice.default"), "ok");
    assert_eq!(status(&report, &group, "notice.commercial"), "ok");
    unpost(&root, id);
    // 29 days: enough for the default notice, not for a commercial group's.
    let id = post(
        &root,
        &group,
        dissolve - 29 * DAY_MS,
        "Farewell, and thank you all.\nThe history is exported.",
    );
    let (code, report) = check(&root, &args);
    assert_eq!(status(&report, &group, "notice.default"), "ok");
    assert_eq!(status(&report, &group, "notice.commercial"), "block");
    assert_eq!(code, 14);
    unpost(&root, id);
    // A changed copy is not the announcement.
    let id = post(
        &root,
        &group,
        dissolve - 31 * DAY_MS,
        "Farewell, and thank you all!\nThe history is exported.",
    );
    let (_, report) = check(&root, &args);
    assert_ne!(status(&report, &group, "notice.commercial"), "ok");
    unpost(&root, id);
}

#[test]
fn only_a_verified_bundle_of_this_source_holding_the_last_message_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat(dir.path(), &[]);
    let (code, report) = check(&root, &["--now", NOW]);
    assert_eq!(code, 14);
    let groups: Vec<String> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_id"].as_str().unwrap().to_string())
        .collect();
    for g in &groups {
        let f = finding(&report, g, "export");
        assert_eq!(f["status"], "block");
        assert!(
            f["todo"].as_str().unwrap().contains("chatvault export"),
            "{f}"
        );
    }
    let full = dir.path().join("full");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        full.to_str().unwrap(),
        "--no-media",
        "--zip",
    ]);
    let full_zip = dir.path().join("full.zip");
    let (_, report) = check(
        &root,
        &["--now", NOW, "--bundle", full_zip.to_str().unwrap()],
    );
    for g in &groups {
        assert_eq!(status(&report, g, "export"), "ok", "{g}");
    }
    // Ending ten days early: the group's later messages are not in it.
    let early = dir.path().join("early");
    let until = utc(now_ms() - 10 * DAY_MS);
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        early.to_str().unwrap(),
        "--no-media",
        "--until",
        &until,
    ]);
    let (_, report) = check(&root, &["--now", NOW, "--bundle", early.to_str().unwrap()]);
    for g in &groups {
        let f = finding(&report, g, "export");
        assert_eq!(f["status"], "block");
        assert!(
            f["evidence"][0].as_str().unwrap().contains("it ends at"),
            "{f}"
        );
    }
    // Changed after sealing: it does not verify.
    let messages = early.join("data/messages.csv");
    let mut bytes = std::fs::read(&messages).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 1;
    std::fs::write(&messages, bytes).unwrap();
    let (_, report) = check(&root, &["--now", NOW, "--bundle", early.to_str().unwrap()]);
    assert!(finding(&report, &groups[0], "export")["evidence"][0]
        .as_str()
        .unwrap()
        .contains("does not verify"));
    // Another platform's bundle.
    let qq = simulate(
        "qq",
        dir.path(),
        "qq",
        &["--groups", "2", "--messages", "200"],
    );
    let qq_bundle = dir.path().join("qq-bundle");
    run_ok(&[
        "export",
        qq.to_str().unwrap(),
        "--out",
        qq_bundle.to_str().unwrap(),
        "--no-media",
    ]);
    let (_, report) = check(
        &root,
        &["--now", NOW, "--bundle", qq_bundle.to_str().unwrap()],
    );
    assert!(finding(&report, &groups[0], "export")["evidence"][0]
        .as_str()
        .unwrap()
        .contains("qq bundle"));
}

#[test]
fn bad_inputs_get_a_message_and_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat(dir.path(), &[]);
    let src = root.to_str().unwrap();
    let missing = dir.path().join("nothing-here");
    let not_a_bundle = dir.path().join("plain");
    std::fs::create_dir(&not_a_bundle).unwrap();
    for (args, code, words) in [
        (
            vec!["--group", "nope@chatroom"],
            3,
            "no group nope@chatroom",
        ),
        (vec!["--dissolve-at", "next friday"], 2, "next friday"),
        (vec!["--group-type", "x=royal"], 2, "ID=TYPE"),
        (vec!["--group-type", "x=education"], 3, "--group-type"),
        (
            vec!["--announcement", missing.to_str().unwrap()],
            3,
            "cannot read the announcement",
        ),
        (vec!["--bundle", not_a_bundle.to_str().unwrap()], 9, "plain"),
    ] {
        let mut all = vec!["check", src];
        all.extend(args.iter().copied());
        let out = run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(exit_code(&out), code, "{args:?}: {stderr}");
        assert!(stderr.contains(words), "{args:?}: {stderr}");
    }
}

#[test]
fn a_checklist_made_before_the_export_goes_into_the_bundle_and_its_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = wechat(dir.path(), &[]);
    let out = run(&["check", root.to_str().unwrap(), "--now", NOW, "--json"]);
    assert_eq!(exit_code(&out), 14);
    let list = dir.path().join("check.json");
    std::fs::write(&list, &out.stdout).unwrap();
    let checked: Value = serde_json::from_slice(&out.stdout).unwrap();

    let bundle = dir.path().join("bundle");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--no-media",
        "--checklist",
        list.to_str().unwrap(),
    ]);
    let kept: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("data/check.json")).unwrap()).unwrap();
    assert_eq!(kept, checked);
    let manifest = std::fs::read_to_string(bundle.join("manifest-sha256.txt")).unwrap();
    assert!(manifest.contains("  data/check.json\n"));
    let report = std::fs::read_to_string(bundle.join("data/html/index.html")).unwrap();
    assert!(report.contains("<h2>Readiness check</h2>"));
    for group in checked["groups"].as_array().unwrap() {
        let id = group["group_id"].as_str().unwrap();
        let worst = group["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["status"].as_str().unwrap())
            .max_by_key(|s| ["ok", "n/a", "warn", "block"].iter().position(|x| x == s))
            .unwrap();
        assert!(
            report.contains(&format!("<code>{id}</code>: {worst}</h3>")),
            "{id} {worst}"
        );
    }
    assert_eq!(exit_code(&run(&["verify", bundle.to_str().unwrap()])), 0);

    // Anonymized: statuses only, no evidence naming anyone.
    let key = dir.path().join("k");
    let anon = dir.path().join("anon");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        anon.to_str().unwrap(),
        "--anonymize",
        "--key-file",
        key.to_str().unwrap(),
        "--checklist",
        list.to_str().unwrap(),
    ]);
    let kept: Value =
        serde_json::from_slice(&std::fs::read(anon.join("data/check.json")).unwrap()).unwrap();
    assert!(kept["owner_id"].is_null());
    for group in kept["groups"].as_array().unwrap() {
        for f in group["findings"].as_array().unwrap() {
            assert!(f["evidence"].as_array().unwrap().is_empty());
        }
    }
    let holder = checked["owner_id"].as_str().unwrap();
    let text = std::fs::read_to_string(anon.join("data/check.json")).unwrap();
    assert!(!text.contains(holder), "the account holder's id");
    assert!(!text.contains("wxid_"), "a WeChat id in {text}");

    // Another account's checklist is refused, and nothing is written.
    let qq = simulate(
        "qq",
        dir.path(),
        "qq",
        &["--groups", "2", "--messages", "100"],
    );
    let refused = dir.path().join("refused");
    let out = run(&[
        "export",
        qq.to_str().unwrap(),
        "--out",
        refused.to_str().unwrap(),
        "--checklist",
        list.to_str().unwrap(),
    ]);
    assert_eq!(exit_code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not of this source"));
    assert!(!refused.exists());
}
