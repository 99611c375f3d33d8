//! Unit tests of the rules engine as a whole: loading and its errors, the
//! evaluation semantics, keys, explanations and the test runner.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::classify::{AutoKind, Automatic};
use crate::config::{Config, Mailbox};
use crate::parse::{ParsedMail, parse};

fn ctx() -> LoadContext {
    LoadContext {
        mailboxes: BTreeMap::from([
            (
                "soporte".to_string(),
                "soporte@tupatrimonio.example".to_string(),
            ),
            (
                "finanzas".to_string(),
                "finanzas@generafactoring.example".to_string(),
            ),
        ]),
        templates: BTreeSet::from(["acknowledgement".to_string(), "constancia".to_string()]),
        people: BTreeMap::from([
            (
                "alonso".to_string(),
                Some("alonso@generafactoring.example".to_string()),
            ),
            (
                "milagros".to_string(),
                Some("milagros@generafactoring.example".to_string()),
            ),
            ("rosario".to_string(), None),
        ]),
    }
}

fn set(text: &str) -> RuleSet {
    match RuleSet::from_texts(vec![("rules/10-test.toml".into(), text.into())], &ctx()) {
        Ok(s) => s,
        Err(e) => panic!("rules did not load:\n{e}"),
    }
}

fn errors(text: &str) -> Vec<RuleError> {
    match RuleSet::from_texts(vec![("rules/10-test.toml".into(), text.into())], &ctx()) {
        Ok(_) => panic!("rules loaded but should not have"),
        Err(e) => e.0,
    }
}

