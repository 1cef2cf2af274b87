//! Entry points for coverage-guided fuzzing (`fuzz/`, cargo-fuzz) and for replaying the
//! fuzz corpora on stable (`tests/fuzz_regressions.rs`). Not part of the public API.
//!
//! One function per target. Each takes arbitrary bytes, feeds them to the crate's real
//! parsing code the way the crate itself does, and discards the result. None may panic,
//! hang or exhaust memory on any input; where two code paths must agree (the WeCom fast
//! path and the general one, a format and its parser), the function asserts that they do,
//! so a disagreement is reported as a crash too.
//!
//! Inputs that hold several values (a database row, a bag's tag files) split the bytes at
//! NUL, which none of the text formats involved can contain: see each function.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, SecondsFormat, TimeZone, Utc};

use crate::evidence::{self, hashsum, VerifyOptions};
use crate::platform::dingtalk::content;
use crate::platform::qq::{message as qq_message, proto};
use crate::platform::wechat::{message as wechat_message, xml};
use crate::platform::wecom::{archive, record};
use crate::retention::plan::{sidecar_path, Plan, PlanHeader, PlanTotals};
use crate::retention::policy::Policy;
use crate::timefmt;

/// The first `n` NUL-separated parts of `data` (fewer when it has fewer NULs).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0).collect()
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// A scratch directory for the targets that need files: tmpfs when there is one, so a
/// fuzzer does not wear a disk. `CHATVAULT_FUZZ_TMP` overrides it.
fn scratch() -> Option<tempfile::TempDir> {
    let base = std::env::var_os("CHATVAULT_FUZZ_TMP")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = Path::new("/dev/shm");
            shm.is_dir().then(|| shm.to_path_buf())
        })
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("chatvault-fuzz")
        .tempdir_in(base)
        .ok()
}

/// The tags and attributes the WeChat message interpretation looks up.
const WECHAT_TAGS: [(&str, &str); 8] = [
    ("img", "length"),
    ("voicemsg", "voicelength"),
    ("videomsg", "playlength"),
    ("location", "poiname"),
    ("sysmsg", "type"),
    ("appmsg", "appid"),
    ("title", "x"),
    ("wcpayinfo", "type"),
];

/// WeChat payload XML (`source/wechat/xml.rs`). The first line is `tag attr` (either may
/// be empty; without a newline both are, and the whole input is the payload), the rest
/// the payload; the element and attribute named are looked up, then every pair the
/// message interpretation uses.
pub fn wechat_xml(data: &[u8]) {
    let input = text(data);
    let (names, payload) = input.split_once('\n').unwrap_or(("", &input));
    let (tag, attr) = names.split_once(' ').unwrap_or((names, ""));
    let lookup = |tag: &str, attr: &str| {
        let _ = xml::element_text(payload, tag);
        let _ = xml::attribute(payload, tag, attr);
        let _ = xml::has_element(payload, tag);
    };
    lookup(tag, attr);
    for (tag, attr) in WECHAT_TAGS {
        lookup(tag, attr);
    }
    let _ = xml::unescape(payload);
}

/// A WeChat `message` row (`source/wechat/message.rs` `interpret`). NUL-separated:
/// `type`, `content`, `imgPath`, `bigImgPath` (ImgInfo2), `fileFullPath`, `totalLen`
/// (appattach); a missing part is NULL. Interpreted as received in a group, as sent, and
/// as received in a one-to-one chat.
pub fn wechat_message(data: &[u8]) {
    let p = parts(data, 6);
    let bytes = |i: usize| p.get(i).map(|b| Cow::Borrowed(*b));
    let int = |i: usize| {
        p.get(i)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.trim().parse::<i64>().ok())
    };
    for (is_send, is_group) in [(false, true), (true, true), (false, false)] {
        let raw = wechat_message::RawRow {
            local_id: 7,
            server_id: Some(1_234_567),
            type_code: int(0),
            is_send,
            create_time: Some(1_718_150_400_123),
            content: bytes(1),
            img_path: bytes(2),
            big_img_path: bytes(3),
            file_full_path: bytes(4),
            file_total_len: int(5),
        };
        let query = wechat_message::Query {
            talker: "12345678@chatroom".into(),
            floor_ms: None,
            owner: Some("wxid_owner".into()),
            is_group,
            has_imginfo: true,
            has_appattach: true,
        };
        let _ = wechat_message::interpret(raw, &query);
    }
}

