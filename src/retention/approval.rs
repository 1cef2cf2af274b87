//! Two-person approval of a cleanup (rule `review.two_person`).
//!
//! A signer makes an Ed25519 key pair once (`chatvault keygen --sign KEY`: `KEY`, mode 0600,
//! and `KEY.pub`), reads a plan and approves it (`chatvault approve PLAN --key KEY --name
//! NAME`), which signs the plan's SHA-256 — the digest of `PLAN.json`'s bytes that its
//! `.sha256` sidecar holds and that `clean` verifies — into `PLAN.json.approvals/NAME.sig`.
//! `clean --apply --require-approvals N --trusted-keys DIR` counts the distinct keys of
//! `DIR/*.pub` that signed this very digest and refuses, before touching anything, when
//! there are fewer than N, or when any signature file is malformed or does not verify.
//!
//! What is signed is never the attacker's bytes alone: it is the text
//! `chatvault approve v1\nplan-sha256 <hex>\nsigner <name>\nsigned-at <time>\n`, so a
//! signature binds the plan, the name and the time, and a signature made by the same key
//! for another purpose cannot pass for an approval.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{SubsecRound, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::{format_time, parse_time, sha256_hex, RetentionError};
use crate::digest::hex;

/// First line of a signing (secret) key file; the second is the 32-byte seed in hex.
pub const SECRET_KEY_HEADER: &str = "chatvault-ed25519-secret-v1";
/// First line of a public key file (`KEY.pub`); the second is the 32-byte key in hex.
pub const PUBLIC_KEY_HEADER: &str = "chatvault-ed25519-public-v1";
/// The `format` of a `.sig` file.
pub const APPROVAL_FORMAT: &str = "chatvault-approval-v1";
/// The first line of every signed message (domain separation).
const SIGNED_CONTEXT: &str = "chatvault approve v1";
/// Longest signer name, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Key and signature files are a few hundred bytes; anything this large is not one.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Everything that can go wrong with keys, approvals and their check. Messages name the
/// file and the way out.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error(transparent)]
    Plan(#[from] RetentionError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} already exists; refusing to overwrite a key (choose another path)", path.display())]
    KeyExists { path: PathBuf },
    #[error("signing key {}: {reason} (make one with `chatvault keygen --sign KEY`)", path.display())]
    SecretKeyMalformed { path: PathBuf, reason: String },
    #[error("signing key {} can be read by others (mode {mode:o}); refusing to use it: run `chmod 600 {}`, and consider the key exposed", path.display(), path.display())]
    SecretKeyUnprotected { path: PathBuf, mode: u32 },
    #[error("public key {}: {reason} (a KEY.pub written by `chatvault keygen --sign KEY`)", path.display())]
    PublicKeyMalformed { path: PathBuf, reason: String },
    #[error("no trusted keys in {}: put the signers' KEY.pub files (from `chatvault keygen --sign KEY`) there", dir.display())]
    NoTrustedKeys { dir: PathBuf },
    #[error("invalid signer name {name:?}: {reason}")]
    BadSignerName { name: String, reason: String },
    #[error("{} already holds {what}; remove it or give --replace", path.display())]
    ApprovalExists { path: PathBuf, what: String },
    #[error("signature file {}: {reason}; every approval is refused until it is removed or made again with `chatvault approve`", path.display())]
    SignatureMalformed { path: PathBuf, reason: String },
    #[error("signature file {}: the signature of {signer:?} does not verify against the public key it names: the file was altered or forged; every approval is refused until it is removed", path.display())]
    SignatureInvalid { path: PathBuf, signer: String },
    #[error("approvals refused: {required} distinct trusted key(s) must sign plan {plan_sha256}, {counted} did{detail}; nothing was touched")]
    TooFew {
        required: u32,
        counted: usize,
        plan_sha256: String,
        detail: String,
    },
    #[error("cannot get random bytes from the operating system for a new key: {0}")]
    Random(String),
}

impl ApprovalError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        use ApprovalError as E;
        match self {
            E::Plan(e) => e.exit_code(),
            E::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => exit::NOT_FOUND,
            E::Read { .. }
            | E::SecretKeyMalformed { .. }
            | E::SecretKeyUnprotected { .. }
            | E::PublicKeyMalformed { .. }
            | E::NoTrustedKeys { .. }
            | E::BadSignerName { .. } => exit::USAGE,
            E::Write { .. } | E::KeyExists { .. } | E::ApprovalExists { .. } => exit::OUTPUT,
            E::SignatureMalformed { .. } | E::SignatureInvalid { .. } | E::TooFew { .. } => {
                exit::APPROVAL_REFUSED
            }
            E::Random(_) => exit::INTERNAL,
        }
    }
}

