-- Full-text search (issue 14): one index of what people wrote and of how a
-- ticket is known, kept by triggers in the transaction of the row they
-- index, so the index is never behind or ahead of the data and no writer
-- has to remember it. Keep in step with ../postgres/0011_search.sql: same
-- table, same columns, same documents.
--
-- One document per:
--   ticket:            who = requester and participants (addresses and
--                      names), subject, body = the extracted keys
--                      ("order 75321");
--   message:           who = sender, subject, body = the text;
--                                   mail from people only: not robots'
--                                   (messages.automatic), and of ours only
--                                   what agents wrote (outbox kind reply or
--                                   update), never the acknowledgements and
--                                   notifications, whose boilerplate ("el N°
--                                   de pedido") would match every ticket;
--   internal comment:  who = the agent, body.
-- The id (FTS5's rowid) is computed from the row: ticket id * 2^32, plus
-- message id * 4 + 1 or comment (event) id * 4 + 2. So a document is
-- replaced or deleted by its rowid (a lookup, where a condition on an
-- UNINDEXED column reads them all), the ticket of a match is its rowid
-- >> 32 without reading the document, and the rowid order is the tickets'
-- order, newest last: a search takes the newest matches first and stops
-- (src/store/sql/sqlite.rs). Room for 2^31 tickets and 2^30 messages and
-- history lines.
--
-- unicode61 with remove_diacritics 2 folds case and accents ("notaria"
-- finds "Notaría", "munoz" finds "Muñoz"); '@', '.', '+', '_' separate
-- tokens, so "75321_2" holds the token 75321 and an address is its words.
-- It does not stem: the query turns a word into a prefix of its stem
-- (src/search.rs). A table with content: the excerpts are cut from it.
CREATE VIRTUAL TABLE search_docs USING fts5(
    ticket_id UNINDEXED,
    kind UNINDEXED,          -- ticket, in, out, comment
    who,
    subject,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- How a ticket is known: one row per ticket, read by the triggers for one
-- ticket (each subquery by its primary key).
CREATE VIEW search_ticket_text AS
SELECT t.id AS ticket_id,
       COALESCE(t.requester, '') || ' ' || COALESCE(t.requester_name, '') || ' ' ||
       COALESCE((SELECT group_concat(p.address || ' ' || COALESCE(p.name, ''), ' ')
                 FROM participants p WHERE p.ticket_id = t.id), '') AS who,
       t.subject AS subject,
       COALESCE((SELECT group_concat(k.name || ' ' || k.value, ' ')
                 FROM ticket_keys k WHERE k.ticket_id = t.id), '') AS body
FROM tickets t;

-- The messages people wrote, and the comments: what the triggers and the
-- indexing of an existing database read.
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
       substr(e.actor, instr(e.actor, ':') + 1) AS who, '' AS subject, e.detail AS body
FROM events e WHERE e.kind = 'comment';

CREATE TRIGGER search_ticket_in AFTER INSERT ON tickets BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = NEW.id;
END;
CREATE TRIGGER search_ticket_up AFTER UPDATE OF subject, requester, requester_name ON tickets
WHEN OLD.subject IS NOT NEW.subject OR OLD.requester IS NOT NEW.requester
  OR OLD.requester_name IS NOT NEW.requester_name BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = NEW.id;
END;
CREATE TRIGGER search_ticket_out AFTER DELETE ON tickets BEGIN
    DELETE FROM search_docs WHERE rowid = OLD.id * 4294967296;
END;
CREATE TRIGGER search_key_in AFTER INSERT ON ticket_keys BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = NEW.ticket_id;
END;
CREATE TRIGGER search_key_out AFTER DELETE ON ticket_keys BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = OLD.ticket_id;
END;
CREATE TRIGGER search_participant_in AFTER INSERT ON participants BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = NEW.ticket_id;
END;
CREATE TRIGGER search_message_in AFTER INSERT ON messages BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT doc_id, ticket_id, kind, who, subject, body
    FROM search_message_text WHERE source_id = NEW.id;
END;
CREATE TRIGGER search_message_out AFTER DELETE ON messages BEGIN
    DELETE FROM search_docs WHERE rowid = OLD.ticket_id * 4294967296 + OLD.id * 4 + 1;
END;
CREATE TRIGGER search_comment_in AFTER INSERT ON events WHEN NEW.kind = 'comment' BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT doc_id, ticket_id, kind, who, subject, body
    FROM search_comment_text WHERE source_id = NEW.id;
END;
CREATE TRIGGER search_comment_out AFTER DELETE ON events WHEN OLD.kind = 'comment' BEGIN
    DELETE FROM search_docs WHERE rowid = OLD.ticket_id * 4294967296 + OLD.id * 4 + 2;
END;

-- An existing database: everything it holds, indexed once.
INSERT INTO search_docs (rowid, ticket_id, kind, who, subject, body)
SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body FROM search_ticket_text;
INSERT INTO search_docs (rowid, ticket_id, kind, who, subject, body)
SELECT doc_id, ticket_id, kind, who, subject, body FROM search_message_text;
INSERT INTO search_docs (rowid, ticket_id, kind, who, subject, body)
SELECT doc_id, ticket_id, kind, who, subject, body FROM search_comment_text;
