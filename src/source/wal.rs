//! Reading a SQLite write-ahead log's framing, read-only, to tell what SQLite will ignore.
//!
//! SQLite replays a WAL (sqlite.org/fileformat2.html#walformat) frame by frame and stops,
//! without a word, at the first frame whose salts differ from the header's or whose
//! cumulative checksum fails; it also ignores frames after the last commit frame. A
//! damaged log therefore loses every later transaction silently. [`scan`] reads the log
//! once, front to back, and counts the frames of the current log (those carrying the
//! header's salts) that will not be replayed.
//!
//! Frames with other salts after the last valid one are normal: SQLite restarts the log
//! from its beginning after a checkpoint and leaves older frames behind. They are not
//! counted.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

const MAGIC_LE: u32 = 0x377f_0682;
const HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// What a WAL holds and how much of it SQLite will replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalScan {
    /// Whole frames in the file.
    pub frames_present: u64,
    /// Frames SQLite replays: valid ones up to the last commit frame.
    pub frames_used: u64,
    /// Frames of the current log that SQLite will not replay (a failed checksum, a
    /// transaction never committed), or every frame when the header itself is unusable.
    pub frames_ignored: u64,
    /// Why frames are ignored, for a warning; `None` when none are.
    pub problem: Option<String>,
}

/// SQLite's WAL checksum over pairs of 32-bit words (big-endian words when `big_endian`),
/// continuing from `start`. `bytes` is a multiple of 8 long (a remainder is ignored).
pub fn checksum(big_endian: bool, bytes: &[u8], start: (u32, u32)) -> (u32, u32) {
    let (mut first, mut second) = start;
    for pair in bytes.chunks_exact(8) {
        let word = |at: usize| {
            let raw = [pair[at], pair[at + 1], pair[at + 2], pair[at + 3]];
            if big_endian {
                u32::from_be_bytes(raw)
            } else {
                u32::from_le_bytes(raw)
            }
        };
        first = first.wrapping_add(word(0)).wrapping_add(second);
        second = second.wrapping_add(word(4)).wrapping_add(first);
    }
    (first, second)
}

fn be32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Scans the WAL at `path` in one sequential read.
pub fn scan(path: &Path) -> io::Result<WalScan> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    scan_reader(BufReader::with_capacity(1 << 16, file), len)
}

