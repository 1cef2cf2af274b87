//! `archive/*.jsonl`, read once into the private temporary store (`store`).
//!
//! Lines come in any order and the same msgid may appear twice. Sorting a group's messages
//! in memory would grow with the archive, so every line is parsed once, interpreted, and
//! handed to the store, which sorts in bounded chunks on disk. Files are read in blocks of
//! whole lines, parsed on as many threads as there are cores, and stored in source order. The store then drops repeated msgids (the first occurrence in source
//! order wins). The source files are only ever read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::blocks::{self, Block};
use super::record::{self, Conversation, Outcome};
use super::store::{self, Builder, Store};
use super::ARCHIVE_DIR;
use crate::records::Warning;
use crate::source::{SourceError, SourceFile};

/// Warnings kept one by one; beyond this, only counted (a broken archive may have millions).
const MAX_KEPT_WARNINGS: usize = 1000;

/// Problems met while reading, each with where (`archive/x.jsonl:12`), bounded in memory.
#[derive(Debug, Default)]
pub struct WarningLog {
    kept: Vec<Warning>,
    more: u64,
}

impl WarningLog {
    pub fn push(&mut self, location: &str, message: String) {
        if self.kept.len() < MAX_KEPT_WARNINGS {
            self.kept.push(Warning {
                location: location.to_string(),
                message,
            });
        } else {
            self.more += 1;
        }
    }

    /// Counts problems that were found but not listed.
    pub fn count_more(&mut self, more: u64) {
        self.more += more;
    }

    pub fn finish(mut self) -> Vec<Warning> {
        if self.more > 0 {
            self.kept.push(Warning {
                location: ARCHIVE_DIR.into(),
                message: format!("{} more problems like the above not listed", self.more),
            });
        }
        self.kept
    }
}

/// The regular files `<root>/<dir>/*.<extension>`, sorted by name. Links are not followed
/// (they could lead out of the root) and are reported instead.
pub fn regular_files(
    root: &Path,
    dir: &str,
    extension: &str,
    warnings: &mut WarningLog,
) -> Result<Vec<SourceFile>, SourceError> {
    let path = root.join(dir);
    let entries = std::fs::read_dir(&path).map_err(|e| SourceError::io(&path, e))?;
    let mut files: Vec<(std::ffi::OsString, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SourceError::io(&path, e))?;
        let name = entry.file_name();
        let has_extension = Path::new(&name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(extension));
        if !has_extension {
            continue;
        }
        let file_path = entry.path();
        let meta =
            std::fs::symlink_metadata(&file_path).map_err(|e| SourceError::io(&file_path, e))?;
        if meta.is_file() {
            files.push((name, file_path));
        } else {
            warnings.push(
                &format!("{dir}/{}", name.to_string_lossy()),
                "not a regular file (a link or directory): not read".into(),
            );
        }
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|(name, path)| SourceFile {
            rel_path: format!("{dir}/{}", name.to_string_lossy()),
            path,
        })
        .collect())
}

/// The archive files, for detection.
pub fn archive_files(root: &Path) -> Result<Vec<SourceFile>, SourceError> {
    regular_files(root, ARCHIVE_DIR, "jsonl", &mut WarningLog::default())
}

pub struct Ingested {
    pub store: Store,
    /// Group ids named by kept messages.
    pub rooms: BTreeSet<String>,
    /// One-to-one chat id → participants.
    pub private_chats: BTreeMap<String, Vec<String>>,
    /// The archive files read.
    pub files: Vec<SourceFile>,
}

