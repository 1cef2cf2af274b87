//! `chatvault verify` on bags chatvault did not make: built with bagit-python (the
//! reference implementation) and by hand for the broken ones, in every BagIt version from
//! 0.93 to 1.0, and checked against what RFC 8493 says of each: the exit code, and which
//! paths `--json` reports in which category.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use common::*;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha224, Sha256, Sha384, Sha512};

fn digest(algorithm: &str, data: &[u8]) -> String {
    match algorithm {
        "md5" => format!("{:x}", md5::Md5::digest(data)),
        "sha1" => format!("{:x}", Sha1::digest(data)),
        "sha224" => format!("{:x}", Sha224::digest(data)),
        "sha256" => format!("{:x}", Sha256::digest(data)),
        "sha384" => format!("{:x}", Sha384::digest(data)),
        "sha512" => format!("{:x}", Sha512::digest(data)),
        other => panic!("no algorithm {other}"),
    }
}

/// A bag to write by hand: everything a test may want to get wrong on purpose.
#[derive(Clone)]
struct Spec {
    version: &'static str,
    encoding: &'static str,
    algorithms: Vec<&'static str>,
    tag_algorithms: Vec<&'static str>,
    files: Vec<(String, Vec<u8>)>,
    /// bag-info.txt (package-info.txt before 0.96) lines; `None`: no such file.
    info: Option<String>,
    fetch: Option<String>,
}

impl Spec {
    fn new(version: &'static str) -> Spec {
        Spec {
            version,
            encoding: "UTF-8",
            algorithms: vec!["sha512"],
            tag_algorithms: vec!["sha512"],
            files: vec![
                ("data/hello.txt".into(), b"hello\n".to_vec()),
                ("data/sub/dir/report.csv".into(), b"a,b\n1,2\n".to_vec()),
            ],
            info: Some("Source-Organization: Test\nPayload-Oxum: OXUM\n".into()),
            fetch: None,
        }
    }

    fn info_file(&self) -> &'static str {
        if matches!(self.version, "0.93" | "0.94" | "0.95") {
            "package-info.txt"
        } else {
            "bag-info.txt"
        }
    }
}

/// Text in a tag file encoding.
fn encode(text: &str, encoding: &str) -> Vec<u8> {
    match encoding {
        "UTF-8" => text.as_bytes().to_vec(),
        "ISO-8859-1" => text
            .chars()
            .map(|c| u8::try_from(u32::from(c)).unwrap())
            .collect(),
        "UTF-16" => [0xFF, 0xFE]
            .into_iter()
            .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        other => panic!("no encoding {other}"),
    }
}

fn encode_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Writes the bag under `dir/name`: payload, manifests, bag-info, fetch, tag manifests.
fn make(dir: &Path, name: &str, spec: &Spec) -> PathBuf {
    let bag = dir.join(name);
    std::fs::create_dir_all(bag.join("data")).unwrap();
    let fetched: Vec<String> = spec
        .fetch
        .iter()
        .flat_map(|f| f.lines())
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_string))
        .collect();
    for (path, data) in &spec.files {
        if fetched.contains(path) {
            continue; // a hole
        }
        let full = bag.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
    let mut tags: Vec<(String, Vec<u8>)> = vec![(
        "bagit.txt".into(),
        format!(
            "BagIt-Version: {}\nTag-File-Character-Encoding: {}\n",
            spec.version, spec.encoding
        )
        .into_bytes(),
    )];
    for algorithm in &spec.algorithms {
        let text: String = spec
            .files
            .iter()
            .map(|(p, d)| format!("{}  {}\n", digest(algorithm, d), encode_path(p)))
            .collect();
        tags.push((
            format!("manifest-{algorithm}.txt"),
            encode(&text, spec.encoding),
        ));
    }
    if let Some(info) = &spec.info {
        let bytes: u64 = spec.files.iter().map(|(_, d)| d.len() as u64).sum();
        let info = info.replace("OXUM", &format!("{bytes}.{}", spec.files.len()));
        tags.push((spec.info_file().into(), encode(&info, spec.encoding)));
    }
    if let Some(fetch) = &spec.fetch {
        tags.push(("fetch.txt".into(), encode(fetch, spec.encoding)));
    }
    for (name, data) in &tags {
        std::fs::write(bag.join(name), data).unwrap();
    }
    for algorithm in &spec.tag_algorithms {
        let text: String = tags
            .iter()
            .map(|(n, d)| format!("{}  {n}\n", digest(algorithm, d)))
            .collect();
        std::fs::write(
            bag.join(format!("tagmanifest-{algorithm}.txt")),
            encode(&text, spec.encoding),
        )
        .unwrap();
    }
    bag
}

