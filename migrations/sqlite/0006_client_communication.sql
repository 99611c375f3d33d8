-- Client communication (seed 002): document requests form a checklist on the
-- ticket; an internal ticket is never mailed to the client.
ALTER TABLE tickets ADD COLUMN internal INTEGER NOT NULL DEFAULT 0;

CREATE TABLE document_requests (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id    INTEGER NOT NULL REFERENCES tickets(id),
    item         TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'requested', -- requested, received
    requested_at INTEGER NOT NULL,
    received_at  INTEGER
);
CREATE INDEX document_requests_ticket ON document_requests(ticket_id);
