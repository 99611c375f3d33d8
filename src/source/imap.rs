//! IMAP intake: one worker per watched folder.
//!
//! A worker takes the folder's lease (so one instance works it at a time),
//! connects (implicit TLS, STARTTLS, or plain to a local server), then
//! drains: it lists the UIDs above its checkpoint with their sizes, fetches
//! a batch with `BODY.PEEK[]` (so fetching never marks mail read), runs each
//! mail through the pipeline, then applies the folder's disposition to the
//! batch and only then advances the checkpoint. A crash anywhere re-fetches
//! at most one batch, and dedupe turns every re-fetched mail into a
//! "already stored". After a drain it waits with IDLE (re-issued well
//! before the 29-minute limit) or polls, and reconnects with exponential
//! backoff and jitter when the connection fails.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::{Client, Session};
use futures::TryStreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsConnector;
use tracing::Instrument;

use crate::config::{Account, Config, Disposition, Folder, ImapAuth, ImapTls};
use crate::health::{FolderState, Health};
use crate::live::Live;
use crate::pipeline::{Fetched, Outcome, Pipeline, PipelineError};
use crate::source::tls::{self, TlsError};
use crate::store::{Bookkeeping, Checkpoint, LeaseRenewal, Store, StoreError, now_ms};

/// What can go wrong talking to the IMAP server.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {cause}")]
    Connect {
        host: String,
        port: u16,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("TLS handshake with {host} failed: {cause}")]
    Handshake { host: String, cause: std::io::Error },
    #[error("the server closed the connection before its greeting")]
    NoGreeting,
    #[error("login as {user} failed: {reason}")]
    Login { user: String, reason: String },
    #[error("cannot read the secret: {0}")]
    Secret(String),
    #[error("IMAP: {}", server_answer(.0))]
    Imap(async_imap::error::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl ImapError {
    /// Whether the database's disk is full (see `StoreError::is_disk_full`).
    fn is_disk_full(&self) -> bool {
        match self {
            ImapError::Store(e) | ImapError::Pipeline(PipelineError::Store(e)) => e.is_disk_full(),
            _ => false,
        }
    }

    /// Whether the database failed rather than the IMAP server: retried
    /// at most every [`STORE_RETRY_CAP`], since the database coming back
    /// (space freed, a server restarted) is not announced.
    fn is_the_stores(&self) -> bool {
        matches!(
            self,
            ImapError::Store(_) | ImapError::Pipeline(PipelineError::Store(_))
        )
    }
}

/// The longest wait between two attempts when the database failed.
const STORE_RETRY_CAP: Duration = Duration::from_secs(30);

/// The message says the cause, so it is not a `source()` too (`{e:#}` would
/// print it twice).
impl From<async_imap::error::Error> for ImapError {
    fn from(e: async_imap::error::Error) -> ImapError {
        ImapError::Imap(e)
    }
}

/// Longest wait for one IMAP command (a fetch of a whole batch included):
/// a server that stops answering without closing the connection must not
/// stall the folder forever.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one IMAP exchange under [`COMMAND_TIMEOUT`].
async fn timed<T, E, F>(f: F) -> Result<T, ImapError>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<ImapError>,
{
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .map_err(|_| ImapError::Timeout(COMMAND_TIMEOUT))?
        .map_err(Into::into)
}

/// A connection of either kind, so one session type serves all.
pub trait ImapIo: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapIo for T {}
type Stream = Box<dyn ImapIo>;

/// Counts of one drain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainStats {
    pub stored: u64,
    pub duplicates: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for DrainStats {
    fn add_assign(&mut self, o: Self) {
        self.stored += o.stored;
        self.duplicates += o.duplicates;
        self.quarantined += o.quarantined;
    }
}

/// Everything a folder worker needs; owned so it can run in its own task.
#[derive(Clone)]
pub struct FolderWorker {
    pub account_name: String,
    pub account: Account,
    pub folder: Folder,
    pub config: Arc<Config>,
    pub store: Store,
    pub health: Arc<Health>,
    /// This instance's name in the folder lease.
    pub instance: String,
    /// Woken after new tickets so the outbox goes out within seconds.
    pub outbox: Arc<tokio::sync::Notify>,
    /// The rules, templates, people and mailboxes' defaults in force
    /// (reloaded by the daemon); each drain takes the snapshot of its start.
    pub live: Arc<Live>,
}

/// How a session ended when it did not fail.
enum SessionEnd {
    Shutdown,
    Drained,
    LostLease,
}

impl FolderWorker {
    /// `account/folder`, the worker's name in logs, health and leases.
    pub fn name(&self) -> String {
        format!("{}/{}", self.account_name, self.folder.folder)
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.config.daemon.lease_seconds).unwrap_or(30) * 1000
    }

    async fn take_lease(&self) -> Result<bool, StoreError> {
        let now = now_ms();
        self.store
            .acquire_lease(
                &format!("imap:{}", self.name()),
                &self.instance,
                now,
                now + self.lease_ms(),
            )
            .await
    }

    /// Works the folder until `shutdown` turns true. With `once`, drains it
    /// and returns (retrying failed connections a few times first).
    pub async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        once: bool,
    ) -> Result<DrainStats, ImapError> {
        let name = self.name();
        let mut total = DrainStats::default();
        let mut backoff = Backoff::new();
        let mut failures = 0;
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.take_lease().await {
                Ok(true) => {}
                Ok(false) => {
                    if self.health.set_state(&name, FolderState::Standby) {
                        tracing::info!(folder = %name, "Another instance works this folder; standing by.");
                    }
                    if sleep_or_shutdown(
                        &mut shutdown,
                        Duration::from_millis(self.lease_ms() as u64 / 3),
                    )
                    .await
                    {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    if e.is_disk_full() {
                        self.health.disk_full.fetch_add(1, Ordering::Relaxed);
                    }
                    // Logged when the trouble starts (and when the folder
                    // works again), not on every retry.
                    if !self.health.set_failed(&name, &e.to_string(), now_ms()) {
                        tracing::debug!(folder = %name, error = %e, "Still cannot take the folder lease.");
                    } else if e.is_disk_full() {
                        tracing::error!(folder = %name, error = %e, "The database's disk is full: cannot take the folder lease. Nothing is stored, marked or moved until there is space; retrying.");
                    } else {
                        tracing::warn!(folder = %name, error = %e, "Cannot take the folder lease.");
                    }
                    if sleep_or_shutdown(&mut shutdown, backoff.next().min(STORE_RETRY_CAP)).await {
                        break;
                    }
                    continue;
                }
            }
            match self.session(&mut shutdown, once, &mut total).await {
                // Drained (`--once`): give the folder back, so the next cron
                // run or another instance need not wait for the lease to
                // expire.
                Ok(SessionEnd::Shutdown) | Ok(SessionEnd::Drained) => break,
                Ok(SessionEnd::LostLease) => continue,
                Err(e) => {
                    failures += 1;
                    if e.is_disk_full() {
                        self.health.disk_full.fetch_add(1, Ordering::Relaxed);
                    }
                    if self.health.set_failed(&name, &e.to_string(), now_ms()) {
                        if e.is_disk_full() {
                            tracing::error!(folder = %name, error = %e, "The database's disk is full: this folder's mail stays unread on the server (nothing is marked or moved that is not stored). Free space on the database's disk; buzon retries by itself.");
                        } else {
                            tracing::warn!(folder = %name, error = %e, "Folder failed; reconnecting with backoff.");
                        }
                    } else {
                        tracing::debug!(folder = %name, error = %e, "Folder still failing.");
                    }
                    // A refused login will be refused again: `--once` says
                    // so at once instead of retrying for a quarter minute.
                    if once && (failures >= 5 || matches!(e, ImapError::Login { .. })) {
                        self.give_back_lease().await;
                        return Err(e);
                    }
                    let wait = if e.is_the_stores() {
                        backoff.next().min(STORE_RETRY_CAP)
                    } else {
                        backoff.next()
                    };
                    if sleep_or_shutdown(&mut shutdown, wait).await {
                        break;
                    }
                    continue;
                }
            }
        }
        self.give_back_lease().await;
        Ok(total)
    }

    async fn give_back_lease(&self) {
        let _ = self
            .store
            .release_lease(&format!("imap:{}", self.name()), &self.instance)
            .await;
    }

    /// One connection: drain, then wait for more (IDLE or poll), repeat.
    async fn session(
        &self,
        shutdown: &mut watch::Receiver<bool>,
        once: bool,
        total: &mut DrainStats,
    ) -> Result<SessionEnd, ImapError> {
        let name = self.name();
        let connector = Connector {
            account: &self.account,
            health: Some((&self.health, self.name())),
        };
        let mut session = timed(connector.connect()).await?;
        let caps = timed(session.capabilities()).await?;
        let can_idle = self.account.idle && caps.has_str("IDLE");
        let can_move = caps.has_str("MOVE");
        for target in [&self.folder.move_to, &self.folder.error_folder]
            .into_iter()
            .flatten()
        {
            // Creating an existing folder fails harmlessly.
            let _ = session.create(target).await;
        }
        loop {
            // Each drain works with the rules, templates and people in
            // force when it starts.
            let snap = self.live.current();
            let pipeline = snap.pipeline(&self.store)?;
            // A folder that failed stays failed (and its trouble logged
            // once, with when it began) until a drain succeeds again.
            let failed_before = self.health.is_failed(&name);
            if !failed_before {
                self.health.set_state(&name, FolderState::Draining);
            }
            let stats = self
                .drain(&mut session, &pipeline, shutdown, can_move)
                .await?;
            if failed_before {
                self.health.set_state(&name, FolderState::Draining);
                tracing::info!(folder = %name, "The folder works again.");
            }
            *total += stats;
            self.health.drained(&name, now_ms(), 0);
            if stats.stored + stats.quarantined > 0 {
                self.outbox.notify_one();
            }
            if *shutdown.borrow() {
                let _ = session.logout().await;
                return Ok(SessionEnd::Shutdown);
            }
            if once {
                let _ = session.logout().await;
                self.health.set_state(&name, FolderState::Waiting);
                return Ok(SessionEnd::Drained);
            }
            if !self.take_lease().await? {
                let _ = session.logout().await;
                return Ok(SessionEnd::LostLease);
            }
            self.health.set_state(&name, FolderState::Waiting);
            let wait = Duration::from_millis((self.lease_ms() / 3).max(1000) as u64);
            if can_idle {
                let (back, stop) = idle(session, shutdown, wait).await?;
                session = back;
                if stop {
                    let _ = session.logout().await;
                    return Ok(SessionEnd::Shutdown);
                }
            } else {
                let poll = Duration::from_secs(self.account.poll_seconds.max(1)).min(wait);
                if sleep_or_shutdown(shutdown, poll).await {
                    let _ = session.logout().await;
                    return Ok(SessionEnd::Shutdown);
                }
            }
        }
    }

    /// Stores every mail above the checkpoint, batch by batch. The next
    /// batch is fetched and parsed while one is stored (the folder's server
    /// and this machine's other core work meanwhile), and a batch's
    /// checkpoint is written in the next batch's transaction: one commit,
    /// one flush to disk, a batch.
    async fn drain(
        &self,
        session: &mut Session<Stream>,
        pipeline: &Pipeline<'_>,
        shutdown: &watch::Receiver<bool>,
        can_move: bool,
    ) -> Result<DrainStats, ImapError> {
        let folder = &self.folder.folder;
        let mbox = timed(session.select(folder)).await?;
        let uidvalidity = i64::from(mbox.uid_validity.unwrap_or(0));
        let last_uid = match self.store.checkpoint(&self.account_name, folder).await? {
            Some((v, uid)) if v == uidvalidity => uid,
            Some((v, _)) => {
                tracing::warn!(folder = %self.name(), old = v, new = uidvalidity, "UIDVALIDITY changed; resynchronising (dedupe prevents duplicates).");
                0
            }
            None => 0,
        };
        let mut place = Place {
            uidvalidity,
            last_uid,
            unsaved: false,
            lease_renewed: now_ms(),
        };
        let drained = self
            .drain_batches(session, pipeline, shutdown, can_move, &mut place)
            .await;
        // The checkpoint of the last batch disposed, which no next batch's
        // transaction carried: written even when the drain failed after it.
        if place.unsaved {
            let saved = self
                .store
                .set_checkpoint(
                    &self.account_name,
                    folder,
                    uidvalidity,
                    place.last_uid,
                    now_ms(),
                )
                .await;
            if let (Ok(_), Err(e)) = (&drained, saved) {
                return Err(e.into());
            }
        }
        drained
    }

    async fn drain_batches(
        &self,
        session: &mut Session<Stream>,
        pipeline: &Pipeline<'_>,
        shutdown: &watch::Receiver<bool>,
        can_move: bool,
        place: &mut Place,
    ) -> Result<DrainStats, ImapError> {
        let name = self.name();
        let mut stats = DrainStats::default();
        let batch_size = self.account.batch_size.max(1) as usize;
        let lease_name = format!("imap:{name}");
        // The UIDs still to store, listed once and worked off batch by
        // batch (listing again per batch would make a big first import
        // quadratic); listed again when empty, to catch mail that arrived
        // meanwhile.
        let mut queue: Vec<u32> = Vec::new();
        let mut next = 0;
        let mut ahead: Option<Batch> = None;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let batch = match ahead.take() {
                Some(batch) => batch,
                None => {
                    if next >= queue.len() {
                        queue = self.pending(session, place.last_uid).await?;
                        next = 0;
                    }
                    if queue.is_empty() {
                        self.health.set_lag(&name, 0);
                        break;
                    }
                    let end = queue.len().min(next + batch_size);
                    let batch = self.fetch_batch(session, &queue[next..end]).await?;
                    next += batch.consumed;
                    batch
                }
            };
            self.health.set_lag(&name, (queue.len() - next) as i64);
            let now = now_ms();
            let lease_due = now - place.lease_renewed >= self.lease_ms() / 3;
            let bookkeeping = Bookkeeping {
                checkpoint: place.unsaved.then_some(Checkpoint {
                    account: &self.account_name,
                    folder: &self.folder.folder,
                    uidvalidity: place.uidvalidity,
                    last_uid: place.last_uid,
                }),
                lease: lease_due.then_some(LeaseRenewal {
                    name: &lease_name,
                    holder: &self.instance,
                    until: now + self.lease_ms(),
                }),
            };
            let end = queue.len().min(next + batch_size);
            let span = tracing::info_span!("imap_batch", folder = %name, first_uid = batch.first_uid(), last_uid = batch.last_uid);
            // The next batch, from the list already made, is fetched and
            // parsed while this one is stored.
            let (ingested, fetched) = tokio::join!(
                self.ingest_batch(pipeline, &batch, &bookkeeping, &mut stats)
                    .instrument(span),
                async {
                    match next < end {
                        true => Some(self.fetch_batch(session, &queue[next..end]).await),
                        false => None,
                    }
                }
            );
            let Ingested {
                stored_uids,
                bad_uids,
                result,
                bookkept,
            } = ingested;
            if let Some(Ok(ahead)) = &fetched {
                next += ahead.consumed;
            }
            let mut lease_held = true;
            match bookkept {
                Some(held) => {
                    place.unsaved = false;
                    lease_held = held;
                    if lease_due {
                        place.lease_renewed = now;
                    }
                }
                None if lease_due => {
                    lease_held = self.take_lease().await?;
                    place.lease_renewed = now;
                }
                None => {}
            }
            // Commit first (done above, one transaction for the batch), then
            // touch the mailbox, then remember how far we got (written with
            // the next batch, or when the drain ends).
            self.dispose(session, &stored_uids, &bad_uids, can_move)
                .await?;
            let done_upto = stored_uids
                .iter()
                .chain(bad_uids.iter())
                .max()
                .copied()
                .map(i64::from);
            if let Some(up) = done_upto.filter(|u| *u > place.last_uid) {
                place.last_uid = up;
                place.unsaved = true;
            }
            if result.is_ok() && done_upto.is_none() {
                // Everything in the batch vanished: skip past it.
                place.last_uid = place.last_uid.max(i64::from(batch.last_uid));
            }
            self.count(stats_delta(&stored_uids, &bad_uids));
            result?;
            ahead = fetched.transpose()?;
            if !lease_held {
                break;
            }
        }
        Ok(stats)
    }

    /// Lists the sizes of some UIDs, fetches their mail, and parses it on
    /// a blocking thread (pure work that needs no store).
    async fn fetch_batch(
        &self,
        session: &mut Session<Stream>,
        uids: &[u32],
    ) -> Result<Batch, ImapError> {
        let limit = self.config.limits.max_message_bytes;
        let listed = self.sizes(session, uids).await?;
        let sizes = within_budget(&listed, self.account.batch_bytes, limit);
        // The rest of `uids` waits for the next batch; what vanished
        // before the cut counts as asked for.
        let last_uid = match sizes.len() < listed.len() {
            true => sizes.last().map(|(uid, _)| *uid).unwrap_or(0),
            false => uids.last().copied().unwrap_or(0),
        };
        let consumed = uids.partition_point(|uid| *uid <= last_uid);
        let bodies = self.fetch(session, &sizes, limit).await?;
        // The parsing thread gets the same bytes, not a copy of them.
        let small: Vec<(u32, Arc<[u8]>)> = sizes
            .iter()
            .filter(|(_, size)| *size as usize <= limit)
            .filter_map(|(uid, _)| bodies.get(uid).map(|raw| (*uid, Arc::clone(raw))))
            .collect();
        // Parsed ahead where possible; a mail the thread could not hand
        // back is parsed again in the pipeline.
        let parsed = tokio::task::spawn_blocking(move || {
            small
                .into_iter()
                .map(|(uid, raw)| (uid, crate::parse::parse(&raw, limit)))
                .collect::<BTreeMap<_, _>>()
        })
        .await
        .unwrap_or_default();
        Ok(Batch {
            sizes,
            bodies,
            parsed,
            last_uid,
            consumed,
        })
    }

    /// Stores a fetched batch: mail too large to fetch whole is quarantined
    /// with its header, the rest goes through the pipeline in one store
    /// transaction, with the bookkeeping. Returns the UIDs stored and
    /// quarantined, in order, up to the first mail that could not be
    /// stored, and why it could not.
    async fn ingest_batch(
        &self,
        pipeline: &Pipeline<'_>,
        batch: &Batch,
        bookkeeping: &Bookkeeping<'_>,
        stats: &mut DrainStats,
    ) -> Ingested {
        let mailbox = &self.folder.mailbox;
        let limit = self.config.limits.max_message_bytes;
        let mut done: Vec<(u32, Outcome)> = Vec::new();
        let mut uids = Vec::new();
        let mut mails = Vec::new();
        let mut failed = None;
        let mut bookkept = None;
        let mut parsed = batch.parsed.clone();
        for &(uid, size) in &batch.sizes {
            let Some(raw) = batch.bodies.get(&uid) else {
                // Expunged by someone else between listing and fetching.
                continue;
            };
            if size as usize <= limit {
                uids.push(uid);
                mails.push(Fetched {
                    raw: &raw[..],
                    parsed: parsed.remove(&uid),
                });
                continue;
            }
            // Outside the batch's transaction, which on SQLite holds the
            // only write lock.
            match pipeline
                .quarantine_oversize(raw, size as usize, mailbox)
                .await
            {
                Ok(outcome) => done.push((uid, outcome)),
                Err(e) => {
                    failed = Some((uid, e));
                    break;
                }
            }
        }
        if failed.is_none() && !mails.is_empty() {
            let stored = pipeline.ingest_fetched(mails, mailbox, bookkeeping).await;
            let at = uids.get(stored.outcomes.len()).copied().unwrap_or(u32::MAX);
            done.extend(uids.iter().copied().zip(stored.outcomes));
            failed = stored.failed.map(|e| (at, e));
            bookkept = stored.bookkept;
        }
        let mut stored_uids = Vec::new();
        let mut bad_uids = Vec::new();
        done.sort_by_key(|(uid, _)| *uid);
        for (uid, outcome) in done {
            // Nothing past a mail that could not be stored counts as done,
            // or the checkpoint would skip it.
            if failed.as_ref().is_some_and(|(at, _)| uid > *at) {
                break;
            }
            match outcome {
                Outcome::Quarantined { .. } => {
                    stats.quarantined += 1;
                    bad_uids.push(uid);
                }
                Outcome::Duplicate { .. } => {
                    stats.duplicates += 1;
                    stored_uids.push(uid);
                }
                _ => {
                    stats.stored += 1;
                    stored_uids.push(uid);
                }
            }
        }
        Ingested {
            stored_uids,
            bad_uids,
            result: failed.map_or(Ok(()), |(_, e)| Err(e)),
            bookkept,
        }
    }

    fn count(&self, (ingested, quarantined): (u64, u64)) {
        self.health.count(&self.name(), ingested, quarantined);
        self.health
            .mails_ingested
            .fetch_add(ingested, Ordering::Relaxed);
        self.health
            .mails_quarantined
            .fetch_add(quarantined, Ordering::Relaxed);
    }

    /// UIDs above `last_uid`, ascending. A SEARCH answers with one compact
    /// line of numbers, so even a first import of a huge folder costs
    /// little memory here; sizes are asked per batch (see `sizes`).
    async fn pending(
        &self,
        session: &mut Session<Stream>,
        last_uid: i64,
    ) -> Result<Vec<u32>, ImapError> {
        let from = u32::try_from(last_uid + 1).unwrap_or(u32::MAX);
        let found = timed(session.uid_search(format!("UID {from}:*"))).await?;
        // `n:*` always matches the last mail even when its UID is below n.
        let mut out: Vec<u32> = found
            .into_iter()
            .filter(|uid| i64::from(*uid) > last_uid)
            .collect();
        out.sort_unstable();
        Ok(out)
    }

    /// The sizes of a batch of UIDs (mail expunged meanwhile is absent).
    async fn sizes(
        &self,
        session: &mut Session<Stream>,
        uids: &[u32],
    ) -> Result<Vec<(u32, u32)>, ImapError> {
        let set = uid_set(uids.iter().copied());
        let fetched: Vec<_> = timed(async {
            session
                .uid_fetch(&set, "(UID RFC822.SIZE)")
                .await?
                .try_collect()
                .await
        })
        .await?;
        let mut out: Vec<(u32, u32)> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
            .collect();
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Bodies of the batch (headers only for mail over the size limit).
    async fn fetch(
        &self,
        session: &mut Session<Stream>,
        batch: &[(u32, u32)],
        limit: usize,
    ) -> Result<BTreeMap<u32, Arc<[u8]>>, ImapError> {
        let (small, big): (Vec<_>, Vec<_>) =
            batch.iter().partition(|(_, size)| *size as usize <= limit);
        let mut out = BTreeMap::new();
        for (set, query, header_only) in [
            (
                uid_set(small.iter().map(|(u, _)| *u)),
                "(UID BODY.PEEK[])",
                false,
            ),
            (
                uid_set(big.iter().map(|(u, _)| *u)),
                "(UID BODY.PEEK[HEADER])",
                true,
            ),
        ] {
            if set.is_empty() {
                continue;
            }
            let fetched: Vec<_> =
                timed(async { session.uid_fetch(&set, query).await?.try_collect().await }).await?;
            for f in &fetched {
                let bytes = if header_only { f.header() } else { f.body() };
                if let (Some(uid), Some(bytes)) = (f.uid, bytes) {
                    out.insert(uid, Arc::from(bytes));
                }
            }
        }
        Ok(out)
    }

    /// Applies the folder's disposition to stored mail, and moves
    /// quarantined mail to the error folder when one is set (else it stays,
    /// unread, for a person to see).
    async fn dispose(
        &self,
        session: &mut Session<Stream>,
        stored: &[u32],
        quarantined: &[u32],
        can_move: bool,
    ) -> Result<(), ImapError> {
        let stored_set = uid_set(stored.iter().copied());
        if !stored_set.is_empty() {
            match (self.folder.disposition, &self.folder.move_to) {
                (Disposition::Seen, _) => {
                    let _: Vec<_> = timed(async {
                        session
                            .uid_store(&stored_set, "+FLAGS.SILENT (\\Seen)")
                            .await?
                            .try_collect()
                            .await
                    })
                    .await?;
                }
                (Disposition::Move, Some(target)) => {
                    move_uids(session, &stored_set, target, can_move).await?
                }
                _ => {}
            }
        }
        let bad_set = uid_set(quarantined.iter().copied());
        if let (false, Some(target)) = (bad_set.is_empty(), &self.folder.error_folder) {
            move_uids(session, &bad_set, target, can_move).await?;
        }
        Ok(())
    }
}

