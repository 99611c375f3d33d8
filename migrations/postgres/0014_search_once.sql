-- The search index at intake (issue 14): a new ticket's document is written
-- once, not once more for its requester; the participants and keys a
-- statement inserts rewrite each ticket's document once, in one call. Keep
-- in step with ../sqlite/0014_search_once.sql (which explains the
-- requester's row).
CREATE OR REPLACE VIEW search_ticket_text AS
SELECT t.id AS ticket_id,
       COALESCE(t.requester, '') || ' ' || COALESCE(t.requester_name, '') || ' ' ||
       COALESCE((SELECT string_agg(p.address || ' ' || COALESCE(p.name, ''), ' ')
                 FROM participants p WHERE p.ticket_id = t.id
                 AND NOT (p.address IS NOT DISTINCT FROM t.requester
                          AND p.name IS NOT DISTINCT FROM t.requester_name)), '') AS who,
       t.subject AS subject,
       COALESCE((SELECT string_agg(k.name || ' ' || k.value, ' ')
                 FROM ticket_keys k WHERE k.ticket_id = t.id), '') AS body
FROM tickets t;

-- Participants (a batch's, at its commit) and keys (a ticket's) are written
-- many rows a statement: one call for the statement, over the rows it
-- inserted (its transition table, `added`), instead of one per row.
CREATE FUNCTION search_index_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'participants' THEN
        INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
        SELECT v.ticket_id * 4294967296, v.ticket_id, 'ticket', v.who, v.subject, v.body
        FROM search_ticket_text v
        WHERE v.ticket_id IN (
            SELECT a.ticket_id FROM added a JOIN tickets t ON t.id = a.ticket_id
            WHERE a.address IS DISTINCT FROM t.requester
               OR a.name IS DISTINCT FROM t.requester_name)
        ON CONFLICT (doc_id) DO UPDATE
        SET who = EXCLUDED.who, subject = EXCLUDED.subject, body = EXCLUDED.body;
    ELSE
        INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
        SELECT v.ticket_id * 4294967296, v.ticket_id, 'ticket', v.who, v.subject, v.body
        FROM search_ticket_text v
        WHERE v.ticket_id IN (SELECT a.ticket_id FROM added a)
        ON CONFLICT (doc_id) DO UPDATE
        SET who = EXCLUDED.who, subject = EXCLUDED.subject, body = EXCLUDED.body;
    END IF;
    RETURN NULL;
END;
$$;

DROP TRIGGER search_participant_in ON participants;
CREATE TRIGGER search_participant_in AFTER INSERT ON participants
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION search_index_added();
DROP TRIGGER search_key_in_out ON ticket_keys;
CREATE TRIGGER search_key_in AFTER INSERT ON ticket_keys
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION search_index_added();
CREATE TRIGGER search_key_out AFTER DELETE ON ticket_keys
    FOR EACH ROW EXECUTE FUNCTION search_index_row();

-- Messages too, one call a statement: a new mail's message is a statement
-- of its own, but a batch's outgoing messages (its acknowledgements, never
-- indexed, and known not to be only by their outbox rows) are one
-- statement at its commit, a third of the calls before. The documents are
-- read from the inserted rows themselves (`added`), as
-- `search_message_text` defines them: keep the two in step.
CREATE FUNCTION search_index_messages() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
    SELECT a.ticket_id * 4294967296 + a.id * 4 + 1, a.ticket_id, a.direction,
           COALESCE(a.from_addr, '') || ' ' || COALESCE(a.from_name, ''),
           a.subject, a.body_text
    FROM added a
    WHERE (a.direction = 'in' AND a.automatic IS NULL)
       OR (a.direction = 'out' AND EXISTS (SELECT 1 FROM outbox o
            WHERE o.message_id = a.message_id AND o.kind IN ('reply', 'update')))
    ON CONFLICT (doc_id) DO NOTHING;
    RETURN NULL;
END;
$$;

DROP TRIGGER search_message_in_out ON messages;
CREATE TRIGGER search_message_in AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION search_index_messages();
CREATE TRIGGER search_message_out AFTER DELETE ON messages
    FOR EACH ROW EXECUTE FUNCTION search_index_row();
