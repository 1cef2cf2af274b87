//! Anonymized exports: keyed member pseudonyms and PII redaction.
//!
//! The contract is `outputs.md`, section "Anonymized exports": every member id,
//! alias, display name and group nickname becomes the member's pseudonym
//! `m_` + 12 lowercase base32 characters of HMAC-SHA256(key, platform ‖ member
//! id), and PII in free text becomes a typed token (`[PHONE]`, `[ID]`, …).
//!
//! [`Anonymizer::text`] matches on a compatibility-normalized form of the text
//! (full-width digits and `＠` are common in Chinese chats) but replaces spans
//! of the original, so text without a match comes out byte for byte unchanged.
//!
//! The matching form is NFKD rather than NFKC. Both fold full-width and other
//! compatibility characters the same way; they differ only in that NFKC then
//! composes. Matching decomposed text covers both promises of the contract
//! with one pass: a name that occurs in NFKC(text) occurs in NFKD(text), and so
//! does a name left verbatim in the raw text but followed by a combining mark
//! (`Lisa` + U+0301, which NFKC would compose into `Lisá` and hide). The price
//! is an occasional extra replacement (`Jose` inside `José`).

pub mod names;
pub mod pii;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use data_encoding::{BASE32_NOPAD, HEXLOWER};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use unicode_normalization::char::{canonical_combining_class, decompose_compatible};
use unicode_normalization::{is_nfkd_quick, IsNormalized, UnicodeNormalization};

use names::{NameMatcher, NameSets};

/// Length of a chatvault key file, in bytes.
pub const KEY_LEN: usize = 32;

/// Number of base32 characters after `m_` in a pseudonym.
const PSEUDONYM_CHARS: usize = 12;

/// What a name becomes if pseudonyms keep re-creating it (see [`Anonymizer::text`]).
const NAME_TOKEN: &str = "[NAME]";

/// What every text becomes if the name matcher could not be built: nothing may leak.
const REDACTED_TOKEN: &str = "[REDACTED]";

/// How often [`Anonymizer::text`] re-checks its output for names that a
/// replacement created across its own edges before falling back to [`NAME_TOKEN`].
const MAX_VERIFY_ROUNDS: usize = 3;

type HmacSha256 = Hmac<Sha256>;

/// Errors of key handling and anonymizer setup.
#[derive(Debug, thiserror::Error)]
pub enum AnonError {
    #[error(
        "key file {} already exists; refusing to overwrite it, because every pseudonym depends on the key \
         (pass it with --key-file to reuse it, or choose another path)",
        path.display()
    )]
    KeyExists { path: PathBuf },

    #[error(
        "key file {} is {len} bytes; a chatvault key is exactly {KEY_LEN} bytes (create one with `chatvault keygen`)",
        path.display()
    )]
    KeyLength { path: PathBuf, len: u64 },

    #[error("key file {} is not a regular file; a chatvault key is a 32-byte file (create one with `chatvault keygen`)", path.display())]
    KeyNotFile { path: PathBuf },

    #[error("cannot read key file {}: {source}", path.display())]
    KeyRead { path: PathBuf, source: io::Error },

    #[error("cannot create key file {}: {source} (check that the directory exists and is writable)", path.display())]
    KeyCreate { path: PathBuf, source: io::Error },

    #[error("cannot get random bytes from the operating system for a new key: {0}")]
    Random(String),

    #[error("cannot build the name matcher for {members} members: {reason}")]
    NameMatcher { members: usize, reason: String },
}

impl AnonError {
    /// The command's exit code for this error ([`crate::exit`]): an existing key is an
    /// output refused; any other key problem is the command line's.
    pub fn exit_code(&self) -> u8 {
        match self {
            AnonError::KeyExists { .. } => crate::exit::OUTPUT,
            _ => crate::exit::USAGE,
        }
    }
}

/// A 32-byte secret key for pseudonyms. Its `Debug` shows only the fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl Key {
    /// Wraps key bytes obtained elsewhere (tests, a key held in memory).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// Creates a new random key at `path` (mode 0600 on Unix). Refuses if
    /// anything exists at `path`: replacing a key would silently change every
    /// pseudonym of every later export.
    pub fn generate(path: &Path) -> Result<Key, AnonError> {
        let mut bytes = [0u8; KEY_LEN];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|err| AnonError::Random(err.to_string()))?;
        let mut file = create_private_file(path).map_err(|source| {
            if source.kind() == io::ErrorKind::AlreadyExists {
                AnonError::KeyExists {
                    path: path.to_path_buf(),
                }
            } else {
                AnonError::KeyCreate {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        if let Err(source) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
            // A truncated key file would only make the next run fail.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(AnonError::KeyCreate {
                path: path.to_path_buf(),
                source,
            });
        }
        Ok(Key(bytes))
    }

    /// Reads the key at `path`, or creates one (mode 0600) if nothing is there.
    pub fn load_or_create(path: &Path) -> Result<Key, AnonError> {
        if let Some(key) = read_key(path)? {
            return Ok(key);
        }
        match Key::generate(path) {
            // Another process created it between our read and our create.
            Err(AnonError::KeyExists { .. }) => read_key(path)?.ok_or_else(|| AnonError::KeyRead {
                path: path.to_path_buf(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "the key file vanished while it was being created",
                ),
            }),
            other => other,
        }
    }

    /// The first 16 hex characters of SHA-256(key): safe to record, identifies the key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.0);
        HEXLOWER.encode(&digest[..8])
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(fingerprint {})", self.fingerprint())
    }
}

