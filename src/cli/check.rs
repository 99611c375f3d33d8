//! `buzon check`: the configuration, rules, templates, secrets, listen
//! addresses and database, as `run` would load them (like `nginx -t`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use buzon::check::{self, Finding, Status};
use buzon::config::Config;

use super::{EX_CONFIG, EX_TEMPFAIL, outln};

pub async fn run(config: &Config, path: &Path, connect: bool) -> Result<ExitCode> {
    let mut findings = vec![Finding {
        topic: "configuration".into(),
        status: Status::Ok,
        text: path.display().to_string(),
    }];
    findings.extend(check::files(config));
    findings.push(check::database(config).await);
    if connect {
        findings.extend(check::connect(config).await);
    }
    for finding in &findings {
        outln!("{finding}");
    }
    Ok(match check::worst(&findings) {
        Status::Ok | Status::Note => ExitCode::SUCCESS,
        Status::Unreachable => ExitCode::from(EX_TEMPFAIL),
        Status::Config => ExitCode::from(EX_CONFIG),
    })
}
