//! WeCom only.

use crate::common::*;
use crate::suite::{assert_counts_match, evidence, export};
use crate::truth::wecom::{archive_files, SOURCE};

#[test]
fn malformed_lines_are_exported_as_other_or_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate("wecom", dir.path(), "wecom", SOURCE.small);
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
    assert_counts_match(&SOURCE, &root, &bundle);
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
