//! Rules evaluation throughput: 1,000 realistic messages against 500
//! realistic rules, on one core. Prints
//! `rules: 1000 messages x 500 rules: N messages/s`.
//!
//! The first line is the realistic case: like a real deployment, each rule
//! belongs to one team's mailbox (10 mailboxes here), so a message is
//! scanned only for its own mailbox's patterns. The second line is a stress
//! case where all 500 rules apply to every message.
//!
//! `cargo bench --bench rules` runs the full measurement. Under
//! `cargo test --all-targets` (no `--bench` argument) it runs a small smoke
//! version, so the benchmark cannot rot unnoticed and CI stays fast.
//!
//! Rules and messages are generated in code from Spanish support vocabulary
//! (the seed teams' words): mailbox-scoped keyword rules, sender domains,
//! `any`/`not` combinations, headers, and regexes with captures for order
//! numbers; messages have accents or not, RE:/RV: prefixes, quoted history
//! and bodies of a few hundred to a few thousand characters.

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use buzon::parse::{ParsedMail, parse};
use buzon::rules::{LoadContext, RuleInput, RuleSet};

const MAILBOXES: &[&str] = &[
    "soporte",
    "finanzas",
    "servicioalcliente",
    "sac",
    "clientes",
    "cgu",
    "sigas",
    "sigfin",
    "sigper",
    "ventas",
];

const TOPICS: &[&str] = &[
    "factura",
    "rescate",
    "adición",
    "estado de cuenta",
    "constancia de pago",
    "notaría",
    "observación",
    "rechazo",
    "fecha futura",
    "firmante",
    "llave",
    "certificado",
    "escritura",
    "reglamento",
    "mudanza",
    "gastos comunes",
    "audiencia",
    "liquidación",
    "finiquito",
    "contraseña",
    "usuario",
    "perfil",
    "balance",
    "remuneraciones",
    "decreto",
    "cotización",
    "devolución",
    "reembolso",
    "anulación",
    "garantía",
    "filtración",
    "cobranza",
    "tasa",
    "intereses",
    "vencimiento",
    "transferencia",
    "boleta",
    "comprobante",
    "poder simple",
    "declaración jurada",
    "contrato de arriendo",
    "protocolización",
    "copia autorizada",
    "inscripción",
    "dominio vigente",
    "recepción final",
    "estacionamiento",
    "bodega",
    "administración",
    "carga masiva",
];

const QUALIFIERS: &[&str] = &[
    "urgente",
    "pendiente",
    "vencida",
    "duplicada",
    "observada",
    "rechazada",
    "nueva",
    "anterior",
    "parcial",
    "total",
    "electrónica",
    "original",
    "corregida",
    "firmada",
];

const DOMAINS: &[&str] = &[
    "gmail.example",
    "hotmail.example",
    "outlook.example",
    "yahoo.example",
    "vtr.example",
    "entel.example",
    "sunat.example",
    "sunafil.example",
    "municipalidad-lareina.example",
    "andescapital.example",
    "papeleradelpacifico.example",
    "agricola-elvalle.example",
];

const FILLER: &[&str] = &[
    "Junto con saludar, les escribo por el tema que conversamos la semana pasada.",
    "Quedo atento a sus comentarios y agradezco de antemano la ayuda.",
    "Necesito resolver esto antes del cierre de mes porque el banco me lo pide.",
    "Adjunto los antecedentes que tengo, si falta algo me avisan por favor.",
    "La última vez me respondieron muy rápido, así que espero lo mismo ahora.",
    "No sé si corresponde a ustedes o a otra área, disculpen si me equivoqué.",
    "Mi número de teléfono es el +56 9 5555 0101 por si prefieren llamar.",
    "Ya intenté hacerlo desde el portal pero me aparece un mensaje que no entiendo.",
    "Favor confirmar la recepción de este correo.",
    "Saludos cordiales y gracias por su tiempo.",
];

/// A small deterministic generator (xorshift64*), so every run measures
/// the same rules and messages.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Removes accents the way a hurried customer types.
fn plain(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'á' => 'a',
            'é' => 'e',
            'í' => 'i',
            'ó' => 'o',
            'ú' => 'u',
            'ñ' => 'n',
            _ => c,
        })
        .collect()
}