/// Where a drain stands in its folder.
struct Place {
    uidvalidity: i64,
    /// The last UID stored and disposed of...
    last_uid: i64,
    /// ...and whether that is not yet written as the checkpoint.
    unsaved: bool,
    /// When the folder lease was last renewed (Unix ms).
    lease_renewed: i64,
}

/// A batch fetched: the UIDs with their sizes, the mail (headers only over
/// the size limit), and the mail parsed ahead.
struct Batch {
    sizes: Vec<(u32, u32)>,
    bodies: BTreeMap<u32, Arc<[u8]>>,
    parsed: BTreeMap<u32, Result<crate::parse::ParsedMail, crate::parse::ParseError>>,
    /// The last UID asked for (listed, maybe expunged since).
    last_uid: u32,
    /// How many of the UIDs asked for this batch covers: all of them, or
    /// those before the cut of `batch_bytes`.
    consumed: usize,
}

/// The first of `sizes` whose mail fits in `budget` bytes together, at
/// least one: a batch's memory is a few times the bytes it holds (fetched,
/// parsed, written), so a folder of signed PDFs is drained in batches of a
/// few mails instead of `batch_size` of them. Mail over `limit` costs only
/// its header.
fn within_budget(sizes: &[(u32, u32)], budget: u64, limit: usize) -> Vec<(u32, u32)> {
    let mut total = 0u64;
    let mut kept = Vec::new();
    for &(uid, size) in sizes {
        let cost = if size as usize <= limit {
            u64::from(size)
        } else {
            0
        };
        if !kept.is_empty() && total + cost > budget {
            break;
        }
        total += cost;
        kept.push((uid, size));
    }
    kept
}

