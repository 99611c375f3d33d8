-- Agents answering by mail (issue 13): an agent's reply to a notification
-- is kept on its ticket and queued here as a job of steps (its commands,
-- then the reply). Each step is counted in the transaction of its change,
-- so a crash at any point neither loses nor repeats one.
CREATE TABLE staff_mail_jobs (
    message_key TEXT    PRIMARY KEY, -- the dedupe key of the agent's mail
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    person      TEXT    NOT NULL,
    steps_done  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    done_at     INTEGER
);
CREATE INDEX staff_mail_jobs_pending ON staff_mail_jobs(done_at);
