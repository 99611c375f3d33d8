//! Durable state: SQLite (embedded default) or PostgreSQL (shared by several
//! instances). The only module that contains SQL.
//!
//! Both backends run the same SQL text (sqlx maps `$N` placeholders on
//! SQLite too); `sql/` writes each query once, in one file per aggregate,
//! compiled for each backend, so the two can never drift apart. Text
//! columns are decoded there into the ticket's types (`crate::ticket`): a
//! value buzon does not know is a [`StoreError::Invalid`], never a default.
//! Migrations live in `migrations/sqlite` and `migrations/postgres` and are
//! applied at start.
//!
//! Invariant: everything one message changes (ticket, message, attachments,
//! participants, keys, history, outbox rows) is written in one transaction.
//! The intake writes a whole IMAP batch in one transaction ([`StoreTx`]);
//! a mail from the CLI is a batch of one.

mod model;
mod sql;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use model::*;

use crate::ticket::{
    AlertRow, Breach, NewEvent, OutboxRow, OutboxStatus, OutgoingMail, ReportRow, TicketDetail,
    TicketRow, TicketState,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// What `Store::probe` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// False: a SQLite file not created yet (`migrate` or `run` creates it).
    pub exists: bool,
    /// Migrations applied.
    pub applied: usize,
    /// Migrations of this buzon not applied yet (`migrate` or `run` applies them).
    pub pending: usize,
    /// Versions applied that this buzon does not know: a newer buzon
    /// migrated the database.
    pub unknown: Vec<i64>,
}

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {url}: {cause}")]
    Open { url: String, cause: sqlx::Error },
    #[error("cannot apply database migrations: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// The database holds a migration this buzon does not have: a newer
    /// buzon ran on it, and this one could misread what it wrote (an
    /// outbox row's bytes kept in its outgoing message, migration 0018).
    #[error(
        "the database was migrated by a newer buzon (migration {0} is unknown to this one): \
         run that version or a newer one"
    )]
    Newer(i64),
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("{0} not found")]
    NotFound(String),
    /// Someone changed the ticket since the change was decided (another
    /// agent took it): nothing was written.
    #[error("{0}")]
    Conflict(String),
    /// A step of an agent's mail already carried out (another instance, or
    /// before a crash): nothing was written.
    #[error("already done: {0}")]
    Stale(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A text column holds a value buzon does not know (a state, a
    /// priority, a kind of history line ...): written by another program,
    /// or by a newer buzon.
    #[error("the database holds '{value}' in {column}, which buzon does not know")]
    Invalid { column: &'static str, value: String },
}

// The messages say their cause, so it is not a `source()` too: anyhow's
// `{e:#}` would print it again (and sqlx's own chain once more).
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        StoreError::Db(e)
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Newer(v),
            e => StoreError::Migrate(e),
        }
    }
}

impl StoreError {
    /// Whether retrying later may succeed (the database was busy or away).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Open { .. } => true,
            StoreError::Db(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || e.to_string().contains("database is locked")
                    || self.is_disk_full()
            }
            _ => false,
        }
    }

    /// Whether the database's disk is full (SQLite's `SQLITE_FULL`,
    /// PostgreSQL's `disk_full`, or the system's "no space left" when
    /// writing): nothing was written, and trying again once there is
    /// space will succeed.
    pub fn is_disk_full(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Io(io) => io.raw_os_error() == Some(28), // ENOSPC
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    code == "53100"
                } else {
                    // The primary result code (low byte) 13: SQLITE_FULL.
                    code.parse::<i64>().is_ok_and(|c| c & 0xff == 13)
                }
            }
            _ => false,
        }
    }
}

impl StoreError {
    /// Whether the database refused the values written (a text it cannot
    /// hold, a value too large, a constraint), rather than failing as a
    /// whole: another mail may well be stored.
    pub fn is_about_the_data(&self) -> bool {
        let StoreError::Db(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::Encode(_) => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                if db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some()
                {
                    // SQLSTATE classes 22 (data exception), 23 (integrity
                    // constraint) and 54 (program limit: a value too large
                    // for an index).
                    ["22", "23", "54"]
                        .iter()
                        .any(|class| code.starts_with(class))
                } else {
                    // SQLite's primary result code (low byte): TOOBIG,
                    // CONSTRAINT, MISMATCH, RANGE.
                    code.parse::<i64>()
                        .is_ok_and(|c| matches!(c & 0xff, 18 | 19 | 20 | 25))
                }
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Whether a connection given back to the pool may serve again: not when
/// it still counts a transaction. A COMMIT that fails for a full disk
/// (`SQLITE_FULL`) makes SQLite roll the transaction back by itself; the
/// ROLLBACK sqlx then sends fails ("no transaction is active") and sqlx
/// keeps counting the transaction, so every later BEGIN on that connection
/// would fail ("begin_with at non-zero transaction depth") long after the
/// space came back. Such a connection is closed and a fresh one opened. (A
/// transaction dropped without commit may also be counted here until its
/// queued rollback runs: that connection is closed too, which is rare and
/// harmless.)
fn no_transaction_left<C: sqlx::Connection>(conn: &C) -> bool {
    !conn.is_in_transaction()
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Whether changes write webhook events (see [`Store::webhook_events`]).
    hooks: bool,
}

/// sqlx logs a statement slower than this whole, at WARN by default: a
/// batch's insert of a few hundred mails is one such statement, and its
/// line (every placeholder of it) drowned the journal. A developer's
/// diagnostic, so at DEBUG (`BUZON_LOG=sqlx=debug`).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);
const SLOW_STATEMENT_LEVEL: log::LevelFilter = log::LevelFilter::Debug;

/// Runs the same call on whichever backend is configured.
macro_rules! dispatch {
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        match &$self.backend {
            Backend::Sqlite(pool) => sql::sqlite::$f(pool, $($arg),*).await,
            Backend::Postgres(pool) => sql::postgres::$f(pool, $($arg),*).await,
        }
    };
}

impl Store {
    /// Opens (creating a SQLite file if needed) and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store> {
        let open_err = |cause| StoreError::Open {
            url: redact(url),
            cause,
        };
        let backend = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(open_err)?
                .create_if_missing(true)
                // FULL: a commit is on disk (the WAL synced) when it returns,
                // so the IMAP disposition that follows a batch's commit can
                // never be ahead of the database after a power cut. One sync
                // per transaction: per batch of mail, per delivery round.
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
            let lock_path = format!("{}.migrate-lock", opts.get_filename().display());
            ensure_wal(&opts).await.map_err(open_err)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .after_release(|conn, _| Box::pin(async move { Ok(no_transaction_left(conn)) }))
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            let indexing = announce_search_index(sql::sqlite::search_index_pending(&pool).await);
            migrate_sqlite(&pool, &lock_path).await?;
            indexed(indexing);
            Backend::Sqlite(pool)
        } else {
            let opts = PgConnectOptions::from_str(url)
                .map_err(open_err)?
                .log_slow_statements(SLOW_STATEMENT_LEVEL, SLOW_STATEMENT);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .after_release(|conn, _| Box::pin(async move { Ok(no_transaction_left(conn)) }))
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            let indexing = announce_search_index(sql::postgres::search_index_pending(&pool).await);
            POSTGRES_MIGRATOR.run(&pool).await?;
            indexed(indexing);
            Backend::Postgres(pool)
        };
        Ok(Store {
            backend,
            hooks: true,
        })
    }

