//! Evidence bundles checked by tools we did not write, tampered with, reproduced, and
//! interrupted.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::*;

fn source(dir: &Path) -> PathBuf {
    simulate(
        "wechat",
        dir,
        "wx",
        &[
            "--groups",
            "3",
            "--messages",
            "1500",
            "--edge-rate",
            "0.1",
            "--seed",
            "11",
        ],
    )
}

fn export(root: &Path, out: &Path, extra: &[&str]) {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

fn verify_json(bundle: &Path, extra: &[&str]) -> (i32, serde_json::Value) {
    let mut args = vec!["verify", bundle.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let report = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (exit_code(&out), report)
}

fn listed(report: &serde_json::Value, category: &str, needle: &str) -> bool {
    report[category].as_array().is_some_and(|a| {
        a.iter()
            .any(|p| p.as_str().is_some_and(|p| p.contains(needle)))
    })
}

#[test]
fn directory_bundle_passes_independent_validators() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let bundle = dir.path().join("case-001");
    export(&root, &bundle, &[]);

    for tag in [
        "bagit.txt",
        "bag-info.txt",
        "manifest-sha256.txt",
        "tagmanifest-sha256.txt",
        "evidence.json",
    ] {
        assert!(bundle.join(tag).is_file(), "{tag}");
    }
    shell_ok(
        Process::new("sha256sum")
            .args(["-c", "--quiet", "manifest-sha256.txt"])
            .current_dir(&bundle),
    );
    shell_ok(
        Process::new("sha256sum")
            .args(["-c", "--quiet", "tagmanifest-sha256.txt"])
            .current_dir(&bundle),
    );
    // The sidecar names the tag manifest from the parent directory.
    shell_ok(
        Process::new("sha256sum")
            .args(["-c", "case-001.sha256"])
            .current_dir(dir.path()),
    );
    if let Some(bagit) = tool("bagit.py") {
        shell_ok(Process::new(bagit).args(["--validate", bundle.to_str().unwrap()]));
    }
    let (code, report) = verify_json(&bundle, &["--source", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");

    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("evidence.json")).unwrap()).unwrap();
    assert_eq!(
        evidence["manifest_sha256"].as_str().unwrap(),
        sha256_file(&bundle.join("manifest-sha256.txt"))
    );
    let sources = evidence["sources"].as_array().unwrap();
    assert!(sources.iter().any(|s| s["path"] == "EnMicroMsg.db"));
    assert!(
        sources.len() > 10,
        "media files are recorded as sources too"
    );
    for s in sources {
        assert_eq!(s["sha256_before"], s["sha256_after"]);
        assert_eq!(
            s["sha256_before"].as_str().unwrap(),
            sha256_file(&root.join(s["path"].as_str().unwrap())),
            "{}",
            s["path"]
        );
    }
    let bag_info = std::fs::read_to_string(bundle.join("bag-info.txt")).unwrap();
    assert!(bag_info.contains("Chatvault-Csv-Guard: excel"));
    assert!(bag_info.contains("Payload-Oxum: "));
    // The printed bag digest is the sha256 of the tag manifest.
    let sidecar = std::fs::read_to_string(dir.path().join("case-001.sha256")).unwrap();
    assert!(sidecar.starts_with(&sha256_file(&bundle.join("tagmanifest-sha256.txt"))));
}

#[test]
fn zip_bundle_passes_independent_validators() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let name = dir.path().join("case-002");
    export(&root, &name, &["--zip"]);
    let zip = dir.path().join("case-002.zip");
    assert!(zip.is_file() && !name.exists());
    shell_ok(Process::new("unzip").args(["-tq", zip.to_str().unwrap()]));
    shell_ok(
        Process::new("sha256sum")
            .args(["-c", "case-002.zip.sha256"])
            .current_dir(dir.path()),
    );
    // Python's zipfile: one top directory, UTF-8 flag on non-ASCII names, media stored, text deflated.
    let script = r#"
import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert all(n.startswith("case-002/") for n in names), names[:3]
assert "case-002/bagit.txt" in names
for i in z.infolist():
    if any(ord(c) > 127 for c in i.filename):
        assert i.flag_bits & 0x800, i.filename
    if i.filename.endswith((".jpg", ".mp4", ".amr")):
        assert i.compress_type == zipfile.ZIP_STORED, i.filename
    if i.filename.endswith(".csv"):
        assert i.compress_type == zipfile.ZIP_DEFLATED, i.filename
assert z.testzip() is None
"#;
    shell_ok(Process::new("python3").args(["-c", script, zip.to_str().unwrap()]));
    if let Some(bagit) = tool("bagit.py") {
        let unpacked = dir.path().join("unpacked");
        shell_ok(Process::new("unzip").args([
            "-q",
            zip.to_str().unwrap(),
            "-d",
            unpacked.to_str().unwrap(),
        ]));
        shell_ok(
            Process::new(bagit).args(["--validate", unpacked.join("case-002").to_str().unwrap()]),
        );
    }
    let (code, report) = verify_json(&zip, &["--source", root.to_str().unwrap()]);
    assert_eq!(code, 0, "{report}");
}

