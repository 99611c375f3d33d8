-- Webhooks (issue 16): what happened to a ticket, told to other systems.
--
-- Each change writes its event here in the change's own transaction, with
-- the ticket as it stood after the change (copied from `tickets` by the
-- same statement). The daemon fans each event out into one delivery per
-- matching `[[webhooks]]` endpoint (`fanned_out` = 1; an event no endpoint
-- wants is deleted instead) and delivers those like the mail outbox:
-- lease, retries with backoff, maximum age, in order per ticket and
-- endpoint (by event id).
CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    kind        TEXT    NOT NULL,        -- ticket.created, ticket.updated, ...
    detail      TEXT    NOT NULL,        -- JSON object: the change (changes, message, deadline ...)
    created_at  INTEGER NOT NULL,
    subject     TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    outcome     TEXT,
    pipeline    TEXT    NOT NULL,
    owner       TEXT,
    priority    TEXT    NOT NULL,
    ticket_type TEXT,
    mailbox     TEXT    NOT NULL,
    requester   TEXT,
    fields      TEXT    NOT NULL DEFAULT '{}',
    fanned_out  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX webhook_events_new ON webhook_events(fanned_out, id);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT    NOT NULL UNIQUE, -- X-Buzon-Delivery: the same on every retry
    event_id        INTEGER NOT NULL REFERENCES webhook_events(id),
    endpoint        TEXT    NOT NULL,        -- the [[webhooks]] name
    ticket_id       INTEGER NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued', -- queued, sent, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    requeued_at     INTEGER,
    UNIQUE (event_id, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(status, next_attempt_at);
-- The claim's "an earlier event of this ticket for this endpoint is still
-- queued" check.
CREATE INDEX webhook_deliveries_order ON webhook_deliveries(endpoint, ticket_id, status, event_id);
