//! The ticket page: fields in the team's words, both deadlines, alerts,
//! the document checklist, the thread with its attachments, the history,
//! and the forms of the actions this person may take.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::auth::Me;
use super::page::Frame;
use super::tray::state_label;
use super::{App, WebError};
use crate::actions::{Action, Agent};
use crate::outbound::plan::owner_name;
use crate::ticket::TicketDetail;
use crate::ticket::{Priority, State as TicketState, display_number, parse_number};

#[derive(Deserialize, Default)]
pub struct View {
    /// A template to fill in the reply box with.
    plantilla: Option<String>,
    /// What the last action did, to say so.
    aviso: Option<String>,
}

/// The ticket number in a URL (`GF-12` or `12`).
pub fn number_of(app: &App, text: &str) -> Result<i64, WebError> {
    parse_number(&app.config.deployment.ticket_prefix, text)
        .ok_or_else(|| WebError::NotFound(format!("'{text}' no es un número de ticket")))
}

pub async fn show(
    State(app): State<Arc<App>>,
    me: Me,
    Path(number): Path<String>,
    Query(view): Query<View>,
) -> Result<Response, WebError> {
    let n = number_of(&app, &number)?;
    let agent = app.agent(&me)?;
    let detail = agent.load(n, Action::Read).await?;
    let draft = match view.plantilla.as_deref().filter(|p| !p.is_empty()) {
        Some(name) => Some(agent.template_body(n, name, None).await?),
        None => None,
    };
    let frame = Frame::of(&app, &me).await?;
    let ctx = context! {
        t => ticket(&app, &agent, &detail),
        can => permissions(&agent, &detail),
        templates => agent.template_names(),
        template => view.plantilla,
        draft => draft,
        notice => view.aviso.as_deref().map(notice),
        people => me.snap.config.people.iter().map(|(id, p)| context! {
            value => id.clone(), label => p.name.clone().unwrap_or_else(|| id.clone()),
        }).collect::<Vec<_>>(),
        states => TicketState::ALL.iter().filter(|s| **s != TicketState::Done).map(|s| context! {
            value => s.as_str(), label => state_label(Some(agent.rules()), *s),
        }).collect::<Vec<_>>(),
        priorities => Priority::ALL.iter().map(|p| context! {
            value => p.as_str(), label => super::tray::priority_label(Some(agent.rules()), *p),
        }).collect::<Vec<_>>(),
        types => agent.rules().type_names().into_iter().map(str::to_string).collect::<Vec<_>>(),
    };
    app.pages.render("ticket.html", &frame, ctx)
}

/// What the last action did, in words.
fn notice(code: &str) -> &'static str {
    match code {
        "tomado" => "El ticket quedó a su cargo.",
        "asignado" => "Ticket asignado; su responsable recibirá un aviso.",
        "estado" => "Estado cambiado.",
        "reabierto" => "Ticket reabierto.",
        "comentario" => "Comentario agregado.",
        "respuesta" => "Respuesta enviada al cliente.",
        "novedad" => "Novedad enviada al cliente.",
        "documentos" => "Pedido de documentos enviado al cliente.",
        "recibido" => "Documento marcado como recibido.",
        "cerrado" => "Ticket finalizado; el cliente recibirá el aviso de cierre.",
        "clasificado" => "Ticket reclasificado.",
        "vence" => "Fecha límite cambiada.",
        "interno" => "Visibilidad cambiada.",
        "creado" => "Ticket creado.",
        _ => "Hecho.",
    }
}

/// Which forms to show: exactly what the action layer would allow.
fn permissions(agent: &Agent<'_>, d: &TicketDetail) -> Value {
    let t = &d.ticket;
    let done = t.state == TicketState::Done;
    context! {
        take => t.owner.is_none() && agent.may(Action::Take, t),
        assign => agent.may(Action::Assign, t),
        state => !done && agent.may(Action::State, t),
        reopen => done && agent.may(Action::Reopen, t),
        comment => agent.may(Action::Comment, t),
        mail => !t.internal && t.requester.is_some() && agent.may(Action::Mail, t),
        documents => !t.internal && agent.may(Action::Documents, t),
        close => !done && agent.may(Action::Close, t),
        classify => agent.may(Action::Classify, t),
        due => !done && agent.may(Action::Due, t),
        visibility => agent.may(Action::Visibility, t),
    }
}

