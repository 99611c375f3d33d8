//! How tickets, quarantine and outbox rows are shown on a terminal or
//! exported (table, CSV, JSON, text). Pure formatting, no I/O.
//!
//! What people read (tables, `tickets show`, the report, alerts) is in
//! Spanish, with the team's words for states and priorities where the rule
//! files give them; JSON and CSV keep their English keys and canonical
//! values, which scripts rely on.

use std::fmt::Write as _;

use serde_json::json;

use crate::rules::RuleSet;
use crate::store::QuarantineRow;
use crate::ticket::{
    AlertRow, HookDelivery, OutboxRow, OutboxStatus, Priority, ReportRow, State, TicketDetail,
    TicketRow, display_number,
};

/// How states and priorities read in the views meant for people: in the
/// team's words (`[labels]` of its rule files: "En ejecución", "Alta") when
/// its rules are loaded, else by their canonical names. JSON and CSV always
/// keep the canonical names scripts rely on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Labels<'r>(Option<&'r RuleSet>);

impl<'r> Labels<'r> {
    /// The labels of `rules` (the rule set already loaded, if any).
    pub fn of(rules: Option<&'r RuleSet>) -> Labels<'r> {
        Labels(rules)
    }

    /// The team's word for a state, or the Spanish one when the rule
    /// files give none.
    pub fn state(self, s: State) -> &'r str {
        match self.0.map(|r| r.state_label(s)) {
            Some(label) if label != s.as_str() => label,
            _ => state_word(s),
        }
    }

    /// The team's word for a priority, or the Spanish one.
    pub fn priority(self, p: Priority) -> &'r str {
        match self.0.map(|r| r.priority_label(p)) {
            Some(label) if label != p.as_str() => label,
            _ => crate::outbound::templates::priority_label(p),
        }
    }
}

/// Formats Unix milliseconds as local time in `tz` (`2026-11-22 13:05`).
pub fn local_time(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|_| ms.to_string())
}

