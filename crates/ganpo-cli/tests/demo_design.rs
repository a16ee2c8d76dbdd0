//! The demo's design pieces: every injected defect costs the judge part it claims to, the
//! defect-prone subset is about a third of each kind's prompts, the paired bootstrap covers the
//! truth at about its nominal rate and reads verdicts from the interval alone.

use ganpo_cli::demo::defects::{Defect, inject_defects, systematic_defect, with_defect};
use ganpo_cli::demo::stats::{Interval, Verdict, paired_bootstrap};
use ganpo_cli::demo::task::sample_tasks;
use ganpo_cli::judge::{Judge, StructuredTaskJudge};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn each_defect_costs_the_judge_part_it_names() {
    let judge = StructuredTaskJudge;
    for task in sample_tasks(5, 300) {
        let clean = judge.score(&task.prompt, &task.answer);
        assert_eq!(clean.score, 1.0, "{task:?}");
        let structure = judge.score(&task.prompt, &with_defect(&task, Defect::Structure).answer);
        assert_eq!(structure.components["structure"], 0.0, "{task:?}");
        let content = judge.score(&task.prompt, &with_defect(&task, Defect::Content).answer);
        assert!(content.components["content"] < 1.0, "{task:?}");
    }
}

#[test]
fn the_defect_prone_subset_is_about_half_and_gets_its_rate() {
    let tasks = sample_tasks(6, 3000);
    let prone = tasks
        .iter()
        .filter(|t| systematic_defect(&t.prompt).is_some())
        .count();
    let share = prone as f64 / tasks.len() as f64;
    assert!((0.44..0.56).contains(&share), "{share}");
    let (out, changed) = inject_defects(&tasks, 0.0, 0.7, 1);
    let judge = StructuredTaskJudge;
    let broken = out
        .iter()
        .filter(|t| judge.score(&t.prompt, &t.answer).score < 1.0)
        .count();
    assert_eq!(broken, changed);
    let rate = changed as f64 / prone as f64;
    assert!((0.65..0.75).contains(&rate), "{rate}");
    // Off the prone subset only the random rate applies.
    let (_, none) = inject_defects(&tasks, 0.0, 0.0, 1);
    assert_eq!(none, 0);
}

#[test]
fn the_paired_bootstrap_covers_the_mean_at_about_95_percent() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut covered = 0;
    let trials = 200;
    for trial in 0..trials {
        // Three seeds × 60 prompts of Bernoulli(0.6) outcomes: the true mean is 0.6.
        let values: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                (0..60)
                    .map(|_| f64::from(u8::from(rng.random::<f64>() < 0.6)))
                    .collect()
            })
            .collect();
        let ci = paired_bootstrap(&values, 1000, trial).unwrap();
        assert!(ci.low <= ci.estimate && ci.estimate <= ci.high);
        covered += usize::from(ci.low <= 0.6 && 0.6 <= ci.high);
    }
    let rate = covered as f64 / trials as f64;
    assert!((0.88..=0.99).contains(&rate), "coverage {rate}");
    assert!(paired_bootstrap(&[vec![1.0], vec![]], 10, 0).is_err());
}

#[test]
fn verdicts_come_from_the_interval_alone() {
    let ci = |low, high| Interval {
        estimate: (low + high) / 2.0,
        low,
        high,
    };
    assert_eq!(Verdict::read(&ci(0.55, 0.7), 0.5, true), Verdict::Supported);
    assert_eq!(
        Verdict::read(&ci(0.3, 0.45), 0.5, true),
        Verdict::NotSupported
    );
    assert_eq!(
        Verdict::read(&ci(0.45, 0.55), 0.5, true),
        Verdict::Inconclusive
    );
    assert_eq!(
        Verdict::read(&ci(0.9, 1.1), 1.25, false),
        Verdict::Supported
    );
    assert_eq!(
        Verdict::read(&ci(1.3, 2.0), 1.25, false),
        Verdict::NotSupported
    );
}
