//! The concrete judges: the built-in benchmark's rule checker and the VADER sentiment judge.
//!
//! The trait, the head-to-head rule and win rates are the library's ([`ganpo::judge`]); they are
//! re-exported here so that a judge and its use are imported from one place.

mod rules;
mod sentiment;

pub use ganpo::judge::{Judge, JudgeScore, WinRate, head_to_head, win_rate};
pub use rules::{CATEGORIES, StructuredTaskJudge};
pub use sentiment::SentimentJudge;
