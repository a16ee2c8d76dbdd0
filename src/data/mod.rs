//! Preference data: reading records, tokenizing them with TRL's legacy DPO semantics, and
//! collating `[chosen; rejected]` batches.