/// Opens a new file that only the owner may read, failing if `path` exists
/// (including as a dangling symlink, thanks to `O_EXCL`).
fn create_private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // The umask can only clear bits, but be exact regardless of it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.open(path)
    }
}

/// Reads a key file; `Ok(None)` if there is none.
fn read_key(path: &Path) -> Result<Option<Key>, AnonError> {
    let read_error = |source| AnonError::KeyRead {
        path: path.to_path_buf(),
        source,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(read_error(err)),
    };
    let metadata = file.metadata().map_err(read_error)?;
    if !metadata.is_file() {
        return Err(AnonError::KeyNotFile {
            path: path.to_path_buf(),
        });
    }
    let length_error = |len| AnonError::KeyLength {
        path: path.to_path_buf(),
        len,
    };
    if metadata.len() != KEY_LEN as u64 {
        return Err(length_error(metadata.len()));
    }
    // Read one byte more than needed to notice a file that grew meanwhile.
    let mut bytes = Vec::with_capacity(KEY_LEN + 1);
    file.take(KEY_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    let key: [u8; KEY_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| length_error(bytes.len() as u64))?;
    Ok(Some(Key(key)))
}

/// HMAC-SHA256 over the concatenation of `parts`.
fn hmac_sha256(key: &Key, parts: &[&[u8]]) -> [u8; 32] {
    // HMAC zero-pads keys shorter than the hash block (RFC 2104 §2), so padding
    // the key to the block ourselves gives the same MAC through the infallible
    // fixed-size constructor.
    let mut block = hmac::digest::Key::<HmacSha256>::default();
    block[..KEY_LEN].copy_from_slice(&key.0);
    let mut mac = <HmacSha256 as KeyInit>::new(&block);
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The pseudonym of a member: `m_` + the first 12 characters of the lowercase
/// RFC 4648 base32 (no padding) of HMAC-SHA256(key, platform ‖ member_id).
pub fn pseudonym(key: &Key, platform: &str, member_id: &str) -> String {
    let digest = hmac_sha256(key, &[platform.as_bytes(), member_id.as_bytes()]);
    let encoded = BASE32_NOPAD.encode(&digest);
    let mut pseudonym = String::with_capacity(2 + PSEUDONYM_CHARS);
    pseudonym.push_str("m_");
    pseudonym.extend(
        encoded
            .chars()
            .take(PSEUDONYM_CHARS)
            .map(|c| c.to_ascii_lowercase()),
    );
    pseudonym
}

/// A member and every string that names them in text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub member_id: String,
    /// Alias, display name, group nickname; any may repeat or be empty.
    pub names: Vec<String>,
}

/// A known member: the id and its precomputed pseudonym.
#[derive(Debug)]
struct Member {
    id: String,
    pseudonym: String,
}

/// Which replacements one rewriting pass makes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Names → pseudonyms, then PII → tokens in the text between names.
    Full,
    /// Names → pseudonyms only (re-checking an output).
    NamesOnly,
    /// Names → [`NAME_TOKEN`] (last resort of the re-check).
    NamesToToken,
}

/// Replaces member names and PII in free text (see the module docs).
pub struct Anonymizer {
    key: Key,
    platform: String,
    fingerprint: String,
    /// Sorted by id, so a lower index is a lexicographically smaller id.
    members: Vec<Member>,
    member_index: HashMap<String, usize>,
    names: NameSets,
    /// Set when the name matcher could not be built: every text is then redacted whole.
    unusable: bool,
}

impl fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Anonymizer")
            .field("platform", &self.platform)
            .field("key_fingerprint", &self.fingerprint)
            .field("members", &self.members.len())
            .field("unusable", &self.unusable)
            .finish()
    }
}

impl Anonymizer {
    /// Builds an anonymizer for one platform's members. Should the name
    /// matcher be impossible to build (far beyond any real group size), every
    /// text is replaced by `[REDACTED]` rather than leaking names; use
    /// [`Anonymizer::try_new`] to get the error instead.
    pub fn new(key: &Key, platform: &str, identities: Vec<Identity>) -> Anonymizer {
        let (mut anonymizer, names) = Anonymizer::build(key, platform, identities);
        match names {
            Ok(names) => anonymizer.names = names,
            Err(_) => anonymizer.unusable = true,
        }
        anonymizer
    }

    /// Like [`Anonymizer::new`], but fails if the name matcher cannot be built.
    pub fn try_new(
        key: &Key,
        platform: &str,
        identities: Vec<Identity>,
    ) -> Result<Anonymizer, AnonError> {
        let (mut anonymizer, names) = Anonymizer::build(key, platform, identities);
        anonymizer.names = names.map_err(|err| AnonError::NameMatcher {
            members: anonymizer.members.len(),
            reason: err.to_string(),
        })?;
        Ok(anonymizer)
    }