/// Reads every archive line into a new store.
pub fn ingest(root: &Path, warnings: &mut WarningLog) -> Result<Ingested, SourceError> {
    let files = regular_files(root, ARCHIVE_DIR, "jsonl", warnings)?;
    let mut builder = Builder::new()?;
    let parsers = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4));
    let stopped = || SourceError::Corrupt {
        path: root.join(ARCHIVE_DIR),
        detail: "an archive reader stopped unexpectedly".into(),
    };
    // One thread reads blocks of lines, `parsers` threads parse them, this one stores.
    let (read, parsed, stored) = std::thread::scope(|scope| {
        let (block_sender, blocks) = sync_channel::<Block>(parsers * 2);
        let blocks = Arc::new(Mutex::new(blocks));
        let (parsed_sender, parsed) = sync_channel::<Parsed>(parsers * 2);
        let files = &files;
        // (the block sender moves in, so that the parsers see the end when reading ends)
        let reader =
            scope.spawn(move || blocks::read(files, |block| block_sender.send(block).is_ok()));
        let workers: Vec<_> = (0..parsers)
            .map(|worker| {
                let blocks = Arc::clone(&blocks);
                let sender = parsed_sender.clone();
                scope.spawn(move || parse_blocks(worker, files, &blocks, &sender))
            })
            .collect();
        drop((parsed_sender, blocks));
        let stored = store_all(&mut builder, parsers, parsed, warnings);
        let mut parsed = Ok(());
        for worker in workers {
            let result = worker.join().unwrap_or_else(|_| Err(stopped()));
            parsed = parsed.and(result);
        }
        let read = reader.join().unwrap_or_else(|_| Err(stopped()));
        (read, parsed, stored)
    });
    let file_starts = read?;
    parsed?;
    stored?;
    let (store, repeats) = builder.finish(MAX_KEPT_WARNINGS)?;
    for repeat in repeats.listed {
        warnings.push(
            &location(&file_starts, repeat.seq),
            format!(
                "msgid {} appeared before with a different content: the first is kept",
                repeat.msgid
            ),
        );
    }
    warnings.count_more(repeats.more);
    let mut rooms = BTreeSet::new();
    let mut private_chats = BTreeMap::new();
    for stored in store.conversations() {
        match &stored.conversation {
            Conversation::Room(id) => {
                rooms.insert(id.clone());
            }
            Conversation::Private { id, participants } => {
                private_chats.insert(id.clone(), participants.clone());
            }
        }
    }
    Ok(Ingested {
        store,
        rooms,
        private_chats,
        files,
    })
}

/// `archive/x.jsonl:12` for a seq, given the first seq of each file.
fn location(file_starts: &[(u64, String)], seq: u64) -> String {
    let index = file_starts.partition_point(|(start, _)| *start <= seq);
    match index.checked_sub(1).and_then(|i| file_starts.get(i)) {
        Some((start, rel)) => format!("{rel}:{}", seq - start + 1),
        None => format!("{ARCHIVE_DIR} line {seq}"),
    }
}

/// What one parser made of one block: its messages encoded for the store, and its problems.
struct Parsed {
    index: u64,
    worker: usize,
    /// Conversations this worker had not met before, with the number it gave them.
    new_conversations: Vec<(u32, Conversation)>,
    /// The records, one after another.
    records: Vec<u8>,
    messages: Vec<Parsed1>,
    warnings: Vec<(String, String)>,
}

/// One record of a [`Parsed`] block.
struct Parsed1 {
    len: usize,
    seq: u64,
    time_ms: i64,
    id_hash: u64,
    /// The conversation, by the worker's number for it.
    conversation: u32,
}

/// Parses blocks until there are none left or the storing side has stopped.
fn parse_blocks(
    worker: usize,
    files: &[SourceFile],
    blocks: &Mutex<Receiver<Block>>,
    sender: &SyncSender<Parsed>,
) -> Result<(), SourceError> {
    let mut conversations: HashMap<String, u32> = HashMap::new();
    loop {
        let block = match blocks.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return Ok(()),
        };
        let Ok(block) = block else { return Ok(()) };
        let parsed = parse_block(worker, files, &block, &mut conversations)?;
        if sender.send(parsed).is_err() {
            return Ok(());
        }
    }
}

