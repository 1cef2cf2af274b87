//! Sinks: what the export writes into the bundle's `data/`.

pub mod csv;
pub mod media;
