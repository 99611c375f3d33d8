//! `buzon run`: wires the long-running workers together.
//!
//! One task per watched IMAP folder (a slow or broken account never delays
//! another), one outbox worker woken by new tickets, the health endpoint,
//! and the signal handling: SIGTERM/SIGINT stop taking new mail, let the
//! transaction in flight finish and exit within 10 s; SIGHUP asks for a
//! reload. systemd is told READY once the workers run, and pinged by the
//! watchdog while the runtime is alive.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::deadline::Watch;
use crate::health::{self, Health};
use crate::outbound::deliver::{self, Transport};
use crate::rules::{LiveRules, LoadContext, Reload};
use crate::source::imap::{self, DrainStats, FolderWorker};
use crate::store::{Store, now_ms};

/// How long shutdown waits for workers to finish what they are doing.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(9);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {addr} for {what}: {cause}")]
    Listen {
        addr: String,
        /// What would have been served there.
        what: &'static str,
        cause: std::io::Error,
    },
    #[error("the web workspace cannot start: {0}")]
    Web(String),
    #[error("{failed} folder(s) could not be drained: {errors}")]
    Folders { failed: usize, errors: String },
    #[error("the rules cannot be loaded; fix them (`buzon rules check`) and start again:\n{0}")]
    Rules(String),
    /// What `buzon check` reports as problems: rules, templates, the
    /// outbound transport's settings.
    #[error("cannot start; fix these (`buzon check`) and start again:\n{0}")]
    Config(String),
}

/// Refuses to start over what `buzon check` would call a problem, naming
/// every one (a template the pipeline would refuse later, a transport
/// without its password file).
fn check_files(config: &Config) -> Result<(), DaemonError> {
    let findings = crate::check::files(config);
    let problems: Vec<String> = findings
        .iter()
        .filter(|f| f.status == crate::check::Status::Config)
        .map(|f| format!("  {}: {}", f.topic, f.text))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DaemonError::Config(problems.join("\n")))
    }
}

/// The live rule set, if a rules directory is configured.
fn live_rules(config: &Config) -> Result<Option<Arc<LiveRules>>, DaemonError> {
    let Some(dir) = &config.rules.dir else {
        return Ok(None);
    };
    let ctx = LoadContext::from_config(config).map_err(|e| DaemonError::Rules(e.to_string()))?;
    let live = LiveRules::load(dir, ctx)
        .map_err(|e| DaemonError::Rules(e.to_string()))?
        .with_templates_dir(config.templates.dir.clone());
    tracing::info!(dir = %dir.display(), rules = live.current().rule_count(), "Rules loaded.");
    Ok(Some(Arc::new(live)))
}

/// Logs what a reload did; a refused set leaves the previous one active.
fn report_reload(outcome: Reload) {
    match outcome {
        Reload::Unchanged => {}
        Reload::Reloaded { rules, warnings } => {
            tracing::info!(rules, warnings = warnings.len(), "Rules reloaded.");
            for w in warnings {
                tracing::warn!(warning = %w, "Rule warning.");
            }
        }
        Reload::Refused(errors) => tracing::error!(
            errors = %errors,
            "New rules refused; the previous rules stay active."
        ),
    }
}

/// What `run --once` did, per folder.
pub type OnceReport = Vec<(String, Result<DrainStats, String>)>;

/// This instance's name in leases: configured, or host name and pid.
pub fn instance_name(config: &Config) -> String {
    config.daemon.instance.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "buzon".into());
        // A random suffix keeps two hosts that both fall back to "buzon"
        // (hardened units hide the host name) from sharing a name.
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}-{}-{}", std::process::id(), &suffix[..6])
    })
}

/// Where outgoing mail goes, if anywhere.
fn transport(config: &Config) -> Option<Transport> {
    match Transport::from_config(config) {
        Ok(transport) => transport,
        Err(error) => {
            tracing::error!(%error, "Cannot set up the outbound transport; outgoing mail stays queued.");
            None
        }
    }
}

