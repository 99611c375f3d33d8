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
use crate::health::{self, Health};
use crate::instance::Instance;
use crate::live::{Live, LiveError, Reload};
use crate::outbound::deliver::{self, Transport};
use crate::source::imap::{self, DrainStats, FolderWorker};
use crate::store::{Store, StoreError, now_ms};

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
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What `buzon check` reports as problems: rules, templates, the
    /// outbound transport's settings.
    #[error("cannot start; fix these (`buzon check`) and start again:\n{0}")]
    Config(String),
}

/// Refuses to start over what `buzon check` would call a problem, naming
/// every one (a template the pipeline would refuse later, a transport
/// without its password file).
pub fn check_files(config: &Config) -> Result<(), DaemonError> {
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

/// The rules, templates, people and mailboxes' defaults the workers start
/// each unit of work with, replaced on reload.
async fn live(config: &Arc<Config>, store: &Store) -> Result<Arc<Live>, DaemonError> {
    let live = Live::load(config.clone(), store)
        .await
        .map_err(|e| match e {
            LiveError::Store(e) => DaemonError::Store(e),
            LiveError::Pipeline(e) => DaemonError::Rules(e.to_string()),
        })?;
    let snap = live.current();
    tracing::info!(
        rules = snap.rules.rule_count(),
        "Rules and templates loaded."
    );
    Ok(Arc::new(live))
}

/// Logs what a reload did; a refused one leaves the previous set in force.
fn report_reload(outcome: Reload) {
    match outcome {
        Reload::Unchanged => {}
        Reload::Reloaded {
            rules,
            warnings,
            restart,
        } => {
            tracing::info!(
                rules,
                warnings = warnings.len(),
                "Reloaded: rules, templates, people and mailboxes' defaults now in force."
            );
            for w in warnings {
                tracing::warn!(warning = %w, "Rule warning.");
            }
            if !restart.is_empty() {
                tracing::warn!(
                    sections = %restart.join(", "),
                    "Changed in the configuration file; applied at the next restart (`systemctl restart buzon`)."
                );
            }
        }
        Reload::Refused(problems) => {
            for problem in &problems {
                tracing::error!(%problem, "Reload refused; fix it (`buzon check`).");
            }
            tracing::error!(
                problems = problems.len(),
                "New rules refused; the previous rules, templates and people stay in force."
            );
        }
    }
}

/// What `run --once` did, per folder.
pub type OnceReport = Vec<(String, Result<DrainStats, String>)>;

/// The webhook endpoints, if any (checked before starting).
fn webhooks(config: &Config) -> Option<crate::webhooks::deliver::Deliverer> {
    if config.webhooks.is_empty() {
        return None;
    }
    let loaded = crate::webhooks::Webhooks::load(config)
        .map_err(|e| e.to_string())
        .and_then(|h| crate::webhooks::deliver::Deliverer::new(h).map_err(|e| e.to_string()));
    match loaded {
        Ok(d) => Some(d),
        Err(error) => {
            tracing::error!(%error, "Cannot set up the webhooks; events stay queued.");
            None
        }
    }
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
    // Held to the end: the default name's lock (see `instance`).
    let instance = Instance::for_config(&config);
    check_files(&config)?;
    let live = live(&config, &store).await?;
    let workers = imap::workers(&config, &store, &health, &instance.name, &outbox, &live);
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
    check_deadlines(&live, &store).await;
    carry_out_staff_mail(&live, &store).await;
    resume_claims(&store, &instance.name).await;
    if let Some(t) = transport(&config)
        && let Err(e) = deliver::drain(&store, &t, &instance.name, now_ms()).await
    {
        tracing::warn!(error = %e, "Outbox delivery failed; it will be retried.");
    }
    // After the mail: its `message.sent` events go out in this run too
    // (without [[webhooks]], the events are dropped).
    let hooks = match webhooks(&config) {
        Some(hooks) => hooks
            .drain(&store, &instance.name, now_ms(), None)
            .await
            .map(|_| ()),
        None if config.webhooks.is_empty() => {
            crate::webhooks::deliver::fan_out(&store, &Default::default(), now_ms()).await
        }
        None => Ok(()),
    };
    if let Err(e) = hooks {
        tracing::warn!(error = %e, "Webhook delivery failed; it will be retried.");
    }
    Ok(report)
}

/// Runs until SIGTERM/SIGINT.
pub async fn run(config: Arc<Config>, store: Store) -> Result<(), DaemonError> {
    let health = Arc::new(Health::new());
    let outbox = Arc::new(Notify::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Held to the end: the default name's lock (see `instance`).
    let instance = Instance::for_config(&config);
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

    let live = live(&config, &store).await?;
    let web = start_web(&config, &store, live.clone()).await?;
    let mut tasks = Vec::new();
    for worker in imap::workers(&config, &store, &health, &instance.name, &outbox, &live) {
        tasks.push(spawn_worker(worker, stop_rx.clone()));
    }
    let deadline_task = tokio::spawn(deadline_worker(
        config.clone(),
        live.clone(),
        store.clone(),
        health.clone(),
        outbox.clone(),
        stop_rx.clone(),
    ));
    resume_claims(&store, &instance.name).await;
    let outbox_task = tokio::spawn(outbox_worker(
        instance.name.clone(),
        config.clone(),
        live.clone(),
        store.clone(),
        health.clone(),
        outbox.clone(),
        stop_rx.clone(),
    ));
    tracing::info!(
        instance = %instance.name,
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

    wait_for_stop(&live).await;
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
    live: Arc<Live>,
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
    let app = crate::web::App::new(config.clone(), store.clone(), live)
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
    instance: String,
    config: Arc<Config>,
    live: Arc<Live>,
    store: Store,
    health: Arc<Health>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = transport(&config);
    if transport.is_none() {
        tracing::info!("No outbound transport configured; outgoing mail stays queued.");
    }
    let hooks = webhooks(&config);
    let poll = Duration::from_secs(config.daemon.outbox_poll_seconds.max(1));
    let mut pruned: Option<tokio::time::Instant> = None;
    let mut outbox_trouble = Trouble::new("Outbox delivery");
    let mut hooks_trouble = Trouble::new("Webhook delivery");
    loop {
        if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            prune_webhooks(&store, config.daemon.webhooks_retention_ms()).await;
            pruned = Some(tokio::time::Instant::now());
        }
        // Agents' answers by mail first: what they queue goes out now.
        carry_out_staff_mail(&live, &store).await;
        let drained = match &transport {
            Some(t) => Some(deliver::drain(&store, t, &instance, now_ms()).await),
            None => None,
        };
        match drained {
            Some(Ok(report)) => {
                outbox_trouble.over();
                health
                    .outbox_sent
                    .fetch_add(report.sent as u64, Ordering::Relaxed);
                health
                    .outbox_failed
                    .fetch_add(report.failed as u64, Ordering::Relaxed);
            }
            Some(Err(e)) => outbox_trouble.failed(&e, &health),
            None => {}
        }
        match &hooks {
            Some(hooks) => {
                deliver_webhooks(hooks, &store, &instance, &health, &mut hooks_trouble).await
            }
            // No [[webhooks]]: the events changes wrote are dropped.
            None if config.webhooks.is_empty() => {
                if let Err(e) =
                    crate::webhooks::deliver::fan_out(&store, &Default::default(), now_ms()).await
                {
                    tracing::warn!(error = %e, "Webhook events not dropped; will retry.");
                }
            }
            None => {}
        }
        if let Ok(queued) = store.outbox_queued().await {
            health.outbox_depth.store(queued, Ordering::Relaxed);
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

/// Whether a periodic task of the outbox worker is failing (a full disk,
/// the database away), so that its error is logged when the trouble starts
/// and when it ends, not on every pass (every few seconds).
struct Trouble {
    what: &'static str,
    failing: bool,
}

impl Trouble {
    fn new(what: &'static str) -> Trouble {
        Trouble {
            what,
            failing: false,
        }
    }

    fn failed(&mut self, error: &crate::store::StoreError, health: &Health) {
        let what = self.what;
        if error.is_disk_full() {
            health.disk_full.fetch_add(1, Ordering::Relaxed);
        }
        if std::mem::replace(&mut self.failing, true) {
            tracing::debug!(%error, "{what} still failing.");
        } else if error.is_disk_full() {
            tracing::error!(%error, "{what} failed: the database's disk is full. Nothing is lost; it is retried by itself once there is space.");
        } else {
            tracing::warn!(%error, "{what} failed; will retry.");
        }
    }

    fn over(&mut self) {
        if std::mem::replace(&mut self.failing, false) {
            tracing::info!("{} works again.", self.what);
        }
    }
}

/// How often the daemon deletes the webhook deliveries older than
/// `[daemon] webhooks_retention` (and at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Deletes the delivered webhooks older than the retention; a failure is
/// logged and tried again at the next hour (nothing is lost by waiting).
async fn prune_webhooks(store: &Store, retention_ms: i64) {
    match store.hook_prune(now_ms() - retention_ms).await {
        Ok((0, 0)) => {}
        Ok((deliveries, events)) => tracing::info!(
            deliveries,
            events,
            "Delivered webhooks past [daemon] webhooks_retention deleted."
        ),
        Err(error) => tracing::warn!(%error, "Old webhooks not deleted yet; will retry."),
    }
}

/// One webhook round (after the mail, so a mail's `message.sent` goes in
/// the same pass), and the queue's figures for `/metrics`.
async fn deliver_webhooks(
    hooks: &crate::webhooks::deliver::Deliverer,
    store: &Store,
    instance: &str,
    health: &Health,
    trouble: &mut Trouble,
) {
    match hooks.drain(store, instance, now_ms(), Some(health)).await {
        Ok(report) => {
            trouble.over();
            health
                .webhooks_sent
                .fetch_add(report.sent as u64, Ordering::Relaxed);
            health
                .webhooks_failed
                .fetch_add(report.failed as u64, Ordering::Relaxed);
        }
        Err(e) => trouble.failed(&e, health),
    }
    if let Ok((queued, failed)) = store.hook_counts().await {
        health.webhooks_queued.store(queued, Ordering::Relaxed);
        health.webhooks_gave_up.store(failed, Ordering::Relaxed);
    }
}

/// Takes back at once the mails and webhook deliveries this instance's
/// previous process claimed and left (killed in the middle of a round),
/// instead of waiting for their leases to expire. Called before this
/// process claims anything: under this name (see `instance`), no other live
/// process claims, so every lease it holds is a dead process's. Each may
/// have been sent already: it is sent once more, as after any crash.
async fn resume_claims(store: &Store, instance: &str) {
    match store.release_claims(instance).await {
        Ok((0, 0)) => {}
        Ok((mails, webhooks)) => tracing::info!(
            mails,
            webhooks,
            "Resuming what this instance was sending when it stopped."
        ),
        Err(error) => tracing::warn!(
            %error,
            "Cannot take back this instance's earlier claims; they are sent when their leases expire."
        ),
    }
}

/// Carries out the agents' mails the intake queued (see `mailroom`); a
/// failure is logged and the jobs are tried again on the next pass.
async fn carry_out_staff_mail(live: &Live, store: &Store) {
    let snap = live.current();
    match crate::mailroom::run::run_pending(&snap, store).await {
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
async fn check_deadlines(live: &Live, store: &Store) -> usize {
    let snap = live.current();
    match snap.watch(store).check(now_ms()).await {
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
    live: Arc<Live>,
    store: Store,
    health: Arc<Health>,
    outbox: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(config.deadlines.check_seconds.max(1));
    loop {
        let recorded = check_deadlines(&live, &store).await;
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

/// Resolves on SIGTERM or SIGINT. Meanwhile reloads on SIGHUP (see
/// `live`), and the rules whenever a rule file changes (checked every two
/// seconds).
async fn wait_for_stop(live: &Live) {
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
                tracing::info!("SIGHUP: reloading the rules, templates, people and mailboxes' defaults.");
                report_reload(live.reload());
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
            },
            _ = tick.tick() => report_reload(live.reload_rules_if_changed()),
        }
    }
}
