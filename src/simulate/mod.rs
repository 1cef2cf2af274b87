//! Deterministic test-data factories that write simulated chat-app storage
//! (see `spec/sources.md`). Every simulator is driven by [`SimOptions`] and is
//! byte-for-byte reproducible for the same options. Each platform's simulator lives beside
//! its reader (`platform/<name>/simulate.rs`) and is reached through
//! [`crate::platform::Platform::simulate`]; this module holds what they share.

pub mod edge;
pub mod plant;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The random number generator every simulator uses: seeded, portable, fast.
pub type SimRng = ChaCha8Rng;

/// What to simulate and where.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Account directory to create; it must not exist or be empty.
    pub out: PathBuf,
    /// Number of group chats.
    pub groups: usize,
    /// Approximate number of members per group (the owner included).
    pub members: usize,
    /// Total number of group messages across all groups.
    pub messages: usize,
    /// Messages are spread over this many days before `now_ms`.
    pub days: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// Reference time, UTC milliseconds.
    pub now_ms: i64,
    /// Fraction (0..=1) of rows and files that get an edge case.
    pub edge_rate: f64,
    /// Write media files (when false, rows still reference media but no file exists).
    pub media_files: bool,
    /// Leave the newest ~2% of messages only in the uncheckpointed write-ahead log.
    pub wal: bool,
}

impl SimOptions {
    /// Defaults: 5 groups of ~30 members, 5000 messages over 30 days, seed 42,
    /// edge rate 0.05, media files on, no WAL, reference time = now.
    pub fn new(out: PathBuf) -> Self {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        SimOptions {
            out,
            groups: 5,
            members: 30,
            messages: 5000,
            days: 30,
            seed: 42,
            now_ms,
            edge_rate: 0.05,
            media_files: true,
            wal: false,
        }
    }

    /// Rejects option combinations a simulator cannot honour.
    pub fn validate(&self) -> Result<(), SimError> {
        if !(0.0..=1.0).contains(&self.edge_rate) {
            return Err(SimError::InvalidOption(format!(
                "edge rate must be between 0 and 1, got {}",
                self.edge_rate
            )));
        }
        if self.groups == 0 && self.messages > 0 {
            return Err(SimError::InvalidOption(
                "messages need at least one group (use --groups 1 or more)".into(),
            ));
        }
        if self.groups > 10_000 {
            return Err(SimError::InvalidOption(format!(
                "at most 10000 groups can be simulated, got {}",
                self.groups
            )));
        }
        if self.members < 2 || self.members > 10_000 {
            return Err(SimError::InvalidOption(format!(
                "members per group must be between 2 and 10000 (the owner plus others), got {}",
                self.members
            )));
        }
        if self.days == 0 || self.days > 36_500 {
            return Err(SimError::InvalidOption(format!(
                "days must be between 1 and 36500, got {}",
                self.days
            )));
        }
        let span = i64::from(self.days) * DAY_MS;
        if self.now_ms < span {
            return Err(SimError::InvalidOption(format!(
                "reference time {} ms is earlier than {} days after 1970-01-01",
                self.now_ms, self.days
            )));
        }
        Ok(())
    }
}

/// What `simulate --continue` adds to an account directory a simulator wrote earlier: more
/// days of traffic, members who join, recalls and deletions behind the source's newest
/// message, new groups. Ids stay unique: new ones continue after the largest in the source.
#[derive(Debug, Clone)]
pub struct MoreOptions {
    /// The account directory to continue (this platform's simulated layout).
    pub root: PathBuf,
    /// New group messages in all, over the existing groups and the new ones.
    pub messages: usize,
    /// The new messages are spread over this many days after the source's newest message
    /// time (the newest one a reader can place: impossible times of the hard rows are not).
    pub days: u32,
    /// Members who join each existing group; some of them then send.
    pub joins: usize,
    /// Existing messages, at or before the source's newest time, that their senders recall.
    pub recalls: usize,
    /// Existing messages, at or before the source's newest time, deleted from the device.
    pub deletions: usize,
    /// Group chats that appear, whole, among the new messages.
    pub new_groups: usize,
    /// Seed of every random choice (use a different one per continuation).
    pub seed: u64,
    /// Write media files for new media messages.
    pub media_files: bool,
}

