//! Hostile zips given to `chatvault verify`: a bomb (an entry that inflates a
//! thousandfold, one that claims more than deflate can give, one that lies about its
//! size), zip-slip and absolute names, symlink entries. Each is refused or reported
//! cleanly, nothing is written anywhere, and memory stays bounded (peak RSS measured).

mod common;

use std::io::Write;
use std::path::Path;

use common::*;
use sha2::{Digest, Sha512};

const DECLARATION: &[u8] = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";

/// A zip bag "bomb/" whose payload holds `entries` (name under data/, bytes), listed in a
/// SHA-512 manifest; `extra` entries are added as they are (names relative to the zip).
fn zip_bag(path: &Path, entries: &[(&str, &[u8])], extra: &[(&str, &[u8])]) {
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let deflate = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut manifest = String::new();
    for (name, data) in entries {
        manifest.push_str(&format!("{:x}  data/{name}\n", Sha512::digest(data)));
        writer
            .start_file(format!("bomb/data/{name}"), deflate)
            .unwrap();
        writer.write_all(data).unwrap();
    }
    for (name, data) in [
        ("bagit.txt", DECLARATION),
        ("manifest-sha512.txt", manifest.as_bytes()),
    ] {
        writer.start_file(format!("bomb/{name}"), deflate).unwrap();
        writer.write_all(data).unwrap();
    }
    for (name, data) in extra {
        writer.start_file(*name, deflate).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap();
}

/// Largest resident set of any child this test process has waited for, in KiB.
fn children_max_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_CHILDREN is a valid target.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // SAFETY: initialized by the successful call above.
    unsafe { usage.assume_init() }.ru_maxrss
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

fn verify_json(zip: &Path) -> (i32, serde_json::Value) {
    let out = run(&["verify", zip.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        exit_code(&out),
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null),
    )
}

fn strings(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Sets the uncompressed size of the entry named `name` in the central directory (and
/// its local header) to `size`: a zip that claims what its data cannot hold.
fn claim_size(zip: &Path, name: &str, size: u32) {
    let mut bytes = std::fs::read(zip).unwrap();
    let needle = name.as_bytes();
    let mut patched = 0;
    for at in 0..bytes.len().saturating_sub(4) {
        let central = bytes[at..at + 4] == [0x50, 0x4b, 0x01, 0x02];
        let local = bytes[at..at + 4] == [0x50, 0x4b, 0x03, 0x04];
        let (name_at, size_at) = match (central, local) {
            (true, _) => (at + 46, at + 24),
            (_, true) => (at + 30, at + 22),
            _ => continue,
        };
        if bytes.get(name_at..name_at + needle.len()) == Some(needle) {
            bytes[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
            patched += 1;
        }
    }
    assert_eq!(patched, 2, "{name}: local header and central directory");
    std::fs::write(zip, bytes).unwrap();
}

#[test]
fn a_small_zip_bomb_is_streamed_or_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 96 MiB of zeros deflate to about 100 KB: a thousandfold, within what deflate can
    // really do, so it is inflated and hashed, never held.
    let zeros = vec![0u8; 96 << 20];
    let honest = dir.path().join("honest.zip");
    zip_bag(&honest, &[("zeros.bin", &zeros)], &[]);
    assert!(std::fs::metadata(&honest).unwrap().len() < 1 << 20);
    let before = files_under(dir.path());
    let (code, report) = verify_json(&honest);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["counts"]["matched"], 1, "the one payload file");
    let peak = children_max_rss_kib();
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB for a 96 MiB entry: memory grows with the entry"
    );

    // The same entry claiming 4 GB (beyond deflate's 1032:1): refused, never inflated.
    let bomb = dir.path().join("bomb.zip");
    std::fs::copy(&honest, &bomb).unwrap();
    claim_size(&bomb, "bomb/data/zeros.bin", u32::MAX - 1);
    let (code, report) = verify_json(&bomb);
    assert_eq!(code, 8, "{report}");
    assert_eq!(strings(&report, "modified"), ["data/zeros.bin"]);
    assert!(
        strings(&report, "details")
            .iter()
            .any(|d| d.contains("zip bomb")),
        "{report}"
    );

    // Claiming fewer bytes than it inflates to: stopped at the claim.
    let liar = dir.path().join("liar.zip");
    std::fs::copy(&honest, &liar).unwrap();
    claim_size(&liar, "bomb/data/zeros.bin", 1000);
    let (code, report) = verify_json(&liar);
    assert_eq!(code, 8, "{report}");
    assert!(
        strings(&report, "details")
            .iter()
            .any(|d| d.contains("more bytes than declared")),
        "{report}"
    );

    let peak = children_max_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
    let mut after = files_under(dir.path());
    after.retain(|f| !["bomb.zip", "liar.zip"].contains(&f.as_str()));
    assert_eq!(after, before, "verify wrote nothing");
}

#[test]
fn zip_slip_absolute_names_and_symlinks_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let zip = work.join("evil.zip");
    zip_bag(
        &zip,
        &[("ok.txt", b"fine")],
        &[
            ("bomb/../../slipped.txt", b"pwned"),
            ("bomb/data/../../../slipped2.txt", b"pwned"),
            ("/tmp/chatvault-absolute-entry.txt", b"pwned"),
            ("bomb/data/a\\..\\..\\x.txt", b"pwned"),
        ],
    );
    {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&zip)
            .unwrap();
        let mut writer = zip::ZipWriter::new_append(file).unwrap();
        writer
            .add_symlink(
                "bomb/data/passwd",
                "/etc/passwd",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
        writer.finish().unwrap();
    }
    let before = files_under(dir.path());
    let (code, report) = verify_json(&zip);
    assert_eq!(code, 8, "{report}");
    let refused = strings(&report, "unsafe_paths");
    for name in [
        "bomb/../../slipped.txt",
        "bomb/data/../../../slipped2.txt",
        "/tmp/chatvault-absolute-entry.txt",
        "bomb/data/a\\..\\..\\x.txt",
        "bomb/data/passwd",
    ] {
        assert!(refused.contains(&name.to_string()), "{name}: {report}");
    }
    assert!(strings(&report, "modified").is_empty());
    assert_eq!(files_under(dir.path()), before, "nothing written");
    assert!(!Path::new("/tmp/chatvault-absolute-entry.txt").exists());
    assert!(!dir.path().join("slipped.txt").exists());
}