/// Rewrites the tag manifests after a test changed a tag file on purpose (so that the
/// change under test is the only fault).
fn reseal(bag: &Path, spec: &Spec) {
    let mut names: Vec<String> = std::fs::read_dir(bag)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("tagmanifest-") && n != "data")
        .collect();
    names.sort();
    for algorithm in &spec.tag_algorithms {
        let text: String = names
            .iter()
            .map(|n| {
                format!(
                    "{}  {n}\n",
                    digest(algorithm, &std::fs::read(bag.join(n)).unwrap())
                )
            })
            .collect();
        std::fs::write(
            bag.join(format!("tagmanifest-{algorithm}.txt")),
            encode(&text, spec.encoding),
        )
        .unwrap();
    }
}

struct Verified {
    code: i32,
    json: Value,
    stdout: String,
    stderr: String,
}

fn verify(bag: &Path, extra: &[&str]) -> Verified {
    let mut args = vec!["verify", bag.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Verified {
        code: exit_code(&out),
        json: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr,
    }
}

fn list(json: &Value, key: &str) -> Vec<String> {
    json[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn any_contains(json: &Value, key: &str, needle: &str) -> bool {
    list(json, key).iter().any(|s| s.contains(needle))
}

/// Valid: exit 0, nothing listed but (maybe) warnings.
fn assert_valid(v: &Verified, what: &str) {
    assert_eq!(v.code, 0, "{what}: {}", v.stdout);
    assert_eq!(v.json["result"], "valid", "{what}: {}", v.stdout);
    for key in [
        "modified",
        "missing",
        "extra",
        "unsafe_paths",
        "problems",
        "invalid",
    ] {
        assert!(list(&v.json, key).is_empty(), "{what}: {key}: {}", v.stdout);
    }
}

fn assert_invalid(v: &Verified, what: &str, needle: &str) {
    assert_eq!(v.code, 13, "{what}: {}", v.stdout);
    assert_eq!(v.json["result"], "invalid", "{what}");
    assert!(
        any_contains(&v.json, "invalid", needle),
        "{what}: no {needle:?} in {}",
        v.stdout
    );
}

fn with_warning(v: &Verified, what: &str, needle: &str) {
    assert_valid(v, what);
    assert!(
        any_contains(&v.json, "warnings", needle),
        "{what}: no {needle:?} in {}",
        v.stdout
    );
    assert!(
        v.stderr.contains("warning:"),
        "{what}: warnings go to stderr too"
    );
}

fn payload(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    let root = dir.join("payload");
    for (path, data) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, data).unwrap();
    }
    root
}

#[test]
fn every_algorithm_of_bags_made_by_bagit_python() {
    let Some(bagit) = tool("bagit.py") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: &[(&str, &[u8])] = &[
        ("a.txt", b"alpha\n"),
        ("sub/b.bin", &[0u8, 1, 2, 255]),
        ("name with spaces.txt", b"spaces"),
    ];
    let cases: [&[&str]; 7] = [
        &["md5"],
        &["sha1"],
        &["sha224"],
        &["sha256"],
        &["sha384"],
        &["sha512"],
        &["md5", "sha1", "sha512"],
    ];
    for (index, algorithms) in cases.iter().enumerate() {
        let bag = payload(dir.path(), files);
        let bag = {
            let moved = dir.path().join(format!("bag{index}"));
            std::fs::rename(&bag, &moved).unwrap();
            moved
        };
        let mut cmd = Process::new(&bagit);
        for algorithm in *algorithms {
            cmd.arg(format!("--{algorithm}"));
        }
        shell_ok(cmd.arg(&bag));
        let v = verify(&bag, &[]);
        assert_valid(&v, &format!("{algorithms:?}"));
        for algorithm in *algorithms {
            // 3 payload files and the tag files bagit.py lists (bagit.txt, bag-info.txt,
            // and every payload manifest).
            let tags = 2 + algorithms.len();
            assert_eq!(
                v.json["algorithms"][algorithm]["matched"],
                (3 + tags) as u64,
                "{algorithms:?}: {}",
                v.stdout
            );
        }
        assert!(v.stdout.contains("\"bagit_version\": \"0.97\""));

        // One flipped byte: modified, with the digest of every algorithm.
        let target = bag.join("data/sub/b.bin");
        std::fs::write(&target, [0u8, 1, 2, 254]).unwrap();
        let v = verify(&bag, &[]);
        assert_eq!(v.code, 8, "{}", v.stdout);
        assert_eq!(list(&v.json, "modified"), ["data/sub/b.bin"]);
        let finding = v.json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == "modified")
            .unwrap()
            .clone();
        for algorithm in *algorithms {
            assert_eq!(
                finding["digests"][algorithm]["actual"],
                digest(algorithm, &[0, 1, 2, 254]),
                "{finding}"
            );
            assert_eq!(
                finding["digests"][algorithm]["expected"],
                digest(algorithm, &[0, 1, 2, 255])
            );
        }
        // And bagit.py agrees it is broken.
        let out = Process::new(&bagit)
            .arg("--validate")
            .arg(&bag)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }
}

