//! Golden test: loading a Hugging Face tokenizer directory, encoding and decoding match transformers.
//!
//! tests/fixtures/tokenizer_bpe{,_legacy}/ and their golden.json are written by
//! tools/golden/tokenizer_bpe.py (a byte-level BPE trained with `tokenizers`, then loaded with
//! `AutoTokenizer.from_pretrained`). The generator's docstring lists what each directory exercises;
//! ids and texts are compared exactly.

use std::path::{Path, PathBuf};

use ganpo::Error;
use ganpo::tokenize::{Chat, Message, Tokenizer};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures")).join(name)
}

fn golden(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("golden.json")).expect("golden.json");
    serde_json::from_str(&text).expect("golden.json parses")
}

fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("id list")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

fn chat_messages(golden: &Value) -> Vec<Message> {
    serde_json::from_value(golden["messages"].clone()).expect("messages")
}

/// Encodings, decodings, special tokens and chat templates of `name` equal transformers'.
fn check_against_transformers(name: &str) -> Tokenizer {
    let dir = fixture(name);
    let golden = golden(&dir);
    let tok = Tokenizer::from_hf_dir(&dir).expect("fixture loads");
    assert_eq!(
        tok.vocab_size(),
        golden["vocab_size"].as_u64().unwrap() as usize
    );

    let special = tok.special_tokens();
    for (key, token) in [
        ("bos_token", &special.bos),
        ("eos_token", &special.eos),
        ("pad_token", &special.pad),
    ] {
        let token = token
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: {key} missing"));
        assert_eq!(token.text, golden["special_tokens"][key], "{name}: {key}");
        assert_eq!(
            u64::from(token.id),
            golden["special_token_ids"][key],
            "{name}: {key} id"
        );
    }
    assert_eq!(special.unk, None);

    let encodings = golden["encodings"].as_array().expect("encodings");
    assert_eq!(encodings.len(), 20);
    for case in encodings {
        let text = case["text"].as_str().unwrap();
        let add_special = case["add_special_tokens"].as_bool().unwrap();
        let expected = ids(&case["ids"]);
        let got = tok.encode(text, add_special).unwrap();
        assert_eq!(
            got, expected,
            "{name}: encode({text:?}, add_special_tokens={add_special})"
        );
        assert_eq!(
            tok.decode(&got, false).unwrap(),
            case["decoded"],
            "{name}: decode {got:?}"
        );
        assert_eq!(
            tok.decode(&got, true).unwrap(),
            case["decoded_skip_special"],
            "{name}: decode {got:?} skipping special tokens"
        );
    }
    // Each text comes with and without special tokens; what the former adds is what add_bos_token
    // and add_eos_token report.
    for pair in encodings.chunks(2) {
        let (with, without) = (ids(&pair[0]["ids"]), ids(&pair[1]["ids"]));
        let bos = special.bos.as_ref().map(|b| b.id);
        let prepends_bos = with.len() == without.len() + 1 && with.first().copied() == bos;
        assert_eq!(
            tok.add_bos_token(),
            prepends_bos,
            "{name}: add_bos_token vs {:?}",
            pair[0]["text"]
        );
        if !prepends_bos {
            assert_eq!(with, without, "{name}: only BOS is ever added");
        }
    }
    assert!(
        !tok.add_eos_token(),
        "{name}: no post-processor here appends EOS"
    );

    let messages = chat_messages(&golden);
    for case in golden["chats"].as_array().expect("chats") {
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let mut chat = Chat::from_messages(&messages, agp);
        if let Some(tools) = case["tools"].as_array() {
            chat = chat.with_tools(tools.clone());
        }
        let text = tok.apply_chat(&chat).unwrap();
        assert_eq!(
            text, case["text"],
            "{name}: chat text, tools={}",
            case["tools"]
        );
        // apply_chat_template(tokenize=True) encodes the text without adding special tokens.
        assert_eq!(
            tok.encode(&text, false).unwrap(),
            ids(&case["ids"]),
            "{name}: chat ids"
        );
    }
    tok
}

