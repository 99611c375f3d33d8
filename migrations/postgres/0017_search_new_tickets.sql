-- The search index at intake (issue 18): a batch's new tickets get their
-- documents in one call for the statement that inserted them, over its
-- rows (`added`), instead of one PL/pgSQL call and one view lookup per
-- ticket. That per-row call was a sixth of PostgreSQL's time at intake
-- (benches/imap_drain.sh, pg_stat_statements: 10,000 calls, 670 ms).
--
-- The document is written from the inserted rows themselves, as
-- `search_ticket_text` defines it for a ticket that has no participant and
-- no key yet: both reference their ticket, so neither can exist before the
-- ticket's row does. Keep the two in step. The participants and keys
-- added later rewrite it through the view, as before.
--
-- SQLite has no statement-level triggers: its per-row trigger stays, and
-- the documents are the same on both backends.
CREATE FUNCTION search_index_tickets() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_docs (doc_id, ticket_id, kind, who, subject, body)
    SELECT a.id * 4294967296, a.id, 'ticket',
           COALESCE(a.requester, '') || ' ' || COALESCE(a.requester_name, '') || ' ',
           a.subject, ''
    FROM added a
    ON CONFLICT (doc_id) DO UPDATE
    SET who = EXCLUDED.who, subject = EXCLUDED.subject, body = EXCLUDED.body;
    RETURN NULL;
END;
$$;

DROP TRIGGER search_ticket_in ON tickets;
CREATE TRIGGER search_ticket_in AFTER INSERT ON tickets
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION search_index_tickets();