    /// The anonymizer without name matchers, and the matchers.
    fn build(
        key: &Key,
        platform: &str,
        identities: Vec<Identity>,
    ) -> (Anonymizer, Result<NameSets, aho_corasick::BuildError>) {
        // Merge repeated member ids; BTreeMap order makes the lowest index the
        // lexicographically smallest id, which wins shared names.
        let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for identity in identities {
            let strings = merged.entry(identity.member_id.clone()).or_default();
            strings.push(identity.member_id);
            strings.extend(identity.names);
        }
        let mut members = Vec::with_capacity(merged.len());
        let mut member_strings = Vec::with_capacity(merged.len());
        for (id, strings) in merged {
            members.push(Member {
                pseudonym: pseudonym(key, platform, &id),
                id,
            });
            member_strings.push(strings);
        }
        let member_index = members
            .iter()
            .enumerate()
            .map(|(index, member)| (member.id.clone(), index))
            .collect();
        let anonymizer = Anonymizer {
            key: key.clone(),
            platform: platform.to_owned(),
            fingerprint: key.fingerprint(),
            members,
            member_index,
            names: NameSets::default(),
            unusable: false,
        };
        (anonymizer, names::build(&member_strings))
    }

    /// The member's pseudonym. An empty id (system messages have no sender)
    /// stays empty.
    pub fn pseudonym(&self, member_id: &str) -> String {
        if member_id.is_empty() {
            return String::new();
        }
        match self.member_index.get(member_id) {
            Some(&index) => self.members[index].pseudonym.clone(),
            None => pseudonym(&self.key, &self.platform, member_id),
        }
    }

    /// The fingerprint of the key (first 16 hex characters of its SHA-256).
    pub fn key_fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// Anonymizes free text: member names → pseudonyms, PII → typed tokens.
    pub fn text(&self, text: &str) -> String {
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => {
                let output = self.text_with(text, &mut scratch);
                scratch.release_if_large();
                output
            }
            Err(_) => self.text_with(text, &mut Scratch::default()),
        })
    }

    fn text_with(&self, text: &str, scratch: &mut Scratch) -> String {
        let redacted = || {
            if text.is_empty() {
                String::new()
            } else {
                REDACTED_TOKEN.to_owned()
            }
        };
        if self.unusable {
            return redacted();
        }
        let mut output = match self.rewrite(text, self.names.matcher.as_ref(), Pass::Full, scratch)
        {
            Ok(Some(output)) => output,
            Ok(None) => return text.to_owned(),
            Err(_) => return redacted(),
        };
        // A pseudonym or token can complete a name together with its
        // neighbours (an ASCII name such as `7ab` across `…7` + `ab…`). Such a
        // name must contain an ASCII character, and only replaced outputs can
        // have one, so only they are re-checked, with the ASCII names only.
        if let Some(verifier) = self.names.verifier.as_ref() {
            for _ in 0..MAX_VERIFY_ROUNDS {
                match self.rewrite(&output, Some(verifier), Pass::NamesOnly, scratch) {
                    Ok(Some(next)) => output = next,
                    Ok(None) => return output,
                    Err(_) => return redacted(),
                }
            }
            match self.rewrite(&output, Some(verifier), Pass::NamesToToken, scratch) {
                Ok(Some(next)) => output = next,
                Ok(None) => {}
                Err(_) => return redacted(),
            }
        }
        output
    }

    /// One pass over `text`; `None` if nothing was replaced.
    //
    // Names come first and PII is searched only in the text between name
    // matches: a name made of digits (a QQ number as member id) still becomes
    // a pseudonym, and a pseudonym is never seen by the PII detectors, so
    // neither is it re-matched (`微信 m_…` as a WeChat id) nor do its digits
    // lengthen a neighbouring digit run.
    fn rewrite(
        &self,
        text: &str,
        matcher: Option<&NameMatcher>,
        pass: Pass,
        scratch: &mut Scratch,
    ) -> Result<Option<String>, aho_corasick::MatchError> {
        let Scratch {
            normalized,
            changes,
            spans,
        } = scratch;
        let normalized = Normalized::new(text, normalized, changes);
        let mut rewriter = Rewriter::new(text);
        let mut gap_start = 0;
        if let Some(matcher) = matcher {
            matcher.for_each_match(normalized.text, |found| {
                if pass == Pass::Full {
                    redact_pii(
                        &normalized,
                        gap_start,
                        found.mention_start,
                        spans,
                        &mut rewriter,
                    );
                }
                let replacement = match pass {
                    Pass::NamesToToken => NAME_TOKEN,
                    Pass::Full | Pass::NamesOnly => self
                        .members
                        .get(found.member)
                        .map_or(NAME_TOKEN, |member| member.pseudonym.as_str()),
                };
                let (start, end) = normalized.to_original(found.start, found.end);
                rewriter.replace(start, end, replacement);
                gap_start = found.end;
            })?;
        }
        if pass == Pass::Full {
            redact_pii(
                &normalized,
                gap_start,
                normalized.text.len(),
                spans,
                &mut rewriter,
            );
        }
        Ok(rewriter.finish())
    }
}

/// Buffers reused across calls on one thread, so that a message costs no
/// allocation besides its output.
#[derive(Default)]
struct Scratch {
    normalized: String,
    changes: Vec<Change>,
    spans: Vec<pii::PiiSpan>,
}

impl Scratch {
    /// Capacity kept between calls; one huge message should not pin its buffers.
    const KEEP_BYTES: usize = 64 * 1024;

