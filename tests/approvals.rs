//! Two-person approval of a cleanup: `keygen --sign`, `approve`, and `clean --apply
//! --require-approvals N --trusted-keys DIR` on a simulated source. Every refusal is checked
//! to have touched nothing; the unit tests of `retention::approval` cover the formats.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A simulated WeChat account with one dissolved group, its plan (hashed), three signers'
/// keys and a trusted-keys directory holding alice's and bob's public keys (not eve's).
struct Case {
    dir: tempfile::TempDir,
    root: PathBuf,
    plan: PathBuf,
    trusted: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let root = simulate(
            "wechat",
            dir.path(),
            "wx",
            &[
                "--groups",
                "3",
                "--messages",
                "600",
                "--days",
                "30",
                "--seed",
                "5",
            ],
        );
        let case = Case {
            plan: dir.path().join("plan.json"),
            trusted: dir.path().join("trusted"),
            root,
            dir,
        };
        case.make_plan(&case.plan, &[]);
        std::fs::create_dir(&case.trusted).unwrap();
        for name in ["alice", "bob", "eve"] {
            run_ok(&["keygen", "--sign", case.key(name).to_str().unwrap()]);
        }
        for name in ["alice", "bob"] {
            std::fs::copy(
                case.public_key(name),
                case.trusted.join(format!("{name}.pub")),
            )
            .unwrap();
        }
        case
    }

    fn make_plan(&self, out: &Path, extra: &[&str]) {
        let mut args = vec![
            "plan",
            self.root.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--now",
            NOW,
            "--hash",
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
    }

    fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key"))
    }

    fn public_key(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.key.pub"))
    }

    fn sig(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("plan.json.approvals")
            .join(format!("{name}.sig"))
    }

    fn approve(&self, plan: &Path, key: &str, name: &str) -> std::process::Output {
        run(&[
            "approve",
            plan.to_str().unwrap(),
            "--key",
            self.key(key).to_str().unwrap(),
            "--name",
            name,
        ])
    }

    fn clean(&self, extra: &[&str]) -> std::process::Output {
        let mut args = vec![
            "clean",
            self.plan.to_str().unwrap(),
            "--apply",
            "--yes",
            "--root",
            self.root.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    }

    fn clean_requiring(&self, n: &str) -> std::process::Output {
        self.clean(&[
            "--require-approvals",
            n,
            "--trusted-keys",
            self.trusted.to_str().unwrap(),
        ])
    }

    fn deletes(&self) -> Vec<String> {
        let plan: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.plan).unwrap()).unwrap();
        plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "delete")
            .map(|e| e["path"].as_str().unwrap().to_string())
            .collect()
    }

    /// Runs a clean that must be refused with `code`, and checks that nothing changed.
    fn refused(&self, out: std::process::Output, code: i32, says: &str) -> String {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            exit_code(&out),
            code,
            "{stderr}\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(stderr.contains(says), "expected {says:?} in: {stderr}");
        stderr
    }
}

