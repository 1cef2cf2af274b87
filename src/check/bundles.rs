//! The `export` rule: a bundle that verifies, comes from this source and holds the group
//! up to its last message.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::evidence::{self, VerifyOptions};

/// What `check` needs of one bundle.
#[derive(Debug, Clone)]
pub struct BundleFacts {
    pub path: PathBuf,
    /// `None` when it verified; else why not.
    pub failed: Option<String>,
    pub platform: String,
    /// The account holder, when the bundle records one.
    pub owner: Option<String>,
    pub anonymized: bool,
    /// Source database (not media) path → SHA-256, from evidence.json.
    pub databases: HashMap<String, String>,
    /// Group id → last message (RFC 3339 UTC, as groups.csv has it).
    pub last_message: HashMap<String, String>,
    /// Group id → name.
    pub group_names: HashMap<String, String>,
    pub bag_digest: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read bundle {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// A tag file or payload file of a bundle directory or zip, by its path in the bag.
pub(crate) fn read_member(bundle: &Path, rel: &str) -> Result<Vec<u8>, String> {
    if bundle.is_dir() {
        return std::fs::read(bundle.join(rel)).map_err(|e| format!("{rel}: {e}"));
    }
    let file = std::fs::File::open(bundle).map_err(|e| e.to_string())?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| format!("not a zip: {e}"))?;
    // A zip holds the bag under one top-level directory (or at its root).
    let name = (0..archive.len())
        .filter_map(|i| archive.name_for_index(i).map(str::to_string))
        .find(|name| {
            name == rel
                || name
                    .split_once('/')
                    .is_some_and(|(top, rest)| !top.is_empty() && rest == rel)
        })
        .ok_or_else(|| format!("no {rel} in the zip"))?;
    let mut entry = archive.by_name(&name).map_err(|e| e.to_string())?;
    // evidence.json and groups.csv are small; a bomb is cut off rather than held.
    let mut bytes = Vec::new();
    entry
        .by_ref()
        .take(256 * 1024 * 1024)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{rel}: {e}"))?;
    Ok(bytes)
}

/// The positions of `names` among a bundle CSV file's `headers`.
pub(crate) fn columns<const N: usize>(
    file: &str,
    headers: &csv::StringRecord,
    names: [&str; N],
) -> Result<[usize; N], String> {
    let mut found = [0; N];
    for (slot, name) in found.iter_mut().zip(names) {
        *slot = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{file} has no column {name}"))?;
    }
    Ok(found)
}

/// A cell as written before the formula guard put `'` before it.
pub(crate) fn unguard(cell: &str, guarded: bool) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if guarded && rest.starts_with(['=', '+', '-', '@', '\t', '\r', '\n', '\'']) => {
            rest
        }
        _ => cell,
    }
}

/// Verifies `bundle` and reads what the `export` rule compares.
pub fn read(bundle: &Path) -> Result<BundleFacts, BundleError> {
    let unreadable = |reason: String| BundleError::Unreadable {
        path: bundle.to_path_buf(),
        reason,
    };
    let verified = evidence::verify(bundle, &VerifyOptions::default());
    let (failed, bag_digest) = match &verified {
        Ok(report) if report.ok() => (None, report.bag_digest.clone()),
        Ok(report) => (
            Some(format!("it does not verify ({})", report.failure_summary())),
            report.bag_digest.clone(),
        ),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    // What a bundle that does not verify says of itself is not to be relied on.
    if failed.is_some() {
        return Ok(BundleFacts {
            path: bundle.to_path_buf(),
            failed,
            platform: String::new(),
            owner: None,
            anonymized: false,
            databases: HashMap::new(),
            last_message: HashMap::new(),
            group_names: HashMap::new(),
            bag_digest,
        });
    }
    let evidence: serde_json::Value =
        serde_json::from_slice(&read_member(bundle, "evidence.json").map_err(unreadable)?)
            .map_err(|e| unreadable(format!("evidence.json: {e}")))?;
    let databases = evidence["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["path"].as_str()?.to_string(),
                s["sha256_before"].as_str()?.to_string(),
            ))
        })
        .collect();
    let guarded = evidence["filters"]["csv_guard"] == "excel";
    let groups_csv = read_member(bundle, "data/groups.csv").map_err(unreadable)?;
    let mut reader = csv::ReaderBuilder::new().from_reader(
        groups_csv
            .strip_prefix(b"\xEF\xBB\xBF".as_slice())
            .unwrap_or(&groups_csv),
    );
    let headers = reader
        .headers()
        .map_err(|e| unreadable(format!("groups.csv: {e}")))?
        .clone();
    let [id_column, last_column, name_column] = columns(
        "groups.csv",
        &headers,
        ["group_id", "last_message_utc", "group_name"],
    )
    .map_err(unreadable)?;
    let mut last_message = HashMap::new();
    let mut group_names = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| unreadable(format!("groups.csv: {e}")))?;
        let id = unguard(record.get(id_column).unwrap_or_default(), guarded);
        let name = unguard(record.get(name_column).unwrap_or_default(), guarded);
        group_names.insert(id.to_string(), name.to_string());
        last_message.insert(
            id.to_string(),
            record.get(last_column).unwrap_or_default().to_string(),
        );
    }
    Ok(BundleFacts {
        path: bundle.to_path_buf(),
        failed,
        platform: evidence["source"]["platform"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        owner: evidence["source"]["owner"].as_str().map(str::to_string),
        anonymized: evidence["anonymized"].as_bool().unwrap_or(false),
        databases,
        last_message,
        group_names,
        bag_digest,
    })
}
