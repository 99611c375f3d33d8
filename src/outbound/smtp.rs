//! Submits outbox rows to an SMTP server: lettre's SMTP client on tokio
//! over connections this module opens and pools, implicit TLS, STARTTLS
//! (required) or plain, AUTH PLAIN or LOGIN with the password read from a
//! file or the environment.
//!
//! The sockets are ours so that they can be set up right: `TCP_NODELAY`.
//! lettre 0.11 writes a message and then its final `"\r\n.\r\n"` as two
//! writes and never sets the option (lettre/lettre#1159, not released);
//! with Nagle's algorithm on, the second write waits for the server's
//! delayed ACK, about 40 ms per mail. Up to `smtp.pool_size` connections
//! send at once, each kept open and reused.
//!
//! Owns the connection settings and what a server's answer means for the
//! outbox: a 5xx reply to the mail is permanent (the row fails at once);
//! everything else (connection refused, timeouts, 4xx, TLS or login
//! problems, which an admin fixes) is transient and retried. The raw bytes
//! stored in the outbox are sent as they are: what was recorded on the
//! ticket is exactly what the customer gets.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::config::{Smtp, SmtpTls};
use crate::source::tls::{self as tls_config, TlsError};

/// Why the SMTP transport could not be set up from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum SmtpSetupError {
    #[error("cannot read the SMTP password from {0}: {1}")]
    PasswordFile(String, std::io::Error),
    #[error("the SMTP password variable {0} is not set (smtp.password_env)")]
    PasswordEnv(String),
    #[error("cannot read smtp.ca_file {0}: {1}")]
    CaFile(String, std::io::Error),
    #[error("smtp.ca_file {0} is not a PEM certificate: {1}")]
    CaPem(String, lettre::transport::smtp::Error),
    #[error("cannot set up TLS for {0}: {1}")]
    Tls(String, lettre::transport::smtp::Error),
    #[error("cannot set up implicit TLS for {0}: {1}")]
    ImplicitTls(String, TlsError),
}

/// Why one submission failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// The server could not be reached or talked to (refused, timeout,
    /// TLS): no other mail will get through right now either.
    Unreachable(String),
    /// The server answered 4xx (or refused our login): try this mail later.
    Transient(String),
    /// The server answered 5xx to this mail: it will never be accepted.
    Permanent(String),
}

/// A connection idle longer than this is checked (NOOP) before it is used
/// again: servers close idle sessions (Postfix after 300 s).
const CHECK_IDLE_AFTER: Duration = Duration::from_secs(10);

/// A pooled SMTP client for one server.
#[derive(Clone)]
pub struct SmtpSender {
    pool: Arc<Pool>,
}

/// The settings to open a session, and the sessions open.
struct Pool {
    /// `host:port (tls)`, for logs and receipts.
    server: String,
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// For connecting and for each mail.
    timeout: Duration,
    /// At most `pool_size` sessions exist: one per permit.
    permits: Semaphore,
    connections: usize,
    /// Sessions open and free, with when they were last used.
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// How the session is protected.
enum Tls {
    None,
    /// STARTTLS after the greeting, required (lettre's upgrade).
    Starttls(TlsParameters),
    /// TLS from the first byte (rustls with the system roots and `ca_file`).
    Implicit(Arc<rustls::ClientConfig>),
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pool holds the credentials: never print it.
        f.debug_struct("SmtpSender")
            .field("server", &self.pool.server)
            .finish()
    }
}