fn ticket(app: &App, agent: &Agent<'_>, d: &TicketDetail) -> Value {
    let t = &d.ticket;
    let prefix = &app.config.deployment.ticket_prefix;
    let number = display_number(prefix, t.number);
    let rules = Some(agent.rules());
    context! {
        number => number.clone(),
        subject => t.subject.clone(),
        state => t.state.as_str(),
        state_label => state_label(rules, t.state),
        outcome => t.outcome.map(|o| match o { crate::ticket::Outcome::Success => "con éxito", crate::ticket::Outcome::Failure => "sin éxito" }),
        pipeline => t.pipeline.clone(),
        owner => t.owner.as_deref().map(|o| owner_name(agent.config(), o)),
        priority_label => super::tray::priority_label(rules, t.priority),
        ticket_type => t.ticket_type.clone(),
        category => t.category.clone(),
        area => t.area.clone(),
        tags => t.tags.clone(),
        fields => t.fields.iter().map(|(k, v)| context! { name => k.clone(), value => v.clone() }).collect::<Vec<_>>(),
        keys => t.keys.iter().map(|k| format!("{}={}", k.name, k.value)).collect::<Vec<_>>(),
        requester => t.requester.clone(),
        requester_name => t.requester_name.clone(),
        mailbox => t.mailbox.clone(),
        internal => t.internal,
        needs_review => t.needs_review,
        linked => t.linked_ticket.map(|l| display_number(prefix, l)),
        created_at => t.created_at,
        updated_at => t.updated_at,
        due_at => t.due_at,
        first_response_due_at => t.first_response_due_at,
        first_response_at => t.first_response_at,
        paused => t.paused_at.is_some(),
        alerts => d.alerts.iter().map(|a| context! {
            target => match a.target { crate::ticket::Target::FirstResponse => "primera respuesta", crate::ticket::Target::Resolution => "resolución" },
            due_at => a.due_at,
            cleared => a.cleared_at.is_some(),
        }).collect::<Vec<_>>(),
        requests => d.requests.iter().map(|r| context! {
            item => r.item.clone(), received => r.status == "received", requested_at => r.requested_at, received_at => r.received_at,
        }).collect::<Vec<_>>(),
        participants => d.participants.iter().map(|p| context! { address => p.address.clone(), name => p.name.clone(), role => p.role.clone() }).collect::<Vec<_>>(),
        messages => d.messages.iter().map(|m| context! {
            id => m.id,
            incoming => m.direction == "in",
            from => m.from.clone(),
            from_name => m.from_name.clone(),
            to => m.to.clone(),
            cc => m.cc.clone(),
            subject => m.subject.clone(),
            text => m.body_text.clone(),
            automatic => m.automatic.clone(),
            at => m.created_at,
            attachments => m.attachments.iter().enumerate().map(|(i, a)| context! {
                name => a.name.clone(), size => a.size, content_type => a.content_type.clone(),
                url => format!("/tickets/{number}/attachments/{}/{i}", m.id),
            }).collect::<Vec<_>>(),
        }).collect::<Vec<_>>(),
        events => d.events.iter().rev().map(|e| context! { at => e.at, actor => e.actor.to_string(), kind => e.kind.as_str(), detail => e.detail.clone() }).collect::<Vec<_>>(),
    }
}

/// An attachment, always as a download: the stored type, never rendered
/// inline, never sniffed.
pub async fn attachment(
    State(app): State<Arc<App>>,
    me: Me,
    Path((number, message, index)): Path<(String, i64, i64)>,
) -> Result<Response, WebError> {
    let n = number_of(&app, &number)?;
    let agent = app.agent(&me)?;
    agent.load(n, Action::Read).await?;
    let file = app
        .store
        .attachment(n, message, index)
        .await?
        .ok_or_else(|| WebError::NotFound("no existe ese adjunto".into()))?;
    let content_type = if file.content_type.is_ascii()
        && !file.content_type.contains(['\r', '\n', ';', ','])
        && file.content_type.contains('/')
    {
        file.content_type.clone()
    } else {
        "application/octet-stream".into()
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_DISPOSITION, disposition(&file.name)),
            (header::CACHE_CONTROL, "private, no-store".into()),
        ],
        file.content,
    )
        .into_response())
}

/// `attachment; filename="…"; filename*=UTF-8''…`: an ASCII fallback
/// without quotes or controls, and the real name percent-encoded.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn download_names_cannot_break_the_header() {
        let d = super::disposition("a\"b\r\nX-Evil: 1.pdf");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
        assert!(
            d.starts_with("attachment; filename=\"a_b__X-Evil: 1.pdf\""),
            "{d}"
        );
        assert!(super::disposition("Cédula.pdf").ends_with("filename*=UTF-8''C%C3%A9dula.pdf"));
    }
}
