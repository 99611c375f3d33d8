-- Lifecycle: when a ticket was last closed (the reopen window counts from it).
ALTER TABLE tickets ADD COLUMN closed_at BIGINT;
CREATE INDEX ticket_keys_value ON ticket_keys(value);

-- Deployment-wide values the daemon creates once (e.g. the key that signs
-- our Message-IDs).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
