-- The event store: every fact, once.  Inserts are idempotent on event_id.
CREATE TABLE IF NOT EXISTS events (
    time            timestamptz NOT NULL,
    event_id        text        NOT NULL PRIMARY KEY,
    topic           text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text,
    seq             integer     NOT NULL CHECK (seq >= 1),
    version         integer     NOT NULL,
    payload         jsonb       NOT NULL
);
-- Not unique on purpose: two different events with one seq would be a bug the tests must see,
-- not one the store hides.
CREATE INDEX IF NOT EXISTS events_correlation_seq ON events (correlation_id, seq);
CREATE INDEX IF NOT EXISTS events_topic_time ON events (topic, time);
