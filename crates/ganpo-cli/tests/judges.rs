//! Judges: the sentiment judge orders clearly positive above clearly negative text; win rates count
//! ties as half; a model against itself scores exactly 0.5.

use ganpo_cli::judge::{Judge, SentimentJudge, StructuredTaskJudge, head_to_head, win_rate};

#[test]
fn sentiment_judge_orders_positive_above_negative() {
    let judge = SentimentJudge::default();
    let good = judge.score("", "What a wonderful, delightful film. I loved it!");
    let bad = judge.score("", "A terrible, boring film. I hated it.");
    let neutral = judge.score("", "The film is ninety minutes long.");
    assert!(good.score > 0.8 && bad.score < 0.2, "{good:?} {bad:?}");
    assert!((neutral.score - 0.5).abs() < 1e-9, "{neutral:?}");
    assert!(good.components.contains_key("compound"));
}

#[test]
fn win_rate_counts_ties_as_half_and_self_comparison_is_even() {
    let judge = SentimentJudge::default();
    let prompts: Vec<String> = (0..4).map(|i| format!("p{i}")).collect();
    let a: Vec<String> = ["great", "awful", "fine day", "okay"]
        .map(String::from)
        .to_vec();
    let b: Vec<String> = ["awful", "great", "fine day", "terrible"]
        .map(String::from)
        .to_vec();
    let r = win_rate(&judge, &prompts, &a, &b).unwrap();
    assert_eq!((r.wins, r.ties, r.losses), (2, 1, 1));
    assert_eq!(r.rate, 0.625);
    assert_eq!(win_rate(&judge, &prompts, &a, &a).unwrap().rate, 0.5);
    assert!(win_rate(&judge, &prompts, &a, &b[..2]).is_err());
}

/// `ganpo eval` hands judges the prompt as the model saw it, chat template included: the
/// structured judge finds the instruction line inside it and scores as for the bare prompt.
#[test]
fn structured_judge_reads_the_instruction_inside_a_chat_rendered_prompt() {
    let judge = StructuredTaskJudge;
    for (bare, answer) in [
        ("sort: 3 1 2", "1 2 3"),
        ("list 2 fruits", "1. apple\n2. pear"),
        ("json name=bob age=31", "{\"name\": \"bob\", \"age\": 31}"),
    ] {
        let rendered = format!("system\nYou are helpful.\nuser\n{bare}\nassistant\n");
        let plain = judge.score(bare, answer);
        assert_eq!(plain.score, 1.0, "{bare}");
        assert_eq!(judge.score(&rendered, answer), plain, "{rendered:?}");
        assert_eq!(
            judge.score(&rendered, "junk").score,
            judge.score(bare, "junk").score
        );
    }
    assert_eq!(judge.score("user\nhello\nassistant\n", "1 2 3").score, 0.0);
}

#[test]
fn head_to_head_is_one_half_or_zero_with_a_tie_tolerance() {
    assert_eq!(head_to_head(0.5, 0.5), 0.5);
    assert_eq!(head_to_head(0.5, 0.5 + 1e-12), 0.5);
    assert_eq!(head_to_head(0.6, 0.5), 1.0);
    assert_eq!(head_to_head(0.4, 0.5), 0.0);
}
