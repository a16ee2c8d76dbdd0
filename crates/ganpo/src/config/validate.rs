//! Checking every value of a deserialized [`TrainConfig`] once, before any work starts. Each
//! failure names its key (`training.learning_rate`), shows the value and says what to do; the
//! loader adds where the value came from (the file or a `--set`).

use super::train::{Compat, Pooling, TrainConfig};
use crate::optim::AdamWConfig;

/// One invalid value: its dotted key (or the section whose own check failed) and the message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Invalid {
    /// `training.learning_rate`, or a section (`loss`, `ganpo.discriminator`) for nested checks.
    pub key: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Invalid {
    fn new(key: &str, message: String) -> Self {
        Invalid {
            key: key.to_string(),
            message,
        }
    }

    /// Wraps a section check's own error (its message already names the key).
    fn section(key: &str, error: crate::Error) -> Self {
        let message = match error {
            crate::Error::Config(m) => m,
            other => other.to_string(),
        };
        Invalid::new(key, message)
    }
}

type Check = std::result::Result<(), Invalid>;

/// `key = value` must be finite and ≥ 0 (`positive` = strictly > 0).
fn non_negative(key: &str, value: f64, positive: bool, hint: &str) -> Check {
    let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
    if ok {
        return Ok(());
    }
    let want = if positive {
        "a positive finite number"
    } else {
        "a finite number ≥ 0"
    };
    Err(Invalid::new(
        key,
        format!("{key} = {value} must be {want}; {hint}"),
    ))
}

/// `key = value` must be in [0, 1).
fn unit_interval(key: &str, value: f64, hint: &str) -> Check {
    if (0.0..1.0).contains(&value) {
        return Ok(());
    }
    Err(Invalid::new(
        key,
        format!("{key} = {value} must be in [0, 1); {hint}"),
    ))
}

/// The AdamW values of `[optimizer]` (`prefix` = `optimizer`).
pub(crate) fn check_adamw(prefix: &str, c: &AdamWConfig) -> Check {
    let key = |name: &str| format!("{prefix}.{name}");
    unit_interval(
        &key("adam_beta1"),
        c.adam_beta1,
        "the usual value is 0.9 (1 never forgets the first step and the update turns into NaN)",
    )?;
    unit_interval(&key("adam_beta2"), c.adam_beta2, "the usual value is 0.999")?;
    non_negative(
        &key("adam_epsilon"),
        c.adam_epsilon,
        true,
        "the usual value is 1e-8",
    )?;
    non_negative(
        &key("weight_decay"),
        c.weight_decay,
        false,
        "0 turns weight decay off; negative decay would grow the weights",
    )
}

impl TrainConfig {
    /// Every check of [`TrainConfig::validate`], with the failing key kept apart from the message.
    pub(crate) fn check(&self) -> Check {
        let t = &self.training;
        let optional_paths = [
            ("model.reference", self.model.reference.as_deref()),
            ("data.eval_file", self.data.eval_file.as_deref()),
            (
                "ganpo.init_from",
                self.ganpo.as_ref().and_then(|g| g.init_from.as_deref()),
            ),
        ];
        for (key, path) in optional_paths {
            if path.is_some_and(|p| p.as_os_str().is_empty()) {
                return Err(Invalid::new(
                    key,
                    format!("{key} is empty; name a path, or leave the key out"),
                ));
            }
        }
        if self.model.path.as_os_str().is_empty() {
            return Err(Invalid::new(
                "model.path",
                "model.path is empty: set it to a Hugging Face model directory or a GGUF file"
                    .into(),
            ));
        }
        if self.data.train_file.as_os_str().is_empty() {
            return Err(Invalid::new(
                "data.train_file",
                "data.train_file is required: set it to a JSONL or Parquet preference file".into(),
            ));
        }
        self.data
            .data_config()
            .validate()
            .map_err(|e| Invalid::section("data", e))?;
        self.loss
            .resolve()
            .map_err(|e| Invalid::section("loss", e))?;
        if t.output_dir.as_os_str().is_empty() {
            return Err(Invalid::new(
                "training.output_dir",
                "training.output_dir is empty; name the directory for checkpoints and the final model (e.g. \"runs/dpo\")".into(),
            ));
        }
        for (name, value) in [
            ("per_device_train_batch_size", t.per_device_train_batch_size),
            ("gradient_accumulation_steps", t.gradient_accumulation_steps),
        ] {
            if value == 0 {
                let key = format!("training.{name}");
                return Err(Invalid::new(
                    &key,
                    format!("{key} = 0; set it to 1 or more"),
                ));
            }
        }
        if t.per_device_train_batch_size
            .checked_mul(t.gradient_accumulation_steps)
            .is_none_or(|pairs| pairs > 1 << 40)
        {
            return Err(Invalid::new(
                "training.per_device_train_batch_size",
                format!(
                    "training.per_device_train_batch_size ({}) × training.gradient_accumulation_steps ({}) pairs per optimizer step is beyond any machine (or overflows); use realistic batch sizes",
                    t.per_device_train_batch_size, t.gradient_accumulation_steps
                ),
            ));
        }
        if t.per_device_eval_batch_size == Some(0) {
            return Err(Invalid::new(
                "training.per_device_eval_batch_size",
                "training.per_device_eval_batch_size = 0; set it to 1 or more, or leave it out (the training batch size)".into(),
            ));
        }
        non_negative(
            "training.learning_rate",
            t.learning_rate,
            true,
            "DPO's usual value is around 5e-7",
        )?;
        unit_interval(
            "training.warmup_ratio",
            t.warmup_ratio,
            "it is the fraction of the steps spent warming up",
        )?;
        non_negative(
            "training.max_grad_norm",
            t.max_grad_norm,
            false,
            "0 turns clipping off",
        )?;
        if t.num_train_epochs == 0 && t.max_steps.is_none() {
            return Err(Invalid::new(
                "training.num_train_epochs",
                "training.num_train_epochs = 0 trains nothing; set it to 1 or more, or set training.max_steps".into(),
            ));
        }
        if t.max_steps == Some(0) {
            return Err(Invalid::new(
                "training.max_steps",
                "training.max_steps = 0 trains nothing; set it to 1 or more, or leave it out"
                    .into(),
            ));
        }
        if t.eval_steps > 0 && self.data.eval_file.is_none() {
            return Err(Invalid::new(
                "training.eval_steps",
                format!(
                    "training.eval_steps = {} asks for evaluation but data.eval_file is not set; set data.eval_file, or remove eval_steps",
                    t.eval_steps
                ),
            ));
        }
        check_adamw("optimizer", &self.optimizer)?;
        if let Some(g) = &self.ganpo {
            self.check_ganpo(g)?;
        }
        if let Some(l) = &self.lora {
            l.check(t.gradient_checkpointing)
                .map_err(|(key, message)| Invalid::new(&key, message))?;
        }
        if !(self.model.device == "cpu" || self.model.device.starts_with("cuda")) {
            return Err(Invalid::new(
                "model.device",
                format!(
                    "model.device must be `cpu` or `cuda:N`, got `{}`",
                    self.model.device
                ),
            ));
        }
        Ok(())
    }

