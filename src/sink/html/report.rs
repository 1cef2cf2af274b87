//! `data/html/index.html`: the export's report, and the way into the transcript.
//!
//! A cover (tool, case, times, platform, owner, command line, filters, every source
//! database's SHA-256 before and after, a table of the conversations), then every warning,
//! a section per conversation (messages per day and top senders as inline SVG, the roster
//! with roles and who left), and a hash annex: the SHA-256 of every payload file but this
//! page, and of every source media file before and after. It is written last, when all of
//! that is known; the sections per conversation were spooled to a temporary file as each
//! conversation ended, and the page is streamed out in pieces, so memory stays flat.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, Write};

use super::{
    attr, chart, encode_component, page_end, page_start, text, write_error, Current, Listed,
    TOP_SENDERS,
};
use crate::evidence::{BagWriter, PayloadText};
use crate::export::ExportError;
use crate::sink::{GroupRow, MemberRow, Report, ReportFacts};

/// The report's path in `data/`.
pub const INDEX: &str = "html/index.html";

/// Written out whenever the page's buffer grows past this.
const FLUSH_AT: usize = 256 * 1024;

/// A conversation's line in the report's table, from `groups.csv`'s row.
pub struct GroupLine {
    group_id: String,
    group_name: String,
    owner_id: String,
    first_message_utc: String,
    last_message_utc: String,
}

impl From<&GroupRow<'_>> for GroupLine {
    fn from(g: &GroupRow<'_>) -> GroupLine {
        GroupLine {
            group_id: g.group_id.to_string(),
            group_name: g.group_name.to_string(),
            owner_id: g.owner_id.to_string(),
            first_message_utc: g.first_message_utc.clone(),
            last_message_utc: g.last_message_utc.clone(),
        }
    }
}

/// The roster's rows for one conversation.
pub(super) fn roster(members: &[MemberRow], out: &mut String) {
    for m in members {
        out.push_str("<tr><td>");
        text(m.display_name, out);
        out.push_str("</td><td><code>");
        text(m.member_id, out);
        out.push_str("</code></td><td>");
        text(m.group_nickname, out);
        out.push_str("</td><td>");
        text(m.role, out);
        out.push_str("</td><td>");
        text(m.joined_at_utc, out);
        out.push_str("</td><td>");
        out.push_str(if m.left { "left" } else { "" });
        out.push_str("</td></tr>\n");
    }
}

/// A conversation's section: figures, charts and roster.
pub(super) fn group_section(c: &Current, out: &mut String) {
    out.push_str("<section class=\"group\" id=\"g-");
    attr(&c.dir, out);
    out.push_str("\">\n<h3>");
    text(&c.header_title, out);
    out.push_str("</h3>\n<p class=\"note\">id <code>");
    text(&c.group_id, out);
    let _ = write!(
        out,
        "</code> · {} members ({} left) · {} messages",
        c.members, c.left, c.messages
    );
    if c.page_number > 0 {
        out.push_str(" · <a href=\"");
        encode_component(&c.dir, out);
        out.push_str("/index.html\">transcript</a>");
    }
    out.push_str("</p>\n<h4>Messages per day</h4>\n");
    let days: Vec<(String, u64)> = c.days.iter().map(|(d, _, n)| (d.clone(), *n)).collect();
    chart::messages_per_day(&days, out);
    let mut senders: Vec<(String, u64)> = c.senders.values().cloned().collect();
    senders.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    senders.truncate(TOP_SENDERS);
    out.push_str("<h4>Top senders</h4>\n");
    chart::top_senders(&senders, out);
    out.push_str("<h4>Members</h4>\n<table>\n<tr><th>name</th><th>id</th><th>group nickname</th><th>role</th><th>joined (UTC)</th><th>left</th></tr>\n");
    out.push_str(&c.roster);
    out.push_str("</table>\n</section>\n");
}

/// The report still to write when the transcript's pages are done.
pub(super) struct ReportPage {
    pub(super) sections: Option<std::io::BufWriter<std::fs::File>>,
    pub(super) listed: Vec<Listed>,
    pub(super) groups: Vec<GroupLine>,
}

/// The page being written, flushed to the bag in pieces.
struct Page {
    file: PayloadText,
    buf: String,
}

impl Page {
    fn flush_if_full(&mut self) -> Result<(), ExportError> {
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        self.file
            .write_all(self.buf.as_bytes())
            .map_err(write_error(INDEX))?;
        self.buf.clear();
        Ok(())
    }
}

fn fact(label: &str, value: &str, out: &mut String) {
    out.push_str("<tr><th>");
    out.push_str(label);
    out.push_str("</th><td>");
    text(value, out);
    out.push_str("</td></tr>\n");
}

fn times(t: chrono::DateTime<chrono::Utc>, tz: chrono::FixedOffset) -> String {
    format!(
        "{} (UTC) · {}",
        crate::timefmt::utc_seconds(t),
        t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %:z")
    )
}

