//! A ticket opened by hand ("Nuevo ingreso"), as `buzon tickets new`.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

use super::auth::Me;
use super::page::Frame;
use super::posted::Posted;
use super::{App, WebError};
use crate::actions::NewRequest;
use crate::ticket::Channel;

pub async fn form(State(app): State<Arc<App>>, me: Me) -> Result<Response, WebError> {
    let frame = Frame::of(&app, &me).await?;
    let ctx = context! {
        channels => Channel::ALL.iter().filter(|c| **c != Channel::Email).chain([Channel::Email].iter()).map(|c| context! {
            value => c.as_str(), label => c.label(),
        }).collect::<Vec<_>>(),
        mailboxes => me.snap.config.mailboxes.keys().cloned().collect::<Vec<_>>(),
        people => me.snap.config.people.iter().map(|(id, p)| context! {
            value => id.clone(), label => p.name.clone().unwrap_or_else(|| id.clone()),
        }).collect::<Vec<_>>(),
    };
    app.pages.render("new.html", &frame, ctx)
}

pub async fn create(
    State(app): State<Arc<App>>,
    Posted { me, form }: Posted,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let request = NewRequest {
        channel: get("canal")
            .unwrap_or_else(|| "phone".into())
            .parse()
            .map_err(WebError::Invalid)?,
        mailbox: get("buzon"),
        requester: get("correo"),
        name: get("nombre"),
        subject: get("asunto").unwrap_or_default(),
        body: get("descripcion").unwrap_or_default(),
        owner: get("responsable"),
    };
    let agent = app.agent(&me)?;
    let done = agent.create(&request).await?;
    Ok(Redirect::to(&format!("/tickets/{}?aviso=creado", done.number)).into_response())
}