    fn check_ganpo(&self, g: &super::train::GanpoSection) -> Check {
        g.discriminator
            .validate()
            .map_err(|e| Invalid::section("ganpo.discriminator", e))?;
        non_negative(
            "ganpo.lambda",
            g.lambda,
            false,
            "the authors use 1.0; 0 turns the generator term off",
        )?;
        if let Some(lr) = g.disc_learning_rate {
            non_negative(
                "ganpo.disc_learning_rate",
                lr,
                true,
                "leave it out for the authors' default (training.learning_rate / 2)",
            )?;
        }
        non_negative(
            "ganpo.disc_weight_decay",
            g.disc_weight_decay,
            false,
            "the authors use 0.01",
        )?;
        if g.disc_steps == 0 {
            return Err(Invalid::new(
                "ganpo.disc_steps",
                "ganpo.disc_steps = 0 never trains the discriminators; set it to 1 or more".into(),
            ));
        }
        unit_interval(
            "ganpo.momentum",
            g.momentum,
            "the authors use 0.9 for the running means",
        )?;
        if g.compat == Compat::Authors && g.pooling != Pooling::Unmasked {
            return Err(Invalid::new(
                "ganpo.pooling",
                "[ganpo] compat = \"authors\" pools unmasked; set pooling = \"unmasked\" too (or drop compat)".into(),
            ));
        }
        if g.compat == Compat::Authors && g.disc_steps != 1 {
            return Err(Invalid::new(
                "ganpo.disc_steps",
                format!(
                    "[ganpo] disc_steps = {} has no meaning with compat = \"authors\" (their discriminators step once per gated update); remove disc_steps or drop compat",
                    g.disc_steps
                ),
            ));
        }
        Ok(())
    }
}

impl TrainConfig {
    /// Checks that every input the config names exists and the output directory is not a file,
    /// naming the key, before any model or data is loaded.
    pub fn check_paths_exist(&self) -> crate::Result<()> {
        let inputs = [
            ("model.path", Some(self.model.path.as_path())),
            ("model.reference", self.model.reference.as_deref()),
            ("data.train_file", Some(self.data.train_file.as_path())),
            ("data.eval_file", self.data.eval_file.as_deref()),
            (
                "ganpo.init_from",
                self.ganpo.as_ref().and_then(|g| g.init_from.as_deref()),
            ),
            (
                "lora.init_from",
                self.lora.as_ref().and_then(|l| l.init_from.as_deref()),
            ),
        ];
        for (key, path) in inputs {
            if let Some(path) = path
                && !path.exists()
            {
                return Err(crate::Error::Config(format!(
                    "{key} = {} does not exist; fix the path (relative paths in a config file are relative to its directory)",
                    path.display()
                )));
            }
        }
        let out = &self.training.output_dir;
        if out.exists() && !out.is_dir() {
            return Err(crate::Error::Config(format!(
                "training.output_dir = {} is a file, not a directory; choose a directory",
                out.display()
            )));
        }
        Ok(())
    }
}
