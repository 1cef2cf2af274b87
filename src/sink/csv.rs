//! The CSV files of outputs.md: RFC 4180, CRLF, UTF-8 with a BOM by default, and a
//! reversible guard against formula injection.

use std::borrow::Cow;
use std::io::Write;

use super::{Finished, GroupHeader, GroupRow, MediaRow, MemberRow, MessageRow, Sink};
use crate::evidence::{BagWriter, PayloadText};
use crate::export::ExportError;

pub const MESSAGES_HEADER: [&str; 14] = [
    "platform",
    "group_id",
    "group_name",
    "message_id",
    "time_utc",
    "time_local",
    "sender_id",
    "sender_name",
    "direction",
    "kind",
    "text",
    "media_path",
    "media_sha256",
    "raw_type",
];
pub const MEMBERS_HEADER: [&str; 8] = [
    "platform",
    "group_id",
    "member_id",
    "display_name",
    "group_nickname",
    "role",
    "joined_at_utc",
    "left",
];
pub const GROUPS_HEADER: [&str; 8] = [
    "platform",
    "group_id",
    "group_name",
    "owner_id",
    "member_count",
    "message_count",
    "first_message_utc",
    "last_message_utc",
];
pub const MEDIA_HEADER: [&str; 9] = [
    "platform",
    "group_id",
    "message_id",
    "kind",
    "source_path",
    "bundle_path",
    "size",
    "sha256",
    "status",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvStyle {
    /// A UTF-8 BOM, so that Excel on a Chinese Windows reads UTF-8.
    pub bom: bool,
    /// The formula-injection guard (`Chatvault-Csv-Guard: excel`).
    pub guard: bool,
}

impl Default for CsvStyle {
    fn default() -> Self {
        CsvStyle {
            bom: true,
            guard: true,
        }
    }
}

/// Prefixes `'` to a cell a spreadsheet would run as a formula. `'` itself is escaped too,
/// so stripping one leading `'` before any of these characters restores the original.
pub fn guard_cell(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\n' | b'\'') => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

/// Undoes [`guard_cell`].
pub fn unguard_cell(cell: &str) -> &str {
    match cell.as_bytes() {
        [b'\'', b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r' | b'\n' | b'\'', ..] => &cell[1..],
        _ => cell,
    }
}

pub struct CsvTable<W: Write> {
    writer: ::csv::Writer<W>,
    style: CsvStyle,
    rows: u64,
}

impl<W: Write> CsvTable<W> {
    pub fn new(mut inner: W, style: CsvStyle, header: &[&str]) -> std::io::Result<CsvTable<W>> {
        if style.bom {
            inner.write_all("\u{FEFF}".as_bytes())?;
        }
        let mut sink = CsvTable::with_buffer(inner, style, 256 * 1024);
        sink.write_cells(header)?;
        Ok(sink)
    }

    /// Rows only, without the BOM and the header: a piece of a CSV file whose start is
    /// written elsewhere (rows rendered on several threads, then appended in order).
    pub fn rows_only(inner: W, style: CsvStyle) -> CsvTable<W> {
        CsvTable::with_buffer(inner, style, 8 * 1024)
    }

    fn with_buffer(inner: W, style: CsvStyle, capacity: usize) -> CsvTable<W> {
        let writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .quote_style(::csv::QuoteStyle::Necessary)
            .buffer_capacity(capacity)
            .from_writer(inner);
        CsvTable {
            writer,
            style,
            rows: 0,
        }
    }

    pub fn row(&mut self, cells: &[&str]) -> std::io::Result<()> {
        self.write_cells(cells)?;
        self.rows += 1;
        Ok(())
    }

    fn write_cells(&mut self, cells: &[&str]) -> std::io::Result<()> {
        let result = if self.style.guard {
            self.writer
                .write_record(cells.iter().map(|c| GuardedCell(guard_cell(c))))
        } else {
            self.writer.write_record(cells)
        };
        result.map_err(csv_to_io)
    }

    /// Data rows written (the header is not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn into_inner(self) -> std::io::Result<W> {
        self.writer
            .into_inner()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Lets the csv writer take guarded cells without copying the unguarded majority.
struct GuardedCell<'a>(Cow<'a, str>);

impl AsRef<[u8]> for GuardedCell<'_> {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

fn csv_to_io(error: ::csv::Error) -> std::io::Error {
    match error.into_kind() {
        ::csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// The four CSV files of outputs.md as a [`Sink`]: `messages.csv`, `media.csv`,
/// `members.csv` and `groups.csv`, written as the rows arrive.
pub struct CsvFiles {
    style: CsvStyle,
    messages: CsvTable<PayloadText>,
    media: CsvTable<PayloadText>,
    members: CsvTable<PayloadText>,
    groups: Option<CsvTable<PayloadText>>,
}

impl CsvFiles {
    /// Opens the files that fill during the pass (`groups.csv` is written at the end).
    pub fn create(bag: &mut BagWriter, style: CsvStyle) -> Result<CsvFiles, ExportError> {
        Ok(CsvFiles {
            style,
            messages: open(bag, MESSAGES, style, &MESSAGES_HEADER)?,
            media: open(bag, MEDIA, style, &MEDIA_HEADER)?,
            members: open(bag, MEMBERS, style, &MEMBERS_HEADER)?,
            groups: None,
        })
    }
}

const MESSAGES: &str = "messages.csv";
const MEDIA: &str = "media.csv";
const MEMBERS: &str = "members.csv";
const GROUPS: &str = "groups.csv";

fn open(
    bag: &mut BagWriter,
    name: &'static str,
    style: CsvStyle,
    header: &[&str],
) -> Result<CsvTable<PayloadText>, ExportError> {
    CsvTable::new(bag.text_file(name)?, style, header).map_err(write_error(name))
}

fn write_error(name: &'static str) -> impl Fn(std::io::Error) -> ExportError {
    move |source| ExportError::Write {
        path: name.to_string(),
        source,
    }
}

fn flag(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

impl Sink for CsvFiles {
    fn begin_group(
        &mut self,
        _bag: &mut BagWriter,
        _group: &GroupHeader,
        members: &[MemberRow],
    ) -> Result<(), ExportError> {
        for m in members {
            self.members
                .row(&[
                    m.platform,
                    m.group_id,
                    m.member_id,
                    m.display_name,
                    m.group_nickname,
                    m.role,
                    m.joined_at_utc,
                    flag(m.left),
                ])
                .map_err(write_error(MEMBERS))?;
        }
        Ok(())
    }

    fn message(
        &mut self,
        _bag: &mut BagWriter,
        message: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError> {
        let mut size = String::new();
        for file in media {
            size.clear();
            if let Some(bytes) = file.size {
                size.push_str(&bytes.to_string());
            }
            self.media
                .row(&[
                    message.platform,
                    message.group_id,
                    message.message_id,
                    file.kind.as_str(),
                    &file.source_path,
                    &file.bundle_path,
                    &size,
                    &file.sha256,
                    file.status.as_str(),
                ])
                .map_err(write_error(MEDIA))?;
        }
        self.messages
            .row(&[
                message.platform,
                message.group_id,
                message.group_name,
                message.message_id,
                message.time_utc,
                message.time_local,
                message.sender_id,
                message.sender_name,
                message.direction.as_str(),
                message.kind.as_str(),
                message.text,
                message.media_path,
                message.media_sha256,
                message.raw_type,
            ])
            .map_err(write_error(MESSAGES))
    }

    fn groups(&mut self, bag: &mut BagWriter, groups: &[GroupRow]) -> Result<(), ExportError> {
        let mut table = open(bag, GROUPS, self.style, &GROUPS_HEADER)?;
        for g in groups {
            table
                .row(&[
                    g.platform,
                    g.group_id,
                    g.group_name,
                    g.owner_id,
                    &g.member_count.to_string(),
                    &g.message_count.to_string(),
                    &g.first_message_utc,
                    &g.last_message_utc,
                ])
                .map_err(write_error(GROUPS))?;
        }
        self.groups = Some(table);
        Ok(())
    }

    fn finish(self: Box<Self>, bag: &mut BagWriter) -> Result<Finished, ExportError> {
        let this = *self;
        let groups = match this.groups {
            Some(table) => table,
            None => open(bag, GROUPS, this.style, &GROUPS_HEADER)?,
        };
        let mut counts = Vec::with_capacity(4);
        for (table, name) in [
            (this.messages, MESSAGES),
            (this.media, MEDIA),
            (this.members, MEMBERS),
            (groups, GROUPS),
        ] {
            counts.push((name.to_string(), table.rows()));
            let file = table.into_inner().map_err(write_error(name))?;
            bag.finish_text(file)?;
        }
        Ok(Finished::counts(counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(style: CsvStyle, cells: &[&str]) -> Vec<u8> {
        let mut sink = CsvTable::new(Vec::new(), style, &["a", "b"]).unwrap();
        sink.row(cells).unwrap();
        sink.into_inner().unwrap()
    }

    #[test]
    fn writes_rfc4180_with_bom_and_crlf() {
        let out = write(
            CsvStyle {
                bom: true,
                guard: true,
            },
            &["x,\"y\"", "line\r\nnext\0"],
        );
        let expected = "\u{FEFF}a,b\r\n\"x,\"\"y\"\"\",\"line\r\nnext\0\"\r\n";
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn guard_is_reversible() {
        for cell in [
            "=SUM(A1)", "+1", "-x", "@a", "\tt", "'q", "''", "plain", "", "'plain",
        ] {
            let guarded = guard_cell(cell);
            assert_eq!(unguard_cell(&guarded), cell, "{cell:?}");
        }
        assert_eq!(guard_cell("=1"), "'=1");
        assert_eq!(guard_cell("'plain"), "''plain");
        let raw = write(
            CsvStyle {
                bom: false,
                guard: false,
            },
            &["=1", "b"],
        );
        assert_eq!(String::from_utf8(raw).unwrap(), "a,b\r\n=1,b\r\n");
    }
}