fn keys_text(t: &TicketRow) -> String {
    t.keys
        .iter()
        .map(|k| format!("{}={}", k.name, k.value))
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// A fixed-width table for people.
pub fn tickets_table(
    tickets: &[TicketRow],
    prefix: &str,
    tz: &jiff::tz::TimeZone,
    labels: Labels,
) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        [
            "TICKET",
            "ESTADO",
            "PIPELINE",
            "RESPONSABLE",
            "PRIORIDAD",
            "CORREOS",
            "CONTACTO",
            "CREADO",
            "FECHA LÍMITE",
            "CLAVES",
            "ASUNTO",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for t in tickets {
        rows.push(vec![
            display_number(prefix, t.number),
            labels.state(t.state).to_string(),
            truncate(&t.pipeline, 24),
            t.owner.clone().unwrap_or_else(|| "-".into()),
            labels.priority(t.priority).to_string(),
            t.message_count.to_string(),
            truncate(t.requester.as_deref().unwrap_or("-"), 32),
            local_time(t.created_at, tz),
            effective_due(t)
                .map(|d| local_time(d, tz))
                .unwrap_or_else(|| "-".into()),
            truncate(&keys_text(t), 24),
            truncate(&t.subject, 60),
        ]);
    }
    align(&rows)
}

/// The deadline a ticket is judged by: an unanswered first response if it
/// comes first, else the resolution (as `tickets list --overdue` sorts).
pub fn effective_due(t: &TicketRow) -> Option<i64> {
    match (t.first_response_at, t.first_response_due_at, t.due_at) {
        (None, Some(first), Some(due)) => Some(first.min(due)),
        (None, Some(first), None) => Some(first),
        (_, _, due) => due,
    }
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i].saturating_sub(cell.chars().count());
                format!("{cell}{}", " ".repeat(pad))
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `tickets search` for people: one line per ticket, then where it
/// matched and the words around, the matched ones between asterisks.
pub fn search_text(
    hits: &[crate::search::SearchHit],
    prefix: &str,
    tz: &jiff::tz::TimeZone,
    labels: Labels,
) -> String {
    if hits.is_empty() {
        return "Ningún ticket coincide con la búsqueda.\n".into();
    }
    let mut out = String::new();
    for h in hits {
        let t = &h.ticket;
        out.push_str(&format!(
            "{}  {}  {}  {}  {}\n",
            display_number(prefix, t.number),
            labels.state(t.state),
            t.owner.as_deref().unwrap_or("-"),
            local_time(t.updated_at, tz),
            truncate(&t.subject, 60),
        ));
        let mut excerpt = String::new();
        if h.excerpt.cut_before {
            excerpt.push('…');
        }
        for s in &h.excerpt.segments {
            if s.hit {
                excerpt.push_str(&format!("*{}*", s.text));
            } else {
                excerpt.push_str(&s.text);
            }
        }
        if h.excerpt.cut_after {
            excerpt.push('…');
        }
        out.push_str(&format!("    en {}: {excerpt}\n", h.place.label()));
    }
    out
}

/// The JSON of `tickets search`: the tickets as `tickets list` gives them,
/// each with `match`: where (`place`: number, keys, contact, subject,
/// incoming, reply, comment), the excerpt as text and the words that
/// matched in it.
pub fn search_json(hits: &[crate::search::SearchHit], prefix: &str) -> serde_json::Value {
    let rows: Vec<TicketRow> = hits.iter().map(|h| h.ticket.clone()).collect();
    let mut value = tickets_json(&rows, prefix);
    if let Some(list) = value["tickets"].as_array_mut() {
        for (ticket, hit) in list.iter_mut().zip(hits) {
            ticket["match"] = json!({
                "place": hit.place.as_str(),
                "excerpt": hit.excerpt.text(),
                "highlights": hit.excerpt.hits(),
            });
        }
    }
    value
}

/// The JSON contract of `tickets list --format json`.
pub fn tickets_json(tickets: &[TicketRow], prefix: &str) -> serde_json::Value {
    let list: Vec<serde_json::Value> = tickets
        .iter()
        .map(|t| {
            let keys: serde_json::Map<String, serde_json::Value> = t
                .keys
                .iter()
                .map(|k| (k.name.clone(), json!(k.value)))
                .collect();
            json!({
                "number": display_number(prefix, t.number),
                "id": t.number,
                "subject": t.subject,
                "state": t.state,
                "outcome": t.outcome,
                "pipeline": t.pipeline,
                "owner": t.owner,
                "priority": t.priority,
                "type": t.ticket_type,
                "category": t.category,
                "area": t.area,
                "tags": t.tags,
                "fields": t.fields,
                "keys": keys,
                "requester": t.requester,
                "mailbox": t.mailbox,
                "needs_review": t.needs_review,
                "linked_ticket": t.linked_ticket.map(|n| display_number(prefix, n)),
                "due_at": t.due_at.map(iso),
                "first_response_due_at": t.first_response_due_at.map(iso),
                "first_response_at": t.first_response_at.map(iso),
                "paused_at": t.paused_at.map(iso),
                "created_at": iso(t.created_at),
                "updated_at": iso(t.updated_at),
                "message_count": t.message_count,
            })
        })
        .collect();
    json!({ "tickets": list })
}

/// RFC 3339 UTC from Unix milliseconds, always with milliseconds
/// (`2026-11-22T16:05:00.000Z`): every time in JSON output has one shape.
pub fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// The JSON of records that hold times as Unix milliseconds (`created_at`,
/// `next_attempt_at`, a history line's `at`), with those times as [`iso`]
/// strings, at any depth. The records keep milliseconds for the web pages.
pub fn json_times(mut value: serde_json::Value) -> serde_json::Value {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    let is_time = key == "at" || key.ends_with("_at");
                    match v.as_i64() {
                        Some(ms) if is_time => *v = serde_json::Value::String(iso(ms)),
                        _ => walk(v),
                    }
                }
            }
            serde_json::Value::Array(list) => list.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut value);
    value
}

/// CSV (RFC 4180) with every field, dates in the team's time zone.
pub fn tickets_csv(tickets: &[TicketRow], prefix: &str, tz: &jiff::tz::TimeZone) -> String {
    csv_rows(tickets.iter().map(|t| (t, Vec::new())), &[], prefix, tz)
}

