//! The one TOML run-config builder of the tests: the tiny llama fixture trained on the training
//! fixture (`max_length = 64`, `max_prompt_length = 32`), writing to a given `output_dir`; each test
//! adds the lines and tables it is about.

use std::path::Path;

use ganpo::config::train::TrainConfig;

use super::fixture;

/// A run config under construction (see the module docs for what it starts from).
#[derive(Debug, Clone)]
pub struct ConfigText {
    model: String,
    train_file: String,
    data: String,
    training: String,
    tables: String,
    output_dir: String,
}

impl ConfigText {
    /// The base config writing to `out`.
    pub fn new(out: &Path) -> Self {
        ConfigText {
            model: fixture("models/llama").display().to_string(),
            train_file: fixture("train/train.jsonl").display().to_string(),
            data: String::new(),
            training: String::new(),
            tables: String::new(),
            output_dir: out.display().to_string(),
        }
    }

    /// Trains on `path` instead of the training fixture.
    pub fn train_file(mut self, path: &Path) -> Self {
        self.train_file = path.display().to_string();
        self
    }

    /// Adds `key = value` lines to `[data]`.
    pub fn data(mut self, lines: &str) -> Self {
        self.data.push_str(lines.trim());
        self.data.push('\n');
        self
    }

    /// Adds `key = value` lines to `[training]`; they may be followed by whole tables, since only
    /// [`ConfigText::tables`] comes after `[training]`.
    pub fn training(mut self, lines: &str) -> Self {
        self.training.push_str(lines.trim());
        self.training.push('\n');
        self
    }

    /// Adds whole tables (`[loss.objective]`, `[optimizer]`, `[ganpo]`, ...) after `[training]`.
    pub fn tables(mut self, toml: &str) -> Self {
        self.tables.push_str(toml.trim());
        self.tables.push('\n');
        self
    }

    /// The TOML text.
    pub fn text(&self) -> String {
        format!(
            "[model]\npath = {:?}\n[data]\ntrain_file = {:?}\nmax_length = 64\nmax_prompt_length = 32\n{}\
             [training]\noutput_dir = {:?}\n{}{}",
            self.model, self.train_file, self.data, self.output_dir, self.training, self.tables
        )
    }

    /// The config, with `--set` style `overrides`; the error names the problem.
    pub fn parse(&self, overrides: &[&str]) -> ganpo::Result<TrainConfig> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        TrainConfig::from_toml(&self.text(), &overrides, "test config")
    }

    /// The config (panics on an invalid one: the tests' own configs are valid).
    pub fn build(&self) -> TrainConfig {
        self.parse(&[])
            .unwrap_or_else(|e| panic!("test config: {e}\n{}", self.text()))
    }
}