fn mail(subject: &str, body: &str) -> ParsedMail {
    let raw = format!(
        "From: Felipe Araya <felipe@correo.example>\r\nTo: soporte@tupatrimonio.example\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    );
    parse(raw.as_bytes(), 1 << 20).unwrap()
}

fn decide(set: &RuleSet, mailbox: &str, m: &ParsedMail) -> crate::route::Decision {
    set.evaluate(&RuleInput::new(mailbox, m, None))
}

#[test]
fn accent_and_case_folding_match_both_spellings() {
    let s = set(r#"
[[rule]]
name = "notaria"
when.subject.contains = "observado por notaria"
type = "Observación Notaría"
"#);
    for subject in [
        "RE: Documento observado por Notaría",
        "documento OBSERVADO por NOTARIA",
    ] {
        let d = decide(&s, "soporte", &mail(subject, "hola"));
        assert_eq!(
            d.ticket_type.as_deref(),
            Some("Observación Notaría"),
            "{subject}"
        );
    }
    let d = decide(&s, "soporte", &mail("observado por notario", "x"));
    assert_eq!(d.ticket_type, None);
}

#[test]
fn accents_can_be_made_to_matter() {
    let s = set(r#"
[[rule]]
name = "exacto"
when.subject = { contains = "Notaría", ignore_accents = false, ignore_case = false }
tags = "exacto"
"#);
    assert_eq!(
        decide(&s, "soporte", &mail("Notaría", "")).tags,
        vec!["exacto"]
    );
    assert!(decide(&s, "soporte", &mail("Notaria", "")).tags.is_empty());
    assert!(decide(&s, "soporte", &mail("notaría", "")).tags.is_empty());
}

#[test]
fn captures_become_keys_with_the_copy_suffix_apart() {
    let s = set(r#"
[[rule]]
name = "pedido"
when.subject_or_body.regex = '(?:pedido|n[°º])\s*(?:n[°º]\s*)?(?P<order>\d{5,6})(?:_(?P<copy>[12]))?\b'
"#);
    let d = decide(
        &s,
        "soporte",
        &mail("RE: Documento observado - Pedido N° 75321", ""),
    );
    assert_eq!(keys(&d), vec![("order", "75321")]);
    let d = decide(
        &s,
        "soporte",
        &mail("consulta fecha futura notaria pedido 75321_2", ""),
    );
    assert_eq!(keys(&d), vec![("copy", "2"), ("order", "75321")]);
    assert_eq!(d.set_by["keys.order"], "rule:10-test.toml/pedido");
}

fn keys(d: &crate::route::Decision) -> Vec<(&str, &str)> {
    let mut k: Vec<(&str, &str)> = d
        .keys
        .iter()
        .map(|k| (k.name.as_str(), k.value.as_str()))
        .collect();
    k.sort();
    k
}

#[test]
fn captured_values_keep_the_original_spelling() {
    let s = set(r#"
[[rule]]
name = "rol"
when.subject.regex = 'rol\s+(?P<rol>[a-z]-\d+-\d{4})'
"#);
    let d = decide(
        &s,
        "soporte",
        &mail("Re: Se fijó audiencia - Rol O-1532-2025", ""),
    );
    assert_eq!(keys(&d), vec![("rol", "O-1532-2025")]);
}

#[test]
fn first_match_wins_unless_override() {
    let s = set(r#"
[[rule]]
name = "inversionistas"
when.body.contains = "inversion"
priority = "high"
pipeline = "Finanzas"

[[rule]]
name = "factura"
when.body.contains = "factura"
priority = "low"
pipeline = "Cobranzas"
tags = "factura"

[[rule]]
name = "urgente"
when.subject.contains = "urgente"
priority = "urgent"
override = ["priority"]
"#);
    let d = decide(
        &s,
        "finanzas",
        &mail("Consulta", "mi inversión y una factura"),
    );
    assert_eq!(d.priority, Some(crate::ticket::Priority::High));
    assert_eq!(d.pipeline.as_deref(), Some("Finanzas"));
    assert_eq!(
        d.tags,
        vec!["factura"],
        "lists collect from every matching rule"
    );
    assert_eq!(d.set_by["priority"], "rule:10-test.toml/inversionistas");
    let d = decide(&s, "finanzas", &mail("URGENTE", "mi inversión"));
    assert_eq!(d.priority, Some(crate::ticket::Priority::Urgent));
    assert_eq!(d.set_by["priority"], "rule:10-test.toml/urgente");
    assert_eq!(d.set_by["pipeline"], "rule:10-test.toml/inversionistas");
}

#[test]
fn stop_ends_evaluation() {
    let s = set(r#"
[[rule]]
name = "automatico"
when.automatic = true
ack = false
tags = "automatico"
stop = true

[[rule]]
name = "todo"
when.mailbox = "soporte"
tags = "revisar"
"#);
    let m = mail("Respuesta automática", "fuera de oficina");
    let auto = Automatic {
        kind: AutoKind::AutoReply,
        reason: "test".into(),
    };
    let d = s.evaluate(&RuleInput::new("soporte", &m, Some(&auto)));
    assert_eq!(d.tags, vec!["automatico"]);
    assert_eq!(d.ack_template.as_deref(), Some(""));
    let d = s.evaluate(&RuleInput::new("soporte", &m, None));
    assert_eq!(d.tags, vec!["revisar"]);
}

#[test]
fn combinators_all_any_not() {
    let s = set(r#"
[[rule]]
name = "x"
when.any = [{ subject.contains = "rescate" }, { body.contains = "retiro" }]
when.not = { from_domain = "generafactoring.example" }
when.is_reply = false
tags = "rescate"
"#);
    assert_eq!(
        decide(&s, "finanzas", &mail("Rescate", "")).tags,
        vec!["rescate"]
    );
    assert_eq!(
        decide(&s, "finanzas", &mail("x", "retiro total")).tags,
        vec!["rescate"]
    );
    assert!(
        decide(&s, "finanzas", &mail("RE: Rescate", ""))
            .tags
            .is_empty()
    );
    assert!(decide(&s, "finanzas", &mail("nada", "")).tags.is_empty());
}

#[test]
fn defaults_and_type_sla_fill_what_rules_left() {
    let s = set(r#"
[types."Consulta"]
sla_business_hours = 24
[types."Reclamo"]
sla_hours = 8

[defaults.soporte]
type = "Consulta"
category = "General"
sla_hours = 72
tags = "canal:correo"

[[rule]]
name = "reclamo"
when.subject.contains = "reclamo"
type = "Reclamo"
"#);
    let d = decide(&s, "soporte", &mail("Reclamo", ""));
    assert_eq!(d.ticket_type.as_deref(), Some("Reclamo"));
    assert_eq!((d.sla_hours, d.sla_business_hours), (Some(8), false));
    assert_eq!(d.set_by["sla"], "type:10-test.toml/Reclamo");
    assert_eq!(d.category.as_deref(), Some("General"));
    assert_eq!(d.tags, vec!["canal:correo"]);
    let d = decide(&s, "soporte", &mail("Hola", ""));
    assert_eq!((d.sla_hours, d.sla_business_hours), (Some(24), true));
    let d = decide(&s, "finanzas", &mail("Hola", ""));
    assert_eq!(d.sla_hours, None);
}

#[test]
fn owner_groups_go_into_the_decision_and_complete_keeps_them() {
    let s = set(r#"
[groups.finanzas]
members = ["alonso", "milagros"]
strategy = "least_open"

[[rule]]
name = "finanzas"
when.mailbox = "finanzas"
owner_group = "finanzas"
notify = ["milagros"]
"#);
    let d = decide(&s, "finanzas", &mail("x", ""));
    assert_eq!(d.owner_group.as_deref(), Some("finanzas"));
    assert_eq!(d.notify, vec!["milagros@generafactoring.example"]);
    let mailbox = Mailbox {
        address: "finanzas@generafactoring.example".into(),
        display_name: None,
        pipeline: "Finanzas".into(),
        owner: Some("rosario".into()),
        priority: crate::ticket::Priority::Medium,
        acknowledge: true,
    };
    let route = d.complete("finanzas", &mailbox);
    assert_eq!(
        route.owner, None,
        "the mailbox owner must not pre-empt the group"
    );
    assert_eq!(route.owner_group.as_deref(), Some("finanzas"));
    let group = s.group("finanzas").unwrap();
    assert_eq!(group.pick(&[("alonso".into(), 3)], None), "milagros");
}

#[test]
fn priority_and_state_labels_are_accepted() {
    let s = set(r#"
[labels.priority]
low = "Baja"
high = "Alta"
[labels.state]
open = "En ejecución"

[[rule]]
name = "x"
priority = "alta"
state = "en ejecucion"
"#);
    let d = decide(&s, "soporte", &mail("x", ""));
    assert_eq!(d.priority, Some(crate::ticket::Priority::High));
    assert_eq!(d.state, Some(crate::ticket::State::Open));
    assert_eq!(s.priority_label(crate::ticket::Priority::Low), "Baja");
    assert_eq!(s.state_label(crate::ticket::State::Open), "En ejecución");
}

#[test]
fn unknown_fields_are_located_with_the_closest_name() {
    let errs = errors("[[rule]]\nname = \"a\"\npipline = \"Finanzas\"\n");
    assert_eq!(errs.len(), 1);
    let text = errs[0].to_string();
    assert!(
        text.starts_with("rules/10-test.toml:3:1: error: unknown field `pipline` in a rule"),
        "{text}"
    );
    assert!(text.contains("hint: did you mean `pipeline`?"), "{text}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let errs = errors(
        r#"
[[rule]]
name = "a"
when.subject.regex = 'pedido (\d+'
when.mailbox = "sporte"
ack = "acuse-recibo"
priority = "altisima"
owner_group = "nadie"

[[rule]]
name = "b"
when.body.contans = "x"
pipeline = "X"
"#,
    );
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    assert!(
        all.contains("10-test.toml:4:30: error: invalid regex: unclosed group"),
        "{all}"
    );
    assert!(
        all.contains("unknown mailbox `sporte`") && all.contains("did you mean `soporte`?"),
        "{all}"
    );
    assert!(all.contains("unknown template `acuse-recibo`"), "{all}");
    assert!(all.contains("unknown priority `altisima`"), "{all}");
    assert!(all.contains("unknown group `nadie`"), "{all}");
    assert!(
        all.contains("10-test.toml:12:11: error: unknown field `contans`"),
        "{all}"
    );
    assert!(all.contains("did you mean `contains`?"), "{all}");
}

#[test]
fn a_rule_shadowed_by_a_stopping_rule_is_an_error() {
    let errs = errors(
        r#"
[[rule]]
name = "finanzas"
when.mailbox = ["finanzas", "soporte"]
pipeline = "Finanzas"
stop = true

[[rule]]
name = "sunat"
when.mailbox = "finanzas"
when.subject.contains = "sunat"
priority = "medium"
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].line, 8);
    assert!(errs[0].message.contains("can never match"), "{}", errs[0]);
    assert!(errs[0].message.contains("`finanzas`"), "{}", errs[0]);
}

#[test]
fn a_rule_whose_fields_are_always_taken_is_an_error() {
    let errs = errors(
        r#"
[[rule]]
name = "general"
when.subject.contains = "factura"
priority = "low"

[[rule]]
name = "especifica"
when.subject.contains = "factura proveedor"
priority = "medium"
"#,
    );
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].message.contains("never changes anything"),
        "{}",
        errs[0]
    );
    // With override it is fine.
    set(r#"
[[rule]]
name = "general"
when.subject.contains = "factura"
priority = "low"

[[rule]]
name = "especifica"
when.subject.contains = "factura proveedor"
priority = "medium"
override = true
"#);
}

#[test]
fn explanation_tells_what_evaluate_did() {
    let s = set(r#"
[[rule]]
name = "notaria"
when.subject.contains = "notaria"
when.subject_or_body.regex = 'pedido\s+n?[°º]?\s*(?P<order>\d+)'
type = "Observación Notaría"
stop = true

[[rule]]
name = "nunca"
when.body.contains = "zzz"
type = "Otro"
"#);
    let m = mail("RE: Documento observado por Notaría - Pedido N° 75388", "");
    let input = RuleInput::new("soporte", &m, None);
    let e = s.explain(&input);
    let d = s.evaluate(&input);
    assert_eq!(
        serde_json::to_value(&e.decision).unwrap(),
        serde_json::to_value(&d).unwrap()
    );
    assert_eq!(e.rules[0].outcome, RuleOutcome::Matched);
    assert_eq!(e.rules[1].outcome, RuleOutcome::NotEvaluated);
    let text = e.to_text();
    assert!(text.contains("found \"Notaría\""), "{text}");
    assert!(text.contains("key order = 75388"), "{text}");
    assert!(
        text.contains("not evaluated: `notaria` stopped evaluation"),
        "{text}"
    );
    assert!(text.contains("rule:10-test.toml/notaria"), "{text}");
    let json = serde_json::to_string(&e).unwrap();
    assert!(json.contains("\"outcome\":\"matched\""), "{json}");
}

#[test]
fn header_and_attachment_conditions() {
    let s = set(r#"
[[rule]]
name = "novedad"
when.header.In-Reply-To.regex = '^<novedad-(?P<novedad>\d+)\.'
tags = "novedad"

[[rule]]
name = "pdf"
when.attachment_type = "application/pdf"
when.attachment_name.ends_with = ".pdf"
tags = "pdf"
"#);
    let raw = "From: a@b.example\r\nSubject: x\r\nIn-Reply-To: <novedad-88213.20251016.1530@tuprocurador.example>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhola\r\n--b\r\nContent-Type: application/pdf; name=\"carta.PDF\"\r\nContent-Disposition: attachment; filename=\"carta.PDF\"\r\n\r\nx\r\n--b--\r\n";
    let m = parse(raw.as_bytes(), 1 << 20).unwrap();
    let d = decide(&s, "soporte", &m);
    assert_eq!(d.tags, vec!["novedad", "pdf"]);
    assert_eq!(keys(&d), vec![("novedad", "88213")]);
}

#[test]
fn evaluation_never_panics_on_odd_mail() {
    let s = set(r#"
[[rule]]
name = "x"
when.subject_or_body.regex = '(?P<order>\d+)'
when.from_name.contains = "ñ"
tags = "x"
"#);
    for raw in [
        &b"Subject: \xff\xfe\r\n\r\n\x00\x01"[..],
        b"From: <>\r\nSubject: =?utf-8?b?////?=\r\n\r\n",
        b"Subject: 123\r\n\r\nN\xcc\x83 42",
    ] {
        if let Ok(m) = parse(raw, 1 << 20) {
            let _ = decide(&s, "soporte", &m);
            let _ = s.explain(&RuleInput::new("soporte", &m, None)).to_text();
        }
    }
}

#[test]
fn is_reply_sees_headers_and_prefixes() {
    assert!(is_reply(&mail("RV: Constancia de pago", "")));
    assert!(is_reply(&mail("Fwd: x", "")));
    assert!(!is_reply(&mail("Reclamo", "")));
    let m = parse(b"Subject: x\r\nReferences: <a@b>\r\n\r\n", 1 << 20).unwrap();
    assert!(is_reply(&m));
}

#[test]
fn embedded_tests_run_through_the_parser() {
    let rules = r#"
[[rule]]
name = "sunafil"
when.from_domain.ends_with = "sunafil.example"
priority = "medium"
ack = false

[[test]]
name = "notificacion sunafil"
mailbox = "finanzas"
from = "SUNAFIL - Casilla Electrónica <casilla@sunafil.example>"
subject = "SUNAFIL: Se ha depositado un documento"
expect = { priority = "medium", ack = false, pipeline = "Finanzas" }

[[test]]
name = "falla a proposito"
mailbox = "finanzas"
subject = "hola"
expect = { priority = "urgent", keys = { order = "1" } }
"#;
    let s = set(rules);
    let mut config = Config::with_defaults("sqlite::memory:".into());
    config.mailboxes.insert(
        "finanzas".into(),
        Mailbox {
            address: "finanzas@generafactoring.example".into(),
            display_name: None,
            pipeline: "Finanzas".into(),
            owner: None,
            priority: crate::ticket::Priority::Medium,
            acknowledge: true,
        },
    );
    let report = s.run_tests(&config);
    assert_eq!(
        (report.passed(), report.failed()),
        (1, 1),
        "{}",
        report.to_text()
    );
    let text = report.to_text();
    assert!(
        text.contains("priority: expected \"urgent\", got medium"),
        "{text}"
    );
    assert!(
        text.contains("keys: expected { order = \"1\" }, got {  }"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("1 passed, 1 failed"), "{text}");
}

#[test]
fn mailbox_scoped_evaluation_agrees_with_the_full_explanation() {
    // `evaluate` scans only the sets of the message's mailbox and skips
    // rules scoped elsewhere; `explain` checks everything. Same decisions.
    let s = set(r#"
[[rule]]
name = "finanzas-factura"
when.mailbox = "finanzas"
when.subject.contains = "factura"
priority = "low"
tags = "factura"

[[rule]]
name = "soporte-pedido"
when.mailbox = ["soporte"]
when.subject_or_body.regex = 'pedido\s+(?P<order>\d+)'
type = "Pedido"

[[rule]]
name = "global-urgente"
when.subject.contains = "urgente"
priority = "urgent"
override = ["priority"]

[[rule]]
name = "no-soporte"
when.not = { mailbox = "soporte" }
when.body.contains = "factura"
tags = "fuera-de-soporte"
"#);
    let mails = [
        mail("Factura urgente pedido 123", "factura adjunta"),
        mail("consulta", "pedido 75321 y una factura"),
        mail("URGENTE", ""),
    ];
    for mailbox in ["soporte", "finanzas", "desconocido"] {
        for m in &mails {
            let input = RuleInput::new(mailbox, m, None);
            let fast = serde_json::to_value(s.evaluate(&input)).unwrap();
            let full = serde_json::to_value(s.explain(&input).decision).unwrap();
            assert_eq!(fast, full, "{mailbox}: {}", m.subject);
        }
    }
    let d = decide(&s, "finanzas", &mails[0]);
    assert_eq!(d.priority, Some(crate::ticket::Priority::Urgent));
    assert_eq!(d.tags, vec!["factura", "fuera-de-soporte"]);
    assert!(
        d.keys.is_empty(),
        "the soporte-only rule must not run in finanzas"
    );
    let d = decide(&s, "soporte", &mails[1]);
    assert_eq!(keys(&d), vec![("order", "75321")]);
    assert!(d.tags.is_empty());
}

#[test]
fn first_response_and_resolution_are_claimed_separately() {
    let s = set(r#"
[types."Consulta"]
first_response_business_hours = 4
sla_business_hours = 18
[types."Reclamo"]
sla_business_hours = 9

[defaults.soporte]
type = "Consulta"
first_response_hours = 24
sla_hours = 72

[[rule]]
name = "reclamo"
when.subject.contains = "reclamo"
type = "Reclamo"

[[rule]]
name = "urgente"
when.subject.contains = "urgente"
first_response_business_hours = 1
"#);
    // The type gives the resolution target, the defaults the first response.
    let d = decide(&s, "soporte", &mail("Reclamo", ""));
    assert_eq!((d.sla_hours, d.sla_business_hours), (Some(9), true));
    assert_eq!(
        (d.first_response_hours, d.first_response_business_hours),
        (Some(24), false)
    );
    assert_eq!(d.set_by["sla"], "type:10-test.toml/Reclamo");
    assert_eq!(d.set_by["first_response"], "defaults:10-test.toml/soporte");
    // A rule's own value wins over the type's; the type still sets the other.
    let d = decide(&s, "soporte", &mail("Consulta urgente", ""));
    assert_eq!(
        (d.first_response_hours, d.first_response_business_hours),
        (Some(1), true)
    );
    assert_eq!(d.set_by["first_response"], "rule:10-test.toml/urgente");
    assert_eq!((d.sla_hours, d.sla_business_hours), (Some(18), true));
    // The route carries both.
    let mailbox = Mailbox {
        address: "soporte@tupatrimonio.example".into(),
        display_name: None,
        pipeline: "Soporte".into(),
        owner: None,
        priority: crate::ticket::Priority::Medium,
        acknowledge: false,
    };
    let route = decide(&s, "soporte", &mail("Hola", "")).complete("soporte", &mailbox);
    assert_eq!(
        (
            route.first_response_hours,
            route.first_response_business_hours
        ),
        (Some(4), true)
    );
    assert_eq!(
        (route.sla_hours, route.sla_business_hours),
        (Some(18), true)
    );
    // No rule, type or defaults: no targets.
    let d = decide(&s, "finanzas", &mail("Hola", ""));
    assert_eq!((d.first_response_hours, d.sla_hours), (None, None));
}

#[test]
fn a_later_rule_overrides_a_first_response_only_when_it_says_so() {
    let s = set(r#"
[[rule]]
name = "general"
when.mailbox = "soporte"
first_response_business_hours = 9

[[rule]]
name = "urgente"
when.subject.contains = "urgente"
first_response_business_hours = 2
override = ["first_response"]
"#);
    let m = mail("Urgente", "");
    let d = decide(&s, "soporte", &m);
    assert_eq!(d.first_response_hours, Some(2));
    let text = s.explain(&RuleInput::new("soporte", &m, None)).to_text();
    assert!(text.contains("first_response"), "{text}");
    assert!(text.contains("2 business hours"), "{text}");
}

#[test]
fn deadline_keys_are_checked_wherever_they_are_written() {
    let errs = errors(
        r#"
[types."Consulta"]
first_response_hours = 4
first_response_business_hours = 4

[defaults.soporte]
first_response_hours = 0

[[rule]]
name = "a"
when.subject.contains = "x"
first_response_business_hours = 9000
first_reponse_hours = 2
"#,
    );
    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let all = all.join("\n");
    assert!(
        all.contains("10-test.toml:4:33: error: write either `first_response_hours` or `first_response_business_hours`, not both"),
        "{all}"
    );
    assert!(
        all.contains("10-test.toml:7:24: error: 0 hours is not a usable first-response target"),
        "{all}"
    );
    assert!(
        all.contains("9000 hours is not a usable first-response target"),
        "{all}"
    );
    assert!(
        all.contains("unknown field `first_reponse_hours`")
            && all.contains("did you mean `first_response_hours`?"),
        "{all}"
    );
}

#[test]
fn holidays_are_iso_dates_and_bad_ones_are_located() {
    let errs = errors(
        r#"
[business_hours]
holidays = ["2026-12-08", "2026-13-01", "25/12/2026", 2026-12-25, 10]
"#,
    );
    let all: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert_eq!(all.len(), 3, "{all:#?}");
    assert!(
        all[0].starts_with("rules/10-test.toml:3:27: error: `2026-13-01` is not a date"),
        "{all:#?}"
    );
    assert!(
        all[0].contains("hint: write holidays as YYYY-MM-DD dates"),
        "{all:#?}"
    );
    assert!(
        all[1].starts_with("rules/10-test.toml:3:41: error: `25/12/2026`"),
        "{all:#?}"
    );
    assert!(
        all[2].contains("`holidays` must be a list of dates"),
        "{all:#?}"
    );
    // Listing a day twice loads, with a warning.
    let s = set("[business_hours]\nholidays = [\"2026-12-08\", 2026-12-08]\n");
    assert_eq!(s.warnings().len(), 1);
    assert!(s.warnings()[0].message.contains("listed twice"));
    assert_eq!(s.business_hours().holidays.len(), 1);
}

#[test]
fn due_dates_use_the_rule_files_calendar() {
    let s = set(r#"
[business_hours]
days = ["mon", "tue", "wed", "thu", "fri"]
start = "09:00"
end = "18:00"
holidays = ["2026-12-08", "2026-12-25"]
"#);
    let tz = jiff::tz::TimeZone::get("America/Santiago").unwrap();
    let at = |t: &str| t.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    let hour = 3_600_000;
    // Monday 7 December 17:00 (UTC-3), 2 business hours: 1 on Monday, the
    // holiday, 1 on Wednesday 9 from 09:00.
    let opened = at("2026-12-07T20:00:00Z");
    let due = s.due_at_ms(opened, 2, true, &tz);
    assert_eq!(due, at("2026-12-09T13:00:00Z"));
    assert_eq!(s.due_at_ms(opened, 2, false, &tz), opened + 2 * hour);
    assert_eq!(s.work_ms_between(opened, due, true, &tz), 2 * hour);
    assert_eq!(s.work_ms_between(due, opened, true, &tz), 0);
    assert_eq!(s.add_work_ms(opened, 2 * hour, true, &tz), due);
    assert_eq!(s.add_work_ms(opened, hour, false, &tz), opened + hour);
}

#[test]
fn embedded_tests_check_first_response_targets() {
    let rules = r#"
[types."Consulta"]
first_response_business_hours = 4
sla_business_hours = 18

[[rule]]
name = "consulta"
when.subject.contains = "consulta"
type = "Consulta"

[[test]]
name = "consulta"
mailbox = "finanzas"
subject = "Consulta"
expect = { first_response_business_hours = 4, sla_business_hours = 18 }

[[test]]
name = "falla a proposito"
mailbox = "finanzas"
subject = "Consulta"
expect = { first_response_hours = 4 }

[[test]]
name = "sin plazo"
mailbox = "finanzas"
subject = "Hola"
expect = { first_response_business_hours = 4 }
"#;
    let s = set(rules);
    let mut config = Config::with_defaults("sqlite::memory:".into());
    config.mailboxes.insert(
        "finanzas".into(),
        Mailbox {
            address: "finanzas@generafactoring.example".into(),
            display_name: None,
            pipeline: "Finanzas".into(),
            owner: None,
            priority: crate::ticket::Priority::Medium,
            acknowledge: true,
        },
    );
    let report = s.run_tests(&config);
    let text = report.to_text();
    assert_eq!((report.passed(), report.failed()), (1, 2), "{text}");
    assert!(
        text.contains("first_response_hours: expected 4, got 4 business hours (set by type:10-test.toml/Consulta)"),
        "{text}"
    );
    assert!(
        text.contains("first_response_business_hours: expected 4, got no target"),
        "{text}"
    );
}

#[test]
fn the_channel_is_a_condition_for_tickets_opened_by_hand() {
    let s =
        set("[[rule]]\nname = \"llamadas\"\nwhen.channel = \"phone\"\npipeline = \"Telefonía\"\n");
    let m = mail("Consulta", "Llamó por su pedido");
    assert_eq!(
        decide(&s, "soporte", &m).pipeline,
        None,
        "mail is not a call"
    );
    let by_phone =
        s.evaluate(&RuleInput::new("soporte", &m, None).via(crate::ticket::Channel::Phone));
    assert_eq!(by_phone.pipeline.as_deref(), Some("Telefonía"));
    // The Spanish word is refused with the name to write.
    let errs = errors("[[rule]]\nname = \"x\"\nwhen.channel = \"teléfono\"\npipeline = \"a\"\n");
    let text = errs[0].to_string();
    assert!(
        text.contains("unknown channel 'teléfono'") && text.contains("write \"phone\""),
        "{text}"
    );
}