#[test]
fn a_zipped_bagit_python_bag_is_read_without_extracting() {
    let Some(bagit) = tool("bagit.py") else {
        return;
    };
    let Some(zip) = tool("zip") else { return };
    let dir = tempfile::tempdir().unwrap();
    let bag = payload(dir.path(), &[("x.txt", b"x"), ("y/z.txt", b"zzz")]);
    let bag = {
        let moved = dir.path().join("received");
        std::fs::rename(&bag, &moved).unwrap();
        moved
    };
    shell_ok(
        Process::new(&bagit)
            .args(["--sha256", "--sha512"])
            .arg(&bag),
    );
    shell_ok(
        Process::new(&zip)
            .args(["-qr", "received.zip", "received"])
            .current_dir(dir.path()),
    );
    let zipped = dir.path().join("received.zip");
    std::fs::remove_dir_all(&bag).unwrap();
    let v = verify(&zipped, &[]);
    assert_valid(&v, "zip");
    assert_eq!(v.json["kind"], "zip");
    assert!(!bag.exists(), "nothing was extracted");
}

#[test]
fn every_version_from_0_93_to_1_0() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["0.93", "0.94", "0.95", "0.96", "0.97", "1.0"] {
        let spec = Spec::new(version);
        let bag = make(dir.path(), &format!("v{version}"), &spec);
        let v = verify(&bag, &[]);
        assert_valid(&v, version);
        assert_eq!(v.json["bagit_version"], version);
        assert_eq!(
            v.json["counts"]["matched"],
            2 + 3,
            "{version}: {}",
            v.stdout
        );

        // The metadata file of the version is read: a wrong Payload-Oxum is found there.
        let info = bag.join(spec.info_file());
        let text = std::fs::read_to_string(&info).unwrap();
        std::fs::write(
            &info,
            text.replace("Payload-Oxum: 14.2", "Payload-Oxum: 14.3"),
        )
        .unwrap();
        reseal(&bag, &spec);
        let v = verify(&bag, &[]);
        assert_eq!(v.code, 8, "{version}: {}", v.stdout);
        assert!(
            any_contains(&v.json, "problems", "Payload-Oxum is 14.3"),
            "{}",
            v.stdout
        );
    }
}