/// The rows of [`tickets_csv`], each followed by `extra` columns (the
/// report's metrics), so both exports share one column order and quoting.
fn csv_rows<'a>(
    rows: impl Iterator<Item = (&'a TicketRow, Vec<String>)>,
    extra_header: &[&str],
    prefix: &str,
    tz: &jiff::tz::TimeZone,
) -> String {
    let mut out = String::new();
    let header = [
        "number",
        "subject",
        "state",
        "outcome",
        "pipeline",
        "owner",
        "priority",
        "type",
        "category",
        "area",
        "tags",
        "fields",
        "keys",
        "requester",
        "mailbox",
        "due_at",
        "created_at",
        "updated_at",
        "message_count",
        "first_response_due_at",
        "first_response_at",
    ];
    let header: Vec<&str> = header.iter().chain(extra_header).copied().collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for (t, extra) in rows {
        let mut fields = vec![
            display_number(prefix, t.number),
            t.subject.clone(),
            t.state.to_string(),
            t.outcome.map(|o| o.to_string()).unwrap_or_default(),
            t.pipeline.clone(),
            t.owner.clone().unwrap_or_default(),
            t.priority.to_string(),
            t.ticket_type.clone().unwrap_or_default(),
            t.category.clone().unwrap_or_default(),
            t.area.clone().unwrap_or_default(),
            t.tags.join(";"),
            t.fields
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(";"),
            keys_text(t),
            t.requester.clone().unwrap_or_default(),
            t.mailbox.clone(),
            t.due_at.map(|d| local_time(d, tz)).unwrap_or_default(),
            local_time(t.created_at, tz),
            local_time(t.updated_at, tz),
            t.message_count.to_string(),
            t.first_response_due_at
                .map(|d| local_time(d, tz))
                .unwrap_or_default(),
            t.first_response_at
                .map(|d| local_time(d, tz))
                .unwrap_or_default(),
        ];
        fields.extend(extra);
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// One CSV cell: quoted when needed (RFC 4180), and a cell a spreadsheet
/// would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return first:
/// a customer's subject `=HYPERLINK(…)`) starts with a single quote, as OWASP
/// advises, so Excel and LibreOffice show it as text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Excel reads a CSV as UTF-8 only when it starts with this mark (`--bom`);
/// without it, accents come out as mojibake.
pub const UTF8_BOM: &str = "\u{feff}";

/// `buzon report --format csv`: the columns of [`tickets_csv`] plus the
/// channel, closing time and the report's per-ticket metrics.
pub fn report_csv(rows: &[ReportRow], now: i64, prefix: &str, tz: &jiff::tz::TimeZone) -> String {
    let num = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_default();
    let time = |v: Option<i64>| v.map(|at| local_time(at, tz)).unwrap_or_default();
    csv_rows(
        rows.iter().map(|r| {
            let m = crate::report::metrics(r, now);
            let extra = vec![
                r.channel.to_string(),
                time(r.closed_at),
                num(m.first_response_minutes),
                num(m.resolution_hours),
                if m.overdue { "yes" } else { "no" }.to_string(),
            ];
            (&r.ticket, extra)
        }),
        &[
            "channel",
            "closed_at",
            "first_response_minutes",
            "resolution_hours",
            "overdue",
        ],
        prefix,
        tz,
    )
}

/// A state as people read it: the team's label when one was put in its
/// place (`with_labels`), else the Spanish word for a canonical name.
pub fn state_word(state: State) -> &'static str {
    match state {
        State::New => "Nuevo",
        State::Open => "En curso",
        State::WaitingOnContact => "Esperando al contacto",
        State::WaitingOnUs => "Esperando acción nuestra",
        State::Done => "Finalizado",
    }
}

fn outcome_word(outcome: crate::ticket::Outcome) -> &'static str {
    match outcome {
        crate::ticket::Outcome::Success => "con éxito",
        crate::ticket::Outcome::Failure => "sin éxito",
    }
}

/// Why an alert was cleared, as stored (`first response`, `done`, …), in words.
fn cleared_word(by: Option<&str>) -> &str {
    match by {
        Some("first response") => "primera respuesta",
        Some("done") => "finalizado",
        Some("due date moved") => "fecha límite cambiada",
        Some(other) => other,
        None => "-",
    }
}

fn direction_word(direction: &str) -> &str {
    match direction {
        "in" => "entrante",
        _ => "saliente",
    }
}

