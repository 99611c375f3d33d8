//! The Debian package, installed as an admin installs it: built with
//! cargo-deb from this test build's binary, `apt-get install`ed, checked
//! (files, the `buzon` user, permissions, `buzon check` clean and broken,
//! the daemon as `buzon` with the unit's command line until READY, the
//! unit's `systemd-analyze` verdicts), then purged. The steps are
//! `tests/harness/deb-test.sh`; this runs it (as root, as CI does).

#[test]
fn the_debian_package_installs_checks_runs_and_purges() {
    let bin = assert_cmd::cargo::cargo_bin("buzon");
    // <target>/debug/buzon: package that binary (`deb-build.sh test`).
    let target = bin
        .parent()
        .and_then(|debug| debug.parent())
        .expect("the test binary lives in <target>/debug");
    let out = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/harness/deb-test.sh"
        ))
        .arg("test")
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "deb-test.sh failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