    fn release_if_large(&mut self) {
        if self.normalized.capacity() > Scratch::KEEP_BYTES
            || self.changes.capacity() > Scratch::KEEP_BYTES / 32
        {
            *self = Scratch::default();
        }
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// Replaces the PII found in `normalized[start..end]`.
fn redact_pii(
    normalized: &Normalized<'_>,
    start: usize,
    end: usize,
    spans: &mut Vec<pii::PiiSpan>,
    rewriter: &mut Rewriter<'_>,
) {
    let Some(gap) = normalized.text.get(start..end) else {
        return;
    };
    pii::find(gap, spans);
    for span in spans.iter() {
        let (original_start, original_end) =
            normalized.to_original(start + span.start, start + span.end);
        rewriter.replace(original_start, original_end, span.kind.token());
    }
}

/// A stretch of the text whose NFKD form differs from the original.
#[derive(Debug, Clone, Copy)]
struct Change {
    normalized_start: usize,
    normalized_end: usize,
    original_start: usize,
    original_end: usize,
}

/// The NFKD form of a text (see the module docs) with a map back to the
/// original's byte offsets.
///
/// The text is cut into segments (a character plus the combining marks that
/// follow it, which NFKD may reorder) and each segment is normalized alone,
/// which equals NFKD of the whole text but keeps every segment's original
/// extent. Only changed segments are recorded; between them offsets shift
/// linearly, and without any the normalized text is the original.
struct Normalized<'a> {
    text: &'a str,
    changes: &'a [Change],
}

impl<'a> Normalized<'a> {
    /// Normalizes `original`, using `buffer` and `changes` as storage.
    fn new(
        original: &'a str,
        buffer: &'a mut String,
        changes: &'a mut Vec<Change>,
    ) -> Normalized<'a> {
        buffer.clear();
        changes.clear();
        let Some(first_other) = skip_fast_stable(original.as_bytes()) else {
            return Normalized {
                text: original,
                changes,
            };
        };
        // Start the segment walk one character early: the first character
        // that is not trivially stable may attach to the one before it.
        let walk_from = original
            .get(..first_other)
            .and_then(|before| before.char_indices().next_back())
            .map_or(0, |(offset, _)| offset);
        // Start of the original text not yet copied to `buffer`.
        let mut copied_to = 0;
        // The open segment: start, end, and whether it is its own NFKD form.
        let mut segment: Option<(usize, usize, bool)> = None;
        for (offset, c) in original.get(walk_from..).unwrap_or_default().char_indices() {
            let offset = walk_from + offset;
            let end = offset + c.len_utf8();
            let (stable, attaches) = classify(c);
            match segment.as_mut() {
                Some((_, segment_end, segment_stable)) if attaches => {
                    *segment_end = end;
                    *segment_stable = false;
                }
                _ => {
                    if let Some((start, segment_end, false)) = segment {
                        push_change(
                            original,
                            start,
                            segment_end,
                            &mut copied_to,
                            buffer,
                            changes,
                        );
                    }
                    segment = Some((offset, end, stable));
                }
            }
        }
        if let Some((start, segment_end, false)) = segment {
            push_change(
                original,
                start,
                segment_end,
                &mut copied_to,
                buffer,
                changes,
            );
        }
        if changes.is_empty() {
            return Normalized {
                text: original,
                changes,
            };
        }
        buffer.push_str(original.get(copied_to..).unwrap_or_default());
        Normalized {
            text: buffer,
            changes,
        }
    }

    /// Maps the normalized byte range `start..end` (non-empty) to the
    /// smallest range of whole original segments that covers it.
    fn to_original(&self, start: usize, end: usize) -> (usize, usize) {
        let changes = self.changes;
        let original_start =
            match changes.partition_point(|change| change.normalized_start <= start) {
                0 => start,
                after => {
                    let change = changes[after - 1];
                    if start < change.normalized_end {
                        change.original_start
                    } else {
                        change.original_end + (start - change.normalized_end)
                    }
                }
            };
        let last = end.saturating_sub(1).max(start);
        let original_end = match changes.partition_point(|change| change.normalized_start <= last) {
            0 => end,
            after => {
                let change = changes[after - 1];
                if last < change.normalized_end {
                    change.original_end
                } else {
                    change.original_end + (end - change.normalized_end)
                }
            }
        };
        (original_start, original_end)
    }
}

/// Appends the unchanged text before a changed segment and the segment's NFKD form.
fn push_change(
    original: &str,
    start: usize,
    end: usize,
    copied_to: &mut usize,
    text: &mut String,
    changes: &mut Vec<Change>,
) {
    text.push_str(original.get(*copied_to..start).unwrap_or_default());
    let normalized_start = text.len();
    let segment = original.get(start..end).unwrap_or_default();
    let mut chars = segment.chars();
    match (chars.next(), chars.next()) {
        // Full-width ASCII (U+FF01..U+FF5E) is by far the commonest change.
        (Some(c @ '\u{FF01}'..='\u{FF5E}'), None) => {
            text.push(char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c));
        }
        _ => text.extend(segment.nfkd()),
    }
    changes.push(Change {
        normalized_start,
        normalized_end: text.len(),
        original_start: start,
        original_end: end,
    });
    *copied_to = end;
}

