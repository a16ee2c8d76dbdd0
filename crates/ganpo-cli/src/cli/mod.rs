//! Command-line arguments and dispatch to one function per subcommand.

mod bench;
mod check_data;
mod demo;
mod eval;
mod generate;
mod inspect;
mod interrupt;
mod merge;
mod output;
mod plot;
mod render;
mod study;
mod train;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Offline preference optimization of language models with latent adversarial regularization.
#[derive(Debug, Parser)]
#[command(name = "ganpo", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's architecture, parameter count, dtype, vocabulary and chat template.
    InspectModel {
        /// A Hugging Face model directory or a GGUF file.
        path: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The built-in benchmark: SFT a tiny model, build preference pairs, train DPO/SimPO with and without GANPO, report.
    Demo(demo::DemoArgs),
    /// Train a policy with a preference loss (and optionally GANPO) from a TOML config.
    Train(train::TrainArgs),
    /// Check a preference dataset as training would use it: errors, drops, cuts, implicit prompts,
    /// blank/identical/duplicate pairs, BOS/EOS problems, lengths and the chosen-longer fraction.
    CheckData(check_data::CheckDataArgs),
    /// Show one preference record as the trainer sees it: rendered text, token ids, loss mask.
    RenderExample(render::RenderArgs),
    /// Generate continuations for a prompt or a JSONL file of prompts.
    Generate(generate::GenerateArgs),
    /// Evaluate a policy against its reference: preference metrics, KL and judge scores per
    /// sampling temperature, latent MMD and a linear probe.
    Eval(eval::EvalArgs),
    /// Merge a PEFT LoRA adapter into its base model: a Hugging Face directory with W + s·B·A.
    Merge(merge::MergeArgs),
    /// Plot a training run's curves (and an eval report's temperature sweep) as PNG files.
    Plot(plot::PlotArgs),
    /// Time training steps of DPO and DPO + GANPO per phase, with achieved GFLOP/s against a
    /// measured matmul peak and peak memory (default: SmolLM2-135M's shape, random weights).
    Bench(bench::BenchArgs),
    /// Real-model studies (`ganpo study sentiment`; see docs/study.md).
    #[command(subcommand)]
    Study(study::StudyCommand),
}

impl Cli {
    /// The compute threads the command asks for (`--threads`), which must be set before any
    /// thread starts; `--threads 0` is an error, for every command that has the flag.
    pub fn threads(&self) -> anyhow::Result<Option<usize>> {
        let threads = match &self.command {
            Command::Bench(args) => args.threads,
            Command::Generate(args) => args.threads,
            _ => None,
        };
        if threads == Some(0) {
            anyhow::bail!("--threads 0: give 1 or more, or leave it out for the physical cores");
        }
        Ok(threads)
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::InspectModel { path, json } => inspect::run(&path, json),
        Command::Eval(args) => eval::run(args),
        Command::Generate(args) => generate::run(args),
        Command::RenderExample(args) => render::run(args),
        Command::CheckData(args) => check_data::run(args),
        Command::Train(args) => train::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Merge(args) => merge::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Study(command) => study::run(command),
    }
}