    /// Connects without creating or changing anything and compares the
    /// migrations applied with the ones this buzon has (`buzon check`).
    pub async fn probe(url: &str) -> Result<Probe> {
        let open_err = |cause| StoreError::Open {
            url: redact(url),
            cause,
        };
        let (migrator, applied) = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url).map_err(open_err)?;
            let file = opts.get_filename().to_path_buf();
            if !file.exists() {
                // Nothing to open yet; `run` creates the file, in a
                // directory that must be there.
                let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
                if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                    return Err(StoreError::Open {
                        url: redact(url),
                        cause: sqlx::Error::Io(std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            format!("the directory {} does not exist", dir.display()),
                        )),
                    });
                }
                return Ok(Probe {
                    exists: false,
                    applied: 0,
                    pending: SQLITE_MIGRATOR
                        .iter()
                        .filter(|m| !m.migration_type.is_down_migration())
                        .count(),
                    unknown: Vec::new(),
                });
            }
            let opts = opts.read_only(true).busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts)
                .await
                .map_err(open_err)?;
            let applied = sql::sqlite::applied_migrations(&pool).await;
            pool.close().await;
            (&SQLITE_MIGRATOR, applied?)
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(open_err)?;
            let applied = sql::postgres::applied_migrations(&pool).await;
            pool.close().await;
            (&POSTGRES_MIGRATOR, applied?)
        };
        let known: Vec<i64> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        Ok(Probe {
            exists: true,
            applied: applied.len(),
            pending: known.iter().filter(|v| !applied.contains(v)).count(),
            unknown: applied.into_iter().filter(|v| !known.contains(v)).collect(),
        })
    }

    /// Which backend this is ("sqlite" or "postgres").
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    /// The message already stored under this dedupe key, with its ticket.
    pub async fn find_message(&self, dedupe_key: &str) -> Result<Option<StoredMessageRef>> {
        dispatch!(self, find_message(dedupe_key))
    }

    /// Records that a known message also arrived in `mailbox`. Returns
    /// whether this mailbox was new for it.
    pub async fn record_arrival(&self, message: i64, mailbox: &str, now: i64) -> Result<bool> {
        dispatch!(self, record_arrival(message, mailbox, now))
    }

    /// The ingest transaction: ticket, message, attachments, participants,
    /// keys, history and outbox, all or nothing. Returns `Duplicate` when a
    /// concurrent writer stored the same message first.
    pub async fn create_ticket(&self, new: &NewTicket<'_>) -> Result<CreateOutcome> {
        let mut tx = self.begin().await?;
        let Some(ticket) = tx.create_ticket(new).await? else {
            return Ok(CreateOutcome::Duplicate);
        };
        let mut queued = tx.commit().await?;
        Ok(CreateOutcome::Created {
            ticket,
            queued: queued.remove(&ticket).unwrap_or_default(),
        })
    }

    /// A write transaction for several mails (see [`StoreTx`]).
    pub async fn begin(&self) -> Result<StoreTx> {
        let tx = match &self.backend {
            Backend::Sqlite(pool) => TxBackend::Sqlite(sql::sqlite::begin(pool).await?),
            Backend::Postgres(pool) => TxBackend::Postgres(sql::postgres::begin(pool).await?),
        };
        Ok(StoreTx {
            tx,
            pending: Pending::default(),
            batch: None,
            hooks: self.hooks,
        })
    }

    /// Keeps a mail that could not be ticketed. Storing the same bytes
    /// twice returns the existing row.
    pub async fn quarantine(
        &self,
        mailbox: &str,
        reason: &str,
        raw: &[u8],
        now: i64,
    ) -> Result<i64> {
        dispatch!(self, quarantine(mailbox, reason, raw, now))
    }

    pub async fn quarantine_list(&self) -> Result<Vec<QuarantineRow>> {
        dispatch!(self, quarantine_list())
    }

    /// The raw bytes and mailbox of a quarantined mail.
    pub async fn quarantine_raw(&self, id: i64) -> Result<(String, Vec<u8>)> {
        dispatch!(self, quarantine_raw(id))
    }

    /// Marks a quarantined mail as released into a ticket (or its reason
    /// updated when it failed again).
    pub async fn quarantine_update(
        &self,
        id: i64,
        status: &str,
        reason: &str,
        ticket: Option<i64>,
        now: i64,
    ) -> Result<()> {
        dispatch!(self, quarantine_update(id, status, reason, ticket, now))
    }

    /// Appends a follow-up to an existing ticket, in one transaction.
    pub async fn append_message(&self, add: &AppendMessage<'_>) -> Result<AppendOutcome> {
        let mut tx = self.begin().await?;
        let outcome = tx.append_message(add).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// An agent's change (owner, state, outcome) with its history and mails.
    pub async fn update_ticket(&self, number: i64, change: &TicketUpdate) -> Result<()> {
        dispatch!(self, update_ticket(number, change, self.hooks))
    }

    /// Whether the changes written through this store record webhook
    /// events: off for a deployment without `[[webhooks]]`, whose events
    /// nobody would deliver (the daemon deleted them after each intake,
    /// a tenth of PostgreSQL's work a mail). A deployment that adds
    /// endpoints restarts with them, and its events are written from then on.
    pub fn webhook_events(&mut self, on: bool) {
        self.hooks = on;
    }

    pub async fn ticket_for_message_ids(&self, ids: &[String]) -> Result<Option<i64>> {
        dispatch!(self, ticket_for_message_ids(ids))
    }

    pub async fn ticket_state(&self, number: i64) -> Result<Option<TicketState>> {
        dispatch!(self, ticket_state(number))
    }

    pub async fn open_ticket_for_key(
        &self,
        name: &str,
        value: &str,
        requester: &str,
        domain: Option<&str>,
    ) -> Result<Option<i64>> {
        dispatch!(self, open_ticket_for_key(name, value, requester, domain))
    }

    pub async fn is_participant(&self, ticket: i64, address: &str) -> Result<bool> {
        dispatch!(self, is_participant(ticket, address))
    }

    /// The key that signs our Message-IDs, created on first use and kept in
    /// the database so every instance of a deployment shares it.
    pub async fn message_id_key(&self) -> Result<String> {
        let fresh = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        dispatch!(self, setting_or_create("message_id_key", fresh))
    }

    /// UIDVALIDITY and last UID stored for an IMAP folder.
    pub async fn checkpoint(&self, account: &str, folder: &str) -> Result<Option<(i64, i64)>> {
        dispatch!(self, checkpoint(account, folder))
    }

    pub async fn set_checkpoint(
        &self,
        account: &str,
        folder: &str,
        uidvalidity: i64,
        last_uid: i64,
        now: i64,
    ) -> Result<()> {
        dispatch!(
            self,
            set_checkpoint(account, folder, uidvalidity, last_uid, now)
        )
    }

    /// Takes or renews the lease on `name` for `holder` until `until`.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        dispatch!(self, acquire_lease(name, holder, now, until))
    }

    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        dispatch!(self, release_lease(name, holder))
    }

    /// Open tickets of `owner` and the id of the newest ticket they got.
    pub async fn owner_load(&self, owner: &str) -> Result<(i64, Option<i64>)> {
        dispatch!(self, owner_load(owner))
    }

    /// Sets a person's password hash (argon2id, made by the caller) and
    /// ends their sessions.
    pub async fn set_password(&self, person: &str, hash: &str, now: i64) -> Result<()> {
        dispatch!(self, set_password(person, hash, now))
    }

    pub async fn password_hash(&self, person: &str) -> Result<Option<String>> {
        dispatch!(self, password_hash(person))
    }

    /// Opens a session; `id_hash` is the SHA-256 of the cookie.
    pub async fn create_session(
        &self,
        id_hash: &str,
        session: &WebSession,
        now: i64,
    ) -> Result<()> {
        dispatch!(self, create_session(id_hash, session, now))
    }

    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<WebSession>> {
        dispatch!(self, session(id_hash, now))
    }

    pub async fn end_session(&self, id_hash: &str) -> Result<()> {
        dispatch!(self, end_session(id_hash))
    }

    pub async fn record_login_failure(&self, person: &str, address: &str, now: i64) -> Result<()> {
        dispatch!(self, record_login_failure(person, address, now))
    }

    /// Failed logins since `since`: (for this person, from this address).
    pub async fn login_failures(
        &self,
        person: &str,
        address: &str,
        since: i64,
    ) -> Result<(i64, i64)> {
        dispatch!(self, login_failures(person, address, since))
    }

    /// Keeps a new API token (its hash); returns its id.
    pub async fn create_token(&self, token: &NewApiToken) -> Result<i64> {
        dispatch!(self, create_token(token))
    }

    /// The person of the live API token with this hash (not revoked, not
    /// expired); notes when it was used.
    pub async fn token_person(&self, token_hash: &str, now: i64) -> Result<Option<String>> {
        dispatch!(self, token_person(token_hash, now))
    }

    /// The API tokens (of one person, when given), newest first.
    pub async fn tokens(&self, person: Option<&str>) -> Result<Vec<ApiToken>> {
        dispatch!(self, tokens(person))
    }

    /// Revokes an API token; false when no live token has that id.
    pub async fn revoke_token(&self, id: i64, now: i64) -> Result<bool> {
        dispatch!(self, revoke_token(id, now))
    }

    /// An attachment of a message of a ticket, for download.
    pub async fn attachment(
        &self,
        ticket: i64,
        message: i64,
        index: i64,
    ) -> Result<Option<AttachmentContent>> {
        dispatch!(self, attachment(ticket, message, index))
    }

    /// Agents' mails not carried out yet, oldest first.
    pub async fn pending_staff_mail(&self) -> Result<Vec<StaffJob>> {
        dispatch!(self, pending_staff_mail())
    }

    /// Finishes an agent's mail with nothing more to do.
    pub async fn finish_staff_mail(&self, key: &str, now: i64) -> Result<()> {
        dispatch!(self, finish_staff_mail(key, now))
    }

    /// How many tickets each state holds under `filter`, its states aside.
    pub async fn count_by_state(&self, filter: &TicketFilter) -> Result<Vec<(String, i64)>> {
        dispatch!(self, count_by_state(filter))
    }

    /// The tickets `filter.search` finds (with the filter's other
    /// conditions), best first, each with where it matched: the one
    /// search of the command line, the tray and the API.
    pub async fn search(&self, filter: &TicketFilter) -> Result<Vec<crate::search::SearchHit>> {
        dispatch!(self, search(filter))
    }

    pub async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketRow>> {
        dispatch!(self, list_tickets(filter))
    }

    /// Tickets created in [from, to) (Unix ms) with what `buzon report`
    /// measures (closing time, first agent reply), oldest first.
    pub async fn report_rows(&self, from: i64, to: i64) -> Result<Vec<ReportRow>> {
        dispatch!(self, report_rows(from, to))
    }

    pub async fn ticket(&self, number: i64) -> Result<TicketDetail> {
        let mut detail = dispatch!(self, ticket_detail(number))?;
        detail.alerts = self.alerts_where(None, Some(number), true).await?;
        Ok(detail)
    }

    /// Claims up to `limit` outbox rows that are due, leasing them to
    /// `holder` (an instance's name) until `lease_until` so that no other
    /// worker sends them meanwhile.
    pub async fn outbox_claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        holder: &str,
    ) -> Result<Vec<OutboxRow>> {
        dispatch!(self, outbox_claim(now, lease_until, limit, holder))
    }

    /// Gives back the leases on queued mails and webhook deliveries that
    /// `holder` holds: a daemon's previous process, killed in the middle of
    /// a round, left them. Only at start, before claiming anything, under a
    /// name no live process shares (`instance::Instance`). Returns the mails
    /// and deliveries given back.
    pub async fn release_claims(&self, holder: &str) -> Result<(u64, u64)> {
        dispatch!(self, release_claims(holder))
    }

    /// Marks these outbox rows sent at `now` (usually one transaction per
    /// round), each with the `message.sent` webhook event of its ticket
    /// (`(id, Some((ticket, event)))`) in the same transaction.
    pub async fn outbox_sent(
        &self,
        sent: &[(i64, Option<(i64, crate::ticket::NewHookEvent)>)],
        now: i64,
    ) -> Result<()> {
        if self.hooks {
            return dispatch!(self, outbox_sent(sent, now));
        }
        let sent: Vec<_> = sent.iter().map(|(id, _)| (*id, None)).collect();
        dispatch!(self, outbox_sent(&sent, now))
    }

    /// Records a failed attempt: `next` is when to retry, `None` to give up.
    pub async fn outbox_failed(&self, id: i64, error: &str, next: Option<i64>) -> Result<()> {
        dispatch!(self, outbox_failed(id, error, next))
    }

    pub async fn outbox_list(&self, status: Option<OutboxStatus>) -> Result<Vec<OutboxRow>> {
        dispatch!(self, outbox_list(status))
    }

    /// How many mails are queued (for `/metrics`).
    pub async fn outbox_queued(&self) -> Result<i64> {
        dispatch!(self, outbox_queued())
    }

    pub async fn outbox_get(&self, id: i64) -> Result<Option<OutboxRow>> {
        dispatch!(self, outbox_get(id))
    }

    /// `buzon outbox retry`: a queued or failed row becomes due now with a
    /// fresh schedule; returns false for a row already sent (left alone).
    pub async fn outbox_requeue(&self, id: i64, now: i64) -> Result<bool> {
        dispatch!(self, outbox_requeue(id, now))
    }

    /// Fans new webhook events out to the endpoints `endpoints_for` names
    /// (see `webhooks`); returns how many events were read.
    pub async fn hook_fan_out(
        &self,
        now: i64,
        limit: i64,
        endpoints_for: &(dyn Fn(&crate::ticket::HookEvent) -> Vec<String> + Send + Sync),
    ) -> Result<usize> {
        dispatch!(self, hook_fan_out(now, limit, endpoints_for))
    }

    /// Claims due webhook deliveries with a lease (see `outbox_claim`).
    pub async fn hook_claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
        holder: &str,
    ) -> Result<Vec<HookJob>> {
        dispatch!(self, hook_claim(now, lease_until, limit, holder))
    }

    pub async fn hook_sent(&self, ids: &[i64], now: i64) -> Result<()> {
        dispatch!(self, hook_sent(ids, now))
    }

    /// A failed attempt: `next` is when to retry, `None` to give up.
    pub async fn hook_failed(&self, id: i64, error: &str, next: Option<i64>) -> Result<()> {
        dispatch!(self, hook_failed(id, error, next))
    }

    /// One webhook delivery by id, or `None`.
    pub async fn hook_get(&self, id: i64) -> Result<Option<crate::ticket::HookDelivery>> {
        dispatch!(self, hook_get(id))
    }

    /// Deletes the webhook deliveries sent before `before` and the events
    /// left without any (`[daemon] webhooks_retention`); returns how many
    /// deliveries and events.
    pub async fn hook_prune(&self, before: i64) -> Result<(u64, u64)> {
        dispatch!(self, hook_prune(before))
    }

    pub async fn hook_list(
        &self,
        status: Option<OutboxStatus>,
    ) -> Result<Vec<crate::ticket::HookDelivery>> {
        dispatch!(self, hook_list(status))
    }

    /// `buzon webhooks retry ID`; false for a delivery already sent or unknown.
    pub async fn hook_requeue(&self, id: i64, now: i64) -> Result<bool> {
        dispatch!(self, hook_requeue(id, now))
    }

    /// Webhook deliveries queued and given up.
    pub async fn hook_counts(&self) -> Result<(i64, i64)> {
        dispatch!(self, hook_counts())
    }

    /// Automatic mails queued to `address` since `since` (Unix ms).
    /// Missed deadlines with no alert yet (see `deadline::check`).
    pub async fn breaches(&self, now: i64, limit: i64) -> Result<Vec<Breach>> {
        match &self.backend {
            Backend::Sqlite(p) => sql::sqlite::breaches(p, now, limit).await,
            Backend::Postgres(p) => sql::postgres::breaches(p, now, limit).await,
        }
    }

    /// Records a breach with its mails; `false` if it was recorded before.
    pub async fn record_breach(&self, new: &NewBreach) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(p) => sql::sqlite::record_breach(p, new, self.hooks).await,
            Backend::Postgres(p) => sql::postgres::record_breach(p, new, self.hooks).await,
        }
    }

    /// Open alerts (all with `cleared`), of one owner or everyone's.
    pub async fn alerts(&self, owner: Option<&str>, cleared: bool) -> Result<Vec<AlertRow>> {
        self.alerts_where(owner, None, cleared).await
    }

    async fn alerts_where(
        &self,
        owner: Option<&str>,
        ticket: Option<i64>,
        cleared: bool,
    ) -> Result<Vec<AlertRow>> {
        match &self.backend {
            Backend::Sqlite(p) => sql::sqlite::alerts(p, owner, ticket, cleared).await,
            Backend::Postgres(p) => sql::postgres::alerts(p, owner, ticket, cleared).await,
        }
    }

    pub async fn auto_mail_count(&self, address: &str, since: i64) -> Result<i64> {
        dispatch!(self, auto_mail_count(address, since))
    }
}

