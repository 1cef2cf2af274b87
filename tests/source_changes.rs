//! A source that changes while it is exported: the export fails with a clear error and
//! leaves no bundle. The change is made deterministically by a wrapping `Source`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chatvault::export::{export_source, ExportError, ExportOptions};
use chatvault::platform::PlatformRef;
use chatvault::records::{Group, Member, Warning};
use chatvault::source::{self, MessageStream, Source, SourceError, SourceFile};
use common::*;

/// Delegates to a real source; changes `victim` once the last group's messages are read.
struct ChangingSource {
    inner: Box<dyn Source>,
    victim: PathBuf,
    last_group: String,
    change: Change,
}

#[derive(Clone, Copy)]
enum Change {
    Append,
    /// The first bytes flipped, the size and the modification time kept as they were.
    Disguised,
}

fn change_file(victim: &Path, change: Change) {
    match change {
        Change::Append => {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(victim)
                .unwrap();
            file.write_all(b"the app wrote this").unwrap();
        }
        Change::Disguised => {
            let mtime = std::fs::metadata(victim).unwrap().modified().unwrap();
            let mut bytes = std::fs::read(victim).unwrap();
            bytes[0] ^= 0xff;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(victim)
                .unwrap();
            file.write_all(&bytes).unwrap();
            file.set_modified(mtime).unwrap();
        }
    }
}

impl Source for ChangingSource {
    fn platform(&self) -> PlatformRef {
        self.inner.platform()
    }
    fn root(&self) -> &Path {
        self.inner.root()
    }
    fn owner_id(&self) -> Option<&str> {
        self.inner.owner_id()
    }
    fn groups(&self) -> Result<Vec<Group>, SourceError> {
        self.inner.groups()
    }
    fn members(&self, group_id: &str) -> Result<Vec<Member>, SourceError> {
        self.inner.members(group_id)
    }
    fn messages(&self, group_id: &str) -> Result<MessageStream, SourceError> {
        let stream = self.inner.messages(group_id)?;
        if group_id != self.last_group {
            return Ok(stream);
        }
        let (victim, change) = (self.victim.clone(), self.change);
        let mut done = false;
        Ok(Box::new(stream.chain(std::iter::from_fn(move || {
            if !done {
                done = true;
                change_file(&victim, change);
            }
            None
        }))))
    }
    fn prepare_messages(&self, group_ids: &[String]) {
        self.inner.prepare_messages(group_ids)
    }
    fn databases_read(&self) -> bool {
        // WeChat reads everything in one scan here, so the databases' final hashes are
        // taken before the append below: only their metadata can reveal it.
        self.inner.databases_read()
    }
    fn source_files(&self) -> Vec<SourceFile> {
        self.inner.source_files()
    }
    fn warnings(&self) -> Vec<Warning> {
        self.inner.warnings()
    }
}

/// A simulated source whose files have all settled (modified long enough before the
/// export that their unchanged identity would prove unchanged content).
fn settled_source(dir: &Path) -> PathBuf {
    let root = simulate(
        "wechat",
        dir,
        "wx",
        &["--groups", "3", "--messages", "600", "--edge-rate", "0"],
    );
    std::thread::sleep(
        chatvault::evidence::unchanged::SETTLED + std::time::Duration::from_millis(200),
    );
    root
}

fn export_while_changing(victim_rel: &str, zip: bool) {
    export_while_changing_as(victim_rel, zip, Change::Append, false)
}

fn export_while_changing_as(victim_rel: &str, zip: bool, change: Change, settle: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = if settle {
        settled_source(dir.path())
    } else {
        simulate(
            "wechat",
            dir.path(),
            "wx",
            &["--groups", "3", "--messages", "600", "--edge-rate", "0"],
        )
    };
    let inner = source::open(&root).unwrap();
    let last_group = inner
        .groups()
        .unwrap()
        .into_iter()
        .filter(|g| g.is_group)
        .map(|g| g.id)
        .next_back()
        .unwrap();
    let changing = ChangingSource {
        inner,
        victim: root.join(victim_rel),
        last_group,
        change,
    };
    let out = dir.path().join("bundle");
    let mut opts = ExportOptions::new(root.clone(), out.clone());
    opts.zip = zip;
    let result = export_source(&changing, &opts, Instant::now());
    match result {
        Err(ExportError::SourceChanged { path }) => assert_eq!(path, victim_rel),
        other => panic!("expected SourceChanged, got {other:?}"),
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bundle"))
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

#[test]
fn a_database_written_during_the_export_fails_it() {
    export_while_changing("EnMicroMsg.db", false);
    export_while_changing("EnMicroMsg.db", true);
}

#[test]
fn a_media_file_changed_after_it_was_copied_fails_the_export() {
    // Find a media file of the first group that the export copies.
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "600", "--edge-rate", "0"],
    );
    let out = dir.path().join("probe");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let media = read_csv(&out.join("data/media.csv"));
    let copied = media.iter().find(|m| m["status"] == "copied").unwrap();
    export_while_changing(&copied["source_path"], false);
}

#[test]
fn a_settled_file_rewritten_with_its_size_and_time_kept_is_still_caught() {
    // Settled files are not read a second time: their identity proves them unchanged.
    // A write that keeps the size and puts the old mtime back changes ctime, so the
    // file is read again and the difference found.
    let dir = tempfile::tempdir().unwrap();
    let root = settled_source(dir.path());
    let out = dir.path().join("probe");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let media = read_csv(&out.join("data/media.csv"));
    let copied = media.iter().find(|m| m["status"] == "copied").unwrap();
    export_while_changing_as(&copied["source_path"], false, Change::Disguised, true);
    export_while_changing_as("EnMicroMsg.db", true, Change::Disguised, true);
}

#[test]
fn a_settled_source_exported_unchanged_records_the_same_hashes_as_a_fresh_read() {
    let dir = tempfile::tempdir().unwrap();
    let root = settled_source(dir.path());
    let out = dir.path().join("bundle");
    run_ok(&[
        "export",
        root.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let evidence: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("evidence.json")).unwrap()).unwrap();
    let sources = evidence["sources"].as_array().unwrap();
    assert!(sources.len() > 10);
    for s in sources {
        let path = root.join(s["path"].as_str().unwrap());
        let now = sha256_file(&path);
        assert_eq!(s["sha256_before"], now.as_str(), "{path:?}");
        assert_eq!(s["sha256_after"], now.as_str(), "{path:?}");
    }
}
