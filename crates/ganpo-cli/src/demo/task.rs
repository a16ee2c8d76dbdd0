//! The built-in benchmark's synthetic instruction task: short prompts that ask for structured
//! outputs, with reference answers. Three kinds:
//!
//! * `sort: 7 3 9 1` → `1 3 7 9`
//! * `list 3 fruits` → `1. apple` / `2. pear` / `3. plum` (one item per line)
//! * `json name=bob age=31` → `{"name": "bob", "age": 31}`
//!
//! Small enough that a tiny model trained from scratch learns it well but not perfectly, so
//! preference optimization has room, and the [`crate::judge::StructuredTaskJudge`] can score
//! content and structure separately from the prompt alone.

use rand::Rng;
use rand::SeedableRng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

/// Category names and their members for `list` prompts (the rule judge's, which checks them).
pub use crate::judge::CATEGORIES;

/// First names used in `json` prompts.
pub const NAMES: [&str; 10] = [
    "bob", "ann", "tom", "eve", "max", "joe", "amy", "ian", "kim", "sam",
];

/// One task instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskExample {
    /// The instruction.
    pub prompt: String,
    /// A correct, well-formed answer.
    pub answer: String,
}

/// Draws one task instance.
pub fn sample_task(rng: &mut ChaCha8Rng) -> TaskExample {
    match rng.random_range(0..3) {
        0 => {
            let n = rng.random_range(3..=5);
            let nums: Vec<u32> = (0..n).map(|_| rng.random_range(0..100)).collect();
            let mut sorted = nums.clone();
            sorted.sort_unstable();
            TaskExample {
                prompt: format!("sort: {}", join(&nums)),
                answer: join(&sorted),
            }
        }
        1 => {
            let (category, members) = CATEGORIES.choose(rng).expect("categories are non-empty");
            let n = rng.random_range(2..=4);
            let items: Vec<&&str> = members.choose_multiple(rng, n).collect();
            let answer = items
                .iter()
                .enumerate()
                .map(|(i, w)| format!("{}. {w}", i + 1))
                .collect::<Vec<_>>()
                .join("\n");
            TaskExample {
                prompt: format!("list {n} {category}"),
                answer,
            }
        }
        _ => {
            let name = NAMES.choose(rng).expect("names are non-empty");
            let age = rng.random_range(10..90);
            TaskExample {
                prompt: format!("json name={name} age={age}"),
                answer: format!("{{\"name\": \"{name}\", \"age\": {age}}}"),
            }
        }
    }
}

/// `count` task instances from `seed`.
pub fn sample_tasks(seed: u64, count: usize) -> Vec<TaskExample> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count).map(|_| sample_task(&mut rng)).collect()
}

fn join(nums: &[u32]) -> String {
    nums.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}