enum TxBackend {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

/// One write transaction that several mails share: an IMAP batch is
/// stored with one commit instead of one per mail (each statement is a hop
/// to SQLite's worker thread or a round trip to PostgreSQL, and each commit
/// a flush to disk). Lookups through it see what it wrote before the
/// commit, so a follow-up threads onto a ticket opened earlier in the same
/// batch. Dropped without `commit`, it rolls back.
///
/// On SQLite it holds the write lock from the start (`BEGIN IMMEDIATE`):
/// nothing else may write through the pool while it is open.
pub struct StoreTx {
    tx: TxBackend,
    /// The mails and history lines of the changes so far, written at commit.
    pending: Pending,
    /// Set by [`StoreTx::batch_new_tickets`]: new tickets wait in
    /// `pending` and are written together.
    batch: Option<NewTicketBatch>,
    /// Whether its changes write webhook events ([`Store::webhook_events`]).
    hooks: bool,
}

/// What a transaction that writes its new tickets together knows.
#[derive(Debug, Default)]
struct NewTicketBatch {
    /// The dedupe keys of the batch's messages already stored when it
    /// began: a mail among them is no new ticket.
    stored: std::collections::HashSet<String>,
    /// The next ticket number, where the transaction counts them (SQLite).
    next_number: Option<i64>,
    /// Numbers taken ahead for the batch's mails that can only open a
    /// ticket (PostgreSQL), handed out in order.
    reserved: std::collections::VecDeque<i64>,
    /// Tickets taken back at a write because another writer stored their
    /// message meanwhile, with the ticket that holds it.
    replaced: BTreeMap<i64, i64>,
}

/// What a batch's commit tells besides the mails queued: the new tickets
/// written as something else (see [`StoreTx::commit_batch`]).
#[derive(Debug, Default)]
pub struct Committed {
    /// The kinds of the mails queued, per ticket (see [`StoreTx::commit`]).
    pub queued: BTreeMap<i64, Vec<String>>,
    /// A new ticket given back because its message was stored by another
    /// writer while the batch ran, with the ticket that holds it.
    pub replaced: BTreeMap<i64, i64>,
}

/// Runs the same call on the transaction's connection, whichever backend.
macro_rules! dispatch_tx {
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        match &mut $self.tx {
            TxBackend::Sqlite(tx) => sql::sqlite::$f(&mut **tx, $($arg),*).await,
            TxBackend::Postgres(tx) => sql::postgres::$f(&mut **tx, $($arg),*).await,
        }
    };
}

