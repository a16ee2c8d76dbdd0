//! Times one GANPO discriminator update (six training-mode scores, their backward, two AdamW
//! steps) and the generator term (forward + backward through the frozen discriminators) on
//! latents of SmolLM2-135M's width, the authors' discriminator and `ganpo bench`'s default batch
//! (4 pairs × 256 tokens). Not a test: run it under `perf record` to see where the time goes.
//!
//! `cargo bench --bench discriminator -- [repeats]` (default 3; 2 compute threads unless
//! `RAYON_NUM_THREADS` is set).

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use ganpo::ganpo::{
    Discriminator, DiscriminatorConfig, Latents, RunningMeans, discriminator_step, generator_losses,
};
use ganpo::optim::{AdamW, AdamWConfig};

/// The `ganpo` binary's allocator, so the harness measures what a training step does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ganpo::Result<()> {
    let repeats: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3);
    let threads = std::env::var_os("RAYON_NUM_THREADS").is_none().then_some(2);
    // SAFETY: set before any thread pool starts; this thread joins the global pool.
    unsafe { ganpo::cpu::configure_compute_pools(threads)? };
    ganpo::cpu::init_compute_threads();
    let (b, t, d) = (4, 256, 576);
    let dev = Device::Cpu;
    let config = DiscriminatorConfig::default();
    let mut plus = Discriminator::new(&config, d, 1, DType::F32, &dev)?;
    let mut minus = Discriminator::new(&config, d, 2, DType::F32, &dev)?;
    let mut opt_plus = AdamW::new(&plus.named_vars(), AdamWConfig::default())?;
    let mut opt_minus = AdamW::new(&minus.named_vars(), AdamWConfig::default())?;
    let latent = || Tensor::randn(0f32, 1f32, (b, t, d), &dev);
    let (pc, pr, rc, rr) = (latent()?, latent()?, latent()?, latent()?);
    let mask = Tensor::ones((b, t), DType::F32, &dev)?;
    let mut means = RunningMeans::new(RunningMeans::AUTHORS_MOMENTUM)?;
    for i in 0..repeats + 1 {
        let started = Instant::now();
        let latents = Latents {
            policy_chosen: &pc,
            policy_rejected: &pr,
            ref_chosen: &rc,
            ref_rejected: &rr,
            chosen_mask: &mask,
            rejected_mask: &mask,
        };
        let step = discriminator_step(&mut plus, &mut minus, &latents, &mut means)?;
        let forward = started.elapsed().as_secs_f64();
        let loss = (step.losses.plus.mean_all()? + step.losses.minus.mean_all()?)?;
        let mut grads = loss.backward()?;
        plus.take_grads(&mut grads)?;
        minus.take_grads(&mut grads)?;
        let backward = started.elapsed().as_secs_f64() - forward;
        opt_plus.step(&grads, 1e-6)?;
        opt_minus.step(&grads, 1e-6)?;
        let update = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let (vc, vr) = (Var::from_tensor(&pc)?, Var::from_tensor(&pr)?);
        let lg = generator_losses(
            &mut plus,
            &mut minus,
            vc.as_tensor(),
            vr.as_tensor(),
            &mask,
            &mask,
            &means,
        )?
        .mean_all()?;
        let gen_forward = started.elapsed().as_secs_f64();
        lg.backward()?;
        let generator = started.elapsed().as_secs_f64();
        println!(
            "{}: discriminator update {update:.3} s (forward {forward:.3}, backward {backward:.3}); generator term {generator:.3} s (forward {gen_forward:.3})",
            if i == 0 { "warm-up" } else { "timed" }
        );
    }
    Ok(())
}
