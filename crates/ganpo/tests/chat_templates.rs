//! Golden test: ganpo renders real chat templates exactly as transformers' `apply_chat_template` does.
//!
//! tests/fixtures/chat_templates/golden.json is written by tools/golden/chat_templates.py, which renders
//! each tests/fixtures/chat_templates/*.jinja (Qwen2.5, SmolLM2, Llama 2/3/3.2/3.3, Gemma 2, Mistral
//! v0.1 and Nemo) over fixed conversations with `PreTrainedTokenizerFast.apply_chat_template(...,
//! tokenize=False)` and `strftime_now` pinned to the header's `fixed_now`. Comparisons are exact string
//! equality; a template that raises must raise here too, with the template's own message.

use std::collections::BTreeMap;
use std::path::Path;

use ganpo::tokenize::{Chat, ChatTemplate, CivilDateTime, SpecialToken, SpecialTokens};
use serde_json::Value;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/chat_templates"
);

fn golden() -> Value {
    let text = std::fs::read_to_string(Path::new(DIR).join("golden.json")).expect("golden.json");
    serde_json::from_str(&text).expect("golden.json parses")
}

/// `2024-03-05T09:07:02` as written by Python's `datetime.isoformat()`.
fn parse_time(iso: &str) -> CivilDateTime {
    let n: Vec<u32> = iso
        .split(['-', 'T', ':'])
        .map(|p| p.parse().expect("number"))
        .collect();
    CivilDateTime::new(n[0] as i32, n[1], n[2], n[3], n[4], n[5]).expect("valid time")
}

fn special_tokens(map: &Value) -> SpecialTokens {
    let token = |key: &str, id: u32| {
        map.get(key)
            .and_then(Value::as_str)
            .map(|text| SpecialToken {
                text: text.to_owned(),
                id,
            })
    };
    SpecialTokens {
        bos: token("bos_token", 1),
        eos: token("eos_token", 2),
        pad: token("pad_token", 3),
        unk: token("unk_token", 4),
    }
}

fn chat(case: &Value) -> Chat {
    let list = |key: &str| case.get(key).and_then(Value::as_array).cloned();
    Chat {
        messages: list("messages").expect("messages"),
        add_generation_prompt: case["add_generation_prompt"].as_bool().unwrap_or(false),
        tools: list("tools"),
        documents: None,
        kwargs: case
            .get("kwargs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
    }
}

/// Compares one render with the golden case; returns a description of the mismatch, if any.
fn check(label: &str, case: &Value, rendered: ganpo::Result<String>) -> Option<String> {
    match (rendered, case.get("output").and_then(Value::as_str)) {
        (Ok(got), Some(expected)) if got == expected => None,
        (Ok(got), Some(expected)) => Some(format!(
            "{label}: output differs\n  expected {expected:?}\n  got      {got:?}"
        )),
        (Ok(got), None) => Some(format!(
            "{label}: transformers raised {:?} but ganpo rendered {got:?}",
            case["error"]
        )),
        (Err(e), Some(_)) => Some(format!("{label}: ganpo failed: {e}")),
        (Err(e), None) => {
            let message = case["error"].as_str().unwrap_or_default();
            let raised_by_template = case["error_type"] == "TemplateError";
            let text = e.to_string();
            let carries_message = text.contains(&format!("rejected this conversation: {message}"));
            let is_tokenizer_error = matches!(e, ganpo::Error::Tokenizer(_));
            if !is_tokenizer_error || (raised_by_template && !carries_message) {
                Some(format!(
                    "{label}: error {text:?} should be a tokenizer error carrying {message:?}"
                ))
            } else {
                None
            }
        }
    }
}

#[test]
fn real_chat_templates_render_like_transformers() {
    let golden = golden();
    let now = parse_time(golden["header"]["fixed_now"].as_str().expect("fixed_now"));
    let mut templates: BTreeMap<String, (ChatTemplate, SpecialTokens)> = BTreeMap::new();
    for (name, spec) in golden["templates"].as_object().expect("templates") {
        let file = Path::new(DIR).join(spec["file"].as_str().expect("file"));
        let source = std::fs::read_to_string(&file).expect("template file");
        let template = ChatTemplate::new(source)
            .and_then(|t| t.with_fixed_time(now))
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        templates.insert(
            name.clone(),
            (template, special_tokens(&spec["special_tokens"])),
        );
    }
    let cases = golden["cases"].as_array().expect("cases");
    assert!(
        cases.len() >= 190,
        "golden.json has only {} cases",
        cases.len()
    );
    let errors = cases.iter().filter(|c| c.get("error").is_some()).count();
    assert!(
        errors >= 20,
        "the golden cases should include rejected conversations"
    );
    let mut failures = Vec::new();
    for case in cases {
        let name = case["template"].as_str().expect("template");
        let (template, special) = &templates[name];
        let label = format!(
            "{name} / {} / add_generation_prompt={}",
            case["conversation"], case["add_generation_prompt"]
        );
        failures.extend(check(
            &label,
            case,
            template.render_chat(&chat(case), special),
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn jinja_semantics_match_transformers_sandbox() {
    let golden = golden();
    let now = parse_time(golden["header"]["fixed_now"].as_str().expect("fixed_now"));
    let special = special_tokens(&golden["header"]["expression_special_tokens"]);
    let cases = golden["expressions"].as_array().expect("expressions");
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for case in cases {
        let label = case["name"].as_str().expect("name").to_owned();
        let template = ChatTemplate::new(case["template"].as_str().expect("template"))
            .and_then(|t| t.with_fixed_time(now));
        let rendered = template.and_then(|t| t.render_chat(&chat(case), &special));
        failures.extend(check(&label, case, rendered));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn strftime_matches_python() {
    let golden = golden();
    let cases = golden["strftime"].as_array().expect("strftime");
    assert!(cases.len() >= 100);
    let mut failures = Vec::new();
    for case in cases {
        let time = parse_time(case["time"].as_str().expect("time"));
        let format = case["format"].as_str().expect("format");
        let expected = case["output"].as_str().expect("output");
        let got = time.strftime(format);
        if got != expected {
            failures.push(format!(
                "{} {format:?}: expected {expected:?}, got {got:?}",
                case["time"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
