//! The demo tokenizer round-trips task text, keeps ChatML tokens whole, and saves as a Hugging Face
//! tokenizer directory that loads back identically.

use ganpo::tokenize::{Message, Tokenizer};
use ganpo_cli::demo::task::sample_tasks;
use ganpo_cli::demo::tokenizer::{IM_END, IM_START, train_tokenizer};

#[test]
fn trained_tokenizer_round_trips_and_reloads() {
    let tasks = sample_tasks(0, 400);
    let corpus: Vec<String> = tasks
        .iter()
        .flat_map(|t| [t.prompt.clone(), t.answer.clone()])
        .collect();
    let tok = train_tokenizer(&corpus, 320).unwrap();
    assert!(
        tok.vocab_size() <= 320 && tok.vocab_size() > 259,
        "{}",
        tok.vocab_size()
    );
    let chat = tok
        .apply_chat_template(
            &[
                Message::new("user", tasks[0].prompt.clone()),
                Message::new("assistant", tasks[0].answer.clone()),
            ],
            false,
        )
        .unwrap();
    assert!(chat.starts_with(IM_START) && chat.contains(IM_END));
    let ids = tok.encode(&chat, false).unwrap();
    assert_eq!(
        ids[0],
        tok.special_tokens().bos.as_ref().unwrap().id,
        "special tokens stay whole"
    );
    assert!(ids.len() < chat.len(), "merges compress the text");
    assert_eq!(tok.decode(&ids, false).unwrap(), chat);
    for t in &tasks[..50] {
        let ids = tok.encode(&t.answer, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), t.answer);
    }
    let dir = tempfile::tempdir().unwrap();
    tok.save_hf(dir.path()).unwrap();
    let again = Tokenizer::from_hf_dir(dir.path()).unwrap();
    assert_eq!(again.encode(&chat, false).unwrap(), ids);
    assert_eq!(again.special_tokens(), tok.special_tokens());
    assert_eq!(
        again
            .apply_chat_template(&[Message::new("user", "x")], true)
            .unwrap(),
        format!("{IM_START}user\nx{IM_END}\n{IM_START}assistant\n")
    );
}
