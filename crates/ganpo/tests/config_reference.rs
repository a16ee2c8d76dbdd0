//! The README's config reference names exactly the keys the config types accept.

use ganpo::config::train::TrainConfig;

fn keys(prefix: &str, value: &toml::Value, out: &mut Vec<String>) {
    if let toml::Value::Table(t) = value {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            if matches!(v, toml::Value::Table(_)) && !key.starts_with("loss.objective") {
                keys(&key, v, out);
            } else {
                out.push(key);
            }
        }
    }
}

#[test]
fn readme_config_reference_matches_the_config_types() {
    let text = "[model]\npath = \"m\"\nreference = \"r\"\n[data]\ntrain_file = \"t\"\neval_file = \"e\"\nmax_completion_length = 9\n[loss]\nrpo_alpha = 1.0\nld_alpha = 0.5\n[loss.objective]\ntype = \"sigmoid\"\n[ganpo]\ndisc_learning_rate = 1e-6\ninit_from = \"d\"\n[lora]\ninit_from = \"a\"\n[training]\nmax_steps = 3\nper_device_eval_batch_size = 2\n";
    let config = TrainConfig::from_toml(text, &[], "test").unwrap();
    let value: toml::Value = toml::from_str(&config.to_toml()).unwrap();
    let mut all = Vec::new();
    keys("", &value, &mut all);
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let after = readme.split("## Config reference").nth(1).unwrap();
    let section = after.split("\n## ").next().unwrap();
    for key in &all {
        let last = key.rsplit('.').next().unwrap();
        let documented = section.contains(&format!("`{key}`"))
            || (section.contains(&format!("/ `{last}`"))
                || section.contains(&format!("`{last}` /")))
            || key.starts_with("loss.objective");
        assert!(documented, "README's config reference lacks `{key}`");
    }
    // And every documented `section.key` exists.
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let key = line.trim_start_matches("| `").split('`').next().unwrap();
        let known = all
            .iter()
            .any(|k| k == key || k.starts_with(&format!("{key}.")))
            || key == "ganpo"
            || key == "loss.mix"
            || key.starts_with("loss.objective");
        assert!(
            known,
            "README documents `{key}`, which the config does not have"
        );
    }
}