fn role_word(role: &str) -> &str {
    match role {
        "requester" => "contacto",
        "cc" => "copia",
        "notify" => "aviso",
        other => other,
    }
}

/// `buzon report` for people: one line per group, states in the team's
/// words when the rule files (`rules`) name them.
pub fn report_table(
    report: &crate::report::Report,
    rules: Option<&crate::rules::RuleSet>,
) -> String {
    let state_label = |s: &str| match s.parse::<crate::ticket::State>() {
        Ok(state) => Labels::of(rules).state(state).to_string(),
        Err(_) => s.to_string(),
    };
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".into());
    // States in lifecycle order, then any the code no longer knows.
    let mut states: Vec<String> = crate::ticket::State::ALL
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    for g in &report.groups {
        for s in g.by_state.keys() {
            if !states.contains(s) {
                states.push(s.clone());
            }
        }
    }
    let group = match report.by {
        "pipeline" => "PIPELINE",
        "owner" => "RESPONSABLE",
        "type" => "TIPO",
        "mailbox" => "BUZÓN",
        _ => "GRUPO",
    };
    let mut header: Vec<String> = vec![group.into(), "TICKETS".into()];
    header.extend(states.iter().map(|s| state_label(s).to_uppercase()));
    header.extend(
        [
            "RESPONDIDOS",
            "SIN RESPUESTA",
            "MEDIANA 1.ª RESPUESTA (MIN)",
            "P90",
            "RESUELTOS",
            "MEDIANA RESOLUCIÓN (H)",
            "P90",
            "ATRASADOS",
            "CANALES",
        ]
        .map(String::from),
    );
    let mut rows = vec![header];
    for g in &report.groups {
        let key = match g.key.as_str() {
            "all" => "todos".to_string(),
            crate::report::NO_VALUE => "(sin valor)".to_string(),
            key => key.to_string(),
        };
        let mut row = vec![key, g.tickets.to_string()];
        row.extend(
            states
                .iter()
                .map(|s| g.by_state.get(s).copied().unwrap_or(0).to_string()),
        );
        let channels: Vec<String> = g
            .by_channel
            .iter()
            .chain(&g.by_mailbox)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        row.extend([
            g.first_response.count.to_string(),
            g.first_response.no_response.to_string(),
            opt(g.first_response.median_minutes),
            opt(g.first_response.p90_minutes),
            g.resolution.count.to_string(),
            opt(g.resolution.median_hours),
            opt(g.resolution.p90_hours),
            g.overdue.to_string(),
            if channels.is_empty() {
                "-".into()
            } else {
                channels.join(" ")
            },
        ]);
        rows.push(row);
    }
    format!(
        "tickets creados del {} al {} ({})\n{}",
        report.from,
        report.to,
        report.time_zone,
        align(&rows)
    )
}