/// evidence.json's filters as `name: value` lines.
fn filters(value: &serde_json::Value) -> String {
    let Some(map) = value.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::Null => "(none)".to_string(),
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) if a.is_empty() => "(all)".to_string(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            format!("{k}: {shown}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn cover(facts: &ReportFacts, this: &ReportPage, out: &mut String) -> std::io::Result<()> {
    out.push_str("<div class=\"cover\">\n<h1>Export report</h1>\n<table class=\"facts\">\n");
    fact("Tool", &format!("chatvault {}", facts.tool_version), out);
    fact("Case", facts.case_id.unwrap_or("(not given)"), out);
    fact("Examiner", facts.examiner.unwrap_or("(not given)"), out);
    fact("Export started", &times(facts.started, facts.tz), out);
    fact("Export finished", &times(facts.finished, facts.tz), out);
    fact("Source platform", facts.platform, out);
    fact(
        "Owner account",
        if facts.owner_id.is_empty() {
            "(the source does not say)"
        } else {
            facts.owner_id
        },
        out,
    );
    match facts.key_fingerprint {
        Some(fingerprint) => fact(
            "Anonymized",
            &format!("yes: members are pseudonyms, PII replaced (key fingerprint {fingerprint})"),
            out,
        ),
        None => fact("Anonymized", "no", out),
    }
    out.push_str("<tr><th>Command line</th><td><code>");
    text(&facts.command_line.join(" "), out);
    out.push_str("</code></td></tr>\n");
    fact("Filters", &filters(facts.filters), out);
    out.push_str("</table>\n");

    out.push_str("<h2>Source files</h2>\n<p class=\"note\">Each file was hashed before it was read and again afterwards; an export whose sources changed in between is refused.</p>\n<table>\n<tr><th>file</th><th>bytes</th><th>SHA-256 before</th><th>SHA-256 after</th></tr>\n");
    for source in facts.sources.iter() {
        let source = source?;
        if source.is_media {
            continue;
        }
        out.push_str("<tr><td>");
        text(source.path.as_deref().unwrap_or(""), out);
        let _ = write!(out, "</td><td>{}</td><td class=\"hash\">", source.size);
        text(&source.sha256_before, out);
        out.push_str("</td><td class=\"hash\">");
        text(&source.sha256_after, out);
        out.push_str("</td></tr>\n");
    }
    out.push_str("</table>\n");
    let media_sources = facts.sources.media_files();
    let m = facts.media;
    let _ = writeln!(
        out,
        "<p>Media: {} copied ({} bytes), {} missing, {} never downloaded, {} refused (outside the source), {} not copied by choice. The {media_sources} source media files read are hashed in the annex.</p>",
        m.copied, m.copied_bytes, m.missing, m.not_downloaded, m.outside_root, m.excluded
    );

    out.push_str("<h2>Conversations</h2>\n<table>\n<tr><th>conversation</th><th>id</th><th>owner</th><th>members (left)</th><th>messages</th><th>first (UTC)</th><th>last (UTC)</th><th>media copied</th><th>not copied</th></tr>\n");
    let listed: HashMap<&str, &Listed> = this
        .listed
        .iter()
        .map(|l| (l.group_id.as_str(), l))
        .collect();
    for g in &this.groups {
        let line = listed.get(g.group_id.as_str());
        out.push_str("<tr><td>");
        let title = if g.group_name.is_empty() {
            &g.group_id
        } else {
            &g.group_name
        };
        match line {
            Some(l) if l.pages > 0 => {
                out.push_str("<a href=\"");
                encode_component(&l.dir, out);
                out.push_str("/index.html\">");
                text(title, out);
                out.push_str("</a>");
            }
            _ => text(title, out),
        }
        out.push_str("</td><td><code>");
        text(&g.group_id, out);
        out.push_str("</code></td><td><code>");
        text(&g.owner_id, out);
        out.push_str("</code></td>");
        match line {
            Some(l) => {
                let _ = write!(
                    out,
                    "<td>{} ({})</td><td>{}</td>",
                    l.members, l.left, l.messages
                );
            }
            None => out.push_str("<td></td><td>0</td>"),
        }
        out.push_str("<td>");
        text(&g.first_message_utc, out);
        out.push_str("</td><td>");
        text(&g.last_message_utc, out);
        let (copied, not_copied) = line.map_or((0, 0), |l| (l.media_copied, l.media_not_copied));
        let _ = writeln!(out, "</td><td>{copied}</td><td>{not_copied}</td></tr>");
    }
    out.push_str("</table>\n");
    if let Some(list) = facts.checklist {
        checklist(list, out);
    }
    out.push_str("</div>\n");
    Ok(())
}

/// The readiness check made before the export (`export --checklist`), as `check` said it.
fn checklist(list: &crate::check::CheckReport, out: &mut String) {
    out.push_str("<h2>Readiness check</h2>\n<p class=\"note\">chatvault check at ");
    text(&list.now_utc, out);
    if let Some(at) = &list.dissolve_at_utc {
        out.push_str(", dissolution planned at ");
        text(at, out);
    }
    out.push_str(" (data/check.json).</p>\n");
    for g in &list.groups {
        out.push_str("<h3>");
        text(&g.group_name, out);
        out.push_str(" <code>");
        text(&g.group_id, out);
        let _ = writeln!(out, "</code>: {}</h3>", g.status().as_str());
        out.push_str(
            "<table>\n<tr><th>rule</th><th>status</th><th>finding</th><th>to do</th></tr>\n",
        );
        for f in &g.findings {
            out.push_str("<tr><td>");
            text(&f.rule, out);
            let _ = write!(out, "</td><td>{}</td><td>", f.status.as_str());
            text(&f.summary, out);
            out.push_str("</td><td>");
            text(&f.todo, out);
            out.push_str("</td></tr>\n");
        }
        out.push_str("</table>\n");
    }
}

impl Report for ReportPage {
    fn write(
        self: Box<Self>,
        bag: &mut BagWriter,
        facts: &ReportFacts,
    ) -> Result<Vec<(String, u64)>, ExportError> {
        let this = *self;
        let mut page = Page {
            file: bag.text_file(INDEX)?,
            buf: String::with_capacity(FLUSH_AT + 64 * 1024),
        };
        let header = match facts.case_id {
            Some(case) => format!("chatvault report · case {case}"),
            None => "chatvault report".to_string(),
        };
        page_start("chatvault report", &header, &mut page.buf);
        cover(facts, &this, &mut page.buf).map_err(write_error(INDEX))?;

        let buf = &mut page.buf;
        let _ = writeln!(buf, "<h2>Warnings ({})</h2>", facts.warnings_total);
        if facts.warnings.is_empty() {
            buf.push_str("<p>None.</p>\n");
        } else {
            buf.push_str("<ol>\n");
        }
        for w in facts.warnings {
            page.buf.push_str("<li>");
            text(&w.location, &mut page.buf);
            page.buf.push_str(": ");
            text(&w.message, &mut page.buf);
            page.buf.push_str("</li>\n");
            page.flush_if_full()?;
        }
        if !facts.warnings.is_empty() {
            page.buf.push_str("</ol>\n");
        }
        let unlisted = facts.warnings_total - facts.warnings.len() as u64;
        if unlisted > 0 {
            let _ = writeln!(
                page.buf,
                "<p>{unlisted} more are counted in evidence.json's warnings_total.</p>"
            );
        }

        page.buf.push_str("<h2>Conversations in detail</h2>\n");
        page.flush()?;
        if let Some(sections) = this.sections {
            let mut spool = sections
                .into_inner()
                .map_err(|e| write_error(INDEX)(e.into_error()))?;
            spool.rewind().map_err(write_error(INDEX))?;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = spool.read(&mut chunk).map_err(write_error(INDEX))?;
                if n == 0 {
                    break;
                }
                page.file
                    .write_all(&chunk[..n])
                    .map_err(write_error(INDEX))?;
            }
        }

        page.buf.push_str("<section class=\"annex\">\n<h2>Hash annex</h2>\n<p class=\"note\">The SHA-256 of every file in the bundle's payload except this page (which manifest-sha256.txt covers), as the manifest lists them.</p>\n<table>\n<tr><th>file</th><th>bytes</th><th>SHA-256</th></tr>\n");
        for digest in bag.payload()? {
            let digest = digest?;
            page.buf.push_str("<tr><td>");
            text(&digest.rel, &mut page.buf);
            let _ = write!(page.buf, "</td><td>{}</td><td class=\"hash\">", digest.size);
            text(&digest.sha256, &mut page.buf);
            page.buf.push_str("</td></tr>\n");
            page.flush_if_full()?;
        }
        page.buf.push_str("</table>\n<h3>Source media files</h3>\n<table>\n<tr><th>file</th><th>bytes</th><th>SHA-256 before</th><th>SHA-256 after</th></tr>\n");
        for source in facts.sources.iter() {
            let source = source.map_err(write_error(INDEX))?;
            if !source.is_media {
                continue;
            }
            page.buf.push_str("<tr><td>");
            match (&source.path, &source.media_sha256) {
                (Some(path), _) => text(path, &mut page.buf),
                (None, _) => page.buf.push_str("(named by its hash)"),
            }
            let _ = write!(page.buf, "</td><td>{}</td><td class=\"hash\">", source.size);
            text(&source.sha256_before, &mut page.buf);
            page.buf.push_str("</td><td class=\"hash\">");
            text(&source.sha256_after, &mut page.buf);
            page.buf.push_str("</td></tr>\n");
            page.flush_if_full()?;
        }
        page.buf.push_str("</table>\n</section>\n");
        page_end(&mut page.buf);
        page.flush()?;
        bag.finish_text(page.file)?;
        Ok(vec![(INDEX.to_string(), 0)])
    }
}