/// Drains every folder once, then the outbox, and returns per-folder counts.
pub async fn run_once(config: Arc<Config>, store: Store) -> Result<OnceReport, DaemonError> {
    let health = Arc::new(Health::new());
    let outbox = Arc::new(Notify::new());
    let (_stop_tx, stop_rx) = watch::channel(false);
    let instance = instance_name(&config);
    check_files(&config)?;
    let rules = live_rules(&config)?;
    let workers = imap::workers(&config, &store, &health, &instance, &outbox, rules.as_ref());
    let mut tasks = Vec::new();
    for worker in workers {
        let name = worker.name();
        let rx = stop_rx.clone();
        tasks.push((name, tokio::spawn(worker.run(rx, true))));
    }
    // A first import of a big mailbox takes a while: show progress on a
    // terminal (never in logs or pipes).
    let progress = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let health = health.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let line: Vec<String> = health
                    .snapshot()
                    .iter()
                    .map(|(name, h)| format!("{name}: {} stored, {} to go", h.ingested, h.lag))
                    .collect();
                eprint!("\r\x1b[K{}", line.join("  |  "));
            }
        })
    });
    let mut report = Vec::new();
    for (name, task) in tasks {
        let result = match task.await {
            Ok(Ok(stats)) => Ok(stats),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("worker crashed: {e}")),
        };
        report.push((name, result));
    }
    if let Some(p) = progress {
        p.abort();
        eprint!("\r\x1b[K");
    }
    check_deadlines(&config, &store).await;
    carry_out_staff_mail(&config, &store).await;
    if let Some(t) = transport(&config)
        && let Err(e) = deliver::drain(&store, &t, now_ms()).await
    {
        tracing::warn!(error = %e, "Outbox delivery failed; it will be retried.");
    }
    Ok(report)
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(config: Arc<Config>, store: Store) -> Result<(), DaemonError> {
    let health = Arc::new(Health::new());
    let outbox = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let instance = instance_name(&config);
    check_files(&config)?;

    let http = if config.daemon.listen.is_empty() {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(&config.daemon.listen)
            .await
            .map_err(|cause| DaemonError::Listen {
                addr: config.daemon.listen.clone(),
                what: "/healthz and /metrics (daemon.listen)",
                cause,
            })?;
        if let Ok(addr) = listener.local_addr() {
            tracing::info!(%addr, "Health endpoint listening: /healthz and /metrics.");
        }
        let after = i64::try_from(config.daemon.unhealthy_after_seconds).unwrap_or(300) * 1000;
        Some(tokio::spawn(health::serve(listener, health.clone(), after)))
    };

    let rules = live_rules(&config)?;
    let web = start_web(&config, &store, rules.clone()).await?;
    let mut tasks = Vec::new();
    for worker in imap::workers(&config, &store, &health, &instance, &outbox, rules.as_ref()) {
        tasks.push(spawn_worker(worker, stop_rx.clone()));
    }
    let deadline_task = tokio::spawn(deadline_worker(
        config.clone(),
        store.clone(),
        health.clone(),
        outbox.clone(),
        stop_rx.clone(),
    ));
    let outbox_task = tokio::spawn(outbox_worker(
        config.clone(),
        store.clone(),
        health.clone(),
        outbox.clone(),
        stop_rx.clone(),
    ));
    tracing::info!(
        instance = %instance,
        folders = tasks.len(),
        listen = %config.daemon.listen,
        "buzon is running."
    );
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = sd_notify::watchdog_enabled().map(|period| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period / 2);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            }
        })
    });

    wait_for_stop(&config, rules.as_deref()).await;
    tracing::info!("Stopping: finishing the mail in flight.");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    let _ = stop_tx.send(true);
    outbox.notify_one();
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!(
            "Some folders did not stop in time; their mail will be re-fetched (never doubled)."
        );
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), outbox_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), deadline_task).await;
    if let Some(h) = http {
        h.abort();
    }
    if let Some(w) = web {
        w.abort();
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    Ok(())
}

