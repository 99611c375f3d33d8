-- Who holds a claimed outbox row or webhook delivery (issue 18): the
-- daemon's instance name (see `instance`). A daemon started again under
-- the same name gives back, at start, the leases its previous process left
-- (killed in the middle of a round) instead of waiting for them to expire;
-- another instance's leases stay as they are.
ALTER TABLE outbox ADD COLUMN lease_holder TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_holder TEXT;

-- A large backlog (issue 18): the claims' "an earlier mail of this ticket
-- is still queued" check finds its rows by ticket (the deliveries' has
-- webhook_deliveries_order), and the claims walk the queue in id order and
-- stop at their limit instead of sorting every due row on each claim.
CREATE INDEX outbox_order ON outbox(ticket_id, status, id);
CREATE INDEX outbox_queue ON outbox(status, id);
CREATE INDEX webhook_deliveries_queue ON webhook_deliveries(status, event_id);
