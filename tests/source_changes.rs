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

/// Delegates to a real source; appends to `victim` once the last group's messages are read.
struct ChangingSource {
    inner: Box<dyn Source>,
    victim: PathBuf,
    last_group: String,
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
        let victim = self.victim.clone();
        let mut done = false;
        Ok(Box::new(stream.chain(std::iter::from_fn(move || {
            if !done {
                done = true;
                let mut file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&victim)
                    .unwrap();
                file.write_all(b"the app wrote this").unwrap();
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

fn export_while_changing(victim_rel: &str, zip: bool) {
    let dir = tempfile::tempdir().unwrap();
    let root = simulate(
        "wechat",
        dir.path(),
        "wx",
        &["--groups", "3", "--messages", "600", "--edge-rate", "0"],
    );
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
