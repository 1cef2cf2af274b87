//! `data/txt/<group>.txt`: one line per message, `2025-06-01 20:15:02 +08:00  张三: text`,
//! for reading anywhere and for feeding to other tools. Lines of a message's text after
//! its first are indented by four spaces, so every line that starts in column 0 begins a
//! message. System messages show `*` where the sender's name would be.

use std::io::Write;

use super::media::group_file_stem;
use super::{Finished, GroupHeader, GroupRow, MediaRow, MemberRow, MessageRow, Sink};
use crate::evidence::{BagWriter, PayloadText};
use crate::export::ExportError;
use crate::records::Direction;

pub struct TxtFiles {
    /// The open file of the conversation being written, with its name and line count.
    current: Option<(PayloadText, String, u64)>,
    counts: Vec<(String, u64)>,
    line: String,
}

impl TxtFiles {
    pub fn new() -> TxtFiles {
        TxtFiles {
            current: None,
            counts: Vec::new(),
            line: String::with_capacity(256),
        }
    }

    fn close_current(&mut self, bag: &mut BagWriter) -> Result<(), ExportError> {
        if let Some((file, name, rows)) = self.current.take() {
            bag.finish_text(file)?;
            self.counts.push((name, rows));
        }
        Ok(())
    }
}

impl Default for TxtFiles {
    fn default() -> Self {
        TxtFiles::new()
    }
}

/// `2025-06-01T20:15:02.123+08:00` as `2025-06-01 20:15:02 +08:00`.
fn readable_time(rfc3339: &str, out: &mut String) {
    match (rfc3339.get(..10), rfc3339.get(11..19), rfc3339.get(23..)) {
        (Some(date), Some(time), Some(offset)) => {
            out.push_str(date);
            out.push(' ');
            out.push_str(time);
            out.push(' ');
            out.push_str(offset);
        }
        _ => out.push_str("(no time)"),
    }
}

/// Whatever a reader may take for a line break: `\n`, `\r`, vertical tab, form feed,
/// NEL and the Unicode line and paragraph separators.
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Appends `text` with every line after the first indented by four spaces (`\r\n` is one
/// break), so that only a message's first line starts in column 0.
fn push_indented(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_break(c) {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push_str("\n    ");
        } else {
            out.push(c);
        }
    }
}

fn write_error(name: &str) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Write {
        path: name.to_string(),
        source,
    }
}

impl Sink for TxtFiles {
    fn begin_group(
        &mut self,
        bag: &mut BagWriter,
        group: &GroupHeader,
        _members: &[MemberRow],
    ) -> Result<(), ExportError> {
        self.close_current(bag)?;
        let name = format!("txt/{}.txt", group_file_stem(group.group_id));
        let mut file = bag.text_file(&name)?;
        self.line.clear();
        self.line.push_str("# ");
        push_indented(group.group_name, &mut self.line);
        self.line
            .push_str(&format!(" ({}, {})\n", group.group_id, group.platform));
        file.write_all(self.line.as_bytes())
            .map_err(write_error(&name))?;
        self.current = Some((file, name, 0));
        Ok(())
    }

    fn message(
        &mut self,
        _bag: &mut BagWriter,
        m: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError> {
        let Some((file, name, rows)) = self.current.as_mut() else {
            return Ok(());
        };
        let line = &mut self.line;
        line.clear();
        readable_time(m.time_local, line);
        line.push_str("  ");
        if m.direction == Direction::System {
            line.push('*');
        } else if m.sender_name.is_empty() {
            line.push_str(m.sender_id);
        } else {
            push_indented(m.sender_name, line);
        }
        line.push_str(": ");
        push_indented(m.text, line);
        for file in media.iter().filter(|f| !f.bundle_path.is_empty()) {
            line.push_str("  <");
            line.push_str(&file.bundle_path);
            line.push('>');
        }
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(write_error(name))?;
        *rows += 1;
        Ok(())
    }

    fn groups(&mut self, bag: &mut BagWriter, _groups: &[GroupRow]) -> Result<(), ExportError> {
        self.close_current(bag)
    }

    fn finish(mut self: Box<Self>, bag: &mut BagWriter) -> Result<Finished, ExportError> {
        self.close_current(bag)?;
        Ok(Finished::counts(std::mem::take(&mut self.counts)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_continuation_lines_are_readable() {
        let mut out = String::new();
        readable_time("2025-06-01T20:15:02.123+08:00", &mut out);
        assert_eq!(out, "2025-06-01 20:15:02 +08:00");
        out.clear();
        readable_time("", &mut out);
        assert_eq!(out, "(no time)");
        out.clear();
        push_indented("a\r\nb\nc\rd\u{2028}e", &mut out);
        assert_eq!(out, "a\n    b\n    c\n    d\n    e");
    }
}