/// An Ed25519 public key: a signer's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The 32 bytes in lower-case hex, as key and signature files write them.
    pub fn to_hex(&self) -> String {
        hex(self.0.as_bytes())
    }

    /// The first 16 hex digits of the key's SHA-256, to tell keys apart in messages.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.0.as_bytes())[..16].to_string()
    }

    /// A key from its hex form; weak (small-order) keys are refused.
    fn from_hex(text: &str) -> Result<PublicKey, String> {
        let bytes: [u8; 32] = decode_hex(text, 32, "public key")?
            .try_into()
            .map_err(|_| "a public key is 32 bytes".to_string())?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| "not a valid Ed25519 public key".to_string())?;
        if key.is_weak() {
            return Err("a weak Ed25519 public key, which anyone can sign for".to_string());
        }
        Ok(PublicKey(key))
    }
}

/// `KEY` → `KEY.pub`.
pub fn public_key_path(secret_path: &Path) -> PathBuf {
    let mut name = secret_path.as_os_str().to_os_string();
    name.push(".pub");
    PathBuf::from(name)
}

/// `PLAN.json` → `PLAN.json.approvals`, the directory of its `.sig` files.
pub fn approvals_dir(plan_path: &Path) -> PathBuf {
    let mut name = plan_path.as_os_str().to_os_string();
    name.push(".approvals");
    PathBuf::from(name)
}

/// Lower-case hex of exactly `len` bytes.
fn decode_hex(text: &str, len: usize, what: &str) -> Result<Vec<u8>, String> {
    if text.len() != len * 2 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(format!(
            "the {what} must be {} lower-case hex digits",
            len * 2
        ));
    }
    data_encoding::HEXLOWER
        .decode(text.as_bytes())
        .map_err(|e| format!("the {what} is not hex: {e}"))
}

/// A key file's text: its header line, then the 32 bytes in hex, nothing else.
fn parse_key_text(text: &str, header: &str) -> Result<String, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first == header => {}
        Some(first) if first.starts_with("chatvault-ed25519-") => {
            return Err(format!("it is a {first} file, not a {header} file"))
        }
        _ => return Err(format!("it does not start with the line {header}")),
    }
    let key = lines
        .next()
        .ok_or_else(|| "the key line is missing".to_string())?;
    if lines.next().is_some() {
        return Err("there is more than the header and the key line".to_string());
    }
    Ok(key.to_string())
}

/// Reads a small file whole, refusing anything but a regular file (a FIFO is not waited on).
fn read_small_file(path: &Path, follow_symlinks: bool) -> Result<Vec<u8>, String> {
    let mut flags = libc::O_NONBLOCK;
    if !follow_symlinks {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => "it is a symbolic link".to_string(),
            _ => format!("cannot open it: {e}"),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".to_string());
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("it is larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// A signer name: what `NAME.sig` is called and what the approval says. Any script's
/// letters are allowed; not `/`, `\`, control characters, a leading `.` or outer spaces.
pub fn check_signer_name(name: &str) -> Result<(), ApprovalError> {
    let bad = |reason: &str| ApprovalError::BadSignerName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(bad("it is longer than 64 characters"));
    }
    if name
        .chars()
        .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(bad(
            "it holds a `/`, `\\` or a control character (it names the file NAME.sig)",
        ));
    }
    if name.starts_with('.') {
        return Err(bad("it starts with `.`"));
    }
    if name.trim() != name {
        return Err(bad("it starts or ends with a space"));
    }
    Ok(())
}

/// A signing key read from its file.
pub struct SecretKey {
    key: SigningKey,
}

// Never the secret bytes, only whose key it is.
impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SecretKey(public key {})",
            self.public_key().fingerprint()
        )
    }
}