fn both(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn zero_one_and_two_signatures() {
    let case = Case::new();
    let before = snapshot(&case.root);
    let deletes = case.deletes();
    assert!(deletes.len() > 5, "the dissolved group's media are planned");

    // 0 signatures: refused, nothing touched, no journal.
    let stderr = case.refused(case.clean_requiring("2"), 15, "approvals refused");
    assert!(stderr.contains("no approvals in"), "{stderr}");
    assert!(stderr.contains("nothing was touched"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);
    assert!(!case.dir.path().join("plan.json.journal").exists());

    // 1 signature of 2.
    run_ok(&[
        "approve",
        case.plan.to_str().unwrap(),
        "--key",
        case.key("alice").to_str().unwrap(),
        "--name",
        "alice",
    ]);
    let sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.sig("alice")).unwrap()).unwrap();
    assert_eq!(sig["format"], "chatvault-approval-v1");
    assert_eq!(sig["signer"], "alice");
    assert_eq!(sig["plan_sha256"], sha256_file(&case.plan));
    let public_text = std::fs::read_to_string(case.public_key("alice")).unwrap();
    assert_eq!(
        public_text,
        format!(
            "chatvault-ed25519-public-v1\n{}\n",
            sig["public_key"].as_str().unwrap()
        )
    );
    let stderr = case.refused(case.clean_requiring("2"), 15, "1 did");
    assert!(stderr.contains("2 distinct trusted key(s)"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);

    // A dry run says so and touches nothing either.
    let dry = run_ok(&[
        "clean",
        case.plan.to_str().unwrap(),
        "--require-approvals",
        "2",
        "--trusted-keys",
        case.trusted.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&dry.stdout).contains("--apply would be refused"),
        "{}",
        both(&dry)
    );
    // 1 of 1 is enough.
    let one = run_ok(&[
        "clean",
        case.plan.to_str().unwrap(),
        "--require-approvals",
        "1",
        "--trusted-keys",
        case.trusted.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&one.stdout).contains("approvals: 1 of 1 required"));
    assert_eq!(snapshot(&case.root), before);

    // 2 signatures by 2 trusted keys: the clean runs, and the journal names the approvals.
    let out = case.approve(&case.plan, "bob", "bob");
    assert!(out.status.success(), "{}", both(&out));
    let out = case.clean_requiring("2");
    assert!(out.status.success(), "{}", both(&out));
    for path in &deletes {
        assert!(!case.root.join(path).exists(), "{path}");
    }
    let journal = std::fs::read_to_string(case.dir.path().join("plan.json.journal")).unwrap();
    let header: serde_json::Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    let approvals = &header["approvals"];
    assert_eq!(approvals["required"], 2);
    assert_eq!(approvals["plan_sha256"], sha256_file(&case.plan));
    let signatures = approvals["signatures"].as_array().unwrap();
    assert_eq!(signatures.len(), 2);
    for (signature, name) in signatures.iter().zip(["alice", "bob"]) {
        assert_eq!(signature["signer"], name);
        let sig: serde_json::Value =
            serde_json::from_slice(&std::fs::read(case.sig(name)).unwrap()).unwrap();
        assert_eq!(signature["public_key"], sig["public_key"]);
        assert_eq!(signature["file_sha256"], sha256_file(&case.sig(name)));
        assert!(signature["trusted_key_file"]
            .as_str()
            .unwrap()
            .ends_with(&format!("trusted/{name}.pub")));
    }
}

#[test]
fn two_signatures_by_one_key_count_once() {
    let case = Case::new();
    let before = snapshot(&case.root);
    for name in ["alice", "alice-again"] {
        let out = case.approve(&case.plan, "alice", name);
        assert!(out.status.success(), "{}", both(&out));
    }
    let out = case.clean_requiring("2");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not counted: the same key as alice.sig"),
        "{}",
        both(&out)
    );
    case.refused(out, 15, "1 did");
    assert_eq!(snapshot(&case.root), before);
}