/// Rule `i`; `scoped` rules belong to one team's mailbox, as in a real
/// deployment where each team routes its own mail.
fn rule(rng: &mut Rng, i: usize, scoped: bool) -> String {
    let mailbox = MAILBOXES[i % MAILBOXES.len()];
    let topic = TOPICS[(i / MAILBOXES.len()) % TOPICS.len()];
    let qualifier = QUALIFIERS[i % QUALIFIERS.len()];
    let priority = ["low", "medium", "high", "urgent"][rng.below(4)];
    let mut r = format!("[[rule]]\nname = \"regla-{i}\"\n");
    if scoped {
        r += &format!("when.mailbox = \"{mailbox}\"\n");
    }
    match i % 10 {
        0..=2 => r += &format!("when.subject.contains = [\"{topic} {qualifier}\", \"{topic}\"]\n"),
        3 | 4 => r += &format!("when.new_text.contains = [\"{topic}\", \"{qualifier} {topic}\"]\n"),
        5 => {
            let domain = DOMAINS[i % DOMAINS.len()];
            r += &format!(
                "when.any = [{{ from_domain = \"{domain}\" }}, {{ subject_or_body.contains = \"{topic} {qualifier}\" }}]\n"
            );
        }
        6 => {
            r += &format!(
                "when.subject.contains = \"{topic}\"\nwhen.not.new_text.contains = [\"{qualifier}\", \"no corresponde\"]\n"
            )
        }
        // A few rules extract the order number (and its copy suffix) as
        // keys; the rest use a regex as a condition ("factura N° 1234").
        7 if i % 100 == 7 => {
            r += &format!(
                "when.subject_or_body.regex = '(?:pedido|orden|operaci[oó]n)\\s*(?:n[°º.]?\\s*)?(?P<order>\\d{{4,7}})(?:_(?P<copy>[12]))?\\b'\nwhen.subject_or_body.contains = \"{topic}\"\n"
            )
        }
        7 => {
            let word = topic.split(' ').next().unwrap_or(topic);
            r +=
                &format!("when.subject_or_body.regex = '{word}\\s+(?:n[°º.]?\\s*)?\\d{{3,7}}\\b'\n")
        }
        8 => {
            r += &format!(
                "when.header.X-Mailer.contains = \"outlook\"\nwhen.body.contains = \"{topic}\"\nwhen.is_reply = {}\n",
                i.is_multiple_of(3)
            )
        }
        _ => {
            r += &format!(
                "when.attachment_name.ends_with = [\".pdf\", \".xlsx\"]\nwhen.subject_or_body.contains = \"{topic}\"\n"
            )
        }
    }
    r += &format!(
        "type = \"Tipo {}\"\ncategory = \"{topic}\"\npriority = \"{priority}\"\ntags = [\"t{}\"]\n",
        i % 37,
        i % 53
    );
    if i.is_multiple_of(4) {
        r += &format!("owner = \"persona{}\"\n", i % 7);
    }
    if i % 25 == 24 {
        r += "override = [\"priority\"]\n";
    }
    r + "\n"
}

fn rules(count: usize, scoped: bool) -> String {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    (0..count).map(|i| rule(&mut rng, i, scoped)).collect()
}