impl StoreTx {
    /// Writes what the changes left pending, then commits. Returns the kinds
    /// of the mails queued, per ticket (a mail held back by the limit on
    /// automatic mail is not among them).
    pub async fn commit(self) -> Result<BTreeMap<i64, Vec<String>>> {
        Ok(self.commit_batch().await?.queued)
    }

    /// As [`StoreTx::commit`], telling also which new tickets were written
    /// as one more arrival of a message another writer stored meanwhile.
    pub async fn commit_batch(mut self) -> Result<Committed> {
        self.write_tickets().await?;
        self.write_rows().await?;
        if !self.hooks {
            self.pending.hooks.clear();
        }
        let queued = dispatch_tx!(self, flush_pending(&self.pending))?;
        match self.tx {
            TxBackend::Sqlite(tx) => tx.commit().await?,
            TxBackend::Postgres(tx) => tx.commit().await?,
        }
        Ok(Committed {
            queued,
            replaced: self.batch.map(|b| b.replaced).unwrap_or_default(),
        })
    }

    /// From now on new tickets wait and are written together, a statement
    /// per table, when something reads what they would change or at
    /// commit: on SQLite one write of the search index instead of one per
    /// mail, on PostgreSQL one round trip instead of one per mail.
    /// `dedupe_keys` are the batch's messages: those already stored are
    /// looked up now, so a duplicate is known before its ticket is made.
    pub async fn batch_new_tickets(&mut self, dedupe_keys: &[String]) -> Result<()> {
        let stored = dispatch_tx!(self, stored_dedupe_keys(dedupe_keys))?;
        self.batch = Some(NewTicketBatch {
            stored,
            ..NewTicketBatch::default()
        });
        Ok(())
    }

