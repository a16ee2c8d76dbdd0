//! `ganpo demo --quick --tune` end to end: every arm tries the same number of settings, the GANPO
//! arms build on their base arm's choice, the chosen setting has the best validation win rate against SFT at the worse temperature (its
//! mean recomputes from the per-prompt outcomes), the
//! table shows every setting, and a rerun reads finished trials back instead of training again.

use std::process::Command;

fn tune(dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ganpo"))
        .current_dir(dir)
        .args(["demo", "--quick", "--tune", "--output", "t"])
        .output()
        .unwrap()
}

/// The criterion: a trial's win rate against SFT at the worse temperature.
fn worse(t: &serde_json::Value) -> f64 {
    t["win_rates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn quick_tuning_searches_alike_chooses_the_best_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tune(tmp.path());
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let out = tmp.path().join("t");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("tuning.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("tuning.md")).unwrap();
    let searches = json.as_array().unwrap();
    assert_eq!(searches.len(), 4);
    let n = searches[0]["trials"].as_array().unwrap().len();
    let mut chosen_setting = std::collections::HashMap::new();
    for s in searches {
        let arm = s["arm"].as_str().unwrap();
        let trials = s["trials"].as_array().unwrap();
        assert_eq!(trials.len(), n, "{arm}: same budget for every arm");
        let chosen = s["chosen"].as_u64().unwrap() as usize;
        let best = trials.iter().map(worse).fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(worse(&trials[chosen]), best, "{arm}");
        for t in trials {
            let outcomes: Vec<f64> = t["per_prompt"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let mean = outcomes.iter().sum::<f64>() / outcomes.len() as f64;
            assert!(
                (mean - t["win_rate"].as_f64().unwrap()).abs() < 1e-9,
                "{arm}: win rate {} vs per-prompt mean {mean}",
                t["win_rate"]
            );
        }
        for t in trials {
            let setting = t["setting"].as_str().unwrap();
            assert!(
                md.contains(&format!("| {setting}")),
                "{setting} in tuning.md"
            );
        }
        chosen_setting.insert(
            arm.to_string(),
            trials[chosen]["setting"].as_str().unwrap().to_string(),
        );
    }
    for base in ["dpo", "simpo"] {
        let with = searches
            .iter()
            .find(|s| s["arm"] == format!("{base}+ganpo").as_str())
            .unwrap();
        for t in with["trials"].as_array().unwrap() {
            assert!(
                t["setting"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{};", chosen_setting[base])),
                "{base}+ganpo builds on {base}'s choice: {}",
                t["setting"]
            );
        }
    }
    // A rerun trains nothing again: every trial is read back from its trial.json, and says so.
    let trial = out.join("tune/dpo-0/trial.json");
    let before = std::fs::metadata(&trial).unwrap().modified().unwrap();
    assert!(
        !out.join("tune/dpo-0/run/final").exists(),
        "a finished trial keeps no model"
    );
    let again = tune(tmp.path());
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        std::fs::metadata(&trial).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(
        std::fs::read_to_string(out.join("tuning.md")).unwrap(),
        md,
        "the rerun reports the same table"
    );
}
