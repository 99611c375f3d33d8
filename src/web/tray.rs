//! The tray ("bandeja de seguimiento"): the tickets in progress by
//! default, filters that live in the URL, a search box, counts per state,
//! pages; and the alerts page.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use minijinja::{Value, context};

use super::auth::Me;
use super::page::Frame;
use super::{App, WebError};
use crate::outbound::plan::owner_name;
use crate::rules::RuleSet;
use crate::search::SearchHit;
use crate::store::{TicketFilter, TicketOrder, now_ms};
use crate::ticket::TicketRow;
use crate::ticket::{Priority, State as TicketState, parse_number};

/// Tickets per page.
const PAGE: i64 = 50;

/// The tray's filters, as they appear in the URL (the API's
/// `GET /api/v1/tickets` takes the same).
#[derive(Debug, Default)]
pub(super) struct Filters {
    states: Vec<String>,
    owner: Option<String>,
    pipeline: Option<String>,
    priority: Option<String>,
    mailbox: Option<String>,
    overdue: bool,
    search: Option<String>,
    order: Option<String>,
    ticket_type: Option<String>,
    category: Option<String>,
    area: Option<String>,
    channel: Option<String>,
    pub(super) page: i64,
}

impl Filters {
    pub(super) fn from_query(query: Option<&str>) -> Filters {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
        let mut f = Filters {
            page: 1,
            ..Filters::default()
        };
        for (k, v) in pairs {
            let v = v.trim().to_string();
            if v.is_empty() {
                continue;
            }
            match k.as_str() {
                "estado" => f.states.push(v),
                "responsable" => f.owner = Some(v),
                "pipeline" => f.pipeline = Some(v),
                "prioridad" => f.priority = Some(v),
                "buzon" => f.mailbox = Some(v),
                "vencidos" => f.overdue = true,
                "q" => f.search = Some(v),
                "orden" => f.order = Some(v),
                "tipo" => f.ticket_type = Some(v),
                "categoria" => f.category = Some(v),
                "area" => f.area = Some(v),
                "medio" => f.channel = Some(v),
                "pagina" => f.page = v.parse().unwrap_or(1).max(1),
                _ => {}
            }
        }
        f
    }

    /// Every value the store's filter would not understand (an unknown
    /// state, priority, channel or order), said at once: the tray ignores
    /// them, the API refuses them.
    pub(super) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.states {
            if s != "todos" && s.parse::<TicketState>().is_err() {
                out.push(format!(
                    "estado '{s}' desconocido: use {} o todos",
                    TicketState::ALL.map(|s| s.as_str()).join(", ")
                ));
            }
        }
        if let Some(p) = self
            .priority
            .as_deref()
            .filter(|p| p.parse::<Priority>().is_err())
        {
            out.push(format!(
                "prioridad '{p}' desconocida: use {}",
                Priority::ALL.map(|p| p.as_str()).join(", ")
            ));
        }
        if let Some(c) = self
            .channel
            .as_deref()
            .filter(|c| c.parse::<crate::ticket::Channel>().is_err())
        {
            out.push(format!(
                "medio '{c}' desconocido: use {}",
                crate::ticket::Channel::ALL.map(|c| c.as_str()).join(", ")
            ));
        }
        if let Some(o) = self
            .order
            .as_deref()
            .filter(|o| !["actividad", "vence", "numero"].contains(o))
        {
            out.push(format!(
                "orden '{o}' desconocido: use actividad, vence o numero"
            ));
        }
        out
    }

    /// The store's filter: "en curso" (every state but done) by default;
    /// `responsable=mios` is `person`.
    fn to_store(&self, person: &str) -> TicketFilter {
        // A search finds finished tickets too, unless states are chosen.
        let searching = self.search.is_some() && self.states.is_empty();
        let states = if searching || self.states.iter().any(|s| s == "todos") {
            Vec::new()
        } else if self.states.is_empty() {
            TicketState::ALL
                .into_iter()
                .filter(|s| *s != TicketState::Done)
                .collect()
        } else {
            self.states.iter().filter_map(|s| s.parse().ok()).collect()
        };
        let owner = match self.owner.as_deref() {
            Some("mios") => Some(person.to_string()),
            other => other.map(str::to_string),
        };
        let prefix_free = self.search.as_deref().map(str::trim);
        TicketFilter {
            states,
            pipeline: self.pipeline.clone(),
            owner,
            priority: self.priority.as_deref().and_then(|p| p.parse().ok()),
            mailbox: self.mailbox.clone(),
            overdue_at: self.overdue.then(now_ms),
            search: self.search.clone(),
            search_number: prefix_free.and_then(|s| parse_number("", s)),
            order: match self.order.as_deref() {
                Some("vence") => TicketOrder::Due,
                Some("numero") => TicketOrder::Number,
                _ => TicketOrder::Activity,
            },
            ticket_type: self.ticket_type.clone(),
            category: self.category.clone(),
            area: self.area.clone(),
            channel: self.channel.as_deref().and_then(|c| c.parse().ok()),
            limit: Some(PAGE + 1),
            offset: Some((self.page - 1) * PAGE),
            key: None,
        }
    }

    /// The URL of the same view on another page.
    fn page_url(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, String)> =
            self.states.iter().map(|s| ("estado", s.clone())).collect();
        for (k, v) in [
            ("responsable", &self.owner),
            ("pipeline", &self.pipeline),
            ("prioridad", &self.priority),
            ("buzon", &self.mailbox),
            ("q", &self.search),
            ("orden", &self.order),
            ("tipo", &self.ticket_type),
            ("categoria", &self.category),
            ("area", &self.area),
            ("medio", &self.channel),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        if self.overdue {
            pairs.push(("vencidos", "1".into()));
        }
        pairs.push(("pagina", page.to_string()));
        format!(
            "/?{}",
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        )
    }
}

