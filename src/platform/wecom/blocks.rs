//! Archive files cut into blocks of whole lines, so that several threads can parse them
//! while each line keeps its place: its file, its line number, and its source order.

use std::fs::File;
use std::io::Read;

use crate::source::{SourceError, SourceFile};

/// Bytes read at a time; a block holds the whole lines among them.
const BLOCK_BYTES: usize = 1 << 20;

pub struct Block {
    /// Position among all blocks, to put what is parsed from them back in order.
    pub index: u64,
    /// Index of the file in the list read.
    pub file: usize,
    /// Line number (from 1) of the block's first line in its file.
    pub first_line: u64,
    /// Source order of the first line: lines are counted across the files in list order.
    pub first_seq: u64,
    /// Whole lines, each ending in `\n` except perhaps the last line of a file.
    pub bytes: Vec<u8>,
}

impl Block {
    /// Each line with its line number and source order; the `\n` is left on.
    pub fn lines(&self) -> impl Iterator<Item = (u64, u64, &[u8])> {
        let mut rest = self.bytes.as_slice();
        let mut number = 0;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let (line, tail) = rest.split_at(end);
            rest = tail;
            number += 1;
            Some((
                self.first_line + number - 1,
                self.first_seq + number - 1,
                line,
            ))
        })
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    let newlines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    newlines + u64::from(!bytes.is_empty() && !bytes.ends_with(b"\n"))
}

/// Reads `files` in order, handing each block to `send`, and returns the source order of
/// each file's first line. Stops early when `send` returns `false` (nobody is listening).
pub fn read(
    files: &[SourceFile],
    mut send: impl FnMut(Block) -> bool,
) -> Result<Vec<(u64, String)>, SourceError> {
    let mut starts = Vec::with_capacity(files.len());
    let mut index = 0;
    let mut seq = 1;
    for (file_index, file) in files.iter().enumerate() {
        starts.push((seq, file.rel_path.clone()));
        let mut handle = File::open(&file.path).map_err(|e| SourceError::io(&file.path, e))?;
        let mut line = 1;
        let mut carried: Vec<u8> = Vec::new();
        loop {
            let mut bytes = Vec::with_capacity(carried.len() + BLOCK_BYTES);
            bytes.append(&mut carried);
            let read = (&mut handle)
                .take(BLOCK_BYTES as u64)
                .read_to_end(&mut bytes)
                .map_err(|e| SourceError::io(&file.path, e))?;
            let at_end = read < BLOCK_BYTES;
            if !at_end {
                match bytes.iter().rposition(|b| *b == b'\n') {
                    Some(last) => carried = bytes.split_off(last + 1),
                    // One line longer than a block: read on until it ends.
                    None => {
                        carried = bytes;
                        continue;
                    }
                }
            }
            if !bytes.is_empty() {
                let lines = count_lines(&bytes);
                let block = Block {
                    index,
                    file: file_index,
                    first_line: line,
                    first_seq: seq,
                    bytes,
                };
                if !send(block) {
                    return Ok(starts);
                }
                index += 1;
                line += lines;
                seq += lines;
            }
            if at_end {
                break;
            }
        }
    }
    Ok(starts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks_of(contents: &[&[u8]]) -> (Vec<Block>, Vec<(u64, String)>) {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<SourceFile> = contents
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let path = dir.path().join(format!("{i}.jsonl"));
                std::fs::write(&path, bytes).unwrap();
                SourceFile {
                    rel_path: format!("archive/{i}.jsonl"),
                    path,
                }
            })
            .collect();
        let mut blocks = Vec::new();
        let starts = read(&files, |b| {
            blocks.push(b);
            true
        })
        .unwrap();
        (blocks, starts)
    }

    #[test]
    fn lines_keep_their_numbers_across_blocks_and_files() {
        // A long line, so that lines straddle block boundaries, and one longer than a block.
        let mut first = Vec::new();
        let mut expected: Vec<(usize, u64, Vec<u8>)> = Vec::new();
        for i in 0..50_000u64 {
            let line = if i == 777 {
                vec![b'x'; 3 * BLOCK_BYTES]
            } else {
                format!("line {i} {}", "y".repeat((i % 97) as usize)).into_bytes()
            };
            expected.push((0, i + 1, line.clone()));
            first.extend_from_slice(&line);
            first.push(b'\n');
        }
        let second = b"\n\na\nno newline at the end".to_vec();
        for (n, line) in ["", "", "a", "no newline at the end"].iter().enumerate() {
            expected.push((1, n as u64 + 1, line.as_bytes().to_vec()));
        }
        let (blocks, starts) = blocks_of(&[&first, b"", &second]);
        assert!(blocks.len() > 3);
        assert_eq!(
            starts,
            [
                (1, "archive/0.jsonl".to_string()),
                (50_001, "archive/1.jsonl".to_string()),
                (50_001, "archive/2.jsonl".to_string())
            ]
        );
        let mut got = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            assert_eq!(block.index, i as u64);
            for (number, seq, line) in block.lines() {
                let file = if block.file == 0 { 0 } else { 1 };
                let text = line.strip_suffix(b"\n").unwrap_or(line).to_vec();
                got.push((file, number, text));
                let offset = if file == 0 { 0 } else { 50_000 };
                assert_eq!(seq, offset + number);
            }
            assert_eq!(block.file == 2, block.first_seq > 50_000);
        }
        assert_eq!(got, expected);
        let last = blocks.last().unwrap();
        assert!(!last.bytes.ends_with(b"\n"));
    }

    #[test]
    fn reading_stops_when_nobody_listens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, "x\n".repeat(BLOCK_BYTES)).unwrap();
        let files = [SourceFile {
            rel_path: "archive/a.jsonl".into(),
            path,
        }];
        let mut sent = 0;
        read(&files, |_| {
            sent += 1;
            false
        })
        .unwrap();
        assert_eq!(sent, 1);
    }
}
