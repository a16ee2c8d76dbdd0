//! LoRA: PEFT-compatible adapters on the tiny Llama fixture. Golden logits and the adapter
//! fixture come from PEFT (`tools/golden/lora_peft.py`); gradients are checked against f64
//! finite differences; training, resume, merge and the config's errors end to end.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::config::ConfigText;
use common::{assert_close, fixture, load_golden, rel_err, run, run_until};
use ganpo::config::train::TrainConfig;
use ganpo::model::lora::{LoraInit, LoraSpec};
use ganpo::model::peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_with_adapter, read_adapter};
use ganpo::model::{CausalLm, Trainability, load_model};

const GANPO: &str = "[ganpo]\nlambda = 1.0\n[ganpo.discriminator]\nwidth = 32\ndepth = 1\nheads = 4\nmax_positions = 64\n";

fn base() -> CausalLm {
    load_model(
        &fixture("models/llama"),
        Trainability::Frozen,
        DType::F32,
        &Device::Cpu,
    )
    .unwrap()
    .model
}

/// PEFT's fixed inputs (`tools/golden/lora_peft.py`) and its logits.
fn golden() -> (Tensor, Tensor, HashMap<String, Tensor>) {
    let g = load_golden(&fixture("lora/golden.safetensors"));
    let ids = g["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = g["attention_mask"].to_dtype(DType::U32).unwrap();
    (ids, mask, g)
}

fn logits(model: &CausalLm, ids: &Tensor, mask: &Tensor) -> Tensor {
    model.forward(ids, mask).unwrap().logits
}

fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn lora_config(out: &Path, training: &str, lora: &str) -> TrainConfig {
    ConfigText::new(out)
        .training("per_device_train_batch_size = 4\nlearning_rate = 1e-2\nlogging_steps = 1\nsave_steps = 0")
        .training(training)
        .tables(lora)
        .build()
}

/// ganpo reads PEFT's adapter (r 4, α 8, all-linear, random non-zero B) and gives PEFT's logits.
#[test]
fn peft_adapter_gives_pefts_logits() {
    let (ids, mask, g) = golden();
    let policy = load_with_adapter(
        &fixture("models/llama"),
        &fixture("lora/peft_adapter"),
        &Device::Cpu,
    )
    .unwrap()
    .model;
    assert_close(
        &logits(&policy, &ids, &mask),
        &g["logits"],
        1e-5,
        "PEFT logits",
    );
    assert!(
        rel_err(&g["logits"], &g["base_logits"]) > 1e-2,
        "the adapter must matter"
    );
    assert_close(
        &logits(&policy.without_adapters(), &ids, &mask),
        &g["base_logits"],
        1e-5,
        "adapters off = transformers' base",
    );
}

/// The reference of a LoRA run is the base forward, bit for bit, sharing the base's tensors.
#[test]
fn adapters_off_forward_is_the_base_forward_bit_for_bit() {
    let (ids, mask, _) = golden();
    let policy = load_with_adapter(
        &fixture("models/llama"),
        &fixture("lora/peft_adapter"),
        &Device::Cpu,
    )
    .unwrap()
    .model;
    let off = policy.without_adapters();
    assert!(off.vars().is_empty() && off.lora_spec().is_none());
    assert_eq!(
        bits(&logits(&off, &ids, &mask)),
        bits(&logits(&base(), &ids, &mask))
    );
    // No second copy: the reference's tensors are the policy's base tensors.
    for ((n, a), (_, b)) in off.named_parameters().iter().zip(policy.named_parameters()) {
        assert_eq!(a.id(), b.id(), "{n} was copied");
    }
}

/// PEFT's initialization (A Kaiming-uniform, B zero) leaves the model's output unchanged.
#[test]
fn fresh_adapters_leave_the_logits_of_the_base() {
    let (ids, mask, _) = golden();
    let spec = LoraSpec {
        r: 8,
        lora_alpha: 16.0,
        lora_dropout: 0.0,
        target_modules: ganpo::config::lora::LORA_MODULES.map(String::from).to_vec(),
        use_rslora: false,
    };
    let mut policy = base();
    policy
        .attach_lora(&spec, LoraInit::Fresh(7), true, 0)
        .unwrap();
    assert_eq!(policy.vars().len(), 3 * 7 * 2);
    assert!(policy.vars().iter().all(|(n, _)| n.contains(".lora_")));
    // Adapted layers take the composed path, the base the fused one: equal up to rounding.
    assert_close(
        &logits(&policy, &ids, &mask),
        &logits(&base(), &ids, &mask),
        1e-6,
        "step 0",
    );
    let a = policy.vars()[0].1.as_tensor().flatten_all().unwrap();
    let bound = 1.0 / (32f32).sqrt();
    let max = a
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(
        max <= bound && max > 0.8 * bound,
        "A ~ U(±1/√in): max {max}"
    );
}

/// ∂L/∂A and ∂L/∂B of every adapter kind against central differences, in f64.
#[test]
fn lora_gradients_match_finite_differences_in_f64() {
    let (ids, mask, _) = golden();
    let (spec, tensors) = read_adapter(&fixture("lora/peft_adapter")).unwrap();
    let spec = LoraSpec {
        lora_dropout: 0.0,
        use_rslora: true,
        ..spec
    };
    let mut policy = load_model(
        &fixture("models/llama"),
        Trainability::Frozen,
        DType::F64,
        &Device::Cpu,
    )
    .unwrap()
    .model;
    policy
        .attach_lora(&spec, LoraInit::Tensors(&tensors), true, 0)
        .unwrap();
    let weights = Tensor::randn(0f64, 1.0, (2, 8, 96), &Device::Cpu).unwrap();
    let loss = |m: &CausalLm| -> Tensor {
        let l = m.forward(&ids, &mask).unwrap().logits;
        (l * &weights).unwrap().sum_all().unwrap()
    };
    let grads = policy.backward(&loss(&policy)).unwrap();
    let vars = policy.vars().to_vec();
    let mut worst = 0f64;
    for (name, var) in vars.iter().filter(|(n, _)| n.contains("layers.1.")) {
        let g = grads
            .get(var.as_tensor())
            .expect("every adapter gets a gradient");
        let g = g.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert!(g.iter().any(|v| *v != 0.0), "{name}: zero gradient");
        let original = var.as_tensor().copy().unwrap();
        let flat = original.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for i in [0, flat.len() / 2, flat.len() - 1] {
            let eps = 1e-5;
            let at = |delta: f64| {
                let mut v = flat.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, original.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                loss(&policy).to_scalar::<f64>().unwrap()
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps);
            var.set(&original).unwrap();
            let err = (fd - g[i]).abs() / fd.abs().max(g[i].abs()).max(1e-3);
            worst = worst.max(err);
            assert!(err < 1e-6, "{name}[{i}]: analytic {} vs fd {fd}", g[i]);
        }
    }
    eprintln!("worst relative error {worst:.2e}");
}

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

/// The adapter ganpo writes has PEFT's keys and config (compared with the PEFT-written fixture);
/// with `GANPO_LORA_EXPORT=DIR` it also leaves `DIR/adapter`, ganpo's logits and `DIR/merged` for
/// `python tools/golden/lora_peft.py check DIR`.
#[test]
fn ganpo_writes_pefts_adapter_format_and_merge_equals_base_plus_adapter() {
    let (ids, mask, _) = golden();
    let tmp = tempfile::tempdir().unwrap();
    let out = std::env::var("GANPO_LORA_EXPORT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_owned());
    // Start from PEFT's adapter with B doubled, so that the written one is ganpo's own.
    let (spec, mut tensors) = read_adapter(&fixture("lora/peft_adapter")).unwrap();
    for (k, t) in tensors.iter_mut() {
        if k.ends_with("lora_B.weight") {
            *t = (&*t * 2.0).unwrap();
        }
    }
    let mut policy = base();
    policy
        .attach_lora(&spec, LoraInit::Tensors(&tensors), true, 0)
        .unwrap();
    let adapter = out.join("adapter");
    ganpo::model::peft::save_adapter(&policy, "tests/fixtures/models/llama", &adapter).unwrap();
    let want = logits(&policy, &ids, &mask);
    candle_core::safetensors::save(
        &HashMap::from([("logits".to_string(), want.clone())]),
        out.join("ganpo_logits.safetensors"),
    )
    .unwrap();

    // Same keys and shapes as PEFT's file; the config's values agree with PEFT's on every key
    // ganpo writes (target_modules as a set).
    let peft = load_golden(&fixture("lora/peft_adapter").join(ADAPTER_WEIGHTS));
    let ours = load_golden(&adapter.join(ADAPTER_WEIGHTS));
    let mut keys: Vec<_> = ours.keys().collect();
    keys.sort();
    let mut peft_keys: Vec<_> = peft.keys().collect();
    peft_keys.sort();
    assert_eq!(keys, peft_keys);
    for k in keys {
        assert_eq!(ours[k].dims(), peft[k].dims(), "{k}");
    }
    let json = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p.join(ADAPTER_CONFIG)).unwrap()).unwrap()
    };
    let (ours, peft) = (json(&adapter), json(&fixture("lora/peft_adapter")));
    for (k, v) in ours.as_object().unwrap() {
        let p = &peft[k];
        if k == "target_modules" {
            let set = |v: &serde_json::Value| {
                let mut s: Vec<String> = serde_json::from_value(v.clone()).unwrap();
                s.sort();
                s
            };
            assert_eq!(set(v), set(p));
        } else if v.is_number() {
            assert_eq!(v.as_f64(), p.as_f64(), "{k}");
        } else {
            assert_eq!(v, p, "adapter_config.json `{k}`");
        }
    }

    // `ganpo merge` = base + adapter; `generate --adapter` = generate on the merged model.
    let merged = out.join("merged");
    let _ = std::fs::remove_dir_all(&merged);
    let args = |a: &[&Path]| {
        a.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    let [b, a, m] = &args(&[&fixture("models/llama"), &adapter, &merged])[..] else {
        unreachable!()
    };
    let status = common::ganpo(&["merge", "--base", b, "--adapter", a, "--output", m]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let model = load_model(&merged, Trainability::Frozen, DType::F32, &Device::Cpu).unwrap();
    assert_close(&logits(&model.model, &ids, &mask), &want, 1e-5, "merged");
    let generate = |extra: &[&str]| {
        let mut argv = vec!["generate", "--prompt", "hello", "--max-new-tokens", "6"];
        argv.extend_from_slice(extra);
        let o = common::ganpo(&argv);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        generate(&["--model", b, "--adapter", a]),
        generate(&["--model", m])
    );
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
