//! Incremental exports chained by bag digest. Every bundle records, per conversation, its
//! high-water mark: the last message time it holds and the ids at exactly that time (and
//! the ids of messages without a time). `export --after B1` exports only what lies beyond
//! B1's marks, names B1's bag digest in `bag-info.txt` and `evidence.json`, and carries
//! the marks forward; `verify --chain B1 … Bn` checks that every link holds.

pub mod changes;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::bundles::read_member;
use crate::evidence::{self, VerifyOptions};

/// How far a bundle holds one conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HighWater {
    /// As written in the bundle (a pseudonym for an anonymized one-to-one chat).
    pub group_id: String,
    /// The latest message time held, ms since the epoch.
    pub last_time_ms: Option<i64>,
    /// Every message id held at exactly that time.
    pub ids_at_last_time: Vec<String>,
    /// Messages without a time, by id (they cannot be placed before or after a mark).
    pub untimed_ids: Vec<String>,
    /// The earliest message time of this bundle's own messages, and the ids at it: where
    /// this bundle starts, for `verify --chain`.
    pub first_time_ms: Option<i64>,
    pub ids_at_first_time: Vec<String>,
    /// Messages this bundle itself holds for the conversation.
    pub messages: u64,
}

impl HighWater {
    pub fn new(group_id: &str) -> HighWater {
        HighWater {
            group_id: group_id.to_string(),
            ..HighWater::default()
        }
    }

    /// Records a message this bundle holds.
    pub fn hold(&mut self, time_ms: Option<i64>, id: &str) {
        self.messages += 1;
        let Some(t) = time_ms else {
            self.untimed_ids.push(id.to_string());
            return;
        };
        match self.last_time_ms {
            Some(last) if t < last => {}
            Some(last) if t == last => self.ids_at_last_time.push(id.to_string()),
            _ => {
                self.last_time_ms = Some(t);
                self.ids_at_last_time = vec![id.to_string()];
            }
        }
        match self.first_time_ms {
            Some(first) if t > first => {}
            Some(first) if t == first => self.ids_at_first_time.push(id.to_string()),
            _ => {
                self.first_time_ms = Some(t);
                self.ids_at_first_time = vec![id.to_string()];
            }
        }
    }

    /// Whether a message lies beyond this mark: later than it, or at its time but not
    /// held; a message without a time, when it was not held.
    pub fn beyond(&self, time_ms: Option<i64>, id: &str) -> bool {
        match (time_ms, self.last_time_ms) {
            (None, _) => !self.untimed_ids.iter().any(|u| u == id),
            (Some(_), None) => true,
            (Some(t), Some(last)) => {
                t > last || (t == last && !self.ids_at_last_time.iter().any(|h| h == id))
            }
        }
    }

    /// The mark after this bundle: its own messages' mark where it has any, else the
    /// predecessor's, carried forward.
    pub fn carried(&self, previous: &HighWater) -> HighWater {
        let mut next = self.clone();
        let later = match (self.last_time_ms, previous.last_time_ms) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(a), Some(b)) => a >= b,
        };
        if !later {
            next.last_time_ms = previous.last_time_ms;
            next.ids_at_last_time = previous.ids_at_last_time.clone();
        } else if previous.last_time_ms == self.last_time_ms {
            // New messages at the predecessor's very time: both sets are held now.
            let mut ids: BTreeSet<String> = previous.ids_at_last_time.iter().cloned().collect();
            ids.extend(self.ids_at_last_time.iter().cloned());
            next.ids_at_last_time = ids.into_iter().collect();
        }
        let mut untimed: BTreeSet<String> = previous.untimed_ids.iter().cloned().collect();
        untimed.extend(self.untimed_ids.iter().cloned());
        next.untimed_ids = untimed.into_iter().collect();
        next
    }
}

/// A member as a bundle wrote them, to tell which joined, left or changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberState {
    pub display_name: String,
    pub group_nickname: String,
    pub role: String,
    pub left: bool,
}

