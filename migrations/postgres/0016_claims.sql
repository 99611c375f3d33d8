-- Who holds a claimed outbox row or webhook delivery (issue 18): the
-- daemon's instance name (see `instance`). A daemon started again under
-- the same name gives back, at start, the leases its previous process left
-- (killed in the middle of a round) instead of waiting for them to expire;
-- another instance's leases stay as they are.
ALTER TABLE outbox ADD COLUMN lease_holder TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN lease_holder TEXT;
