//! Placeholder until the dingtalk importer lands: never detected.

use std::path::Path;

use crate::records::Platform;
use crate::source::{Source, SourceError};

pub fn probe(_root: &Path) -> Result<bool, SourceError> {
    Ok(false)
}

pub fn open(root: &Path) -> Result<Box<dyn Source>, SourceError> {
    Err(SourceError::Unrecognized {
        path: root.to_path_buf(),
        detail: format!("{} sources are not supported yet", Platform::Dingtalk),
    })
}
