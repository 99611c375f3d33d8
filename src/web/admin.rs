//! Administrators' page: mail that could not be ticketed, outgoing mail
//! that failed, the report, and the rules' own tests (read-only).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;
use serde::Deserialize;

use super::auth::Me;
use super::page::Frame;
use super::posted::Posted;
use super::{App, WebError};
use crate::pipeline::Outcome;
use crate::store::now_ms;

fn admin_only(me: &Me) -> Result<(), WebError> {
    if me.staff.is_admin() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "esta página es para administradores".into(),
        ))
    }
}

pub async fn show(State(app): State<Arc<App>>, me: Me) -> Result<Response, WebError> {
    admin_only(&me)?;
    let mut quarantine = Vec::new();
    for q in app.store.quarantine_list().await? {
        if q.status == "released" {
            continue;
        }
        // The header block, as text: who wrote, when, about what.
        let (_, raw) = app.store.quarantine_raw(q.id).await?;
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
            .unwrap_or(raw.len())
            .min(8192);
        let headers = String::from_utf8_lossy(&raw[..end]).into_owned();
        quarantine.push((q, headers));
    }
    let failed = app
        .store
        .outbox_list(Some(crate::ticket::OutboxStatus::Failed))
        .await?;
    let rules_test = app
        .config
        .rules
        .dir
        .as_deref()
        .map(|dir| crate::rules::cli::test(dir, &app.config).0);
    let prefix = &app.config.deployment.ticket_prefix;
    let frame = Frame::of(&app, &me).await?;
    let ctx = context! {
        quarantine => quarantine.iter().map(|(q, headers)| context! {
            id => q.id, mailbox => q.mailbox.clone(), reason => q.reason.clone(), size => q.size, at => q.created_at,
            headers => headers.clone(),
        }).collect::<Vec<_>>(),
        failed => failed.iter().map(|o| context! {
            id => o.id, kind => o.kind.clone(), to => o.rcpt_to.join(", "),
            ticket => o.ticket.map(|t| crate::ticket::display_number(prefix, t)),
            error => o.last_error.clone(), attempts => o.attempts,
        }).collect::<Vec<_>>(),
        rules_test => rules_test,
    };
    app.pages.render("admin.html", &frame, ctx)
}

#[derive(Deserialize)]
pub struct ReportQuery {
    desde: String,
    hasta: String,
    formato: Option<String>,
}

/// `buzon report` as a download: CSV (for a spreadsheet, with the byte
/// order mark) or JSON.
pub async fn report(
    State(app): State<Arc<App>>,
    me: Me,
    Query(q): Query<ReportQuery>,
) -> Result<Response, WebError> {
    admin_only(&me)?;
    use crate::report::{self, GroupBy};
    let tz = jiff::tz::TimeZone::get(&app.config.deployment.time_zone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let bad = |e: report::ReportError| WebError::Invalid(e.to_string());
    let (from, to) = (
        report::parse_date(&q.desde).map_err(bad)?,
        report::parse_date(&q.hasta).map_err(bad)?,
    );
    let (start, end) = report::range_ms(from, to, &tz).map_err(bad)?;
    let rows = app.store.report_rows(start, end).await?;
    let now = now_ms();
    let prefix = &app.config.deployment.ticket_prefix;
    let (body, content_type, ext) = if q.formato.as_deref() == Some("json") {
        let summary = report::Report {
            from: from.to_string(),
            to: to.to_string(),
            time_zone: app.config.deployment.time_zone.clone(),
            by: GroupBy::None.as_str(),
            groups: report::groups(&rows, GroupBy::None, now),
        };
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| WebError::Internal(e.to_string()))?;
        (json, "application/json", "json")
    } else {
        let csv = crate::view::report_csv(&rows, now, prefix, &tz);
        (
            format!("{}{csv}", crate::view::UTF8_BOM),
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"reporte-{from}-{to}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Runs a quarantined mail through the pipeline again.
pub async fn retry_quarantine(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Posted { me, .. }: Posted,
) -> Result<Response, WebError> {
    admin_only(&me)?;
    let (mailbox, raw) = app.store.quarantine_raw(id).await?;
    let pipeline = me
        .snap
        .pipeline(&app.store)
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let outcome = pipeline
        .ingest(&raw, &mailbox)
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?;
    let now = now_ms();
    match outcome {
        Outcome::Created { ticket, .. }
        | Outcome::Appended { ticket, .. }
        | Outcome::Duplicate { ticket, .. } => {
            app.store
                .quarantine_update(id, "released", "released into a ticket", Some(ticket), now)
                .await?;
        }
        Outcome::Quarantined { reason, .. } => {
            app.store
                .quarantine_update(id, "held", &reason, None, now)
                .await?;
        }
    }
    Ok(Redirect::to("/admin").into_response())
}

/// Queues a failed mail again (the daemon delivers it).
pub async fn retry_outbox(
    State(app): State<Arc<App>>,
    Path(id): Path<i64>,
    Posted { me, .. }: Posted,
) -> Result<Response, WebError> {
    admin_only(&me)?;
    app.store.outbox_requeue(id, now_ms()).await?;
    Ok(Redirect::to("/admin").into_response())
}
