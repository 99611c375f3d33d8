//! Test harness shared by the integration tests: a temp deployment (config
//! file, database, outbox directory) on SQLite or on the real PostgreSQL
//! that `tests/run.sh` starts, and helpers to drive the `buzon` binary.
#![allow(dead_code)]

pub mod http;
pub mod inbox;
pub mod mailstack;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;

/// Which database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server for tests. Fails (never skips) when absent.
pub fn postgres_admin_url() -> String {
    match std::env::var("BUZON_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "BUZON_TEST_POSTGRES_URL is not set: the PostgreSQL tests need a real server. \
             Run `bash tests/run.sh` (it installs Debian's `postgresql` package if missing and \
             starts a private server on loopback), or point BUZON_TEST_POSTGRES_URL at one."
        ),
    }
}

/// Creates a fresh, empty PostgreSQL database and returns its URL.
pub fn fresh_postgres_database() -> String {
    let admin = postgres_admin_url();
    let name = format!("buzon_t_{}", uuid_like());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to BUZON_TEST_POSTGRES_URL ({admin}): {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Mailboxes every test deployment has.
pub const MAILBOXES: &str = r#"
[mailboxes.soporte]
address = "soporte@tupatrimonio.example"
pipeline = "Soporte"
priority = "medium"

[mailboxes.servicioalcliente]
address = "servicioalcliente@generafactoring.example"
pipeline = "Comercial"

[mailboxes.finanzas]
address = "finanzas@generafactoring.example"
pipeline = "Finanzas"
owner = "alonso"
priority = "high"
"#;

/// The admin every test deployment has, and who acts on the command line
/// unless a test says `--as` someone else (`BUZON_AS`).
pub const SUPERVISOR: &str =
    "[people.supervisora]\nname = \"Supervisora de prueba\"\nrole = \"admin\"\n";

/// A deployment in a temp dir.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub outbox: PathBuf,
    pub database_url: String,
}

impl Deployment {
    pub fn new(backend: Backend) -> Deployment {
        Self::with_extra(backend, "")
    }

    /// A deployment whose config has `extra` appended (more sections).
    pub fn with_extra(backend: Backend, extra: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite:{}", dir.path().join("buzon.db").display()),
            Backend::Postgres => fresh_postgres_database(),
        };
        let outbox = dir.path().join("outbox");
        let config = dir.path().join("buzon.toml");
        let text = format!(
            "[deployment]\nname = \"Soporte de prueba\"\ntime_zone = \"America/Santiago\"\n\
             our_domains = [\"tupatrimonio.example\"]\n\n[database]\nurl = \"{database_url}\"\n\n\
             [outbox]\ndir = \"{}\"\n{MAILBOXES}\n{extra}\n\n{SUPERVISOR}",
            outbox.display()
        );
        std::fs::write(&config, text).unwrap();
        Deployment {
            dir,
            config,
            outbox,
            database_url,
        }
    }

    /// `buzon --config <this deployment> ARGS...`, with a clean environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::cargo_bin("buzon").unwrap();
        cmd.env_remove("BUZON_DATABASE_URL")
            .env_remove("BUZON_OUTBOX_DIR")
            .env_remove("BUZON_CONFIG")
            .env("BUZON_AS", "supervisora")
            .arg("--config")
            .arg(&self.config);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "buzon {args:?} failed ({:?})\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes `body` to a file and runs `buzon tickets VERB N --body-file
    /// FILE --as AGENT` (reply, update): what an agent does.
    pub fn agent_mail(&self, verb: &str, number: &str, body: &str, agent: &str) -> Output {
        let file = self.dir.path().join(format!("{verb}-{number}.txt"));
        std::fs::write(&file, body).unwrap();
        let file = file.to_str().unwrap();
        self.run(&["tickets", verb, number, "--body-file", file, "--as", agent])
    }

    /// As `agent_mail`, asserting success; returns stdout.
    pub fn agent_mail_ok(&self, verb: &str, number: &str, body: &str, agent: &str) -> String {
        let out = self.agent_mail(verb, number, body, agent);
        assert!(
            out.status.success(),
            "buzon tickets {verb} {number} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ingest(&self, mailbox: &str, file: &Path) -> String {
        self.ok(&["ingest", "--mailbox", mailbox, file.to_str().unwrap()])
    }

    pub fn tickets_json(&self) -> Vec<serde_json::Value> {
        let out = self.ok(&["tickets", "list", "--all", "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["tickets"].as_array().unwrap().clone()
    }

    /// A ticket's history as (kind, `field`) pairs, `field` being
    /// "detail" or "actor".
    pub fn events(&self, number: &str, field: &str) -> Vec<(String, String)> {
        self.show_json(number)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e[field].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn show_json(&self, number: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["tickets", "show", number, "--format", "json"])).unwrap()
    }

    /// The one value `sql` reads from the deployment's database (a count, a
    /// blob ...), on either backend.
    pub fn scalar<T>(&self, sql: &str) -> T
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
        T: Send + Unpin,
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let sql = sqlx::AssertSqlSafe(sql.to_string());
            if self.database_url.starts_with("sqlite:") {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            } else {
                let mut c = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        })
    }

    /// Runs `sql` (statements, no answer) on the deployment's database, on
    /// either backend: rows written as the pipeline writes them, so the
    /// triggers see each one.
    pub fn execute(&self, sql: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let sql = sqlx::AssertSqlSafe(sql.to_string());
            if self.database_url.starts_with("sqlite:") {
                let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            } else {
                let mut c = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .unwrap();
                sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
            }
        });
    }

    /// The `.eml` files written to the outbox directory, sorted.
    pub fn outbox_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.outbox)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }
}

/// The ticket numbers (`T-12`) printed by `buzon ingest`.
pub fn ticket_numbers(output: &str) -> Vec<String> {
    output
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':')
        .filter(|w| {
            w.starts_with("T-") && w[2..].chars().all(|c| c.is_ascii_digit()) && w.len() > 2
        })
        .map(str::to_string)
        .collect()
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Generates `sqlite` and `postgres` variants of a test body taking a
/// `Backend`, so every store behaviour is checked on both.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name($crate::common::Backend::Postgres) } )*
        }
    };
}

/// A plain HTTP GET on loopback: the status code and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let r = http::request(port, "GET", path, &[], "");
    (r.status, r.body)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A configuration for driving the library directly: SQLite at `db`, one
/// mailbox `name` with `address`, built-in templates, no rules.
pub fn library_config(db: &Path, name: &str, address: &str) -> buzon::config::Config {
    let mut config = buzon::config::Config::with_defaults(format!("sqlite:{}", db.display()));
    config.mailboxes.insert(
        name.into(),
        buzon::config::Mailbox {
            address: address.into(),
            display_name: None,
            pipeline: "Soporte".into(),
            owner: None,
            priority: Default::default(),
            acknowledge: true,
        },
    );
    config
}
