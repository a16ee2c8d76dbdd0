//! The keys on which two configs differ, compared value by value through their TOML form, so that a
//! refused `--resume` names what changed instead of showing both configs whole.

use super::train::TrainConfig;

/// One differing key: dotted path, the value in `a` and in `b` (`(absent)` when missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `loss.objective.beta`.
    pub key: String,
    /// The first config's value, as TOML.
    pub a: String,
    /// The second config's value, as TOML.
    pub b: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` ({} → {})", self.key, self.a, self.b)
    }
}

fn show(v: Option<&toml::Value>) -> String {
    v.map_or("(absent)".to_string(), |v| v.to_string())
}

fn walk(prefix: &str, a: Option<&toml::Value>, b: Option<&toml::Value>, out: &mut Vec<Difference>) {
    match (a, b) {
        (Some(toml::Value::Table(ta)), Some(toml::Value::Table(tb))) => {
            let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&path, ta.get(k), tb.get(k), out);
            }
        }
        (a, b) if a != b => out.push(Difference {
            key: prefix.to_string(),
            a: show(a),
            b: show(b),
        }),
        _ => {}
    }
}

/// Every key whose value differs between `a` and `b`, in key order.
pub fn differences(a: &TrainConfig, b: &TrainConfig) -> Vec<Difference> {
    let (a, b) = (toml::Value::try_from(a).ok(), toml::Value::try_from(b).ok());
    let mut out = Vec::new();
    walk("", a.as_ref(), b.as_ref(), &mut out);
    out
}