impl SecretKey {
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.key.verifying_key())
    }

    /// Reads `KEY`, refusing it when others can read it (as ssh does).
    pub fn read(path: &Path) -> Result<SecretKey, ApprovalError> {
        let meta = fs::metadata(path).map_err(|source| ApprovalError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let malformed = |reason: String| ApprovalError::SecretKeyMalformed {
            path: path.to_path_buf(),
            reason,
        };
        if !meta.is_file() {
            return Err(malformed("it is not a regular file".to_string()));
        }
        let bytes = read_small_file(path, true).map_err(malformed)?;
        let text = String::from_utf8(bytes).map_err(|_| malformed("it is not text".to_string()))?;
        // The format first, so that a KEY.pub given by mistake is named as such.
        let seed_hex = parse_key_text(&text, SECRET_KEY_HEADER).map_err(malformed)?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(ApprovalError::SecretKeyUnprotected {
                path: path.to_path_buf(),
                mode,
            });
        }
        let seed: [u8; 32] = decode_hex(&seed_hex, 32, "key")
            .map_err(malformed)?
            .try_into()
            .map_err(|_| malformed("a key is 32 bytes".to_string()))?;
        Ok(SecretKey {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// A key from its 32-byte seed (the fuzz target's fixed trusted key).
    pub(crate) fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// Makes a new key pair: `KEY` (mode 0600) and `KEY.pub`; refuses if either exists.
    pub fn generate(path: &Path) -> Result<(SecretKey, PathBuf), ApprovalError> {
        let public_path = public_key_path(path);
        for existing in [path, public_path.as_path()] {
            if fs::symlink_metadata(existing).is_ok() {
                return Err(ApprovalError::KeyExists {
                    path: existing.to_path_buf(),
                });
            }
        }
        let mut seed = [0u8; 32];
        OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| ApprovalError::Random(e.to_string()))?;
        let secret = SecretKey {
            key: SigningKey::from_bytes(&seed),
        };
        seed.fill(0);
        let secret_text = format!("{SECRET_KEY_HEADER}\n{}\n", hex(secret.key.as_bytes()));
        write_new_file(path, secret_text.as_bytes(), 0o600)?;
        let public_text = format!("{PUBLIC_KEY_HEADER}\n{}\n", secret.public_key().to_hex());
        if let Err(e) = write_new_file(&public_path, public_text.as_bytes(), 0o644) {
            // Without its public half the key is of no use; leave nothing half made.
            let _ = fs::remove_file(path);
            return Err(e);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = crate::durable::sync_dir(parent);
        }
        Ok((secret, public_path))
    }
}

/// Creates `path` (never replacing anything) with exactly `mode`, writes and syncs it.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ApprovalError> {
    let write_error = |source: io::Error| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ApprovalError::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            ApprovalError::Write {
                path: path.to_path_buf(),
                source,
            }
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    // The umask can only clear bits, but be exact regardless of it.
    let written = file
        .set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.write_all(bytes))
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        drop(file);
        let _ = fs::remove_file(path);
        return Err(write_error(source));
    }
    Ok(())
}

/// Reads a public key file (`KEY.pub`).
pub fn read_public_key(path: &Path) -> Result<PublicKey, ApprovalError> {
    let malformed = |reason: String| ApprovalError::PublicKeyMalformed {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = read_small_file(path, true).map_err(malformed)?;
    let text = String::from_utf8(bytes).map_err(|_| malformed("it is not text".to_string()))?;
    let key_hex = parse_key_text(&text, PUBLIC_KEY_HEADER).map_err(malformed)?;
    PublicKey::from_hex(&key_hex).map_err(malformed)
}

/// One `PLAN.json.approvals/NAME.sig` file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// [`APPROVAL_FORMAT`].
    pub format: String,
    pub signer: String,
    /// The signer's Ed25519 public key, 64 lower-case hex digits.
    pub public_key: String,
    /// The SHA-256 of the plan file approved (its sidecar's digest).
    pub plan_sha256: String,
    /// RFC 3339, UTC.
    pub signed_at: String,
    /// Ed25519 over [`signed_message`], 128 lower-case hex digits.
    pub signature: String,
}

/// The bytes an approval signs.
pub fn signed_message(plan_sha256: &str, signer: &str, signed_at: &str) -> Vec<u8> {
    format!("{SIGNED_CONTEXT}\nplan-sha256 {plan_sha256}\nsigner {signer}\nsigned-at {signed_at}\n")
        .into_bytes()
}

impl Approval {
    /// Signs `plan_sha256` as `signer`, now.
    pub fn sign(key: &SecretKey, plan_sha256: &str, signer: &str) -> Approval {
        // Whole seconds: the time is for people to read.
        let signed_at = format_time(&Utc::now().trunc_subsecs(0));
        let signature = key
            .key
            .sign(&signed_message(plan_sha256, signer, &signed_at));
        Approval {
            format: APPROVAL_FORMAT.to_string(),
            signer: signer.to_string(),
            public_key: key.public_key().to_hex(),
            plan_sha256: plan_sha256.to_string(),
            signed_at,
            signature: hex(&signature.to_bytes()),
        }
    }

    /// The file's text: pretty JSON and a newline.
    pub(crate) fn to_text(&self) -> Result<String, ApprovalError> {
        serde_json::to_string_pretty(self)
            .map(|json| json + "\n")
            .map_err(|e| {
                ApprovalError::Plan(RetentionError::Serialize {
                    what: "approval as JSON",
                    message: e.to_string(),
                })
            })
    }