impl MoreOptions {
    /// Defaults: 1000 messages over 7 days, 2 joins per group, 3 recalls, 2 deletions, one
    /// new group, seed 43, media files on.
    pub fn new(root: PathBuf) -> Self {
        MoreOptions {
            root,
            messages: 1000,
            days: 7,
            joins: 2,
            recalls: 3,
            deletions: 2,
            new_groups: 1,
            seed: 43,
            media_files: true,
        }
    }

    /// Rejects option combinations no continuation can honour.
    pub fn validate(&self) -> Result<(), SimError> {
        if self.days == 0 || self.days > 36_500 {
            return Err(SimError::InvalidOption(format!(
                "days must be between 1 and 36500, got {}",
                self.days
            )));
        }
        if self.joins > 10_000 || self.new_groups > 10_000 {
            return Err(SimError::InvalidOption(
                "at most 10000 joins per group and 10000 new groups".into(),
            ));
        }
        if !self.root.is_dir() {
            return Err(SimError::InvalidOption(format!(
                "{} is not an account directory to continue (simulate it first, without --continue)",
                self.root.display()
            )));
        }
        Ok(())
    }
}

/// What a continuation added and changed.
#[derive(Debug, Clone, Default)]
pub struct MoreReport {
    pub root: PathBuf,
    pub platform: &'static str,
    /// Group messages added (in existing and new groups; recall tips included where a
    /// platform writes a recall as a message of its own).
    pub messages: usize,
    /// Member rows added to existing groups.
    pub joined: usize,
    /// Existing messages recalled.
    pub recalled: usize,
    /// Existing messages deleted.
    pub deleted: usize,
    /// Groups added.
    pub new_groups: usize,
    /// Media files written.
    pub media_files: usize,
    pub elapsed: Duration,
}

/// What a simulator wrote.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The account directory.
    pub root: PathBuf,
    /// Platform name as used by the importers (`wechat`, …).
    pub platform: &'static str,
    /// Group chats written.
    pub groups: usize,
    /// One-to-one chats written (their messages are not counted in `messages`).
    pub private_chats: usize,
    /// Distinct group members across all groups, the account owner included.
    pub members: usize,
    /// Group messages written (system rows and red-packet claims included).
    pub messages: usize,
    /// Of `messages`, the hard rows written after the ordinary ones (with edge cases on:
    /// empty system rows, times no output can write, names behind names); each
    /// platform's module says which.
    pub hard_rows: usize,
    /// Files written outside the database (media, avatars, orphans, symlinks).
    pub media_files: usize,
    /// Wall-clock time the simulation took.
    pub elapsed: Duration,
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot write {path}: {source} (check that the directory is writable and the disk has space)")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the simulated SQLite database could not be written: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("output directory {0} already exists and is not empty; choose a new path or remove it first")]
    OutputNotEmpty(PathBuf),
    #[error("invalid simulation option: {0}")]
    InvalidOption(String),
    #[error("{root} cannot be continued: {reason}")]
    CannotContinue { root: PathBuf, reason: String },
    #[error("the write-ahead log {path} is not in the expected format: {reason}")]
    WalFormat { path: PathBuf, reason: String },
}

impl SimError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            SimError::InvalidOption(_)
            | SimError::CannotContinue { .. }
            | SimError::OutputNotEmpty(_) => crate::exit::USAGE,
            _ => crate::exit::INTERNAL,
        }
    }
}

/// Builds the `map_err` closure for an I/O error on `path`.
pub fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub const SECOND_MS: i64 = 1000;
pub const HOUR_MS: i64 = 3600 * SECOND_MS;
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// A generator for one independent random stream of `seed`; streams keep
/// unrelated choices (e.g. media bytes) from shifting each other.
pub fn seeded_rng(seed: u64, stream: u64) -> SimRng {
    let mut rng = SimRng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Creates `out`, or accepts it when it already exists as an empty directory.
pub fn prepare_output_dir(out: &Path) -> Result<(), SimError> {
    match fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(SimError::OutputNotEmpty(out.to_path_buf()));
            }
            Ok(())
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out).map_err(io_error(out))
        }
        Err(err) if out.exists() => Err(SimError::Io {
            path: out.to_path_buf(),
            source: io::Error::new(
                err.kind(),
                format!("exists but is not a readable directory ({err})"),
            ),
        }),
        Err(err) => Err(io_error(out)(err)),
    }
}