thread_local! {
    /// An in-memory database to make rows from: the QQ interpretation reads a `Row`.
    static SQLITE: Option<rusqlite::Connection> = rusqlite::Connection::open_in_memory().ok();
}

/// Walks a protobuf message and, a few levels deep, every length-delimited field as one.
fn walk_proto(buf: &[u8], depth: usize) {
    for field in proto::Reader::new(buf) {
        match field {
            Ok((_, proto::Value::Bytes(inner) | proto::Value::Group(inner))) if depth < 4 => {
                walk_proto(inner, depth + 1)
            }
            Ok(_) => {}
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A QQ NT message body (`source/qq/proto.rs`, `body.rs`, and `message.rs` `interpret`):
/// the input is the `40800` blob, interpreted with every message type.
pub fn qq_body(data: &[u8]) {
    use rusqlite::types::Value;
    walk_proto(data, 0);
    if let Ok(elements) = crate::platform::qq::body::parse(data) {
        let _ = crate::platform::qq::body::grey_tip_text(&elements);
    }
    SQLITE.with(|conn| {
        let Some(conn) = conn else { return };
        let Ok(mut stmt) =
            conn.prepare_cached("SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11")
        else {
            return;
        };
        let times = [
            Value::Integer(1_718_150_400),
            Value::Integer(i64::MAX),
            Value::Null,
        ];
        for msg_type in -1..=12i64 {
            let index = msg_type.unsigned_abs() as usize;
            let sub_type = [
                Value::Integer(0),
                Value::Integer(128),
                Value::Integer(4),
                Value::Null,
            ][index % 4]
                .clone();
            let params = [
                Value::Integer(7_000_000 + msg_type),
                Value::Null,
                if msg_type < 0 {
                    Value::Null
                } else {
                    Value::Integer(msg_type)
                },
                sub_type,
                Value::Integer(index as i64 % 3),
                Value::Text("u_abc".into()),
                times[index % 3].clone(),
                Value::Text("card".into()),
                Value::Null,
                if index == 12 {
                    Value::Text(text(data).into_owned())
                } else {
                    Value::Blob(data.to_vec())
                },
                Value::Integer(42),
            ];
            let _ = stmt.query_row(rusqlite::params_from_iter(params), |row| {
                Ok(qq_message::interpret(row, "123456"))
            });
        }
    });
}

/// WeCom archive JSONL (`source/wecom/record.rs` `interpret_fast` / `interpret`), line by
/// line as `archive.rs` reads a file. Where both paths read a line, they must read it the
/// same way.
pub fn wecom_record(data: &[u8]) {
    for (index, line) in data.split(|&b| b == b'\n').enumerate() {
        let mut bytes = line;
        if index == 0 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        let general = archive::parse(bytes).map(|(value, _)| record::interpret(&value, "a:1"));
        if let Some(fast) = record::interpret_fast(bytes) {
            match (&fast, &general) {
                (record::Outcome::Message(f), Ok(record::Outcome::Message(g))) => {
                    assert_eq!(f, g, "fast and general paths disagree")
                }
                (record::Outcome::Switch, Ok(record::Outcome::Switch)) => {}
                // Lines the general path cannot read are not compared: the fast path reads
                // a few more, e.g. a number beyond f64 (1e400) in a field it skips, which
                // serde_json::Value refuses (fuzz/regressions/wecom_record/).
                (_, Err(_)) => {}
                _ => panic!("fast path {fast:?}, general path {general:?}"),
            }
        }
    }
}

/// DingTalk `content` and `attachments` JSON (`source/dingtalk/content.rs`): NUL-separated.
pub fn dingtalk_content(data: &[u8]) {
    let p = parts(data, 2);
    let body = text(p[0]);
    if let Ok(body) = content::parse_body(&body) {
        let _ = body.duration.as_ref().and_then(content::number);
        let _ = body.count.as_ref().and_then(content::number);
    }
    if let Some(attachments) = p.get(1) {
        if let Ok(Some(file)) = content::parse_attachment(&text(attachments)) {
            let _ = file.f_size.as_ref().and_then(content::number);
        }
    }
}

/// A `sha256sum` list (`evidence/hashsum.rs`), line by line as `check_sha256sum` reads it;
/// every line that parses must come back the same from `format_sha256sum`.
pub fn sha256sum(data: &[u8]) {
    for line in text(data).split('\n') {
        if line.is_empty() {
            continue;
        }
        let Some((name, digest)) = hashsum::parse_line(line) else {
            continue;
        };
        let formatted = hashsum::format_sha256sum(&[(name.clone(), digest.clone())]);
        let again = formatted.strip_suffix('\n').and_then(hashsum::parse_line);
        assert_eq!(
            again,
            Some((name, digest)),
            "format_sha256sum wrote {formatted:?}"
        );
    }
}

const BAG_TAG_FILES: [&str; 5] = [
    evidence::bag::BAGIT_TXT,
    evidence::bag::BAG_INFO_TXT,
    evidence::bag::MANIFEST_TXT,
    evidence::bag::TAGMANIFEST_TXT,
    evidence::bag::EVIDENCE_JSON,
];

/// A payload file name from the input, if it is a plain relative path (letters, digits,
/// `._-` and at most three `/`-separated components, none `.` or `..`): the files are
/// written under the scratch directory and must stay there.
fn payload_name(name: &str) -> Option<&str> {
    let plain = |c: &str| {
        !c.is_empty()
            && c != "."
            && c != ".."
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    (name.split('/').count() <= 3 && name.split('/').all(plain)).then_some(name)
}

/// A bag directory (`evidence/verify.rs`: bagit.txt, manifests, bag-info, evidence.json,
/// the sidecar). NUL-separated: `bagit.txt`, `bag-info.txt`, `manifest-sha256.txt`,
/// `tagmanifest-sha256.txt`, `evidence.json`, the `bag.sha256` sidecar beside the bag,
/// then payload files, each `<path under data/>\n<contents>`; a missing part is a missing
/// file. Written to a scratch directory and verified.
pub fn bag_dir(data: &[u8]) {
    let Some(tmp) = scratch() else { return };
    let bag = tmp.path().join("bag");
    if std::fs::create_dir_all(bag.join("data")).is_err() {
        return;
    }
    let p: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    for (name, bytes) in BAG_TAG_FILES.iter().zip(&p) {
        if std::fs::write(bag.join(name), bytes).is_err() {
            return;
        }
    }
    if let Some(sidecar) = p.get(BAG_TAG_FILES.len()) {
        if std::fs::write(tmp.path().join("bag.sha256"), sidecar).is_err() {
            return;
        }
    }
    for file in p.iter().skip(BAG_TAG_FILES.len() + 1) {
        let (name, contents) = match file.iter().position(|&b| b == b'\n') {
            Some(at) => (&file[..at], &file[at + 1..]),
            None => (&file[..], &[][..]),
        };
        let Some(name) = std::str::from_utf8(name).ok().and_then(payload_name) else {
            continue;
        };
        let path = bag.join("data").join(name);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        // A name that is already a directory (or under a file) is skipped.
        let _ = std::fs::write(&path, contents);
    }
    if let Ok(report) = evidence::verify(&bag, &VerifyOptions::default()) {
        let _ = (report.render(), report.to_json());
    }
}

/// A zip bundle (`evidence/verify.rs` ZipBag: the zip's central directory, then the bag
/// in it): the input is the zip, written to a scratch file and verified.
pub fn bag_zip(data: &[u8]) {
    let Some(tmp) = scratch() else { return };
    let zip = tmp.path().join("bag.zip");
    if std::fs::write(&zip, data).is_err() {
        return;
    }
    if let Ok(report) = evidence::verify(&zip, &VerifyOptions::default()) {
        let _ = (report.render(), report.to_json());
    }
}

/// The BagIt tag-file parsers (`evidence/bagit/`): NUL-separated `bagit.txt`,
/// `bag-info.txt`, manifest text and `fetch.txt`. Each is parsed as it is, the manifest
/// and fetch text also through every tag-file encoding; a path a parser accepts is never
/// out of scope.
pub fn bagit_tags(data: &[u8]) {
    use crate::evidence::bagit::{baginfo, declaration, encoding, fetch, manifest, path};
    let parts: Vec<&[u8]> = data.splitn(4, |&b| b == 0).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let declared = declaration::parse_declaration(part(0));
    let version = declared.version.unwrap_or(declaration::Version::V1_0);
    let info = String::from_utf8_lossy(part(1));
    for v in [
        version,
        declaration::Version {
            major: 0,
            minor: 97,
        },
    ] {
        let parsed = baginfo::parse_bag_info(&info, v, "bag-info.txt");
        let _ = parsed.oxum();
    }
    let encodings = [
        encoding::TagEncoding::Utf8,
        encoding::TagEncoding::Latin1,
        encoding::TagEncoding::Utf16,
        encoding::TagEncoding::Utf16Le,
    ];
    for (index, text) in [part(2), part(3)].into_iter().enumerate() {
        for enc in encodings {
            let mut reader = encoding::Utf8Reader::new(text, enc);
            let mut line = Vec::new();
            while let Ok(Some(_)) = encoding::read_line(&mut reader, &mut line, 4096) {
                let Ok(line) = std::str::from_utf8(&line) else {
                    continue;
                };
                if index == 0 {
                    for algorithm in crate::evidence::bagit::Algorithm::ALL {
                        if let Ok(Some(entry)) = manifest::parse_line(line, algorithm) {
                            assert!(path::out_of_scope(&entry.path).is_none(), "{entry:?}");
                            assert_eq!(entry.digest.len(), algorithm.digest_len());
                        }
                    }
                } else if let Ok(Some(entry)) = fetch::parse_fetch_line(line) {
                    assert!(path::out_of_scope(&entry.path).is_none(), "{entry:?}");
                    assert!(entry.path.starts_with("data/"));
                }
            }
        }
    }
}

/// `PLAN.json` (`retention/plan.rs` `Plan::read_verified`), written with a matching
/// sidecar. A plan that reads must survive `to_json_bytes` unchanged (totals recomputed).
pub fn plan_json(data: &[u8]) {
    let Some(tmp) = scratch() else { return };
    let json = tmp.path().join("PLAN.json");
    let sidecar = format!("{}  PLAN.json\n", crate::retention::sha256_hex(data));
    if std::fs::write(&json, data).is_err() || std::fs::write(sidecar_path(&json), sidecar).is_err()
    {
        return;
    }
    let Ok(plan) = Plan::read_verified(&json) else {
        return;
    };
    let _ = plan.summary();
    let _ = plan.next_deletable();
    let Ok(bytes) = plan.to_json_bytes() else {
        return;
    };
    let again: Plan =
        serde_json::from_slice(&bytes).expect("a plan written by to_json_bytes reads back");
    let expected = Plan {
        header: PlanHeader {
            totals: PlanTotals::of(&plan.entries),
            ..plan.header.clone()
        },
        entries: plan.entries.clone(),
    };
    assert_eq!(again, expected, "the plan changed in a round trip");
}

/// A policy TOML file (`retention/policy.rs` `Policy::from_toml_str`). A policy that loads
/// must dump (`to_toml`, what `chatvault policy --dump` prints) to text that loads back the
/// same policy.
pub fn policy_toml(data: &[u8]) {
    // from_toml_file reads the file as UTF-8 and refuses it otherwise.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = Policy::from_toml_str(input) else {
        return;
    };
    let _ = (policy.to_json(), policy.to_table(), policy.sha256());
    let start = DateTime::<Utc>::MIN_UTC;
    for rule in &policy.rules {
        let _ = (rule.citation(), rule.period_phrase());
        if let Some(period) = rule.period {
            for at in [start, Utc::now(), DateTime::<Utc>::MAX_UTC] {
                let _ = period.after(at);
            }
        }
    }
    let dumped = policy.to_toml().expect("a loaded policy dumps");
    let again = Policy::from_toml_str(&dumped).expect("a dumped policy loads");
    assert_eq!(
        again, policy,
        "the policy changed in a dump and load:\n{dumped}"
    );
}

/// `--since`/`--until`/`--at` times and `--tz` offsets (`timefmt.rs` `parse_time`,
/// `parse_offset`). What parses is formatted by the fast formatters, which must agree
/// with chrono's.
pub fn time_args(data: &[u8]) {
    let input = text(data);
    if let Ok(t) = timefmt::parse_time(&input) {
        check_formatting(t.timestamp_millis(), None);
        let _ = timefmt::utc_seconds(t);
        assert_eq!(
            timefmt::utc_auto_si(&t),
            t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        );
    }
    if let Ok(offset) = timefmt::parse_offset(&input) {
        for ms in [
            0,
            1_718_150_400_123,
            -62_167_219_200_000,
            i64::MIN,
            i64::MAX,
        ] {
            check_formatting(ms, Some(offset));
        }
    }
    if let Ok(first) = <[u8; 8]>::try_from(data.get(..8).unwrap_or_default()) {
        check_formatting(i64::from_le_bytes(first), FixedOffset::east_opt(8 * 3600));
    }
}

fn check_formatting(ms: i64, offset: Option<FixedOffset>) {
    let chrono_utc = Utc
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default();
    assert_eq!(timefmt::utc_millis(ms), chrono_utc, "{ms}");
    if let Some(offset) = offset {
        let chrono_local = offset
            .timestamp_millis_opt(ms)
            .single()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, false))
            .unwrap_or_default();
        assert_eq!(
            timefmt::local_millis(ms, offset),
            chrono_local,
            "{ms} {offset}"
        );
    }
}

/// The plan digest the `approval_files` target's approvals are checked against.
pub const APPROVAL_PLAN_SHA256: &str =
    "5be0b5d1f2a3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d";
/// The seed of the one trusted key of the `approval_files` target.
pub const APPROVAL_KEY_SEED: [u8; 32] = [7; 32];

/// Approval files (`retention/approval.rs`): the input as `alice.sig` beside a plan whose
/// SHA-256 is [`APPROVAL_PLAN_SHA256`], checked against one trusted key (seed
/// [`APPROVAL_KEY_SEED`]); then as a `KEY.pub` and as a signing key file (mode 0600). An
/// approval that counts must be of that digest by that key, and an approval that passes
/// the check must pass it the same way once written back.
pub fn approval_files(data: &[u8]) {
    use std::os::unix::fs::PermissionsExt;

    use crate::retention::approval::{
        self, check_approvals, read_public_key, ApprovalStatus, SecretKey, TrustedKeys,
    };
    let Some(tmp) = scratch() else { return };
    let trusted_dir = tmp.path().join("trusted");
    let sigs = tmp.path().join("approvals");
    let trusted_key = SecretKey::from_seed(&APPROVAL_KEY_SEED).public_key();
    let public_text = format!(
        "{}\n{}\n",
        approval::PUBLIC_KEY_HEADER,
        trusted_key.to_hex()
    );
    let written = std::fs::create_dir(&trusted_dir)
        .and_then(|()| std::fs::write(trusted_dir.join("alice.pub"), public_text))
        .and_then(|()| std::fs::create_dir(&sigs))
        .and_then(|()| std::fs::write(sigs.join("alice.sig"), data));
    if written.is_err() {
        return;
    }
    let trusted = TrustedKeys::load(&trusted_dir).expect("the fixed trusted key loads");
    if let Ok(check) = check_approvals(APPROVAL_PLAN_SHA256, &sigs, &trusted) {
        let _ = (check.lines(), check.require(1));
        for checked in &check.approvals {
            if matches!(checked.status, ApprovalStatus::Counted { .. }) {
                assert_eq!(checked.approval.plan_sha256, APPROVAL_PLAN_SHA256);
                assert_eq!(checked.public_key, trusted_key);
            }
            let text = checked.approval.to_text().expect("an approval serializes");
            let again_dir = tmp.path().join("again");
            if std::fs::create_dir_all(&again_dir)
                .and_then(|()| std::fs::write(again_dir.join("alice.sig"), text))
                .is_err()
            {
                return;
            }
            let again = check_approvals(APPROVAL_PLAN_SHA256, &again_dir, &trusted)
                .expect("an approval that passed passes once written back");
            assert_eq!(again.approvals[0].status, checked.status);
        }
    }
    let key_path = tmp.path().join("key.pub");
    if std::fs::write(&key_path, data).is_ok() {
        let _ = read_public_key(&key_path);
        let secret_path = tmp.path().join("key");
        let private = std::fs::write(&secret_path, data).and_then(|()| {
            std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600))
        });
        if private.is_ok() {
            let _ = SecretKey::read(&secret_path).map(|k| k.public_key().fingerprint());
        }
    }
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target by name (as in `fuzz/fuzz_targets/`), for `tests/fuzz_regressions.rs`.
pub const TARGETS: [(&str, Target); 13] = [
    ("wechat_xml", wechat_xml),
    ("wechat_message", wechat_message),
    ("qq_body", qq_body),
    ("wecom_record", wecom_record),
    ("dingtalk_content", dingtalk_content),
    ("sha256sum", sha256sum),
    ("bag_dir", bag_dir),
    ("bag_zip", bag_zip),
    ("bagit_tags", bagit_tags),
    ("plan_json", plan_json),
    ("policy_toml", policy_toml),
    ("time_args", time_args),
    ("approval_files", approval_files),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retention::approval::{
        check_approvals, Approval, ApprovalStatus, SecretKey, TrustedKeys, PUBLIC_KEY_HEADER,
        SECRET_KEY_HEADER,
    };

    fn approval_corpus() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/approval_files")
    }

    /// Writes the seeds of `approval_files` (Ed25519 is not at hand in make_seeds.py):
    /// `cargo test --lib write_approval_seeds -- --ignored`.
    #[test]
    #[ignore]
    fn write_approval_seeds() {
        let key = SecretKey::from_seed(&APPROVAL_KEY_SEED);
        let stranger = SecretKey::from_seed(&[9; 32]);
        let out = approval_corpus();
        std::fs::create_dir_all(&out).unwrap();
        let seeds = [
            (
                "seed-counted",
                Approval::sign(&key, APPROVAL_PLAN_SHA256, "alice"),
            ),
            (
                "seed-other-plan",
                Approval::sign(&key, &"ab".repeat(32), "alice"),
            ),
            (
                "seed-untrusted",
                Approval::sign(&stranger, APPROVAL_PLAN_SHA256, "alice"),
            ),
        ];
        for (name, approval) in seeds {
            std::fs::write(out.join(name), approval.to_text().unwrap()).unwrap();
        }
        let public = format!("{PUBLIC_KEY_HEADER}\n{}\n", key.public_key().to_hex());
        std::fs::write(out.join("seed-public-key"), public).unwrap();
        let secret = format!("{SECRET_KEY_HEADER}\n{}\n", crate::digest::hex(&[9; 32]));
        std::fs::write(out.join("seed-secret-key"), secret).unwrap();
    }

    /// The fuzzer starts from an approval that counts, so every check is within its reach.
    #[test]
    fn the_approval_seeds_reach_every_status() {
        let tmp = tempfile::tempdir().unwrap();
        let trusted_dir = tmp.path().join("trusted");
        std::fs::create_dir(&trusted_dir).unwrap();
        let key = SecretKey::from_seed(&APPROVAL_KEY_SEED).public_key();
        std::fs::write(
            trusted_dir.join("alice.pub"),
            format!("{PUBLIC_KEY_HEADER}\n{}\n", key.to_hex()),
        )
        .unwrap();
        let trusted = TrustedKeys::load(&trusted_dir).unwrap();
        for (seed, counted) in [
            ("seed-counted", true),
            ("seed-other-plan", false),
            ("seed-untrusted", false),
        ] {
            let dir = tmp.path().join(seed);
            std::fs::create_dir(&dir).unwrap();
            std::fs::copy(approval_corpus().join(seed), dir.join("alice.sig")).unwrap();
            let check = check_approvals(APPROVAL_PLAN_SHA256, &dir, &trusted).unwrap();
            assert_eq!(
                matches!(check.approvals[0].status, ApprovalStatus::Counted { .. }),
                counted,
                "{seed}"
            );
        }
    }
}
