//! `--set` overrides edit the TOML document before strict deserialization.

use ganpo::config::overrides::apply_overrides;

#[test]
fn overrides_set_nested_values_with_toml_types() {
    let mut doc: toml::Table =
        toml::from_str("[training]\nlearning_rate = 1e-6\n[loss]\ntype = \"sigmoid\"\n").unwrap();
    let sets = [
        "training.learning_rate=5e-7",
        "loss.type=ipo",
        "training.seed=3",
        "ganpo.lambda=0.5",
        "x.flag=true",
        "s.name=\"a b\"",
    ];
    apply_overrides(&mut doc, &sets.map(String::from)).unwrap();
    assert_eq!(doc["training"]["learning_rate"].as_float(), Some(5e-7));
    assert_eq!(doc["loss"]["type"].as_str(), Some("ipo"));
    assert_eq!(doc["training"]["seed"].as_integer(), Some(3));
    assert_eq!(doc["ganpo"]["lambda"].as_float(), Some(0.5));
    assert_eq!(doc["x"]["flag"].as_bool(), Some(true));
    assert_eq!(doc["s"]["name"].as_str(), Some("a b"));
}

#[test]
fn malformed_overrides_are_errors() {
    let mut doc: toml::Table = toml::from_str("a = 1\n").unwrap();
    for bad in ["novalue", "a.b=2", ".x=1"] {
        let err = apply_overrides(&mut doc, &[bad.to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(bad.split('=').next().unwrap()), "{bad}: {err}");
    }
}