    /// Checks every field and the signature; `file_stem` is the name the file has.
    /// `Ok` means the signer's key signed this digest, name and time, nothing more: whether
    /// the key is trusted and the digest is the plan's is the caller's to check.
    fn verify(&self, path: &Path, file_stem: &str) -> Result<PublicKey, ApprovalError> {
        let malformed = |reason: String| ApprovalError::SignatureMalformed {
            path: path.to_path_buf(),
            reason,
        };
        if self.format != APPROVAL_FORMAT {
            return Err(malformed(format!(
                "format {:?} is not {APPROVAL_FORMAT:?}",
                self.format
            )));
        }
        check_signer_name(&self.signer).map_err(|e| malformed(e.to_string()))?;
        if self.signer != file_stem {
            return Err(malformed(format!(
                "it is signed by {:?} but named {file_stem:?}.sig",
                self.signer
            )));
        }
        let public_key = PublicKey::from_hex(&self.public_key).map_err(malformed)?;
        decode_hex(&self.plan_sha256, 32, "plan_sha256").map_err(malformed)?;
        parse_time(&self.signed_at).map_err(malformed)?;
        let signature_bytes: [u8; 64] = decode_hex(&self.signature, 64, "signature")
            .map_err(malformed)?
            .try_into()
            .map_err(|_| malformed("a signature is 64 bytes".to_string()))?;
        let signature = Signature::from_bytes(&signature_bytes);
        let message = signed_message(&self.plan_sha256, &self.signer, &self.signed_at);
        // Strict: no malleable signatures, no small-order points.
        public_key
            .0
            .verify_strict(&message, &signature)
            .map_err(|_| ApprovalError::SignatureInvalid {
                path: path.to_path_buf(),
                signer: self.signer.clone(),
            })?;
        Ok(public_key)
    }
}

/// What [`approve`] did.
#[derive(Debug)]
pub struct Approved {
    pub plan: Plan,
    pub plan_sha256: String,
    pub path: PathBuf,
    pub approval: Approval,
    pub public_key: PublicKey,
    /// The same key had already approved this very plan under this name: nothing written.
    pub already: bool,
}

/// Signs the plan at `plan_path` (verified against its sidecar first) as `signer` with the
/// key at `key_path`, into `PLAN.json.approvals/NAME.sig`. An existing `NAME.sig` is
/// replaced only with `replace`, unless it is this key's approval of this plan already.
pub fn approve(
    plan_path: &Path,
    key_path: &Path,
    signer: &str,
    replace: bool,
) -> Result<Approved, ApprovalError> {
    check_signer_name(signer)?;
    let key = SecretKey::read(key_path)?;
    let (plan, plan_sha256) = Plan::read_verified_with_sha256(plan_path)?;
    let public_key = key.public_key();
    let dir = approvals_dir(plan_path);
    match fs::create_dir(&dir) {
        Ok(()) => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                let _ = crate::durable::sync_dir(parent);
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(source) => return Err(ApprovalError::Write { path: dir, source }),
    }
    let path = dir.join(format!("{signer}.sig"));
    if fs::symlink_metadata(&path).is_ok() {
        let existing = read_small_file(&path, false)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Approval>(&bytes).ok());
        if let Some(existing) = &existing {
            let valid = existing.verify(&path, signer).is_ok();
            if valid
                && existing.plan_sha256 == plan_sha256
                && existing.public_key == public_key.to_hex()
            {
                return Ok(Approved {
                    plan,
                    plan_sha256,
                    path,
                    approval: existing.clone(),
                    public_key,
                    already: true,
                });
            }
        }
        if !replace {
            let what = match &existing {
                Some(a) => format!("an approval by {:?} of plan {}", a.signer, a.plan_sha256),
                None => "a file that is not an approval".to_string(),
            };
            return Err(ApprovalError::ApprovalExists { path, what });
        }
    }
    let approval = Approval::sign(&key, &plan_sha256, signer);
    // Written beside, synced, then put in place whole: a crash leaves the old file or the
    // new one. The temporary name starts with `.`, which the check passes over.
    let temp = dir.join(format!(".{signer}.sig.{}.tmp", std::process::id()));
    let _ = fs::remove_file(&temp);
    let written = crate::durable::write_synced(&temp, approval.to_text()?.as_bytes());
    let placed = written.and_then(|()| {
        if replace {
            fs::rename(&temp, &path)
        } else {
            // A link fails if the name was taken meanwhile: never replace without --replace.
            fs::hard_link(&temp, &path).and_then(|()| fs::remove_file(&temp))
        }
    });
    if let Err(source) = placed {
        let _ = fs::remove_file(&temp);
        return Err(if source.kind() == io::ErrorKind::AlreadyExists {
            ApprovalError::ApprovalExists {
                path,
                what: "an approval written meanwhile".to_string(),
            }
        } else {
            ApprovalError::Write { path, source }
        });
    }
    let _ = crate::durable::sync_dir(&dir);
    Ok(Approved {
        plan,
        plan_sha256,
        path,
        approval,
        public_key,
        already: false,
    })
}

/// A key of `--trusted-keys DIR`.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub file: PathBuf,
    pub key: PublicKey,
}

