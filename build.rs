//! Build script: rebuild when migrations change (sqlx embeds them) and
//! bundle the demo mail under `examples/demo/mail/<mailbox>/*.eml` and the
//! teams' examples (`examples/<team>/buzon.toml`, `rules/`, `templates/`)
//! into the binary, so `buzon demo` works from any directory.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=examples/demo/mail");
    let root = Path::new("examples/demo/mail");
    let mut entries = Vec::new();
    if let Ok(dirs) = std::fs::read_dir(root) {
        for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
            let mailbox = dir.file_name().to_string_lossy().into_owned();
            println!("cargo:rerun-if-changed={}", dir.path().display());
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "eml") {
                    let name = file.file_name().to_string_lossy().into_owned();
                    entries.push((name, mailbox.clone(), path));
                }
            }
        }
    }
    // Files are named NN-slug.eml; the number orders them across mailboxes.
    entries.sort();
    let mut out = String::from("pub static DEMO_MAIL: &[(&str, &str, &[u8])] = &[\n");
    for (name, mailbox, path) in entries {
        let abs = std::fs::canonicalize(&path).unwrap_or(path);
        let _ = writeln!(
            out,
            "    ({name:?}, {mailbox:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    out.push_str(&team_files());
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("demo_mail.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

/// `DEMO_TEAMS`: (team, path inside the team's folder, contents) for every
/// example that has a `buzon.toml`.
fn team_files() -> String {
    let mut files = Vec::new();
    if let Ok(teams) = std::fs::read_dir("examples") {
        for team in teams
            .flatten()
            .filter(|t| t.path().join("buzon.toml").is_file())
        {
            let name = team.file_name().to_string_lossy().into_owned();
            println!("cargo:rerun-if-changed={}", team.path().display());
            files.push((
                name.clone(),
                "buzon.toml".to_string(),
                team.path().join("buzon.toml"),
            ));
            for sub in ["rules", "templates"] {
                let dir = team.path().join(sub);
                println!("cargo:rerun-if-changed={}", dir.display());
                for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if f.path().is_file() {
                        let rel = format!("{sub}/{}", f.file_name().to_string_lossy());
                        files.push((name.clone(), rel, f.path()));
                    }
                }
            }
        }
    }
    files.sort();
    let mut out = String::from("pub static DEMO_TEAMS: &[(&str, &str, &[u8])] = &[\n");
    for (team, rel, path) in files {
        let abs = std::fs::canonicalize(&path).unwrap_or(path);
        let _ = writeln!(
            out,
            "    ({team:?}, {rel:?}, include_bytes!({:?})),",
            abs.display().to_string()
        );
    }
    out.push_str("];\n");
    out
}
