//! The `[loss]` table: strict parsing, TRL's defaults, aliases, validation messages and round trips.

use ganpo::losses::{
    CpoParams, DiscopopParams, ExoParams, LossConfig, Objective, SimpoLossType, SimpoParams,
    SmoothedParams,
};

fn parse(text: &str) -> Result<LossConfig, toml::de::Error> {
    toml::from_str(text)
}

fn objective(text: &str) -> Objective {
    parse(&format!("objective = {{ {text} }}"))
        .unwrap()
        .objective
        .unwrap()
}

fn resolve_err(text: &str) -> String {
    parse(text).unwrap().resolve().unwrap_err().to_string()
}

#[test]
fn unknown_fields_and_types_are_rejected() {
    assert!(parse("objective = { type = \"sigmoid\", gamma = 1.0 }").is_err());
    assert!(parse("objective = { type = \"ipo\", label_smoothing = 0.1 }").is_err());
    assert!(parse("objective = { type = \"dpo\" }").is_err());
    assert!(parse("objective = { beta = 0.1 }").is_err());
    assert!(parse("rpo = 1.0\nobjective = { type = \"sigmoid\" }").is_err());
    assert!(parse("[[mix]]\nweight = 1.0\nobjective = { type = \"sigmoid\" }\nextra = 1").is_err());
}

#[test]
fn defaults_are_trls() {
    assert_eq!(
        objective("type = \"sigmoid\""),
        Objective::Sigmoid(SmoothedParams {
            beta: 0.1,
            label_smoothing: 0.0
        })
    );
    assert_eq!(
        objective("type = \"exo_pair\""),
        Objective::ExoPair(ExoParams {
            beta: 0.1,
            label_smoothing: 1e-3
        })
    );
    assert_eq!(
        objective("type = \"discopop\""),
        Objective::Discopop(DiscopopParams {
            beta: 0.1,
            discopop_tau: 0.05
        })
    );
    assert_eq!(
        objective("type = \"simpo\""),
        Objective::Simpo(SimpoParams {
            beta: 2.0,
            gamma_beta_ratio: 0.25,
            sft_weight: 0.0,
            label_smoothing: 0.0,
            loss_type: SimpoLossType::Sigmoid
        })
    );
    assert_eq!(
        objective("type = \"cpo\""),
        Objective::Cpo(CpoParams {
            beta: 0.1,
            label_smoothing: 0.0,
            cpo_alpha: 1.0
        })
    );
    let default = LossConfig::default().resolve().unwrap();
    assert_eq!(
        default.components(),
        &[(1.0, objective("type = \"sigmoid\""))]
    );
}

#[test]
fn legacy_names_are_accepted_as_aliases() {
    assert_eq!(
        objective("type = \"aot_pair\", beta = 0.2"),
        objective("type = \"aot_unpaired\", beta = 0.2")
    );
    assert_eq!(
        objective("type = \"discopop\", tau = 0.2"),
        objective("type = \"discopop\", discopop_tau = 0.2")
    );
}

#[test]
fn out_of_range_values_and_contradictions_are_explained() {
    let err = resolve_err("objective = { type = \"robust\", label_smoothing = 0.5 }");
    assert!(
        err.contains("label_smoothing = 0.5") && err.contains("[0, 0.5)"),
        "{err}"
    );
    assert!(resolve_err("objective = { type = \"sigmoid\", beta = 0.0 }").contains("beta"));
    assert!(
        resolve_err("objective = { type = \"exo_pair\", label_smoothing = 0.0 }")
            .contains("(0, 1)")
    );
    assert!(
        resolve_err("objective = { type = \"discopop\", discopop_tau = -1.0 }")
            .contains("discopop_tau")
    );
    assert!(resolve_err("rpo_alpha = 1.0").contains("needs an objective"));
    assert!(
        resolve_err(
            "objective = { type = \"ipo\" }\n[[mix]]\nweight = 1.0\nobjective = { type = \"ipo\" }"
        )
        .contains("both")
    );
    assert!(resolve_err("ld_alpha = 1.5\nobjective = { type = \"sigmoid\" }").contains("[0, 1]"));
    assert!(resolve_err("ld_alpha = 0.5\nobjective = { type = \"simpo\" }").contains("simpo"));
    assert!(resolve_err("use_weighting = true\nobjective = { type = \"aot\" }").contains("rank"));
    let two_bco = "[[mix]]\nweight = 1.0\nobjective = { type = \"bco_pair\" }\n\
                   [[mix]]\nweight = 1.0\nobjective = { type = \"bco_pair\", beta = 0.2 }";
    assert!(resolve_err(two_bco).contains("running mean"));
}

#[test]
fn reference_requirement_follows_the_objectives() {
    let resolve = |t: &str| parse(t).unwrap().resolve().unwrap();
    for (t, needs) in [
        ("objective = { type = \"sigmoid\" }", true),
        ("objective = { type = \"bco_pair\" }", true),
        ("objective = { type = \"simpo\" }", false),
        ("objective = { type = \"cpo\" }", false),
        ("objective = { type = \"orpo\" }", false),
    ] {
        assert_eq!(resolve(t).requires_reference(), needs, "{t}");
    }
    let mixed = "[[mix]]\nweight = 1.0\nobjective = { type = \"simpo\" }\n\
                 [[mix]]\nweight = 0.1\nobjective = { type = \"sigmoid\" }";
    assert!(resolve(mixed).requires_reference());
}

#[test]
fn configs_round_trip_through_toml() {
    for text in [
        "rpo_alpha = 0.5\nuse_weighting = true\nobjective = { type = \"ipo\", beta = 0.3 }",
        "ld_alpha = 0.5\nobjective = { type = \"sigmoid\", label_smoothing = 0.1 }",
        "[[mix]]\nweight = 0.8\nobjective = { type = \"sigmoid\" }\n\
         [[mix]]\nweight = 0.2\nobjective = { type = \"simpo\", loss_type = \"hinge\" }",
    ] {
        let config = parse(text).unwrap();
        let again: LossConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(config, again);
    }
}