#[test]
fn names_encoded_spaces_and_escapable_characters() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("1.0");
    spec.algorithms = vec!["sha256", "md5"];
    spec.files = vec![
        ("data/line\nfeed.txt".into(), b"lf".to_vec()),
        ("data/carriage\rreturn.txt".into(), b"cr".to_vec()),
        ("data/100%.txt".into(), b"percent".to_vec()),
        (
            "data/%7Edir/literal.txt".into(),
            b"kept as written".to_vec(),
        ),
        ("data/dir1/~tilde inside.txt".into(), b"tilde".to_vec()),
        ("data/test file with spaces.txt".into(), b"spaces".to_vec()),
        ("data/tab\there.txt".into(), b"tab".to_vec()),
        ("data/ünïcödé 报价单.txt".into(), b"unicode".to_vec()),
    ];
    let bag = make(dir.path(), "names", &spec);
    let manifest = std::fs::read_to_string(bag.join("manifest-sha256.txt")).unwrap();
    assert!(manifest.contains("data/line%0Afeed.txt") && manifest.contains("data/100%25.txt"));
    assert!(manifest.contains("data/%257Edir/literal.txt"));
    let v = verify(&bag, &[]);
    assert_valid(&v, "encoded names");
    assert_eq!(v.json["counts"]["matched"], 8 + 4);
    // An encoded name that does not match the file on disk is missing, not guessed.
    std::fs::rename(
        bag.join("data/line\nfeed.txt"),
        bag.join("data/line%0Afeed.txt"),
    )
    .unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(v.code, 8);
    assert_eq!(list(&v.json, "missing"), ["data/line\nfeed.txt"]);
    assert_eq!(list(&v.json, "extra"), ["data/line%0Afeed.txt"]);
}

#[test]
fn a_bag_in_a_bag_a_minimal_bag_and_one_made_with_md5sum() {
    let dir = tempfile::tempdir().unwrap();
    let inner = make(dir.path(), "inner", &Spec::new("0.97"));
    let mut outer = Spec::new("1.0");
    outer.files = walkdir::WalkDir::new(&inner)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(&inner).unwrap().to_str().unwrap();
            (
                format!("data/inner/{rel}"),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    let bag = make(dir.path(), "outer", &outer);
    let v = verify(&bag, &[]);
    assert_valid(&v, "bag in a bag");
    assert_eq!(v.json["counts"]["matched"], outer.files.len() as u64 + 3);

    // Minimal: bagit.txt, one manifest, the payload; no bag-info, no tag manifest.
    let mut minimal = Spec::new("1.0");
    minimal.info = None;
    minimal.tag_algorithms = vec![];
    let bag = make(dir.path(), "minimal", &minimal);
    assert_valid(&verify(&bag, &[]), "minimal");
    // An empty payload is a bag too.
    minimal.files.clear();
    let bag = make(dir.path(), "empty", &minimal);
    assert_valid(&verify(&bag, &[]), "empty payload");

    // md5sum's binary-mode "*": accepted, with a warning (RFC 8493 §7.2).
    let mut md5sum = Spec::new("0.97");
    md5sum.algorithms = vec!["md5"];
    md5sum.tag_algorithms = vec![];
    let bag = make(dir.path(), "md5sum", &md5sum);
    let manifest = std::fs::read_to_string(bag.join("manifest-md5.txt")).unwrap();
    std::fs::write(
        bag.join("manifest-md5.txt"),
        manifest.replace("  data/", " *data/"),
    )
    .unwrap();
    with_warning(&verify(&bag, &[]), "md5sum", "md5sum");
}

#[test]
fn a_holey_bag_is_valid_but_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("1.0");
    spec.files
        .push(("data/large/scan.tif".into(), b"tiff bytes".to_vec()));
    spec.fetch = Some(
        "https://example.org/scan.tif 10 data/large/scan.tif\nhttps://example.org/h - data/hello.txt\n"
            .into(),
    );
    // make() leaves out every file fetch.txt names; put hello.txt back (present fetched
    // files are verified).
    let bag = make(dir.path(), "holey", &spec);
    std::fs::write(bag.join("data/hello.txt"), b"hello\n").unwrap();
    let v = verify(&bag, &[]);
    assert_valid(&v, "holey");
    assert_eq!(list(&v.json, "fetch_pending"), ["data/large/scan.tif"]);
    assert!(v.stdout.contains("\"fetch_pending\": 1"));
    let human = run(&["verify", bag.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("fetch-pending 1") && text.contains("still to be fetched"),
        "{text}"
    );
    assert_eq!(exit_code(&human), 0);

    // A fetched file that is present is verified like any other.
    std::fs::write(bag.join("data/hello.txt"), b"HELLO\n").unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(v.code, 8);
    assert_eq!(list(&v.json, "modified"), ["data/hello.txt"]);

    // fetch.txt may list only files every payload manifest lists.
    let mut spec = Spec::new("1.0");
    spec.fetch = Some("https://example.org/x - data/not-listed.txt\n".into());
    let bag = make(dir.path(), "fetch-unlisted", &spec);
    assert_invalid(
        &verify(&bag, &[]),
        "fetch unlisted",
        "not every payload manifest lists",
    );
}

#[test]
fn iso_8859_1_and_utf_16_tag_files() {
    let dir = tempfile::tempdir().unwrap();
    for encoding in ["ISO-8859-1", "UTF-16"] {
        let mut spec = Spec::new("0.97");
        spec.encoding = encoding;
        spec.files
            .push(("data/café crème.txt".into(), b"latte".to_vec()));
        spec.info = Some("Contact-Name: Jürgen Müller\nPayload-Oxum: OXUM\n".into());
        let bag = make(dir.path(), encoding, &spec);
        let v = verify(&bag, &[]);
        assert_valid(&v, encoding);
        assert_eq!(
            v.json["counts"]["matched"],
            3 + 3,
            "{encoding}: {}",
            v.stdout
        );
    }
    // A UTF-8 tag file must not begin with a byte order mark.
    let spec = Spec::new("1.0");
    let bag = make(dir.path(), "bom-manifest", &spec);
    let manifest = bag.join("manifest-sha512.txt");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(&manifest).unwrap());
    std::fs::write(&manifest, bytes).unwrap();
    reseal(&bag, &spec);
    assert_invalid(&verify(&bag, &[]), "BOM in manifest", "byte order mark");
}

