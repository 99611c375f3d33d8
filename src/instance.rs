//! This instance's name in the folder leases and in the claims of the
//! outbox and the webhook deliveries.
//!
//! A folder is worked under a lease naming its holder (`folder_leases`).
//! A restarted daemon must recognise its own lease and resume at once
//! rather than wait for it to expire (30 s by default), so the name must
//! survive a restart, even after SIGKILL; and two daemons on two hosts
//! must never share one. `[daemon] instance` sets it; by default it is the
//! host name and a short hash of what makes this deployment on this host:
//! the machine id (`/etc/machine-id`, which tells apart two hosts with the
//! same name) and the configuration file's path (or, without a file, the
//! database and the accounts).
//!
//! The same holds for a mail or webhook delivery claimed before a crash:
//! the restarted daemon gives back, at start and before it claims anything,
//! the leases its name holds (`Store::release_claims`), since no other live
//! process claims under that name; another instance's claims wait for their
//! lease.
//!
//! Two daemons started with the same configuration file on one host would
//! get the same name and both work every folder (dedupe still stores each
//! mail once, but the work is done twice). So the default name also holds
//! a lock on the configuration file while the daemon runs: a second daemon
//! that finds it taken adds its process id to its name, and stands by as
//! another instance would.

use std::fs::File;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::config::Config;

/// The name, and the lock that keeps it ours while the daemon runs.
#[derive(Debug)]
pub struct Instance {
    pub name: String,
    /// Held, never read: dropping it releases the configuration file.
    _lock: Option<File>,
}

impl Instance {
    /// `[daemon] instance` when set, else the stable default (see the
    /// module's note).
    pub fn for_config(config: &Config) -> Instance {
        if let Some(name) = &config.daemon.instance {
            return Instance {
                name: name.clone(),
                _lock: None,
            };
        }
        let host = host_name();
        let machine = std::fs::read_to_string("/etc/machine-id")
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        let (lock, taken) = match &config.source {
            Some(path) => lock_file(path),
            None => (None, false),
        };
        let mut name = default_name(host.as_deref(), &machine, &identity(config));
        if taken {
            name = format!("{name}-{}", std::process::id());
            tracing::warn!(
                instance = %name,
                "Another buzon runs with this configuration file on this host; this one stands by under its own name. Set [daemon] instance to name each."
            );
        } else if host.is_none() && machine.is_empty() {
            // Nothing tells this host from another: a name of our own
            // rather than a lease shared with a stranger.
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            name = format!("{name}-{}", &suffix[..8]);
            tracing::warn!(
                instance = %name,
                "Neither the host name nor /etc/machine-id can be read: this instance's name changes at each start, so a restart waits for its folders' leases to expire. Set [daemon] instance."
            );
        }
        Instance { name, _lock: lock }
    }
}

/// The name a one-off command (`outbox flush`, `webhooks retry`, a command
/// that delivers what it just queued) claims mail and deliveries under:
/// the host and the process id, never a daemon's name, so a daemon that
/// starts meanwhile never gives back what the command is sending. A command
/// killed in the middle leaves its leases to expire.
pub fn one_off() -> String {
    format!(
        "{}-command-{}",
        host_name().as_deref().unwrap_or("buzon"),
        std::process::id()
    )
}

/// `host-1a2b3c4d`: readable in the lease table, unique by the hash.
fn default_name(host: Option<&str>, machine: &str, identity: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"buzon instance\0");
    hash.update(machine.as_bytes());
    hash.update(b"\0");
    hash.update(identity.as_bytes());
    let digest = hash.finalize();
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{short}", host.unwrap_or("buzon"))
}

/// What tells this deployment from another on the same host: the
/// configuration file's path, or without one the database and the
/// accounts (hashed, so a password in the URL never shows).
fn identity(config: &Config) -> String {
    match &config.source {
        Some(path) => {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            format!("file:{}", path.display())
        }
        None => {
            let accounts: Vec<String> = config
                .accounts
                .iter()
                .map(|(name, a)| format!("{name}={}@{}", a.username, a.host))
                .collect();
            format!(
                "db:{}\naccounts:{}",
                config.database.url,
                accounts.join(",")
            )
        }
    }
}

/// The host name from the kernel (a system call, so it works where the
/// unit hides `/proc/sys`), else `/etc/hostname`.
fn host_name() -> Option<String> {
    let clean = |h: String| {
        let h: String = h
            .trim()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .collect();
        (!h.is_empty() && h != "localhost").then_some(h)
    };
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .and_then(clean)
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .and_then(clean)
        })
}

/// Locks the configuration file (shared with nobody) for as long as the
/// returned file lives; `true` when another process holds it. A file that
/// cannot be opened or locked is simply not locked.
fn lock_file(path: &Path) -> (Option<File>, bool) {
    let Ok(file) = File::open(path) else {
        return (None, false);
    };
    match file.try_lock() {
        Ok(()) => (Some(file), false),
        Err(std::fs::TryLockError::WouldBlock) => (None, true),
        Err(std::fs::TryLockError::Error(_)) => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_name_is_stable_and_tells_hosts_and_deployments_apart() {
        let a = default_name(Some("mail1"), "m1", "file:/etc/buzon/buzon.toml");
        assert_eq!(
            a,
            default_name(Some("mail1"), "m1", "file:/etc/buzon/buzon.toml")
        );
        assert!(a.starts_with("mail1-"), "{a}");
        // Another host with the same name, another deployment on the host.
        assert_ne!(
            a,
            default_name(Some("mail1"), "m2", "file:/etc/buzon/buzon.toml")
        );
        assert_ne!(
            a,
            default_name(Some("mail1"), "m1", "file:/etc/buzon/otra.toml")
        );
        assert_ne!(
            a,
            default_name(Some("mail2"), "m1", "file:/etc/buzon/buzon.toml")
        );
    }

    #[test]
    fn a_second_daemon_on_the_same_file_gets_a_name_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buzon.toml");
        std::fs::write(&path, "").unwrap();
        let (first, taken) = lock_file(&path);
        assert!(first.is_some() && !taken);
        let (second, taken) = lock_file(&path);
        assert!(second.is_none() && taken);
        drop(first);
        let (third, taken) = lock_file(&path);
        assert!(third.is_some() && !taken);
    }
}