#[test]
fn bpe_tokenizer_matches_transformers() {
    let tok = check_against_transformers("tokenizer_bpe");
    // The post-processor prepends BOS although tokenizer_config.json says `add_bos_token: false`.
    assert!(tok.add_bos_token());
    assert_eq!(tok.config_json()["add_bos_token"], false);
    assert_eq!(
        tok.chat_templates()
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
        ["default", "tool_use"]
    );
}

#[test]
fn legacy_bpe_tokenizer_matches_transformers() {
    let tok = check_against_transformers("tokenizer_bpe_legacy");
    // No post-processor: no BOS, although tokenizer_config.json says `add_bos_token: true`.
    assert!(!tok.add_bos_token());
    assert_eq!(tok.config_json()["add_bos_token"], true);
    // special_tokens_map.json overrides the config's `bos_token: <pad>` (no added_tokens_decoder).
    assert_eq!(
        tok.special_tokens().bos.as_ref().unwrap().text,
        "<|begin_of_text|>"
    );
    // chat_template.jinja wins over the config's chat_template string.
    let source = tok.chat_template().unwrap().source();
    assert!(
        source.starts_with("{% for message in messages %}"),
        "{source}"
    );
}

#[test]
fn padding_and_truncation_in_tokenizer_json_are_switched_off() {
    let path = fixture("tokenizer_bpe").join("tokenizer.json");
    let raw = tokenizers::Tokenizer::from_file(&path).unwrap();
    assert!(raw.get_padding().is_some() && raw.get_truncation().is_some());
    assert_eq!(
        raw.encode("Hello", false).unwrap().get_ids().len(),
        8,
        "raw file pads"
    );
    let tok = Tokenizer::from_hf_dir(&fixture("tokenizer_bpe")).unwrap();
    assert!(tok.inner().get_padding().is_none() && tok.inner().get_truncation().is_none());
    let long = "A long sentence that has far more than eight tokens, so truncation would cut it.";
    assert!(tok.encode(long, true).unwrap().len() > 8);
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    tmp
}

fn tokenizer_error(dir: &Path) -> String {
    match Tokenizer::from_hf_dir(dir) {
        Err(Error::Tokenizer(message)) => message,
        other => panic!("expected a tokenizer error, got {other:?}"),
    }
}

#[test]
fn broken_tokenizer_files_name_the_file() {
    let tmp = copy_fixture("tokenizer_bpe");
    let dir = tmp.path();
    let config = dir.join("tokenizer_config.json");
    let original: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    let write_config = |edit: &dyn Fn(&mut Value)| {
        let mut value = original.clone();
        edit(&mut value);
        std::fs::write(&config, serde_json::to_string(&value).unwrap()).unwrap();
    };

    std::fs::write(&config, "{ not json").unwrap();
    assert!(tokenizer_error(dir).contains("tokenizer_config.json is not valid JSON"));

    write_config(&|v| v["chat_template"] = Value::from(3));
    let message = tokenizer_error(dir);
    assert!(
        message.contains("tokenizer_config.json") && message.contains("`chat_template` must be"),
        "{message}"
    );

    write_config(&|v| v["chat_template"] = Value::from("{% for m in messages %}"));
    let message = tokenizer_error(dir);
    assert!(
        message.contains("chat_template in") && message.contains("does not compile"),
        "{message}"
    );

    write_config(&|v| v["chat_template"] = serde_json::json!([{"name": "default"}]));
    assert!(tokenizer_error(dir).contains("needs string `name` and `template`"));

    write_config(&|v| v["eos_token"] = Value::from("<|not_in_vocab|>"));
    let message = tokenizer_error(dir);
    assert!(
        message.contains("eos_token `<|not_in_vocab|>`")
            && message.contains("tokenizer_config.json"),
        "{message}"
    );

    write_config(&|v| v["bos_token"] = Value::from(7));
    assert!(
        tokenizer_error(dir).contains("`bos_token` must be a string, an AddedToken object or null")
    );

    write_config(&|_| {});
    std::fs::write(dir.join("tokenizer.json"), "{\"version\": \"1.0\"}").unwrap();
    let message = tokenizer_error(dir);
    assert!(
        message.contains("cannot load") && message.contains("tokenizer.json"),
        "{message}"
    );

    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    assert!(tokenizer_error(dir).contains("no tokenizer.json in"));
}