impl SmtpSender {
    /// Builds the client. `env` looks up environment variables (injected
    /// so tests need not touch the process environment). Connects lazily.
    pub fn new(cfg: &Smtp, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, SmtpSetupError> {
        let port = cfg.port();
        let tls = match cfg.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Implicit => Tls::Implicit(
                tls_config::client_config(cfg.ca_file.as_deref())
                    .map_err(|e| SmtpSetupError::ImplicitTls(cfg.host.clone(), e))?,
            ),
            SmtpTls::Starttls => {
                let mut params = TlsParameters::builder(cfg.host.clone());
                if let Some(ca) = &cfg.ca_file {
                    let shown = ca.display().to_string();
                    let pem =
                        std::fs::read(ca).map_err(|e| SmtpSetupError::CaFile(shown.clone(), e))?;
                    let cert =
                        Certificate::from_pem(&pem).map_err(|e| SmtpSetupError::CaPem(shown, e))?;
                    params = params.add_root_certificate(cert);
                }
                Tls::Starttls(
                    params
                        .build_rustls()
                        .map_err(|e| SmtpSetupError::Tls(cfg.host.clone(), e))?,
                )
            }
        };
        let credentials = match &cfg.username {
            Some(user) => Some(Credentials::new(user.clone(), read_password(cfg, env)?)),
            None => None,
        };
        let shown_tls = match cfg.tls {
            SmtpTls::Implicit => "implicit TLS",
            SmtpTls::Starttls => "STARTTLS",
            SmtpTls::None => "plain",
        };
        let connections = usize::try_from(cfg.pool_size.max(1)).unwrap_or(1);
        Ok(SmtpSender {
            pool: Arc::new(Pool {
                server: format!("{}:{port} ({shown_tls})", cfg.host),
                host: cfg.host.clone(),
                port,
                tls,
                credentials,
                hello: ClientId::default(),
                timeout: Duration::from_millis(u64::try_from(cfg.timeout_ms()).unwrap_or(30_000)),
                permits: Semaphore::new(connections),
                connections,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn server(&self) -> &str {
        &self.pool.server
    }

    /// Opens a session as a delivery would (TLS, EHLO, AUTH) and closes
    /// it: the server's answer, for `buzon check --connect`.
    pub async fn try_session(&self) -> Result<String, SendFailure> {
        let mut conn = self.pool.connect().await?;
        let name = conn.server_info().name().to_string();
        let _ = tokio::time::timeout(self.pool.timeout, conn.quit()).await;
        Ok(format!(
            "{}: {name} accepted the session{}",
            self.pool.server,
            if self.pool.credentials.is_some() {
                " and the login"
            } else {
                ""
            }
        ))
    }

    /// How many sessions may send at once (`smtp.pool_size`).
    pub fn connections(&self) -> usize {
        self.pool.connections
    }

    /// Submits one message; `Ok` carries the server's answer. Waits for a
    /// free session when `pool_size` are busy.
    pub async fn send(&self, from: &str, to: &[String], raw: &[u8]) -> Result<String, SendFailure> {
        let address = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| SendFailure::Permanent(format!("invalid address '{a}': {e}")))
        };
        let rcpt = to
            .iter()
            .map(|a| address(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope::new(Some(address(from)?), rcpt)
            .map_err(|e| SendFailure::Permanent(format!("invalid envelope: {e}")))?;
        let pool = &self.pool;
        let _permit = pool
            .permits
            .acquire()
            .await
            .map_err(|e| SendFailure::Unreachable(format!("{}: {e}", pool.server)))?;
        // A pooled session the server closed meanwhile fails at once: then
        // the mail is tried once more on a new session.
        if let Some(mut conn) = pool.take_idle().await {
            match pool.submit(&mut conn, &envelope, raw).await {
                Err(SendFailure::Unreachable(_)) => {}
                result => {
                    pool.give_back(conn);
                    return result;
                }
            }
        }
        let mut conn = pool.connect().await?;
        let result = pool.submit(&mut conn, &envelope, raw).await;
        pool.give_back(conn);
        result
    }
}

impl Pool {
    /// A free open session, checked with NOOP if it was idle a while.
    async fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().ok()?.pop()?;
            if since.elapsed() < CHECK_IDLE_AFTER {
                return Some(conn);
            }
            let alive = tokio::time::timeout(self.timeout, conn.test_connected()).await;
            if alive.unwrap_or(false) {
                return Some(conn);
            }
        }
    }

    /// Keeps a session for the next mail, unless lettre gave up on it (it
    /// ends the session after any error).
    fn give_back(&self, conn: AsyncSmtpConnection) {
        if !conn.has_broken()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
    }

    /// One mail on an open session.
    async fn submit(
        &self,
        conn: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<String, SendFailure> {
        match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(response)) => Ok(format!(
                "{} {}: {}",
                self.server,
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Ok(Err(e)) => Err(classify(&self.server, &e)),
            Err(_) => {
                conn.abort().await;
                Err(SendFailure::Unreachable(format!(
                    "{}: no answer within {:?}",
                    self.server, self.timeout
                )))
            }
        }
    }

    /// A new session: TCP with `TCP_NODELAY`, TLS, EHLO, AUTH.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendFailure> {
        let unreachable =
            |what: String| SendFailure::Unreachable(format!("{}: {what}", self.server));
        let session = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| unreachable(format!("cannot connect: {e}")))?;
            tcp.set_nodelay(true)
                .map_err(|e| unreachable(format!("cannot set TCP_NODELAY: {e}")))?;
            let stream: Box<dyn AsyncTokioStream> = match &self.tls {
                Tls::Implicit(config) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| unreachable(format!("TLS server name: {e}")))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))?;
                    Box::new(ImplicitTls(tls))
                }
                Tls::None | Tls::Starttls(_) => Box::new(tcp),
            };
            let refused = |e| classify(&self.server, &e);
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
                .await
                .map_err(refused)?;
            if let Tls::Starttls(params) = &self.tls {
                conn.starttls(params.clone(), &self.hello)
                    .await
                    .map_err(refused)?;
            }
            if let Some(credentials) = &self.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                    .await
                    .map_err(refused)?;
            }
            Ok::<_, SendFailure>(conn)
        };
        tokio::time::timeout(self.timeout, session)
            .await
            .map_err(|_| unreachable(format!("no session within {:?}", self.timeout)))?
    }
}

/// A rustls session over our TCP socket, handed to lettre as its stream.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

/// 5xx is permanent, except the codes that mean our login or TLS setup is
/// wrong: failing every queued mail for a configuration mistake would lose
/// it, while retrying delivers it once the admin fixes the setting.
fn classify(server: &str, e: &lettre::transport::smtp::Error) -> SendFailure {
    let text = format!("{server}: {e}");
    let config_problem = e
        .status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"));
    if e.is_permanent() && !config_problem {
        SendFailure::Permanent(text)
    } else if e.is_permanent() || e.is_transient() || e.is_response() {
        SendFailure::Transient(text)
    } else {
        SendFailure::Unreachable(text)
    }
}

fn read_password(
    cfg: &Smtp,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SmtpSetupError> {
    if let Some(path) = &cfg.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SmtpSetupError::PasswordFile(path.display().to_string(), e))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_string());
    }
    match &cfg.password_env {
        Some(var) => env(var).ok_or_else(|| SmtpSetupError::PasswordEnv(var.clone())),
        None => Ok(String::new()),
    }
}
