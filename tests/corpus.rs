//! Robustness: every mail of the shared real-world corpus goes through
//! `ingest` and is either ticketed (or recognised as already stored) or
//! quarantined with a reason. Nothing is lost, nothing panics.
//!
//! The corpus lives beside the checkout (`../shared/corpus`, or
//! `$BUZON_SHARED_DIR/corpus`). `tests/run.sh` points at it when present; a
//! machine without it runs the test over the project's own fixtures only
//! and says so.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use buzon::parse::parse;
use buzon::pipeline::{Outcome, Pipeline};
use buzon::store::Store;

fn corpus_dir() -> Option<PathBuf> {
    let from_env = std::env::var("BUZON_SHARED_DIR")
        .ok()
        .map(|d| PathBuf::from(d).join("corpus"));
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    from_env.into_iter().chain([beside]).find(|d| d.is_dir())
}

/// The corpus's mails: the files its manifests list (the folders also hold
/// the source projects' expectation files, .json/.yml, which are not mail).
fn corpus_mails(corpus: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (manifest, prefix) in [("MANIFEST.tsv", ""), ("auto/TRAITS.tsv", "auto/")] {
        let text = std::fs::read_to_string(corpus.join(manifest)).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(path) = line.split('\t').next().filter(|p| !p.is_empty()) {
                out.push(corpus.join(format!("{prefix}{path}")));
            }
        }
    }
    out
}

fn mail_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            mail_files(&p, out);
        } else {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let is_doc = name.ends_with(".md") || name.ends_with(".tsv") || name == "LICENSE";
            if !is_doc {
                out.push(p);
            }
        }
    }
}

/// `expected_subject` per corpus file, from MANIFEST.tsv (when given).
fn expected_subjects(corpus: &Path) -> BTreeMap<PathBuf, String> {
    let text = std::fs::read_to_string(corpus.join("MANIFEST.tsv")).unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 5 && !f[4].is_empty()).then(|| (corpus.join(f[0]), f[4].to_string()))
        })
        .collect()
}

#[test]
fn every_corpus_mail_is_ticketed_or_quarantined() {
    let mut files = Vec::new();
    let corpus = corpus_dir();
    match &corpus {
        Some(dir) => files.extend(corpus_mails(dir)),
        None => {
            eprintln!("note: no shared corpus beside the checkout; using the project's fixtures")
        }
    }
    mail_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
        &mut files,
    );
    files.sort();
    assert!(
        files.iter().all(|f| f.is_file()),
        "a listed corpus file is missing"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = common::library_config(
        &dir.path().join("corpus.db"),
        "corpus",
        "soporte@buzon.example",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (created, duplicate, quarantined) = rt.block_on(async {
        let store = Store::open(&config.database.url, 4).await.unwrap();
        let pipeline = Pipeline::new(&config, &store).await.unwrap();
        let (mut created, mut duplicate, mut quarantined) = (0, 0, 0);
        for f in &files {
            let raw = std::fs::read(f).unwrap();
            match pipeline.ingest(&raw, "corpus").await {
                Ok(Outcome::Created { .. }) => created += 1,
                Ok(Outcome::Duplicate { .. }) | Ok(Outcome::Appended { .. }) => duplicate += 1,
                Ok(Outcome::Quarantined { reason, .. }) => {
                    assert!(!reason.is_empty());
                    if std::env::var("BUZON_CORPUS_VERBOSE").is_ok() {
                        eprintln!("quarantined {}: {reason}", f.display());
                    }
                    quarantined += 1;
                }
                Err(e) => panic!("{}: nothing stored: {e}", f.display()),
            }
        }
        (created, duplicate, quarantined)
    });
    eprintln!(
        "corpus: {} files: {created} tickets, {duplicate} already stored (same Message-ID or bytes), {quarantined} quarantined",
        files.len()
    );
    assert_eq!(created + duplicate + quarantined, files.len());
    assert!(created > 0);

    // Decoding quality: where the corpus states the subject, we read it the
    // same way (whitespace-normalised, as mail clients display it).
    if let Some(corpus) = &corpus {
        let (mut checked, mut differ) = (0, Vec::new());
        for (path, want) in expected_subjects(corpus) {
            let Ok(raw) = std::fs::read(&path) else {
                continue;
            };
            let Ok(mail) = parse(&raw, 1 << 30) else {
                continue;
            };
            // The manifest was made with a decoder that gave up on some
            // legacy 8-bit subjects; we decode those, so skip the comparison.
            if want.contains('\u{FFFD}') {
                continue;
            }
            // The manifest escapes control characters (`\\t`, `\\r\\n`).
            let norm = |s: &str| {
                s.replace("\\t", " ")
                    .replace("\\r", " ")
                    .replace("\\n", " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            checked += 1;
            if norm(&mail.subject) != norm(&want) {
                differ.push(format!(
                    "{}: {:?} != {:?}",
                    path.display(),
                    mail.subject,
                    want
                ));
            }
        }
        // A few corpus mails carry raw 8-bit subjects in a charset other
        // than the one they declare; no decoder can know. Allow those, and
        // show them, but fail if decoding regresses in general.
        for d in &differ {
            eprintln!("subject differs: {d}");
        }
        assert!(
            differ.len() * 50 <= checked,
            "{} of {checked} subjects differ",
            differ.len()
        );
        eprintln!(
            "corpus: {} of {checked} stated subjects decoded identically",
            checked - differ.len()
        );
    }
}
