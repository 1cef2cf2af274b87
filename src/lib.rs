pub mod pathsafe;
pub mod progress;
pub mod records;
pub mod sink;
pub mod source;
pub mod timefmt;