/// The bundle an increment continues.
#[derive(Debug, Clone)]
pub struct Predecessor {
    pub path: PathBuf,
    /// Its directory or zip name, as evidence.json records it.
    pub name: String,
    pub bag_digest: String,
    pub chain_index: u64,
    pub platform: String,
    pub owner: Option<String>,
    pub key_fingerprint: Option<String>,
    /// By group id as written.
    pub high_water: HashMap<String, HighWater>,
    /// (group id, member id) as written → state.
    pub members: HashMap<(String, String), MemberState>,
    /// The filters it was made with (evidence.json's `filters`).
    pub filters: serde_json::Value,
    /// Whether it has been verified already (see [`open_predecessor`]).
    verified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("{path}: {reason}")]
    NotUsable { path: PathBuf, reason: String },
    #[error("{path} does not verify ({reason}): an increment must continue a sound bundle")]
    Tampered { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    MissingLink { path: PathBuf, reason: String },
}

impl ChainError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ChainError::NotUsable { .. } => crate::exit::NOT_A_BUNDLE,
            ChainError::Tampered { .. } => crate::exit::TAMPERED,
            ChainError::MissingLink { .. } => crate::exit::USAGE,
        }
    }
}

fn bundle_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads the bundle at `path` for an increment, chatvault's own with high-water marks. A
/// zip is verified first (nothing is read out of an unproven zip); a directory is left to
/// [`verify_predecessor`], which the export runs beside its own reading and which must pass
/// before anything is published.
pub fn open_predecessor(path: &Path) -> Result<Predecessor, ChainError> {
    if !path.is_dir() {
        let digest = verified_digest(path)?;
        return read_parts(path, digest, true).map(|(previous, _)| previous);
    }
    let unusable = |reason: String| ChainError::NotUsable {
        path: path.to_path_buf(),
        reason,
    };
    let tagmanifest = read_member(path, evidence::bag::TAGMANIFEST_TXT);
    let read = tagmanifest.map_err(unusable).and_then(|tagmanifest| {
        let (previous, [evidence_json, members_csv]) =
            read_parts(path, crate::digest::sha256_hex(&tagmanifest), false)?;
        // What was parsed is what the digest covers, so that verifying the digest later
        // proves it (a file swapped between the two reads is caught).
        let manifest = read_member(path, evidence::bag::MANIFEST_TXT).map_err(unusable)?;
        for (list, bytes, rel) in [
            (&tagmanifest, &evidence_json, "evidence.json"),
            (&manifest, &members_csv, "data/members.csv"),
        ] {
            if listed_digest(list, rel) != Some(crate::digest::sha256_hex(bytes)) {
                return Err(ChainError::Tampered {
                    path: path.to_path_buf(),
                    reason: format!("{rel} does not match its manifest"),
                });
            }
        }
        Ok(previous)
    });
    // A bundle that cannot be read is reported as verification sees it (tampered, or not
    // a bundle) when that fails.
    read.or_else(|error| {
        verified_digest(path)?;
        Err(error)
    })
}

/// The digest a manifest's text lists for `rel`.
fn listed_digest(manifest: &[u8], rel: &str) -> Option<String> {
    String::from_utf8_lossy(manifest).lines().find_map(|line| {
        evidence::hashsum::parse_line(line)
            .filter(|(name, _)| name == rel)
            .map(|(_, digest)| digest)
    })
}

