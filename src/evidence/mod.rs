//! Evidence bundles: a streaming BagIt 1.0 (RFC 8493) writer (directory or zip),
//! a verifier for those bundles, and `sha256sum`-compatible hashing.
//!
//! The bundle layout and sidecar files are a contract with tools we did not write
//! (`bagit.py --validate`, `sha256sum -c`, `unzip`, Python `zipfile`); see
//! `shared/spec/outputs.md`, section "Evidence bundle".
//!
//! SHA-256 speed: `sha2` 0.10 on x86/x86_64 detects SHA-NI (and SSSE3/SSE4.1) at run
//! time through `cpufeatures`, with default features. Its `asm` feature would instead
//! link `sha2-asm`, which has no SHA-NI path, so it must stay off.

pub mod bag;
pub mod bagit;
pub mod hashsum;
mod publish;
pub mod tee;
#[cfg(test)]
mod testkit;
pub mod unchanged;
pub mod verify;
mod zipbag;
mod zipread;
mod zipwrite;

use std::io;
use std::path::{Path, PathBuf};

pub use bag::{BagOptions, BagSummary, BagWriter, FileDigest, PayloadSummary, PayloadText};
pub use hashsum::{
    check_sha256sum, format_sha256sum, hash_paths, parse_line as parse_sha256sum_line, CheckReport,
};
pub use verify::{verify, Outcome, SourceCheck, VerifyOptions, VerifyReport};

/// Everything that can go wrong while writing, verifying or hashing evidence.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} already exists; choose another output name or pass --force to replace it (the old bundle is kept until the new one is complete)", .0.display())]
    ExistingOutput(PathBuf),
    #[error("the output directory {} does not exist (chatvault does not create it; make it first)", .0.display())]
    OutputParentMissing(PathBuf),
    #[error("refusing to write the bundle {}: it {relation} the source {}; choose an output outside the source", out.display(), protected.display())]
    OutputOverlapsSource {
        out: PathBuf,
        protected: PathBuf,
        relation: &'static str,
    },
    #[error("refusing to replace or remove {}: {reason}; only chatvault's own bundles are replaced (move it away or choose another output name)", path.display())]
    NotOurs { path: PathBuf, reason: &'static str },
    #[error(transparent)]
    Locked(#[from] crate::lockfile::LockError),
    #[error("cannot use {name:?} as a bundle name: {reason}")]
    InvalidOutputName { name: String, reason: &'static str },
    #[error(
        "payload path {path:?} refused: {reason}; sanitize the name before adding it to the bundle"
    )]
    UnsafePayloadPath { path: String, reason: &'static str },
    #[error("payload path {path:?} collides with {existing:?} already in the bundle ({reason}); give one of them another name")]
    DuplicatePayloadPath {
        path: String,
        existing: String,
        reason: &'static str,
    },
    #[error("bag-info.txt field {label:?} refused: {reason}")]
    InvalidBagInfo { label: String, reason: &'static str },
    #[error("payload text {rel:?} was opened but never handed back to finish_text")]
    UnfinishedPayload { rel: String },
    #[error("payload text {rel:?} was opened by another bundle writer")]
    ForeignPayloadText { rel: String },
    #[error("zip {}: {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{} is not an evidence bundle: {reason}", path.display())]
    NotABundle { path: PathBuf, reason: String },
}

impl EvidenceError {
    /// The command's exit code for this error ([`crate::exit`]): a lock held elsewhere, not
    /// a bundle, or else an output that cannot be written.
    pub fn exit_code(&self) -> u8 {
        match self {
            EvidenceError::Locked(crate::lockfile::LockError::Held { .. }) => crate::exit::LOCKED,
            e if e.is_not_a_bundle() => crate::exit::NOT_A_BUNDLE,
            _ => crate::exit::OUTPUT,
        }
    }
}

impl EvidenceError {
    /// True when the input is not a bundle at all (as opposed to a damaged one):
    /// the CLI gives this its own exit code.
    pub fn is_not_a_bundle(&self) -> bool {
        matches!(self, EvidenceError::NotABundle { .. })
    }
}

/// `map_err` helper that attaches what was being done and to which path.
pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EvidenceError {
    let path = path.to_path_buf();
    move |source| EvidenceError::Io {
        action,
        path,
        source,
    }
}

/// Why a '/'-separated relative path inside a bag (or a zip entry name) could escape
/// its root or be read differently by different tools; `None` when it is safe.
pub(crate) fn unsafe_path_reason(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("empty path");
    }
    if path.starts_with('/') {
        return Some("absolute path");
    }
    if path.contains('\\') {
        // A path separator on Windows: "a\..\..\x" escapes there.
        return Some("contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return Some("contains a control character (NUL, CR, LF, ...)");
    }
    let bytes = path.as_bytes();
    if bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic() {
        return Some("starts with a drive letter");
    }
    for component in path.split('/') {
        match component {
            "" => return Some("has an empty component (// or a trailing /)"),
            "." | ".." => return Some("has a . or .. component"),
            _ => {}
        }
    }
    None
}

/// Checks a payload path relative to `data/` against the rules every BagIt
/// validator and `sha256sum -c` agree on.
pub(crate) fn validate_payload_rel(rel: &str) -> Result<(), EvidenceError> {
    let refuse = |reason| {
        Err(EvidenceError::UnsafePayloadPath {
            path: rel.to_string(),
            reason,
        })
    };
    if let Some(reason) = unsafe_path_reason(rel) {
        return refuse(reason);
    }
    if rel.contains('%') {
        // RFC 8493 percent-encodes %, CR, LF in manifests; not every reader decodes.
        return refuse("contains %");
    }
    if rel.starts_with(char::is_whitespace) || rel.ends_with(char::is_whitespace) {
        // Manifest readers (bagit.py) strip surrounding whitespace from the path.
        return refuse("starts or ends with whitespace");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_paths_are_validated() {
        for ok in ["messages.csv", "media/g1/报价单 (1).xlsx", "a/b c/d"] {
            assert!(validate_payload_rel(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\..\\b",
            "C:x",
            "50%.jpg",
            "a\rb",
            "a\nb",
            "a\0b",
            " lead",
            "trail\u{3000}",
        ] {
            assert!(validate_payload_rel(bad).is_err(), "{bad:?}");
        }
    }
}
