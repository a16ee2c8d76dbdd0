//! Unit checks of the pieces: config, fresh initialization, spectral norm, BCE and the losses'
//! orderings, running means, dropout masks, save/load.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use ganpo::Error;
use ganpo::ganpo::losses::{bce_with_logits, discriminator_losses, generator_losses};
use ganpo::ganpo::rng::DropoutRng;
use ganpo::ganpo::spectral_norm::SpectralLinear;
use ganpo::ganpo::{
    Baselines, Discriminator, DiscriminatorConfig, DiscriminatorScores, Mode, RunningMeans,
};

fn vec1(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn config_defaults_are_the_authors_and_parsing_is_strict() {
    let c: DiscriminatorConfig = toml::from_str("").unwrap();
    assert_eq!(
        (c.width, c.depth, c.heads, c.max_positions),
        (512, 2, 8, 2048)
    );
    assert_eq!(c.dropout, 0.1);
    let c: DiscriminatorConfig = toml::from_str("depth = 3\ndropout = 0.0").unwrap();
    assert_eq!((c.depth, c.dropout, c.width), (3, 0.0, 512));
    assert!(toml::from_str::<DiscriminatorConfig>("widht = 256").is_err());
    for bad in [
        "heads = 7",
        "dropout = 1.0",
        "width = 0",
        "max_positions = 0",
    ] {
        let c: DiscriminatorConfig = toml::from_str(bad).unwrap();
        assert!(matches!(c.validate(), Err(Error::Config(_))), "{bad}");
    }
}

#[test]
fn fresh_discriminator_is_initialized_as_torch_does() {
    // The paper's size: about 8.8 M parameters for d = 2304 with the default config.
    let cfg = DiscriminatorConfig::default();
    let d = Discriminator::new(&cfg, 2304, 0, DType::F32, &Device::Cpu).unwrap();
    assert_eq!(d.num_parameters(), 8_796_673);

    let cfg = DiscriminatorConfig {
        width: 32,
        depth: 3,
        heads: 4,
        dropout: 0.1,
        max_positions: 64,
    };
    let d = Discriminator::new(&cfg, 16, 5, DType::F64, &Device::Cpu).unwrap();
    let t = d.tensors();
    let get = |k: &str| vec1(&t[k]);
    // TransformerEncoder deep-copies one layer; the authors re-initialize only nn.Linear modules.
    let layer = |i: usize, n: &str| get(&format!("transformer.layers.{i}.{n}"));
    for i in 1..3 {
        assert_eq!(
            layer(i, "self_attn.in_proj_weight"),
            layer(0, "self_attn.in_proj_weight")
        );
        for n in [
            "linear1.weight",
            "linear2.weight",
            "self_attn.out_proj.weight",
        ] {
            assert_ne!(layer(i, n), layer(0, n), "{n}");
        }
    }
    for (name, value) in &t {
        let v = vec1(value);
        if name.ends_with("weight_u") || name.ends_with("weight_v") {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "{name}: ‖·‖ = {norm}");
        } else if name.ends_with("bias") {
            assert!(v.iter().all(|&x| x == 0.0), "{name}");
        } else if name.contains("norm") {
            assert!(v.iter().all(|&x| x == 1.0), "{name}");
        } else if name == "pos_embedding" {
            let std = (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
            assert!((std - 0.02).abs() < 0.002, "pos_embedding std {std}");
        } else {
            let dims = value.dims();
            let bound = (6.0 / (dims[0] + dims[1]) as f64).sqrt();
            let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(
                max <= bound && max > 0.9 * bound,
                "{name}: max {max}, bound {bound}"
            );
        }
    }
}

#[test]
fn power_iteration_converges_to_the_largest_singular_value() {
    // WᵀW = [[10, 6], [6, 10]]: singular values 4 and 2.
    let dev = Device::Cpu;
    let w =
        Var::from_tensor(&Tensor::new(&[[3f64, 1.], [1., 3.], [0., 0.]], &dev).unwrap()).unwrap();
    let b = Var::from_tensor(&Tensor::zeros(3, DType::F64, &dev).unwrap()).unwrap();
    let u = Tensor::new(&[0.6f64, 0.0, 0.8], &dev).unwrap();
    let v = Tensor::new(&[1f64, 0.0], &dev).unwrap();
    let mut layer = SpectralLinear::new(w, b, u, v).unwrap();
    let sigma = |l: &SpectralLinear| vec1(&l.sigma(Mode::Eval).unwrap())[0];
    assert!(
        (sigma(&layer) - 1.8).abs() < 1e-12,
        "σ from the stored u, v: uᵀWv = 0.6·3"
    );
    let x = Tensor::new(&[[1f64, -1.]], &dev).unwrap();
    for _ in 0..40 {
        layer.forward(&x, Mode::Train).unwrap();
    }
    assert!((sigma(&layer) - 4.0).abs() < 1e-9, "σ = {}", sigma(&layer));
    // W/σ maps the top right-singular vector (1, 1)/√2 to a unit vector.
    let y = layer
        .forward(&Tensor::new(&[[1f64, 1.]], &dev).unwrap(), Mode::Eval)
        .unwrap();
    let norm = vec1(&y).iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 2f64.sqrt()).abs() < 1e-9, "{norm}");
}

