-- Full-text search (issue 14): one index of what people wrote and of how a
-- ticket is known, kept by triggers in the transaction of the row they
-- index, so the index is never behind or ahead of the data and no writer
-- has to remember it. Keep in step with ../sqlite/0011_search.sql: same
-- table, same columns, same documents (the documents are described there).
--
-- Words are folded by a Spanish configuration that removes accents first
-- (unaccent, then the Spanish stemmer and stop words): "notaria" finds
-- "Notaría", "observados" finds "observado". unaccent is in PostgreSQL's
-- contrib (Debian: in the postgresql-NN package); it is a trusted
-- extension, so the owner of the database may create it without being a
-- superuser (README, "Búsqueda").
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION buzon_es (COPY = pg_catalog.spanish);
ALTER TEXT SEARCH CONFIGURATION buzon_es
    ALTER MAPPING FOR hword, hword_part, word WITH unaccent, spanish_stem;

-- Text is searched by its words, as on SQLite: PostgreSQL's parser would
-- keep "ana.munoz@correo.cl" whole and skip what looks like an HTML tag
-- ("Ana <ana@correo.cl> escribió").
CREATE FUNCTION search_words(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT translate($1, '@.+_-<>', '       ') $$;

CREATE TABLE search_docs (
    doc_id    BIGINT PRIMARY KEY,     -- ticket id * 2^32 (+ message id * 4 + 1, event id * 4 + 2): as on SQLite
    ticket_id BIGINT NOT NULL,
    kind      TEXT   NOT NULL,        -- ticket, in, out, comment
    who       TEXT   NOT NULL,
    subject   TEXT   NOT NULL,
    body      TEXT   NOT NULL,
    -- PostgreSQL only: the words, computed once (ranking reads them for
    -- every match); SQLite's FTS5 keeps its own.
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('buzon_es'::regconfig, search_words(who)), 'B') ||
        setweight(to_tsvector('buzon_es'::regconfig, search_words(subject)), 'A') ||
        to_tsvector('buzon_es'::regconfig, search_words(body))) STORED
);
CREATE INDEX search_docs_words ON search_docs USING GIN (tsv);

CREATE VIEW search_ticket_text AS
SELECT t.id AS ticket_id,
       COALESCE(t.requester, '') || ' ' || COALESCE(t.requester_name, '') || ' ' ||
       COALESCE((SELECT string_agg(p.address || ' ' || COALESCE(p.name, ''), ' ')
                 FROM participants p WHERE p.ticket_id = t.id), '') AS who,
       t.subject AS subject,
       COALESCE((SELECT string_agg(k.name || ' ' || k.value, ' ')
                 FROM ticket_keys k WHERE k.ticket_id = t.id), '') AS body
FROM tickets t;

CREATE VIEW search_message_text AS
SELECT m.ticket_id * 4294967296 + m.id * 4 + 1 AS doc_id, m.id AS source_id, m.ticket_id, m.direction AS kind,
       COALESCE(m.from_addr, '') || ' ' || COALESCE(m.from_name, '') AS who,
       m.subject, m.body_text AS body
FROM messages m
WHERE (m.direction = 'in' AND m.automatic IS NULL)
   OR (m.direction = 'out' AND EXISTS (SELECT 1 FROM outbox o
        WHERE o.message_id = m.message_id AND o.kind IN ('reply', 'update')));

CREATE VIEW search_comment_text AS
SELECT e.ticket_id * 4294967296 + e.id * 4 + 2 AS doc_id, e.id AS source_id, e.ticket_id, 'comment' AS kind,
       substr(e.actor, strpos(e.actor, ':') + 1) AS who, '' AS subject, e.detail AS body
FROM events e WHERE e.kind = 'comment';

-- One function for every trigger, in PL/pgSQL, whose statements are
-- planned once per connection (a SQL function called from it is planned
-- at every call: four times slower intake in benches/imap_drain.sh).
CREATE FUNCTION search_index_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ticket BIGINT;
BEGIN
    IF TG_TABLE_NAME = 'tickets' THEN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM search_docs WHERE doc_id = OLD.id * 4294967296;
            RETURN NULL;
        END IF;
        ticket := NEW.id;
    ELSIF TG_TABLE_NAME IN ('ticket_keys', 'participants') THEN
        IF TG_OP = 'DELETE' THEN
            ticket := OLD.ticket_id;
        ELSE
            ticket := NEW.ticket_id;
        END IF;
    ELSIF TG_TABLE_NAME = 'messages' THEN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM search_docs WHERE doc_id = OLD.ticket_id * 4294967296 + OLD.id * 4 + 1;
        ELSE
            INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
            SELECT doc_id, ticket_id, kind, who, subject, body
            FROM search_message_text WHERE source_id = NEW.id
            ON CONFLICT (doc_id) DO NOTHING;
        END IF;
        RETURN NULL;
    ELSIF TG_TABLE_NAME = 'events' THEN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM search_docs WHERE doc_id = OLD.ticket_id * 4294967296 + OLD.id * 4 + 2;
        ELSE
            INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
            SELECT doc_id, ticket_id, kind, who, subject, body
            FROM search_comment_text WHERE source_id = NEW.id
            ON CONFLICT (doc_id) DO NOTHING;
        END IF;
        RETURN NULL;
    END IF;
    -- How the ticket is known (its contact, subject and keys), written again.
    INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
    SELECT v.ticket_id * 4294967296, v.ticket_id, 'ticket', v.who, v.subject, v.body
    FROM search_ticket_text v WHERE v.ticket_id = ticket
    ON CONFLICT (doc_id) DO UPDATE
    SET who = EXCLUDED.who, subject = EXCLUDED.subject, body = EXCLUDED.body;
    RETURN NULL;
END;
$$;

CREATE TRIGGER search_ticket_in AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_ticket_up AFTER UPDATE OF subject, requester, requester_name ON tickets
    FOR EACH ROW WHEN (OLD.subject IS DISTINCT FROM NEW.subject
        OR OLD.requester IS DISTINCT FROM NEW.requester
        OR OLD.requester_name IS DISTINCT FROM NEW.requester_name)
    EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_ticket_out AFTER DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_key_in_out AFTER INSERT OR DELETE ON ticket_keys
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_participant_in AFTER INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_message_in_out AFTER INSERT OR DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_comment_in AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.kind = 'comment') EXECUTE FUNCTION search_index_row();
CREATE TRIGGER search_comment_out AFTER DELETE ON events
    FOR EACH ROW WHEN (OLD.kind = 'comment') EXECUTE FUNCTION search_index_row();

-- An existing database: everything it holds, indexed once.
INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body FROM search_ticket_text;
INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
SELECT doc_id, ticket_id, kind, who, subject, body FROM search_message_text;
INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
SELECT doc_id, ticket_id, kind, who, subject, body FROM search_comment_text;
