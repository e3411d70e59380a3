//! `fanfare`: see the crate docs of the library (`lib.rs`) for the layout.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options: a background thread and short decay times give memory
/// back to the system after a mass disconnect (`shared/reference/crates.md`).
#[allow(unsafe_code, non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:2000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    match fanfare::cli::Cli::parse().run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fanfare: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