fn message(rng: &mut Rng, i: usize) -> (String, Vec<u8>) {
    let mailbox = rng.pick(MAILBOXES).to_string();
    let topic = rng.pick(TOPICS);
    let qualifier = rng.pick(QUALIFIERS);
    let order = 70_000 + rng.below(9_999);
    let prefix = ["", "", "RE: ", "RV: ", "Re: ", "Fwd: "][rng.below(6)];
    let mut subject = format!("{prefix}{topic} {qualifier} - pedido N° {order}");
    let mut body = String::new();
    for _ in 0..(3 + rng.below(20)) {
        body.push_str(rng.pick(FILLER));
        body.push(' ');
        if rng.chance(30) {
            body.push_str(&format!(
                "Sobre la {} {}: ",
                rng.pick(TOPICS),
                rng.pick(QUALIFIERS)
            ));
        }
        if rng.chance(15) {
            body.push('\n');
        }
    }
    if rng.chance(40) {
        body.push_str("\n\nEl lun, 13 oct 2025 a las 9:02, Soporte escribió:\n");
        for _ in 0..(2 + rng.below(10)) {
            body.push_str(&format!("> {}\n", rng.pick(FILLER)));
        }
    }
    if rng.chance(50) {
        subject = plain(&subject);
        body = plain(&body);
    }
    let domain = rng.pick(DOMAINS);
    let mut raw = format!(
        "From: Cliente {i} <cliente{i}@{domain}>\r\nTo: {mailbox}@empresa.example\r\nSubject: {subject}\r\nMessage-ID: <bench-{i}@{domain}>\r\nDate: Mon, 13 Oct 2025 10:00:00 -0300\r\n"
    );
    if !prefix.is_empty() {
        raw.push_str(&format!("In-Reply-To: <notif-{order}@empresa.example>\r\n"));
    }
    if rng.chance(30) {
        raw.push_str("X-Mailer: Microsoft Outlook 16.0\r\n");
    }
    raw.push_str("MIME-Version: 1.0\r\n");
    if rng.chance(25) {
        raw.push_str("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        raw.push_str(&body);
        raw.push_str("\r\n--b\r\nContent-Type: application/pdf; name=\"documento.pdf\"\r\nContent-Disposition: attachment; filename=\"documento.pdf\"\r\n\r\nx\r\n--b--\r\n");
    } else {
        raw.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        raw.push_str(&body);
    }
    (mailbox, raw.into_bytes())
}

fn messages(count: usize) -> Vec<(String, ParsedMail)> {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    (0..count)
        .map(|i| {
            let (mailbox, raw) = message(&mut rng, i);
            let mail = parse(&raw, 1 << 20).expect("generated mail parses");
            (mailbox, mail)
        })
        .collect()
}

fn context() -> LoadContext {
    LoadContext {
        mailboxes: MAILBOXES
            .iter()
            .map(|m| (m.to_string(), format!("{m}@empresa.example")))
            .collect::<BTreeMap<_, _>>(),
        templates: BTreeSet::new(),
        people: BTreeMap::new(),
    }
}

/// One pass over every message; returns how many matched at least one rule.
fn pass(set: &RuleSet, mails: &[(String, ParsedMail)]) -> usize {
    mails
        .iter()
        .filter(|(mailbox, mail)| {
            let decision = set.evaluate(&RuleInput::new(mailbox, mail, None));
            black_box(&decision).set_by.keys().any(|k| k != "tags")
        })
        .count()
}

fn run(rule_count: usize, message_count: usize, scoped: bool, min_time: Duration) {
    let text = rules(rule_count, scoped);
    let started = Instant::now();
    let set = match RuleSet::from_texts(vec![("bench/rules.toml".into(), text)], &context()) {
        Ok(set) => set,
        Err(e) => panic!("generated rules do not load:\n{e}"),
    };
    let compile = started.elapsed();
    let mails = messages(message_count);
    let matched = pass(&set, &mails);
    let mut rounds = Vec::new();
    let started = Instant::now();
    while rounds.len() < 3 || started.elapsed() < min_time {
        let t = Instant::now();
        black_box(pass(&set, &mails));
        rounds.push(t.elapsed());
    }
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    let per_second = message_count as f64 / median.as_secs_f64();
    let what = if scoped {
        "rules"
    } else {
        "rules, stress (no rule scoped to a mailbox)"
    };
    println!(
        "{what}: {message_count} messages x {rule_count} rules: {per_second:.0} messages/s \
         (median of {} rounds, {:.1} µs/message; compile {:.0} ms; {matched} of {message_count} messages matched a rule)",
        rounds.len(),
        median.as_secs_f64() * 1e6 / message_count as f64,
        compile.as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` does not.
    if std::env::args().any(|a| a == "--bench") {
        run(500, 1000, true, Duration::from_secs(3));
        run(500, 1000, false, Duration::from_secs(3));
    } else {
        run(50, 50, true, Duration::ZERO);
        run(50, 50, false, Duration::ZERO);
    }
}