/// Reads evidence.json and members.csv of the bundle at `path`, whose bag digest is
/// `bag_digest`; returns their bytes beside what they say.
fn read_parts(
    path: &Path,
    bag_digest: String,
    verified: bool,
) -> Result<(Predecessor, [Vec<u8>; 2]), ChainError> {
    let unusable = |reason: String| ChainError::NotUsable {
        path: path.to_path_buf(),
        reason,
    };
    let evidence_bytes = read_member(path, "evidence.json").map_err(unusable)?;
    let evidence: serde_json::Value = serde_json::from_slice(&evidence_bytes)
        .map_err(|e| unusable(format!("evidence.json: {e}")))?;
    let high_water: Vec<HighWater> = serde_json::from_value(evidence["high_water"].clone())
        .map_err(|_| {
            unusable("evidence.json has no high-water marks (made by an older chatvault): export it whole".into())
        })?;
    let members_csv = read_member(path, "data/members.csv").map_err(unusable)?;
    let guarded = evidence["filters"]["csv_guard"] == "excel";
    let members = read_members(&members_csv, guarded).map_err(unusable)?;
    let previous = Predecessor {
        path: path.to_path_buf(),
        name: bundle_name(path),
        bag_digest,
        verified,
        chain_index: evidence["chain"]["index"].as_u64().unwrap_or(0),
        platform: evidence["source"]["platform"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        owner: evidence["source"]["owner"].as_str().map(str::to_string),
        key_fingerprint: evidence["key_fingerprint"].as_str().map(str::to_string),
        high_water: high_water
            .into_iter()
            .map(|h| (h.group_id.clone(), h))
            .collect(),
        members,
        filters: evidence["filters"].clone(),
    };
    Ok((previous, [evidence_bytes, members_csv]))
}

/// Verifies the bundle `previous` was read from, unless that was done when it was opened:
/// every hash must match, and its bag digest must be the one read with it.
pub fn verify_predecessor(previous: &Predecessor) -> Result<(), ChainError> {
    if previous.verified {
        return Ok(());
    }
    let digest = verified_digest(&previous.path)?;
    if digest != previous.bag_digest {
        return Err(ChainError::Tampered {
            path: previous.path.clone(),
            reason: "it changed while it was read (its bag digest is not the one read first)"
                .into(),
        });
    }
    Ok(())
}

/// Verifies the bundle at `path` and returns its bag digest.
fn verified_digest(path: &Path) -> Result<String, ChainError> {
    let report =
        evidence::verify(path, &VerifyOptions::default()).map_err(|e| ChainError::NotUsable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    if !report.ok() {
        return Err(ChainError::Tampered {
            path: path.to_path_buf(),
            reason: report.failure_summary(),
        });
    }
    report
        .bag_digest
        .clone()
        .ok_or_else(|| ChainError::NotUsable {
            path: path.to_path_buf(),
            reason: "it has no tagmanifest-sha256.txt".into(),
        })
}

/// The bundles before `bundle` in its chain, oldest first, each with whether its CSV has the
/// formula guard: found beside it by the names the links record, each verified and matched
/// to the bag digest its successor names. What an increment compares behind the marks is
/// every message the chain holds, not only the last link's.
pub fn earlier_links(bundle: &Path) -> Result<Vec<(PathBuf, bool)>, ChainError> {
    let mut found = Vec::new();
    let mut current = bundle.to_path_buf();
    loop {
        let unusable = |path: &Path, reason: String| ChainError::NotUsable {
            path: path.to_path_buf(),
            reason,
        };
        let evidence: serde_json::Value = serde_json::from_slice(
            &read_member(&current, "evidence.json").map_err(|r| unusable(&current, r))?,
        )
        .map_err(|e| unusable(&current, format!("evidence.json: {e}")))?;
        let previous = &evidence["predecessor"];
        let (Some(name), Some(digest)) =
            (previous["bundle"].as_str(), previous["bag_digest"].as_str())
        else {
            break;
        };
        let beside = current.parent().unwrap_or(Path::new(".")).join(name);
        let missing = || ChainError::MissingLink {
            path: current.clone(),
            reason: format!(
                "it continues {name} (bag digest {digest}), which is not beside it: put the \
                     chain's earlier bundles in the same directory (changes behind the marks are \
                     compared with every message the chain holds), or pass --no-changes"
            ),
        };
        if !beside.exists() || found.len() > 10_000 {
            return Err(missing());
        }
        let report = evidence::verify(&beside, &VerifyOptions::default())
            .map_err(|e| unusable(&beside, e.to_string()))?;
        if !report.ok() {
            return Err(ChainError::Tampered {
                path: beside,
                reason: report.failure_summary(),
            });
        }
        if report.bag_digest.as_deref() != Some(digest) {
            return Err(unusable(
                &beside,
                format!(
                    "{} names bag digest {digest} for it, but it has {}: not the bundle it continues",
                    bundle_name(&current),
                    report.bag_digest.as_deref().unwrap_or("none")
                ),
            ));
        }
        let own: serde_json::Value = serde_json::from_slice(
            &read_member(&beside, "evidence.json").map_err(|r| unusable(&beside, r))?,
        )
        .map_err(|e| unusable(&beside, format!("evidence.json: {e}")))?;
        found.push((beside.clone(), own["filters"]["csv_guard"] == "excel"));
        current = beside;
    }
    found.reverse();
    Ok(found)
}

/// members.csv as (group, member) → state, the formula guard undone.
fn read_members(
    bytes: &[u8],
    guarded: bool,
) -> Result<HashMap<(String, String), MemberState>, String> {
    let bytes = bytes
        .strip_prefix(b"\xEF\xBB\xBF".as_slice())
        .unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| format!("members.csv: {e}"))?
        .clone();
    let columns = crate::check::bundles::columns(
        "members.csv",
        &headers,
        [
            "group_id",
            "member_id",
            "display_name",
            "group_nickname",
            "role",
            "left",
        ],
    )?;
    let mut members = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("members.csv: {e}"))?;
        let cell = |i: usize| {
            let value = record.get(columns[i]).unwrap_or_default();
            crate::check::bundles::unguard(value, guarded).to_string()
        };
        members.insert(
            (cell(0), cell(1)),
            MemberState {
                display_name: cell(2),
                group_nickname: cell(3),
                role: cell(4),
                left: cell(5) == "true",
            },
        );
    }
    Ok(members)
}

