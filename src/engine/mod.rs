//! The backend-independent streaming engine: how streams are cut into parts
//! on the way up and reassembled, verified and in order, on the way down.
//! Written once for every store; the stores only move single parts and ranges.

pub mod download;
pub mod integrity;
pub mod journal;
pub mod plan;
pub mod sink;
pub mod upload;

pub use download::{Selection, download};
pub use sink::Sink;
pub use upload::{Source, upload};
