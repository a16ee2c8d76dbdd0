//! Golden parity of every decoder architecture against Hugging Face transformers (fixtures written
//! by `tools/golden/models.py`), plus gradient-coverage, save/reload and bad-checkpoint tests.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{VARIANTS, assert_close, fixture, load_golden};
use ganpo::logps::sequence_logps;
use ganpo::model::{Trainability, load_model, save_hf};

/// f32 through a few small layers: transformers (eager) and candle sum in different orders, so
/// agreement is to rounding (~1e-6 relative); 1e-4 is the bar and leaves room.
const TOL: f64 = 1e-4;

fn inputs(golden: &std::collections::HashMap<String, Tensor>) -> (Tensor, Tensor, Tensor) {
    let ids = golden["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = golden["attention_mask"].to_dtype(DType::U32).unwrap();
    let loss = golden["loss_mask"].to_dtype(DType::F32).unwrap();
    (ids, mask, loss)
}

#[test]
fn every_architecture_matches_transformers() {
    for name in VARIANTS {
        let dir = fixture(&format!("models/{name}"));
        let golden = load_golden(&dir.join("golden.safetensors"));
        let loaded = load_model(&dir, Trainability::Frozen, DType::F32, &Device::Cpu).unwrap();
        let (ids, mask, loss) = inputs(&golden);
        let out = loaded.model.forward(&ids, &mask).unwrap();
        assert_close(
            &out.logits,
            &golden["logits"],
            TOL,
            &format!("{name} logits"),
        );
        assert_close(
            &out.last_hidden,
            &golden["last_hidden"],
            TOL,
            &format!("{name} last hidden"),
        );
        let seq = sequence_logps(&out.logits, &ids, &loss).unwrap();
        assert_close(
            &seq.logps,
            &golden["logps"],
            TOL,
            &format!("{name} sequence logps"),
        );
        assert_close(
            &seq.counts,
            &golden["counts"],
            0.0,
            &format!("{name} token counts"),
        );
    }
}

#[test]
fn every_trainable_variable_receives_a_gradient() {
    for name in VARIANTS {
        let dir = fixture(&format!("models/{name}"));
        let golden = load_golden(&dir.join("golden.safetensors"));
        let loaded = load_model(&dir, Trainability::Trainable, DType::F32, &Device::Cpu).unwrap();
        let (ids, mask, loss) = inputs(&golden);
        let out = loaded.model.forward(&ids, &mask).unwrap();
        let seq = sequence_logps(&out.logits, &ids, &loss).unwrap();
        // Both outputs feed the objective, as in GANPO (log-probs and pooled hidden states).
        let objective = (seq.logps.sum_all().unwrap()
            + out.last_hidden.sqr().unwrap().mean_all().unwrap())
        .unwrap();
        // Through `CausalLm::backward`, which collects the fused blocks' weight gradients.
        let grads = loaded.model.backward(&objective).unwrap();
        assert!(
            !loaded.model.vars().is_empty(),
            "{name}: a trainable model has variables"
        );
        for (param, var) in loaded.model.vars() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient for {param}"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{name}: gradient of {param} is {norm}"
            );
        }
    }
}

#[test]
fn frozen_model_has_no_variables_and_builds_no_graph() {
    let dir = fixture("models/llama");
    let loaded = load_model(&dir, Trainability::Frozen, DType::F32, &Device::Cpu).unwrap();
    assert!(loaded.model.vars().is_empty());
    let golden = load_golden(&dir.join("golden.safetensors"));
    let (ids, mask, _) = inputs(&golden);
    let out = loaded.model.forward(&ids, &mask).unwrap();
    assert!(
        !out.logits.track_op(),
        "a frozen forward must not be tracked for backward"
    );
}

#[test]
fn saved_model_reloads_to_identical_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["qwen2", "gemma2"] {
        let dir = fixture(&format!("models/{name}"));
        let golden = load_golden(&dir.join("golden.safetensors"));
        let loaded = load_model(&dir, Trainability::Trainable, DType::F32, &Device::Cpu).unwrap();
        let out_dir = tmp.path().join(name);
        save_hf(
            &loaded.model,
            &loaded.tokenizer,
            loaded.generation_config.as_ref(),
            &out_dir,
        )
        .unwrap();
        let again = load_model(&out_dir, Trainability::Frozen, DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            again.model.config(),
            loaded.model.config(),
            "{name}: config round-trips"
        );
        let (ids, mask, _) = inputs(&golden);
        let a = loaded.model.forward(&ids, &mask).unwrap().logits;
        let b = again.model.forward(&ids, &mask).unwrap().logits;
        assert_close(&b, &a, 0.0, &format!("{name} logits after save/reload"));
    }
}

