-- Operator actions (a dead letter re-driven; later the kill switch): events in the same
-- envelope as `events`, kept in a table of their own because `sep replay` applies every row
-- of `events` to the intents' read models, and an operator's action is not a fact of an intent.
CREATE TABLE IF NOT EXISTS operator_events (
    time            timestamptz NOT NULL,
    event_id        text        NOT NULL PRIMARY KEY,
    topic           text        NOT NULL,
    correlation_id  text        NOT NULL,
    causation_id    text,
    seq             integer     NOT NULL CHECK (seq >= 1),
    version         integer     NOT NULL,
    payload         jsonb       NOT NULL,
    stored_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS operator_events_topic_time ON operator_events (topic, time);
