//! `export` never hurts the source or a stranger's files: outputs that overlap the
//! source, `--force` over things that are not our bundles, concurrent runs, a full
//! disk, and a crash at every step of publishing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

fn small_source(dir: &Path, name: &str, messages: &str) -> PathBuf {
    simulate(
        "wechat",
        dir,
        name,
        &["--groups", "2", "--messages", messages, "--seed", "5"],
    )
}

fn export_args<'a>(root: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--fixed-time",
        "2025-06-12T09:00:00Z",
    ];
    args.extend_from_slice(extra);
    args
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Names directly in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sha256sum_check(dir: &Path, sidecar: &str) -> bool {
    std::process::Command::new("sha256sum")
        .args(["--strict", "-c", sidecar])
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn an_output_that_is_inside_or_contains_the_source_is_refused_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path(), "wx", "300");
    std::fs::create_dir(root.join("sub")).unwrap();
    let before = snapshot(dir.path());
    let outs = [
        root.clone(),
        root.join("bundle"),
        root.join("sub/bundle"),
        dir.path().to_path_buf(),
        PathBuf::from(format!("{}/sub/../x", root.display())),
    ];
    for (index, out) in outs.iter().enumerate() {
        // As a zip, the source's own name and its parent's give NAME.zip beside them,
        // which overlaps nothing.
        let variants: &[&[&str]] = if index == 0 || index == 3 {
            &[&[], &["--force"]]
        } else {
            &[&[], &["--force"], &["--zip", "--force"]]
        };
        for extra in variants.iter().copied() {
            let result = run(&export_args(&root, out, extra));
            assert_eq!(
                exit_code(&result),
                7,
                "--out {} {extra:?}: {}",
                out.display(),
                stderr(&result)
            );
            let message = stderr(&result);
            assert!(
                message.contains("source") || message.contains("name"),
                "{message}"
            );
        }
    }
    // Reached through a symlink to the source's parent, too.
    let link = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path(), link.path().join("up")).unwrap();
    let via_link = link.path().join("up/wx");
    let result = run(&export_args(&root, &via_link, &["--force"]));
    assert_eq!(exit_code(&result), 7, "{}", stderr(&result));
    assert_eq!(snapshot(dir.path()), before, "the source tree changed");
}

#[test]
fn force_replaces_only_chatvault_bundles_and_parents_are_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path(), "wx", "300");
    let out_dir = tempfile::tempdir().unwrap();
    let plain = out_dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::fs::write(plain.join("notes.txt"), "mine").unwrap();
    let document = out_dir.path().join("report.zip");
    std::fs::write(&document, "a document, not a bundle").unwrap();
    let file = out_dir.path().join("file");
    std::fs::write(&file, "a file").unwrap();
    let before = snapshot(out_dir.path());
    for (out, extra) in [
        (plain.clone(), &["--force"][..]),
        (plain.clone(), &[][..]),
        (out_dir.path().join("report"), &["--zip", "--force"][..]),
        (file.clone(), &["--force"][..]),
    ] {
        let result = run(&export_args(&root, &out, extra));
        assert_eq!(
            exit_code(&result),
            7,
            "{}: {}",
            out.display(),
            stderr(&result)
        );
    }
    assert_eq!(snapshot(out_dir.path()), before);
    assert_eq!(listing(out_dir.path()), ["file", "plain", "report.zip"]);

    let missing = out_dir.path().join("no/such/dir/bundle");
    let result = run(&export_args(&root, &missing, &[]));
    assert_eq!(exit_code(&result), 7, "{}", stderr(&result));
    assert!(
        stderr(&result).contains("does not exist"),
        "{}",
        stderr(&result)
    );
    assert!(!out_dir.path().join("no").exists());

    // Our own bundle is replaced, directory by directory and zip by zip.
    for extra in [&[][..], &["--zip"][..]] {
        let bundle = out_dir.path().join("ours");
        run_ok(&export_args(&root, &bundle, extra));
        let mut forced = extra.to_vec();
        forced.push("--force");
        run_ok(&export_args(&root, &bundle, &forced));
    }
    let names = listing(out_dir.path());
    assert!(names.contains(&"ours".to_string()) && names.contains(&"ours.zip".to_string()));
    assert!(
        !names
            .iter()
            .any(|n| n.contains("partial") || n.contains("replaced") || n.ends_with(".lock")),
        "{names:?}"
    );
    assert!(sha256sum_check(out_dir.path(), "ours.sha256"));
    assert!(sha256sum_check(out_dir.path(), "ours.zip.sha256"));
}

