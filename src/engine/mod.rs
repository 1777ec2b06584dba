//! The backend-independent streaming engine and the policies every backend
//! shares: how streams are cut into parts on the way up and reassembled,
//! verified and in order, on the way down ([`upload`], [`download`]); the
//! integrity records that prove the bytes ([`integrity`]); the host-local
//! journal of open uploads ([`journal`]); deleting a prefix under retention
//! locks ([`delete`]); bringing archived objects back ([`thaw`]); and the
//! seam for a transform of the stored bytes ([`transform`]) and its one
//! transform, client-side encryption ([`crypt`]); and the catalog of the
//! backups a folder holds, built from the bucket alone ([`catalog`]:
//! listing, completeness, verification, retention, gpbackup's history
//! database). Written once; the stores only move single parts and ranges.

pub mod catalog;
pub mod crypt;
pub mod delete;
pub mod download;
pub mod integrity;
pub mod journal;
pub mod plan;
pub mod sink;
pub mod thaw;
pub mod transform;
pub mod upload;

pub use download::{Output, Selection, download};
pub use transform::{Identity, Transform};
pub use upload::{Source, upload};