#[test]
fn broken_declarations_are_invalid() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, needle) in [
        (
            "bom",
            "\u{feff}BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "byte order mark",
        ),
        (
            "space-before-colon",
            "BagIt-Version : 1.0\nTag-File-Character-Encoding : UTF-8\n",
            "stray whitespace",
        ),
        (
            "trailing-space",
            "BagIt-Version: 1.0 \nTag-File-Character-Encoding: UTF-8\n",
            "stray whitespace",
        ),
        (
            "dot-97",
            "BagIt-Version: .97\nTag-File-Character-Encoding: UTF-8\n",
            "not M.N",
        ),
        (
            "unknown-version",
            "BagIt-Version: 0.98\nTag-File-Character-Encoding: UTF-8\n",
            "not a BagIt version",
        ),
        (
            "no-encoding",
            "BagIt-Version: 0.97\n",
            "no Tag-File-Character-Encoding",
        ),
        (
            "three-lines",
            "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\nExtra: 1\n",
            "exactly two",
        ),
    ] {
        let spec = Spec::new("1.0");
        let bag = make(dir.path(), name, &spec);
        std::fs::write(bag.join("bagit.txt"), text).unwrap();
        reseal(&bag, &spec);
        assert_invalid(&verify(&bag, &[]), name, needle);
    }
    // No bagit.txt: not a bag at all.
    let bag = make(dir.path(), "no-bagit", &Spec::new("1.0"));
    std::fs::remove_file(bag.join("bagit.txt")).unwrap();
    let out = run(&["verify", bag.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 9);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no bagit.txt"));
}

#[test]
fn bag_info_is_optional_unless_listed() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["0.95", "0.97", "1.0"] {
        let mut spec = Spec::new(version);
        spec.info = None;
        let bag = make(dir.path(), &format!("no-info-{version}"), &spec);
        assert_valid(&verify(&bag, &[]), version);
        // Listed in the tag manifest but gone: missing.
        let spec = Spec::new(version);
        let bag = make(dir.path(), &format!("info-gone-{version}"), &spec);
        std::fs::remove_file(bag.join(spec.info_file())).unwrap();
        let v = verify(&bag, &[]);
        assert_eq!(v.code, 8, "{version}: {}", v.stdout);
        assert_eq!(list(&v.json, "missing"), [spec.info_file()]);
    }
    // 1.0 labels have no whitespace before the colon; 0.97 ones may.
    for (version, code) in [("0.97", 0), ("1.0", 13)] {
        let mut spec = Spec::new(version);
        spec.info =
            Some("Contact-Name : Jane\nPayload-Oxum:   OXUM\nLong: a\n  continued\n".into());
        let bag = make(dir.path(), &format!("colon-{version}"), &spec);
        let v = verify(&bag, &[]);
        assert_eq!(v.code, code, "{version}: {}", v.stdout);
    }
}