impl Batch {
    fn first_uid(&self) -> Option<u32> {
        self.sizes.first().map(|(uid, _)| *uid)
    }
}

/// What storing a batch did: the UIDs stored and quarantined, up to the
/// first mail that could not be stored and why, and the bookkeeping (see
/// `BatchOutcome::bookkept`).
struct Ingested {
    stored_uids: Vec<u32>,
    bad_uids: Vec<u32>,
    result: Result<(), PipelineError>,
    bookkept: Option<bool>,
}

fn stats_delta(stored: &[u32], bad: &[u32]) -> (u64, u64) {
    (stored.len() as u64, bad.len() as u64)
}

async fn move_uids(
    session: &mut Session<Stream>,
    set: &str,
    target: &str,
    can_move: bool,
) -> Result<(), ImapError> {
    if can_move {
        timed(session.uid_mv(set, target)).await?;
    } else {
        session.uid_copy(set, target).await?;
        let _: Vec<_> = session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect()
            .await?;
        let _: Vec<_> = session.uid_expunge(set).await?.try_collect().await?;
    }
    Ok(())
}

/// `1,2,5` from UIDs.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    uids.map(|u| u.to_string()).collect::<Vec<_>>().join(",")
}

/// Waits in IDLE until new mail, `wait` elapses, or shutdown. Returns the
/// session and whether shutdown was asked.
async fn idle(
    session: Session<Stream>,
    shutdown: &mut watch::Receiver<bool>,
    wait: Duration,
) -> Result<(Session<Stream>, bool), ImapError> {
    let mut handle = session.idle();
    timed(handle.init()).await?;
    let mut stop_asked = false;
    {
        let (fut, stop) = handle.wait_with_timeout(wait);
        let mut fut = std::pin::pin!(fut);
        let response = tokio::select! {
            r = &mut fut => r?,
            _ = shutdown.changed() => {
                stop_asked = true;
                drop(stop);
                fut.await?
            }
        };
        if let IdleResponse::NewData(d) = &response
            && matches!(d.parsed(), Response::MailboxData(MailboxDatum::Exists(_)))
        {
            tracing::debug!("IDLE: new mail.");
        }
    }
    let session = timed(handle.done()).await?;
    Ok((session, stop_asked))
}