/// One link of a chain as `verify --chain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub index: u64,
    pub name: String,
    pub bag_digest: String,
    pub messages: u64,
    pub first_utc: Option<String>,
    pub last_utc: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub links: Vec<Link>,
    /// Empty when every link holds.
    pub problems: Vec<String>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.links {
            out.push_str(&format!(
                "{:>3}  {:<28} {}  {:>9} messages  {} .. {}\n",
                l.index,
                l.name,
                l.bag_digest,
                l.messages,
                l.first_utc.as_deref().unwrap_or("-"),
                l.last_utc.as_deref().unwrap_or("-")
            ));
        }
        if self.ok() {
            out.push_str("chain OK: every bundle verifies and names the one before it\n");
        } else {
            for p in &self.problems {
                out.push_str(&format!("BROKEN: {p}\n"));
            }
        }
        out
    }
}

/// What `verify --chain` reads of each bundle.
struct Member {
    name: String,
    bag_digest: Option<String>,
    verified: Result<(), String>,
    evidence: serde_json::Value,
}

fn marks(evidence: &serde_json::Value) -> HashMap<String, HighWater> {
    serde_json::from_value::<Vec<HighWater>>(evidence["high_water"].clone())
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h.group_id.clone(), h))
        .collect()
}

/// Checks the chain `bundles`, in the order given: every bundle verifies, each names the
/// previous one's bag digest and continues from exactly its marks, the ranges neither
/// overlap nor leave a gap, and platform, account and key are the same throughout.
pub fn verify_chain(bundles: &[PathBuf]) -> ChainReport {
    let mut problems = Vec::new();
    let mut read = Vec::new();
    for path in bundles {
        let name = bundle_name(path);
        let (verified, bag_digest) = match evidence::verify(path, &VerifyOptions::default()) {
            Ok(r) if r.ok() => (Ok(()), r.bag_digest.clone()),
            Ok(r) => (Err(r.failure_summary()), r.bag_digest.clone()),
            Err(e) => (Err(e.to_string()), None),
        };
        let evidence = read_member(path, "evidence.json")
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null);
        read.push(Member {
            name,
            bag_digest,
            verified,
            evidence,
        });
    }
    let mut links = Vec::new();
    for (i, b) in read.iter().enumerate() {
        if let Err(reason) = &b.verified {
            problems.push(format!("{} does not verify: {reason}", b.name));
        }
        let own = marks(&b.evidence);
        let messages: u64 = own.values().map(|h| h.messages).sum();
        let first = own.values().filter_map(|h| h.first_time_ms).min();
        let last = own.values().filter_map(|h| h.last_time_ms).max();
        links.push(Link {
            index: b.evidence["chain"]["index"].as_u64().unwrap_or(0),
            name: b.name.clone(),
            bag_digest: b.bag_digest.clone().unwrap_or_default(),
            messages,
            first_utc: first.map(crate::timefmt::utc_millis),
            last_utc: last.map(crate::timefmt::utc_millis),
        });
        let previous_named = b.evidence["predecessor"]["bag_digest"].as_str();
        if i == 0 {
            if previous_named.is_some() && bundles.len() > 1 {
                // A chain may start mid-way, but then it is said.
                problems.push(format!(
                    "{} continues a bundle not given (bag digest {}): give the chain from its start",
                    b.name,
                    previous_named.unwrap_or_default()
                ));
            }
            continue;
        }
        let prev = &read[i - 1];
        if previous_named != prev.bag_digest.as_deref() {
            problems.push(format!(
                "{} does not continue {}: it names bag digest {}, {} has {}",
                b.name,
                prev.name,
                previous_named.unwrap_or("(none)"),
                prev.name,
                prev.bag_digest.as_deref().unwrap_or("(none)")
            ));
            continue;
        }
        for (field, what) in [
            (&["source", "platform"][..], "platform"),
            (&["source", "owner"][..], "account"),
            (&["key_fingerprint"][..], "anonymization key"),
        ] {
            let get = |e: &serde_json::Value| field.iter().fold(e.clone(), |v, k| v[*k].clone());
            if get(&b.evidence) != get(&prev.evidence) {
                problems.push(format!(
                    "{} and {} differ in {what}: {} against {}",
                    prev.name,
                    b.name,
                    get(&prev.evidence),
                    get(&b.evidence)
                ));
            }
        }
        // Continues from exactly the previous marks, and starts beyond them.
        let prev_marks = marks(&prev.evidence);
        let recorded: HashMap<String, HighWater> = serde_json::from_value::<Vec<HighWater>>(
            b.evidence["predecessor"]["high_water"].clone(),
        )
        .unwrap_or_default()
        .into_iter()
        .map(|h| (h.group_id.clone(), h))
        .collect();
        if recorded != prev_marks {
            problems.push(format!(
                "{} was not made from {}'s high-water marks: a gap or an overlap",
                b.name, prev.name
            ));
        }
        for (group, mark) in &own {
            let Some(before) = prev_marks.get(group) else {
                continue;
            };
            if mark.messages == 0 {
                continue;
            }
            let starts_beyond = match (mark.first_time_ms, before.last_time_ms) {
                (Some(f), Some(l)) => {
                    f > l
                        || (f == l
                            && mark
                                .ids_at_first_time
                                .iter()
                                .all(|id| !before.ids_at_last_time.contains(id)))
                }
                _ => true,
            };
            if !starts_beyond {
                problems.push(format!(
                    "{} overlaps {} in {group}: it starts at or before the previous mark",
                    b.name, prev.name
                ));
            }
        }
    }
    ChainReport { links, problems }
}