/// Message times: `count` instants spread over `[now - days, now)`, non-decreasing
/// in the index, denser in the daytime (UTC+8) than at night.
#[derive(Debug, Clone)]
pub struct TimeSpread {
    start_ms: i64,
    end_ms: i64,
    count: u64,
}

/// Relative chat activity per local hour (UTC+8), 0..24.
const HOURLY_ACTIVITY: [u32; 24] = [
    3, 2, 1, 1, 1, 1, 2, 5, 9, 10, 10, 10, 12, 10, 9, 9, 9, 10, 11, 12, 14, 14, 11, 6,
];
const LOCAL_OFFSET_MS: i64 = 8 * HOUR_MS;

impl TimeSpread {
    pub fn new(now_ms: i64, days: u32, count: usize) -> Self {
        TimeSpread {
            start_ms: now_ms - i64::from(days) * DAY_MS,
            end_ms: now_ms,
            count: count.max(1) as u64,
        }
    }

    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    /// Time of slot `index` (0-based); `rng` adds jitter that keeps the order.
    pub fn time_of(&self, index: usize, rng: &mut impl Rng) -> i64 {
        let span = i128::from(self.end_ms - self.start_ms);
        let count = i128::from(self.count);
        let centre = i128::from(self.start_ms) + (2 * index as i128 + 1) * span / (2 * count);
        let third_gap = (span / count / 3) as i64;
        let jitter = if third_gap > 0 {
            rng.gen_range(-third_gap..=third_gap)
        } else {
            0
        };
        let uniform = (centre as i64 + jitter).clamp(self.start_ms, self.end_ms - 1);
        self.warp_to_daily_rhythm(uniform)
    }

    /// Maps a uniformly spread time onto the daily activity curve. The map is
    /// monotonic within each whole local day and keeps days apart, so the
    /// overall order is preserved; partial days at either end are left alone.
    fn warp_to_daily_rhythm(&self, time_ms: i64) -> i64 {
        let local = time_ms + LOCAL_OFFSET_MS;
        let day_start = local.div_euclid(DAY_MS) * DAY_MS - LOCAL_OFFSET_MS;
        if day_start < self.start_ms || day_start + DAY_MS > self.end_ms {
            return time_ms;
        }
        let total: u32 = HOURLY_ACTIVITY.iter().sum();
        let position = (time_ms - day_start) as f64 / DAY_MS as f64 * f64::from(total);
        let mut before = 0.0;
        for (hour, weight) in HOURLY_ACTIVITY.iter().enumerate() {
            let weight = f64::from(*weight);
            if position < before + weight {
                let within = (position - before) / weight;
                let offset = (hour as f64 + within) * HOUR_MS as f64;
                return day_start + (offset as i64).min(DAY_MS - 1);
            }
            before += weight;
        }
        day_start + DAY_MS - 1
    }
}

/// Lowercase hex MD5 of `bytes`.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex(&Md5::digest(bytes))
}

pub use crate::digest::hex;

/// `len` random lowercase hex characters.
pub fn random_hex(rng: &mut impl RngCore, len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    rng.fill_bytes(&mut bytes);
    let mut text = hex(&bytes);
    text.truncate(len);
    text
}

/// `len` random decimal digits, the first one non-zero.
pub fn random_digits(rng: &mut impl Rng, len: usize) -> String {
    let mut text = String::with_capacity(len);
    for position in 0..len {
        let low = if position == 0 { 1 } else { 0 };
        text.push(char::from(b'0' + rng.gen_range(low..10u8)));
    }
    text
}

/// Writes `bytes` to `path` (creating parent directories) and sets the file's
/// mtime to `mtime_ms`, as if the app had downloaded it at that moment.
pub fn write_file_at(path: &Path, bytes: &[u8], mtime_ms: i64) -> Result<(), SimError> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    fs::write(path, bytes).map_err(io_error(path))?;
    set_mtime(path, mtime_ms)
}

