//! The example deployments under `examples/*/` are runnable documentation:
//! each one's configuration loads, its rules load without warnings, and its
//! own `[[test]]` cases pass. A broken rule file is refused with located
//! errors, the way `buzon rules check` reports them.

use std::path::{Path, PathBuf};

use buzon::config::{Config, Sources};
use buzon::rules::{LoadContext, RuleSet, cli};

/// Every `examples/NAME/` with a `buzon.toml` and a `rules/` directory.
fn examples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("buzon.toml").is_file() && p.join("rules").is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn config(example: &Path) -> Config {
    Config::load(Sources {
        file: Some(example.join("buzon.toml")),
        env: vec![],
    })
    .unwrap_or_else(|e| {
        panic!(
            "{}: the configuration does not load:\n{e}",
            example.display()
        )
    })
}

fn rules_dir(config: &Config) -> PathBuf {
    config
        .rules
        .dir
        .clone()
        .expect("the example sets [rules] dir")
}

#[test]
fn every_example_loads_and_passes_its_rule_tests() {
    let dirs = examples();
    assert!(
        dirs.len() >= 5,
        "expected the five team examples, found {dirs:?}"
    );
    for example in dirs {
        let config = config(&example);
        let ctx = LoadContext::from_config(&config).unwrap();
        let set = RuleSet::load(&rules_dir(&config), &ctx)
            .unwrap_or_else(|e| panic!("{}: rules do not load:\n{e}", example.display()));
        let warnings: Vec<String> = set.warnings().iter().map(|w| w.to_string()).collect();
        assert!(warnings.is_empty(), "{}: {warnings:#?}", example.display());
        assert!(
            set.test_count() > 0,
            "{}: no [[test]] cases",
            example.display()
        );
        let report = set.run_tests(&config);
        assert_eq!(
            report.failed(),
            0,
            "{}:\n{}",
            example.display(),
            report.to_text()
        );
    }
}

#[test]
fn every_example_template_loads() {
    for example in examples() {
        let config = config(&example);
        let dir = config.templates.dir.clone();
        assert!(dir.is_some(), "{}: no [templates] dir", example.display());
        if let Err(e) = buzon::outbound::templates::Templates::load(dir.as_deref()) {
            panic!("{}: templates do not load:\n{e}", example.display());
        }
    }
}

#[test]
fn rules_check_and_rules_test_succeed_for_every_example() {
    for example in examples() {
        let config = config(&example);
        let dir = rules_dir(&config);
        let (out, ok) = cli::check(&dir, &config);
        assert!(ok, "{}: rules check failed:\n{out}", example.display());
        assert!(out.starts_with("rules ok:"), "{out}");
        let (out, ok) = cli::test(&dir, &config);
        assert!(ok, "{}: rules test failed:\n{out}", example.display());
        assert!(out.trim_end().ends_with(" 0 failed"), "{out}");
    }
}

#[test]
fn a_broken_rule_file_is_refused_with_located_errors_and_hints() {
    let example = examples().into_iter().next().expect("an example");
    let config = config(&example);
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(rules_dir(&config)).unwrap().flatten() {
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    let broken = "\
# an admin's typo and a half-written regex
[[rule]]
name = \"roto\"
when.subject.regex = 'pedido (?P<order>\\d+'
pipline = \"Finanzas\"
";
    std::fs::write(tmp.path().join("50-roto.toml"), broken).unwrap();
    let ctx = LoadContext::from_config(&config).unwrap();
    let errors = RuleSet::load(tmp.path(), &ctx).expect_err("a broken file must be refused");
    let text = errors.to_string();
    let file = tmp.path().join("50-roto.toml").display().to_string();
    assert!(
        text.contains(&format!(
            "{file}:5:1: error: unknown field `pipline` in a rule"
        )),
        "{text}"
    );
    assert!(text.contains("hint: did you mean `pipeline`?"), "{text}");
    assert!(
        text.contains(&format!(
            "{file}:4:30: error: invalid regex: unclosed group"
        )),
        "{text}"
    );
    assert_eq!(errors.error_count(), 2, "{text}");

    // `rules check` says the same and fails.
    let (out, ok) = cli::check(tmp.path(), &config);
    assert!(!ok);
    assert!(out.contains("unknown field `pipline`"), "{out}");
}

/// The example teams' deadlines, counted in their own calendars and time
/// zones (the worked example of `rules/README.md`, "Deadlines").
#[test]
fn deadlines_follow_each_teams_calendar_and_holidays() {
    let load = |name: &str| {
        let config = config(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("examples")
                .join(name),
        );
        let ctx = LoadContext::from_config(&config).unwrap();
        let set = RuleSet::load(&rules_dir(&config), &ctx).unwrap();
        let tz = config.deployment.zone.clone();
        (set, tz)
    };
    let at = |local: &str, tz: &jiff::tz::TimeZone| {
        let civil: jiff::civil::DateTime = local.parse().unwrap();
        civil
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .as_millisecond()
    };
    let hour = 3_600_000;

    // PVI, Santiago: a complaint (2 and 9 business hours) on Christmas Eve.
    let (pvi, santiago) = load("pvi");
    let opened = at("2026-12-24T16:00", &santiago);
    let first = pvi.due_at_ms(opened, 2, true, &santiago);
    assert_eq!(first, at("2026-12-24T18:00", &santiago));
    let due = pvi.due_at_ms(opened, 9, true, &santiago);
    assert_eq!(due, at("2026-12-28T16:00", &santiago));
    // Waiting on the contact from Monday 10:00 to Wednesday 15:00.
    let paused = at("2026-12-28T10:00", &santiago);
    let left = pvi.work_ms_between(paused, due, true, &santiago);
    assert_eq!(left, 6 * hour);
    let resumed = at("2026-12-30T15:00", &santiago);
    assert_eq!(
        pvi.add_work_ms(resumed, left, true, &santiago),
        at("2026-12-31T12:00", &santiago)
    );

    // Genera Factoring, Lima: a rescue (18 business hours) on the Friday
    // before Fiestas Patrias (Tuesday 28 and Wednesday 29 July).
    let (genera, lima) = load("genera-factoring");
    let opened = at("2026-07-24T17:00", &lima);
    assert_eq!(
        genera.due_at_ms(opened, 18, true, &lima),
        at("2026-07-30T17:00", &lima)
    );
    assert_eq!(genera.business_hours().holidays.len(), 16);
}
