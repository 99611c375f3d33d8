-- An outgoing mail's bytes are stored once (issue 18): as its ticket's
-- outgoing message, whose Message-ID its outbox row shares; the outbox
-- row's `raw` is then empty (src/store/sql/outbox.rs, STORED_AS_MESSAGE).
-- Before, every acknowledgement was written twice, a fifth of the bytes a
-- new mail writes. Rows written before keep their own bytes.
--
-- This migration also keeps an older buzon away from such a database: it
-- refuses a migration it does not know, where it would have sent an empty
-- mail. Keep in step with ../sqlite/0018_outbox_bytes_once.sql.
--
-- `outbox_mail`: every outbox row with the bytes that are sent, for
-- whoever reads the database by hand (`SELECT raw FROM outbox_mail WHERE
-- id = 12`). buzon reads them with the same expression (OUTBOX_COLUMNS).
CREATE VIEW outbox_mail AS
SELECT o.id, o.ticket_id, o.kind, o.message_id, o.status,
       CASE WHEN length(o.raw) = 0 THEN (SELECT m.raw FROM messages m
            WHERE m.message_id = o.message_id AND m.direction = 'out' LIMIT 1)
       ELSE o.raw END AS raw
FROM outbox o;
