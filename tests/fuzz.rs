//! A seeded mutation fuzzer over what buzon reads from outside: mail bytes
//! (parse, classify, threading clues, the rules, an agent's words and
//! commands), an agent's answer alone (quotes, signatures, `#` commands),
//! the threading clues alone (subject tags, reply prefixes, References),
//! rule files (loaded, and evaluated over real mail when they load), mail
//! templates and the configuration. The seeds
//! are the real-world corpus (`../shared/corpus`), the project's fixtures
//! and the five teams' own files; each input is a seed mutated a few times
//! (bit flips, inserted and deleted bytes, slices of another seed, cuts).
//! The oracle: nothing panics, and every error is a value.
//!
//! Bounded in CI (`BUZON_FUZZ_INPUTS`, default 1,500 inputs per target, a
//! fifth of that for rule evaluation);
//! `BUZON_FUZZ_INPUTS=200000 cargo test --release --test fuzz -- --nocapture`
//! is a long run, and `benches/fuzz.sh SECONDS` one bounded by time
//! (`BUZON_FUZZ_SECONDS` per target, over the whole corpus:
//! `BUZON_FUZZ_CORPUS=all`). The seed is printed, and `BUZON_FUZZ_SEED`
//! replays it.
//! A crash found becomes a fixture beside its fix.

use std::path::{Path, PathBuf};

/// xorshift64*: small, fast, and the same sequence for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `data`, maybe with bytes of `other`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    const INTERESTING: &[&[u8]] = &[
        b"\r\n",
        b"\n\n",
        b"=?utf-8?B?",
        b"?=",
        b"--",
        b"boundary=\"",
        b"\xff\xfe",
        b"\0",
        b"Content-Type: multipart/mixed; boundary=x\r\n",
        b"[[rule]]\n",
        b"{{",
        b"}}",
        b"{%",
        b"#cerrar",
        b"#asignar ",
        b"\"",
        b"'",
        b"=",
        b"[",
        b"]",
        b"\xc3",
        b"\xe2\x80\xae",
    ];
    match rng.below(7) {
        0 if !data.is_empty() => {
            let i = rng.below(data.len());
            data[i] ^= 1 << rng.below(8);
        }
        1 => {
            let i = rng.below(data.len() + 1);
            data.insert(i, rng.next() as u8);
        }
        2 if !data.is_empty() => {
            let i = rng.below(data.len());
            let n = rng.below(16).min(data.len() - i);
            data.drain(i..i + n);
        }
        3 if !other.is_empty() => {
            let from = rng.below(other.len());
            let n = rng.below(256).min(other.len() - from);
            let at = rng.below(data.len() + 1);
            data.splice(at..at, other[from..from + n].iter().copied());
        }
        4 => {
            let piece = INTERESTING[rng.below(INTERESTING.len())];
            let at = rng.below(data.len() + 1);
            data.splice(at..at, piece.iter().copied());
        }
        5 if data.len() > 1 => {
            let keep = rng.below(data.len());
            data.truncate(keep);
        }
        _ => {
            // Repeat a slice: deep nesting, long lines.
            if !data.is_empty() {
                let from = rng.below(data.len());
                let n = rng.below(64).min(data.len() - from);
                let piece: Vec<u8> = data[from..from + n].to_vec();
                for _ in 0..rng.below(8) {
                    data.extend_from_slice(&piece);
                }
            }
        }
    }
}