pub async fn show(
    State(app): State<Arc<App>>,
    me: Me,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let filters = Filters::from_query(query.as_deref());
    let (filter, found, more) = find(&app, &filters, &me.staff.id).await?;
    let rules: Option<&RuleSet> = Some(&me.snap.rules);
    let counts = app.store.count_by_state(&filter).await?;
    let frame = Frame::of(&app, &me).await?;
    let ctx = context! {
        tickets => found.iter().map(|(t, h)| {
            context! { found => h.as_ref().map(hit), ..row(&app, &me, t) }
        }).collect::<Vec<_>>(),
        counts => TicketState::ALL.iter().map(|s| context! {
            state => s.as_str(),
            label => state_label(rules, *s),
            count => counts.iter().find(|(n, _)| n == s.as_str()).map(|(_, c)| *c).unwrap_or(0),
        }).collect::<Vec<_>>(),
        states => TicketState::ALL.iter().map(|s| context! {
            value => s.as_str(),
            label => state_label(rules, *s),
            selected => filters.states.iter().any(|f| f == s.as_str()),
        }).collect::<Vec<_>>(),
        priorities => Priority::ALL.iter().map(|p| context! {
            value => p.as_str(),
            label => priority_label(rules, *p),
            selected => filters.priority.as_deref() == Some(p.as_str()),
        }).collect::<Vec<_>>(),
        people => me.snap.config.people.iter().map(|(id, p)| context! {
            value => id.clone(),
            label => p.name.clone().unwrap_or_else(|| id.clone()),
            selected => filters.owner.as_deref() == Some(id.as_str()),
        }).collect::<Vec<_>>(),
        mine => filters.owner.as_deref() == Some("mios"),
        mailboxes => me.snap.config.mailboxes.keys().map(|m| context! {
            value => m.clone(), selected => filters.mailbox.as_deref() == Some(m.as_str()),
        }).collect::<Vec<_>>(),
        pipeline => filters.pipeline.clone(),
        types => rules.map(|r| r.type_names().iter().map(|t| context! {
            value => t.to_string(), selected => filters.ticket_type.as_deref() == Some(*t),
        }).collect::<Vec<_>>()).unwrap_or_default(),
        ticket_type => filters.ticket_type.clone(),
        category => filters.category.clone(),
        area => filters.area.clone(),
        channels => crate::ticket::Channel::ALL.iter().map(|c| context! {
            value => c.as_str(), label => c.label(), selected => filters.channel.as_deref() == Some(c.as_str()),
        }).collect::<Vec<_>>(),
        q => filters.search.clone(),
        overdue => filters.overdue,
        order => filters.order.clone().unwrap_or_else(|| "actividad".into()),
        all_states => filters.states.iter().any(|s| s == "todos"),
        page => filters.page,
        prev => (filters.page > 1).then(|| filters.page_url(filters.page - 1)),
        next => more.then(|| filters.page_url(filters.page + 1)),
    };
    app.pages.render("tray.html", &frame, ctx)
}

