//! JSON objects that name a key twice: `serde_json` keeps the last value without a word, so a
//! record such as `{"prompt": "a", ..., "prompt": "b"}` would train on half of what it says. This
//! finds the first repeated key of a line's top-level object.

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};

/// Visits a top-level object, remembering the first key seen twice.
struct FirstRepeat;

impl<'de> Visitor<'de> for FirstRepeat {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut seen = HashSet::new();
        let mut repeated = None;
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if !seen.insert(key.clone()) && repeated.is_none() {
                repeated = Some(key);
            }
        }
        Ok(repeated)
    }
}

/// The first key that `line`'s top-level JSON object repeats (`None` when none does, or when the
/// line is not an object: that is reported by the record parser).
pub(super) fn repeated_key(line: &str) -> Option<String> {
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(FirstRepeat).ok().flatten()
}