#[test]
fn an_untrusted_key_does_not_count() {
    let case = Case::new();
    let before = snapshot(&case.root);
    for (key, name) in [("alice", "alice"), ("eve", "eve")] {
        assert!(case.approve(&case.plan, key, name).status.success());
    }
    let stderr = case.refused(case.clean_requiring("2"), 15, "1 did");
    assert!(stderr.contains("eve.sig: eve"), "{stderr}");
    assert!(stderr.contains("is not in"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);
}

#[test]
fn a_signature_of_another_plan_does_not_count() {
    let case = Case::new();
    let before = snapshot(&case.root);
    // Bob approves another plan of the same root (made with a policy file of its own); his
    // .sig is then put beside this plan.
    let policy = case.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "version = 1
",
    )
    .unwrap();
    let other = case.dir.path().join("other.json");
    case.make_plan(&other, &["--policy", policy.to_str().unwrap()]);
    assert_ne!(sha256_file(&other), sha256_file(&case.plan));
    assert!(case.approve(&other, "bob", "bob").status.success());
    assert!(case.approve(&case.plan, "alice", "alice").status.success());
    std::fs::copy(
        case.dir.path().join("other.json.approvals/bob.sig"),
        case.sig("bob"),
    )
    .unwrap();
    let stderr = case.refused(case.clean_requiring("2"), 15, "1 did");
    assert!(stderr.contains("it approves another plan"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);
}

#[test]
fn a_plan_changed_after_signing_is_refused() {
    let case = Case::new();
    let before = snapshot(&case.root);
    assert!(case.approve(&case.plan, "alice", "alice").status.success());
    assert!(case.approve(&case.plan, "bob", "bob").status.success());

    // Edited without its sidecar: refused as any tampered plan.
    let text = std::fs::read_to_string(&case.plan).unwrap();
    let edited = text.replacen("\"review\"", "\"delete\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&case.plan, &edited).unwrap();
    case.refused(case.clean_requiring("2"), 10, "does not match its sidecar");

    // Edited and its sidecar recomputed, as anyone can: the approvals are of the old digest.
    std::fs::write(
        case.dir.path().join("plan.json.sha256"),
        format!("{}  plan.json\n", sha256_file(&case.plan)),
    )
    .unwrap();
    let stderr = case.refused(case.clean_requiring("2"), 15, "0 did");
    assert!(stderr.contains("it approves another plan"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);

    // A .sig whose digest was edited to match no longer verifies: refused outright.
    let mut sig: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.sig("alice")).unwrap()).unwrap();
    sig["plan_sha256"] = sha256_file(&case.plan).into();
    std::fs::write(case.sig("alice"), serde_json::to_vec_pretty(&sig).unwrap()).unwrap();
    let stderr = case.refused(case.clean_requiring("1"), 15, "does not verify");
    assert!(stderr.contains("alice.sig"), "{stderr}");
    assert_eq!(snapshot(&case.root), before);
}

#[test]
fn malformed_signature_files_refuse_with_their_name() {
    let case = Case::new();
    let before = snapshot(&case.root);
    assert!(case.approve(&case.plan, "alice", "alice").status.success());
    assert!(case.approve(&case.plan, "bob", "bob").status.success());
    let good = std::fs::read(case.sig("bob")).unwrap();
    let cases: [(&str, &[u8], &str); 4] = [
        ("garbage", b"not json at all", "not an approval (JSON)"),
        ("empty", b"", "not an approval (JSON)"),
        (
            "extra",
            br#"{"format":"chatvault-approval-v1","signer":"extra","public_key":"","plan_sha256":"","signed_at":"","signature":"","note":"hi"}"#,
            "unknown field",
        ),
        ("renamed", &good, "signed by \"bob\" but named \"renamed\".sig"),
    ];
    for (name, bytes, says) in cases {
        let path = case.sig(name);
        std::fs::write(&path, bytes).unwrap();
        // Even with enough good approvals beside it.
        let stderr = case.refused(case.clean_requiring("2"), 15, says);
        assert!(stderr.contains(&format!("{name}.sig")), "{stderr}");
        assert_eq!(snapshot(&case.root), before);
        std::fs::remove_file(&path).unwrap();
    }
    assert!(case.clean_requiring("2").status.success());
}

#[test]
fn usage_errors_and_bad_keys() {
    let case = Case::new();
    let before = snapshot(&case.root);
    let trusted = case.trusted.to_str().unwrap();

    // --require-approvals needs --trusted-keys; --trusted-keys alone says nothing.
    let out = case.clean(&["--require-approvals", "2"]);
    case.refused(out, 2, "--trusted-keys");
    let out = case.clean(&["--trusted-keys", trusted]);
    case.refused(out, 2, "--require-approvals N");
    let out = case.clean(&["--require-approvals", "two", "--trusted-keys", trusted]);
    case.refused(out, 2, "two");
    let empty = case.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = case.clean(&[
        "--require-approvals",
        "1",
        "--trusted-keys",
        empty.to_str().unwrap(),
    ]);
    case.refused(out, 2, "no trusted keys in");
    let missing = case.dir.path().join("missing");
    let out = case.clean(&[
        "--require-approvals",
        "1",
        "--trusted-keys",
        missing.to_str().unwrap(),
    ]);
    case.refused(out, 3, "missing");
    std::fs::write(
        case.trusted.join("broken.pub"),
        "chatvault-ed25519-public-v1\nxyz\n",
    )
    .unwrap();
    let out = case.clean_requiring("1");
    case.refused(out, 2, "broken.pub");
    std::fs::remove_file(case.trusted.join("broken.pub")).unwrap();
    assert_eq!(snapshot(&case.root), before);

    // Keys: never overwritten; a secret key others can read is refused; names are checked.
    let out = run(&["keygen", "--sign", case.key("alice").to_str().unwrap()]);
    case.refused(out, 7, "already exists");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(case.key("eve"), std::fs::Permissions::from_mode(0o644)).unwrap();
    case.refused(case.approve(&case.plan, "eve", "eve"), 2, "chmod 600");
    std::fs::write(case.key("bad"), "hello\n").unwrap();
    std::fs::set_permissions(case.key("bad"), std::fs::Permissions::from_mode(0o600)).unwrap();
    case.refused(
        case.approve(&case.plan, "bad", "bad"),
        2,
        "chatvault-ed25519-secret-v1",
    );
    case.refused(case.approve(&case.plan, "nokey", "x"), 3, "nokey.key");
    case.refused(
        case.approve(&case.plan, "alice", "../alice"),
        2,
        "invalid signer name",
    );
    // A public key is not a signing key.
    let out = run(&[
        "approve",
        case.plan.to_str().unwrap(),
        "--key",
        case.public_key("alice").to_str().unwrap(),
        "--name",
        "alice",
    ]);
    case.refused(out, 2, "it is a chatvault-ed25519-public-v1 file");
    assert!(!case.sig("alice").exists());

    // Approving again: idempotent for the same plan; another plan's approval is kept
    // unless --replace.
    assert!(case.approve(&case.plan, "alice", "alice").status.success());
    let out = case.approve(&case.plan, "alice", "alice");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already approved"),
        "{}",
        both(&out)
    );
    case.refused(case.approve(&case.plan, "bob", "alice"), 7, "--replace");
    let out = run(&[
        "approve",
        case.plan.to_str().unwrap(),
        "--key",
        case.key("bob").to_str().unwrap(),
        "--name",
        "alice",
        "--replace",
    ]);
    assert!(out.status.success(), "{}", both(&out));

    // An unverified plan is not signed.
    std::fs::remove_file(case.dir.path().join("plan.json.sha256")).unwrap();
    case.refused(case.approve(&case.plan, "bob", "bob"), 10, "sidecar");
    assert!(!case.sig("bob").exists());
    assert_eq!(snapshot(&case.root), before);
}

