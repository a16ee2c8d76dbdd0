//! LoRA on the tiny Llama fixture, against PEFT: golden logits and the adapter fixture come from
//! PEFT (`tools/golden/lora_peft.py`); gradients are checked against f64 finite differences; the
//! adapter format ganpo writes and `ganpo merge` are compared with PEFT's. Training with LoRA is
//! in `tests/lora_training.rs`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use common::lora::{base, bits, golden, logits};
use common::{assert_close, fixture, load_golden, rel_err};
use ganpo::model::lora::{LoraInit, LoraSpec};
use ganpo::model::peft::{ADAPTER_CONFIG, ADAPTER_WEIGHTS, load_with_adapter, read_adapter};
use ganpo::model::{CausalLm, Trainability, load_model};

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
        target_modules: ganpo::model::lora::LORA_MODULES.map(String::from).to_vec(),
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
