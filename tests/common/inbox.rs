//! The shared mail stack that `tests/run.sh` starts (Postfix delivering
//! into Dovecot), seen from a test: read what arrived in a user's INBOX
//! over IMAP, send mail through Postfix, and a TCP relay in front of
//! Postfix that a test can take down and bring back.
//!
//! Tests share the stack's users, so each test uses its own plus address
//! (`customer+TAG@example.test`, delivered to `customer`'s INBOX) and reads
//! only the mail addressed to it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use futures::TryStreamExt;

/// The stack's ports. Fails (never skips) when `tests/run.sh` did not
/// start it.
pub struct Stack {
    pub imap_port: u16,
    pub smtp_port: u16,
    pub submission_port: u16,
    pub smtps_port: u16,
    /// PEM of the stack's self-signed certificate.
    pub ca_file: String,
}

impl Stack {
    pub fn from_env() -> Stack {
        let var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => v,
            _ => panic!(
                "{name} is not set: the SMTP tests need the private Dovecot + Postfix stack. \
                 Run `bash tests/run.sh` (it installs Debian's `dovecot-imapd`, `dovecot-lmtpd` \
                 and `postfix` packages if missing and starts the stack on loopback), or \
                 `eval \"$(bash tests/harness/mail-start.sh)\"` first."
            ),
        };
        let port = |name: &str| {
            var(name)
                .parse()
                .unwrap_or_else(|e| panic!("{name} is not a port: {e}"))
        };
        Stack {
            imap_port: port("IMAP_PORT"),
            smtp_port: port("SMTP_PORT"),
            submission_port: port("SUBMISSION_PORT"),
            smtps_port: port("SMTPS_PORT"),
            ca_file: var("MAILTEST_CA"),
        }
    }

    /// Every mail in `user`'s INBOX whose `To` contains `to` (raw bytes,
    /// in arrival order).
    pub fn fetch(&self, user: &str, to: &str) -> Vec<Vec<u8>> {
        runtime().block_on(self.fetch_async(user, to))
    }

    async fn fetch_async(&self, user: &str, to: &str) -> Vec<Vec<u8>> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap();
        let mut session = client
            .login(format!("{user}@example.test"), format!("{user}-pass"))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        session.examine("INBOX").await.unwrap();
        let mut uids: Vec<u32> = session
            .uid_search(format!("TO \"{to}\""))
            .await
            .unwrap()
            .into_iter()
            .collect();
        uids.sort();
        let mut out = Vec::new();
        if !uids.is_empty() {
            let set: Vec<String> = uids.iter().map(u32::to_string).collect();
            let mut fetched: Vec<(u32, Vec<u8>)> = session
                .uid_fetch(set.join(","), "(UID BODY.PEEK[])")
                .await
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .iter()
                .map(|f| (f.uid.unwrap_or(0), f.body().unwrap_or_default().to_vec()))
                .collect();
            fetched.sort_by_key(|(uid, _)| *uid);
            out = fetched.into_iter().map(|(_, raw)| raw).collect();
        }
        let _ = session.logout().await;
        out
    }

    /// Waits until at least `n` mails to `to` are in `user`'s INBOX (or
    /// `timeout` passes), then returns them all. Postfix hands a mail to
    /// Dovecot 20–50 ms after accepting it, so a second is plenty.
    pub fn wait_for(&self, user: &str, to: &str, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let start = Instant::now();
        loop {
            let got = self.fetch(user, to);
            if got.len() >= n || start.elapsed() > timeout {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The mails to `to` once nothing more has arrived for `quiet`: what a
    /// test asserts "exactly N" on (a doubled mail would still be on its
    /// way through Postfix right after the first).
    pub fn settled(&self, user: &str, to: &str, quiet: Duration) -> Vec<Vec<u8>> {
        let mut last = self.fetch(user, to);
        loop {
            std::thread::sleep(quiet);
            let now = self.fetch(user, to);
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
    }

    /// Sends `raw` through Postfix's port 25 (no AUTH from loopback).
    pub fn send(&self, from: &str, to: &str, raw: &[u8]) {
        use lettre::AsyncTransport;
        let port = self.smtp_port;
        runtime().block_on(async {
            let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
                "127.0.0.1",
            )
            .port(port)
            .build();
            let envelope = lettre::address::Envelope::new(
                Some(from.parse().unwrap()),
                vec![to.parse().unwrap()],
            )
            .unwrap();
            smtp.send_raw(&envelope, raw).await.unwrap();
        });
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A unique tag for plus addresses and Message-IDs.
pub fn tag(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000;
    format!(
        "{name}{}x{nanos}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A TCP relay on a fixed loopback port in front of Postfix: while it is
/// down the port refuses connections (what a dead SMTP server looks like to
/// buzon); `up` brings it back on the same port.
pub struct Relay {
    pub port: u16,
    target: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Relay {
    /// A free port, not listening yet.
    pub fn down(target: u16) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Relay {
            port,
            target,
            runtime: None,
        }
    }

    pub fn up(&mut self) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(("127.0.0.1", self.port)))
            .unwrap();
        let target = self.target;
        rt.spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.runtime = Some(rt);
    }

    pub fn take_down(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.take_down();
    }
}
