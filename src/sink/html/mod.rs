//! `data/html/`: a transcript to read in a browser. `index.html` lists the conversations;
//! each has `html/<group>/index.html` (its days, with the page each starts on) and pages
//! `0001.html`, `0002.html`, … of [`PAGE_SIZE`] messages with previous/next links, so a
//! million-message group opens at once. Sent messages on the right, received on the left,
//! system messages centred; a date line per day; images inline from the bundle's media,
//! other media as links, media that could not be copied as a placeholder with the reason.
//!
//! `index.html` is also the export's report ([`report`]): provenance, the sources'
//! hashes, a table and charts per conversation, the roster, the warnings and a hash annex
//! of the payload. It is written last, once everything it vouches for is known. A print
//! stylesheet makes "Print to PDF" a document to file: a cover page, page numbers, the
//! conversation's name at the head of every transcript page, the annex at the end.
//!
//! Safe by construction: every value from a source goes through [`text`] or [`attr`]
//! (links are built only from bundle paths, percent-encoded); pages load nothing from
//! outside the bundle and carry a Content-Security-Policy that allows only the bundle's
//! own images and the inline stylesheet. No JavaScript.

mod chart;
pub mod report;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;

use super::media::group_file_stem;
use super::{Finished, GroupHeader, GroupRow, MediaRow, MediaStatus, MemberRow, MessageRow, Sink};
use crate::evidence::{BagWriter, PayloadText};
use crate::export::ExportError;
use crate::records::{Direction, Kind, MediaKind};

/// Messages per transcript page.
pub const PAGE_SIZE: usize = 2000;

