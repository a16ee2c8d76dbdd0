//! GGUF loading against fixtures written by `tools/golden/gguf_fixtures.py` with llama.cpp's
//! `gguf` Python package: dequantization of every storage type, a tiny Llama (F32 and Q8_0) and
//! Qwen2 converted the way `convert_hf_to_gguf.py` does, tokenizers rebuilt from metadata, and
//! clear errors for broken files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use ganpo::Error;
use ganpo::logps::sequence_logps;
use ganpo::model::gguf::{GgufFile, load_gguf, tokenizer_from_gguf};
use ganpo::model::{LoadedModel, Trainability, load_model};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(rel)
}

fn load(path: &Path) -> LoadedModel {
    load_model(path, Trainability::Frozen, DType::F32, &Device::Cpu)
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

fn golden(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

/// Largest `|a − b| / max(|b|, 1)` over all elements.
fn max_rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    a.iter()
        .zip(&b)
        .map(|(x, y)| f64::from((x - y).abs()) / f64::from(y.abs()).max(1.0))
        .fold(0.0, f64::max)
}

/// The padded batch of `models/llama/golden.safetensors`: ids, attention mask, loss mask.
fn llama_inputs() -> (Tensor, Tensor, Tensor, HashMap<String, Tensor>) {
    let g = golden(&fixture("models/llama/golden.safetensors"));
    let ids = g["input_ids"].to_dtype(DType::U32).unwrap();
    let mask = g["attention_mask"].to_dtype(DType::U32).unwrap();
    let loss = g["loss_mask"].to_dtype(DType::F32).unwrap();
    (ids, mask, loss, g)
}

/// gguf.quants.dequantize computes the same f32 products as candle (scale × quant + min, in the
/// same order, no fused multiply-add), so the values must agree bit for bit.
#[test]
fn dequantizes_every_type_like_the_gguf_package() {
    let expected = golden(&fixture("gguf/dequant_expected.safetensors"));
    let mut file = GgufFile::open(&fixture("gguf/dequant.gguf")).unwrap();
    let names = [
        "F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K",
        "Q5_K", "Q6_K",
    ];
    assert_eq!(expected.len(), names.len());
    for name in names {
        let got = file.dequantize(name).unwrap();
        let want = &expected[name];
        assert_eq!(got.dims(), &[3, 256], "{name}");
        let err = max_rel_err(&got, want);
        assert_eq!(err, 0.0, "{name}: max relative error {err}");
        // Not all zeros: the fixture exercises real values.
        let spread: f32 = want.abs().unwrap().max_all().unwrap().to_scalar().unwrap();
        assert!(spread > 0.01, "{name}: degenerate fixture");
    }
}

/// The F32 GGUF holds the Hugging Face weights bit for bit once the Q/K permutation is undone, so
/// the config must be identical, every parameter equal and the logits equal (1e-5 relative is
/// the bar; the computation is the same, so the measured error is 0).
#[test]
fn f32_llama_gguf_equals_the_hugging_face_directory() {
    let hf = load(&fixture("models/llama"));
    let gg = load(&fixture("gguf/llama_f32.gguf"));
    assert_eq!(gg.model.config(), hf.model.config());
    let hf_params: HashMap<_, _> = hf.model.named_parameters().iter().cloned().collect();
    assert_eq!(gg.model.named_parameters().len(), hf_params.len());
    for (name, t) in gg.model.named_parameters() {
        let err = max_rel_err(t, &hf_params[name]);
        assert_eq!(err, 0.0, "{name} differs (relative error {err})");
    }
    let (ids, mask, _, golden) = llama_inputs();
    let a = gg.model.forward(&ids, &mask).unwrap().logits;
    let b = hf.model.forward(&ids, &mask).unwrap().logits;
    assert!(max_rel_err(&a, &b) <= 1e-5);
    // And against transformers itself (measured 2.0e-6; 1e-4 allows for f32 summation order).
    assert!(max_rel_err(&a, &golden["logits"]) <= 1e-4);
}

/// Q8_0 weights: transformers run on the values `gguf.quants.dequantize` gives, so only f32
/// summation order differs (measured 2.4e-6; 1e-4 as for the other transformers goldens).
#[test]
fn q8_0_llama_gguf_matches_transformers_on_the_dequantized_weights() {
    let gg = load(&fixture("gguf/llama_q8_0.gguf"));
    let want = golden(&fixture("gguf/llama_q8_0_golden.safetensors"));
    let (ids, mask, loss, f32_golden) = llama_inputs();
    let logits = gg.model.forward(&ids, &mask).unwrap().logits;
    let err = max_rel_err(&logits, &want["logits"]);
    assert!(err <= 1e-4, "logits: {err}");
    let logps = sequence_logps(&logits, &ids, &loss).unwrap().logps;
    assert!(max_rel_err(&logps, &want["logps"]) <= 1e-4);
    // Quantization really happened: the logits moved away from the F32 model's (by ~0.18).
    assert!(max_rel_err(&logits, &f32_golden["logits"]) > 1e-2);
}

/// Qwen2 (no permutation, q/k/v biases, tied head absent from the file).
#[test]
fn f32_qwen2_gguf_equals_the_hugging_face_directory() {
    let hf = load(&fixture("models/qwen2_tied"));
    let gg = load(&fixture("gguf/qwen2_tied_f32.gguf"));
    assert_eq!(gg.model.config(), hf.model.config());
    let (ids, mask, _, _) = llama_inputs();
    let a = gg.model.forward(&ids, &mask).unwrap().logits;
    let b = hf.model.forward(&ids, &mask).unwrap().logits;
    assert_eq!(max_rel_err(&a, &b), 0.0);
}

/// The tokenizer rebuilt from GGUF metadata gives the ids Hugging Face `tokenizers` gives with
/// the equivalent tokenizer.json (pre-tokenizer as in each model family's own file), and for the
/// SentencePiece vocabulary the ids `sentencepiece` itself gives.
#[test]
fn gguf_tokenizers_match_reference_tokenizers() {
    let text = std::fs::read_to_string(fixture("gguf/tokenizer_cases.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = cases.as_object().unwrap();
    assert_eq!(cases.len(), 5);
    for (pre, samples) in cases {
        let file = GgufFile::open(&fixture(&format!("gguf/tok_{pre}.gguf"))).unwrap();
        let tok = tokenizer_from_gguf(&file).unwrap();
        let samples = samples.as_array().unwrap();
        assert!(samples.len() >= 9, "{pre}");
        for case in samples {
            let s = case["text"].as_str().unwrap();
            let ids =
                |key: &str| -> Vec<u32> { serde_json::from_value(case[key].clone()).unwrap() };
            assert_eq!(tok.encode(s, true).unwrap(), ids("ids"), "{pre}: {s:?}");
            let plain = ids("ids_plain");
            assert_eq!(tok.encode(s, false).unwrap(), plain, "{pre}: {s:?}");
            assert_eq!(tok.decode(&plain, false).unwrap(), s, "{pre}: round trip");
        }
    }
}

/// Special tokens, control-token handling and chat template of the byte-level vocabularies.
#[test]
fn gguf_tokenizer_special_tokens() {
    for pre in ["gpt-2", "smollm", "llama-bpe", "qwen2"] {
        let file = GgufFile::open(&fixture(&format!("gguf/tok_{pre}.gguf"))).unwrap();
        let tok = tokenizer_from_gguf(&file).unwrap();
        let special = tok.special_tokens();
        assert_eq!(special.bos.as_ref().unwrap().text, "<|im_start|>");
        assert_eq!(special.eos.as_ref().unwrap().text, "<|im_end|>");
        assert_eq!(special.unk.as_ref().unwrap().text, "<|endoftext|>");
        assert!(tok.chat_template().is_some());
        // Control tokens are special (skipped when decoding), user-defined ones are not.
        let ids = tok.encode("<|im_start|>a<think>", false).unwrap();
        assert_eq!(tok.decode(&ids, true).unwrap(), "a<think>", "{pre}");
    }
    let file = GgufFile::open(&fixture("gguf/tok_llama-spm.gguf")).unwrap();
    let tok = tokenizer_from_gguf(&file).unwrap();
    let special = tok.special_tokens();
    assert_eq!(special.bos.as_ref().unwrap().text, "<s>");
    assert_eq!(special.unk.as_ref().unwrap().text, "<unk>");
    // SentencePiece vocabularies add BOS unless the file says otherwise, as llama.cpp does.
    assert_eq!(
        tok.encode("hi", true).unwrap()[0],
        special.bos.as_ref().unwrap().id
    );
}

fn expect_model_error(result: ganpo::Result<LoadedModel>, path: &Path, needle: &str) {
    match result {
        Err(Error::Model { path: p, message }) => {
            assert_eq!(p, path);
            assert!(
                message.contains(needle),
                "expected {needle:?} in the message, got: {message}"
            );
        }
        Err(other) => panic!("expected a model error, got {other}"),
        Ok(_) => panic!("expected an error mentioning {needle:?}"),
    }
}

/// A copy of `llama_f32.gguf` with `edit` applied, written into `dir`.
fn edited(dir: &Path, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(fixture("gguf/llama_f32.gguf")).unwrap();
    edit(&mut bytes);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Byte position just after the first occurrence of `needle`.
fn after(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + needle.len())
        .unwrap_or_else(|| panic!("{:?} not found", String::from_utf8_lossy(needle)))
}

#[test]
fn broken_files_are_model_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let load = |p: &Path| load_gguf(p, Trainability::Frozen, DType::F32, &Device::Cpu);

    let p = edited(d, "short_data.gguf", |b| b.truncate(b.len() - 1000));
    expect_model_error(load(&p), &p, "truncated file: tensor");

    let p = edited(d, "short_header.gguf", |b| b.truncate(200));
    expect_model_error(load(&p), &p, "cannot read the GGUF header");

    let p = edited(d, "magic.gguf", |b| b[..4].copy_from_slice(b"GGUX"));
    expect_model_error(load(&p), &p, "not a GGUF file");
    expect_model_error(
        load_model(&p, Trainability::Frozen, DType::F32, &Device::Cpu),
        &p,
        "bad magic",
    );

    // Tensor info after the name: n_dims (u32), dims (u64 each), type (u32), offset (u64).
    let p = edited(d, "iq2.gguf", |b| {
        let at = after(b, b"output_norm.weight") + 4 + 8;
        b[at..at + 4].copy_from_slice(&16u32.to_le_bytes());
    });
    expect_model_error(load(&p), &p, "unsupported tensor type 16 (IQ2_XXS)");

    let p = edited(d, "shape.gguf", |b| {
        let at = after(b, b"output_norm.weight") + 4;
        b[at..at + 8].copy_from_slice(&16u64.to_le_bytes());
    });
    expect_model_error(
        load(&p),
        &p,
        "tensor `output_norm.weight` (F32) has shape [16] but the metadata implies [32]",
    );

    // String value: type (u32 = 8), length (u64 = 5), then the bytes.
    let p = edited(d, "arch.gguf", |b| {
        let at = after(b, b"general.architecture") + 4 + 8;
        b[at..at + 5].copy_from_slice(b"bloom");
    });
    expect_model_error(
        load(&p),
        &p,
        "unsupported architecture `general.architecture = bloom`",
    );

    let p = edited(d, "spm.gguf", |b| {
        let at = after(b, b"tokenizer.ggml.model") + 4 + 8;
        b[at..at + 4].copy_from_slice(b"bert");
    });
    expect_model_error(
        load(&p),
        &p,
        "unsupported tokenizer `tokenizer.ggml.model = bert`",
    );

    // Metadata entries are (key, type u32, value): rename the u32 `llama.block_count` (17 bytes)
    // to `general.alignment` and set it to 0, which candle's reader divides by.
    let p = edited(d, "alignment.gguf", |b| {
        let at = after(b, b"llama.block_count");
        b[at - 17..at].copy_from_slice(b"general.alignment");
        b[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes());
    });
    expect_model_error(load(&p), &p, "corrupt GGUF header");

    let p = edited(d, "layers.gguf", |b| {
        let at = after(b, b"llama.block_count") + 4;
        b[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    });
    expect_model_error(load(&p), &p, "does not fit the metadata (2 layers)");
}

/// A model loaded from GGUF saves in Hugging Face layout (weights, config.json, tokenizer files)
/// and loads back with the same config, tokenizer and logits.
#[test]
fn gguf_model_saves_as_a_hugging_face_directory() {
    let gg = load(&fixture("gguf/llama_f32.gguf"));
    let dir = tempfile::tempdir().unwrap();
    ganpo::model::save_hf(&gg.model, &gg.tokenizer, None, dir.path()).unwrap();
    let back = load(dir.path());
    assert_eq!(back.model.config(), gg.model.config());
    let text = "abcd ab!cd <s>xyz</s>";
    assert_eq!(
        back.tokenizer.encode(text, true).unwrap(),
        gg.tokenizer.encode(text, true).unwrap()
    );
    assert_eq!(
        back.tokenizer.special_tokens(),
        gg.tokenizer.special_tokens()
    );
    let (ids, mask, _, _) = llama_inputs();
    let a = gg.model.forward(&ids, &mask).unwrap().logits;
    let b = back.model.forward(&ids, &mask).unwrap().logits;
    assert_eq!(max_rel_err(&a, &b), 0.0);
}