fn copy_fixture(name: &str, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(fixture(&format!("models/{name}"))).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn load_err(dir: &std::path::Path) -> String {
    load_model(dir, Trainability::Frozen, DType::F32, &Device::Cpu)
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_checkpoints_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    copy_fixture("llama", &dir);
    let config_path = dir.join("config.json");
    let original = std::fs::read_to_string(&config_path).unwrap();

    std::fs::write(&config_path, original.replace("\"llama\"", "\"gpt_neox\"")).unwrap();
    let err = load_err(&dir);
    assert!(
        err.contains("unknown architecture `gpt_neox`") && err.contains("supported"),
        "{err}"
    );

    std::fs::write(
        &config_path,
        original.replace("\"intermediate_size\": 64", "\"intermediate_size\": 48"),
    )
    .unwrap();
    let err = load_err(&dir);
    assert!(
        err.contains("gate_proj.weight") && err.contains("[64, 32]") && err.contains("[48, 32]"),
        "{err}"
    );

    std::fs::write(
        &config_path,
        original.replace("\"num_hidden_layers\": 3", "\"num_hidden_layers\": 2"),
    )
    .unwrap();
    let err = load_err(&dir);
    assert!(
        err.contains("not used") && err.contains("model.layers.2"),
        "{err}"
    );

    std::fs::write(&config_path, &original).unwrap();
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(&dir);
    assert!(
        err.contains("model.safetensors") && err.contains("corrupt or truncated"),
        "{err}"
    );

    std::fs::write(&weights, &bytes).unwrap();
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let err = load_err(&dir);
    assert!(err.contains("no tokenizer.json"), "{err}");

    let err = load_err(&tmp.path().join("does-not-exist"));
    assert!(err.contains("does-not-exist"), "{err}");
}

#[test]
fn random_init_covers_exactly_the_parameters_every_architecture_loads() {
    use ganpo::model::{CausalLm, ModelConfig, Weights, init::random_weights};
    for name in VARIANTS {
        let dir = fixture(&format!("models/{name}"));
        let config = ModelConfig::from_file(&dir.join("config.json")).unwrap();
        let weights = random_weights(&config, 0.02, 1, &Device::Cpu).unwrap();
        let count: usize = weights.values().map(|t| t.elem_count()).sum();
        assert_eq!(count, config.num_parameters(), "{name}: parameter count");
        // from_weights rejects missing and left-over tensors, so this checks the names too.
        let w = Weights::new(
            weights,
            &dir,
            Trainability::Trainable,
            DType::F32,
            &Device::Cpu,
        );
        let model = CausalLm::from_weights(config, w, DType::F32, &Device::Cpu).unwrap();
        let ids = Tensor::new(&[[3u32, 4, 5]], &Device::Cpu).unwrap();
        let out = model.forward(&ids, &ids.ones_like().unwrap()).unwrap();
        assert_eq!(out.logits.dims(), &[1, 3, 96]);
    }
}

/// The training path (final hidden states → fused chunked LM head) gives the same log-probs,
/// mean logits and parameter gradients as the full logits, for every architecture (Gemma-2's
/// final soft-capping included).
#[test]
fn log_probs_from_hidden_states_equal_those_from_full_logits() {
    use ganpo::logps::sequence_logps_from_hidden;
    for name in VARIANTS {
        let dir = fixture(&format!("models/{name}"));
        let golden = load_golden(&dir.join("golden.safetensors"));
        let loaded = load_model(&dir, Trainability::Trainable, DType::F32, &Device::Cpu).unwrap();
        let model = &loaded.model;
        let (ids, mask, loss) = inputs(&golden);
        let full = model.forward(&ids, &mask).unwrap();
        let a = sequence_logps(&full.logits, &ids, &loss).unwrap();
        let hidden = model.forward_hidden(&ids, &mask).unwrap();
        let softcap = model.config().final_logit_softcapping;
        let (b, mean) =
            sequence_logps_from_hidden(&hidden, model.lm_head_weight(), softcap, &ids, &loss)
                .unwrap();
        assert_close(&b.logps, &a.logps, 1e-5, &format!("{name} logps"));
        assert_close(
            &b.token_logps,
            &a.token_logps,
            1e-5,
            &format!("{name} token logps"),
        );
        assert_close(&b.counts, &a.counts, 0.0, &format!("{name} counts"));
        let full_mean = (full.logits.mean(2).unwrap() * &a.mask).unwrap();
        assert_close(&mean, &full_mean, 1e-5, &format!("{name} mean logits"));
        let ga = model.backward(&a.logps.sum_all().unwrap()).unwrap();
        let gb = model.backward(&b.logps.sum_all().unwrap()).unwrap();
        for (param, var) in model.vars() {
            let (x, y) = (gb.get(var.as_tensor()), ga.get(var.as_tensor()));
            match (x, y) {
                (Some(x), Some(y)) => assert_close(x, y, 1e-4, &format!("{name} ∂/∂{param}")),
                (None, None) => {}
                _ => panic!("{name}: {param} has a gradient on one path only"),
            }
        }
    }
}

/// The objective of [`every_trainable_variable_receives_a_gradient`], differentiated through
/// `model.backward` (which merges the gradients of recomputed layers).
fn objective_grads(
    model: &ganpo::model::CausalLm,
    golden: &std::collections::HashMap<String, Tensor>,
) -> (f64, candle_core::backprop::GradStore) {
    let (ids, mask, loss) = inputs(golden);
    let out = model.forward(&ids, &mask).unwrap();
    let seq = sequence_logps(&out.logits, &ids, &loss).unwrap();
    let objective = (seq.logps.sum_all().unwrap()
        + out.last_hidden.sqr().unwrap().mean_all().unwrap())
    .unwrap();
    let value = objective.to_scalar::<f32>().unwrap() as f64;
    (value, model.backward(&objective).unwrap())
}

#[test]
fn gradient_checkpointing_gives_the_same_gradients_on_every_architecture() {
    for name in VARIANTS {
        let dir = fixture(&format!("models/{name}"));
        let golden = load_golden(&dir.join("golden.safetensors"));
        let mut model = load_model(&dir, Trainability::Trainable, DType::F32, &Device::Cpu)
            .unwrap()
            .model;
        let (plain_value, plain) = objective_grads(&model, &golden);
        model.set_gradient_checkpointing(true);
        assert!(model.gradient_checkpointing());
        let (value, recomputed) = objective_grads(&model, &golden);
        assert_eq!(value, plain_value, "{name}: the forward value changed");
        for (param, var) in model.vars() {
            let expected = plain.get(var.as_tensor()).unwrap();
            let got = recomputed
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient for {param} under checkpointing"));
            assert_close(got, expected, 1e-6, &format!("{name} {param}"));
        }
    }
}

#[test]
fn a_plain_backward_is_reported_at_the_next_forward() {
    let dir = fixture("models/llama");
    let golden = load_golden(&dir.join("golden.safetensors"));
    let model = load_model(&dir, Trainability::Trainable, DType::F32, &Device::Cpu)
        .unwrap()
        .model;
    let (ids, mask, loss) = inputs(&golden);
    let objective = |model: &ganpo::model::CausalLm| {
        let out = model.forward(&ids, &mask).unwrap();
        let seq = sequence_logps(&out.logits, &ids, &loss).unwrap();
        seq.logps.sum_all().unwrap()
    };
    // `Tensor::backward` leaves the decoder blocks' weight gradients in the model's store...
    let bare = objective(&model).backward().unwrap();
    let layer_var = &model
        .vars()
        .iter()
        .find(|(n, _)| n.contains("layers.0.mlp"))
        .unwrap()
        .1;
    assert!(bare.get(layer_var.as_tensor()).is_none());
    // ...which the next forward reports once, instead of training without them.
    let err = model.forward(&ids, &mask).unwrap_err();
    assert!(err.to_string().contains("CausalLm::backward"), "{err}");
    let grads = model.backward(&objective(&model)).unwrap();
    assert!(grads.get(layer_var.as_tensor()).is_some());
}

#[test]
fn gradient_checkpointing_is_a_no_op_for_a_frozen_model() {
    let dir = fixture("models/llama");
    let mut model = load_model(&dir, Trainability::Frozen, DType::F32, &Device::Cpu)
        .unwrap()
        .model;
    model.set_gradient_checkpointing(true);
    assert!(!model.gradient_checkpointing());
}