const STYLE: &str = "body{font-family:system-ui,\"Noto Sans CJK SC\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;max-width:60em;margin:0 auto;padding:1em;background:#f4f4f4;color:#111}\
h1{font-size:1.3em}nav{margin:1em 0}nav a{margin-right:1em}\
.day{text-align:center;color:#555;margin:1.2em 0 .4em;font-size:.9em}\
.msg{margin:.35em 0;display:flex;flex-direction:column;align-items:flex-start}\
.msg.sent{align-items:flex-end}.msg.system{align-items:center}\
.bubble{background:#fff;border-radius:.5em;padding:.4em .7em;max-width:80%;white-space:pre-wrap;overflow-wrap:anywhere}\
.sent .bubble{background:#d6f5c6}.system .bubble{background:none;color:#666;font-size:.9em}\
.meta{font-size:.75em;color:#666}\
.card{border-left:.3em solid #999}.card.red_packet{border-color:#d33;background:#fde8e4}\
.card.transfer{border-color:#e90;background:#fff3de}.card.link,.card.location{border-color:#37c}\
.card.quote{border-color:#888;color:#333}\
.quoted{font-size:.85em;color:#555;border-left:.2em solid #bbb;padding:.1em .5em;margin:.1em 0;max-width:80%;white-space:pre-wrap;overflow-wrap:anywhere}.recall .bubble{font-style:italic;color:#777}\
.media img{max-width:100%;max-height:24em;display:block}.missing{color:#a00;font-size:.85em}\
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
code{overflow-wrap:break-word}.facts td{white-space:pre-line}.hash{font-family:ui-monospace,monospace;font-size:.8em;overflow-wrap:anywhere}\
.chart{width:100%;max-width:720px;height:auto;display:block;margin:.3em 0}.note{color:#555;font-size:.9em}\
@page{size:A4;margin:16mm 14mm 18mm;@bottom-right{content:\"page \" counter(page) \" of \" counter(pages);font-size:8pt;color:#555}}\
@media print{body{background:#fff;max-width:none;padding:0;font-size:10pt}nav{display:none}\
.bubble{border:1px solid #ccc}.msg,tr,.chart{break-inside:avoid}h2,h3{break-after:avoid}\
.cover{break-after:page}.annex{break-before:page}.media img{max-height:12em}}";

const CSP: &str = "default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'";

/// `value` escaped for HTML text. Line breaks (`\r\n`, `\r`) become `\n`; other control
/// characters, which HTML does not allow, become U+FFFD; bidirectional overrides and
/// isolates, which would silently reorder what follows (`abc\u{202E}gpj.exe`), are shown as
/// a visible `[U+202E]`.
pub fn text(value: &str, out: &mut String) {
    // Most texts hold none of what needs care: copied whole. 0xC2 and 0xE2 lead the C1
    // controls and the bidirectional marks (and, harmlessly, other characters).
    let plain = value
        .bytes()
        .all(|b| b >= 0x20 && !matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0x7F | 0xC2 | 0xE2));
    if plain {
        out.push_str(value);
        return;
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\r' => out.push('\n'),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// An `id` for a day (`2025-06-01`), or `none` for messages without a time.
fn day_id(day: &str) -> String {
    if day.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !day.is_empty() {
        format!("d{day}")
    } else {
        "dnone".to_string()
    }
}

/// One path component percent-encoded for a link.
fn encode_component(part: &str, out: &mut String) {
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

/// `value` escaped for a double-quoted attribute.
pub fn attr(value: &str, out: &mut String) {
    text(value, out);
}

/// A bundle path (`data/media/g/1_a.jpg`) as a link from a page `depth` directories below
/// `data/`: every component percent-encoded, so no name can become a scheme or a query.
fn bundle_link(bundle_path: &str, depth: usize, out: &mut String) {
    let inside_data = bundle_path.strip_prefix("data/").unwrap_or(bundle_path);
    for _ in 0..depth {
        out.push_str("../");
    }
    for (i, part) in inside_data.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_component(part, out);
    }
}

/// `value` as a CSS string (for a print header): everything but letters, digits and
/// spaces as a hex escape, so no value can end the string or the stylesheet.
fn css_string(value: &str, out: &mut String) {
    out.push('"');
    for c in value.chars() {
        match c {
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c if c.is_control() => out.push_str("\\FFFD "),
            c if c.is_alphanumeric() || c == ' ' => out.push(c),
            c => {
                let _ = write!(out, "\\{:X} ", u32::from(c));
            }
        }
    }
    out.push('"');
}

/// The page's head, up to `<body>`; `print_header` is printed at the top of every page.
fn page_start(title: &str, print_header: &str, out: &mut String) {
    out.push_str("<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"");
    out.push_str(CSP);
    out.push_str("\">\n<meta name=\"referrer\" content=\"no-referrer\">\n");
    out.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
    );
    text(title, out);
    out.push_str("</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("@page{@top-left{content:");
    css_string(print_header, out);
    out.push_str(";font-size:8pt;color:#555}}</style>\n</head>\n<body>\n");
}

fn page_end(out: &mut String) {
    out.push_str("</body>\n</html>\n");
}

fn page_name(page: usize) -> String {
    format!("{:04}.html", page)
}

/// The conversation being written.
struct Current {
    dir: String,
    group_id: String,
    header_title: String,
    page: Option<PayloadText>,
    page_number: usize,
    on_page: usize,
    messages: u64,
    last_day: String,
    /// (day, page number of its first message, messages that day), in message order.
    days: Vec<(String, usize, u64)>,
    /// The report's roster rows, rendered when the conversation starts.
    roster: String,
    members: u64,
    left: u64,
    /// Messages per sender id: (name as last shown, messages).
    senders: HashMap<String, (String, u64)>,
    media_copied: u64,
    media_not_copied: u64,
}

/// One conversation as the report lists it.
struct Listed {
    dir: String,
    group_id: String,
    pages: usize,
    messages: u64,
    members: u64,
    left: u64,
    media_copied: u64,
    media_not_copied: u64,
}

/// Senders drawn in a conversation's chart.
const TOP_SENDERS: usize = 10;

pub struct HtmlTranscript {
    current: Option<Current>,
    listed: Vec<Listed>,
    /// The report's sections per conversation (charts, roster), spooled as each
    /// conversation ends so that memory does not grow with the number of conversations.
    sections: Option<std::io::BufWriter<std::fs::File>>,
    groups: Vec<report::GroupLine>,
    /// Every file written, with the messages it holds, for evidence.json's counts.
    counts: Vec<(String, u64)>,
    buf: String,
}

fn write_error(name: &str) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Write {
        path: name.to_string(),
        source,
    }
}

impl HtmlTranscript {
    pub fn new() -> HtmlTranscript {
        HtmlTranscript {
            current: None,
            listed: Vec::new(),
            sections: None,
            groups: Vec::new(),
            counts: Vec::new(),
            buf: String::with_capacity(64 * 1024),
        }
    }

    fn write(file: &mut PayloadText, name: &str, buf: &str) -> Result<(), ExportError> {
        file.write_all(buf.as_bytes()).map_err(write_error(name))
    }

    /// Ends the open page (with its previous/next links), if any.
    fn close_page(
        current: &mut Current,
        bag: &mut BagWriter,
        buf: &mut String,
        counts: &mut Vec<(String, u64)>,
        has_next: bool,
    ) -> Result<(), ExportError> {
        let Some(mut file) = current.page.take() else {
            return Ok(());
        };
        buf.clear();
        buf.push_str("</main>\n");
        nav(current.page_number, has_next, buf);
        page_end(buf);
        let name = format!("html/{}/{}", current.dir, page_name(current.page_number));
        Self::write(&mut file, &name, buf)?;
        bag.finish_text(file)?;
        counts.push((name, current.on_page as u64));
        Ok(())
    }

    fn open_page(
        current: &mut Current,
        bag: &mut BagWriter,
        buf: &mut String,
    ) -> Result<(), ExportError> {
        current.page_number += 1;
        current.on_page = 0;
        let name = format!("html/{}/{}", current.dir, page_name(current.page_number));
        let mut file = bag.text_file(&name)?;
        buf.clear();
        page_start(
            &format!("{} · {}", current.header_title, current.page_number),
            &current.header_title,
            buf,
        );
        buf.push_str("<h1>");
        text(&current.header_title, buf);
        let _ = writeln!(buf, " · page {}</h1>", current.page_number);
        nav(current.page_number, true, buf);
        buf.push_str("<main>\n");
        // A day that goes on from the previous page is named again.
        current.last_day.clear();
        Self::write(&mut file, &name, buf)?;
        current.page = Some(file);
        Ok(())
    }

    /// Closes the conversation: its last page, its index of days, and its section of the
    /// report (spooled).
    fn close_group(&mut self, bag: &mut BagWriter) -> Result<(), ExportError> {
        let Some(mut current) = self.current.take() else {
            return Ok(());
        };
        Self::close_page(&mut current, bag, &mut self.buf, &mut self.counts, false)?;
        let name = format!("html/{}/index.html", current.dir);
        let mut file = bag.text_file(&name)?;
        let buf = &mut self.buf;
        buf.clear();
        page_start(&current.header_title, &current.header_title, buf);
        buf.push_str("<nav><a href=\"../index.html\">all conversations</a></nav>\n<h1>");
        text(&current.header_title, buf);
        let _ = writeln!(
            buf,
            "</h1>\n<p>{} messages on {} pages</p>\n<ul>",
            current.messages, current.page_number
        );
        for (day, page, _) in &current.days {
            let _ = write!(buf, "<li><a href=\"{}#{}\">", page_name(*page), day_id(day));
            text(day, buf);
            buf.push_str("</a></li>\n");
        }
        buf.push_str("</ul>\n");
        page_end(buf);
        Self::write(&mut file, &name, buf)?;
        bag.finish_text(file)?;
        self.counts.push((name, 0));

        buf.clear();
        report::group_section(&current, buf);
        let sections = match &mut self.sections {
            Some(sections) => sections,
            None => {
                let spool = tempfile::tempfile().map_err(write_error(report::INDEX))?;
                self.sections.insert(std::io::BufWriter::new(spool))
            }
        };
        sections
            .write_all(buf.as_bytes())
            .map_err(write_error(report::INDEX))?;
        self.listed.push(Listed {
            dir: current.dir,
            group_id: current.group_id,
            pages: current.page_number,
            messages: current.messages,
            members: current.members,
            left: current.left,
            media_copied: current.media_copied,
            media_not_copied: current.media_not_copied,
        });
        Ok(())
    }
}

impl Default for HtmlTranscript {
    fn default() -> Self {
        HtmlTranscript::new()
    }
}

/// Previous / next / the conversation's index.
fn nav(page: usize, has_next: bool, out: &mut String) {
    out.push_str("<nav><a href=\"index.html\">days</a>");
    if page > 1 {
        let _ = write!(out, "<a href=\"{}\">previous</a>", page_name(page - 1));
    }
    if has_next {
        let _ = write!(out, "<a href=\"{}\">next</a>", page_name(page + 1));
    }
    out.push_str("</nav>\n");
}

fn status_reason(status: MediaStatus) -> &'static str {
    match status {
        MediaStatus::Copied => "copied",
        MediaStatus::Missing => "file missing from the source",
        MediaStatus::NotDownloaded => "never downloaded by the app",
        MediaStatus::OutsideRoot => "refused: its path leaves the source directory",
        MediaStatus::Excluded => "not copied (--no-media or anonymized)",
    }
}

fn write_media(files: &[MediaRow], depth: usize, out: &mut String) {
    for file in files {
        if file.kind.is_thumbnail() && files.iter().any(|f| !f.kind.is_thumbnail()) {
            continue;
        }
        out.push_str("<div class=\"media\">");
        if file.status != MediaStatus::Copied {
            let _ = write!(
                out,
                "<span class=\"missing\">[{}: {}]</span>",
                file.kind.as_str(),
                status_reason(file.status)
            );
        } else if matches!(
            file.kind,
            MediaKind::Image | MediaKind::ImageThumb | MediaKind::Emoji
        ) {
            out.push_str("<img loading=\"lazy\" alt=\"image\" src=\"");
            bundle_link(&file.bundle_path, depth, out);
            out.push_str("\">");
        } else {
            out.push_str("<a href=\"");
            bundle_link(&file.bundle_path, depth, out);
            out.push_str("\">");
            let shown = file.bundle_path.rsplit('/').next().unwrap_or_default();
            text(shown, out);
            out.push_str("</a>");
            if let Some(size) = file.size {
                let _ = write!(out, " ({size} bytes)");
            }
        }
        out.push_str("</div>");
    }
}

impl Sink for HtmlTranscript {
    fn begin_group(
        &mut self,
        bag: &mut BagWriter,
        group: &GroupHeader,
        members: &[MemberRow],
    ) -> Result<(), ExportError> {
        self.close_group(bag)?;
        let title = if group.group_name.is_empty() {
            group.group_id.to_string()
        } else {
            group.group_name.to_string()
        };
        let mut roster = String::new();
        report::roster(members, &mut roster);
        self.current = Some(Current {
            dir: group_file_stem(group.group_id),
            group_id: group.group_id.to_string(),
            header_title: title,
            page: None,
            page_number: 0,
            on_page: 0,
            messages: 0,
            last_day: String::new(),
            days: Vec::new(),
            roster,
            members: members.len() as u64,
            left: members.iter().filter(|m| m.left).count() as u64,
            senders: HashMap::new(),
            media_copied: 0,
            media_not_copied: 0,
        });
        Ok(())
    }

    fn message(
        &mut self,
        bag: &mut BagWriter,
        m: &MessageRow,
        media: &[MediaRow],
    ) -> Result<(), ExportError> {
        let Some(current) = self.current.as_mut() else {
            return Ok(());
        };
        if current.page.is_none() || current.on_page >= PAGE_SIZE {
            Self::close_page(current, bag, &mut self.buf, &mut self.counts, true)?;
            Self::open_page(current, bag, &mut self.buf)?;
        }
        let buf = &mut self.buf;
        buf.clear();
        let day = m.time_local.get(..10).unwrap_or("(no time)");
        if day != current.last_day {
            if current.days.last().is_none_or(|(d, _, _)| d != day) {
                current.days.push((day.to_string(), current.page_number, 0));
            }
            let _ = write!(buf, "<div class=\"day\" id=\"{}\">", day_id(day));
            text(day, buf);
            buf.push_str("</div>\n");
            current.last_day = day.to_string();
        }
        if let Some((_, _, n)) = current.days.last_mut() {
            *n += 1;
        }
        if m.direction != Direction::System {
            let name = shown_sender(m);
            match current.senders.get_mut(m.sender_id) {
                Some((shown, n)) => {
                    *n += 1;
                    if shown != name {
                        name.clone_into(shown);
                    }
                }
                None => {
                    current
                        .senders
                        .insert(m.sender_id.to_string(), (name.to_string(), 1));
                }
            }
        }
        for file in media {
            match file.status {
                MediaStatus::Copied => current.media_copied += 1,
                MediaStatus::Excluded => {}
                _ => current.media_not_copied += 1,
            }
        }
        let class = match m.direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
            Direction::System => "system",
        };
        let _ = write!(buf, "<div class=\"msg {class}");
        if m.kind == Kind::Recall {
            buf.push_str(" recall");
        }
        buf.push_str("\" id=\"m");
        attr(m.message_id, buf);
        buf.push_str("\">");
        if m.direction != Direction::System {
            buf.push_str("<span class=\"meta\">");
            text(shown_sender(m), buf);
            buf.push_str(" · ");
            text(m.time_local.get(11..19).unwrap_or(""), buf);
            text(m.time_local.get(23..).unwrap_or(""), buf);
            buf.push_str("</span>");
        }
        // A reply shows what it quotes above its own text.
        if let Some(quote) = m.quote {
            buf.push_str("<div class=\"quoted\">");
            if !quote.sender_name.is_empty() {
                text(&quote.sender_name, buf);
                buf.push_str(": ");
            }
            text(&quote.text, buf);
            buf.push_str("</div>");
        }
        // Red packets, transfers, links, locations and quotes are drawn as small cards.
        match m.kind {
            Kind::RedPacket | Kind::Transfer | Kind::Link | Kind::Location | Kind::Quote => {
                let _ = write!(buf, "<div class=\"bubble card {}\">", m.kind.as_str());
            }
            _ => buf.push_str("<div class=\"bubble\">"),
        }
        text(m.text, buf);
        write_media(media, 2, buf);
        buf.push_str("</div></div>\n");
        if let Some(file) = current.page.as_mut() {
            file.write_all(buf.as_bytes())
                .map_err(|source| ExportError::Write {
                    path: format!("html/{}/{}", current.dir, page_name(current.page_number)),
                    source,
                })?;
        }
        current.on_page += 1;
        current.messages += 1;
        Ok(())
    }

    fn groups(&mut self, bag: &mut BagWriter, groups: &[GroupRow]) -> Result<(), ExportError> {
        self.close_group(bag)?;
        self.groups = groups.iter().map(report::GroupLine::from).collect();
        Ok(())
    }

    fn finish(mut self: Box<Self>, bag: &mut BagWriter) -> Result<Finished, ExportError> {
        self.close_group(bag)?;
        let this = *self;
        let report = report::ReportPage {
            sections: this.sections,
            listed: this.listed,
            groups: this.groups,
        };
        Ok(Finished {
            counts: this.counts,
            report: Some(Box::new(report)),
        })
    }
}

/// A sender as the transcript names them: by name, else by id.
fn shown_sender<'a>(m: &MessageRow<'a>) -> &'a str {
    if m.sender_name.is_empty() {
        m.sender_id
    } else {
        m.sender_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_values_never_become_markup() {
        let mut out = String::new();
        text("<script>alert(1)</script>\"' & \u{0}\u{202E}x", &mut out);
        assert_eq!(
            out,
            "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39; &amp; \u{FFFD}[U+202E]x"
        );
        let mut link = String::new();
        bundle_link("data/media/g/1_javascript:alert(1) x.jpg", 2, &mut link);
        assert_eq!(link, "../../media/g/1_javascript%3Aalert%281%29%20x.jpg");
    }
}