/// The tickets of one page of the tray (or of the API's list) for
/// `person`, with where a search found each (best first), the store's
/// filter used, and whether a next page has more. The one place where the
/// filters and the search meet the store, for both front ends.
pub(super) async fn find(
    app: &App,
    filters: &Filters,
    person: &str,
) -> Result<(TicketFilter, Vec<(TicketRow, Option<SearchHit>)>, bool), WebError> {
    let mut filter = filters.to_store(person);
    // A search for "GF-12" is the ticket number with the team's prefix.
    if let Some(s) = filters.search.as_deref() {
        filter.search_number = parse_number(&app.config.deployment.ticket_prefix, s);
    }
    let mut found: Vec<(TicketRow, Option<SearchHit>)> = if filter.search.is_some() {
        app.store
            .search(&filter)
            .await?
            .into_iter()
            .map(|h| (h.ticket.clone(), Some(h)))
            .collect()
    } else {
        let rows = app.store.list_tickets(&filter).await?;
        rows.into_iter().map(|t| (t, None)).collect()
    };
    let more = found.len() as i64 > PAGE;
    found.truncate(PAGE as usize);
    Ok((filter, found, more))
}

/// One ticket as the tray shows it.
fn row(app: &App, me: &Me, t: &TicketRow) -> Value {
    let rules: Option<&RuleSet> = Some(&me.snap.rules);
    context! {
        number => crate::ticket::display_number(&app.config.deployment.ticket_prefix, t.number),
        subject => t.subject.clone(),
        state => t.state.as_str(),
        state_label => state_label(rules, t.state),
        priority => t.priority.as_str(),
        priority_label => priority_label(rules, t.priority),
        owner => t.owner.as_deref().map(|o| owner_name(&me.snap.config, o)),
        requester => t.requester_name.clone().or_else(|| t.requester.clone()),
        pipeline => t.pipeline.clone(),
        due_at => t.first_response_at.is_none().then_some(t.first_response_due_at).flatten().or(t.due_at),
        overdue => t.state != TicketState::Done && t.first_response_at.is_none().then_some(t.first_response_due_at).flatten().or(t.due_at).is_some_and(|d| d < now_ms()),
        updated_at => t.updated_at,
        channel => t.fields.get("medio_ingreso").cloned(),
        keys => t.keys.iter().map(|k| format!("{}={}", k.name, k.value)).collect::<Vec<_>>(),
    }
}

/// Where a search found a ticket, and the words around: text segments
/// the template escapes and marks, never markup from the mail.
fn hit(h: &SearchHit) -> Value {
    context! {
        place => h.place.label(),
        cut_before => h.excerpt.cut_before,
        cut_after => h.excerpt.cut_after,
        segments => h.excerpt.segments.iter().map(|s| context! {
            text => s.text.clone(), hit => s.hit,
        }).collect::<Vec<_>>(),
    }
}

/// The team's word for a state (Spanish when the rule files name none).
pub fn state_label(rules: Option<&RuleSet>, s: TicketState) -> String {
    crate::view::Labels::of(rules).state(s).to_string()
}

/// The team's word for a priority (Spanish when the rule files name none).
pub fn priority_label(rules: Option<&RuleSet>, p: Priority) -> String {
    crate::view::Labels::of(rules).priority(p).to_string()
}

/// Missed deadlines, most overdue first: an agent's own, and everyone's
/// for administrators (seed 001: "se muestran al responsable asignado. Y
/// además al cargo tipo administrador").
pub async fn alerts(State(app): State<Arc<App>>, me: Me) -> Result<Response, WebError> {
    let owner = (!me.staff.is_admin()).then(|| me.staff.id.clone());
    let rows = app.store.alerts(owner.as_deref(), false).await?;
    let prefix = &app.config.deployment.ticket_prefix;
    let now = now_ms();
    let frame = Frame::of(&app, &me).await?;
    let ctx = context! {
        alerts => rows.iter().map(|a| context! {
            number => crate::ticket::display_number(prefix, a.ticket),
            subject => a.subject.clone(),
            owner => a.owner.as_deref().map(|o| owner_name(&me.snap.config, o)),
            target => match a.target {
                crate::ticket::Target::FirstResponse => "primera respuesta",
                crate::ticket::Target::Resolution => "resolución",
            },
            due_at => a.due_at,
            late => crate::deadline::late(now - a.due_at),
        }).collect::<Vec<_>>(),
        everyone => owner.is_none(),
    };
    app.pages.render("alerts.html", &frame, ctx)
}