/// Sets a file's modification time to `mtime_ms` (UTC ms).
pub fn set_mtime(path: &Path, mtime_ms: i64) -> Result<(), SimError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_error(path))?;
    let millis = u64::try_from(mtime_ms.max(0)).unwrap_or(0);
    file.set_modified(UNIX_EPOCH + Duration::from_millis(millis))
        .map_err(io_error(path))
}

/// Puts `conn` in WAL mode with no automatic or closing checkpoint, so that what is written
/// from now on stays in the `-wal` file, as an app that is still running leaves it.
pub fn keep_writes_in_wal(conn: &rusqlite::Connection) -> Result<(), SimError> {
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(SimError::InvalidOption(format!(
            "SQLite refused WAL mode (journal mode is {mode}); is the output on a network file system?"
        )));
    }
    conn.execute_batch("PRAGMA wal_autocheckpoint=0;")?;
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    Ok(())
}

/// Writes `dir/报价单.xlsx` with the name in GBK bytes, not UTF-8, as unpacked from an old
/// archive: a file name no UTF-8-only tool can hold.
pub fn write_gbk_named_document(
    dir: &Path,
    rng: &mut impl Rng,
    len: usize,
    mtime_ms: i64,
) -> Result<(), SimError> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::OsStr::from_bytes(b"\xb1\xa8\xbc\xdb\xb5\xa5.xlsx");
    write_file_at(
        &dir.join(name),
        &media::document(rng, "xlsx", len),
        mtime_ms,
    )
}

/// Media byte generators. They produce small files whose first bytes are the
/// real format's magic, so type sniffers and thumbnailers see real types.
pub mod media {
    use rand::{Rng, RngCore};

