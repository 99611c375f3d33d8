//! Every example team's mail templates load (the checks a deployment runs
//! at start: syntax, known variables, `Subject:` line) and render in
//! Spanish for every mail buzon sends.

use std::path::{Path, PathBuf};

use buzon::config::{Config, Sources};
use buzon::outbound::templates::{
    ACKNOWLEDGEMENT, CLOSING, NOTIFY, OWNER_ASSIGNED, OWNER_NEW, OWNER_REPLY, Templates, Vars,
};

fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("buzon.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_example_team_has_spanish_templates_that_load() {
    let dirs = examples();
    assert!(dirs.len() >= 5, "the five team examples: {dirs:?}");
    for example in dirs {
        let config = Config::load(Sources {
            file: Some(example.join("buzon.toml")),
            env: vec![],
        })
        .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        let dir = config
            .templates
            .dir
            .clone()
            .unwrap_or_else(|| panic!("{}: no [templates] dir", example.display()));
        assert!(
            dir.join("acknowledgement.txt").is_file() && dir.join("closing.txt").is_file(),
            "{}: the team's own acknowledgement and closing texts",
            example.display()
        );
        let templates =
            Templates::load(Some(&dir)).unwrap_or_else(|e| panic!("{}: {e}", example.display()));
        let vars = Vars {
            ticket: "T-7".into(),
            tag: "[#T-7]".into(),
            subject: "Consulta".into(),
            name: "Ana".into(),
            team: config.deployment.name.clone(),
            outcome: "finalizada con éxito".into(),
            ..Vars::default()
        };
        for name in templates.names() {
            let r = templates
                .render(&name, &vars)
                .unwrap_or_else(|e| panic!("{}: {name}: {e}", example.display()));
            assert!(
                r.subject.contains("[#T-7]"),
                "{}: {name}: {}",
                example.display(),
                r.subject
            );
            assert!(r.text.contains("T-7"), "{}: {name}", example.display());
        }
        for name in [
            ACKNOWLEDGEMENT,
            CLOSING,
            OWNER_NEW,
            OWNER_ASSIGNED,
            OWNER_REPLY,
            NOTIFY,
        ] {
            assert!(templates.contains(name), "{}: {name}", example.display());
        }
    }
}
