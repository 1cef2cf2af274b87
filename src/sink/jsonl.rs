//! `data/messages.jsonl`: one JSON object per message, with the fields of `messages.csv`
//! plus the message's media as structured objects and, for a reply, what it quotes
//! (`reply_to`), for jq, DuckDB and scripts. Values are
//! written as they are (no formula guard: JSON is not opened by spreadsheets).

use std::io::Write;

use serde::Serialize;

use super::{Finished, GroupHeader, GroupRow, MediaRow, MemberRow, MessageRow, QuoteRow, Sink};
use crate::evidence::{BagWriter, PayloadText};
use crate::export::ExportError;

const FILE: &str = "messages.jsonl";

pub struct JsonlFile {
    out: PayloadText,
    rows: u64,
    line: Vec<u8>,
}

impl JsonlFile {
    pub fn create(bag: &mut BagWriter) -> Result<JsonlFile, ExportError> {
        Ok(JsonlFile {
            out: bag.text_file(FILE)?,
            rows: 0,
            line: Vec::with_capacity(1024),
        })
    }
}

#[derive(Serialize)]
struct MessageObject<'a> {
    platform: &'a str,
    group_id: &'a str,
    group_name: &'a str,
    message_id: &'a str,
    /// Empty when the source gives no writable time, as in messages.csv.
    time_utc: &'a str,
    time_local: &'a str,
    sender_id: &'a str,
    sender_name: &'a str,
    direction: &'a str,
    kind: &'a str,
    text: &'a str,
    media_path: &'a str,
    media_sha256: &'a str,
    raw_type: &'a str,
    media: Vec<MediaObject<'a>>,
    /// What a reply quotes: `null` when the message quotes nothing (or the source does
    /// not record it).
    reply_to: Option<&'a QuoteRow>,
}

#[derive(Serialize)]
struct MediaObject<'a> {
    kind: &'a str,
    source_path: &'a str,
    bundle_path: &'a str,
    size: Option<u64>,
    sha256: &'a str,
    status: &'a str,
}

fn write_error(source: std::io::Error) -> ExportError {
    ExportError::Write {
        path: FILE.to_string(),
        source,
    }
}

impl Sink for JsonlFile {
    fn begin_group(
        &mut self,
        _bag: &mut BagWriter,
        _group: &GroupHeader,
        _members: &[MemberRow],
    ) -> Result<(), ExportError> {
        Ok(())
    }

    fn message(
        &mut self,
        _bag: &mut BagWriter,
        m: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError> {
        let object = MessageObject {
            platform: m.platform,
            group_id: m.group_id,
            group_name: m.group_name,
            message_id: m.message_id,
            time_utc: m.time_utc,
            time_local: m.time_local,
            sender_id: m.sender_id,
            sender_name: m.sender_name,
            direction: m.direction.as_str(),
            kind: m.kind.as_str(),
            text: m.text,
            media_path: m.media_path,
            media_sha256: m.media_sha256,
            raw_type: m.raw_type,
            media: media
                .iter()
                .map(|f| MediaObject {
                    kind: f.kind.as_str(),
                    source_path: &f.source_path,
                    bundle_path: &f.bundle_path,
                    size: f.size,
                    sha256: &f.sha256,
                    status: f.status.as_str(),
                })
                .collect(),
            reply_to: m.quote,
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &object)
            .map_err(|e| write_error(std::io::Error::other(e)))?;
        self.line.push(b'\n');
        self.out.write_all(&self.line).map_err(write_error)?;
        self.rows += 1;
        Ok(())
    }

    fn groups(&mut self, _bag: &mut BagWriter, _groups: &[GroupRow]) -> Result<(), ExportError> {
        Ok(())
    }

    fn finish(self: Box<Self>, bag: &mut BagWriter) -> Result<Finished, ExportError> {
        bag.finish_text(self.out)?;
        Ok(Finished::counts(vec![(FILE.to_string(), self.rows)]))
    }
}