#[test]
fn corrupted_payload_and_tag_files_and_extra_files_are_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("1.0");
    let bag = make(dir.path(), "payload", &spec);
    std::fs::write(bag.join("data/hello.txt"), b"jello\n").unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(
        (v.code, list(&v.json, "modified")),
        (8, vec!["data/hello.txt".to_string()])
    );

    let bag = make(dir.path(), "tag", &spec);
    let info = bag.join("bag-info.txt");
    let text = std::fs::read_to_string(&info).unwrap();
    std::fs::write(&info, text.replace("Test", "Tost")).unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(
        (v.code, list(&v.json, "modified")),
        (8, vec!["bag-info.txt".to_string()])
    );

    let bag = make(dir.path(), "extra", &spec);
    std::fs::write(bag.join("data/sub/added.txt"), b"new").unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(
        (v.code, list(&v.json, "extra")),
        (8, vec!["data/sub/added.txt".to_string()])
    );
    assert!(any_contains(&v.json, "problems", "Payload-Oxum"));
    // An unlisted tag file is allowed in any bag (only chatvault's list every one).
    let bag = make(dir.path(), "extra-tag", &spec);
    std::fs::write(bag.join("notes.txt"), b"about this bag").unwrap();
    assert_valid(&verify(&bag, &[]), "extra tag file");

    let bag = make(dir.path(), "missing", &spec);
    std::fs::remove_file(bag.join("data/sub/dir/report.csv")).unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(
        (v.code, list(&v.json, "missing")),
        (8, vec!["data/sub/dir/report.csv".to_string()])
    );
}

#[test]
fn a_file_missing_from_one_of_two_manifests() {
    let dir = tempfile::tempdir().unwrap();
    for (version, code) in [("1.0", 13), ("0.97", 0)] {
        let mut spec = Spec::new(version);
        spec.algorithms = vec!["sha256", "sha512"];
        let bag = make(dir.path(), &format!("one-of-two-{version}"), &spec);
        let manifest = bag.join("manifest-sha512.txt");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let kept: String = text
            .lines()
            .filter(|l| !l.contains("hello"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&manifest, kept).unwrap();
        reseal(&bag, &spec);
        let v = verify(&bag, &[]);
        assert_eq!(v.code, code, "{version}: {}", v.stdout);
        if code == 13 {
            assert!(any_contains(
                &v.json,
                "invalid",
                "manifest-sha512.txt does not list data/hello.txt"
            ));
        }
        // The file is still hashed with the manifest that lists it.
        assert_eq!(v.json["algorithms"]["sha256"]["matched"], 2, "{}", v.stdout);
    }
    // Listed in the weaker manifest only (the one read second) is found too.
    let mut spec = Spec::new("1.0");
    spec.algorithms = vec!["sha256", "sha512"];
    let bag = make(dir.path(), "second-only", &spec);
    let manifest = bag.join("manifest-sha512.txt");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.lines().next().unwrap().to_string() + "\n").unwrap();
    reseal(&bag, &spec);
    let v = verify(&bag, &[]);
    assert_invalid(
        &v,
        "second only",
        "manifest-sha512.txt does not list data/sub/dir/report.csv",
    );
    std::fs::write(bag.join("data/sub/dir/report.csv"), b"changed").unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(
        (v.code, list(&v.json, "modified")),
        (8, vec!["data/sub/dir/report.csv".to_string()])
    );
}

