//! `ganpo bench` on the tiny shape: the report has every field, its numbers are consistent with
//! each other (phases within the step, overhead = GANPO / DPO step time, finite GFLOP/s), and the
//! shapes and FLOP counts behind it are right. No timing thresholds: these run on shared CPUs.

use std::process::Command;

use candle_core::Device;
use ganpo::train::phases::PhaseTimes;
use ganpo_cli::bench::batch::synthetic_batch;
use ganpo_cli::bench::flops::{decoder_forward_per_token, step_flops};
use ganpo_cli::bench::{BenchConfig, BenchReport, BenchShape, ModelSource, run_bench};

#[test]
fn bench_cli_writes_a_consistent_report_for_dpo_and_ganpo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .args([
            "bench",
            "--shape",
            "tiny",
            "--batch-pairs",
            "2",
            "--seq-len",
            "32",
            "--warmup",
            "1",
            "--steps",
            "1",
            "--losses",
            "dpo,ganpo",
            "--threads",
            "2",
            "--output",
            path.to_str().unwrap(),
        ])
        .output()
        .expect("ganpo runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("GANPO overhead"), "{stdout}");

    // Every field is present (only `overrides` and `interleaved` have serde defaults, for the
    // PyTorch tool's reports).
    let text = std::fs::read_to_string(&path).unwrap();
    let report: BenchReport = serde_json::from_str(&text).unwrap();
    assert_eq!(report.tool, "ganpo");
    assert_eq!(report.model.source, "random:tiny");
    assert_eq!(report.threads, 2);
    assert_eq!(
        (report.batch_pairs, report.seq_len, report.prompt_len),
        (2, 32, 16)
    );
    assert_eq!(report.tokens_per_step, 2 * 2 * 32);
    assert!(!report.interleaved);
    assert_eq!(report.matmul.len(), 3);
    assert!(report.matmul_peak_gflops.is_finite() && report.matmul_peak_gflops > 0.0);
    assert_eq!(
        report.modes.keys().collect::<Vec<_>>(),
        ["dpo", "ganpo"],
        "both modes reported"
    );

    for (name, mode) in &report.modes {
        assert_eq!(mode.step_s_all.len(), 1);
        let ganpo = name == "ganpo";
        for phase in PhaseTimes::ALL {
            let t = mode.phases_s.get(phase);
            let used = ganpo || phase != ganpo::train::phases::Phase::DiscriminatorUpdate;
            assert!(
                if used { t > 0.0 } else { t == 0.0 },
                "{name}: {phase:?} took {t} s"
            );
        }
        // The phases partition part of the step; the rest is `other`.
        assert!(
            mode.phases_s.total() <= mode.step_s + 1e-3,
            "{name}: phases {} s > step {} s",
            mode.phases_s.total(),
            mode.step_s
        );
        assert!((mode.phases_s.total() + mode.other_s - mode.step_s).abs() < 1e-9);
        assert!(mode.gflops.is_finite() && mode.gflops > 0.0, "{name}");
        assert!(mode.fraction_of_peak.is_finite() && mode.fraction_of_peak > 0.0);
        assert!((mode.tokens_per_s * mode.step_s - 128.0).abs() < 1e-6);
        assert!(mode.loss.is_finite());
        if cfg!(target_os = "linux") {
            assert!(mode.peak_rss_mib.is_some_and(|m| m > 0.0));
        }
    }
    let (dpo, ganpo) = (&report.modes["dpo"], &report.modes["ganpo"]);
    let overhead = report.ganpo_overhead.expect("both modes ran");
    assert!((overhead - ganpo.step_s / dpo.step_s).abs() < 1e-12);
    assert!(ganpo.gflop_per_step > dpo.gflop_per_step);
    // At policy = reference the DPO loss is ln 2 on the first step; the timed step is the second.
    assert!(
        (dpo.loss - std::f64::consts::LN_2).abs() < 0.05,
        "{}",
        dpo.loss
    );
}

/// `--interleave` builds both trainers, then alternates their timed steps; the process's one peak
/// RSS is every mode's.
#[test]
fn interleaved_bench_alternates_the_losses_timed_steps() {
    let mut config = BenchConfig::new(ModelSource::Random("tiny".parse().unwrap()));
    config.batch_pairs = 1;
    config.seq_len = 16;
    config.steps = 2;
    config.interleave = true;
    let mut lines = Vec::new();
    let report = run_bench(&config, |line| lines.push(line.to_string())).unwrap();
    let order: Vec<&str> = lines
        .iter()
        .filter(|l| l.contains(": step "))
        .map(|l| l.rsplitn(3, ' ').nth(2).unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "dpo: step 1/2",
            "ganpo: step 1/2",
            "dpo: step 2/2",
            "ganpo: step 2/2"
        ],
        "{lines:?}"
    );
    let warmups = lines.iter().position(|l| l.contains("ganpo: warm-up"));
    let first_step = lines.iter().position(|l| l.contains(": step "));
    assert!(warmups < first_step, "both warm up before any timed step");
    assert!(report.interleaved);
    assert!(report.table().contains("interleaved"));
    let (dpo, ganpo) = (&report.modes["dpo"], &report.modes["ganpo"]);
    assert_eq!((dpo.step_s_all.len(), ganpo.step_s_all.len()), (2, 2));
    assert_eq!(dpo.peak_rss_mib, ganpo.peak_rss_mib);
    let overhead = report.ganpo_overhead.unwrap();
    assert!((overhead - ganpo.step_s / dpo.step_s).abs() < 1e-12);
}