fn copy_dir(from: &Path, to: &Path) {
    shell_ok(Process::new("cp").args(["-a", from.to_str().unwrap(), to.to_str().unwrap()]));
}

#[test]
fn tampering_with_a_directory_bundle_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let bundle = dir.path().join("b");
    export(&root, &bundle, &[]);
    assert_eq!(verify_json(&bundle, &[]).0, 0);

    let case = |name: &str, tamper: &dyn Fn(&Path), category: &str, needle: &str| {
        let copy = dir.path().join(name);
        copy_dir(&bundle, &copy);
        tamper(&copy);
        let (code, report) = verify_json(&copy, &[]);
        assert_eq!(code, 8, "{name}: {report}");
        assert!(
            listed(&report, category, needle),
            "{name}: {needle} not under {category}: {report}"
        );
    };
    case(
        "flip",
        &|b| {
            let p = b.join("data/messages.csv");
            let mut bytes = std::fs::read(&p).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            std::fs::write(&p, bytes).unwrap();
        },
        "modified",
        "data/messages.csv",
    );
    case(
        "delete",
        &|b| std::fs::remove_file(b.join("data/members.csv")).unwrap(),
        "missing",
        "data/members.csv",
    );
    case(
        "add",
        &|b| std::fs::write(b.join("data/extra.txt"), b"x").unwrap(),
        "extra",
        "data/extra.txt",
    );
    case(
        "bag-info",
        &|b| {
            let p = b.join("bag-info.txt");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(
                &p,
                text.replace("Chatvault-Csv-Guard: excel", "Chatvault-Csv-Guard: none"),
            )
            .unwrap();
        },
        "modified",
        "bag-info.txt",
    );
    case(
        "evidence",
        &|b| {
            let p = b.join("evidence.json");
            let text = std::fs::read_to_string(&p).unwrap();
            std::fs::write(&p, text.replacen("chatvault", "chatvau1t", 1)).unwrap();
        },
        "modified",
        "evidence.json",
    );

    // A modified source is reported with --source.
    let changed_root = dir.path().join("wx-changed");
    copy_dir(&root, &changed_root);
    std::fs::write(changed_root.join("EnMicroMsg.db"), b"overwritten").unwrap();
    let (code, report) = verify_json(&bundle, &["--source", changed_root.to_str().unwrap()]);
    assert_eq!(code, 8, "{report}");
    assert!(report.to_string().contains("EnMicroMsg.db"));
}

#[test]
fn tampering_with_a_zip_bundle_is_caught_without_extracting() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    export(&root, &dir.path().join("z"), &["--zip"]);
    let zip = dir.path().join("z.zip");
    assert_eq!(verify_json(&zip, &[]).0, 0);

    // Flip a byte inside a stored media entry's data (found with Python's zipfile offsets).
    let flipped = dir.path().join("flipped.zip");
    std::fs::copy(&zip, &flipped).unwrap();
    let script = r#"
