//! `chatvault announce`: one announcement, posted on two platforms (once word for word,
//! once with a character changed) and missing from a third, is told apart by its hash.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const NOTICE: &str = "【解散公告】本群将于 2025-06-20 20:00 解散，记录已导出。\nNotice: this group will be dissolved on 2025-06-20.\n";

/// A group chat's id in a source, as `inspect` lists it.
fn first_group(root: &Path) -> String {
    let out = run_ok(&["inspect", root.to_str().unwrap(), "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    report["groups"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn find_tells_identical_changed_and_missing_copies_apart() {
    let dir = tempfile::tempdir().unwrap();
    let small = ["--groups", "2", "--messages", "300", "--seed", "9"];
    let wx = simulate("wechat", dir.path(), "wx", &small);
    let ding = simulate("dingtalk", dir.path(), "1001_v2", &small);
    let qq = simulate("qq", dir.path(), "qq", &small);

    // WeChat: word for word, with CRLF line endings as a phone may store them.
    let wx_group = first_group(&wx);
    let conn = rusqlite::Connection::open(wx.join("EnMicroMsg.db")).unwrap();
    conn.execute(
        "INSERT INTO message (msgId, msgSvrId, type, status, isSend, createTime, talker, content) \
         VALUES (900001, 900001, 1, 2, 1, 1749500000000, ?1, ?2)",
        rusqlite::params![wx_group, NOTICE.replace('\n', "\r\n")],
    )
    .unwrap();
    drop(conn);
    // DingTalk: one character changed (the date).
    let ding_group = first_group(&ding);
    let conn = rusqlite::Connection::open(ding.join("DBFiles/dingtalk.db")).unwrap();
    let changed = NOTICE.replace("06-20 20:00", "06-21 20:00");
    conn.execute(
        "INSERT INTO tbmsg_000 (cid, mid, senderId, createdAt, contentType, content, recallStatus) \
         VALUES (?1, 900002, 1001, 1749500000000, 1, ?2, 0)",
        rusqlite::params![ding_group, serde_json::json!({ "text": changed }).to_string()],
    )
    .unwrap();
    drop(conn);

    let notice = dir.path().join("notice.txt");
    std::fs::write(&notice, NOTICE).unwrap();
    let hashed = run_ok(&["announce", "hash", notice.to_str().unwrap()]);
    let hash = String::from_utf8(hashed.stdout).unwrap();
    let crlf = dir.path().join("crlf.txt");
    std::fs::write(&crlf, NOTICE.replace('\n', "\r\n")).unwrap();
    let hashed_crlf = run_ok(&["announce", "hash", crlf.to_str().unwrap()]);
    assert_eq!(
        hash.split(' ').next(),
        String::from_utf8(hashed_crlf.stdout)
            .unwrap()
            .split(' ')
            .next()
    );

    let find = |sources: &[&Path]| {
        let mut args = vec!["announce", "find"];
        args.extend(sources.iter().map(|s| s.to_str().unwrap()));
        args.extend(["--announcement", notice.to_str().unwrap(), "--json"]);
        let out = run(&args);
        let found: Value = serde_json::from_slice(&out.stdout).unwrap();
        (exit_code(&out), found)
    };
    let verdict = |found: &Value, group: &str| {
        found
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group_id"] == group)
            .unwrap()["verdict"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (code, found) = find(&[&wx, &ding, &qq]);
    assert_eq!(verdict(&found, &wx_group), "identical");
    assert_eq!(verdict(&found, &ding_group), "changed");
    let ding_copy = found
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group_id"] == ding_group.as_str())
        .unwrap();
    assert_eq!(ding_copy["changed"][0]["message_id"], "900002");
    assert!(ding_copy["changed"][0]["difference"]
        .as_str()
        .unwrap()
        .contains("[-0-]{+1+}"));
    assert!(found
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["platform"] == "qq")
        .all(|g| g["verdict"] == "none"));
    assert_eq!(code, 8, "a changed copy");
    assert_eq!(find(&[&wx]).0, 0, "every source has an identical copy");
    assert_eq!(find(&[&wx, &qq]).0, 3, "a source has none");
}

#[test]
fn a_draft_cites_a_verified_bundle_and_hashes_as_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let wx = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "2", "--messages", "300"],
    );
    let group = first_group(&wx);
    let bundle = dir.path().join("b");
    run_ok(&[
        "export",
        wx.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
        "--no-media",
    ]);
    let out = run_ok(&[
        "announce",
        "draft",
        "--group",
        &group,
        "--dissolve-at",
        "2025-06-20T12:00:00Z",
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let digest = std::fs::read_to_string(dir.path().join("b.sha256")).unwrap();
    let digest = digest.split(' ').next().unwrap();
    assert!(text.contains(digest), "{text}");
    assert!(text.contains("2025-06-20 20:00 (UTC+08:00)"), "{text}");
    assert!(text.contains("Notice:"));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let draft = dir.path().join("draft.txt");
    std::fs::write(&draft, &text).unwrap();
    let hashed =
        String::from_utf8(run_ok(&["announce", "hash", draft.to_str().unwrap()]).stdout).unwrap();
    assert!(stderr.contains(hashed.split(' ').next().unwrap()));
    // A bundle that does not verify is not cited.
    std::fs::write(bundle.join("data/groups.csv"), "changed").unwrap();
    let out = run(&[
        "announce",
        "draft",
        "--group",
        &group,
        "--bundle",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(exit_code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not verify"));
}
