//! Training with LoRA on the tiny Llama fixture: only adapters train, checkpoints hold PEFT
//! adapters (not the base), resume is bit-exact, `lora.init_from`, gradient checkpointing, and
//! the `[lora]` config's errors.

mod common;

use std::path::Path;

use common::config::ConfigText;
use common::lora::{GANPO, base, bits, golden, logits, lora_config};
use common::{assert_close, fixture, run, run_until};
use ganpo::model::peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};

/// LoRA + GANPO on the fixture: the loss is finite, only adapters (and discriminators) train,
/// the base stays bit-identical, and checkpoints hold the adapter in PEFT's layout, not the base.
#[test]
fn lora_ganpo_trains_only_the_adapters() {
    let tmp = tempfile::tempdir().unwrap();
    let lora = format!("[lora]\nr = 4\nlora_alpha = 8\ntarget_modules = \"all-linear\"\n{GANPO}");
    let (steps, trainer) = run(lora_config(tmp.path(), "max_steps = 3", &lora), None);
    // Step 0: the policy equals its reference (fresh B = 0), so DPO starts at ln 2.
    assert!((steps[0]["loss/preference"] - std::f64::consts::LN_2).abs() < 1e-5);
    assert!(steps.iter().all(|m| m["loss"].is_finite()));
    let policy = &trainer.policy;
    assert!(policy.vars().iter().all(|(n, _)| n.contains(".lora_")));
    let b = policy
        .vars()
        .iter()
        .find(|(n, _)| n.ends_with("lora_B.weight"))
        .unwrap();
    assert!(
        b.1.as_tensor()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            > 0.0
    );
    for ((n, a), (_, w)) in policy
        .named_parameters()
        .iter()
        .zip(base().named_parameters())
    {
        assert_eq!(bits(a), bits(w), "base weight {n} changed");
    }
    let ckpt = tmp.path().join("checkpoint-3/policy");
    assert!(ckpt.join(ADAPTER_CONFIG).exists() && ckpt.join(ADAPTER_WEIGHTS).exists());
    assert!(
        !ckpt.join("model.safetensors").exists(),
        "a LoRA checkpoint holds no base model"
    );
    let size: u64 = walk(&tmp.path().join("checkpoint-3"));
    eprintln!("LoRA + GANPO checkpoint: {size} bytes");
    assert!(tmp.path().join("final").join(ADAPTER_WEIGHTS).exists());
}

fn walk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                walk(&p)
            } else {
                p.metadata().unwrap().len()
            }
        })
        .sum()
}

/// Train 4 = train 2, save, resume, train 2, with adapter dropout and GANPO on.
#[test]
fn lora_resume_reproduces_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let lora = format!(
        "[lora]\nr = 4\nlora_dropout = 0.1\ntarget_modules = [\"q_proj\", \"v_proj\", \"down_proj\"]\n{GANPO}"
    );
    let cfg = |d: &str| lora_config(&tmp.path().join(d), "max_steps = 4", &lora);
    let (full, a) = run(cfg("a"), None);
    let (first, _) = run_until(cfg("b"), None, Some(2));
    let (second, b) = run(cfg("b"), Some(&tmp.path().join("b/checkpoint-2")));
    let resumed: Vec<_> = first.iter().chain(&second).collect();
    for (i, (x, y)) in full.iter().zip(resumed).enumerate() {
        for key in ["loss", "grad_norm", "adv/loss", "disc/loss_chosen"] {
            assert_eq!(x[key], y[key], "step {}: {key} differs after resume", i + 1);
        }
    }
    for ((n, va), (_, vb)) in a.policy.vars().iter().zip(b.policy.vars()) {
        assert_eq!(bits(va.as_tensor()), bits(vb.as_tensor()), "{n}");
    }
}

/// `lora.init_from` starts from PEFT's adapter: step-0 policy logits are PEFT's.
#[test]
fn init_from_starts_at_the_peft_adapter() {
    let (ids, mask, g) = golden();
    let tmp = tempfile::tempdir().unwrap();
    let dir = fixture("lora/peft_adapter").display().to_string();
    let lora = format!(
        "[lora]\nr = 4\nlora_alpha = 8\ntarget_modules = \"all-linear\"\ninit_from = {dir:?}\n"
    );
    let trainer =
        ganpo::train::trainer::Trainer::new(lora_config(tmp.path(), "max_steps = 1", &lora))
            .unwrap();
    assert_close(
        &logits(&trainer.policy, &ids, &mask),
        &g["logits"],
        1e-5,
        "init_from",
    );
    let wrong = lora.replace("r = 4", "r = 8");
    let err =
        match ganpo::train::trainer::Trainer::new(lora_config(tmp.path(), "max_steps = 1", &wrong))
        {
            Ok(_) => panic!("a wrong rank must be refused"),
            Err(e) => e.to_string(),
        };
    assert!(
        err.contains("r = 4 (config: 8)") && err.contains("lora.init_from"),
        "{err}"
    );
}

#[test]
fn lora_config_errors_name_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let parse = |training: &str, lora: &str| {
        ConfigText::new(tmp.path())
            .training(training)
            .tables(lora)
            .parse(&[])
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let cases = [
        ("", "[lora]\nr = 0", "lora.r = 0"),
        ("", "[lora]\nrank = 4", "rank"),
        (
            "",
            "[lora]\ntarget_modules = [\"q_proj\", \"lm_head\", \"qkv\"]",
            "[\"lm_head\", \"qkv\"]",
        ),
        (
            "",
            "[lora]\ntarget_modules = \"all_linear\"",
            "\"all-linear\"",
        ),
        (
            "",
            "[lora]\ntarget_modules = []",
            "lora.target_modules is empty",
        ),
        ("", "[lora]\nlora_dropout = 1.0", "lora.lora_dropout = 1"),
        ("", "[lora]\nlora_alpha = -1", "lora.lora_alpha = -1"),
        (
            "gradient_checkpointing = true",
            "[lora]\nlora_dropout = 0.1",
            "gradient_checkpointing",
        ),
    ];
    for (training, lora, want) in cases {
        let err = parse(training, lora);
        assert!(err.contains(want), "{lora}: {err}");
    }
}

/// Gradient checkpointing recomputes adapted layers exactly (PEFT's default targets: q and v, so
/// the MLP halves stay on the fused path with frozen weights).
#[test]
fn lora_with_gradient_checkpointing_matches_without() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = |d: &str, extra: &str| {
        lora_config(
            &tmp.path().join(d),
            &format!("max_steps = 2\n{extra}"),
            "[lora]\nr = 2\n",
        )
    };
    let (plain, a) = run(cfg("a", ""), None);
    let (recomputed, b) = run(cfg("b", "gradient_checkpointing = true"), None);
    for (x, y) in plain.iter().zip(&recomputed) {
        for key in ["loss", "grad_norm"] {
            assert!(
                (x[key] - y[key]).abs() <= 1e-6 * x[key].abs(),
                "{key}: {} vs {}",
                x[key],
                y[key]
            );
        }
    }
    assert_eq!(a.policy.vars().len(), 3 * 2 * 2);
    for ((n, va), (_, vb)) in a.policy.vars().iter().zip(b.policy.vars()) {
        assert_close(vb.as_tensor(), va.as_tensor(), 1e-6, n);
    }
}
