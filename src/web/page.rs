//! The pages: minijinja templates compiled into the binary, auto-escaped
//! (every string from a mail is text, never markup), with the frame every
//! signed-in page shares (who, the badge, the CSRF token).

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value, context};

use super::WebError;
use super::auth::Me;
use crate::config::Config;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("tray.html", include_str!("templates/tray.html")),
    ("ticket.html", include_str!("templates/ticket.html")),
    ("new.html", include_str!("templates/new.html")),
    ("alerts.html", include_str!("templates/alerts.html")),
    ("admin.html", include_str!("templates/admin.html")),
];

const CSS: &str = include_str!("templates/buzon.css");

pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new(tz: jiff::tz::TimeZone) -> Result<Pages, minijinja::Error> {
        let mut env = Environment::new();
        // `.html` templates escape every value unless marked safe; no
        // template marks anything safe.
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, text) in TEMPLATES {
            env.add_template(name, text)?;
        }
        env.add_filter("fecha", move |ms: Option<i64>| -> String {
            ms.map(|ms| crate::view::local_time(ms, &tz))
                .unwrap_or_default()
        });
        Ok(Pages { env })
    }

    /// A signed-in page: `ctx` plus the frame.
    pub fn render(&self, name: &str, frame: &Frame, ctx: Value) -> Result<Response, WebError> {
        let ctx = context! { frame => frame.value(), ..ctx };
        self.html(name, ctx, StatusCode::OK)
    }

    pub fn login(
        &self,
        config: &Config,
        csrf: &str,
        error: Option<&str>,
        status: StatusCode,
    ) -> Result<Response, WebError> {
        let ctx = context! { team => config.deployment.name.clone(), csrf => csrf, error => error };
        self.html("login.html", ctx, status)
    }

    fn html(&self, name: &str, ctx: Value, status: StatusCode) -> Result<Response, WebError> {
        let body = self
            .env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| WebError::Internal(format!("page {name}: {e:#}")))?;
        Ok((status, Html(body)).into_response())
    }
}

/// What every signed-in page shows around its content.
pub struct Frame {
    pub team: String,
    pub name: String,
    pub id: String,
    pub admin: bool,
    pub csrf: String,
    /// What is new for the person: tickets of theirs waiting on them and
    /// their missed deadlines.
    pub badge: i64,
}

impl Frame {
    pub async fn of(app: &super::App, me: &Me) -> Result<Frame, WebError> {
        let mine = crate::store::TicketFilter {
            owner: Some(me.staff.id.clone()),
            states: vec![crate::ticket::State::New, crate::ticket::State::WaitingOnUs],
            ..Default::default()
        };
        let waiting: i64 = app
            .store
            .count_by_state(&mine)
            .await?
            .iter()
            .filter(|(s, _)| s == "new" || s == "waiting_on_us")
            .map(|(_, n)| n)
            .sum();
        let alerts = app.store.alerts(Some(&me.staff.id), false).await?.len();
        Ok(Frame {
            team: app.config.deployment.name.clone(),
            name: me.staff.name.clone(),
            id: me.staff.id.clone(),
            admin: me.staff.is_admin(),
            csrf: me.csrf.clone(),
            badge: waiting + i64::try_from(alerts).unwrap_or(0),
        })
    }

    fn value(&self) -> Value {
        context! {
            team => self.team.clone(),
            name => self.name.clone(),
            id => self.id.clone(),
            admin => self.admin,
            csrf => self.csrf.clone(),
            badge => self.badge,
        }
    }
}

pub async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
