//! Shared fixtures for the evidence tests: sample bags and external-tool runners.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::bag::{BagOptions, BagSummary, BagWriter};
use crate::digest::sha256_hex;

pub fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 12, 0, 5, 20).unwrap()
}

/// Deterministic pseudo-random bytes (incompressible, like a real photo).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn options(parent: &Path, name: &str, zip: bool) -> BagOptions {
    BagOptions {
        out: parent.join(name),
        zip,
        force: false,
        protected: Vec::new(),
        fixed_time: Some(fixed_time()),
        tool_version: "0.1.0-test".into(),
    }
}

/// Writes a bag with concurrent CSVs, stored and deflated media; `sources` are
/// recorded in evidence.json relative to `source_root`.
pub fn write_sample(opts: BagOptions, source_root: Option<&Path>) -> BagSummary {
    let mut writer = BagWriter::create(opts).unwrap();
    let mut messages = writer.text_file("messages.csv").unwrap();
    let mut media = writer.text_file("media.csv").unwrap();
    use std::io::Write;
    messages
        .write_all("\u{feff}platform,group_id,text\r\n".as_bytes())
        .unwrap();
    media
        .write_all(b"\xef\xbb\xbfplatform,bundle_path\r\n")
        .unwrap();
    for i in 0..2000 {
        write!(
            messages,
            "wechat,1@chatroom,\"第{i}条 消息 😀, \"\"quoted\"\"\"\r\n"
        )
        .unwrap();
        if i % 100 == 0 {
            write!(media, "wechat,media/g1/{i}.jpg\r\n").unwrap();
        }
    }
    writer
        .copy_file("media/g1/photo 1.jpg", &mut &noise(5000, 1)[..], true)
        .unwrap();
    writer
        .copy_file("media/g1/报价单.xlsx", &mut &noise(3 << 20, 2)[..], true)
        .unwrap();
    writer
        .copy_file_sized(
            "media/g2/voice.amr",
            &mut &noise(700, 3)[..],
            true,
            Some(700),
        )
        .unwrap();
    writer
        .copy_file(
            "media/g2/notes.txt",
            &mut &b"plain text attachment\n".repeat(50)[..],
            false,
        )
        .unwrap();
    writer.finish_text(media).unwrap();
    writer.finish_text(messages).unwrap();
    for name in ["groups.csv", "members.csv"] {
        let mut text = writer.text_file(name).unwrap();
        text.write_all(b"platform,group_id\r\nwechat,1@chatroom\r\n")
            .unwrap();
        writer.finish_text(text).unwrap();
    }
    let sources: Vec<serde_json::Value> = match source_root {
        Some(root) => walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let bytes = std::fs::read(e.path()).unwrap();
                let rel = e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
                json!({"path": rel, "size": bytes.len(), "sha256_before": sha256_hex(&bytes), "sha256_after": sha256_hex(&bytes)})
            })
            .chain(std::iter::once(json!({"size": 1, "sha256_before": "ab", "sha256_after": "ab"})))
            .collect(),
        None => Vec::new(),
    };
    writer
        .finish(|summary, out| {
            serde_json::to_writer_pretty(
                out,
                &json!({
                    "tool": "chatvault",
                    "manifest_sha256": summary.manifest_sha256,
                    "sources": sources,
                }),
            )?;
            Ok(vec![
                ("Chatvault-Format-Version".into(), "1".into()),
                ("Chatvault-Csv-Guard".into(), "excel".into()),
                ("Chatvault-Source-Platform".into(), "app-a".into()),
            ])
        })
        .unwrap()
}

/// Runs a command; returns (success, stdout+stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// bagit.py from $BAGIT_PY, if set.
pub fn bagit_py() -> Option<PathBuf> {
    match std::env::var_os("BAGIT_PY") {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            eprintln!("note: BAGIT_PY is not set; skipping the bagit.py --validate check");
            None
        }
    }
}

/// Every file under `root`, relative, with its bytes.
pub fn tree_bytes(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}