fn inputs() -> usize {
    std::env::var("BUZON_FUZZ_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500)
}

/// A time budget per target instead of a count (the long run).
fn seconds() -> Option<std::time::Duration> {
    std::env::var("BUZON_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(std::time::Duration::from_secs)
}

fn seed() -> u64 {
    std::env::var("BUZON_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        })
}

fn files_under(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, ext, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| ext.contains(&x))
        {
            out.push(p);
        }
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The mail seeds: the project's fixtures, the teams' demo mail and, when
/// present, the shared real-world corpus (a sample, to keep CI short).
fn mail_seeds() -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    files_under(&repo().join("tests/fixtures"), &["eml"], &mut paths);
    files_under(&repo().join("examples/demo/mail"), &["eml"], &mut paths);
    let mut corpus = Vec::new();
    files_under(
        &repo().join("../shared/corpus"),
        &["eml", "msg", "txt", "box", "mbox"],
        &mut corpus,
    );
    corpus.sort();
    // A seventh of the corpus keeps CI short; the long run takes it all.
    let step = if std::env::var("BUZON_FUZZ_CORPUS").as_deref() == Ok("all") {
        1
    } else {
        7
    };
    paths.extend(corpus.into_iter().step_by(step));
    paths
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .filter(|b| b.len() < 200_000)
        .collect()
}

/// Runs `target` on `BUZON_FUZZ_INPUTS` mutated seeds; returns how many it ran.
fn campaign(name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> usize {
    campaign_of(inputs(), name, seeds, target)
}

/// Runs `target` on `n` mutated seeds, or for `BUZON_FUZZ_SECONDS` when set.
fn campaign_of(n: usize, name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let seed = seed();
    let mut rng = Rng(seed);
    let started = std::time::Instant::now();
    let budget = seconds();
    let mut n_run = 0usize;
    loop {
        let done = match budget {
            Some(b) => started.elapsed() >= b,
            None => n_run >= n,
        };
        if done {
            break;
        }
        n_run += 1;
        let mut data = seeds[rng.below(seeds.len())].clone();
        let other = &seeds[rng.below(seeds.len())];
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut data, other);
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&data)));
        if outcome.is_err() {
            let dump = std::env::temp_dir().join(format!("buzon-fuzz-{name}-{seed}.bin"));
            let _ = std::fs::write(&dump, &data);
            panic!(
                "{name}: a panic on input {} (BUZON_FUZZ_SEED={seed}; input saved to {})",
                data.len(),
                dump.display()
            );
        }
    }
    eprintln!(
        "fuzz {name}: {n_run} inputs from {} seeds in {:.1?} (seed {seed})",
        seeds.len(),
        started.elapsed()
    );
    n_run
}

fn example_rules() -> buzon::rules::RuleSet {
    let config = buzon::config::Config::load(buzon::config::Sources {
        file: Some(repo().join("examples/genera-factoring/buzon.toml")),
        env: Vec::new(),
    })
    .expect("the example configuration loads");
    buzon::pipeline::load_rules(&config).expect("the example rules load")
}

#[test]
fn mail_never_panics_the_reader() {
    let rules = example_rules();
    let seeds = mail_seeds();
    let signer = buzon::thread::IdSigner::new(b"fuzz");
    campaign("mail", &seeds, |data| {
        let Ok(mail) = buzon::parse::parse(data, 1 << 22) else {
            return;
        };
        let automatic = buzon::classify::classify(&mail, &|_| false);
        for id in buzon::thread::referenced_ids(&mail) {
            let _ = signer.signed_for(&id);
        }
        let input = buzon::rules::RuleInput::new("finanzas", &mail, automatic.as_ref());
        let _ = rules.evaluate(&input);
        let words = buzon::mailroom::words::new_words(&mail.text);
        let _ = buzon::mailroom::commands::parse(&words);
        let _ = buzon::mailroom::auth::vouched(&mail.headers, "mx.example", "example.test");
    });
}

#[test]
fn rule_files_never_panic_the_loader() {
    let mut paths = Vec::new();
    files_under(&repo().join("examples"), &["toml"], &mut paths);
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("rules")))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let ctx = buzon::rules::LoadContext::default();
    campaign("rules", &seeds, |data| {
        let text = String::from_utf8_lossy(data).into_owned();
        if let Err(errors) =
            buzon::rules::RuleSet::from_texts(vec![("rules/10-fuzz.toml".into(), text)], &ctx)
        {
            // Every problem renders with its place.
            let _ = errors.to_string();
        }
    });
}

