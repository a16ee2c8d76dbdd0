//! `ganpo train --config FILE [--set k=v ...] [--resume DIR]`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use ganpo::config::train::TrainConfig;
use ganpo::data::{diagnose, read_records};
use ganpo::train::checkpoint_dir::{remove_previous_run, remove_stale_temporaries};
use ganpo::train::position_limits::position_limits;
use ganpo::train::run::RunOutcome;
use ganpo::train::run_lock::RunLock;
use ganpo::train::setup::{RunSetup, check_output_dir};
use ganpo::train::trainer::Trainer;
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `ganpo train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The run configuration (TOML; see examples/ and the README's config reference).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value, e.g. `--set training.learning_rate=5e-7` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue from a checkpoint directory (`OUTPUT_DIR/checkpoint-N`).
    #[arg(long)]
    resume: Option<PathBuf>,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let config = TrainConfig::load(&args.config, &args.overrides)?;
    config.check_paths_exist()?;
    check_output_dir(&config, args.resume.is_some())?;
    // Held until the run ends: a second run on this directory stops here, naming this one's PID.
    let _lock = RunLock::acquire(&config.training.output_dir)?;
    if config.training.overwrite_output_dir && args.resume.is_none() {
        let removed = remove_previous_run(&config.training.output_dir)?;
        if removed > 0 {
            eprintln!(
                "overwrite_output_dir: removed {removed} checkpoint/final director{} of the earlier run",
                if removed == 1 { "y" } else { "ies" }
            );
        }
    }
    let stale = remove_stale_temporaries(&config.training.output_dir)?;
    if stale > 0 {
        eprintln!(
            "removed {stale} incomplete temporary director{} left by an interrupted run",
            if stale == 1 { "y" } else { "ies" }
        );
    }
    let trainer = match &args.resume {
        None => Trainer::new(config.clone())?,
        Some(dir) => Trainer::resume(config.clone(), dir)
            .with_context(|| format!("resuming from {}", dir.display()))?,
    };
    // The dataset doctor's report (as `ganpo check-data` prints it), then the data as trained on.
    let records = read_records(&config.data.train_file)?;
    let report = diagnose(
        &config.data.train_file.display().to_string(),
        records,
        &trainer.tokenizer,
        &config.data.data_config(),
        &position_limits(&trainer),
    );
    eprint!("{report}");
    let setup = RunSetup::around(trainer)?;
    let total = setup.total_steps;
    if config.training.warmup_steps >= total {
        eprintln!(
            "warning: training.warmup_steps = {} ≥ the run's {total} steps: the learning rate never reaches training.learning_rate",
            config.training.warmup_steps
        );
    }
    let mut log = setup.open_log(args.resume.is_some())?;
    let RunSetup {
        mut trainer,
        train,
        eval,
        ..
    } = setup;
    let t = &config.training;
    let stop = super::interrupt::stop_flag("finishing this step and writing a checkpoint")?;
    let tty = std::io::stderr().is_terminal();
    let bar = ProgressBar::new(total);
    if tty {
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} steps, eta {eta} {msg}",
            )
            .expect("valid template"),
        );
        bar.set_position(trainer.step);
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let started = std::time::Instant::now();
    let start_step = trainer.step;
    let logging = t.logging_steps.max(1);
    let mut tokens = 0.0;
    let outcome = trainer.run(&train, eval.as_ref(), &mut log, stop, |step, total, m| {
        let loss = m.get("loss").copied().unwrap_or(f64::NAN);
        tokens += m.get("num_tokens").copied().unwrap_or(0.0);
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let (rate, tok_rate) = ((step - start_step) as f64 / secs, tokens / secs);
        if tty {
            bar.set_position(step);
            bar.set_message(format!(
                "loss {loss:.4}, {rate:.2} steps/s, {tok_rate:.0} tokens/s"
            ));
        } else if step.is_multiple_of(logging) || step == total {
            eprintln!(
                "step {step}/{total}  loss {loss:.4}  {rate:.2} steps/s  {tok_rate:.0} tokens/s"
            );
        }
    })?;
    bar.finish_and_clear();
    match outcome {
        RunOutcome::Finished {
            checkpoint,
            final_model,
        } => {
            eprintln!(
                "done: final model in {}, last checkpoint {}",
                final_model.display(),
                checkpoint.display()
            );
        }
        RunOutcome::Interrupted { checkpoint } => {
            eprintln!("interrupted: resume with --resume {}", checkpoint.display());
        }
    }
    Ok(())
}
