"""Writes tests/fixtures/study/vader_brown.jsonl: VADER compound scores of 250 Brown-corpus
sentences by the reference Python package (PyPI vaderSentiment==3.3.2), which the test
`vader_crate_matches_python_on_brown_sentences` (crates/ganpo-cli/tests/study.rs) compares with the
`vader_sentiment` crate ganpo uses.

Usage: python tools/golden/vader_brown.py "$(scripts/fetch-brown.sh)"
Needs: pip install vaderSentiment==3.3.2

Sentences: the tags are stripped and the tokens rejoined as ganpo's study does
(crates/ganpo-cli/src/study/corpus.rs); 150 are drawn from genre C (press reviews, the most
opinionated genre) and 100 from the other genres, every k-th sentence so that the draw is fixed.
"""

import json
import os
import sys

import vaderSentiment
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

CLOSING = {".", ",", ";", ":", "!", "?", ")", "'", "'s"}


def strip_tag(token):
    word = token.rsplit("/", 1)[0] if "/" in token else token
    return '"' if word in ("``", "''") else word


def detokenize(tokens):
    out, open_quote, glue_next = "", False, False
    for t in tokens:
        closing = t in CLOSING or (t == '"' and open_quote)
        if out and not closing and not glue_next:
            out += " "
        glue_next = t == "(" or (t == '"' and not open_quote)
        if t == '"':
            open_quote = not open_quote
        out += t
    return out


def sentences(corpus, files):
    for name in files:
        with open(os.path.join(corpus, name), encoding="utf-8") as f:
            for line in f:
                tokens = [strip_tag(t) for t in line.split()]
                if len(tokens) >= 6:
                    yield name, detokenize(tokens)


def main():
    corpus = sys.argv[1]
    names = sorted(n for n in os.listdir(corpus) if len(n) == 4 and n[0] == "c" and n[2:].isdigit())
    reviews = list(sentences(corpus, [n for n in names if n[1] == "c"]))
    others = list(sentences(corpus, [n for n in names if n[1] != "c"]))
    picked = reviews[:: max(1, len(reviews) // 150)][:150] + others[:: max(1, len(others) // 100)][:100]
    analyzer = SentimentIntensityAnalyzer()
    out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "study", "vader_brown.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for name, text in picked:
            scores = analyzer.polarity_scores(text)
            row = {"file": name, "text": text, "compound": scores["compound"], "pos": scores["pos"], "neg": scores["neg"], "neu": scores["neu"]}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(picked)} sentences scored by vaderSentiment {getattr(vaderSentiment, '__version__', '3.3.2')} -> {out}")


if __name__ == "__main__":
    main()