/// The keys whose approvals count: every `*.pub` file of a directory.
#[derive(Debug, Clone)]
pub struct TrustedKeys {
    pub dir: PathBuf,
    pub keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Reads every `*.pub` in `dir`; a malformed one is an error, other files are passed over.
    pub fn load(dir: &Path) -> Result<TrustedKeys, ApprovalError> {
        let read_error = |source| ApprovalError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let name = entry.file_name();
            let is_pub = name
                .to_str()
                .is_some_and(|n| n.ends_with(".pub") && !n.starts_with('.'));
            if is_pub {
                files.push(entry.path());
            }
        }
        files.sort();
        let mut keys = Vec::new();
        for file in files {
            let key = read_public_key(&file)?;
            keys.push(TrustedKey { file, key });
        }
        if keys.is_empty() {
            return Err(ApprovalError::NoTrustedKeys {
                dir: dir.to_path_buf(),
            });
        }
        Ok(TrustedKeys {
            dir: dir.to_path_buf(),
            keys,
        })
    }

    fn find(&self, key: &PublicKey) -> Option<&TrustedKey> {
        self.keys.iter().find(|k| k.key == *key)
    }
}

/// Why a well-formed, verifying approval counts or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalStatus {
    /// A trusted key's approval of this plan, the first by that key.
    Counted { trusted_key_file: PathBuf },
    /// The same key approved this plan in an earlier file (named here): counted once.
    SameKeyAgain { first: PathBuf },
    /// An approval of another plan (digest given): the plan changed since, or it is another's.
    OtherPlan,
    /// Signed by a key that is not in the trusted-keys directory.
    Untrusted,
}

/// One `.sig` file, checked.
#[derive(Debug, Clone)]
pub struct CheckedApproval {
    pub file: PathBuf,
    /// SHA-256 of the file as read, for the journal.
    pub file_sha256: String,
    pub approval: Approval,
    pub public_key: PublicKey,
    pub status: ApprovalStatus,
}

/// Every approval of a plan's directory, checked against the plan's digest and the
/// trusted keys.
#[derive(Debug, Clone)]
pub struct ApprovalCheck {
    pub plan_sha256: String,
    pub dir: PathBuf,
    pub trusted_keys: PathBuf,
    /// In file-name order.
    pub approvals: Vec<CheckedApproval>,
}

/// The approvals a clean acted on, as its journal records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    pub required: u32,
    /// The digest the approvals signed (the plan file's).
    pub plan_sha256: String,
    pub trusted_keys: String,
    pub signatures: Vec<RecordedSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedSignature {
    pub signer: String,
    pub public_key: String,
    pub signed_at: String,
    pub file: String,
    pub file_sha256: String,
    pub trusted_key_file: String,
}

/// Checks every `*.sig` in `dir` (names starting with `.` are passed over): each must be
/// well-formed and verify, or the whole check fails. A missing directory holds no approvals.
pub fn check_approvals(
    plan_sha256: &str,
    dir: &Path,
    trusted: &TrustedKeys,
) -> Result<ApprovalCheck, ApprovalError> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ApprovalError::SignatureMalformed {
                path: dir.to_path_buf(),
                reason: format!("cannot list the directory: {source}"),
            })
        }
        Ok(entries) => {
            for entry in entries {
                let entry = entry.map_err(|source| ApprovalError::SignatureMalformed {
                    path: dir.to_path_buf(),
                    reason: format!("cannot list the directory: {source}"),
                })?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    if name.as_encoded_bytes().ends_with(b".sig") {
                        return Err(ApprovalError::SignatureMalformed {
                            path: entry.path(),
                            reason: "its name is not UTF-8".to_string(),
                        });
                    }
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                if let Some(stem) = name.strip_suffix(".sig") {
                    files.push((entry.path(), stem.to_string()));
                }
            }
        }
    }
    // By signer name, so that which of one key's files counts does not depend on `.sig`.
    files.sort_by(|a, b| a.1.cmp(&b.1));
    let mut first_by_key: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut approvals = Vec::new();
    for (path, stem) in files {
        let malformed = |reason: String| ApprovalError::SignatureMalformed {
            path: path.clone(),
            reason,
        };
        let bytes = read_small_file(&path, false).map_err(malformed)?;
        let approval: Approval = serde_json::from_slice(&bytes)
            .map_err(|e| malformed(format!("not an approval (JSON): {e}")))?;
        let public_key = approval.verify(&path, &stem)?;
        let status = if approval.plan_sha256 != plan_sha256 {
            ApprovalStatus::OtherPlan
        } else if let Some(first) = first_by_key.get(&approval.public_key) {
            ApprovalStatus::SameKeyAgain {
                first: first.clone(),
            }
        } else if let Some(trusted_key) = trusted.find(&public_key) {
            first_by_key.insert(approval.public_key.clone(), path.clone());
            ApprovalStatus::Counted {
                trusted_key_file: trusted_key.file.clone(),
            }
        } else {
            ApprovalStatus::Untrusted
        };
        approvals.push(CheckedApproval {
            file: path.clone(),
            file_sha256: sha256_hex(&bytes),
            approval,
            public_key,
            status,
        });
    }
    Ok(ApprovalCheck {
        plan_sha256: plan_sha256.to_string(),
        dir: dir.to_path_buf(),
        trusted_keys: trusted.dir.clone(),
        approvals,
    })
}

