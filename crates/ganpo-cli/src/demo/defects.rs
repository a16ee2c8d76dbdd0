//! Controlled defects in the SFT demonstrations, so that the SFT model is good but imperfect in
//! ways the judge sees, in two layers:
//!
//! * **random**: a seeded fraction of all answers carries one defect, structural or content with
//!   equal odds. Sampling reproduces them at about that rate; greedy decoding mostly does not;
//! * **systematic**: on a defect-prone half of the prompts (sort prompts of five numbers, lists
//!   of animals or colors, JSON with age ≥ 50) most demonstrations carry that kind's systematic
//!   defect (descending order, `1)` numbering, age as a string). The SFT model learns
//!   the defect as the likelier answer there, so even its greedy answers have it, while its
//!   samples still contain the correct form often enough for best-against-worst pairs to teach
//!   the policy which one the judge prefers.
//!
//! | kind | structural defect | content defect |
//! |---|---|---|
//! | sort | comma-separated (`1, 3, 7`) | descending order |
//! | list | `1) apple` numbering | last item from another category |
//! | json | age as a string (`"age": "31"`) | age off by one |

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::task::{CATEGORIES, TaskExample};

/// Which half of the judge a defect breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The answer's format (the judge's `structure`).
    Structure,
    /// The answer's values (the judge's `content`).
    Content,
}

/// The answer of `example` with `defect` (unchanged for a prompt of no known kind).
pub fn with_defect(example: &TaskExample, defect: Defect) -> TaskExample {
    let answer = &example.answer;
    let p = &example.prompt;
    let changed = if p.starts_with("sort: ") {
        let nums: Vec<&str> = answer.split(' ').collect();
        match defect {
            Defect::Structure => nums.join(", "),
            Defect::Content => nums.iter().rev().copied().collect::<Vec<_>>().join(" "),
        }
    } else if p.starts_with("list ") {
        let lines: Vec<&str> = answer.split('\n').collect();
        match defect {
            Defect::Structure => answer.replace(". ", ") "),
            Defect::Content => {
                let category = p.rsplit(' ').next().unwrap_or("");
                let other = CATEGORIES
                    .iter()
                    .find(|(c, _)| *c != category)
                    .map_or("stone", |(_, members)| members[lines.len() % members.len()]);
                let n = lines.len();
                let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                out[n - 1] = format!("{n}. {other}");
                out.join("\n")
            }
        }
    } else if p.starts_with("json ") {
        let age = p
            .rsplit_once("age=")
            .and_then(|(_, a)| a.parse::<i64>().ok());
        match (defect, age) {
            (Defect::Structure, Some(a)) => {
                answer.replace(&format!(": {a}}}"), &format!(": \"{a}\"}}"))
            }
            (Defect::Content, Some(a)) => {
                answer.replace(&format!(": {a}}}"), &format!(": {}}}", a + 1))
            }
            _ => answer.clone(),
        }
    } else {
        answer.clone()
    };
    TaskExample {
        prompt: example.prompt.clone(),
        answer: changed,
    }
}

/// The systematic defect of a defect-prone prompt, `None` for the others.
pub fn systematic_defect(prompt: &str) -> Option<Defect> {
    if let Some(numbers) = prompt.strip_prefix("sort: ") {
        (numbers.split_whitespace().count() == 5).then_some(Defect::Content)
    } else if prompt.starts_with("list ") {
        (prompt.ends_with(" animals") || prompt.ends_with(" colors")).then_some(Defect::Structure)
    } else if prompt.starts_with("json ") {
        let age = prompt
            .rsplit_once("age=")
            .and_then(|(_, a)| a.parse::<i64>().ok());
        age.is_some_and(|a| a >= 50).then_some(Defect::Structure)
    } else {
        None
    }
}

/// `examples` with their defects: on a defect-prone prompt the systematic defect with
/// probability `systematic_rate`, otherwise one random defect (structure or content, equally
/// likely) with probability `rate`. Returns the examples and how many were changed.
pub fn inject_defects(
    examples: &[TaskExample],
    rate: f64,
    systematic_rate: f64,
    seed: u64,
) -> (Vec<TaskExample>, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6465_6665_6374);
    let mut changed = 0;
    let out = examples
        .iter()
        .map(|e| {
            if let Some(defect) = systematic_defect(&e.prompt)
                && rng.random::<f64>() < systematic_rate
            {
                changed += 1;
                return with_defect(e, defect);
            }
            if rng.random::<f64>() >= rate {
                return e.clone();
            }
            changed += 1;
            let defect = if rng.random::<bool>() {
                Defect::Structure
            } else {
                Defect::Content
            };
            with_defect(e, defect)
        })
        .collect();
    (out, changed)
}