#[test]
fn named_templates_without_default_are_reported() {
    let tmp = copy_fixture("tokenizer_bpe");
    let config = tmp.path().join("tokenizer_config.json");
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    value["chat_template"] =
        serde_json::json!([{"name": "rag", "template": "{{ documents | length }}"}]);
    std::fs::write(&config, serde_json::to_string(&value).unwrap()).unwrap();
    let tok = Tokenizer::from_hf_dir(tmp.path()).unwrap();
    assert!(tok.chat_template().is_none());
    let err = tok
        .apply_chat_template(&[Message::new("user", "x")], false)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("named [\"rag\"] but none called `default`"),
        "{err}"
    );
    let chat = Chat {
        documents: Some(vec![Value::from("d1"), Value::from("d2")]),
        ..Chat::from_messages(&[Message::new("user", "x")], false)
    };
    let rag = tok.chat_template_named("rag").unwrap();
    assert_eq!(rag.render_chat(&chat, tok.special_tokens()).unwrap(), "2");
}

#[test]
fn saved_tokenizer_reloads_with_the_same_behaviour() {
    let tok = Tokenizer::from_hf_dir(&fixture("tokenizer_bpe")).unwrap();
    let out = tempfile::tempdir().unwrap();
    tok.save_hf(out.path()).unwrap();
    let back = Tokenizer::from_hf_dir(out.path()).unwrap();
    assert_eq!(back.special_tokens(), tok.special_tokens());
    assert_eq!(back.add_bos_token(), tok.add_bos_token());
    let text = "Grüß dich! <|eot_id|> 你好";
    assert_eq!(
        back.encode(text, true).unwrap(),
        tok.encode(text, true).unwrap()
    );
    let names = |t: &Tokenizer| -> Vec<(String, String)> {
        t.chat_templates()
            .iter()
            .map(|(n, c)| (n.to_string(), c.source().to_owned()))
            .collect()
    };
    assert_eq!(names(&back), names(&tok));
}

#[test]
fn eos_appending_post_processor_is_detected() {
    use tokenizers::processors::template::TemplateProcessing;
    let tok = Tokenizer::from_hf_dir(&fixture("tokenizer_bpe")).unwrap();
    let eot = tok.token_to_id("<|eot_id|>").unwrap();
    let bos = tok.token_to_id("<|begin_of_text|>").unwrap();
    for (single, add_bos, add_eos) in [
        ("$A <|eot_id|>", false, true),
        ("<|begin_of_text|> $A <|eot_id|>", true, true),
        ("$A", false, false),
    ] {
        let processor = TemplateProcessing::builder()
            .try_single(single)
            .unwrap()
            .special_tokens(vec![("<|eot_id|>", eot), ("<|begin_of_text|>", bos)])
            .build()
            .unwrap();
        let mut inner = tok.inner().clone();
        inner.with_post_processor(Some(processor));
        let rebuilt = Tokenizer::from_parts(
            inner,
            tok.special_tokens().clone(),
            None,
            tok.config_json().clone(),
        );
        assert_eq!(
            (rebuilt.add_bos_token(), rebuilt.add_eos_token()),
            (add_bos, add_eos),
            "{single}"
        );
        let with = rebuilt.encode("Hello", true).unwrap();
        let without = rebuilt.encode("Hello", false).unwrap();
        assert_eq!(
            with.len(),
            without.len() + usize::from(add_bos) + usize::from(add_eos)
        );
    }
}

#[test]
fn model_fixture_tokenizers_load_with_their_special_tokens() {
    let mut loaded = 0;
    for entry in std::fs::read_dir(fixture("models")).unwrap() {
        let dir = entry.unwrap().path();
        let tok = Tokenizer::from_hf_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("tokenizer_config.json")).unwrap(),
        )
        .unwrap();
        let eos = tok.special_tokens().eos.as_ref().expect("eos");
        assert_eq!(eos.text, config["eos_token"], "{}", dir.display());
        assert_eq!(tok.token_to_id(&eos.text), Some(eos.id));
        loaded += 1;
    }
    assert!(loaded >= 7);
}