impl ApprovalCheck {
    /// The approvals that count: one per distinct trusted key.
    pub fn counted(&self) -> impl Iterator<Item = &CheckedApproval> {
        self.approvals
            .iter()
            .filter(|a| matches!(a.status, ApprovalStatus::Counted { .. }))
    }

    /// One line per approval: who, with which key, and whether it counts.
    pub fn lines(&self) -> Vec<String> {
        self.approvals
            .iter()
            .map(|a| {
                let name = a
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let status = match &a.status {
                    ApprovalStatus::Counted { trusted_key_file } => {
                        format!("counted (trusted key {})", trusted_key_file.display())
                    }
                    ApprovalStatus::SameKeyAgain { first } => format!(
                        "not counted: the same key as {}",
                        first
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    ),
                    ApprovalStatus::OtherPlan => format!(
                        "not counted: it approves another plan ({})",
                        a.approval.plan_sha256
                    ),
                    ApprovalStatus::Untrusted => format!(
                        "not counted: key {} is not in {}",
                        a.public_key.fingerprint(),
                        self.trusted_keys.display()
                    ),
                };
                format!(
                    "{name}: {} (key {}, {}): {status}",
                    a.approval.signer,
                    a.public_key.fingerprint(),
                    a.approval.signed_at
                )
            })
            .collect()
    }

