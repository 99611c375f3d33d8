-- Outbound mail: the per-recipient limit on automatic mail, and manual requeues.

-- One row per recipient of every automatic mail queued (acknowledgements,
-- notifications, closing messages). Counting the last hour's rows for an
-- address is what stops a loop with a robot that classify did not catch.
CREATE TABLE auto_mail_log (
    address   TEXT    NOT NULL,             -- lowercased
    outbox_id INTEGER NOT NULL REFERENCES outbox(id),
    queued_at INTEGER NOT NULL
);
CREATE INDEX auto_mail_log_recent ON auto_mail_log(address, queued_at);

-- `buzon outbox retry ID`: the maximum age counts again from here.
ALTER TABLE outbox ADD COLUMN requeued_at INTEGER;
