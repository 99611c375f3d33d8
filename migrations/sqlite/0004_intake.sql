-- IMAP intake: where each folder's drain stands, and which instance works it.

-- The last UID stored per folder, valid for one UIDVALIDITY. A different
-- UIDVALIDITY means the server renumbered the folder: start over (dedupe by
-- Message-ID/raw hash keeps that from creating a single duplicate).
CREATE TABLE imap_checkpoints (
    account     TEXT    NOT NULL,
    folder      TEXT    NOT NULL,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (account, folder)
);

-- One instance works a folder at a time; a lease not renewed in time can be
-- taken over by another instance.
CREATE TABLE folder_leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    lease_until INTEGER NOT NULL
);
