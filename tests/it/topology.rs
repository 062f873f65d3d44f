//! A run built from its config before anything starts: every mistake in the config at once.

use std::process::Command;

/// A config with three independent mistakes (a bad duration, an unknown source kind, a rule
/// path that does not exist) stopped a run at the first: each fix met the next. All three are
/// said at once now, one a line, each at its `file:line:col`, in the order of the file; and
/// nothing was started (no output directory made).
#[test]
fn run_names_every_config_mistake_at_once_with_its_place() {
    let dir = std::env::temp_dir().join(format!("tidings-topology-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let cfg = dir.join("three.toml");
    std::fs::write(
        &cfg,
        format!(
            "[engine]\nallowed_lateness = \"2 minutes\"\n[source]\nkind = \"kafka\"\n[rules]\npaths = [\"{}\"]\n[output]\ndir = \"{}\"\nstdout = false\n",
            dir.join("no-such-rules").display(),
            out.display()
        ),
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    let at = |line_col: &str| format!("error: {}:{line_col}: ", cfg.display());
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0].starts_with(&at("2:20"))
            && errors[0].contains("engine.allowed_lateness: ")
            && errors[0].contains("`2 minutes`"),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&at("4:8")) && errors[1].contains("source.kind: unknown variant `kafka`"),
        "{stderr}"
    );
    assert!(
        errors[2].starts_with(&at("6:9")) && errors[2].contains("the rule pack has 1 error(s); nothing was run"),
        "{stderr}"
    );
    // The rule file's own diagnostic comes first, as `validate` prints it.
    assert!(stderr.contains("no-such-rules") && stderr.contains("cannot read"), "{stderr}");
    assert!(!out.exists(), "nothing is started before every check has passed");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One mistake alone reads as it did before, with its place added when the file writes the key.
#[test]
fn run_names_a_lone_config_mistake_as_before() {
    let dir = std::env::temp_dir().join(format!("tidings-topology-one-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("one.toml");
    std::fs::write(&cfg, "[source]\nkind = \"files\"\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    let want = format!("error: {}:2:8: source.kind = \"files\" needs source.files\n", cfg.display());
    assert!(stderr.ends_with(&want), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
