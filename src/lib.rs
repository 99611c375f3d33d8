//! buzon turns mail sent to shared support mailboxes into tickets.
//!
//! The crate map follows the life of a message (see ARCHITECTURE.md):
//!
//! - [`config`]: the TOML file and `BUZON_*` overrides, validated at once.
//! - [`parse`]: raw bytes → [`parse::ParsedMail`]; pure, never panics.
//! - [`classify`]: is it automatic mail (auto-reply, bounce, list)? pure.
//! - [`rules`]: rule files → routing decisions, keys, explanations; pure evaluation.
//! - [`route`]: the routing decision with mailbox defaults; pure.
//! - [`thread`]: which ticket a follow-up continues (or is linked to);
//!   signed Message-IDs; pure.
//! - [`ticket`]: states, priorities, outcomes, ticket numbers, and the records
//!   of a ticket (as read, its history, its mail); pure.
//! - [`pipeline`]: one message through parse → classify → route → thread → store.
//! - [`search`]: the search box's language, and what a hit shows; pure.
//! - [`store`]: SQLite or PostgreSQL; the only module with SQL; decodes what it
//!   reads into the ticket's types.
//! - [`outbound`]: the mails buzon sends (templates, who gets what,
//!   composing) and delivering the outbox (files or SMTP, retries).
//! - [`source`]: where mail comes from; IMAP intake with checkpoints and leases.
//! - [`mailroom`]: agents answering notifications by mail, identified and
//!   carried out through `actions`.
//! - [`actions`]: what people do to tickets (assign, state, note, reply,
//!   close, open by hand), permission-checked, one transaction each.
//! - [`deadline`]: the first-response and resolution clocks, and the alerts
//!   of missed deadlines.
//! - [`check`]: `buzon check`: what `run` needs, loaded as `run` loads it.
//! - [`daemon`]: `buzon run`: folder workers, outbox worker, signals, systemd.
//! - [`live`]: what a reload changes (rules, templates, people, mailboxes'
//!   defaults), one snapshot every unit of work starts from.
//! - [`health`]: per-folder health, `/healthz` and `/metrics`.
//! - [`instance`]: this daemon's name in the folder leases and the outbox's and webhooks'
//!   claims, stable across restarts.
//! - [`web`]: the agents' workspace and the JSON API (`/api/v1`) over `actions`.
//! - [`webhooks`]: telling other systems what happens to tickets: events
//!   recorded with each change, delivered signed, retried, in order.
//! - [`report`]: `buzon report`: counts, response and resolution times; pure.
//! - [`view`]: tables, CSV, JSON and text for the command line; pure.
//! - [`demo`]: the bundled sample mail and the `buzon demo` run.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod actions;
pub mod check;
pub mod classify;
pub mod config;
pub mod daemon;
pub mod deadline;
pub mod demo;
pub mod health;
pub mod instance;
pub mod live;
pub mod mailroom;
pub mod outbound;
pub mod parse;
pub mod pipeline;
pub mod report;
pub mod route;
pub mod rules;
pub mod search;
pub mod source;
pub mod store;
pub mod thread;
pub mod ticket;
pub mod view;
pub mod web;
pub mod webhooks;
