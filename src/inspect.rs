//! `chatvault inspect`: what a source holds, per group, without writing anything.

use serde::Serialize;

use crate::pathsafe::{self, Resolved};
use crate::records::MediaLocation;
use crate::source::{self, SourceError};
use crate::timefmt;

#[derive(Debug, Serialize)]
pub struct GroupReport {
    pub id: String,
    pub name: String,
    pub is_group: bool,
    pub members: u64,
    pub messages: u64,
    pub first_message_utc: Option<String>,
    pub last_message_utc: Option<String>,
    pub media_referenced: u64,
    pub media_present: u64,
    pub media_missing: u64,
    pub media_not_downloaded: u64,
    pub media_outside_root: u64,
    /// `dissolved` (with the time of the system message announcing it) or `active`.
    pub state: String,
    pub dissolved_at_utc: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub platform: String,
    pub root: String,
    pub owner_id: Option<String>,
    pub groups: Vec<GroupReport>,
    pub warnings: Vec<String>,
}

pub fn inspect(
    root: &std::path::Path,
    include_private: bool,
) -> Result<InspectReport, SourceError> {
    let source = source::open(root)?;
    let mut groups = Vec::new();
    let listed: Vec<_> = source
        .groups()?
        .into_iter()
        .filter(|g| g.is_group || include_private)
        .collect();
    let ids: Vec<String> = listed.iter().map(|g| g.id.clone()).collect();
    source.prepare_messages(&ids);
    for group in listed {
        let members = source.members(&group.id)?.len() as u64;
        let mut report = GroupReport {
            id: group.id.clone(),
            name: group.name.clone(),
            is_group: group.is_group,
            members,
            messages: 0,
            first_message_utc: None,
            last_message_utc: None,
            media_referenced: 0,
            media_present: 0,
            media_missing: 0,
            media_not_downloaded: 0,
            media_outside_root: 0,
            state: "active".into(),
            dissolved_at_utc: None,
        };
        let (mut first, mut last, mut dissolved) = (None::<i64>, None::<i64>, None::<i64>);
        for message in source.messages(&group.id)? {
            let message = message?;
            report.messages += 1;
            if let Some(t) = message.time_ms {
                first = Some(first.map_or(t, |f| f.min(t)));
                last = Some(last.map_or(t, |l| l.max(t)));
            }
            if message.announces_dissolution() {
                dissolved = message.time_ms.or(dissolved);
            }
            for media in &message.media {
                report.media_referenced += 1;
                match &media.location {
                    MediaLocation::NotDownloaded(_) => report.media_not_downloaded += 1,
                    MediaLocation::Path(p) => match pathsafe::resolve(source.root(), p) {
                        Resolved::Inside { .. } => report.media_present += 1,
                        Resolved::Missing { .. } => report.media_missing += 1,
                        Resolved::Outside => report.media_outside_root += 1,
                    },
                }
            }
        }
        report.first_message_utc = first.map(timefmt::utc_millis);
        report.last_message_utc = last.map(timefmt::utc_millis);
        if let Some(t) = dissolved {
            report.state = "dissolved".into();
            report.dissolved_at_utc = Some(timefmt::utc_millis(t));
        }
        groups.push(report);
    }
    Ok(InspectReport {
        platform: source.platform().to_string(),
        root: root.display().to_string(),
        owner_id: source.owner_id().map(str::to_string),
        groups,
        warnings: source.warnings().iter().map(|w| w.to_string()).collect(),
    })
}

impl InspectReport {
    /// A table for people.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{} account at {} (owner {})\n",
            self.platform,
            self.root,
            self.owner_id.as_deref().unwrap_or("unknown")
        );
        out.push_str(&format!(
            "{:<28} {:<20} {:>7} {:>9} {:<24} {:<24} {:>22} {}\n",
            "GROUP",
            "NAME",
            "MEMBERS",
            "MESSAGES",
            "FIRST (UTC)",
            "LAST (UTC)",
            "MEDIA REF/PRESENT/MISS",
            "STATE"
        ));
        for g in &self.groups {
            let name: String = g
                .name
                .chars()
                .filter(|c| !c.is_control())
                .take(18)
                .collect();
            let state = match &g.dissolved_at_utc {
                Some(t) => format!("dissolved {t}"),
                None => g.state.clone(),
            };
            out.push_str(&format!(
                "{:<28} {:<20} {:>7} {:>9} {:<24} {:<24} {:>22} {}\n",
                g.id,
                name,
                g.members,
                g.messages,
                g.first_message_utc.as_deref().unwrap_or("-"),
                g.last_message_utc.as_deref().unwrap_or("-"),
                format!(
                    "{}/{}/{}",
                    g.media_referenced, g.media_present, g.media_missing
                ),
                state
            ));
        }
        for w in &self.warnings {
            out.push_str(&format!("warning: {w}\n"));
        }
        out
    }
}