#[test]
fn a_policy_requires_approvals_for_chosen_group_types() {
    let case = Case::new();
    let before = snapshot(&case.root);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&case.plan).unwrap()).unwrap();
    let groups = plan["header"]["groups"].as_array().unwrap();
    let dissolved_type = groups
        .iter()
        .find(|g| !g["dissolved_at"].is_null())
        .map(|g| g["group_type"].as_str().unwrap().to_string())
        .unwrap();
    let other_type = ["education", "ecommerce", "commercial", "family", "work"]
        .into_iter()
        .find(|t| *t != dissolved_type)
        .unwrap();

    // Another type's requirement does not apply: this plan deletes none of its files.
    let lenient = case.dir.path().join("lenient.toml");
    std::fs::write(
        &lenient,
        format!("[approvals]\ngroup_types = {{ {other_type} = 2 }}\n"),
    )
    .unwrap();
    let lenient_plan = case.dir.path().join("lenient.json");
    case.make_plan(&lenient_plan, &["--policy", lenient.to_str().unwrap()]);
    let dry = run_ok(&["clean", lenient_plan.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&dry.stdout).contains("approval"));

    // The dissolved group's type requires 2: clean --apply without keys is refused, and
    // with one approval too.
    let strict = case.dir.path().join("strict.toml");
    std::fs::write(
        &strict,
        format!("[approvals]\ngroup_types = {{ {dissolved_type} = 2 }}\n"),
    )
    .unwrap();
    let policy = run_ok(&["policy", "--policy", strict.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&policy.stdout).contains(&format!("{dissolved_type} 2")));
    case.make_plan(&case.plan, &["--policy", strict.to_str().unwrap()]);
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&case.plan).unwrap()).unwrap();
    assert_eq!(
        plan["header"]["approvals"]["group_types"][&dissolved_type],
        2
    );
    let stderr = case.refused(case.clean(&[]), 2, "needs 2 approval(s)");
    assert!(
        stderr.contains(&format!("{dissolved_type} group")),
        "{stderr}"
    );
    assert!(case.approve(&case.plan, "alice", "alice").status.success());
    // The policy's number holds without --require-approvals, and over a smaller one.
    let trusted = case.trusted.to_str().unwrap();
    case.refused(case.clean(&["--trusted-keys", trusted]), 15, "1 did");
    case.refused(case.clean_requiring("1"), 15, "1 did");
    assert_eq!(snapshot(&case.root), before);
    assert!(case.approve(&case.plan, "bob", "bob").status.success());
    let out = case.clean(&["--trusted-keys", trusted]);
    assert!(out.status.success(), "{}", both(&out));
    for path in case.deletes() {
        assert!(!case.root.join(&path).exists(), "{path}");
    }

    // A bad group type in the policy is named.
    let bad = case.dir.path().join("bad.toml");
    std::fs::write(&bad, "[approvals]\ngroup_types = { schools = 2 }\n").unwrap();
    let out = run(&["policy", "--policy", bad.to_str().unwrap()]);
    assert_eq!(exit_code(&out), 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("schools"),
        "{}",
        both(&out)
    );
}