    /// A JPEG of exactly `len` bytes (at least 24): SOI, JFIF APP0, a comment,
    /// scan-like filler and EOI.
    pub fn jpeg(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
        let len = len.max(24);
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&[
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00,
            0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
        ]);
        filler(rng, &mut bytes, len - 2);
        bytes.extend_from_slice(&[0xFF, 0xD9]);
        bytes
    }

    /// A valid `width`×`height` PNG filled with one colour (stored deflate).
    pub fn png(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        let width = width.clamp(1, 64);
        let height = height.clamp(1, 64);
        let row_len = 1 + 3 * width as usize;
        let mut raw = Vec::with_capacity(row_len * height as usize);
        let mut row = Vec::with_capacity(row_len);
        row.push(0); // filter type "none"
        for _ in 0..width {
            row.extend_from_slice(&rgb);
        }
        for _ in 0..height {
            raw.extend_from_slice(&row);
        }
        // zlib stream with one stored (uncompressed) deflate block.
        let mut zlib = vec![0x78, 0x01, 0x01];
        let raw_len = raw.len() as u16;
        zlib.extend_from_slice(&raw_len.to_le_bytes());
        zlib.extend_from_slice(&(!raw_len).to_le_bytes());
        zlib.extend_from_slice(&raw);
        zlib.extend_from_slice(&adler32(&raw).to_be_bytes());

        let mut header = Vec::with_capacity(13);
        header.extend_from_slice(&width.to_be_bytes());
        header.extend_from_slice(&height.to_be_bytes());
        header.extend_from_slice(&[8, 2, 0, 0, 0]);

        let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
        png_chunk(&mut bytes, b"IHDR", &header);
        png_chunk(&mut bytes, b"IDAT", &zlib);
        png_chunk(&mut bytes, b"IEND", &[]);
        bytes
    }

    /// An AMR-NB (4.75 kbit/s) voice note of `duration_ms`.
    pub fn amr(rng: &mut impl RngCore, duration_ms: u32) -> Vec<u8> {
        let frames = (duration_ms / 20).max(1) as usize;
        let mut bytes = Vec::with_capacity(6 + frames * 13);
        bytes.extend_from_slice(b"#!AMR\n");
        let mut frame = [0u8; 12];
        for _ in 0..frames {
            bytes.push(0x04); // frame header: mode 0, quality bit set
            noise(rng, &mut frame);
            bytes.extend_from_slice(&frame);
        }
        bytes
    }

    /// A WeChat SILK v3 voice note of `duration_ms` (leading 0x02 as WeChat writes it).
    pub fn silk(rng: &mut impl Rng, duration_ms: u32) -> Vec<u8> {
        let frames = (duration_ms / 20).max(1) as usize;
        let mut bytes = Vec::with_capacity(10 + frames * 20);
        bytes.extend_from_slice(b"\x02#!SILK_V3");
        for _ in 0..frames {
            let frame_len: u16 = rng.gen_range(8..24);
            bytes.extend_from_slice(&frame_len.to_le_bytes());
            let start = bytes.len();
            bytes.resize(start + usize::from(frame_len), 0);
            noise(rng, &mut bytes[start..]);
        }
        bytes
    }

    /// An MP4 of exactly `len` bytes (at least 48): `ftyp`, `free` and an `mdat` box.
    pub fn mp4(rng: &mut impl RngCore, len: usize) -> Vec<u8> {
        let len = len.max(48);
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&32u32.to_be_bytes());
        bytes.extend_from_slice(b"ftypisom");
        bytes.extend_from_slice(&0x200u32.to_be_bytes());
        bytes.extend_from_slice(b"isomiso2avc1mp41");
        bytes.extend_from_slice(&8u32.to_be_bytes());
        bytes.extend_from_slice(b"free");
        let mdat_len = (len - bytes.len()) as u32;
        bytes.extend_from_slice(&mdat_len.to_be_bytes());
        bytes.extend_from_slice(b"mdat");
        let start = bytes.len();
        bytes.resize(len, 0);
        noise(rng, &mut bytes[start..]);
        bytes
    }

    /// A document of about `len` bytes whose magic matches the extension
    /// (`pdf`, Office/zip formats, text; anything else is random bytes).
    pub fn document(rng: &mut impl Rng, extension: &str, len: usize) -> Vec<u8> {
        let len = len.max(32);
        let mut bytes = Vec::with_capacity(len);
        match extension.to_ascii_lowercase().as_str() {
            "pdf" => {
                bytes.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
                while bytes.len() + 7 < len {
                    bytes.push(rng.gen_range(b' '..=b'~'));
                }
                bytes.extend_from_slice(b"\n%%EOF\n");
            }
            "xlsx" | "docx" | "pptx" | "zip" | "apk" => {
                bytes.extend_from_slice(b"PK\x03\x04\x14\x00\x06\x00");
                filler(rng, &mut bytes, len);
            }
            "jpg" | "jpeg" => return jpeg(rng, len),
            "mp4" => return mp4(rng, len),
            "txt" | "csv" => {
                const LINE: &str = "模拟文件内容 simulated file content, 第一行\r\n";
                while bytes.len() + LINE.len() <= len {
                    bytes.extend_from_slice(LINE.as_bytes());
                }
            }
            _ => filler(rng, &mut bytes, len),
        }
        bytes
    }

    /// Appends random bytes until `bytes` is `len` long.
    fn filler(rng: &mut impl RngCore, bytes: &mut Vec<u8>, len: usize) {
        let start = bytes.len();
        if len > start {
            bytes.resize(len, 0);
            noise(rng, &mut bytes[start..]);
        }
    }

    /// Random bytes with the high bit set: binary, as compressed media are, and never
    /// ASCII, so that no name or id can turn up in a media file by chance (leak searches
    /// look for them byte by byte).
    fn noise(rng: &mut impl RngCore, out: &mut [u8]) {
        rng.fill_bytes(out);
        for byte in out {
            *byte |= 0x80;
        }
    }

    fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }

    /// CRC-32 (IEEE), as PNG chunks use it.
    pub fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }

    fn adler32(bytes: &[u8]) -> u32 {
        let (mut low, mut high) = (1u32, 0u32);
        for byte in bytes {
            low = (low + u32::from(*byte)) % 65521;
            high = (high + low) % 65521;
        }
        (high << 16) | low
    }
}