#[test]
fn bce_is_exact_at_zero_and_finite_at_extremes() {
    let z = Var::from_tensor(&Tensor::zeros(2, DType::F64, &Device::Cpu).unwrap()).unwrap();
    for (target, slope) in [(1.0, -0.5), (0.0, 0.5)] {
        let loss = bce_with_logits(z.as_tensor(), target).unwrap();
        assert!(
            vec1(&loss)
                .iter()
                .all(|l| (l - std::f64::consts::LN_2).abs() < 1e-15)
        );
        let grads = loss.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            vec1(grads.get(&z).unwrap()),
            [slope, slope],
            "target {target}"
        );
    }
    let z = Tensor::new(&[1000f32, -1000.], &Device::Cpu).unwrap();
    assert_eq!(vec1(&bce_with_logits(&z, 1.0).unwrap()), [0.0, 1000.0]);
    assert_eq!(vec1(&bce_with_logits(&z, 0.0).unwrap()), [1000.0, 0.0]);
}

fn scores(values: [f64; 6]) -> (DiscriminatorScores, Vec<Var>) {
    let vars: Vec<Var> = values
        .iter()
        .map(|&v| Var::from_tensor(&Tensor::new(&[v], &Device::Cpu).unwrap()).unwrap())
        .collect();
    let t = |i: usize| vars[i].as_tensor().clone();
    let s = DiscriminatorScores {
        plus_policy: t(0),
        plus_ref_chosen: t(1),
        plus_ref_rejected: t(2),
        minus_policy: t(3),
        minus_ref_chosen: t(4),
        minus_ref_rejected: t(5),
    };
    (s, vars)
}

