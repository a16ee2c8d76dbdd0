//! The `ganpo` command: a thin shell over the library (parse → run → exit code).

use std::process::ExitCode;

use clap::Parser;
use ganpo_cli::cli;

/// mimalloc, told by [`ganpo::cpu::init_compute_threads`] to keep freed memory for reuse: a training
/// step reallocates gigabytes of activations, and the kernel re-zeroing returned pages cost ~10 % of
/// a step with glibc's malloc (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Corrupt Parquet files make the decoder panic; that is reported as an error naming the file.
    ganpo::decoder_guard::install_quiet_hook();
    let run = args
        .threads()
        .and_then(|threads| {
            // SAFETY: nothing has started a thread yet; this is the first thing main does after
            // parsing.
            Ok(unsafe { ganpo::cpu::configure_compute_pools(threads) }?)
        })
        .and_then(|()| {
            ganpo::cpu::init_compute_threads();
            cli::run(args)
        });
    match run {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", message(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes joined by `: `, skipping a cause whose text the message already ends
/// with (library errors such as `Error::Io` print their source themselves).
fn message(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
