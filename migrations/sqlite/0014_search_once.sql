-- The search index at intake (issue 14): a new ticket's document is written
-- once, not once more for its requester. Keep in step with
-- ../postgres/0014_search_once.sql.
--
-- A ticket's document already holds its requester (address and name, from
-- the ticket's row); the participant row of that same address and name,
-- which every new mail's ticket gets at its batch's commit, added nothing
-- but rewrote the document (on FTS5, a replace reads the old words out
-- again): a third of the index's writes at intake. Such a participant is
-- now left out of the document, by the view the triggers read and by the
-- trigger on participants alike, so a document is the same whichever
-- wrote it. Documents written before hold the requester twice; a search
-- finds the same tickets in them, so they are not rewritten.
DROP VIEW search_ticket_text;
CREATE VIEW search_ticket_text AS
SELECT t.id AS ticket_id,
       COALESCE(t.requester, '') || ' ' || COALESCE(t.requester_name, '') || ' ' ||
       COALESCE((SELECT group_concat(p.address || ' ' || COALESCE(p.name, ''), ' ')
                 FROM participants p WHERE p.ticket_id = t.id
                 AND NOT (p.address IS t.requester AND p.name IS t.requester_name)), '') AS who,
       t.subject AS subject,
       COALESCE((SELECT group_concat(k.name || ' ' || k.value, ' ')
                 FROM ticket_keys k WHERE k.ticket_id = t.id), '') AS body
FROM tickets t;

DROP TRIGGER search_participant_in;
CREATE TRIGGER search_participant_in AFTER INSERT ON participants
WHEN NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = NEW.ticket_id
                 AND t.requester IS NEW.address AND t.requester_name IS NEW.name) BEGIN
    INSERT OR REPLACE INTO search_docs (rowid, ticket_id, kind, who, subject, body)
    SELECT ticket_id * 4294967296, ticket_id, 'ticket', who, subject, body
    FROM search_ticket_text WHERE ticket_id = NEW.ticket_id;
END;
