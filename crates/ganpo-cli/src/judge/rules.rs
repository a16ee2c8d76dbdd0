//! The rule judge of the built-in structured-output task (see [`crate::demo::task`]). It reads
//! what is asked from the prompt and scores a response's *content* and *structure* separately,
//! each in [0, 1], deterministically; the overall score is their mean.
//!
//! * sort — structure: only space-separated integers, as many as given; content: fraction of
//!   positions holding the right number of the sorted list.
//! * list N category — structure: exactly N lines `k. word` numbered 1..N; content: fraction of
//!   distinct category members among the lines, over max(N, number of lines).
//! * json — structure: a JSON object with exactly the keys `name` (string) and `age` (integer);
//!   content: fraction of the two values that are right.

use std::collections::{BTreeMap, BTreeSet};

use super::{Judge, JudgeScore};

/// Category names and their members for `list` prompts: the vocabulary a list answer is judged
/// against (the demo's task generator draws its prompts from it).
pub const CATEGORIES: [(&str, &[&str]); 3] = [
    (
        "fruits",
        &[
            "apple", "pear", "plum", "grape", "lemon", "mango", "peach", "kiwi", "lime", "fig",
        ],
    ),
    (
        "colors",
        &[
            "red", "blue", "green", "pink", "gray", "black", "white", "brown", "cyan", "gold",
        ],
    ),
    (
        "animals",
        &[
            "cat", "dog", "cow", "fox", "owl", "bee", "pig", "rat", "elk", "yak",
        ],
    ),
];

/// Scores responses to the built-in task's prompts.
#[derive(Debug, Default, Clone, Copy)]
pub struct StructuredTaskJudge;

fn verdict(content: f64, structure: f64) -> JudgeScore {
    let components = BTreeMap::from([
        ("content".to_string(), content),
        ("structure".to_string(), structure),
    ]);
    JudgeScore {
        score: 0.5 * (content + structure),
        components,
    }
}

fn judge_sort(numbers: &str, response: &str) -> JudgeScore {
    let mut expected: Vec<i64> = numbers
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    expected.sort_unstable();
    let tokens: Vec<&str> = response.split_whitespace().collect();
    let parsed: Vec<Option<i64>> = tokens.iter().map(|t| t.parse().ok()).collect();
    let well_formed = response.trim() == response
        && parsed.iter().all(Option::is_some)
        && tokens.len() == expected.len();
    let hits = expected
        .iter()
        .zip(&parsed)
        .filter(|(e, p)| Some(**e) == **p)
        .count();
    let denom = expected.len().max(tokens.len()).max(1);
    verdict(
        hits as f64 / denom as f64,
        if well_formed { 1.0 } else { 0.0 },
    )
}

fn judge_list(n: usize, category: &str, response: &str) -> JudgeScore {
    let members: BTreeSet<&str> = CATEGORIES
        .iter()
        .find(|(c, _)| *c == category)
        .map(|(_, m)| m.iter().copied().collect())
        .unwrap_or_default();
    let lines: Vec<&str> = response.split('\n').collect();
    let mut well_formed = lines.len() == n;
    let mut seen = BTreeSet::new();
    let mut good = 0;
    for (i, line) in lines.iter().enumerate() {
        let item = match line.split_once(". ") {
            Some((num, item))
                if num == (i + 1).to_string() && !item.is_empty() && !item.contains(' ') =>
            {
                item
            }
            _ => {
                well_formed = false;
                line.rsplit(' ').next().unwrap_or("")
            }
        };
        if members.contains(item) && seen.insert(item) {
            good += 1;
        }
    }
    // Extra lines dilute the content score, so padding a list with guesses does not pay.
    let denom = n.max(lines.len()).max(1);
    verdict(
        good.min(n) as f64 / denom as f64,
        if well_formed { 1.0 } else { 0.0 },
    )
}

fn judge_json(args: &str, response: &str) -> JudgeScore {
    let mut name = "";
    let mut age: Option<i64> = None;
    for part in args.split_whitespace() {
        match part.split_once('=') {
            Some(("name", v)) => name = v,
            Some(("age", v)) => age = v.parse().ok(),
            _ => {}
        }
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_str::<serde_json::Value>(response)
    else {
        // Unparseable: content still counts values that appear verbatim.
        let hits = usize::from(response.contains(&format!("\"{name}\"")))
            + usize::from(age.is_some_and(|a| response.contains(&a.to_string())));
        return verdict(hits as f64 / 2.0, 0.0);
    };
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    let structure =
        keys == BTreeSet::from(["name", "age"]) && obj["name"].is_string() && obj["age"].is_i64();
    let hits = usize::from(obj.get("name").and_then(|v| v.as_str()) == Some(name))
        + usize::from(obj.get("age").and_then(|v| v.as_i64()) == age);
    verdict(hits as f64 / 2.0, if structure { 1.0 } else { 0.0 })
}

/// The task instruction inside `prompt`: the prompt itself, or, for a prompt rendered through a
/// chat template (`ganpo eval` decodes what the model saw), its first line that is one.
fn instruction(prompt: &str) -> &str {
    let is_task = |l: &str| {
        ["sort: ", "list ", "json "]
            .iter()
            .any(|p| l.starts_with(p))
    };
    if is_task(prompt) {
        return prompt;
    }
    prompt
        .lines()
        .map(str::trim)
        .find(|l| is_task(l))
        .unwrap_or(prompt)
}

impl Judge for StructuredTaskJudge {
    fn name(&self) -> &str {
        "structured-task"
    }

    fn score(&self, prompt: &str, response: &str) -> JudgeScore {
        let prompt = instruction(prompt);
        if let Some(numbers) = prompt.strip_prefix("sort: ") {
            return judge_sort(numbers, response);
        }
        let list = prompt
            .strip_prefix("list ")
            .and_then(|rest| rest.split_once(' '));
        if let Some((n, category)) = list.and_then(|(n, c)| n.parse::<usize>().ok().map(|n| (n, c)))
        {
            return judge_list(n, category, response);
        }
        if let Some(args) = prompt.strip_prefix("json ") {
            return judge_json(args, response);
        }
        verdict(0.0, 0.0)
    }
}
