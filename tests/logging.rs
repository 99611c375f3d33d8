//! Logs under systemd: with `--log-format journald` (or when systemd
//! connected stderr to the journal) every record goes to the journal's
//! native socket with its priority and its fields under their own names,
//! so `journalctl -p err -u buzon` shows the errors, fatal ones included,
//! and `journalctl MAILBOX=soporte` filters. The machine has no journal, so
//! the test runs buzon in a private mount namespace (root, `unshare`) where
//! /run/systemd/journal/socket is a socket the test reads.

use std::process::Command;

/// Reads native-protocol datagrams from the socket until buzon is done:
/// one JSON object per record on stdout.
const LISTENER: &str = r#"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
s.settimeout(3)
while True:
    try:
        data = s.recv(1 << 20)
    except socket.timeout:
        break
    if not data:
        continue
    record, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            record[k.decode()] = v.decode("utf-8", "replace")
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", data[nl + 1 : nl + 9])
            record[line.decode()] = data[nl + 9 : nl + 9 + n].decode("utf-8", "replace")
            i = nl + 9 + n + 1
    print(json.dumps(record), flush=True)
"#;

#[test]
fn journald_records_carry_priorities_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("listener.py"), LISTENER).unwrap();
    std::fs::write(
        d.join("good.toml"),
        "[database]\nurl = \"sqlite:buzon.db\"\n[outbox]\ndir = \"outbox\"\n\
         [mailboxes.soporte]\naddress = \"soporte@example.cl\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("bad.toml"),
        "[mailboxes.soporte]\naddress = \"soporte\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("mail.eml"),
        "From: Cliente <cliente@example.com>\r\nTo: soporte@example.cl\r\n\
         Subject: No puedo ingresar\r\nMessage-ID: <journal-1@example.com>\r\n\
         Date: Mon, 2 Nov 2026 10:00:00 -0300\r\n\r\nHola.\r\n",
    )
    .unwrap();
    let bin = assert_cmd::cargo::cargo_bin("buzon");
    let script = format!(
        r#"set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal
python3 {d}/listener.py /run/systemd/journal/socket {d}/ready > {d}/records &
listener=$!
for _ in $(seq 100); do [ -e {d}/ready ] && [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
set +e
env -u JOURNAL_STREAM {bin} --log-format journald --config {d}/bad.toml check
echo "check=$?" > {d}/status
BUZON_LOG=info {bin} --log-format journald --config {d}/good.toml ingest --mailbox soporte {d}/mail.eml >/dev/null
echo "ingest=$?" >> {d}/status
wait $listener
"#,
        d = d.display(),
        bin = bin.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "bash", "-c", &script])
        .output()
        .expect("unshare runs (root, util-linux)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let status = std::fs::read_to_string(d.join("status")).unwrap();
    assert!(status.contains("check=78"), "{status}\n{stderr}");
    assert!(status.contains("ingest=0"), "{status}\n{stderr}");
    // Nothing on stderr: it all went to the journal.
    assert!(!stderr.contains("mailboxes.soporte.address"), "{stderr}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(d.join("records"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fatal = records
        .iter()
        .find(|r| {
            r["MESSAGE"]
                .as_str()
                .unwrap_or("")
                .contains("mailboxes.soporte.address")
        })
        .unwrap_or_else(|| panic!("no record of the configuration problem: {records:#?}"));
    assert_eq!(fatal["PRIORITY"], "3", "{fatal:#}");
    assert_eq!(fatal["SYSLOG_IDENTIFIER"], "buzon", "{fatal:#}");
    let created = records
        .iter()
        .find(|r| r["MESSAGE"] == "Ticket created.")
        .unwrap_or_else(|| panic!("no record of the ticket: {records:#?}"));
    assert_eq!(created["MAILBOX"], "soporte", "{created:#}");
    assert_eq!(created["PRIORITY"], "5", "{created:#}");
    // A timestamp once: the journal's own, none in the message.
    assert!(
        !created["MESSAGE"].as_str().unwrap_or("").contains("20"),
        "{created:#}"
    );
}