/// Sleeps, unless shutdown comes first (then returns true).
async fn sleep_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *shutdown.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// SASL response for AUTHENTICATE PLAIN / XOAUTH2 (one step).
/// A SASL initial response sent once. A server that refuses it answers
/// with a challenge (XOAUTH2: a JSON error) and expects an empty line; the
/// secret is never sent a second time.
struct Once(Option<String>);

impl Once {
    fn new(response: String) -> Once {
        Once(Some(response))
    }
}

impl async_imap::Authenticator for Once {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

/// Why the server refused a login, in its own words ("[AUTHENTICATIONFAILED]
/// Authentication failed.") rather than the library's debug form.
fn refusal(e: &async_imap::error::Error) -> String {
    use async_imap::error::Error;
    match e {
        Error::No(raw) | Error::Bad(raw) => format!("the server answered: {}", server_words(raw)),
        other => server_answer(other),
    }
}

/// What went wrong with an IMAP command, by the error's kind: the server
/// refused it (NO), rejected it (BAD), went away, or the socket failed.
fn server_answer(e: &async_imap::error::Error) -> String {
    use async_imap::error::Error;
    match e {
        Error::No(raw) => format!("the server refused: {}", server_words(raw)),
        Error::Bad(raw) => format!("the server rejected the command: {}", server_words(raw)),
        Error::ConnectionLost => "the server closed the connection".into(),
        Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// When an OAuth token expires (Unix ms), if it is a JWT with an `exp`
/// claim (Microsoft's and Google's access tokens are; an opaque token simply
/// has no known expiry). Only the claims are read, nothing is verified: the
/// figure is for `/metrics`, the server decides.
fn jwt_expiry_ms(token: &str) -> Option<i64> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64()?.checked_mul(1000)
}

/// The server's own text in a NO or BAD. async-imap 0.12 hands it over
/// only as the debug form of the status line's parts (`code: None, info:
/// Some("<text>")`, its `client.rs`); this reads the code and the text back
/// out, escapes undone, so an admin reads what the server wrote:
/// `[ALERT] Cuenta "bloqueada"`. Anything else is returned as it is.
fn server_words(raw: &str) -> String {
    let code = raw
        .strip_prefix("code: Some(")
        .and_then(|rest| rest.split_once("), info: "))
        .map(|(code, _)| code.to_uppercase());
    const INFO: &str = "info: Some(\"";
    let info = raw.find(INFO).map(|at| unescape(&raw[at + INFO.len()..]));
    match (code, info) {
        (Some(code), Some(info)) => format!("[{code}] {info}"),
        (None, Some(info)) => info,
        (Some(code), None) => format!("[{code}]"),
        (None, None) => raw.to_string(),
    }
}

/// A Rust debug string's contents up to its closing quote, unescaped.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('0') => out.push('\0'),
                Some('u') => {
                    let hex: String = chars
                        .by_ref()
                        .skip_while(|c| *c == '{')
                        .take_while(|c| *c != '}')
                        .collect();
                    let decoded = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    out.push(decoded.unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

/// Opens a logged-in IMAP session for one account: what a folder worker
/// does at each (re)connection, and what `buzon check --connect` tries.
pub struct Connector<'a> {
    pub account: &'a Account,
    /// Where to record an OAuth token's expiry, and the folder's name there.
    pub health: Option<(&'a Health, String)>,
}

impl Connector<'_> {
    /// Connects, upgrades to TLS as configured and logs in.
    pub async fn connect(&self) -> Result<Session<Stream>, ImapError> {
        let a = &self.account;
        let port = a.port.unwrap_or(match a.tls {
            ImapTls::Implicit => 993,
            _ => 143,
        });
        let timeout = Duration::from_secs(30);
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((a.host.as_str(), port)))
            .await
            .map_err(|_| ImapError::Timeout(timeout))?
            .map_err(|cause| ImapError::Connect {
                host: a.host.clone(),
                port,
                cause,
            })?;
        let stream: Stream = match a.tls {
            ImapTls::None => Box::new(tcp),
            ImapTls::Implicit => Box::new(self.tls(tcp).await?),
            ImapTls::Starttls => {
                let mut client = Client::new(tcp);
                client
                    .read_response()
                    .await
                    .map_err(async_imap::error::Error::Io)?
                    .ok_or(ImapError::NoGreeting)?;
                client.run_command_and_check_ok("STARTTLS", None).await?;
                Box::new(self.tls(client.into_inner()).await?)
            }
        };
        let mut client = Client::new(stream);
        if a.tls != ImapTls::Starttls {
            client
                .read_response()
                .await
                .map_err(async_imap::error::Error::Io)?
                .ok_or(ImapError::NoGreeting)?;
        }
        self.login(client).await
    }

    async fn tls(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
        let config = tls::client_config(self.account.ca_file.as_deref())?;
        let host = self.account.host.clone();
        let server_name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| {
            ImapError::Handshake {
                host: host.clone(),
                cause: std::io::Error::other(e.to_string()),
            }
        })?;
        TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|cause| ImapError::Handshake { host, cause })
    }

