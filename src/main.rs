//! The `buzon` command: parses arguments, sets up logging, loads the
//! configuration and hands each command group to its module under `cli/`,
//! a thin adapter over the library (the action layer for everything done
//! to tickets). The only place that uses `anyhow` and decides exit codes.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;

use cli::{Cli, Command, LogFormat, outln};

/// glibc gives threads that allocate at once arenas of their own (up to
/// eight per core), and memory freed in one is not reused by another: the
/// intake parses the next batch on one thread while the store works on
/// another, which cost a fifth more resident memory (46–51 MB against
/// 38 MB for 10,000 mails) at the same speed. Two arenas are enough for a
/// program that works on two threads at a time.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn cap_malloc_arenas() {
    // SAFETY: mallopt only sets a tunable of the allocator; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn cap_malloc_arenas() {}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = cli::parse();
    let logs = init_logging(cli.log_format);
    let ingest = matches!(cli.command, Command::Ingest { .. });
    // `ingest` always asks the MTA to retry (an admin's mistake must not
    // bounce customers' mail); elsewhere a configuration problem is 78.
    let failure = |e: Option<&anyhow::Error>| {
        if ingest {
            ExitCode::from(cli::EX_TEMPFAIL)
        } else if e.is_some_and(is_config_problem) {
            ExitCode::from(cli::EX_CONFIG)
        } else {
            ExitCode::FAILURE
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            fatal(logs, &format!("cannot start the async runtime: {e}"));
            return failure(None);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            // A list of problems ends with a newline of its own.
            fatal(logs, format!("{e:#}").trim_end());
            failure(Some(&e))
        }
    }
}

/// Whether the error is a mistake in the configuration, rules or
/// templates (exit 78) rather than something that may work later.
fn is_config_problem(e: &anyhow::Error) -> bool {
    use buzon::daemon::DaemonError;
    use buzon::pipeline::PipelineError;
    e.chain().any(|c| {
        c.is::<buzon::config::ConfigError>()
            || c.is::<buzon::outbound::templates::TemplateErrors>()
            || c.is::<buzon::rules::RuleErrors>()
            || matches!(
                c.downcast_ref::<DaemonError>(),
                Some(DaemonError::Rules(_) | DaemonError::Config(_))
            )
            || matches!(
                c.downcast_ref::<PipelineError>(),
                Some(PipelineError::Rules(_) | PipelineError::Templates(_))
            )
            // The wrong buzon for this database: restarting will not help.
            || matches!(
                c.downcast_ref::<buzon::store::StoreError>(),
                Some(buzon::store::StoreError::Newer(_))
            )
    })
}

/// Library logs that carry secrets, silenced whatever `BUZON_LOG` says:
/// async-imap traces every line it sends (LOGIN passwords, the XOAUTH2
/// token), lettre's debug lines show the SMTP AUTH exchange.
const SECRET_BEARING_LOGS: &[&str] = &[
    "async_imap::imap_stream=off",
    "lettre::transport::smtp::client=info",
];

/// Sets up logging and says which format is in force: `--log-format`, else
/// the journal when systemd connected stderr to it (`JOURNAL_STREAM` names
/// stderr's device and inode), else human. A journal that cannot be
/// reached falls back to human on stderr.
fn init_logging(format: Option<LogFormat>) -> LogFormat {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("BUZON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    for directive in SECRET_BEARING_LOGS {
        if let Ok(d) = directive.parse() {
            filter = filter.add_directive(d);
        }
    }
    let format = format.unwrap_or_else(|| {
        if stderr_is_journal() {
            LogFormat::Journald
        } else {
            LogFormat::Human
        }
    });
    if format == LogFormat::Journald {
        match tracing_journald::layer() {
            Ok(journal) => {
                // `journalctl MAILBOX=soporte`: fields under their own names.
                let journal = journal
                    .with_field_prefix(None)
                    .with_syslog_identifier("buzon".into());
                tracing_subscriber::registry()
                    .with(filter)
                    .with(journal)
                    .init();
                return LogFormat::Journald;
            }
            Err(e) => eprintln!("buzon: cannot write to the journal ({e}); logging to stderr"),
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Json => {
            builder.json().init();
            LogFormat::Json
        }
        _ => {
            builder.init();
            LogFormat::Human
        }
    }
}

/// Whether stderr is the journal stream systemd set up for this service.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The error that ends the command, in the format of the logs: an error
/// record with priority err in the journal (`journalctl -p err -u buzon`),
/// a JSON line, or `buzon: ...` on stderr for people.
fn fatal(logs: LogFormat, message: &str) {
    match logs {
        LogFormat::Human => eprintln!("buzon: {message}"),
        LogFormat::Json | LogFormat::Journald => tracing::error!("{message}"),
    }
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    if let Command::Demo { dir, force } = &cli.command {
        return cli::demo::run(dir.clone(), *force).await;
    }
    if let Command::Generate { command } = cli.command {
        return cli::generate::run(command);
    }
    let config = cli::load_config(&cli.config)?;
    // Nothing opened or migrated: `check` is what admins run before a
    // restart.
    if let Command::Check { connect } = cli.command {
        return cli::check::run(&config, &cli.config, connect).await;
    }
    // `run` refuses a mistake in the files (exit 78) before it opens the
    // database, so that the unit's RestartPreventExitStatus=78 sees it
    // from the main process (see deploy/buzon.service).
    if let Command::Run { .. } = cli.command {
        buzon::daemon::check_files(&config)?;
    }
    // Rule commands need no database: admins run them before a reload.
    if let Command::Rules { command } = cli.command {
        return cli::rules::run(&config, command);
    }
    let store = cli::open_store(&config).await?;
    let code = match cli.command {
        Command::Ingest { mailbox, files } => {
            cli::ingest::ingest(&config, &store, &mailbox, &files).await?
        }
        Command::Tickets { actor, command } => {
            cli::tickets::run(&config, &store, actor, command).await?
        }
        Command::Quarantine { command } => {
            cli::ingest::quarantine(&config, &store, command).await?
        }
        Command::Outbox { command } => cli::outbox::run(&config, &store, command).await?,
        Command::Webhooks { command } => cli::webhooks::run(&config, &store, command).await?,
        Command::Report(args) => cli::report::report(&config, &store, args).await?,
        Command::Alerts { owner, all, format } => {
            cli::report::alerts(&config, &store, owner.as_deref(), all, format).await?
        }
        Command::Passwd { name } => cli::passwd::run(&config, &store, &name).await?,
        Command::Token { command } => cli::token::run(&config, &store, command).await?,
        Command::Migrate => {
            outln!("database is up to date ({})", store.backend_name());
            ExitCode::SUCCESS
        }
        Command::Run { once } => cli::outbox::daemon(&config, &store, once).await?,
        Command::Rules { .. }
        | Command::Demo { .. }
        | Command::Check { .. }
        | Command::Generate { .. } => ExitCode::SUCCESS,
    };
    store.close().await;
    Ok(code)
}
