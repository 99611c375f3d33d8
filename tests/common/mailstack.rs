//! A private Dovecot per test (started with `tests/harness/mail-start.sh`,
//! stopped on drop), and a small IMAP client to fill and inspect folders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::TryStreamExt;

/// A running Dovecot (no SMTP) in its own temp dir.
pub struct MailStack {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    _tmp: Option<tempfile::TempDir>,
}

fn harness(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/harness")
        .join(script)
}

impl MailStack {
    pub fn start() -> MailStack {
        Self::start_opts(false)
    }

    /// Like [`MailStack::start`], and Dovecot also offers AUTHENTICATE
    /// XOAUTH2 / OAUTHBEARER: an oauth2 passdb validates JWTs locally
    /// (HS256 with the key in [`MailStack::oauth2_key_file`]; claims `sub`,
    /// `exp` and `email` = the login name). Passwords keep working.
    pub fn start_with_oauth2() -> MailStack {
        Self::start_opts(true)
    }

    fn start_opts(oauth2: bool) -> MailStack {
        // Inside the run dir of tests/run.sh when there is one, so that a
        // stack leaked by a killed test is still stopped at the end.
        let (tmp, parent) = match std::env::var("BUZON_TEST_RUN_DIR") {
            Ok(d) if Path::new(&d).is_dir() => (None, PathBuf::from(d)),
            _ => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        let dir = parent.join(format!("imap-{}-{}", std::process::id(), unique()));
        let out = Command::new("bash")
            .arg(harness("mail-start.sh"))
            .arg(&dir)
            .env("MAILTEST_SMTP", "none")
            .env("MAILTEST_OAUTH2", if oauth2 { "1" } else { "0" })
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cannot start a private Dovecot (Debian packages dovecot-imapd and dovecot-lmtpd; \
             `bash tests/run.sh` installs them):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut env = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(rest) = line.strip_prefix("export ") {
                for pair in rest.split_whitespace() {
                    if let Some((k, v)) = pair.split_once('=') {
                        env.insert(k.to_string(), v.trim_matches(['"', '\'']).to_string());
                    }
                }
            }
        }
        MailStack {
            dir,
            env,
            _tmp: tmp,
        }
    }

    pub fn port(&self, name: &str) -> u16 {
        self.env[name].parse().unwrap()
    }

    pub fn ca(&self) -> String {
        self.env["MAILTEST_CA"].clone()
    }

    /// The base64 HS256 key that Dovecot checks tokens with (only with
    /// [`MailStack::start_with_oauth2`]).
    pub fn oauth2_key_file(&self) -> PathBuf {
        PathBuf::from(&self.env["OAUTH2_KEY_FILE"])
    }

    /// Dovecot's log so far (auth failures give their reason there when
    /// OAuth2 is on).
    pub fn dovecot_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log/dovecot.log")).unwrap_or_default()
    }

    /// Stops Dovecot (the master and its children), keeping its data.
    pub fn stop_dovecot(&self) {
        let pid = std::fs::read_to_string(self.dir.join("run/master.pid")).unwrap();
        let pid = pid.trim().to_string();
        Command::new("kill").arg(&pid).status().unwrap();
        for _ in 0..100 {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let gone = state.is_empty() || state.split_whitespace().nth(2) == Some("Z");
            if gone {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("dovecot did not stop");
    }

    pub fn start_dovecot(&self) {
        for _ in 0..50 {
            let ok = Command::new("dovecot")
                .arg("-c")
                .arg(&self.env["DOVECOT_CONF"])
                .status()
                .unwrap()
                .success();
            if ok {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("dovecot did not restart");
    }

    /// A logged-in IMAP session as `user` (plain, on loopback).
    pub async fn session(&self, user: &str) -> Imap {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port("IMAP_PORT")))
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap();
        let session = client
            .login(format!("{user}@example.test"), format!("{user}-pass"))
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        Imap { session }
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(harness("mail-stop.sh"))
            .arg(&self.dir)
            .output();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

pub struct Imap {
    pub session: async_imap::Session<tokio::net::TcpStream>,
}

impl Imap {
    pub async fn create(&mut self, folder: &str) {
        let _ = self.session.create(folder).await;
    }

    pub async fn delete(&mut self, folder: &str) {
        self.session.delete(folder).await.unwrap();
    }

    pub async fn append(&mut self, folder: &str, raw: &[u8]) {
        self.session.append(folder, None, None, raw).await.unwrap();
    }

    /// (UID, flags) of every mail in `folder`.
    pub async fn list(&mut self, folder: &str) -> Vec<(u32, Vec<String>)> {
        let mbox = self.session.select(folder).await.unwrap();
        if mbox.exists == 0 {
            return Vec::new();
        }
        let fetched: Vec<_> = self
            .session
            .fetch("1:*", "(UID FLAGS)")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        fetched
            .iter()
            .map(|f| {
                (
                    f.uid.unwrap_or(0),
                    f.flags().map(|fl| format!("{fl:?}")).collect(),
                )
            })
            .collect()
    }

    pub async fn logout(mut self) {
        let _ = self.session.logout().await;
    }
}

/// A realistic customer mail with a unique Message-ID and order number.
pub fn customer_mail(i: usize, tag: &str) -> Vec<u8> {
    format!(
        "From: Cliente {i} <cliente{i}@cliente.example>\r\n\
         To: soporte@example.test\r\n\
         Subject: Consulta pedido N° {} ({tag})\r\n\
         Message-ID: <{tag}-{i}@cliente.example>\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 -0300\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\r\n\
         Hola, quisiera saber el estado de mi pedido {}.\r\n\
         Quedo atento, gracias.\r\n",
        70000 + i,
        70000 + i
    )
    .into_bytes()
}