#[test]
fn losses_encode_the_papers_orderings() {
    // At equilibrium (each discriminator scores every group alike) every BCE term is ln 2.
    let values = [0.3, 0.3, 0.3, -0.4, -0.4, -0.4];
    let (s, vars) = scores(values);
    let means = Baselines::batch_means(&s).unwrap();
    let losses = discriminator_losses(&s, &means).unwrap();
    let ln2 = std::f64::consts::LN_2;
    assert!((vec1(&losses.plus)[0] - ln2).abs() < 1e-15);
    assert!((vec1(&losses.minus)[0] - ln2).abs() < 1e-15);
    let g = generator_losses(&s.plus_policy, &s.minus_policy, &means).unwrap();
    assert!((vec1(&g)[0] - ln2).abs() < 1e-15);

    // D⁺ wants ref-chosen > policy-chosen > ref-rejected; D⁻ ref-rejected > policy-rejected >
    // ref-chosen: a loss falls when a score moves in its favoured direction.
    let sign = |loss: &Tensor| {
        let grads = loss.sum_all().unwrap().backward().unwrap();
        let g = |i: usize| grads.get(&vars[i]).map_or(0.0, |g| vec1(g)[0]);
        let sign = |x: f64| if x == 0.0 { 0.0 } else { x.signum() };
        (0..6).map(|i| sign(g(i))).collect::<Vec<_>>()
    };
    // plus_policy appears once as "fake" (vs ref-chosen) and once as "real" (vs ref-rejected): the
    // two terms cancel at equilibrium.
    assert_eq!(sign(&losses.plus), [0.0, -1.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(sign(&losses.minus), [0.0, 0.0, 0.0, 0.0, 1.0, -1.0]);
    assert_eq!(sign(&g), [-1.0, 0.0, 0.0, -1.0, 0.0, 0.0]);
}

#[test]
fn running_means_copy_first_then_average_and_round_trip() {
    let b = |x: f64| Baselines {
        plus_policy: x,
        plus_ref_chosen: 2.0 * x,
        plus_ref_rejected: 3.0 * x,
        minus_policy: -x,
        minus_ref_chosen: -2.0 * x,
        minus_ref_rejected: -3.0 * x,
    };
    let mut means = RunningMeans::new(0.9).unwrap();
    assert!(means.get().is_none() && means.require().is_err());
    assert_eq!(means.update(&b(1.0)), b(1.0));
    let after = means.update(&b(11.0));
    assert!(
        (after.plus_policy - 2.0).abs() < 1e-12 && (after.minus_ref_rejected + 6.0).abs() < 1e-12
    );
    let json = serde_json::to_string(&means).unwrap();
    let restored: RunningMeans = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, means);
    assert!(serde_json::from_str::<RunningMeans>(r#"{"momentum":1.5,"values":null}"#).is_err());
    assert!(RunningMeans::new(1.0).is_err() && RunningMeans::new(-0.1).is_err());
}

#[test]
fn dropout_masks_are_seeded_and_keep_the_right_fraction() {
    let mut a = DropoutRng::new(7);
    let m1 = a.keep_mask(200_000, 0.1);
    let kept = m1.iter().map(|&m| m as f64).sum::<f64>() / m1.len() as f64;
    assert!((kept - 0.9).abs() < 0.005, "kept {kept}");
    let m2 = a.keep_mask(200_000, 0.1);
    assert_ne!(m1, m2, "successive masks differ");
    assert_eq!(
        DropoutRng::new(7).keep_mask(200_000, 0.1),
        m1,
        "same seed, same mask"
    );
    assert_ne!(DropoutRng::new(8).keep_mask(200_000, 0.1), m1);
}

#[test]
fn save_and_load_round_trip_and_reject_mismatched_state() {
    let cfg = DiscriminatorConfig {
        width: 16,
        depth: 1,
        heads: 2,
        dropout: 0.0,
        max_positions: 8,
    };
    let d = Discriminator::new(&cfg, 8, 3, DType::F32, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disc.safetensors");
    d.save(&path).unwrap();
    let mut loaded = Discriminator::load(&path, &cfg, 8, 0, DType::F32, &Device::Cpu).unwrap();
    let (a, b) = (d.tensors(), loaded.tensors());
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(vec1(v), vec1(&b[k]), "{k}");
    }
    let mut missing: HashMap<_, _> = a.clone();
    missing.remove("head.0.weight_u");
    let mut extra = a.clone();
    extra.insert(
        "transformer.layers.1.norm1.bias".into(),
        a["head.0.bias"].clone(),
    );
    let mut reshaped = a.clone();
    reshaped.insert(
        "pos_embedding".into(),
        Tensor::zeros((1, 9, 16), DType::F32, &Device::Cpu).unwrap(),
    );
    for bad in [missing, extra, reshaped] {
        assert!(matches!(
            loaded.set_tensors(&bad),
            Err(Error::Checkpoint(_))
        ));
    }
    let deeper = DiscriminatorConfig { depth: 2, ..cfg };
    assert!(Discriminator::load(&path, &deeper, 8, 0, DType::F32, &Device::Cpu).is_err());
}