#[test]
fn bench_rejects_unknown_losses_and_shapes() {
    for args in [["--losses", "ppo"], ["--shape", "gpt5"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ganpo"))
            .arg("bench")
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(args[1]), "{stderr}");
    }
}

#[test]
fn smollm2_shape_matches_the_published_model() {
    let config = BenchShape::Smollm2_135m.model_config().unwrap();
    // docs/smollm2.md: 134,515,008 parameters loaded from the real GGUF (tied head counted once).
    assert_eq!(config.num_parameters(), 134_515_008);
    assert_eq!(
        (
            config.num_hidden_layers,
            config.hidden_size,
            config.vocab_size
        ),
        (30, 576, 49152)
    );
    assert_eq!(
        (config.num_attention_heads, config.num_key_value_heads),
        (9, 3)
    );
}

#[test]
fn smollm2_360m_shape_has_the_published_parameter_count() {
    let config = BenchShape::Smollm2_360m.model_config().unwrap();
    // HuggingFaceTB/SmolLM2-360M: 361,821,120 parameters (tied head counted once).
    assert_eq!(config.num_parameters(), 361_821_120);
    assert_eq!(
        (config.num_attention_heads, config.num_key_value_heads),
        (15, 5)
    );
    assert_eq!(
        "smollm2-360m".parse::<BenchShape>().unwrap(),
        BenchShape::Smollm2_360m
    );
}

#[test]
fn flop_count_follows_the_documented_convention() {
    let config = BenchShape::Smollm2_135m.model_config().unwrap();
    // Matmul weights: every parameter but the norms and the embedding, plus the tied LM head.
    let (d, v, l) = (576.0, 49152.0, 30.0);
    let matmul_weights = config.num_parameters() as f64 - v * d - (2.0 * l + 1.0) * d + v * d;
    let attention = l * 4.0 * 256.0 * (9.0 * 64.0);
    assert_eq!(
        decoder_forward_per_token(&config, 256),
        2.0 * matmul_weights + attention
    );
    let dpo = step_flops(&config, None, 4, 256);
    assert_eq!(dpo.policy_backward, 2.0 * dpo.policy_forward);
    assert_eq!(dpo.reference_forward, dpo.policy_forward);
    assert_eq!(dpo.discriminator_update + dpo.generator, 0.0);
    let disc = BenchShape::Smollm2_135m.discriminator();
    let ganpo = step_flops(&config, Some((&disc, 1)), 4, 256);
    let two = step_flops(&config, Some((&disc, 2)), 4, 256);
    assert_eq!(two.discriminator_update, 2.0 * ganpo.discriminator_update);
    // Six scores × (forward + backward) vs two scores × (forward + activation backward).
    assert!((ganpo.discriminator_update / ganpo.generator - 4.5).abs() < 1e-12);
    // About 2.35 TFLOP for the DPO step at the target shape (docs/performance.md).
    assert!((dpo.total() / 1e12 - 2.35).abs() < 0.01, "{}", dpo.total());
}

#[test]
fn synthetic_batch_shares_prompts_and_masks_them_out() {
    let b = synthetic_batch(3, 10, 4, 50, 7, &Device::Cpu).unwrap();
    assert_eq!(b.input_ids.dims(), [6, 10]);
    let ids: Vec<Vec<u32>> = b.input_ids.to_vec2().unwrap();
    let mask: Vec<Vec<f32>> = b.loss_mask.to_vec2().unwrap();
    let attention: Vec<Vec<u32>> = b.attention_mask.to_vec2().unwrap();
    for i in 0..3 {
        assert_eq!(ids[i][..4], ids[i + 3][..4], "pair {i} shares its prompt");
        assert_ne!(ids[i][4..], ids[i + 3][4..], "pair {i} has two completions");
    }
    for row in 0..6 {
        assert_eq!(mask[row], [0., 0., 0., 0., 1., 1., 1., 1., 1., 1.]);
        assert!(attention[row].iter().all(|&a| a == 1));
        assert!(ids[row].iter().all(|&t| t < 50));
    }
    // Same seed, same batch: tools/bench/torch_step.py draws these ids with the same SplitMix64.
    let again = synthetic_batch(3, 10, 4, 50, 7, &Device::Cpu).unwrap();
    assert_eq!(again.input_ids.to_vec2::<u32>().unwrap(), ids);
    // SplitMix64(7) mod 50, computed independently in Python (tools/bench/torch_step.py's port).
    assert_eq!(ids[0][..4], [37, 4, 46, 3]);
    assert!(synthetic_batch(1, 10, 10, 50, 7, &Device::Cpu).is_err());
}
