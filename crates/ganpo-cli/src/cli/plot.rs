//! `ganpo plot`: PNG charts of a training run's curves and, with an evaluation report, of its
//! temperature sweep; prints the paths written.

use std::path::PathBuf;

use anyhow::bail;

use crate::plot::{EVAL_REPORT_FILE, plot_run};

/// Arguments of `ganpo plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A `ganpo train` output directory (holding `metrics.jsonl`).
    run_dir: PathBuf,
    /// Where to write the PNGs [default: RUN_DIR/plots].
    #[arg(long)]
    output: Option<PathBuf>,
    /// A `ganpo eval --output` report to plot against temperature [default: RUN_DIR/eval.json
    /// when present].
    #[arg(long)]
    eval: Option<PathBuf>,
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.run_dir.join("plots"));
    let written = plot_run(&args.run_dir, &out, args.eval.as_deref())?;
    if written.is_empty() {
        bail!(
            "nothing to plot: {} has no logged step yet and there is no {EVAL_REPORT_FILE}",
            args.run_dir.join("metrics.jsonl").display()
        );
    }
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}
