-- buzon schema, SQLite dialect. Keep in step with ../postgres/0001_init.sql:
-- same tables, same columns, same meaning. Times are Unix milliseconds (UTC).

CREATE TABLE tickets (
    id            INTEGER PRIMARY KEY AUTOINCREMENT, -- the human number (T-<id>)
    subject       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    outcome       TEXT,
    pipeline      TEXT    NOT NULL,
    owner         TEXT,
    priority      TEXT    NOT NULL,
    ticket_type   TEXT,
    category      TEXT,
    area          TEXT,
    tags          TEXT    NOT NULL DEFAULT '[]',      -- JSON array of strings
    requester     TEXT,
    requester_name TEXT,
    mailbox       TEXT    NOT NULL,                   -- where the first mail arrived
    channel       TEXT    NOT NULL DEFAULT 'email',
    needs_review  INTEGER NOT NULL DEFAULT 0,
    linked_ticket INTEGER REFERENCES tickets(id),
    due_at        INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX tickets_state ON tickets(state);
CREATE INDEX tickets_requester ON tickets(requester);

CREATE TABLE ticket_keys (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    name      TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, name, value)
);
CREATE INDEX ticket_keys_lookup ON ticket_keys(name, value);

CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    direction   TEXT    NOT NULL,             -- 'in' or 'out'
    dedupe_key  TEXT    NOT NULL UNIQUE,      -- 'mid:<Message-ID>' or 'sha256:<raw hash>'
    message_id  TEXT,
    in_reply_to TEXT    NOT NULL DEFAULT '',  -- space-separated ids, no brackets
    refs        TEXT    NOT NULL DEFAULT '',
    from_addr   TEXT,
    from_name   TEXT,
    to_addrs    TEXT    NOT NULL DEFAULT '',  -- comma-separated
    cc_addrs    TEXT    NOT NULL DEFAULT '',
    subject     TEXT    NOT NULL DEFAULT '',
    body_text   TEXT    NOT NULL DEFAULT '',
    automatic   TEXT,                         -- classify::AutoKind, NULL for people
    warnings    TEXT    NOT NULL DEFAULT '',
    raw         BLOB    NOT NULL,
    raw_sha256  TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX messages_ticket ON messages(ticket_id);
CREATE INDEX messages_message_id ON messages(message_id);

CREATE TABLE message_mailboxes (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    mailbox    TEXT    NOT NULL,
    arrived_at INTEGER NOT NULL,
    PRIMARY KEY (message_id, mailbox)
);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   INTEGER NOT NULL REFERENCES messages(id),
    name         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    content      BLOB    NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    address   TEXT    NOT NULL,
    name      TEXT,
    role      TEXT    NOT NULL,              -- requester, to, cc, agent
    PRIMARY KEY (ticket_id, address)
);

CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,              -- system, rule:NAME, mailbox:NAME, agent:NAME, customer:ADDR
    kind      TEXT    NOT NULL,              -- created, routed, state, mail_queued, ...
    detail    TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_ticket ON events(ticket_id);

CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox     TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    raw         BLOB    NOT NULL,
    raw_sha256  TEXT    NOT NULL UNIQUE,
    size        INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'held', -- held, released
    ticket_id   INTEGER REFERENCES tickets(id),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id       INTEGER REFERENCES tickets(id),
    kind            TEXT    NOT NULL,        -- acknowledgement, notification, reply, ...
    message_id      TEXT    NOT NULL UNIQUE, -- ours, without brackets
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL,        -- comma-separated envelope recipients
    raw             BLOB    NOT NULL,        -- the complete RFC 5322 message
    status          TEXT    NOT NULL DEFAULT 'queued', -- queued, sent, failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
