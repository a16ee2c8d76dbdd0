//! The built-in task's rule judge: reference answers score 1 on both axes; each kind of mistake
//! lowers exactly the axis it should.

use ganpo_cli::demo::task::sample_tasks;
use ganpo_cli::judge::{Judge, StructuredTaskJudge};

fn parts(prompt: &str, response: &str) -> (f64, f64) {
    let s = StructuredTaskJudge.score(prompt, response);
    (s.components["content"], s.components["structure"])
}

#[test]
fn reference_answers_are_perfect_and_tasks_are_seeded() {
    let tasks = sample_tasks(1, 300);
    assert_eq!(tasks, sample_tasks(1, 300));
    for t in &tasks {
        let s = StructuredTaskJudge.score(&t.prompt, &t.answer);
        assert_eq!(s.score, 1.0, "{t:?} → {s:?}");
    }
    for kind in ["sort:", "list", "json"] {
        assert!(
            tasks.iter().filter(|t| t.prompt.starts_with(kind)).count() > 50,
            "{kind} is drawn often"
        );
    }
}

#[test]
fn sort_mistakes() {
    assert_eq!(parts("sort: 7 3 9 1", "1 3 7 9"), (1.0, 1.0));
    assert_eq!(parts("sort: 7 3 9 1", "1 3 9 7"), (0.5, 1.0));
    assert_eq!(parts("sort: 7 3 9 1", "1 3 7"), (0.75, 0.0));
    // Only the last token parses as an integer, and it is in the right place.
    assert_eq!(parts("sort: 7 3 9 1", "1, 3, 7, 9"), (0.25, 0.0));
    assert_eq!(parts("sort: 7 3 9 1", "1 3 7 9 9"), (0.8, 0.0));
}

#[test]
fn list_mistakes() {
    assert_eq!(parts("list 2 fruits", "1. apple\n2. pear"), (1.0, 1.0));
    assert_eq!(parts("list 2 fruits", "1. apple\n2. apple"), (0.5, 1.0));
    assert_eq!(parts("list 2 fruits", "1. apple\n2. red"), (0.5, 1.0));
    assert_eq!(parts("list 2 fruits", "apple\npear"), (1.0, 0.0));
    assert_eq!(
        parts("list 2 fruits", "1. apple\n2. pear\n3. fig"),
        (2.0 / 3.0, 0.0)
    );
}

#[test]
fn json_mistakes() {
    assert_eq!(
        parts("json name=bob age=31", "{\"name\": \"bob\", \"age\": 31}"),
        (1.0, 1.0)
    );
    assert_eq!(
        parts("json name=bob age=31", "{\"name\": \"bob\", \"age\": 32}"),
        (0.5, 1.0)
    );
    assert_eq!(
        parts(
            "json name=bob age=31",
            "{\"name\": \"bob\", \"age\": \"31\"}"
        ),
        (0.5, 0.0)
    );
    assert_eq!(
        parts("json name=bob age=31", "{\"name\": \"bob\", \"age\": 31"),
        (1.0, 0.0)
    );
    assert_eq!(
        parts(
            "json name=bob age=31",
            "{\"name\": \"bob\", \"age\": 31, \"x\": 1}"
        ),
        (1.0, 0.0)
    );
    assert_eq!(parts("unknown task", "anything"), (0.0, 0.0));
}