fn parse_block(
    worker: usize,
    files: &[SourceFile],
    block: &Block,
    conversations: &mut HashMap<String, u32>,
) -> Result<Parsed, SourceError> {
    let rel_path = files.get(block.file).map_or(ARCHIVE_DIR, |f| &f.rel_path);
    let mut parsed = Parsed {
        index: block.index,
        worker,
        new_conversations: Vec::new(),
        records: Vec::with_capacity(block.bytes.len()),
        messages: Vec::with_capacity(block.bytes.len() / 256),
        warnings: Vec::new(),
    };
    for (line_no, seq, line) in block.lines() {
        let mut bytes = line;
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let bytes = bytes.trim_ascii();
        if bytes.is_empty() {
            continue;
        }
        let location = || format!("{rel_path}:{line_no}");
        let (outcome, lossy) = match record::interpret_fast(bytes) {
            Some(outcome) => (outcome, false),
            None => match parse(bytes) {
                Ok((value, lossy)) => (record::interpret(&value, &location()), lossy),
                Err(problem) => {
                    let cut = if !line.ends_with(b"\n") {
                        " (the file ends mid-line: truncated?)"
                    } else {
                        ""
                    };
                    parsed
                        .warnings
                        .push((location(), format!("{problem}{cut}: line skipped")));
                    continue;
                }
            },
        };
        let mut entry = match outcome {
            Outcome::Message(entry) => entry,
            Outcome::Switch => continue,
            Outcome::Unusable(why) => {
                parsed
                    .warnings
                    .push((location(), format!("{why}: line skipped")));
                continue;
            }
        };
        if lossy {
            let note = "invalid UTF-8 replaced".to_string();
            entry.warning = Some(match entry.warning.take() {
                Some(w) => format!("{note}; {w}"),
                None => note,
            });
        }
        if let Some(problem) = &entry.warning {
            parsed.warnings.push((
                location(),
                format!("message {}: {problem}", entry.message_id),
            ));
        }
        let id = entry.conversation.id();
        let conversation = match conversations.get(id) {
            Some(&number) => number,
            None => {
                let number = conversations.len() as u32;
                conversations.insert(id.to_string(), number);
                parsed
                    .new_conversations
                    .push((number, entry.conversation.clone()));
                number
            }
        };
        let start = parsed.records.len();
        store::encode(&entry, seq, &mut parsed.records).map_err(|problem| {
            SourceError::Corrupt {
                path: files
                    .get(block.file)
                    .map_or_else(PathBuf::new, |f| f.path.clone()),
                detail: format!("line {line_no}: {problem}"),
            }
        })?;
        parsed.messages.push(Parsed1 {
            len: parsed.records.len() - start,
            seq,
            time_ms: entry.time_ms.unwrap_or(store::NO_TIME),
            id_hash: store::id_hash(&entry.message_id),
            conversation,
        });
    }
    Ok(parsed)
}

/// Stores what the parsers send, block by block in source order (so that warnings keep
/// their order); on failure, drops the receiver so that parsing stops.
fn store_all(
    builder: &mut Builder,
    workers: usize,
    parsed: Receiver<Parsed>,
    warnings: &mut WarningLog,
) -> Result<(), SourceError> {
    let mut waiting: BTreeMap<u64, Parsed> = BTreeMap::new();
    let mut next = 0;
    // Per worker, its conversation numbers to the store's.
    let mut numbers: Vec<Vec<u32>> = vec![Vec::new(); workers];
    for block in parsed {
        waiting.insert(block.index, block);
        while let Some(block) = waiting.remove(&next) {
            next += 1;
            let numbers = &mut numbers[block.worker];
            for (number, conversation) in block.new_conversations {
                debug_assert_eq!(number as usize, numbers.len());
                numbers.push(builder.add_conversation(conversation)?);
            }
            for (location, message) in block.warnings {
                warnings.push(&location, message);
            }
            let mut start = 0;
            for message in &block.messages {
                let record = &block.records[start..start + message.len];
                start += message.len;
                let conversation = numbers[message.conversation as usize];
                builder.push_encoded(
                    record,
                    conversation,
                    message.seq,
                    message.time_ms,
                    message.id_hash,
                )?;
            }
        }
    }
    Ok(())
}

/// Parses a line; invalid UTF-8 is replaced (and reported) rather than losing the line.
pub(crate) fn parse(bytes: &[u8]) -> Result<(Value, bool), String> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => Ok((value, false)),
        Err(error) => {
            if std::str::from_utf8(bytes).is_err() {
                let text = String::from_utf8_lossy(bytes);
                if let Ok(value) = serde_json::from_str::<Value>(&text) {
                    return Ok((value, true));
                }
            }
            Err(format!("not JSON ({error})"))
        }
    }
}
