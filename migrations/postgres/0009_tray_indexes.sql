-- The web tray at 100,000 tickets (issue 12, benches/web_tray.sh): a list
-- in the default order (most recent activity first) over every state reads
-- this index backwards and stops at the page (the tickets in progress come
-- from tickets_state), and a person's tickets per state (the header's badge,
-- "mis tickets") are counted from the index alone. The owner is compared
-- ignoring case, so the index holds it lowercased. A person's open alerts
-- (the badge again) start from their tickets: owner as it is.
CREATE INDEX tickets_activity ON tickets(updated_at);
CREATE INDEX tickets_owner_state ON tickets(LOWER(owner), state);
CREATE INDEX tickets_owner ON tickets(owner);
