//! Parity with `tools/golden/discriminator.py` (fixture `tests/fixtures/ganpo/`): a PyTorch port of the
//! authors' `TransformerDiscriminator` (torch `spectral_norm`), `compute_loss_disc` and the generator
//! term of `compute_loss`, initialized by their code in f32 and run in f64.
//!
//! Each check runs twice. In f64 the only differences left are summation order and libm rounding:
//! values agree to ≲1e-13 and gradients to ≲1e-12 relative, so the bounds (1e-10 / 1e-9) leave room
//! without hiding any real discrepancy (a LayerNorm ε of 1e-6 instead of 1e-5 already moves logits by
//! ~1e-6). In f32 the same code is compared with the f64 reference: f32 rounding (ε ≈ 6e-8) compounds
//! through ~15 matmul/norm stages forward and again backward, so values are held to 1e-5 relative
//! to each tensor's largest entry and discriminator gradients to 1e-4 relative to the largest
//! gradient entry of that discriminator. Not per tensor, because some gradients are tiny by
//! cancellation: at step 1 the running means equal the batch means, so the output bias gradient
//! Σ(σ(s − m̄) − t) vanishes to first order (1e-5 against entries of 1e-2), and its per-tensor
//! relative error measures f32 cancellation, not correctness. The f64 run checks every tensor on
//! its own scale. Latent gradients (L_G) are compared per tensor in both runs.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use ganpo::ganpo::objective::{discriminator_step, generator_losses};
use ganpo::ganpo::{Discriminator, DiscriminatorConfig, Latents, Mode, RunningMeans};

use crate::common::{assert_close, fixture, load_golden};

const INPUT_DIM: usize = 16;

struct Tol {
    value: f64,
    grad: f64,
}

fn tol(dtype: DType) -> Tol {
    match dtype {
        DType::F64 => Tol {
            value: 1e-10,
            grad: 1e-9,
        },
        _ => Tol {
            value: 1e-5,
            grad: 1e-4,
        },
    }
}

fn config() -> DiscriminatorConfig {
    DiscriminatorConfig {
        width: 32,
        depth: 2,
        heads: 4,
        dropout: 0.0,
        max_positions: 12,
    }
}

fn golden() -> HashMap<String, Tensor> {
    load_golden(&fixture("ganpo/golden.safetensors"))
}

fn load(which: &str, dtype: DType) -> Discriminator {
    let path = fixture(&format!("ganpo/disc_{which}.safetensors"));
    Discriminator::load(&path, &config(), INPUT_DIM, 7, dtype, &Device::Cpu).expect("fixture loads")
}

fn ones_like_mask(g: &HashMap<String, Tensor>) -> Tensor {
    g["chosen_mask"].ones_like().unwrap()
}

fn assert_state(d: &Discriminator, g: &HashMap<String, Tensor>, prefix: &str, tol: f64) {
    for (key, value) in d.spectral_state() {
        assert_close(
            &value,
            &g[&format!("{prefix}.{key}")],
            tol,
            &format!("{prefix}.{key}"),
        );
    }
}