/// [`scan`] over any reader of `len` bytes.
pub fn scan_reader(mut reader: impl Read, len: u64) -> io::Result<WalScan> {
    let nothing = WalScan {
        frames_present: 0,
        frames_used: 0,
        frames_ignored: 0,
        problem: None,
    };
    // An empty or header-less log holds nothing SQLite would read.
    if len < HEADER as u64 {
        return Ok(nothing);
    }
    let mut header = [0u8; HEADER];
    reader.read_exact(&mut header)?;
    let magic = be32(&header, 0);
    let page_size = be32(&header, 8);
    let valid_page = (512..=65536).contains(&page_size) && page_size.is_power_of_two();
    let frame_len = FRAME_HEADER as u64 + u64::from(page_size);
    let frames_present = if valid_page {
        (len - HEADER as u64) / frame_len
    } else {
        0
    };
    let unusable = |reason: String| WalScan {
        frames_present,
        frames_used: 0,
        frames_ignored: frames_present,
        problem: (frames_present > 0).then_some(reason),
    };
    if magic & !1 != MAGIC_LE {
        return Ok(unusable(format!(
            "the log's header is damaged (magic {magic:#010x}): SQLite ignores all of it"
        )));
    }
    if !valid_page {
        return Ok(unusable(format!(
            "the log's header is damaged (page size {page_size}): SQLite ignores all of it"
        )));
    }
    let big_endian = magic & 1 == 1;
    let mut running = checksum(big_endian, &header[..24], (0, 0));
    if running != (be32(&header, 24), be32(&header, 28)) {
        return Ok(unusable(
            "the log's header fails its checksum: SQLite ignores all of it".to_string(),
        ));
    }
    let salts = &header[16..24];

    let mut frame = vec![0u8; frame_len as usize];
    let mut valid = 0u64; // frames before the first that fails
    let mut used = 0u64; // valid frames up to the last commit frame
    let mut first_bad: Option<(u64, &'static str)> = None;
    let mut current_after_bad = 0u64; // frames with the current salts from the bad one on
    for index in 0..frames_present {
        reader.read_exact(&mut frame)?;
        let same_salts = &frame[8..16] == salts;
        if first_bad.is_none() {
            let sum = checksum(big_endian, &frame[..8], running);
            let sum = checksum(big_endian, &frame[FRAME_HEADER..], sum);
            let stored = (be32(&frame, 16), be32(&frame, 20));
            if same_salts && sum == stored {
                running = sum;
                valid += 1;
                if be32(&frame, 4) != 0 {
                    used = valid;
                }
                continue;
            }
            first_bad = Some((
                index,
                if same_salts {
                    "fails its checksum"
                } else {
                    "has other salts than the log's header"
                },
            ));
            // The failing frame is the current log's when its salts say so, or when any
            // later frame's do (its header may be what was overwritten).
            if same_salts {
                current_after_bad += 1;
            }
            continue;
        }
        if same_salts {
            current_after_bad += 1;
        }
    }
    let uncommitted = valid - used;
    let (ignored, problem) = match first_bad {
        Some((index, why)) if current_after_bad > 0 => {
            // A bad frame whose own salts were overwritten is the current log's too.
            let bad_is_foreign = why.starts_with("has other");
            let ignored = uncommitted + current_after_bad + u64::from(bad_is_foreign);
            (
                ignored,
                Some(format!(
                    "frame {} {why}; SQLite replays the log only up to the last transaction \
                     committed before it",
                    index + 1
                )),
            )
        }
        _ if uncommitted > 0 => (
            uncommitted,
            Some(format!(
                "the last {uncommitted} frames belong to a transaction that was never \
                 committed: SQLite ignores them"
            )),
        ),
        _ => (0, None),
    };
    Ok(WalScan {
        frames_present,
        frames_used: used,
        frames_ignored: ignored,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 512;

    /// A log of `commits` one-frame transactions, with valid checksums.
    fn log(big_endian: bool, frames: &[(u32, u32)], salts: [u8; 8]) -> Vec<u8> {
        let mut wal = Vec::new();
        let magic = MAGIC_LE | u32::from(big_endian);
        wal.extend(magic.to_be_bytes());
        wal.extend(3_007_000u32.to_be_bytes());
        wal.extend((PAGE as u32).to_be_bytes());
        wal.extend(0u32.to_be_bytes());
        wal.extend(salts);
        let mut sum = checksum(big_endian, &wal[..24], (0, 0));
        wal.extend(sum.0.to_be_bytes());
        wal.extend(sum.1.to_be_bytes());
        for (i, &(page, commit)) in frames.iter().enumerate() {
            let mut frame = Vec::new();
            frame.extend(page.to_be_bytes());
            frame.extend(commit.to_be_bytes());
            frame.extend(salts);
            let data: Vec<u8> = (0..PAGE).map(|b| (b * 7 + i) as u8).collect();
            sum = checksum(big_endian, &frame[..8], sum);
            sum = checksum(big_endian, &data, sum);
            frame.extend(sum.0.to_be_bytes());
            frame.extend(sum.1.to_be_bytes());
            frame.extend(data);
            wal.extend(frame);
        }
        wal
    }

    fn run(bytes: &[u8]) -> WalScan {
        scan_reader(bytes, bytes.len() as u64).unwrap()
    }

    const FRAME: usize = FRAME_HEADER + PAGE;

    #[test]
    fn an_intact_log_is_used_whole_in_both_byte_orders() {
        for big_endian in [false, true] {
            let frames: Vec<(u32, u32)> = (1..=10).map(|p| (p, p)).collect();
            let scan = run(&log(big_endian, &frames, *b"saltsalt"));
            assert_eq!(
                scan,
                WalScan {
                    frames_present: 10,
                    frames_used: 10,
                    frames_ignored: 0,
                    problem: None
                }
            );
        }
        assert_eq!(run(&[]).frames_present, 0);
        assert_eq!(run(&[1, 2, 3]).problem, None);
    }

    #[test]
    fn a_damaged_frame_ignores_it_and_everything_after() {
        let frames: Vec<(u32, u32)> = (1..=10).map(|p| (p, p)).collect();
        let mut wal = log(false, &frames, *b"saltsalt");
        // Overwrite data of frame 4 (index 3).
        let at = HEADER + 3 * FRAME + FRAME_HEADER + 10;
        wal[at..at + 100].fill(0xAB);
        let scan = run(&wal);
        assert_eq!((scan.frames_used, scan.frames_ignored), (3, 7));
        assert!(scan.problem.unwrap().contains("frame 4 fails"));
        // Overwriting a frame header (its salts) counts the same.
        let mut wal = log(false, &frames, *b"saltsalt");
        let at = HEADER + 5 * FRAME;
        wal[at..at + 24].fill(0);
        let scan = run(&wal);
        assert_eq!((scan.frames_used, scan.frames_ignored), (5, 5));
    }

    #[test]
    fn stale_frames_of_an_older_log_are_not_damage() {
        let frames: Vec<(u32, u32)> = (1..=4).map(|p| (p, p)).collect();
        let mut wal = log(false, &frames, *b"newsalts");
        let old = log(
            false,
            &(1..=8).map(|p| (p, p)).collect::<Vec<_>>(),
            *b"oldsalts",
        );
        wal.extend_from_slice(&old[HEADER + 4 * FRAME..]);
        let scan = run(&wal);
        assert_eq!(
            (scan.frames_present, scan.frames_used, scan.frames_ignored),
            (8, 4, 0)
        );
        assert_eq!(scan.problem, None);
    }

    #[test]
    fn uncommitted_frames_and_a_bad_header_are_reported() {
        let scan = run(&log(true, &[(1, 0), (2, 2), (3, 0)], *b"saltsalt"));
        assert_eq!((scan.frames_used, scan.frames_ignored), (2, 1));
        assert!(scan.problem.unwrap().contains("never"));
        let mut wal = log(false, &[(1, 1), (2, 2)], *b"saltsalt");
        wal[20] ^= 1;
        let scan = run(&wal);
        assert_eq!((scan.frames_used, scan.frames_ignored), (0, 2));
        assert!(scan.problem.unwrap().contains("header"));
    }
}