    /// Whether this dedupe key was stored when the batch began.
    pub fn was_stored(&self, dedupe_key: &str) -> bool {
        self.batch
            .as_ref()
            .is_some_and(|b| b.stored.contains(dedupe_key))
    }

    /// Takes `count` ticket numbers at once, for mails of the batch that
    /// can only open a ticket, so that each does not ask the database on
    /// its own (PostgreSQL: a round trip each; SQLite counts them itself
    /// and takes none). They are handed out in order to the batch's next
    /// new tickets, whichever they are, so numbers keep the mails' order
    /// and none is left unused.
    pub async fn reserve_numbers(&mut self, count: usize) -> Result<()> {
        if self.batch.is_none() || count == 0 {
            return Ok(());
        }
        let numbers = dispatch_tx!(self, reserve_ticket_numbers(count))?;
        if let Some(batch) = &mut self.batch {
            batch.reserved.extend(numbers);
        }
        Ok(())
    }

    /// Writes the new tickets waiting, when `needed` (a read is about to
    /// look at what they change).
    async fn write_tickets_if(&mut self, needed: bool) -> Result<()> {
        if needed {
            self.write_tickets().await?;
        }
        Ok(())
    }

    /// Writes the new tickets waiting (see `sql::flush_new_tickets`); one
    /// taken back is recorded as one more arrival of the message that
    /// another writer stored.
    async fn write_tickets(&mut self) -> Result<()> {
        if self.pending.tickets.is_empty() {
            return Ok(());
        }
        let taken_back = dispatch_tx!(self, flush_new_tickets(&mut self.pending))?;
        for (ticket, key, mailbox, now) in taken_back {
            let found = dispatch_tx!(self, find_message(&key))?.ok_or_else(|| {
                StoreError::Corrupt(format!("message {key} both stored and absent"))
            })?;
            dispatch_tx!(self, record_arrival(found.message, &mailbox, now))?;
            if let Some(batch) = &mut self.batch {
                // Numbers given back: count again from the database.
                batch.next_number = None;
                batch.replaced.insert(ticket, found.ticket);
            }
        }
        Ok(())
    }

