//! Retention: the documented retention periods as a policy, the per-file
//! cleanup decision, the cleanup plan file, its approval by signers, and its
//! execution (clean / undo).
//!
//! The authority for every rule is `spec/retention.md`; each rule carries the
//! seed citation it comes from so plans and reasons can quote it.

pub mod approval;
pub mod clean;
pub mod decide;
pub mod guard;
pub(crate) mod handles;
pub mod plan;
pub mod policy;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Months, Utc};

pub use approval::{ApprovalCheck, ApprovalError, ApprovalRecord, TrustedKeys};
pub(crate) use clean::spill_dir_for;
pub use clean::{
    clean, undo, undo_with, CleanCounts, CleanEvent, CleanOptions, CleanReport, UndoEvent,
    UndoReport,
};
pub use decide::{
    decide, infer_group_type, infer_group_type_with_source, resolve_group_type,
    split_group_assignment, Action, Category, Decision, FileFacts, GroupFacts, GroupType,
};
pub use plan::{
    CsvStyle, EntryBlock, FileStamp, Plan, PlanEntries, PlanEntry, PlanFile, PlanFiles, PlanHeader,
    PlanStats, PlanTotals, PlanWriter, TotalCount,
};
pub use policy::{ApprovalPolicy, Clock, Period, PeriodUnit, Policy, Rule, RuleKind};

/// Everything that can go wrong in the retention module. Messages name the
/// file involved and, where there is one, the way out.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("policy file {}: {message}", path.display())]
    PolicyFile { path: PathBuf, message: String },
    #[error("policy: invalid period {value:?} for rule {rule_id}: {reason} (write e.g. \"72 hours\", \"7 days\", \"6 months\", \"3 years\" or \"none\")")]
    InvalidPeriod {
        rule_id: String,
        value: String,
        reason: String,
    },
    #[error("cannot serialize {what}: {message}")]
    Serialize { what: &'static str, message: String },
    #[error("plan {}: not a valid plan file: {message}", path.display())]
    PlanParse { path: PathBuf, message: String },
    #[error("plan {}: checksum sidecar {} is missing; refusing an unverified plan (re-create it with `chatvault plan`)", plan.display(), sidecar.display())]
    SidecarMissing { plan: PathBuf, sidecar: PathBuf },
    #[error("plan {}: checksum sidecar {} is malformed: {message}", plan.display(), sidecar.display())]
    SidecarMalformed {
        plan: PathBuf,
        sidecar: PathBuf,
        message: String,
    },
    #[error("plan {}: SHA-256 {actual} does not match its sidecar ({expected}); the plan was modified after it was written — refusing it", plan.display())]
    SidecarMismatch {
        plan: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("plan root {} does not exist or is not a directory: {message}", root.display())]
    RootMissing { root: PathBuf, message: String },
    #[error("plan root {} is no longer the directory the plan was made for (device/inode {expected_dev}/{expected_ino}, now {found_dev}/{found_ino}); make a new plan", root.display())]
    RootReplaced {
        root: PathBuf,
        expected_dev: u64,
        expected_ino: u64,
        found_dev: u64,
        found_ino: u64,
    },
    #[error("plan was made for {}, but the expected root is {}; refusing to clean a different directory", plan_root.display(), expected_root.display())]
    RootMismatch {
        plan_root: PathBuf,
        expected_root: PathBuf,
    },
    #[error("journal {} belongs to another plan (plan SHA-256 {journal_plan_sha256}, this plan {plan_sha256}); choose another --journal path", journal.display())]
    JournalForeign {
        journal: PathBuf,
        journal_plan_sha256: String,
        plan_sha256: String,
    },
    #[error("journal {} line {line}: {message}", journal.display())]
    JournalCorrupt {
        journal: PathBuf,
        line: usize,
        message: String,
    },
    #[error("quarantine directory {} is inside the plan root {}; choose a directory outside the cache being cleaned", quarantine.display(), root.display())]
    QuarantineInsideRoot { quarantine: PathBuf, root: PathBuf },
    #[error("the plan names its root {} but nobody confirmed it: give --root DIR (the directory you mean to clean) with --apply --yes, or run interactively and confirm; a plan is a request, not an authority", plan_root.display())]
    RootNotConfirmed { plan_root: PathBuf },
    #[error("plan root {} was planned as a {plan_platform} source but now holds {found}; refusing to clean it (make a new plan)", root.display())]
    PlatformMismatch {
        root: PathBuf,
        plan_platform: String,
        found: String,
    },
    #[error("plan asks to delete {count} file(s) that are never deleted whatever a plan says; refusing the whole plan, nothing was touched (it was edited, or not written by `chatvault plan`): {}", entries.iter().take(10).map(|(p, why)| format!("{p:?}: {why}")).collect::<Vec<_>>().join("; "))]
    PlanUnsafe {
        count: usize,
        entries: Vec<(String, String)>,
    },
    #[error(transparent)]
    Locked(#[from] crate::lockfile::LockError),
    #[error("invalid {what} {value:?}: {hint}")]
    InvalidArgument {
        what: &'static str,
        value: String,
        hint: String,
    },
}

impl RetentionError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        use RetentionError as E;
        match self {
            E::SidecarMissing { .. }
            | E::SidecarMalformed { .. }
            | E::SidecarMismatch { .. }
            | E::RootMissing { .. }
            | E::RootReplaced { .. }
            | E::RootMismatch { .. }
            | E::PlatformMismatch { .. }
            | E::PlanUnsafe { .. }
            | E::PlanParse { .. } => exit::PLAN_REFUSED,
            E::QuarantineInsideRoot { .. }
            | E::RootNotConfirmed { .. }
            | E::InvalidArgument { .. }
            | E::PolicyFile { .. }
            | E::InvalidPeriod { .. } => exit::USAGE,
            E::Locked(crate::lockfile::LockError::Held { .. }) => exit::LOCKED,
            _ => exit::INTERNAL,
        }
    }
}