/// Rewrites the random salts SQLite put in the WAL with seed-derived ones and
/// recomputes the checksum chain, so the WAL is reproducible byte for byte. Each
/// simulator derives `salt_source` from its seed.
pub(crate) fn fix_wal_salts(wal_path: &Path, salt_source: u64) -> Result<(), SimError> {
    let format_error = |reason: &str| SimError::WalFormat {
        path: wal_path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut wal = fs::read(wal_path).map_err(io_error(wal_path))?;
    if wal.len() < 32 {
        return Err(format_error("shorter than its 32-byte header"));
    }
    let magic = u32::from_be_bytes([wal[0], wal[1], wal[2], wal[3]]);
    if magic & !1 != 0x377f_0682 {
        return Err(format_error("bad magic number"));
    }
    let big_endian_words = magic & 1 == 1;
    let page_size = u32::from_be_bytes([wal[8], wal[9], wal[10], wal[11]]) as usize;
    if page_size == 0 {
        return Err(format_error("zero page size"));
    }
    let salt = salt_source.to_be_bytes();
    wal[16..24].copy_from_slice(&salt);
    let mut checksum = wal_checksum(big_endian_words, &wal[0..24], (0, 0));
    wal[24..28].copy_from_slice(&checksum.0.to_be_bytes());
    wal[28..32].copy_from_slice(&checksum.1.to_be_bytes());
    let frame_len = 24 + page_size;
    let mut offset = 32;
    while offset + frame_len <= wal.len() {
        wal[offset + 8..offset + 16].copy_from_slice(&salt);
        checksum = wal_checksum(big_endian_words, &wal[offset..offset + 8], checksum);
        checksum = wal_checksum(
            big_endian_words,
            &wal[offset + 24..offset + frame_len],
            checksum,
        );
        wal[offset + 16..offset + 20].copy_from_slice(&checksum.0.to_be_bytes());
        wal[offset + 20..offset + 24].copy_from_slice(&checksum.1.to_be_bytes());
        offset += frame_len;
    }
    fs::write(wal_path, &wal).map_err(io_error(wal_path))
}

use crate::source::wal::checksum as wal_checksum;

/// Helpers for the simulators' own tests.
#[cfg(test)]
pub(crate) mod testkit {
    use std::collections::BTreeMap;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// The options most simulator tests start from: 3,000 messages at a fixed time.
    pub fn options(out: PathBuf) -> super::SimOptions {
        super::SimOptions {
            messages: 3000,
            now_ms: 1_750_000_000_000,
            ..super::SimOptions::new(out)
        }
    }

    /// A fresh directory for one test of one platform's simulator.
    pub fn test_dir(platform: &str, name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatvault-sim-{platform}-{}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    /// Every file under `root`, relative path → bytes (symlinks by target).
    pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = fs::symlink_metadata(&path).unwrap();
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).unwrap();
                    files.insert(rel, target.as_os_str().as_encoded_bytes().to_vec());
                } else if meta.is_dir() {
                    stack.push(path);
                } else {
                    files.insert(rel, fs::read(&path).unwrap());
                }
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_spread_is_ordered_and_in_range() {
        let now = 1_750_000_000_000;
        let spread = TimeSpread::new(now, 30, 10_000);
        let mut rng = seeded_rng(1, 0);
        let mut previous = i64::MIN;
        for index in 0..10_000 {
            let time = spread.time_of(index, &mut rng);
            assert!(time >= previous, "slot {index} went back in time");
            assert!(time >= now - 30 * DAY_MS && time < now);
            previous = time;
        }
    }

    #[test]
    fn media_magic_bytes() {
        let mut rng = seeded_rng(7, 1);
        assert!(media::jpeg(&mut rng, 500).starts_with(&[0xFF, 0xD8, 0xFF]));
        assert_eq!(media::jpeg(&mut rng, 500).len(), 500);
        assert!(media::png(4, 4, [1, 2, 3]).starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(media::amr(&mut rng, 1000).starts_with(b"#!AMR\n"));
        assert!(media::silk(&mut rng, 1000).starts_with(b"\x02#!SILK_V3"));
        let video = media::mp4(&mut rng, 1000);
        assert_eq!(&video[4..8], b"ftyp");
        assert_eq!(video.len(), 1000);
        assert_eq!(media::crc32(b"IEND"), 0xAE42_6082);
    }
}