    /// Whether a new ticket waiting is this one.
    fn waiting_ticket(&self, ticket: i64) -> bool {
        self.pending.tickets.iter().any(|t| t.id == ticket)
    }

    /// Whether a message waiting with its new ticket has this dedupe key.
    fn waiting_message(&self, dedupe_key: &str) -> bool {
        self.pending
            .tickets
            .iter()
            .any(|t| t.dedupe_key == dedupe_key)
    }

    /// The number for a new ticket (see `NEXT_TICKET_NUMBER`).
    async fn next_number(&mut self) -> Result<i64> {
        if let Some(batch) = &mut self.batch {
            if let Some(n) = batch.reserved.pop_front() {
                return Ok(n);
            }
            if let Some(n) = batch.next_number {
                batch.next_number = Some(n + 1);
                return Ok(n);
            }
        }
        let (n, counted) = match &mut self.tx {
            TxBackend::Sqlite(tx) => (
                sql::sqlite::next_ticket_number(tx).await?,
                sql::sqlite::numbers_counted(),
            ),
            TxBackend::Postgres(tx) => (
                sql::postgres::next_ticket_number(tx).await?,
                sql::postgres::numbers_counted(),
            ),
        };
        if let Some(batch) = &mut self.batch
            && counted
        {
            batch.next_number = Some(n + 1);
        }
        Ok(n)
    }

    /// See [`Store::find_message`].
    pub async fn find_message(&mut self, dedupe_key: &str) -> Result<Option<StoredMessageRef>> {
        self.write_tickets_if(self.waiting_message(dedupe_key))
            .await?;
        dispatch_tx!(self, find_message(dedupe_key))
    }

    /// See [`Store::record_arrival`].
    pub async fn record_arrival(&mut self, message: i64, mailbox: &str, now: i64) -> Result<bool> {
        self.write_tickets().await?;
        self.write_rows().await?;
        dispatch_tx!(self, record_arrival(message, mailbox, now))
    }

    /// Writes the participants and arrivals waiting in `pending`, so that
    /// what reads them next sees them.
    async fn write_rows(&mut self) -> Result<()> {
        if self.pending.participants.is_empty() && self.pending.arrivals.is_empty() {
            return Ok(());
        }
        dispatch_tx!(self, write_rows(&mut self.pending))
    }

    /// A new ticket with its first message; `None` when the message is
    /// already stored (then nothing of it stays written). Its mails are
    /// queued at commit.
    /// In a batch (see [`StoreTx::batch_new_tickets`]) the ticket waits
    /// with its number, and a mail already stored gets `None` at once.
    pub async fn create_ticket(&mut self, new: &NewTicket<'_>) -> Result<Option<i64>> {
        let Some(batch) = &self.batch else {
            return dispatch_tx!(self, create_ticket(new, &mut self.pending));
        };
        let key = new.mail.dedupe_key();
        if batch.stored.contains(&key) || self.waiting_message(&key) {
            return Ok(None);
        }
        let ticket = self.next_number().await?;
        self.pending.tickets.push(PendingTicket::of(ticket, new));
        self.pending
            .participants
            .extend(new.participants.iter().map(|p| (ticket, p.clone())));
        self.pending
            .push(ticket, new.now, new.events.clone(), (new.outgoing)(ticket));
        // Without endpoints the event would be dropped at commit: not built.
        if self.hooks {
            self.pending.hooks.push((
                ticket,
                new.now,
                crate::ticket::NewHookEvent::new(
                    crate::ticket::HookKind::TicketCreated,
                    hook_message(new.mail, Some(new.channel)),
                ),
            ));
        }
        Ok(Some(ticket))
    }

