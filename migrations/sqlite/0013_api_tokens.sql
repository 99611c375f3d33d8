-- The JSON API (issue 16): people's API tokens. The database keeps the
-- SHA-256 of the token, never the token itself (shown once by `buzon token
-- create`), and its first characters (`hint`) so that `buzon token list`
-- can tell them apart. A token acts as its person; it stops working when
-- it expires, is revoked, or its person leaves [people].
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   TEXT    NOT NULL UNIQUE,
    hint         TEXT    NOT NULL,
    person       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    -- NULL: never expires.
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_tokens_person ON api_tokens(person);
