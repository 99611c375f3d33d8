-- Deadlines (issue 7): first-response and resolution targets, each counted in
-- calendar or business hours; a paused clock while waiting on the contact;
-- one alert per breach (the unique key is what makes "never twice" hold
-- across restarts and between instances).
ALTER TABLE tickets ADD COLUMN due_business INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN first_response_due_at INTEGER;
ALTER TABLE tickets ADD COLUMN first_response_business INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN first_response_at INTEGER;
ALTER TABLE tickets ADD COLUMN paused_at INTEGER;
CREATE INDEX tickets_due ON tickets(due_at);
CREATE INDEX tickets_first_response_due ON tickets(first_response_due_at);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    target      TEXT    NOT NULL, -- first_response, resolution
    due_at      INTEGER NOT NULL, -- the deadline that was missed
    breached_at INTEGER NOT NULL, -- when buzon noticed
    cleared_at  INTEGER,
    cleared_by  TEXT,             -- what met the target: reply, done, ...
    UNIQUE (ticket_id, target, due_at)
);
CREATE INDEX alerts_open ON alerts(cleared_at);