    /// The record of the approvals for the journal, or the refusal when fewer than
    /// `required` distinct trusted keys signed this plan.
    pub fn require(&self, required: u32) -> Result<ApprovalRecord, ApprovalError> {
        let counted: Vec<&CheckedApproval> = self.counted().collect();
        if (counted.len() as u64) < u64::from(required) {
            let not_counted: Vec<String> = self
                .lines()
                .into_iter()
                .zip(&self.approvals)
                .filter(|(_, a)| !matches!(a.status, ApprovalStatus::Counted { .. }))
                .map(|(line, _)| line)
                .collect();
            let detail = if self.approvals.is_empty() {
                format!(
                    " (no approvals in {}; make them with `chatvault approve PLAN --key KEY --name NAME`)",
                    self.dir.display()
                )
            } else if not_counted.is_empty() {
                String::new()
            } else {
                format!("; {}", not_counted.join("; "))
            };
            return Err(ApprovalError::TooFew {
                required,
                counted: counted.len(),
                plan_sha256: self.plan_sha256.clone(),
                detail,
            });
        }
        // Absolute, so the journal says which files wherever it is read.
        let shown = |path: &Path| {
            std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
                .to_string()
        };
        Ok(ApprovalRecord {
            required,
            plan_sha256: self.plan_sha256.clone(),
            trusted_keys: shown(&self.trusted_keys),
            signatures: counted
                .into_iter()
                .map(|a| RecordedSignature {
                    signer: a.approval.signer.clone(),
                    public_key: a.approval.public_key.clone(),
                    signed_at: a.approval.signed_at.clone(),
                    file: shown(&a.file),
                    file_sha256: a.file_sha256.clone(),
                    trusted_key_file: match &a.status {
                        ApprovalStatus::Counted { trusted_key_file } => shown(trusted_key_file),
                        _ => String::new(),
                    },
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn key_in(dir: &Path, name: &str) -> SecretKey {
        SecretKey::generate(&dir.join(name)).unwrap().0
    }

    fn write_sig(dir: &Path, approval: &Approval) -> PathBuf {
        let path = dir.join(format!("{}.sig", approval.signer));
        fs::write(&path, approval.to_text().unwrap()).unwrap();
        path
    }

    #[test]
    fn key_files_round_trip_and_the_secret_one_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alice.key");
        let (key, public_path) = SecretKey::generate(&path).unwrap();
        assert_eq!(public_path, dir.path().join("alice.key.pub"));
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("chatvault-ed25519-secret-v1\n"), "{text}");
        let public_text = fs::read_to_string(&public_path).unwrap();
        assert_eq!(
            public_text,
            format!(
                "chatvault-ed25519-public-v1\n{}\n",
                key.public_key().to_hex()
            )
        );
        assert_eq!(
            SecretKey::read(&path).unwrap().public_key(),
            key.public_key()
        );
        assert_eq!(read_public_key(&public_path).unwrap(), key.public_key());

        // Neither half is ever replaced.
        let again = SecretKey::generate(&path).unwrap_err();
        assert!(matches!(again, ApprovalError::KeyExists { .. }), "{again}");
        fs::remove_file(&path).unwrap();
        let again = SecretKey::generate(&path).unwrap_err();
        assert!(matches!(again, ApprovalError::KeyExists { .. }), "{again}");
        assert!(!path.exists(), "no secret half without its public half");

        // Readable by others: refused.
        let other = dir.path().join("bob.key");
        SecretKey::generate(&other).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SecretKey::read(&other).err().unwrap();
        assert!(
            matches!(err, ApprovalError::SecretKeyUnprotected { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");

        // A public key where the secret one is expected, and the reverse.
        let swapped = dir.path().join("swapped.key");
        fs::copy(&public_path, &swapped).unwrap();
        fs::set_permissions(&swapped, fs::Permissions::from_mode(0o600)).unwrap();
        let err = SecretKey::read(&swapped).err().unwrap().to_string();
        assert!(err.contains("chatvault-ed25519-public-v1 file"), "{err}");
        let err = read_public_key(&other).unwrap_err().to_string();
        assert!(err.contains("chatvault-ed25519-secret-v1 file"), "{err}");
    }

    #[test]
    fn malformed_key_files_are_named_and_explained() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str); 5] = [
            ("empty", ""),
            ("no-header", "00112233\n"),
            (
                "short",
                "chatvault-ed25519-public-v1\n0011\n",
            ),
            (
                "upper",
                "chatvault-ed25519-public-v1\nAB00000000000000000000000000000000000000000000000000000000000000\n",
            ),
            (
                "extra",
                "chatvault-ed25519-public-v1\n0000000000000000000000000000000000000000000000000000000000000000\nmore\n",
            ),
        ];
        for (name, text) in cases {
            let path = dir.path().join(format!("{name}.pub"));
            fs::write(&path, text).unwrap();
            let err = read_public_key(&path).unwrap_err();
            assert!(
                matches!(err, ApprovalError::PublicKeyMalformed { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(&format!("{name}.pub")), "{err}");
        }
        // The identity point is a valid encoding but a weak key: anyone can sign for it.
        let weak = dir.path().join("weak.pub");
        fs::write(
            &weak,
            "chatvault-ed25519-public-v1\n0100000000000000000000000000000000000000000000000000000000000000\n",
        )
        .unwrap();
        let err = read_public_key(&weak).unwrap_err().to_string();
        assert!(err.contains("weak"), "{err}");
    }

    #[test]
    fn signer_names_are_file_names_without_surprises() {
        for good in ["alice", "Li Wei", "李伟", "reviewer-2.b_c"] {
            check_signer_name(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "../x",
            "a/b",
            "a\\b",
            "a\nb",
            " alice",
            &"x".repeat(65),
        ] {
            assert!(check_signer_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_approval_verifies_and_any_change_breaks_it() {
        let keys = tempfile::tempdir().unwrap();
        let key = key_in(keys.path(), "alice.key");
        let approval = Approval::sign(&key, DIGEST, "alice");
        assert_eq!(approval.format, APPROVAL_FORMAT);
        let path = Path::new("alice.sig");
        assert_eq!(approval.verify(path, "alice").unwrap(), key.public_key());

        let other_digest = format!("f{}", &DIGEST[1..]);
        let changes: Vec<(&str, Approval)> = vec![
            (
                "digest",
                Approval {
                    plan_sha256: other_digest,
                    ..approval.clone()
                },
            ),
            (
                "time",
                Approval {
                    signed_at: "2020-01-01T00:00:00Z".to_string(),
                    ..approval.clone()
                },
            ),
            (
                "key",
                Approval {
                    public_key: key_in(keys.path(), "bob.key").public_key().to_hex(),
                    ..approval.clone()
                },
            ),
        ];
        for (what, changed) in changes {
            let err = changed.verify(path, "alice").unwrap_err();
            assert!(
                matches!(err, ApprovalError::SignatureInvalid { .. }),
                "{what}: {err}"
            );
        }
        // A renamed signer no longer matches the file, nor the signature.
        let renamed = Approval {
            signer: "bob".to_string(),
            ..approval.clone()
        };
        assert!(matches!(
            renamed.verify(path, "alice").unwrap_err(),
            ApprovalError::SignatureMalformed { .. }
        ));
        assert!(matches!(
            renamed.verify(path, "bob").unwrap_err(),
            ApprovalError::SignatureInvalid { .. }
        ));
        // The same key's signature of the bare digest is not an approval.
        let bare = Approval {
            signature: hex(&key.key.sign(DIGEST.as_bytes()).to_bytes()),
            ..approval.clone()
        };
        assert!(matches!(
            bare.verify(path, "alice").unwrap_err(),
            ApprovalError::SignatureInvalid { .. }
        ));
        for (what, bad) in [
            (
                "format",
                Approval {
                    format: "chatvault-approval-v0".to_string(),
                    ..approval.clone()
                },
            ),
            (
                "hex",
                Approval {
                    signature: approval.signature.to_uppercase(),
                    ..approval.clone()
                },
            ),
            (
                "time",
                Approval {
                    signed_at: "yesterday".to_string(),
                    ..approval.clone()
                },
            ),
        ] {
            assert!(
                matches!(
                    bad.verify(path, "alice").unwrap_err(),
                    ApprovalError::SignatureMalformed { .. }
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn the_check_counts_distinct_trusted_keys_of_this_plan() {
        let keys = tempfile::tempdir().unwrap();
        let trusted_dir = tempfile::tempdir().unwrap();
        let sigs = tempfile::tempdir().unwrap();
        let alice = key_in(keys.path(), "alice.key");
        let bob = key_in(keys.path(), "bob.key");
        let eve = key_in(keys.path(), "eve.key");
        for name in ["alice", "bob"] {
            fs::copy(
                keys.path().join(format!("{name}.key.pub")),
                trusted_dir.path().join(format!("{name}.pub")),
            )
            .unwrap();
        }
        fs::write(trusted_dir.path().join("README"), "not a key").unwrap();
        let trusted = TrustedKeys::load(trusted_dir.path()).unwrap();
        assert_eq!(trusted.keys.len(), 2);

        let missing = sigs.path().join("none");
        let check = check_approvals(DIGEST, &missing, &trusted).unwrap();
        assert_eq!(check.counted().count(), 0);
        assert!(check.require(0).is_ok());
        let err = check.require(1).unwrap_err().to_string();
        assert!(err.contains("no approvals in"), "{err}");

        write_sig(sigs.path(), &Approval::sign(&alice, DIGEST, "alice"));
        write_sig(sigs.path(), &Approval::sign(&alice, DIGEST, "alice-again"));
        write_sig(sigs.path(), &Approval::sign(&eve, DIGEST, "eve"));
        let other = format!("{}0", &DIGEST[..63]);
        write_sig(sigs.path(), &Approval::sign(&bob, &other, "bob"));
        // An interrupted approve's temporary file is passed over.
        fs::write(sigs.path().join(".bob.sig.1.tmp"), "{").unwrap();
        let check = check_approvals(DIGEST, sigs.path(), &trusted).unwrap();
        let statuses: Vec<(String, ApprovalStatus)> = check
            .approvals
            .iter()
            .map(|a| (a.approval.signer.clone(), a.status.clone()))
            .collect();
        assert_eq!(
            statuses,
            vec![
                (
                    "alice".to_string(),
                    ApprovalStatus::Counted {
                        trusted_key_file: trusted_dir.path().join("alice.pub")
                    }
                ),
                (
                    "alice-again".to_string(),
                    ApprovalStatus::SameKeyAgain {
                        first: sigs.path().join("alice.sig")
                    }
                ),
                ("bob".to_string(), ApprovalStatus::OtherPlan),
                ("eve".to_string(), ApprovalStatus::Untrusted),
            ]
        );
        let err = check.require(2).unwrap_err();
        assert!(
            matches!(err, ApprovalError::TooFew { counted: 1, .. }),
            "{err}"
        );
        let text = err.to_string();
        for part in ["same key as alice.sig", "another plan", "is not in"] {
            assert!(text.contains(part), "{part}: {text}");
        }

        write_sig(sigs.path(), &Approval::sign(&bob, DIGEST, "bob"));
        let check = check_approvals(DIGEST, sigs.path(), &trusted).unwrap();
        let record = check.require(2).unwrap();
        let signers: Vec<&str> = record
            .signatures
            .iter()
            .map(|s| s.signer.as_str())
            .collect();
        assert_eq!(signers, ["alice", "bob"]);
        let bob_file = sigs.path().join("bob.sig");
        assert_eq!(
            record.signatures[1].file_sha256,
            sha256_hex(&fs::read(&bob_file).unwrap())
        );
        assert_eq!(record.signatures[1].public_key, bob.public_key().to_hex());

        // One bad file refuses them all, naming it.
        fs::write(sigs.path().join("mallory.sig"), "not json").unwrap();
        let err = check_approvals(DIGEST, sigs.path(), &trusted).unwrap_err();
        assert!(
            matches!(err, ApprovalError::SignatureMalformed { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("mallory.sig"), "{err}");
        fs::remove_file(sigs.path().join("mallory.sig")).unwrap();
        std::os::unix::fs::symlink(&bob_file, sigs.path().join("link.sig")).unwrap();
        let err = check_approvals(DIGEST, sigs.path(), &trusted)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn an_empty_trusted_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = TrustedKeys::load(dir.path()).unwrap_err();
        assert!(matches!(err, ApprovalError::NoTrustedKeys { .. }), "{err}");
        let err = TrustedKeys::load(&dir.path().join("missing")).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit::NOT_FOUND);
    }
}