/// `tickets show` for people: fields, messages with their text, history.
pub fn ticket_text(
    d: &TicketDetail,
    prefix: &str,
    tz: &jiff::tz::TimeZone,
    labels: Labels,
) -> String {
    let t = &d.ticket;
    let mut out = String::new();
    let _ = writeln!(out, "{}  {}", display_number(prefix, t.number), t.subject);
    let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "  estado: {}{}   pipeline: {}   responsable: {}   prioridad: {}",
        labels.state(t.state),
        t.outcome
            .as_ref()
            .map(|o| format!(" ({})", outcome_word(*o)))
            .unwrap_or_default(),
        t.pipeline,
        opt(&t.owner),
        labels.priority(t.priority)
    );
    let _ = writeln!(
        out,
        "  tipo: {}   categoría: {}   área: {}   etiquetas: {}",
        opt(&t.ticket_type),
        opt(&t.category),
        opt(&t.area),
        if t.tags.is_empty() {
            "-".into()
        } else {
            t.tags.join(", ")
        }
    );
    if !t.fields.is_empty() {
        let fields: Vec<String> = t.fields.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let _ = writeln!(out, "  {}", fields.join("   "));
    }
    let _ = writeln!(
        out,
        "  contacto: {}   buzón: {}   claves: {}",
        opt(&t.requester),
        t.mailbox,
        if t.keys.is_empty() {
            "-".into()
        } else {
            keys_text(t)
        }
    );
    let _ = writeln!(
        out,
        "  creado: {}   actualizado: {}   fecha límite: {}",
        local_time(t.created_at, tz),
        local_time(t.updated_at, tz),
        t.due_at
            .map(|d| local_time(d, tz))
            .unwrap_or_else(|| "-".into())
    );
    if let Some(first) = t.first_response_due_at {
        let answered = t
            .first_response_at
            .map(|a| format!("respondida el {}", local_time(a, tz)))
            .unwrap_or_else(|| "aún sin responder".into());
        let _ = writeln!(
            out,
            "  plazo de primera respuesta: {} ({answered})",
            local_time(first, tz)
        );
    }
    if let Some(paused) = t.paused_at
        && t.state != State::Done
    {
        let _ = writeln!(
            out,
            "  plazos detenidos desde el {} (esperando al contacto)",
            local_time(paused, tz)
        );
    }
    if t.needs_review {
        let _ = writeln!(out, "  REQUIERE REVISIÓN");
    }
    if t.internal {
        let _ = writeln!(out, "  INTERNO: el cliente no lo ve");
    }
    if !d.requests.is_empty() {
        let _ = writeln!(out, "  documentos solicitados:");
        for r in &d.requests {
            let mark = if r.status == "received" { "x" } else { " " };
            let when = match r.received_at {
                Some(at) => format!("recibido el {}", local_time(at, tz)),
                None => format!("solicitado el {}", local_time(r.requested_at, tz)),
            };
            let _ = writeln!(out, "    [{mark}] {}  ({when})", r.item);
        }
    }
    for a in &d.alerts {
        let status = match a.cleared_at {
            Some(at) => format!(
                "resuelta el {} ({})",
                local_time(at, tz),
                cleared_word(a.cleared_by.as_deref())
            ),
            None => "ABIERTA".to_string(),
        };
        let _ = writeln!(
            out,
            "  alerta: plazo de {} vencido el {}: {status}",
            crate::deadline::target_label(a.target),
            local_time(a.due_at, tz)
        );
    }
    if !d.participants.is_empty() {
        let people: Vec<String> = d
            .participants
            .iter()
            .map(|p| format!("{} ({})", p.address, role_word(&p.role)))
            .collect();
        let _ = writeln!(out, "  participantes: {}", people.join(", "));
    }
    for m in &d.messages {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "--- mensaje {} {} · {} · {} · buzones: {}{}",
            direction_word(&m.direction),
            m.id,
            local_time(m.created_at, tz),
            m.from.as_deref().unwrap_or("-"),
            if m.mailboxes.is_empty() {
                "-".to_string()
            } else {
                m.mailboxes.join(", ")
            },
            m.automatic
                .as_ref()
                .map(|a| format!(" · automático: {a}"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "Asunto: {}", m.subject);
        for a in &m.attachments {
            let _ = writeln!(
                out,
                "Adjunto: {} ({}, {} bytes)",
                a.name, a.content_type, a.size
            );
        }
        if !m.warnings.is_empty() {
            let _ = writeln!(out, "Advertencias: {}", m.warnings.replace('\n', "; "));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", m.body_text);
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "--- historial");
    for e in &d.events {
        let _ = writeln!(
            out,
            "{}  {:<14} {:<28} {}",
            local_time(e.at, tz),
            e.kind,
            e.actor,
            e.detail
        );
    }
    out
}

pub fn quarantine_table(rows: &[QuarantineRow], tz: &jiff::tz::TimeZone) -> String {
    let mut table = vec![
        [
            "ID", "ESTADO", "BUZÓN", "TAMAÑO", "RECIBIDO", "TICKET", "MOTIVO",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for q in rows {
        table.push(vec![
            q.id.to_string(),
            q.status.clone(),
            q.mailbox.clone(),
            q.size.to_string(),
            local_time(q.created_at, tz),
            q.ticket
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            q.reason.clone(),
        ]);
    }
    align(&table)
}

pub fn outbox_table(rows: &[OutboxRow], prefix: &str, tz: &jiff::tz::TimeZone) -> String {
    let mut table = vec![
        [
            "ID",
            "ESTADO",
            "TIPO",
            "TICKET",
            "PARA",
            "INTENTOS",
            "PRÓXIMO",
            "ÚLTIMO ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for r in rows {
        table.push(vec![
            r.id.to_string(),
            r.status.to_string(),
            r.kind.clone(),
            r.ticket
                .map(|t| display_number(prefix, t))
                .unwrap_or_else(|| "-".into()),
            r.rcpt_to.join(","),
            r.attempts.to_string(),
            if r.status == OutboxStatus::Queued {
                local_time(r.next_attempt_at, tz)
            } else {
                "-".into()
            },
            truncate(r.last_error.as_deref().unwrap_or("-"), 60),
        ]);
    }
    align(&table)
}

/// `buzon webhooks list`: in the order of the events.
pub fn webhooks_table(rows: &[HookDelivery], prefix: &str, tz: &jiff::tz::TimeZone) -> String {
    let mut table = vec![
        [
            "ID",
            "ESTADO",
            "DESTINO",
            "EVENTO",
            "TICKET",
            "INTENTOS",
            "PRÓXIMO",
            "ÚLTIMO ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for r in rows {
        table.push(vec![
            r.id.to_string(),
            r.status.to_string(),
            r.endpoint.clone(),
            r.kind.to_string(),
            display_number(prefix, r.ticket),
            r.attempts.to_string(),
            if r.status == OutboxStatus::Queued {
                local_time(r.next_attempt_at, tz)
            } else {
                "-".into()
            },
            truncate(r.last_error.as_deref().unwrap_or("-"), 60),
        ]);
    }
    align(&table)
}

/// `buzon alerts`: most overdue first.
pub fn alerts_text(
    rows: &[AlertRow],
    prefix: &str,
    tz: &jiff::tz::TimeZone,
    now: i64,
    labels: Labels,
) -> String {
    if rows.is_empty() {
        return "Sin alertas.\n".into();
    }
    let mut table: Vec<Vec<String>> = vec![
        [
            "TICKET",
            "PLAZO VENCIDO",
            "VENCÍA",
            "ATRASO",
            "RESPONSABLE",
            "PRIORIDAD",
            "ESTADO",
            "RESUELTA",
            "ASUNTO",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    ];
    for a in rows {
        table.push(vec![
            display_number(prefix, a.ticket),
            crate::deadline::target_label(a.target).to_string(),
            local_time(a.due_at, tz),
            crate::deadline::late(a.cleared_at.unwrap_or(now) - a.due_at),
            a.owner.clone().unwrap_or_else(|| "-".into()),
            labels.priority(a.priority).to_string(),
            labels.state(a.state).to_string(),
            match a.cleared_at {
                Some(at) => format!(
                    "{} ({})",
                    local_time(at, tz),
                    cleared_word(a.cleared_by.as_deref())
                ),
                None => "-".into(),
            },
            truncate(&a.subject, 60),
        ]);
    }
    align(&table)
}

/// `buzon alerts --format json`.
pub fn alerts_json(rows: &[AlertRow], prefix: &str) -> serde_json::Value {
    let list: Vec<serde_json::Value> = rows
        .iter()
        .map(|a| {
            json!({
                "ticket": display_number(prefix, a.ticket),
                "target": a.target,
                "due_at": iso(a.due_at),
                "breached_at": iso(a.breached_at),
                "cleared_at": a.cleared_at.map(iso),
                "cleared_by": a.cleared_by,
                "owner": a.owner,
                "pipeline": a.pipeline,
                "priority": a.priority,
                "state": a.state,
                "subject": a.subject,
            })
        })
        .collect();
    json!({ "alerts": list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(iso(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        let v = json_times(json!({
            "outbox": [{"id": 3, "created_at": 1_700_000_000_000_i64, "sent_at": null,
                        "events": [{"at": 1_700_000_000_001_i64, "attempts": 2}]}]
        }));
        assert_eq!(v["outbox"][0]["created_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["outbox"][0]["sent_at"], serde_json::Value::Null);
        assert_eq!(v["outbox"][0]["id"], 3);
        assert_eq!(
            v["outbox"][0]["events"][0]["at"],
            "2023-11-14T22:13:20.001Z"
        );
        assert_eq!(v["outbox"][0]["events"][0]["attempts"], 2);
    }
}