/// Serves the agents' workspace when `[web] listen` is set.
async fn start_web(
    config: &Arc<Config>,
    store: &Store,
    rules: Option<Arc<LiveRules>>,
) -> Result<Option<tokio::task::JoinHandle<()>>, DaemonError> {
    if config.web.listen.is_empty() {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(&config.web.listen)
        .await
        .map_err(|cause| DaemonError::Listen {
            addr: config.web.listen.clone(),
            what: "the web workspace (web.listen)",
            cause,
        })?;
    let app = crate::web::App::new(config.clone(), store.clone(), rules)
        .map_err(|e| DaemonError::Web(e.to_string()))?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "Web workspace listening.");
    }
    Ok(Some(tokio::spawn(async move {
        if let Err(e) = crate::web::serve(listener, app).await {
            tracing::error!(error = %e, "The web workspace stopped.");
        }
    })))
}

fn spawn_worker(worker: FolderWorker, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let name = worker.name();
        if let Err(e) = worker.run(stop, false).await {
            tracing::error!(folder = %name, error = %e, "Folder worker stopped.");
        }
    })
}

/// Delivers the outbox whenever a ticket was created, and every few seconds.
async fn outbox_worker(
    config: Arc<Config>,
    store: Store,
    health: Arc<Health>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = transport(&config);
    if transport.is_none() {
        tracing::info!("No outbound transport configured; outgoing mail stays queued.");
    }
    let poll = Duration::from_secs(config.daemon.outbox_poll_seconds.max(1));
    loop {
        // Agents' answers by mail first: what they queue goes out now.
        carry_out_staff_mail(&config, &store).await;
        let drained = match &transport {
            Some(t) => Some(deliver::drain(&store, t, now_ms()).await),
            None => None,
        };
        match drained {
            Some(Ok(report)) => {
                health
                    .outbox_sent
                    .fetch_add(report.sent as u64, Ordering::Relaxed);
                health
                    .outbox_failed
                    .fetch_add(report.failed as u64, Ordering::Relaxed);
            }
            Some(Err(e)) => tracing::warn!(error = %e, "Outbox delivery failed; will retry."),
            None => {}
        }
        if let Ok(queued) = store
            .outbox_list(Some(crate::ticket::OutboxStatus::Queued))
            .await
        {
            health
                .outbox_depth
                .store(queued.len() as i64, Ordering::Relaxed);
        }
        if *stop.borrow() {
            return;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Carries out the agents' mails the intake queued (see `mailroom`); a
/// failure is logged and the jobs are tried again on the next pass.
async fn carry_out_staff_mail(config: &Config, store: &Store) {
    match crate::mailroom::run::run_pending(config, store).await {
        Ok(r) if r.done + r.refused > 0 => {
            tracing::info!(
                done = r.done,
                refused = r.refused,
                "Agents' mails carried out."
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "Agents' mails not carried out yet; will retry."),
    }
}

/// One pass over the deadlines; a failure is logged and retried next pass
/// (nothing is lost: a breach without an alert is found again).
async fn check_deadlines(config: &Config, store: &Store) -> usize {
    let watch = match Watch::new(config, store).await {
        Ok(w) => w,
        Err(error) => {
            tracing::error!(%error, "Cannot check deadlines.");
            return 0;
        }
    };
    match watch.check(now_ms()).await {
        Ok(report) => report.recorded,
        Err(error) => {
            tracing::warn!(%error, "Checking deadlines failed; will retry.");
            0
        }
    }
}

/// Looks for missed deadlines every `deadlines.check_seconds`, and wakes the
/// outbox when it queued alerts.
async fn deadline_worker(
    config: Arc<Config>,
    store: Store,
    health: Arc<Health>,
    outbox: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(config.deadlines.check_seconds.max(1));
    loop {
        let recorded = check_deadlines(&config, &store).await;
        if recorded > 0 {
            health
                .deadlines_missed
                .fetch_add(recorded as u64, Ordering::Relaxed);
            outbox.notify_one();
        }
        if let Ok(open) = store.alerts(None, false).await {
            health
                .alerts_open
                .store(open.len() as i64, Ordering::Relaxed);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}

/// On SIGHUP: reads the configuration file again and checks it as `buzon
/// check` does, and names what changed that only a restart applies. The
/// running daemon keeps the configuration it started with; only the rules
/// are replaced (by the caller), so a broken file changes nothing.
fn report_config_on_reload(running: &Config) {
    let Some(path) = &running.source else {
        return;
    };
    let fresh = match Config::load(crate::config::Sources {
        file: Some(path.clone()),
        env: std::env::vars().collect(),
    }) {
        Ok(fresh) => fresh,
        Err(error) => {
            tracing::error!(
                %error,
                "The configuration file has problems; the running configuration stays. Fix it (`buzon check`) before the next restart."
            );
            return;
        }
    };
    for finding in crate::check::files(&fresh) {
        if finding.status == crate::check::Status::Config {
            tracing::error!(topic = %finding.topic, problem = %finding.text, "A restart would fail on this; fix it (`buzon check`).");
        }
    }
    let changed = changed_sections(running, &fresh);
    if !changed.is_empty() {
        tracing::warn!(
            sections = %changed.join(", "),
            "Changed in the configuration file; applied at the next restart (`systemctl restart buzon`)."
        );
    }
}

/// The sections of the configuration that differ between two loads.
fn changed_sections(a: &Config, b: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut differs = |name: &'static str, x: String, y: String| {
        if x != y {
            out.push(name);
        }
    };
    differs(
        "deployment",
        format!("{:?}", a.deployment),
        format!("{:?}", b.deployment),
    );
    differs(
        "database",
        format!("{:?}", a.database),
        format!("{:?}", b.database),
    );
    differs(
        "limits",
        format!("{:?}", a.limits),
        format!("{:?}", b.limits),
    );
    differs(
        "outbox",
        format!("{:?}", a.outbox),
        format!("{:?}", b.outbox),
    );
    differs("smtp", format!("{:?}", a.smtp), format!("{:?}", b.smtp));
    differs(
        "people",
        format!("{:?}", a.people),
        format!("{:?}", b.people),
    );
    differs("rules", format!("{:?}", a.rules), format!("{:?}", b.rules));
    differs(
        "templates",
        format!("{:?}", a.templates),
        format!("{:?}", b.templates),
    );
    differs(
        "daemon",
        format!("{:?}", a.daemon),
        format!("{:?}", b.daemon),
    );
    differs("web", format!("{:?}", a.web), format!("{:?}", b.web));
    differs(
        "security",
        format!("{:?}", a.security),
        format!("{:?}", b.security),
    );
    differs(
        "deadlines",
        format!("{:?}", a.deadlines),
        format!("{:?}", b.deadlines),
    );
    differs(
        "accounts",
        format!("{:?}", a.accounts),
        format!("{:?}", b.accounts),
    );
    differs(
        "mailboxes",
        format!("{:?}", a.mailboxes),
        format!("{:?}", b.mailboxes),
    );
    out
}

/// Resolves on SIGTERM or SIGINT. Meanwhile reloads the rules on SIGHUP,
/// and whenever a rule file changes (checked every two seconds).
async fn wait_for_stop(config: &Config, rules: Option<&LiveRules>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
                report_config_on_reload(config);
                match rules {
                    Some(live) => report_reload(live.reload()),
                    None => tracing::info!("SIGHUP: no rules directory configured; no rules to reload."),
                }
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            },
            _ = tick.tick() => {
                if let Some(live) = rules {
                    report_reload(live.reload_if_changed());
                }
            }
        }
    }
}