import sys, zipfile, struct
z = zipfile.ZipFile(sys.argv[1])
info = next(i for i in z.infolist() if i.compress_type == zipfile.ZIP_STORED and i.file_size > 64)
with open(sys.argv[1], "r+b") as f:
    f.seek(info.header_offset + 26)
    n, m = struct.unpack("<HH", f.read(4))
    at = info.header_offset + 30 + n + m + info.file_size // 2
    f.seek(at); b = f.read(1); f.seek(at); f.write(bytes([b[0] ^ 1]))
print(info.filename)
"#;
    let out = Process::new("python3")
        .args(["-c", script, flipped.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entry = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let rel = entry.split_once('/').unwrap().1.to_string();
    let (code, report) = verify_json(&flipped, &[]);
    assert_eq!(code, 8, "{report}");
    assert!(listed(&report, "modified", &rel), "{rel}: {report}");

    // A `../` entry is refused and never extracted.
    let evil = dir.path().join("evil.zip");
    std::fs::copy(&zip, &evil).unwrap();
    let script = r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1], "a") as z:
    z.writestr("z/../../evil.txt", "pwned")
"#;
    shell_ok(Process::new("python3").args(["-c", script, evil.to_str().unwrap()]));
    let (code, report) = verify_json(&evil, &[]);
    assert_eq!(code, 8, "{report}");
    assert!(listed(&report, "unsafe_paths", "evil.txt"), "{report}");
    assert!(
        !dir.path().join("evil.txt").exists()
            && !dir.path().parent().unwrap().join("evil.txt").exists()
    );
}

#[test]
fn not_a_bundle_has_its_own_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        exit_code(&run(&["verify", dir.path().to_str().unwrap()])),
        9
    );
    let junk = dir.path().join("junk.zip");
    std::fs::write(&junk, b"not a zip").unwrap();
    assert_eq!(exit_code(&run(&["verify", junk.to_str().unwrap()])), 9);
}

fn tree_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(root).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn fixed_time_gives_byte_identical_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    // The same source and the same options (the output path is one of them).
    let fixed = ["--fixed-time", "2025-07-01T00:00:00Z"];
    let case = dir.path().join("case");
    export(&root, &case, &fixed);
    let first = tree_bytes(&case);
    std::fs::remove_dir_all(&case).unwrap();
    export(&root, &case, &fixed);
    let second = tree_bytes(&case);
    let differing: Vec<&String> = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| &a.0)
        .collect();
    assert_eq!(first.len(), second.len());
    assert!(differing.is_empty(), "differ: {differing:?}");

    let mut zipped = fixed.to_vec();
    zipped.push("--zip");
    export(&root, &case, &zipped);
    let zip = dir.path().join("case.zip");
    let first = std::fs::read(&zip).unwrap();
    std::fs::remove_file(&zip).unwrap();
    export(&root, &case, &zipped);
    assert!(first == std::fs::read(&zip).unwrap(), "zip bytes differ");
}

#[test]
fn existing_bundles_are_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    let bundle = dir.path().join("b");
    export(&root, &bundle, &["--no-media"]);
    let before = tree_bytes(&bundle);
    let out = run(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        bundle.to_str().unwrap(),
    ]);
    assert_eq!(
        exit_code(&out),
        7,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tree_bytes(&bundle), before);
    export(&root, &bundle, &["--force"]);
    assert_eq!(verify_json(&bundle, &[]).0, 0);
    assert_ne!(tree_bytes(&bundle), before);
}