    /// A follow-up on its ticket; its mails are queued at commit.
    pub async fn append_message(&mut self, add: &AppendMessage<'_>) -> Result<AppendOutcome> {
        let needed =
            self.waiting_ticket(add.ticket) || self.waiting_message(&add.mail.dedupe_key());
        self.write_tickets_if(needed).await?;
        dispatch_tx!(self, append_message(add, &mut self.pending))
    }

    pub async fn ticket_for_message_ids(&mut self, ids: &[String]) -> Result<Option<i64>> {
        let needed = self.pending.tickets.iter().any(|t| {
            t.mail
                .message_id
                .as_ref()
                .is_some_and(|id| ids.contains(id))
        });
        self.write_tickets_if(needed).await?;
        dispatch_tx!(self, ticket_for_message_ids(ids))
    }

    pub async fn ticket_state(&mut self, number: i64) -> Result<Option<TicketState>> {
        self.write_tickets_if(self.waiting_ticket(number)).await?;
        dispatch_tx!(self, ticket_state(number))
    }

    pub async fn open_ticket_for_key(
        &mut self,
        name: &str,
        value: &str,
        requester: &str,
        domain: Option<&str>,
    ) -> Result<Option<i64>> {
        let needed = self.pending.tickets.iter().any(|t| {
            t.route
                .keys
                .iter()
                .any(|k| k.name == name && k.value == value)
        });
        self.write_tickets_if(needed).await?;
        dispatch_tx!(self, open_ticket_for_key(name, value, requester, domain))
    }

    /// Queues an agent's mail to be carried out once this commits.
    pub async fn queue_staff_mail(
        &mut self,
        key: &str,
        ticket: i64,
        person: &str,
        now: i64,
    ) -> Result<()> {
        self.write_tickets().await?;
        dispatch_tx!(self, queue_staff_mail(key, ticket, person, now))
    }

    pub async fn is_participant(&mut self, ticket: i64, address: &str) -> Result<bool> {
        self.write_tickets_if(self.waiting_ticket(ticket)).await?;
        self.write_rows().await?;
        dispatch_tx!(self, is_participant(ticket, address))
    }

    /// See [`Store::owner_load`].
    pub async fn owner_load(&mut self, owner: &str) -> Result<(i64, Option<i64>)> {
        let needed = self
            .pending
            .tickets
            .iter()
            .any(|t| t.route.owner.as_deref() == Some(owner));
        self.write_tickets_if(needed).await?;
        dispatch_tx!(self, owner_load(owner))
    }

    /// Writes the intake's bookkeeping with this transaction's mails (see
    /// [`Bookkeeping`]). Returns whether the lease is held (true when none
    /// was asked for).
    pub async fn bookkeeping(&mut self, b: &Bookkeeping<'_>, now: i64) -> Result<bool> {
        if let Some(c) = b.checkpoint {
            dispatch_tx!(
                self,
                set_checkpoint(c.account, c.folder, c.uidvalidity, c.last_uid, now)
            )?;
        }
        match b.lease {
            Some(l) => dispatch_tx!(self, acquire_lease(l.name, l.holder, now, l.until)),
            None => Ok(true),
        }
    }
}

/// The history lines and mails of the changes made in a transaction, kept
/// until it commits. Then the limit on automatic mail is counted once for
/// all their recipients, and outbox rows, the log behind the limit, the
/// outgoing messages and history lines get one multi-row insert each,
/// instead of a handful of statements per mail. Nothing read during the
/// transaction depends on them: a customer cannot answer an
/// acknowledgement that has not been sent.
///
/// The participants and mailbox arrivals of the new messages wait too, but
/// something in the batch may read them (is the sender of a follow-up a
/// participant of the ticket opened three mails earlier? did this copy
/// already arrive in this mailbox?): those reads write them first
/// ([`StoreTx::is_participant`], [`StoreTx::record_arrival`]). Two rows
/// fewer per mail is half of what a new ticket costs in statements.
#[derive(Debug, Default)]
struct Pending {
    /// New tickets with their first message, in a batch (see
    /// [`StoreTx::batch_new_tickets`]); written before the rest.
    tickets: Vec<PendingTicket>,
    changes: Vec<PendingChange>,
    participants: Vec<(i64, NewParticipant)>,
    /// Message id, mailbox, arrival time.
    arrivals: Vec<(i64, String, i64)>,
    /// Webhook events (ticket, time, event), written at commit with the
    /// tickets as they stand then.
    hooks: Vec<(i64, i64, crate::ticket::NewHookEvent)>,
}

/// A new ticket waiting to be written with the others of its batch: what
/// its row and its first message hold, owned.
#[derive(Debug)]
struct PendingTicket {
    id: i64,
    /// The first message's (see `ParsedMail::dedupe_key`).
    dedupe_key: String,
    mailbox: String,
    channel: crate::ticket::Channel,
    raw: Vec<u8>,
    mail: crate::parse::ParsedMail,
    automatic: Option<crate::classify::Automatic>,
    route: crate::route::Route,
    needs_review: bool,
    linked_ticket: Option<i64>,
    deadlines: crate::ticket::Deadlines,
    now: i64,
}

impl PendingTicket {
    fn of(id: i64, new: &NewTicket<'_>) -> PendingTicket {
        PendingTicket {
            id,
            dedupe_key: new.mail.dedupe_key(),
            mailbox: new.mailbox.to_string(),
            channel: new.channel,
            raw: new.raw.to_vec(),
            mail: new.mail.clone(),
            automatic: new.automatic.cloned(),
            route: new.route.clone(),
            needs_review: new.needs_review,
            linked_ticket: new.linked_ticket,
            deadlines: new.deadlines,
            now: new.now,
        }
    }
}