#[test]
fn templates_and_configuration_never_panic_their_loaders() {
    let mut paths = Vec::new();
    files_under(&repo().join("examples"), &["txt", "toml"], &mut paths);
    let seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    std::fs::create_dir_all(&templates).unwrap();
    let template = templates.join("acknowledgement.txt");
    let config = dir.path().join("buzon.toml");
    campaign("templates", &seeds, |data| {
        std::fs::write(&template, data).unwrap();
        if let Err(e) = buzon::outbound::templates::Templates::load(Some(&templates)) {
            let _ = e.to_string();
        }
    });
    campaign("config", &seeds, |data| {
        std::fs::write(&config, data).unwrap();
        let loaded = buzon::config::Config::load(buzon::config::Sources {
            file: Some(config.clone()),
            env: Vec::new(),
        });
        if let Err(e) = loaded {
            let _ = e.to_string();
        }
    });
}

/// What people type in the search box (issue 18): the parser never
/// panics and keeps only words of letters and digits, whatever the
/// backends would read as syntax; an excerpt of any text never panics
/// and stays on one line.
#[test]
fn search_queries_never_panic_and_are_only_words() {
    let seeds: Vec<Vec<u8>> = [
        "mi pedido 75321",
        "75321_2",
        "\"el documento observado por la notaría\" -anulado",
        "ana.munoz@correo.example Muñoz",
        "T-1042",
        "NEAR(a b, 3) OR body:secreto AND \"x\"*",
        "a & !b | c:* <-> d",
        "-\"\" -- \"\"\" ' ( ) \\ ^ $ % _",
        "observados notarías ÁÉÍÓÚ ñandú ß æ 東京 😀",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain(
        mail_seeds()
            .into_iter()
            .take(20)
            .map(|m| m[..m.len().min(300)].to_vec()),
    )
    .collect();
    campaign("search", &seeds, |data| {
        let text = String::from_utf8_lossy(data);
        let query = buzon::search::Query::parse(&text);
        assert!(query.parts.len() + query.excluded.len() <= 16);
        for part in query.parts.iter().chain(&query.excluded) {
            assert!(!part.words.is_empty());
            for w in &part.words {
                assert!(
                    !w.is_empty() && w.chars().all(char::is_alphanumeric),
                    "{w:?}"
                );
            }
        }
        let excerpt = buzon::search::excerpt(&text, &query);
        assert!(!excerpt.text().contains('\n'));
    });
}

/// An agent's answer to a notification: the words cut from quotes and
/// signatures, then the commands on its first lines. The seeds are the
/// mail clients' real answers (`tests/fixtures/agent_replies`) and every
/// command, well and badly written.
#[test]
fn agents_words_and_commands_never_panic() {
    let mut paths = Vec::new();
    files_under(
        &repo().join("tests/fixtures/agent_replies"),
        &["txt", "eml"],
        &mut paths,
    );
    let mut seeds: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    for text in [
        "#nota\nLlamé al cliente, envía el documento mañana.\n",
        "#cerrar sin éxito\n#asignar Ana Pérez\nNo hubo respuesta.\n",
        "  #TOMAR\n\n#estado esperando al cliente\n#prioridad ALTA\nHola:\n",
        "#cerrar\r\n#asignar\r\n#\r\n##nota\r\nEl lun, 2 nov 2026 a las 10:00, Cliente <c@x.example> escribió:\r\n> cita\r\n",
        "Gracias.\n-- \nAna\nSoporte\n\nDe: Soporte <soporte@example.test>\nEnviado: lunes\n",
    ] {
        seeds.push(text.as_bytes().to_vec());
    }
    campaign("agent-words", &seeds, |data| {
        let text = String::from_utf8_lossy(data);
        let words = buzon::mailroom::words::new_words(&text);
        let read = buzon::mailroom::commands::parse(&words);
        let _ = read.text_is_reply();
        // The commands read from the raw text too (a client that quotes nothing).
        let _ = buzon::mailroom::commands::parse(&text);
    });
}

/// The threading clues of a mail: the subject's ticket tag and reply
/// prefixes, and the Message-IDs of In-Reply-To and References, alone and
/// inside a mail.
#[test]
fn subject_tags_and_references_never_panic() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for mail in mail_seeds().iter().take(300) {
        let head = mail.split(|b| *b == b'\n').filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with(b"subject:")
                || l.starts_with(b"references:")
                || l.starts_with(b"in-reply-to:")
        });
        for line in head {
            let value = line.splitn(2, |b| *b == b':').nth(1).unwrap_or_default();
            seeds.push(value.to_vec());
        }
    }
    for text in [
        "RE: RV: Fwd: [#T-1042] Documento observado",
        "Re[2]: AW:(3) [# t-1042 ] [#T 99999999999999] [#T-]",
        "<a@b> <buzon.0123456789abcdef0123456789abcdef.0123456789abcdef@example.test>",
        "<<>> <a@b <c@d>> (comment) <e@f>",
    ] {
        seeds.push(text.as_bytes().to_vec());
    }
    let tags = buzon::thread::TagMatcher::new("T-").unwrap();
    let odd_prefix = buzon::thread::TagMatcher::new("Sop. #-").unwrap();
    let signer = buzon::thread::IdSigner::new(b"fuzz");
    campaign("threading-clues", &seeds, |data| {
        let text = String::from_utf8_lossy(data);
        let _ = tags.find(&text);
        let _ = tags.strip(&text);
        let _ = odd_prefix.find(&text);
        let _ = buzon::thread::strip_reply_prefixes(&text);
        let _ = buzon::ticket::parse_number("T-", &text);
        let mut raw = b"From: c@x.example\r\nSubject: ".to_vec();
        raw.extend_from_slice(data);
        raw.extend_from_slice(b"\r\nIn-Reply-To: ");
        raw.extend_from_slice(data);
        raw.extend_from_slice(b"\r\nReferences: ");
        raw.extend_from_slice(data);
        raw.extend_from_slice(b"\r\n\r\nHola\r\n");
        if let Ok(mail) = buzon::parse::parse(&raw, 1 << 20) {
            for id in buzon::thread::referenced_ids(&mail) {
                let _ = signer.verify(&id);
                let _ = signer.signed_for(&id);
            }
        }
    });
}