    async fn login(&self, client: Client<Stream>) -> Result<Session<Stream>, ImapError> {
        let a = &self.account;
        let secret = self.secret().await?;
        let login_err = |(e, _): (async_imap::error::Error, Client<Stream>)| ImapError::Login {
            user: a.username.clone(),
            reason: refusal(&e),
        };
        match a.auth {
            ImapAuth::Login => client.login(&a.username, &secret).await.map_err(login_err),
            ImapAuth::Plain => client
                .authenticate("PLAIN", Once::new(format!("\0{}\0{}", a.username, secret)))
                .await
                .map_err(login_err),
            ImapAuth::Xoauth2 => {
                if let Some((health, name)) = &self.health {
                    health.set_token_expiry(name, jwt_expiry_ms(&secret));
                }
                client
                    .authenticate(
                        "XOAUTH2",
                        Once::new(format!(
                            "user={}\x01auth=Bearer {}\x01\x01",
                            a.username, secret
                        )),
                    )
                    .await
                    .map_err(login_err)
            }
        }
    }

    /// The password or token, read fresh at each login (a rotated file or a
    /// refreshed OAuth token is picked up without a restart). Never logged.
    async fn secret(&self) -> Result<String, ImapError> {
        let a = &self.account;
        if let Some(path) = &a.password_file {
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| ImapError::Secret(format!("{}: {e}", path.display())))?;
            return Ok(text.trim_end_matches(['\r', '\n']).to_string());
        }
        if let Some(var) = &a.password_env {
            return std::env::var(var)
                .map_err(|_| ImapError::Secret(format!("environment variable {var} is not set")));
        }
        if let Some(cmd) = &a.token_command {
            let out = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .output()
                .await
                .map_err(|e| ImapError::Secret(format!("token_command: {e}")))?;
            if !out.status.success() {
                return Err(ImapError::Secret(format!(
                    "token_command exited with {}",
                    out.status
                )));
            }
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        Err(ImapError::Secret(
            "no password_file, password_env or token_command".into(),
        ))
    }
}