#[test]
fn hash_matches_sha256sum_and_checks_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("evidence");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.png"), b"png bytes").unwrap();
    std::fs::write(tree.join("sub/录音.m4a"), vec![7u8; 100_000]).unwrap();
    let out = chatvault()
        .args(["hash", "evidence"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let list = dir.path().join("list.sha256");
    std::fs::write(&list, &out.stdout).unwrap();
    shell_ok(
        Process::new("sha256sum")
            .args(["-c", "list.sha256"])
            .current_dir(dir.path()),
    );
    let check = chatvault()
        .args(["hash", "--check", "list.sha256"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(check.status.success());
    std::fs::write(tree.join("a.png"), b"changed").unwrap();
    let check = chatvault()
        .args(["hash", "--check", "list.sha256"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(exit_code(&check), 8);
}

/// Runs a copy of the binary at `bin`, from `cwd`.
fn export_with(bin: &Path, cwd: &Path, args: &[&str]) {
    let out = Process::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bundles_are_byte_identical_wherever_and_by_whichever_copy_they_are_made() {
    let dir = tempfile::tempdir().unwrap();
    let root = source(dir.path());
    // A second copy of the source under the same name elsewhere, a second copy of the
    // binary, run from a third directory with relative paths.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("deep/er/wx");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    copy_dir(&root, &copy);
    let bin_dir = tempfile::tempdir().unwrap();
    let bin_copy = bin_dir.path().join("chatvault-copy");
    std::fs::copy(assert_cmd::cargo::cargo_bin("chatvault"), &bin_copy).unwrap();
    let key = dir.path().join("case.key");
    run_ok(&["keygen", key.to_str().unwrap()]);
    let third = tempfile::tempdir().unwrap();
    std::fs::copy(&key, third.path().join("case.key")).unwrap();
    let copy_rel = copy.to_str().unwrap().to_string();
    for extra in [
        &[][..],
        &["--zip"][..],
        &["--anonymize", "--key-file", "KEY"][..],
        &["--anonymize", "--key-file", "KEY", "--zip"][..],
    ] {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        let key_abs = key.to_str().unwrap().to_string();
        let out_abs = first.path().join("case");
        let mut args: Vec<&str> = vec![
            "export",
            root.to_str().unwrap(),
            "--out",
            out_abs.to_str().unwrap(),
            "--fixed-time",
            "2025-07-01T00:00:00Z",
        ];
        args.extend(
            extra
                .iter()
                .map(|a| if *a == "KEY" { key_abs.as_str() } else { a }),
        );
        run_ok(&args);
        // Relative paths from the third directory (the key beside it).
        let out_rel = second.path().join("case");
        let out_rel = out_rel.to_str().unwrap();
        let mut args: Vec<&str> = vec![
            "export",
            &copy_rel,
            "--out",
            out_rel,
            "--fixed-time",
            "2025-07-01T00:00:00Z",
        ];
        args.extend(
            extra
                .iter()
                .map(|a| if *a == "KEY" { "case.key" } else { a }),
        );
        export_with(&bin_copy, third.path(), &args);
        let (a, b) = (tree_bytes(first.path()), tree_bytes(second.path()));
        assert_eq!(
            a.iter().map(|f| &f.0).collect::<Vec<_>>(),
            b.iter().map(|f| &f.0).collect::<Vec<_>>(),
            "{extra:?}"
        );
        let differing: Vec<&String> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x != y)
            .map(|(x, _)| &x.0)
            .collect();
        assert!(differing.is_empty(), "{extra:?}: differ: {differing:?}");
        let evidence = a
            .iter()
            .find(|(name, _)| name.ends_with("evidence.json"))
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned());
        if let Some(evidence) = evidence {
            for personal in [dir.path().to_str().unwrap(), "/tmp", "chatvault-copy"] {
                assert!(!evidence.contains(personal), "{personal} in {evidence}");
            }
        }
    }
}

#[test]
fn hash_check_refuses_fifos_and_devices_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = Process::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    std::fs::write(dir.path().join("real.txt"), "abc").unwrap();
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let list = dir.path().join("list.sha256");
    std::fs::write(
        &list,
        format!("{abc}  real.txt\n{abc}  pipe\n{abc}  /dev/zero\n"),
    )
    .unwrap();
    // A hang would block the test forever: run it with a deadline.
    let mut child = Process::new(assert_cmd::cargo::cargo_bin("chatvault"))
        .args(["hash", "--check", "list.sha256"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            panic!("hash --check hung on a FIFO or device");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(8), "{text}");
    assert!(text.contains("real.txt: OK"), "{text}");
    assert!(text.contains("not a regular file"), "{text}");
    // The list itself may not be a FIFO either, nor may `hash` read one.
    for args in [
        vec!["hash", "--check", fifo.to_str().unwrap()],
        vec!["hash", fifo.to_str().unwrap()],
        vec!["hash", "/dev/zero"],
    ] {
        let started = std::time::Instant::now();
        let out = run(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
