//! `buzon check` and the exit codes an admin and systemd rely on: 0 when
//! `run` can start, 78 (EX_CONFIG) for a mistake in the configuration, the
//! rules or the templates, at `check` and at `run` alike, 75 when the
//! database cannot be reached now, 2 for a usage mistake. Every problem of
//! a configuration at once, in the same order every time.

use std::path::{Path, PathBuf};
use std::process::Output;

const EX_CONFIG: i32 = 78;
const EX_TEMPFAIL: i32 = 75;

fn buzon(config: &Path, args: &[&str]) -> Output {
    assert_cmd::Command::cargo_bin("buzon")
        .unwrap()
        .env_remove("BUZON_DATABASE_URL")
        .env_remove("BUZON_OUTBOX_DIR")
        .env_remove("BUZON_CONFIG")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A deployment in a temp dir: the config, `rules/`, `templates/`.
fn deployment(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let path = dir.path().join("buzon.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

const GOOD: &str = r#"
[deployment]
name = "Soporte"

[database]
url = "sqlite:buzon.db"

[outbox]
dir = "outbox"

[rules]
dir = "rules"

[templates]
dir = "templates"

[people.camila]
name = "Camila Rojas"
address = "camila@example.cl"

[mailboxes.soporte]
address = "soporte@example.cl"
owner = "camila"
priority = "alta"
"#;

const RULE_WITH_TEMPLATE: &str = r#"
[[rule]]
name = "pedido"
when.subject.contains = "pedido"
ack = "pedido"
"#;

/// Nine mistakes: two type errors in different tables, a type error beside
/// an unknown key and a bad address, a port out of range.
const NINE: &str = r#"
[deployment]
time_zone = "Mars/Olympus"
nmae = "x"

[database]
max_connections = "muchas"

[limits]
max_message_bytes = "grande"

[daemon]
listen = "127.0.0.1:99999"

[mailboxes.soporte]
address = "no es correo"
priority = "altisima"
acknowledgee = true

[people.camila]
address = "camila"
"#;

#[test]
fn a_good_deployment_checks_clean_and_says_what_it_looked_at() {
    let (dir, config) = deployment(GOOD);
    let out = buzon(&config, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for topic in ["configuration", "rules", "templates", "outbox", "database"] {
        assert!(
            stdout.contains(&format!(": {topic}: ")),
            "{topic}\n{stdout}"
        );
    }
    // Nothing was created: check runs before `run`, as another user.
    assert!(!dir.path().join("buzon.db").exists());
    // Once migrated, it says so.
    assert!(buzon(&config, &["migrate"]).status.success());
    let out = buzon(&config, &["check"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: database: reachable, up to date"),
        "{}",
        text(&out)
    );
}

#[test]
fn nine_mistakes_are_nine_lines_in_the_same_order_twice() {
    let (_dir, config) = deployment(NINE);
    let lines = |out: &Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.starts_with("  "))
            .map(str::to_string)
            .collect()
    };
    let first = buzon(&config, &["check"]);
    assert_eq!(first.status.code(), Some(EX_CONFIG), "{}", text(&first));
    assert_eq!(lines(&first).len(), 9, "{}", text(&first));
    let second = buzon(&config, &["check"]);
    assert_eq!(lines(&second), lines(&first));
    // `run` refuses the same file with the same exit status (systemd's
    // RestartPreventExitStatus=78 then stops restarting it).
    let run = buzon(&config, &["run", "--once"]);
    assert_eq!(run.status.code(), Some(EX_CONFIG), "{}", text(&run));
    assert_eq!(lines(&run), lines(&first));
}

#[test]
fn a_rule_naming_a_missing_template_fails_check_and_run_alike() {
    let (dir, config) = deployment(GOOD);
    std::fs::write(dir.path().join("rules/10-pedidos.toml"), RULE_WITH_TEMPLATE).unwrap();
    let out = buzon(&config, &["check"]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("problem: rules: "),
        "{}",
        text(&out)
    );
    let run = buzon(&config, &["run", "--once"]);
    assert_eq!(run.status.code(), Some(EX_CONFIG), "{}", text(&run));
    // With the template written, both accept it.
    std::fs::write(
        dir.path().join("templates/pedido.txt"),
        "Subject: Pedido {{ ticket }}\n\nRecibimos su pedido.\n",
    )
    .unwrap();
    let out = buzon(&config, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_broken_template_is_a_configuration_problem() {
    let (dir, config) = deployment(GOOD);
    std::fs::write(
        dir.path().join("templates/acknowledgement.txt"),
        "Subject: {{ ticket }\n\nHola.\n",
    )
    .unwrap();
    let out = buzon(&config, &["check"]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("problem: templates: "),
        "{}",
        text(&out)
    );
}

#[test]
fn secret_files_must_be_readable() {
    let config = format!(
        "{GOOD}\n[accounts.soporte]\nhost = \"imap.example.cl\"\nusername = \"soporte\"\n\
         password_file = \"secretos/imap\"\nfolders = [{{ folder = \"INBOX\", mailbox = \"soporte\" }}]\n"
    );
    let (dir, path) = deployment(&config);
    let out = buzon(&path, &["check"]);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("accounts.soporte.password_file:"),
        "{}",
        text(&out)
    );
    std::fs::create_dir(dir.path().join("secretos")).unwrap();
    std::fs::write(dir.path().join("secretos/imap"), "clave\n").unwrap();
    let out = buzon(&path, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_unreachable_database_is_retry_later() {
    let config = GOOD.replace(
        "url = \"sqlite:buzon.db\"",
        "url = \"postgres://buzon@127.0.0.1:9/buzon\"",
    );
    let (_dir, path) = deployment(&config);
    let out = buzon(&path, &["check"]);
    assert_eq!(out.status.code(), Some(EX_TEMPFAIL), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("unreachable: database: "),
        "{}",
        text(&out)
    );
}

#[test]
fn usage_mistakes_exit_2() {
    let (_dir, path) = deployment(GOOD);
    assert_eq!(buzon(&path, &["check", "--nope"]).status.code(), Some(2));
    assert_eq!(buzon(&path, &["no-such-command"]).status.code(), Some(2));
}