/// Offset of the first character that is not trivially its own NFKD form
/// (ASCII, CJK ideographs U+4E00..U+9FFF, `、` `。`), or `None` if there is
/// none. Works on bytes: this is the whole cost for most chat messages.
fn skip_fast_stable(bytes: &[u8]) -> Option<usize> {
    let mut index = 0;
    while index < bytes.len() {
        let lead = bytes[index];
        if lead < 0x80 {
            index += 1;
            continue;
        }
        let second = bytes.get(index + 1).copied().unwrap_or(0);
        let third = bytes.get(index + 2).copied().unwrap_or(0);
        let cjk_ideograph = (0xE5..=0xE9).contains(&lead) || (lead == 0xE4 && second >= 0xB8);
        let ideographic_comma_or_stop =
            lead == 0xE3 && second == 0x80 && (third == 0x81 || third == 0x82);
        if cjk_ideograph || ideographic_comma_or_stop {
            index += 3;
        } else {
            return Some(index);
        }
    }
    None
}

/// Returns (is its own NFKD form, belongs to the preceding character's segment).
fn classify(c: char) -> (bool, bool) {
    // Fast answers for what chat text is mostly made of; `fast_ranges_are_stable`
    // checks them against the Unicode tables.
    if c.is_ascii()
        || ('\u{4E00}'..='\u{9FFF}').contains(&c)
        || ('\u{3001}'..='\u{3002}').contains(&c)
        || ('\u{1F300}'..='\u{1FAFF}').contains(&c)
    {
        return (true, false);
    }
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        return (false, false);
    }
    let stable = is_nfkd_quick(std::iter::once(c)) == IsNormalized::Yes;
    // Canonical reordering moves combining marks only among the marks that
    // follow a starter, so a character whose decomposition starts with a mark
    // joins the preceding segment.
    let mut first = None;
    decompose_compatible(c, |part| {
        first.get_or_insert(part);
    });
    let attaches = canonical_combining_class(first.unwrap_or(c)) != 0;
    (stable, attaches)
}

/// Builds the output lazily: nothing is allocated until the first replacement.
struct Rewriter<'a> {
    original: &'a str,
    output: String,
    copied_to: usize,
    changed: bool,
}

impl<'a> Rewriter<'a> {
    fn new(original: &'a str) -> Rewriter<'a> {
        Rewriter {
            original,
            output: String::new(),
            copied_to: 0,
            changed: false,
        }
    }

    /// Replaces `original[start..end]`; ranges must come in order. A range
    /// overlapping the previous one (two matches in one segment) is trimmed.
    fn replace(&mut self, start: usize, end: usize, replacement: &str) {
        let start = start.max(self.copied_to);
        if end <= start {
            return;
        }
        if !self.changed {
            self.output.reserve(self.original.len() + 16);
            self.changed = true;
        }
        self.output
            .push_str(self.original.get(self.copied_to..start).unwrap_or_default());
        self.output.push_str(replacement);
        self.copied_to = end;
    }

    fn finish(mut self) -> Option<String> {
        if !self.changed {
            return None;
        }
        self.output
            .push_str(self.original.get(self.copied_to..).unwrap_or_default());
        Some(self.output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn test_key(seed: u8) -> Key {
        Key::from_bytes([seed; KEY_LEN])
    }

    fn nfkc(text: &str) -> String {
        text.nfkc().collect()
    }

    fn identity(member_id: &str, names: &[&str]) -> Identity {
        Identity {
            member_id: member_id.to_owned(),
            names: names.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    fn is_pseudonym(text: &str) -> bool {
        text.len() == 14
            && text.starts_with("m_")
            && text[2..]
                .bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
    }

    #[test]
    fn pseudonym_has_the_documented_format() {
        let p = pseudonym(&test_key(1), "app-a", "wxid_abc123");
        assert!(is_pseudonym(&p), "{p}");
    }

    #[test]
    fn pseudonym_is_hmac_of_platform_then_member_id() {
        let key = test_key(7);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[7u8; KEY_LEN]).unwrap();
        mac.update(b"app-b");
        mac.update(b"12345");
        let expected = BASE32_NOPAD
            .encode(&mac.finalize().into_bytes())
            .to_ascii_lowercase();
        assert_eq!(
            pseudonym(&key, "app-b", "12345"),
            format!("m_{}", &expected[..12])
        );
    }

    #[test]
    fn hmac_matches_rfc_4231_style_reference() {
        // Our padded-block construction against the crate's variable-length one.
        let key = Key::from_bytes(*b"0123456789abcdef0123456789abcdef");
        let mut reference =
            <HmacSha256 as Mac>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        reference.update(b"Hi There");
        let expected: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac_sha256(&key, &[b"Hi ", b"There"]), expected);
    }

    #[test]
    fn same_key_same_pseudonym_different_key_different() {
        let a = pseudonym(&test_key(1), "app-b", "10001");
        assert_eq!(a, pseudonym(&test_key(1), "app-b", "10001"));
        assert_ne!(a, pseudonym(&test_key(2), "app-b", "10001"));
        assert_ne!(a, pseudonym(&test_key(1), "app-a", "10001"));
        assert_ne!(a, pseudonym(&test_key(1), "app-b", "10002"));
    }

    #[test]
    fn anonymizer_pseudonym_matches_free_function() {
        let key = test_key(3);
        let anonymizer = Anonymizer::new(&key, "app-c", vec![identity("zhangsan", &["张三"])]);
        assert_eq!(
            anonymizer.pseudonym("zhangsan"),
            pseudonym(&key, "app-c", "zhangsan")
        );
        assert_eq!(
            anonymizer.pseudonym("unknown"),
            pseudonym(&key, "app-c", "unknown")
        );
        assert_eq!(anonymizer.pseudonym(""), "");
        assert_eq!(anonymizer.key_fingerprint(), key.fingerprint());
    }

    #[test]
    fn fingerprint_is_16_hex_of_sha256() {
        let key = test_key(0);
        let digest = HEXLOWER.encode(&Sha256::digest([0u8; KEY_LEN]));
        assert_eq!(key.fingerprint(), digest[..16]);
        assert!(!format!("{key:?}").contains("0, 0"));
    }

    #[cfg(unix)]
    #[test]
    fn generated_key_file_is_private_and_reloads() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = Key::generate(&path).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        assert_eq!(metadata.len(), KEY_LEN as u64);
        assert_eq!(Key::load_or_create(&path).unwrap(), key);
    }

    #[test]
    fn generate_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [9u8; KEY_LEN]).unwrap();
        let err = Key::generate(&path).unwrap_err();
        assert!(matches!(err, AnonError::KeyExists { .. }), "{err}");
        assert!(err.to_string().contains("refusing to overwrite"));
        assert_eq!(std::fs::read(&path).unwrap(), vec![9u8; KEY_LEN]);
    }

