//! `chatvault demo`: a small simulated WeChat account, exported, with what to try next.

use std::path::{Path, PathBuf};

use crate::export::{self, ExportOptions, ExportSummary};
use crate::platform::Platform;
use crate::simulate::{self, SimOptions, SimReport};
use crate::sink::Format;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{0} exists and is not empty: give `chatvault demo --out` a new directory")]
    OutputNotEmpty(PathBuf),
    #[error(transparent)]
    Simulate(#[from] simulate::SimError),
    #[error(transparent)]
    Export(#[from] export::ExportError),
}

impl DemoError {
    /// The command's exit code for this error ([`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            DemoError::OutputNotEmpty(_) => crate::exit::OUTPUT,
            DemoError::Simulate(e) => e.exit_code(),
            DemoError::Export(e) => e.exit_code(),
        }
    }
}

pub struct DemoReport {
    pub source: SimReport,
    pub export: ExportSummary,
    pub out: PathBuf,
}

pub fn run(out: &Path) -> Result<DemoReport, DemoError> {
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(DemoError::OutputNotEmpty(out.to_path_buf()));
    }
    let source_dir = out.join("wechat-account");
    let mut sim = SimOptions::new(source_dir.clone());
    sim.groups = 4;
    sim.members = 25;
    sim.messages = 3000;
    sim.days = 20;
    let source = crate::platform::wechat::WECHAT.simulate(&sim)?;
    let mut options = ExportOptions::new(source_dir, out.join("export"));
    options.command_line = vec!["chatvault".into(), "demo".into()];
    options.progress = true;
    options.formats = vec![Format::Csv, Format::Html];
    options.case_id = Some("DEMO-1".into());
    let export = export::export(&options)?;
    Ok(DemoReport {
        source,
        export,
        out: out.to_path_buf(),
    })
}

impl DemoReport {
    pub fn render(&self) -> String {
        let src = self.source.root.display();
        let bundle = self.export.bundle.path.display();
        format!(
            "Open the report and transcript in a browser:\n  {bundle}/data/html/index.html\n\n\
             Simulated a WeChat account: {groups} groups, {messages} group messages, {media} media files\n  {src}\n\
             Exported it to an evidence bundle:\n  {bundle}\n  bag digest {digest}\n\
             \nTry next:\n\
             \x20 chatvault inspect {src}\n\
             \x20 chatvault verify {bundle}            # every hash, Payload-Oxum, manifests\n\
             \x20 (cd {bundle} && sha256sum -c manifest-sha256.txt)\n\
             \x20 chatvault export {src} --out {out}/export-zipped --zip\n\
             \x20 open {bundle}/data/messages.csv in a spreadsheet\n",
            groups = self.source.groups,
            messages = self.source.messages,
            media = self.source.media_files,
            digest = self.export.bundle.bag_digest,
            out = self.out.display(),
        )
    }
}