/// Logs in to `account` and out again: the server's answer, for `buzon
/// check --connect`.
pub async fn try_login(account: &Account) -> Result<String, ImapError> {
    let connector = Connector {
        account,
        health: None,
    };
    let mut session = timed(connector.connect()).await?;
    let capabilities = timed(session.capabilities()).await.ok();
    let _ = timed(session.logout()).await;
    let idle = capabilities.is_some_and(|c| c.has_str("IDLE"));
    Ok(format!(
        "logged in as {}{}",
        account.username,
        if idle {
            " (the server offers IDLE)"
        } else {
            ""
        }
    ))
}

/// Exponential backoff with jitter, 1 s doubling to 5 min.
struct Backoff {
    next_ms: u64,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next_ms: 1000 }
    }

    fn next(&mut self) -> Duration {
        let base = self.next_ms;
        self.next_ms = (self.next_ms * 2).min(300_000);
        // ±25 % jitter so many folders do not reconnect in lockstep.
        let nanos = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        );
        let jitter = nanos % (base / 2 + 1);
        Duration::from_millis(base - base / 4 + jitter)
    }
}

/// Builds a worker per configured folder.
pub fn workers(
    config: &Arc<Config>,
    store: &Store,
    health: &Arc<Health>,
    instance: &str,
    outbox: &Arc<tokio::sync::Notify>,
    live: &Arc<Live>,
) -> Vec<FolderWorker> {
    let mut out = Vec::new();
    for (name, account) in &config.accounts {
        for folder in &account.folders {
            out.push(FolderWorker {
                account_name: name.clone(),
                account: account.clone(),
                folder: folder.clone(),
                config: config.clone(),
                store: store.clone(),
                health: health.clone(),
                instance: instance.to_string(),
                outbox: outbox.clone(),
                live: live.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_jwt_tells_when_it_expires() {
        // {"alg":"HS256"} . {"sub":"x","exp":1790000000} . signature
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjoxNzkwMDAwMDAwfQ.c2ln";
        assert_eq!(jwt_expiry_ms(token), Some(1_790_000_000_000));
        assert_eq!(jwt_expiry_ms("opaque-token"), None);
        assert_eq!(jwt_expiry_ms("a.!!!.c"), None);
    }

    #[test]
    fn a_refused_login_reads_in_the_servers_words() {
        use async_imap::error::Error;
        // What async-imap 0.12 puts in a NO (its client.rs).
        let no = Error::No(
            r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#.into(),
        );
        assert_eq!(
            refusal(&no),
            "the server answered: [AUTHENTICATIONFAILED] Authentication failed."
        );
        let bad = Error::Bad(
            r#"code: Some(Alert), info: Some("Cuenta \"bloqueada\" en año\t2026 \u{1b}")"#.into(),
        );
        assert_eq!(
            server_answer(&bad),
            "the server rejected the command: [ALERT] Cuenta \"bloqueada\" en año\t2026 \u{1b}"
        );
        assert_eq!(
            server_answer(&Error::ConnectionLost),
            "the server closed the connection"
        );
        assert_eq!(server_words("something else"), "something else");
        let e = ImapError::from(Error::No(
            r#"code: None, info: Some("Mailbox doesn't exist: Archivo")"#.into(),
        ));
        assert_eq!(
            e.to_string(),
            "IMAP: the server refused: Mailbox doesn't exist: Archivo"
        );
    }

    use super::*;

    #[test]
    fn backoff_grows_with_bounded_jitter() {
        let mut b = Backoff::new();
        let first = b.next();
        assert!(first >= Duration::from_millis(750) && first <= Duration::from_millis(1250));
        for _ in 0..20 {
            b.next();
        }
        let late = b.next();
        assert!(late <= Duration::from_millis(375_000));
        assert!(late >= Duration::from_millis(225_000));
    }

    #[test]
    fn uid_sets() {
        assert_eq!(uid_set([3, 4, 9].into_iter()), "3,4,9");
        assert_eq!(uid_set(std::iter::empty()), "");
    }

    #[test]
    fn a_batch_holds_what_fits_in_its_bytes_and_at_least_one_mail() {
        let sizes = [(1, 400), (2, 300), (5, 400), (6, 100)];
        assert_eq!(within_budget(&sizes, 1000, 1000), vec![(1, 400), (2, 300)]);
        assert_eq!(within_budget(&sizes, 700, 1000), vec![(1, 400), (2, 300)]);
        assert_eq!(within_budget(&sizes, 100, 1000), vec![(1, 400)]);
        assert_eq!(within_budget(&sizes, 10_000, 1000), sizes.to_vec());
        // Mail over the size limit is fetched as its header only.
        let big = [(1, 400), (2, 5000), (3, 500)];
        assert_eq!(within_budget(&big, 1000, 1000), big.to_vec());
        assert!(within_budget(&[], 1000, 1000).is_empty());
    }
}