#[derive(Debug)]
struct PendingChange {
    ticket: i64,
    now: i64,
    events: Vec<NewEvent>,
    outgoing: Vec<OutgoingMail>,
}

impl Pending {
    fn push(&mut self, ticket: i64, now: i64, events: Vec<NewEvent>, outgoing: Vec<OutgoingMail>) {
        self.changes.push(PendingChange {
            ticket,
            now,
            events,
            outgoing,
        });
    }
}

/// Switches the database file to WAL once (the mode is stored in the file).
/// Asking for it on every new connection, as sqlx would, fails with
/// "database is locked" while another process (the daemon) is writing.
async fn ensure_wal(opts: &SqliteConnectOptions) -> Result<(), sqlx::Error> {
    use sqlx::{ConnectOptions, Connection, Row};
    let mut conn = opts.connect().await?;
    let mode: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    if !mode.eq_ignore_ascii_case("wal") {
        let mut tries = 0;
        loop {
            match sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(e) if tries < 50 && e.to_string().contains("locked") => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
    conn.close().await
}

/// sqlx does not lock SQLite while migrating, so two processes starting on
/// a fresh file (the daemon and a CLI command) would both create the tables.
/// A file lock beside the database serialises them.
/// Says, before an upgrade indexes a large database for the search
/// (migration 0011, one statement that cannot report its progress), that
/// it will take a while; returns when it started.
fn announce_search_index(messages: Option<i64>) -> Option<std::time::Instant> {
    let messages = messages.filter(|n| *n >= 10_000)?;
    tracing::warn!(
        messages,
        "Building the search index of the messages already stored (migration 0011, once): \
         about 25 s (SQLite) or 3 minutes (PostgreSQL) per 500,000 messages; buzon goes on when it is done."
    );
    Some(std::time::Instant::now())
}

/// Says the search index announced is built.
fn indexed(started: Option<std::time::Instant>) {
    if let Some(started) = started {
        tracing::warn!(seconds = started.elapsed().as_secs(), "Search index built.");
    }
}

async fn migrate_sqlite(pool: &SqlitePool, lock_path: &str) -> Result<()> {
    if lock_path.starts_with(":memory:") || lock_path.starts_with(".migrate-lock") {
        return Ok(SQLITE_MIGRATOR.run(pool).await?);
    }
    let lock_err = |e: std::io::Error| StoreError::Open {
        url: lock_path.to_string(),
        cause: sqlx::Error::Io(e),
    };
    let path = lock_path.to_string();
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    })
    .await
    .map_err(|e| lock_err(std::io::Error::other(e)))?
    .map_err(lock_err)?;
    let result = SQLITE_MIGRATOR.run(pool).await;
    let _ = file.unlock();
    Ok(result?)
}

/// The URL without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Milliseconds since the Unix epoch, the store's time unit.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

#[cfg(test)]
mod tests {
    use super::{Backend, Store, StoreError, TicketFilter};

    /// What another program (or a newer buzon) might leave in the
    /// database: each read that meets it fails naming the column and the
    /// value, and reads nothing else into a default.
    #[tokio::test]
    async fn unknown_stored_values_are_errors_naming_column_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("buzon.db").display());
        let store = Store::open(&url, 1).await.unwrap();
        let Backend::Sqlite(pool) = &store.backend else {
            unreachable!()
        };
        for sql in [
            "INSERT INTO tickets (subject, state, pipeline, priority, mailbox, created_at, \
             updated_at) VALUES ('x', 'cerrado', 'Soporte', 'medium', 'soporte', 1, 1)",
            "INSERT INTO events (ticket_id, at, actor, kind, detail) \
             VALUES (1, 1, 'system', 'teleported', '')",
            "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, \
             next_attempt_at, created_at) \
             VALUES (1, 'reply', 'a@b', 'x@y', 'c@d', x'00', 'delivered', 1, 1)",
        ] {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        let invalid = |err: StoreError| match err {
            StoreError::Invalid { column, value } => (column, value),
            other => panic!("not an Invalid: {other}"),
        };
        let err = store.ticket(1).await.unwrap_err();
        assert!(err.to_string().contains("tickets.state"), "{err}");
        assert_eq!(invalid(err), ("tickets.state", "cerrado".to_string()));
        let err = store.list_tickets(&TicketFilter::default()).await;
        assert_eq!(invalid(err.unwrap_err()).0, "tickets.state");
        assert!(store.ticket_state(1).await.is_err());
        let err = store.outbox_list(None).await.unwrap_err();
        assert_eq!(invalid(err), ("outbox.status", "delivered".to_string()));

        sqlx::query("UPDATE tickets SET state = 'open'")
            .execute(pool)
            .await
            .unwrap();
        let err = store.ticket(1).await.unwrap_err();
        assert_eq!(invalid(err), ("events.kind", "teleported".to_string()));
        sqlx::query("UPDATE events SET kind = 'comment', actor = 'robot'")
            .execute(pool)
            .await
            .unwrap();
        let err = store.ticket(1).await.unwrap_err();
        assert_eq!(invalid(err), ("events.actor", "robot".to_string()));
        sqlx::query("UPDATE events SET actor = 'agent:ana'")
            .execute(pool)
            .await
            .unwrap();
        let detail = store.ticket(1).await.unwrap();
        assert_eq!(detail.ticket.state, crate::ticket::State::Open);
        assert_eq!(
            detail.events[0].actor,
            crate::ticket::Actor::Agent("ana".into())
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://buzon:secret@db/buzon"),
            "postgres://buzon:***@db/buzon"
        );
        assert_eq!(super::redact("sqlite:/x.db"), "sqlite:/x.db");
    }
}
