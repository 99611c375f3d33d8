//! Submits outbox rows to an SMTP server: lettre on tokio, pooled
//! connections, implicit TLS, STARTTLS (required) or plain, AUTH PLAIN or
//! LOGIN with the password read from a file or the environment.
//!
//! Owns the connection settings and what a server's answer means for the
//! outbox: a 5xx reply to the mail is permanent (the row fails at once);
//! everything else (connection refused, timeouts, 4xx, TLS or login
//! problems, which an admin fixes) is transient and retried. The raw bytes
//! stored in the outbox are sent as they are: what was recorded on the
//! ticket is exactly what the customer gets.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Smtp, SmtpTls};

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

/// A pooled SMTP client for one server.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// `host:port (tls)`, for logs and receipts.
    server: String,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the credentials: never print it.
        f.debug_struct("SmtpSender")
            .field("server", &self.server)
            .finish()
    }
}

impl SmtpSender {
    /// Builds the client. `env` looks up environment variables (injected
    /// so tests need not touch the process environment). Connects lazily.
    pub fn new(cfg: &Smtp, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, SmtpSetupError> {
        let port = cfg.port();
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
                .port(port)
                .timeout(Some(Duration::from_millis(
                    u64::try_from(cfg.timeout_ms()).unwrap_or(30_000),
                )))
                .pool_config(PoolConfig::new().max_size(cfg.pool_size.max(1)));
        if cfg.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(cfg.host.clone());
            if let Some(ca) = &cfg.ca_file {
                let shown = ca.display().to_string();
                let pem =
                    std::fs::read(ca).map_err(|e| SmtpSetupError::CaFile(shown.clone(), e))?;
                let cert =
                    Certificate::from_pem(&pem).map_err(|e| SmtpSetupError::CaPem(shown, e))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| SmtpSetupError::Tls(cfg.host.clone(), e))?;
            builder = builder.tls(match cfg.tls {
                SmtpTls::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if let Some(user) = &cfg.username {
            let password = read_password(cfg, env)?;
            builder = builder
                .credentials(Credentials::new(user.clone(), password))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let tls = match cfg.tls {
            SmtpTls::Implicit => "implicit TLS",
            SmtpTls::Starttls => "STARTTLS",
            SmtpTls::None => "plain",
        };
        Ok(SmtpSender {
            transport: builder.build(),
            server: format!("{}:{port} ({tls})", cfg.host),
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// Submits one message; `Ok` carries the server's answer.
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
        match self.transport.send_raw(&envelope, raw).await {
            Ok(response) => Ok(format!(
                "{} {}: {}",
                self.server,
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => Err(classify(&self.server, &e)),
        }
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
