-- The web workspace (issue 12): people's passwords (argon2id hashes),
-- sessions (the SHA-256 of the cookie, never the cookie itself) and failed
-- logins, counted per person and per address to slow down guessing.
CREATE TABLE staff_passwords (
    person     TEXT    PRIMARY KEY,
    hash       TEXT    NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE TABLE web_sessions (
    id_hash    TEXT    PRIMARY KEY,
    person     TEXT    NOT NULL,
    csrf       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX web_sessions_person ON web_sessions(person);

CREATE TABLE login_failures (
    id      BIGSERIAL PRIMARY KEY,
    person  TEXT    NOT NULL,
    address TEXT    NOT NULL,
    at      BIGINT  NOT NULL
);
CREATE INDEX login_failures_person ON login_failures(person, at);
CREATE INDEX login_failures_address ON login_failures(address, at);