impl RetentionError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        RetentionError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Adds calendar months, clamping the day to the end of the target month
/// (2025-08-31 + 6 months = 2026-02-28). The time of day is kept. Saturates
/// at the largest representable time instead of failing.
pub fn add_months(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// RFC 3339 in UTC with a `Z`, with as many fractional digits as the time has
/// (none for whole seconds) so that a round trip is exact.
pub fn format_time(t: &DateTime<Utc>) -> String {
    crate::timefmt::utc_auto_si(t)
}

/// Parses RFC 3339 (any offset) into UTC.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// A short human form for reasons: the date alone at midnight, else date and time.
pub(crate) fn human_time(t: &DateTime<Utc>) -> String {
    if t.format("%H:%M:%S%.f").to_string() == "00:00:00" {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

pub(crate) use crate::digest::{sha256_hex, sha256_reader};

/// serde helpers for `DateTime<Utc>` as RFC 3339 text (chrono is built without serde).
pub(crate) mod serde_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_time(&text).map_err(serde::de::Error::custom)
    }
}

/// Same as [`serde_time`] for optional times (`null` when absent).
pub(crate) mod serde_opt_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::format_time(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => super::parse_time(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn add_months_clamps_day() {
        let t = Utc.with_ymd_and_hms(2025, 8, 31, 10, 0, 0).unwrap();
        assert_eq!(
            add_months(t, 6),
            Utc.with_ymd_and_hms(2026, 2, 28, 10, 0, 0).unwrap()
        );
        let leap = Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap();
        assert_eq!(
            add_months(leap, 36),
            Utc.with_ymd_and_hms(2027, 2, 28, 0, 0, 0).unwrap()
        );
        assert_eq!(
            add_months(leap, 48),
            Utc.with_ymd_and_hms(2028, 2, 29, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn time_round_trip_is_exact() {
        let t = Utc.timestamp_opt(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(parse_time(&format_time(&t)).unwrap(), t);
        let whole = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert_eq!(format_time(&whole), "2023-11-14T22:13:20Z");
    }
}
