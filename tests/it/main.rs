//! The integration tests, one binary (`cargo test --test it`): the compiled
//! plugin run exactly as gpbackup, gpbackup_helper and gprestore run it,
//! against real server processes. One module per area; `support` starts
//! the servers and runs the plugin. Run one area with its module path, e.g.
//! `cargo test --release --test it gpbackup_e2e::`.

mod support;

mod bad_input;
mod catalog;
mod cold_storage;
mod compat;
mod conformance;
mod encryption;
mod faults;
mod glacier_integrity;
mod glacier_vault;
mod gpbackup_e2e;
mod hardening_data;
mod hardening_input;
mod integrity;
mod object_lock;
mod object_lock_cold;
mod password_encryption;
mod protocol;
mod s3_options;
mod unsupported;
