//! The `gpbackup_s3_plugin` executable: everything is in the library;
//! see `lib.rs` for the layers.

fn main() -> std::process::ExitCode {
    gpbackup_s3_plugin::main_with_args(std::env::args_os().collect())
}