/// Rule files as an admin might mistype them, evaluated when they load:
/// mutated conditions, regular expressions and keys run over real mail.
#[test]
fn mutated_rules_evaluate_without_panicking() {
    let mut paths = Vec::new();
    files_under(&repo().join("examples"), &["toml"], &mut paths);
    let seeds: Vec<Vec<u8>> = paths
        .iter()
        .filter(|p| p.parent().is_some_and(|d| d.ends_with("rules")))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    let mails: Vec<buzon::parse::ParsedMail> = mail_seeds()
        .iter()
        .take(40)
        .filter_map(|raw| buzon::parse::parse(raw, 1 << 22).ok())
        .collect();
    let ctx = buzon::rules::LoadContext::default();
    let i = std::cell::Cell::new(0usize);
    // A fifth of the inputs: loading a rule set is the slow part, and the
    // loader has its own target.
    campaign_of(inputs() / 5, "rule-evaluation", &seeds, |data| {
        let text = String::from_utf8_lossy(data).into_owned();
        let Ok(rules) =
            buzon::rules::RuleSet::from_texts(vec![("rules/10-fuzz.toml".into(), text)], &ctx)
        else {
            return;
        };
        i.set(i.get().wrapping_add(1));
        for mail in mails.iter().skip(i.get() % mails.len().max(1)).take(3) {
            let automatic = buzon::classify::classify(mail, &|_| false);
            for mailbox in ["soporte", "finanzas"] {
                let input = buzon::rules::RuleInput::new(mailbox, mail, automatic.as_ref());
                let _ = rules.evaluate(&input);
            }
        }
    });
}