#[test]
fn a_second_export_to_a_locked_name_fails_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path(), "wx", "300");
    let bundle = dir.path().join("b");
    let guard = chatvault::lockfile::acquire(&bundle).unwrap();
    let result = run(&export_args(&root, &bundle, &[]));
    assert_eq!(exit_code(&result), 12, "{}", stderr(&result));
    assert!(
        stderr(&result).contains(&format!("PID {}", std::process::id())),
        "{}",
        stderr(&result)
    );
    assert!(!bundle.exists());
    drop(guard);

    // Two real runs at once: one may find the lock or the finished bundle, never both
    // succeed over each other, and what is left verifies.
    let bin = assert_cmd::cargo::cargo_bin("chatvault");
    let spawn = || {
        std::process::Command::new(&bin)
            .args(export_args(&root, &bundle, &["--force"]))
            .output()
    };
    for _ in 0..3 {
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
        });
        let codes = [exit_code(&a), exit_code(&b)];
        assert!(
            codes.contains(&0),
            "{codes:?}: {} {}",
            stderr(&a),
            stderr(&b)
        );
        assert!(codes.iter().all(|c| [0, 12].contains(c)), "{codes:?}");
        assert_eq!(
            run(&["verify", bundle.to_str().unwrap()]).status.code(),
            Some(0)
        );
        assert!(sha256sum_check(dir.path(), "b.sha256"));
    }
}

/// A tmpfs of `size` mounted at a new directory, unmounted on drop; `None` when this
/// process may not mount (not root), which CI does not allow.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            let why = "cannot mount a tmpfs (needs root): ENOSPC test skipped";
            assert!(
                std::env::var_os("CHATVAULT_REQUIRE_TOOLS").is_none(),
                "{why}"
            );
            eprintln!("{why}");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .output();
    }
}

#[test]
fn a_full_disk_publishes_nothing_and_keeps_the_old_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let small = small_source(dir.path(), "small", "200");
    let large = simulate(
        "wechat",
        dir.path(),
        "large",
        &["--groups", "3", "--messages", "12000", "--seed", "9"],
    );
    let before = snapshot(dir.path());
    for zip in [false, true] {
        let Some(disk) = SmallDisk::mount("1m") else {
            return;
        };
        let extra: Vec<&str> = if zip { vec!["--zip"] } else { vec![] };
        let bundle = disk.path().join("b");
        let result = run(&export_args(&large, &bundle, &extra));
        assert_eq!(exit_code(&result), 7, "{}", stderr(&result));
        assert!(
            stderr(&result).contains("No space left"),
            "{}",
            stderr(&result)
        );
        assert!(
            !stderr(&result).contains("ZipWriter"),
            "{}",
            stderr(&result)
        );
        assert!(
            listing(disk.path()).is_empty(),
            "{:?}",
            listing(disk.path())
        );

        // With an old bundle in place, a replacement that does not fit leaves it whole.
        let mut old_args = extra.clone();
        old_args.push("--no-media");
        run_ok(&export_args(&small, &bundle, &old_args));
        let old = snapshot(disk.path());
        let mut forced = extra.clone();
        forced.push("--force");
        let result = run(&export_args(&large, &bundle, &forced));
        assert_eq!(exit_code(&result), 7, "{}", stderr(&result));
        assert!(
            !stderr(&result).contains("ZipWriter"),
            "{}",
            stderr(&result)
        );
        assert_eq!(snapshot(disk.path()), old, "the old bundle changed");
        let sidecar = if zip { "b.zip.sha256" } else { "b.sha256" };
        assert!(sha256sum_check(disk.path(), sidecar));
    }
    assert_eq!(snapshot(dir.path()), before, "a source changed");
}

