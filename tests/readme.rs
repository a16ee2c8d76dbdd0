//! The README's test command is exactly what CI runs, so the two cannot drift apart.

#[test]
fn ci_runs_the_readme_test_command() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let command = ci.lines().last().unwrap().trim();
    assert!(
        command.starts_with("cargo "),
        "last line of .ci/run is the test command: {command}"
    );
    assert!(
        readme.contains(&format!("```sh\n{command}\n```")),
        "README must show `{command}` as the test command"
    );
}