#[test]
fn a_path_listed_twice() {
    let dir = tempfile::tempdir().unwrap();
    for (version, same, code) in [
        ("0.97", true, 0),
        ("1.0", true, 13),
        ("0.97", false, 13),
        ("1.0", false, 13),
    ] {
        let mut spec = Spec::new(version);
        spec.algorithms = vec!["sha256", "sha512"];
        let bag = make(dir.path(), &format!("twice-{version}-{same}"), &spec);
        for manifest in ["manifest-sha256.txt", "manifest-sha512.txt"] {
            let path = bag.join(manifest);
            let text = std::fs::read_to_string(&path).unwrap();
            let first = text.lines().next().unwrap();
            let again = if same {
                first.to_string()
            } else {
                format!("{}{}", "0".repeat(16), &first[16..])
            };
            std::fs::write(&path, format!("{text}{again}\n")).unwrap();
        }
        reseal(&bag, &spec);
        let v = verify(&bag, &[]);
        assert_eq!(v.code, code, "{version} same={same}: {}", v.stdout);
        let needle = if same { "again" } else { "different checksum" };
        let key = if code == 0 { "warnings" } else { "invalid" };
        assert!(
            any_contains(&v.json, key, needle),
            "{version} {same}: {}",
            v.stdout
        );
        assert!(list(&v.json, "modified").is_empty());
    }
}

#[test]
fn out_of_scope_paths_in_manifests_and_fetch_are_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    // A real file outside the bag, with its true digest in the manifest: a validator that
    // opened it would call it "matched".
    let secret = b"outside the bag";
    std::fs::write(dir.path().join("outside.txt"), secret).unwrap();
    let forms = [
        "../outside.txt",
        "data/../../outside.txt",
        "data/sub/../../../outside.txt",
        "\\.\\./outside.txt",
        &format!("{}", dir.path().join("outside.txt").display()),
        "~/outside.txt",
        "~root/outside.txt",
        "C:\\Windows\\System32\\setx.exe",
        "c:/outside.txt",
        "\\\\server\\share\\outside.txt",
        "\\\\?\\UNC\\server\\outside.txt",
        "//server/share/outside.txt",
        "%HomeDrive%\\Windows\\setx.exe",
        "data\\..\\..\\outside.txt",
    ];
    for (index, form) in forms.iter().enumerate() {
        let spec = Spec::new("0.97");
        let bag = make(dir.path(), &format!("scope-{index}"), &spec);
        let manifest = bag.join("manifest-sha512.txt");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(
            &manifest,
            format!("{text}{}  {form}\n", digest("sha512", secret)),
        )
        .unwrap();
        reseal(&bag, &spec);
        let v = verify(&bag, &[]);
        assert_invalid(&v, form, "out of scope");
        assert_eq!(v.json["counts"]["matched"], 2 + 3, "{form}: {}", v.stdout);
        assert_eq!(v.json["counts"]["unsafe"], 1, "{form}: {}", v.stdout);

        let mut spec = Spec::new("0.97");
        spec.fetch = Some(format!("https://example.org/x - {form}\n"));
        let bag = make(dir.path(), &format!("fetch-scope-{index}"), &spec);
        assert_invalid(&verify(&bag, &[]), &format!("fetch {form}"), "out of scope");
    }
    assert_eq!(
        std::fs::read(dir.path().join("outside.txt")).unwrap(),
        secret
    );
}