    #[test]
    fn load_or_create_creates_once_then_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let created = Key::load_or_create(&path).unwrap();
        assert_eq!(Key::load_or_create(&path).unwrap(), created);
        assert_ne!(
            created,
            Key::load_or_create(&dir.path().join("other")).unwrap()
        );
    }

    #[test]
    fn wrong_length_key_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, [1u8; 17]).unwrap();
        let err = Key::load_or_create(&path).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, AnonError::KeyLength { len: 17, .. }),
            "{message}"
        );
        assert!(message.contains("is 17 bytes"), "{message}");
        assert!(message.contains("exactly 32 bytes"), "{message}");
        assert!(message.contains("chatvault keygen"), "{message}");
    }

    #[test]
    fn directory_as_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Key::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, AnonError::KeyNotFile { .. }), "{err}");
    }

    #[test]
    fn missing_directory_is_a_create_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Key::load_or_create(&dir.path().join("no/such/k")).unwrap_err();
        assert!(matches!(err, AnonError::KeyCreate { .. }), "{err}");
    }

    #[test]
    fn text_without_matches_is_unchanged_byte_for_byte() {
        let anonymizer = Anonymizer::new(
            &test_key(1),
            "app-a",
            vec![identity("wxid_a1b2c3", &["张三"])],
        );
        for text in [
            "",
            "今天开会，大家准时到！",
            "ｆｕｌｌ－ｗｉｄｔｈ text, ｅ\u{301} and e\u{301} and …",
            "order 123456789012345678 shipped",
            "\u{0}\u{200B}zero width\r\n",
        ] {
            assert_eq!(anonymizer.text(text), text);
        }
    }

    #[test]
    fn names_and_pii_in_one_message() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(
            &key,
            "app-a",
            vec![
                identity("wxid_zs001", &["张三", "老张"]),
                identity("wxid_ls002", &["李四"]),
            ],
        );
        let zs = pseudonym(&key, "app-a", "wxid_zs001");
        let ls = pseudonym(&key, "app-a", "wxid_ls002");
        let out = anonymizer.text("@张三 老张你电话是１３８ １２３４ ５６７８吗？李四说的");
        assert_eq!(out, format!("@{zs} {zs}你电话是[PHONE]吗？{ls}说的"));
    }

    #[test]
    fn full_width_names_are_found_and_replaced_in_the_original() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(&key, "app-b", vec![identity("10001", &["Ａｌｉｃｅ"])]);
        let alice = pseudonym(&key, "app-b", "10001");
        assert_eq!(
            anonymizer.text("hi Alice，ＡＬＩＣＥ"),
            format!("hi {alice}，ＡＬＩＣＥ")
        );
        assert_eq!(anonymizer.text("hi Ａｌｉｃｅ！"), format!("hi {alice}！"));
        assert_eq!(
            anonymizer.text("ＱＱ：１０００１"),
            format!("ＱＱ：{alice}")
        );
    }

    #[test]
    fn pii_in_full_width_forms() {
        let anonymizer = Anonymizer::new(&test_key(1), "app-b", Vec::new());
        for (text, expected) in [
            ("电话：１３８１２３４５６７８。", "电话：[PHONE]。"),
            ("＋８６　１３８－１２３４－５６７８", "[PHONE]"),
            (
                "邮箱ｚｈａｎｇｓａｎ＠ｅｘａｍｐｌｅ．ｃｏｍ！",
                "邮箱[EMAIL]！",
            ),
            ("zhangsan＠example.com", "[EMAIL]"),
            ("ＱＱ：１２３４５６７８", "ＱＱ：[QQ]"),
            ("微信：ｗｘｉｄ＿ａｂｃ１２３", "微信：[WXID]"),
            ("身份证４４０３０４１９９００１０１００１１", "身份证[ID]"),
        ] {
            assert_eq!(anonymizer.text(text), expected, "{text}");
        }
    }

    #[test]
    fn pseudonyms_are_not_rematched_as_pii() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(&key, "app-a", vec![identity("zhangsan88", &[])]);
        let zs = pseudonym(&key, "app-a", "zhangsan88");
        assert_eq!(anonymizer.text("微信 zhangsan88"), format!("微信 {zs}"));
        assert_eq!(anonymizer.text("加我 zhangsan88"), format!("加我 {zs}"));
    }

    #[test]
    fn digits_after_a_pseudonym_start_a_new_run() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(&key, "app-b", vec![identity("abc", &[])]);
        let abc = pseudonym(&key, "app-b", "abc");
        assert_eq!(anonymizer.text("abc13812345678"), format!("{abc}[PHONE]"));
    }

    #[test]
    fn combining_marks_stay_with_their_base_when_replaced() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(&key, "app-b", vec![identity("10001", &["Lisa", "José"])]);
        let lisa = pseudonym(&key, "app-b", "10001");
        // NFKC would compose `a` + U+0301 and hide `Lisa`; the raw text still has it.
        assert_eq!(anonymizer.text("Lisa\u{301}!"), format!("{lisa}!"));
        // Precomposed and decomposed spellings are the same name.
        assert_eq!(
            anonymizer.text("José Jose\u{301}"),
            format!("{lisa} {lisa}")
        );
    }

    #[test]
    fn combining_marks_after_cjk_names_go_with_the_name() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(&key, "app-b", vec![identity("10001", &["张三"])]);
        let zs = pseudonym(&key, "app-b", "10001");
        // U+0301 after 三 belongs to its segment and goes with it.
        assert_eq!(anonymizer.text("张三\u{301}好"), format!("{zs}好"));
    }

    #[test]
    fn replacement_that_recreates_a_name_is_replaced_again() {
        let key = test_key(1);
        let first = pseudonym(&key, "app-b", "10001");
        // An ASCII name made of the pseudonym's last character and the text
        // after the replaced name only appears in the output.
        let tail = &first[first.len() - 1..];
        let tricky = format!("{tail}xyz");
        let anonymizer = Anonymizer::new(
            &key,
            "app-b",
            vec![identity("10001", &["张三"]), identity("10002", &[&tricky])],
        );
        let out = anonymizer.text("张三xyz");
        assert!(!nfkc(&out).contains(&tricky), "{out}");
    }

    #[test]
    fn names_spelling_the_pseudonym_alphabet_converge() {
        let key = test_key(1);
        let anonymizer = Anonymizer::new(
            &key,
            "app-b",
            vec![identity("10001", &["m_a", "m_b", "m_c", "m_d"])],
        );
        let out = anonymizer.text("m_a m_b");
        for name in ["m_a", "m_b", "m_c", "m_d"] {
            assert!(!out.contains(name) || out.contains(NAME_TOKEN), "{out}");
        }
    }

    #[test]
    fn fast_ranges_are_stable() {
        let ranges = [
            ('\u{4E00}', '\u{9FFF}'),
            ('\u{3001}', '\u{3002}'),
            ('\u{1F300}', '\u{1FAFF}'),
        ];
        for (low, high) in ranges {
            for c in low..=high {
                let alone: String = c.to_string().nfkd().collect();
                assert_eq!(alone, c.to_string(), "U+{:04X}", c as u32);
                assert_eq!(canonical_combining_class(c), 0, "U+{:04X}", c as u32);
            }
        }
        for c in '\u{FF01}'..='\u{FF5E}' {
            let alone: String = c.to_string().nfkd().collect();
            assert_eq!(
                alone,
                char::from_u32(c as u32 - 0xFEE0).unwrap().to_string()
            );
        }
    }

    #[test]
    fn segment_normalization_equals_whole_text_nfkd() {
        for text in [
            "ｅ\u{301}x",
            "e\u{301}\u{323}z",
            "\u{1100}\u{1161}\u{11A8}한",
            "ｶﾞｷﾞ",
            "ㄱㅏ",
            "１３８①…㈱",
            "a\u{FF9E}b",
        ] {
            let whole: String = text.nfkd().collect();
            let (mut buffer, mut changes) = (String::new(), Vec::new());
            assert_eq!(
                Normalized::new(text, &mut buffer, &mut changes).text,
                whole,
                "{text:?}"
            );
        }
    }

    #[test]
    fn offsets_map_back_to_whole_segments() {
        let text = "ａ１２b中…";
        let (mut buffer, mut changes) = (String::new(), Vec::new());
        let normalized = Normalized::new(text, &mut buffer, &mut changes);
        assert_eq!(normalized.text, "a12b中...");
        // "12" → "１２"
        assert_eq!(normalized.to_original(1, 3), (3, 9));
        // "b中" is unchanged text between changes
        assert_eq!(normalized.to_original(3, 7), (9, 13));
        // one "." of "..." → the whole "…"
        assert_eq!(normalized.to_original(8, 9), (13, 16));
    }

    #[test]
    fn anonymizer_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Anonymizer>();
    }

    /// Valid 18-digit resident ids for planting.
    fn resident_id(body: u64) -> String {
        let first17 = format!("{:017}", 11010519000000000 + body % 1_000_000_000);
        let check = pii::gb11643_check_char(first17.as_bytes()).unwrap();
        format!("{first17}{}", check as char)
    }

    fn luhn_card(body: u64) -> String {
        let partial = format!("622202{:09}", body % 1_000_000_000);
        for check in b'0'..=b'9' {
            let candidate = format!("{partial}{}", check as char);
            if pii::luhn_valid(candidate.as_bytes()) {
                return candidate;
            }
        }
        unreachable!("one check digit always fits")
    }

    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
                other => other,
            })
            .collect()
    }

    /// A piece of a generated message, and what must not survive.
    #[derive(Debug, Clone)]
    enum Piece {
        Filler(String),
        Name(usize, usize, bool),
        Phone(u64, u8),
        Id(u64),
        Card(u64, bool),
        Email(String, bool),
        Qq(u64),
        Wxid(String),
    }

    const MEMBER_NAMES: [[&str; 3]; 5] = [
        ["张三丰", "张三", "三哥"],
        ["李四", "Lisa", "小李子"],
        ["王五", "wang_wu", "老王"],
        ["赵六", "zl6688", "好"],
        ["钱七", "Qian", "q7"],
    ];

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            3 => "[ 今天开会吧，好的！。a-zA-Z…\u{3000}\u{301}、]{0,12}".prop_map(Piece::Filler),
            2 => (0..5usize, 0..3usize, any::<bool>()).prop_map(|(m, n, at)| Piece::Name(m, n, at)),
            1 => (0..100_000_000u64, 0..6u8).prop_map(|(n, style)| Piece::Phone(n, style)),
            1 => any::<u64>().prop_map(Piece::Id),
            1 => (any::<u64>(), any::<bool>()).prop_map(|(n, grouped)| Piece::Card(n, grouped)),
            1 => ("[a-z][a-z0-9._]{0,8}", any::<bool>()).prop_map(|(local, wide)| Piece::Email(local, wide)),
            1 => (10_000..99_999_999_999u64).prop_map(Piece::Qq),
            1 => "[a-zA-Z][-_a-zA-Z0-9]{5,19}".prop_map(Piece::Wxid),
        ]
    }

    fn render(piece: &Piece, secrets: &mut Vec<String>) -> String {
        match piece {
            Piece::Filler(text) => text.clone(),
            Piece::Name(member, name, at) => {
                let name = MEMBER_NAMES[*member][*name];
                // Short names are replaced after `@` only and are not promised gone.
                if !names::is_short_name(name) {
                    secrets.push(name.to_owned());
                }
                if *at {
                    format!("@{name} ")
                } else {
                    name.to_owned()
                }
            }
            Piece::Phone(n, style) => {
                let digits = format!("13{}{:08}", n % 7 + 3, n);
                let (a, b, c) = (&digits[..3], &digits[3..7], &digits[7..]);
                let text = match style {
                    0 => digits.clone(),
                    1 => format!("+86{digits}"),
                    2 => format!("0086 {digits}"),
                    3 => format!("{a} {b} {c}"),
                    4 => format!("{a}-{b}-{c}"),
                    _ => full_width(&digits),
                };
                secrets.push(digits);
                format!(" {text} ")
            }
            Piece::Id(n) => {
                let id = resident_id(*n);
                secrets.push(id.clone());
                format!(" {id} ")
            }
            Piece::Card(n, grouped) => {
                let card = luhn_card(*n);
                secrets.push(card.clone());
                if *grouped {
                    let groups: Vec<&str> =
                        [&card[..4], &card[4..8], &card[8..12], &card[12..]].into();
                    format!(" {} ", groups.join(" "))
                } else {
                    format!(" {card} ")
                }
            }
            Piece::Email(local, wide) => {
                let email = format!("{local}@example.com");
                secrets.push(email.clone());
                if *wide {
                    format!(" {} ", email.replace('@', "＠"))
                } else {
                    format!(" {email} ")
                }
            }
            Piece::Qq(n) => {
                secrets.push(n.to_string());
                format!(" QQ：{n} ")
            }
            Piece::Wxid(id) => {
                secrets.push(id.clone());
                format!(" 微信号：{id} ")
            }
        }
    }

    proptest! {
        #[test]
        fn planted_names_and_pii_never_survive(pieces in proptest::collection::vec(piece(), 1..12)) {
            let key = test_key(5);
            let identities = MEMBER_NAMES
                .iter()
                .enumerate()
                .map(|(index, names)| identity(&format!("wxid_member{index}"), names))
                .collect();
            let anonymizer = Anonymizer::new(&key, "app-a", identities);
            let mut secrets = Vec::new();
            let text: String = pieces.iter().map(|piece| render(piece, &mut secrets)).collect();
            let output = anonymizer.text(&text);
            let normalized_output = nfkc(&output);
            for secret in &secrets {
                prop_assert!(
                    !normalized_output.contains(&nfkc(secret)) && !output.contains(secret.as_str()),
                    "{secret:?} survived in {output:?} (from {text:?})"
                );
            }
        }

        #[test]
        fn text_without_names_or_pii_is_unchanged(text in "[ 今天开会吧，好的！。a-zA-Z…\u{3000}\u{301}、]{0,40}") {
            let anonymizer = Anonymizer::new(&test_key(5), "app-a", vec![identity("wxid_member0", &["张三丰"])]);
            prop_assert_eq!(anonymizer.text(&text), text);
        }
    }
}