/// The points reached by one export, in the order first reached.
#[cfg(feature = "failpoints")]
fn trace_points(args: &[&str], flags: &str) -> Vec<String> {
    let trace = tempfile::NamedTempFile::new().unwrap();
    let out = chatvault()
        .args(args)
        .env("CHATVAULT_FAILPOINT_FLAGS", flags)
        .env("CHATVAULT_FAILPOINT_TRACE", trace.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(trace.path())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The bag digest a directory bundle's sidecar or a zip's sidecar records, if readable.
#[cfg(feature = "failpoints")]
fn sidecar_digest(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(text.split_whitespace().next()?.to_string())
}

#[cfg(feature = "failpoints")]
#[test]
fn a_crash_at_every_step_of_an_export_leaves_one_complete_bundle() {
    use std::os::unix::process::ExitStatusExt;

    let dir = tempfile::tempdir().unwrap();
    let root = small_source(dir.path(), "wx", "600");
    let old_source = small_source(dir.path(), "old", "100");
    let source_before = snapshot(&root);
    let mut crash_points = 0;
    // The last mode takes the path of filesystems that cannot swap two names: the old
    // bundle is moved aside to NAME.replaced-PID first.
    for (zip, replacing, no_exchange) in [
        (false, false, false),
        (false, true, false),
        (true, false, false),
        (true, true, false),
        (false, true, true),
        (true, true, true),
    ] {
        {
            let flags = if no_exchange {
                "no_rename_exchange"
            } else {
                ""
            };
            let chatvault = || {
                let mut cmd = chatvault();
                cmd.env("CHATVAULT_FAILPOINT_FLAGS", flags);
                cmd
            };
            let out_dir = tempfile::tempdir().unwrap();
            let bundle = out_dir.path().join("b");
            let final_name = if zip { "b.zip" } else { "b" };
            let sidecar = format!("{final_name}.sha256");
            let mut extra: Vec<&str> = if zip { vec!["--zip"] } else { vec![] };
            extra.push("--force");
            let args = export_args(&root, &bundle, &extra);
            // The new bundle's digest, and the old one's when replacing.
            let new_digest = {
                let probe = tempfile::tempdir().unwrap();
                let probe_bundle = probe.path().join("b");
                let points = trace_points(&export_args(&root, &probe_bundle, &extra), flags);
                assert!(points.len() >= 6, "{points:?}");
                sidecar_digest(&probe.path().join(&sidecar)).unwrap()
            };
            let setup = || {
                for name in listing(out_dir.path()) {
                    let path = out_dir.path().join(name);
                    if path.is_dir() {
                        std::fs::remove_dir_all(&path).unwrap();
                    } else {
                        std::fs::remove_file(&path).unwrap();
                    }
                }
                if replacing {
                    run_ok(&export_args(&old_source, &bundle, &extra));
                }
            };
            setup();
            let mut points = trace_points(&args, flags);
            let old_digest = if replacing {
                setup();
                sidecar_digest(&out_dir.path().join(&sidecar))
            } else {
                None
            };
            for expected in [
                "export.bag.created",
                "export.csv.finished",
                "export.bag.synced",
                "export.publish.sidecar_written",
                "export.publish.bundle_in_place",
                "export.publish.sidecar_in_place",
            ] {
                assert!(
                    points.iter().any(|p| p == expected),
                    "{expected} not reached: {points:?}"
                );
            }
            assert_eq!(
                points.iter().any(|p| p == "export.publish.old_moved_aside"),
                no_exchange,
                "{points:?}"
            );
            // A point reached many times is also crashed at on a later hit.
            points.push("export.media.copied@5".into());
            for point in &points {
                setup();
                let crashed = chatvault()
                    .args(&args)
                    .env("CHATVAULT_FAILPOINT", point)
                    .output()
                    .unwrap();
                assert_eq!(
                    crashed.status.signal(),
                    Some(6),
                    "{point}: did not abort: {}",
                    stderr(&crashed)
                );
                crash_points += 1;
                assert_eq!(
                    snapshot(&root),
                    source_before,
                    "{point}: the source changed"
                );
                let final_path = out_dir.path().join(final_name);
                let aside: Vec<String> = listing(out_dir.path())
                    .into_iter()
                    .filter(|n| n.starts_with(&format!("{final_name}.replaced-")))
                    .collect();
                if replacing && !final_path.exists() {
                    // Only where names cannot be swapped, between moving the old bundle
                    // aside and the new one in: the old one waits under NAME.replaced-PID,
                    // whole, with its sidecar untouched; the next run puts it back.
                    assert!(no_exchange, "{point}: the old bundle is gone");
                    assert_eq!(aside.len(), 1, "{point}: {aside:?}");
                    let old = out_dir.path().join(&aside[0]);
                    let verified = run(&["verify", old.to_str().unwrap()]);
                    let report = String::from_utf8_lossy(&verified.stdout).into_owned();
                    assert!(
                        report.contains("modified 0 / missing 0 / extra 0"),
                        "{point}: {report}"
                    );
                    assert_eq!(sidecar_digest(&out_dir.path().join(&sidecar)), old_digest);
                } else if final_path.exists() {
                    // Either the pair in place matches, or the partial sidecar that
                    // the next run completes matches the (new) bundle.
                    let in_place = sidecar_digest(&out_dir.path().join(&sidecar));
                    let pending =
                        sidecar_digest(&out_dir.path().join(format!("{sidecar}.partial")));
                    let paired = sha256sum_check(out_dir.path(), &sidecar);
                    let interrupted =
                        pending.as_deref() == Some(new_digest.as_str()) && in_place == old_digest;
                    assert!(
                        paired || interrupted,
                        "{point}: bundle and sidecar disagree: {:?}",
                        listing(out_dir.path())
                    );
                    let verified = run(&["verify", final_path.to_str().unwrap()]);
                    let report = String::from_utf8_lossy(&verified.stdout).into_owned();
                    // In the interrupted state verify flags the old sidecar, and only it.
                    let ok = verified.status.code() == Some(0)
                        || (interrupted
                            && report.contains("problems 1")
                            && report.contains(".sha256 records")
                            && report.contains("modified 0 / missing 0 / extra 0"));
                    assert!(ok, "{point}: the bundle in place does not verify: {report}");
                } else {
                    assert!(
                        !out_dir.path().join(&sidecar).exists(),
                        "{point}: a sidecar without its bundle"
                    );
                }
                if replacing && !final_path.exists() {
                    // What the next run does first: the old bundle back with its sidecar.
                    // (Stopped right after it, before it writes anything of its own.)
                    let recovered = chatvault()
                        .args(&args)
                        .env("CHATVAULT_FAILPOINT", "export.bag.created")
                        .output()
                        .unwrap();
                    assert!(!recovered.status.success());
                    assert!(
                        sha256sum_check(out_dir.path(), &sidecar),
                        "{point}: not restored"
                    );
                    assert_eq!(sidecar_digest(&out_dir.path().join(&sidecar)), old_digest);
                }
                // The next run finishes or removes what the crash left.
                run_ok(&args);
                assert_eq!(
                    listing(out_dir.path()),
                    [final_name.to_string(), sidecar.clone()],
                    "{point}"
                );
                assert!(sha256sum_check(out_dir.path(), &sidecar), "{point}");
                assert_eq!(
                    sidecar_digest(&out_dir.path().join(&sidecar)).as_deref(),
                    Some(new_digest.as_str())
                );
            }
        }
    }
    eprintln!("crashed at {crash_points} points");
}