#[test]
fn each_warning_case_is_valid_and_said() {
    let dir = tempfile::tempdir().unwrap();
    // The same file twice with the same checksum before 1.0: see a_path_listed_twice.
    // Listed as HELLO.txt, stored as hello.txt (a bag made on macOS or Windows).
    let spec = Spec::new("0.97");
    let bag = make(dir.path(), "case", &spec);
    let path = bag.join("manifest-sha512.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("data/hello.txt", "data/HELLO.txt")).unwrap();
    reseal(&bag, &spec);
    with_warning(&verify(&bag, &[]), "case", "differ only by case");

    // Listed in NFC, stored in NFD (a bag that passed through macOS).
    let mut spec = Spec::new("1.0");
    spec.files
        .push(("data/Nu\u{301}n\u{303}ez.txt".into(), b"name".to_vec()));
    let bag = make(dir.path(), "normalization", &spec);
    let path = bag.join("manifest-sha512.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("Nu\u{301}n\u{303}ez", "N\u{fa}\u{f1}ez"),
    )
    .unwrap();
    reseal(&bag, &spec);
    let v = verify(&bag, &[]);
    with_warning(&v, "normalization", "Unicode normalization");
    assert!(list(&v.json, "extra").is_empty());
    // Two files that differ only by case are both listed: valid, with a warning.
    let mut spec = Spec::new("1.0");
    spec.files
        .push(("data/Hello.txt".into(), b"other".to_vec()));
    let bag = make(dir.path(), "two-cases", &spec);
    with_warning(&verify(&bag, &[]), "two cases", "differ only by case");

    // Files the operating system makes.
    let mut spec = Spec::new("0.97");
    spec.files.push(("data/.DS_Store".into(), Vec::new()));
    spec.files.push(("data/sub/Thumbs.db".into(), Vec::new()));
    let bag = make(dir.path(), "os-files", &spec);
    let v = verify(&bag, &[]);
    with_warning(&v, "os files", ".DS_Store");
    assert!(any_contains(&v.json, "warnings", "Thumbs.db"));

    // ./ before a path.
    let spec = Spec::new("0.97");
    let bag = make(dir.path(), "dot-slash", &spec);
    let path = bag.join("manifest-sha512.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("  data/", "  ./data/")).unwrap();
    reseal(&bag, &spec);
    with_warning(&verify(&bag, &[]), "./", "\"./\"");
}

#[test]
fn fast_and_completeness_only_skip_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = Spec::new("1.0");
    let bag = make(dir.path(), "fast", &spec);
    // Same size, other bytes: only hashing can tell.
    std::fs::write(bag.join("data/hello.txt"), b"jello\n").unwrap();
    for mode in ["--fast", "--completeness-only"] {
        let v = verify(&bag, &[mode]);
        assert_eq!(v.code, 0, "{mode}: {}", v.stdout);
        assert_eq!(v.json["result"], "complete");
        assert_eq!(v.json["counts"]["unhashed"], 2 + 3);
    }
    assert_eq!(verify(&bag, &[]).code, 8);
    // A missing file is found without hashing.
    std::fs::remove_file(bag.join("data/hello.txt")).unwrap();
    for mode in ["--fast", "--completeness-only"] {
        let v = verify(&bag, &[mode]);
        assert_eq!(v.code, 8, "{mode}: {}", v.stdout);
        assert_eq!(list(&v.json, "missing"), ["data/hello.txt"]);
    }
    // --fast needs a Payload-Oxum; --completeness-only does not.
    let mut spec = Spec::new("1.0");
    spec.info = None;
    let bag = make(dir.path(), "no-oxum", &spec);
    assert_invalid(
        &verify(&bag, &["--fast"]),
        "fast without oxum",
        "Payload-Oxum",
    );
    assert_eq!(verify(&bag, &["--completeness-only"]).code, 0);
}

#[test]
fn a_manifest_of_an_unknown_algorithm_is_not_trusted_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("1.0");
    spec.tag_algorithms = vec![];
    let bag = make(dir.path(), "sha3", &spec);
    std::fs::rename(
        bag.join("manifest-sha512.txt"),
        bag.join("manifest-sha3512.txt"),
    )
    .unwrap();
    let v = verify(&bag, &[]);
    assert_invalid(&v, "only an unknown algorithm", "nothing can be verified");
    // No payload manifest at all.
    std::fs::remove_file(bag.join("manifest-sha3512.txt")).unwrap();
    assert_invalid(&verify(&bag, &[]), "no manifest", "no payload manifest");
}

#[test]
fn symlinks_in_a_directory_bag_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = Spec::new("1.0");
    spec.files
        .push(("data/link.txt".into(), b"outside the bag".to_vec()));
    let bag = make(dir.path(), "symlink", &spec);
    std::fs::write(dir.path().join("target.txt"), b"outside the bag").unwrap();
    std::fs::remove_file(bag.join("data/link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("target.txt"), bag.join("data/link.txt")).unwrap();
    let v = verify(&bag, &[]);
    assert_eq!(v.code, 8, "{}", v.stdout);
    assert_eq!(list(&v.json, "unsafe_paths"), ["data/link.txt"]);
    assert_eq!(v.json["counts"]["matched"], 2 + 3);
}