fn max_abs(t: &Tensor) -> f64 {
    let t = t.to_dtype(DType::F64).unwrap().abs().unwrap();
    t.flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn scalar(t: &Tensor) -> Tensor {
    t.to_dtype(DType::F64).unwrap().reshape(()).unwrap()
}

fn forward_matches(dtype: DType) {
    let g = golden();
    let tol = tol(dtype);
    let x = &g["step1.policy_chosen"];
    let (ones, chosen) = (ones_like_mask(&g), &g["chosen_mask"]);
    let mut d = load("plus", dtype);
    let initial = d.spectral_state();
    let logits = d.forward(x, &ones, Mode::Eval).unwrap();
    assert_close(
        &logits,
        &g["eval.ones.logits"],
        tol.value,
        "eval logits, all-ones mask",
    );
    let logits = d.forward(x, chosen, Mode::Eval).unwrap();
    assert_close(
        &logits,
        &g["eval.masked.logits"],
        tol.value,
        "eval logits, padding mask",
    );
    for (key, value) in d.spectral_state() {
        assert_eq!(
            value.to_vec1::<f64>().ok(),
            initial[&key].to_vec1::<f64>().ok(),
            "{key}"
        );
    }
    let logits = d.forward(x, &ones, Mode::Train).unwrap();
    assert_close(
        &logits,
        &g["train.ones.logits"],
        tol.value,
        "train logits, all-ones mask",
    );
    assert_state(&d, &g, "train.ones", tol.value);
    let logits = d.forward(x, chosen, Mode::Train).unwrap();
    assert_close(
        &logits,
        &g["train.masked.logits"],
        tol.value,
        "train logits, padding mask",
    );
    assert_state(&d, &g, "train.masked", tol.value);
}

#[test]
fn discriminator_forward_matches_pytorch_f64() {
    forward_matches(DType::F64);
}

#[test]
fn discriminator_forward_matches_pytorch_f32() {
    forward_matches(DType::F32);
}

fn objective_matches(dtype: DType) {
    let g = golden();
    let tol = tol(dtype);
    let (mut plus, mut minus) = (load("plus", dtype), load("minus", dtype));
    let mut means = RunningMeans::new(RunningMeans::AUTHORS_MOMENTUM).unwrap();
    let ones = ones_like_mask(&g);
    for step in [1, 2] {
        // Step 1 is the authors' unmasked path, step 2 uses padding masks.
        let (mc, mr) = if step == 1 {
            (&ones, &ones)
        } else {
            (&g["chosen_mask"], &g["rejected_mask"])
        };
        let input = |k: &str| g[&format!("step{step}.{k}")].clone();
        let (pc, pr, rc, rr) = (
            input("policy_chosen"),
            input("policy_rejected"),
            input("ref_chosen"),
            input("ref_rejected"),
        );
        let latents = Latents {
            policy_chosen: &pc,
            policy_rejected: &pr,
            ref_chosen: &rc,
            ref_rejected: &rr,
            chosen_mask: mc,
            rejected_mask: mr,
        };
        let out = discriminator_step(&mut plus, &mut minus, &latents, &mut means).unwrap();
        let s = &out.scores;
        let m = &out.baselines;
        let groups = [
            ("plus_policy", &s.plus_policy, m.plus_policy),
            ("plus_ref_chosen", &s.plus_ref_chosen, m.plus_ref_chosen),
            (
                "plus_ref_rejected",
                &s.plus_ref_rejected,
                m.plus_ref_rejected,
            ),
            ("minus_policy", &s.minus_policy, m.minus_policy),
            ("minus_ref_chosen", &s.minus_ref_chosen, m.minus_ref_chosen),
            (
                "minus_ref_rejected",
                &s.minus_ref_rejected,
                m.minus_ref_rejected,
            ),
        ];
        for (name, score, mean) in groups {
            let what = format!("step {step} score {name}");
            assert_close(
                score,
                &g[&format!("step{step}.scores.{name}")],
                tol.value,
                &what,
            );
            let mean = Tensor::new(mean, &Device::Cpu).unwrap();
            let what = format!("step {step} running mean {name}");
            assert_close(
                &mean,
                &g[&format!("step{step}.means.{name}")],
                tol.value,
                &what,
            );
        }
        let (lp, lm) = (
            out.losses.plus.mean(0).unwrap(),
            out.losses.minus.mean(0).unwrap(),
        );
        let expected = &g[&format!("step{step}.loss_plus")];
        assert_close(
            &scalar(&lp),
            expected,
            tol.value,
            &format!("step {step} L_D+"),
        );
        let expected = &g[&format!("step{step}.loss_minus")];
        assert_close(
            &scalar(&lm),
            expected,
            tol.value,
            &format!("step {step} L_D-"),
        );
        let mut grads = (lp + lm).unwrap().backward().unwrap();
        plus.take_grads(&mut grads).unwrap();
        minus.take_grads(&mut grads).unwrap();
        for (which, d) in [("plus", &plus), ("minus", &minus)] {
            let key = |name: &str| format!("step{step}.grad.{which}.{name}");
            let scale = d
                .named_vars()
                .iter()
                .map(|(name, _)| max_abs(&g[&key(name)]))
                .fold(0.0, f64::max);
            for (name, var) in d.named_vars() {
                let grad = grads
                    .get(&var)
                    .expect("every discriminator parameter has a gradient");
                let (expected, key) = (&g[&key(&name)], key(&name));
                if dtype == DType::F64 {
                    assert_close(grad, expected, tol.grad, &key);
                } else {
                    // Relative to the largest gradient entry of this discriminator (see module doc).
                    let err = max_abs(&(grad.to_dtype(DType::F64).unwrap() - expected).unwrap());
                    eprintln!("{key}: err / scale {:.3e}", err / scale);
                    assert!(
                        err <= tol.grad * scale,
                        "{key}: {err:.3e} > {:.1e} · {scale:.3e}",
                        tol.grad
                    );
                }
            }
            assert_state(d, &g, &format!("step{step}.{which}"), tol.value);
        }

        // The generator term through the frozen discriminators, gradients into the policy latents.
        let pc = Var::from_tensor(&pc).unwrap();
        let pr = Var::from_tensor(&pr).unwrap();
        let losses = generator_losses(&mut plus, &mut minus, &pc, &pr, mc, mr, &means).unwrap();
        let loss = losses.mean(0).unwrap();
        let expected = &g[&format!("gen{step}.loss")];
        assert_close(
            &scalar(&loss),
            expected,
            tol.value,
            &format!("gen {step} L_G"),
        );
        let grads = loss.backward().unwrap();
        for (name, var) in [("policy_chosen", &pc), ("policy_rejected", &pr)] {
            let key = format!("gen{step}.grad.{name}");
            assert_close(grads.get(var).unwrap(), &g[&key], tol.grad, &key);
        }
        for (_, var) in plus.named_vars().iter().chain(&minus.named_vars()) {
            assert!(
                grads.get(var).is_none(),
                "L_G must not reach the discriminators"
            );
        }
    }
}

#[test]
fn discriminator_step_and_generator_loss_match_pytorch_f64() {
    objective_matches(DType::F64);
}

#[test]
fn discriminator_step_and_generator_loss_match_pytorch_f32() {
    objective_matches(DType::F32);
}
