//! The fault campaign's short version (`benches/faults.sh` with a small
//! backlog and a few kills): SIGKILL during drains on SQLite and PostgreSQL
//! with dispositions `seen` and `move`, SIGKILL during delivery to Postfix,
//! PostgreSQL and Dovecot restarted mid-drain, Postfix away with
//! acknowledgements queued, the database's disk full. The script counts
//! without asking buzon (Message-IDs in the database against the mailbox,
//! acknowledgements in the customer's mailbox) and fails on any loss or
//! duplicate.

use std::process::Command;

#[test]
fn the_short_fault_campaign_loses_nothing_and_doubles_nothing() {
    let root = Command::new("id").arg("-u").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "the fault campaign needs root: Postfix (Debian package postfix) runs only as root, \
         and the full disk is a tmpfs it mounts"
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/faults.sh");
    // MAILS KILLS ACKS DOWN (seconds a server stays away)
    let out = Command::new("bash")
        .arg(script)
        .args(["150", "2", "60", "2"])
        .env("FAULTS_BIN", assert_cmd::cargo::cargo_bin("buzon"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}\n{stderr}");
    assert!(out.status.success(), "the campaign failed:\n{stdout}");
    let faults: Vec<&str> = stdout.lines().filter(|l| l.starts_with("fault ")).collect();
    assert_eq!(faults.len(), 9, "one line per fault:\n{stdout}");
    assert!(faults.iter().all(|l| l.contains(" ok ")), "{stdout}");
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    for zero in [
        " lost=0 ",
        " duplicate_messages=0 ",
        " duplicate_tickets=0 ",
        " duplicate_acks_queued=0 ",
        " marked_not_stored=0 ",
        " acks_missing=0 ",
    ] {
        assert!(summary.contains(zero), "{summary}");
    }
}
