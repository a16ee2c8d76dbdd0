//! f64 finite-difference check of the full policy objective at step 0: DPO + λ·L_G, through the
//! whole decoder (tiny Llama) and the frozen GANPO discriminators.

mod common;

use candle_core::{DType, Device, Tensor, Var};
use common::fixture;
use ganpo::data::{Batch, DataConfig, PreferenceDataset};
use ganpo::ganpo::{
    Discriminator, DiscriminatorConfig, Latents, RunningMeans, discriminator_step, generator_losses,
};
use ganpo::losses::{LossConfig, LossInputs, LossState};
use ganpo::model::{CausalLm, Trainability, load_model};
use ganpo::train::forward::pair_forward;

struct Setup {
    policy: CausalLm,
    reference: CausalLm,
    plus: Discriminator,
    minus: Discriminator,
    means: RunningMeans,
    ids: Tensor,
    mask: Tensor,
    loss_mask: Tensor,
}

fn objective(s: &mut Setup) -> Tensor {
    let out = pair_forward(&s.policy, &s.ids, &s.mask, &s.loss_mask, false).unwrap();
    let reference = pair_forward(&s.reference, &s.ids, &s.mask, &s.loss_mask, false).unwrap();
    let loss = LossConfig::default().resolve().unwrap();
    let inputs = LossInputs::from_sequence_logps(&out.sequence, Some(&reference.sequence)).unwrap();
    let dpo = loss
        .compute(&inputs, &mut LossState::default())
        .unwrap()
        .losses
        .mean_all()
        .unwrap();
    let m = s.mask.to_dtype(DType::F64).unwrap();
    let b = m.dim(0).unwrap() / 2;
    let lg = generator_losses(
        &mut s.plus,
        &mut s.minus,
        &out.chosen_hidden,
        &out.rejected_hidden,
        &m.narrow(0, 0, b).unwrap(),
        &m.narrow(0, b, b).unwrap(),
        &s.means,
    )
    .unwrap()
    .mean_all()
    .unwrap();
    (dpo + lg).unwrap()
}

#[test]
fn full_objective_gradient_matches_finite_differences_in_f64() {
    let dir = fixture("models/llama");
    let policy = load_model(&dir, Trainability::Trainable, DType::F64, &Device::Cpu).unwrap();
    let reference = load_model(&dir, Trainability::Frozen, DType::F64, &Device::Cpu)
        .unwrap()
        .model;
    let data = PreferenceDataset::load(
        &fixture("train/train.jsonl"),
        &policy.tokenizer,
        &DataConfig::default(),
    )
    .unwrap();
    let batch = Batch::collate(data.pairs.iter().take(3), policy.tokenizer.pad_id())
        .unwrap()
        .to_tensors(&Device::Cpu)
        .unwrap();
    let cfg = DiscriminatorConfig {
        width: 16,
        depth: 1,
        heads: 2,
        dropout: 0.0,
        max_positions: 64,
    };
    let d = policy.model.config().hidden_size;
    let mut s = Setup {
        plus: Discriminator::new(&cfg, d, 1, DType::F64, &Device::Cpu).unwrap(),
        minus: Discriminator::new(&cfg, d, 2, DType::F64, &Device::Cpu).unwrap(),
        means: RunningMeans::new(0.9).unwrap(),
        policy: policy.model,
        reference,
        ids: batch.input_ids,
        mask: batch.attention_mask,
        loss_mask: batch.loss_mask,
    };
    // One discriminator step sets the running means (as the training step does before L_G).
    {
        let out = pair_forward(&s.policy, &s.ids, &s.mask, &s.loss_mask, false).unwrap();
        let r = pair_forward(&s.reference, &s.ids, &s.mask, &s.loss_mask, false).unwrap();
        let m = s.mask.to_dtype(DType::F64).unwrap();
        let b = m.dim(0).unwrap() / 2;
        let (cm, rm) = (m.narrow(0, 0, b).unwrap(), m.narrow(0, b, b).unwrap());
        let latents = Latents {
            policy_chosen: &out.chosen_hidden,
            policy_rejected: &out.rejected_hidden,
            ref_chosen: &r.chosen_hidden,
            ref_rejected: &r.rejected_hidden,
            chosen_mask: &cm,
            rejected_mask: &rm,
        };
        discriminator_step(&mut s.plus, &mut s.minus, &latents, &mut s.means).unwrap();
    }
    let grads = objective(&mut s).backward().unwrap();
    let vars: Vec<(String, Var)> = s.policy.vars().to_vec();
    let mut checked = 0;
    for (name, var) in vars.iter().filter(|(n, _)| {
        [
            "embed_tokens",
            "layers.0.self_attn.q_proj",
            "layers.1.mlp.down_proj",
            "layers.2.input_layernorm",
            "model.norm",
            "lm_head",
        ]
        .iter()
        .any(|k| n.contains(k))
    }) {
        let g: Vec<f64> = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // The entry with the largest analytic gradient (padding rows of the embedding get none).
        let i = (0..g.len())
            .max_by(|&a, &b| g[a].abs().total_cmp(&g[b].abs()))
            .unwrap();
        let eps = 1e-6;
        let mut eval_at = |delta: f64| {
            let mut p = base.clone();
            p[i] += delta;
            var.set(&Tensor::from_vec(p, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
            objective(&mut s).to_scalar::<f64>().unwrap()
        };
        let numeric = (eval_at(eps) - eval_at(-eps)) / (2.0 * eps);
        var.set(&Tensor::from_vec(base.clone(), var.shape(), &Device::Cpu).unwrap())
            .unwrap();
        let rel = (numeric - g[i]).abs() / g[i].abs().max(1e-8);
        assert!(
            rel < 1e-5,
            "{name}[{i}]: analytic {} vs numeric {numeric} (relative {rel:.2e})",
            g[i]
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}
