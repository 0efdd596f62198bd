-- stored_at: when the row reached the store (not when the event happened).  A replay that
-- rebuilds the read models while the pipeline runs catches up on the rows stored after it
-- started.  A constant-per-statement default: adding it does not rewrite the table.
ALTER TABLE events ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS events_stored_at ON events USING brin (stored_at);

-- TimescaleDB when the server has it; plain PostgreSQL otherwise (`sep status` says which).
-- A hypertable's unique indexes must include its time column, so the primary key becomes
-- (event_id, time); EventStore then guards its insert with NOT EXISTS on event_id, since an
-- event re-emitted after a crash may carry a different timestamp.
DO $$
BEGIN
    -- Available *and* preloaded: CREATE EXTENSION fails without shared_preload_libraries.
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        ALTER TABLE events DROP CONSTRAINT IF EXISTS events_pkey;
        ALTER TABLE events ADD PRIMARY KEY (event_id, time);
        PERFORM create_hypertable('events', 'time', migrate_data => true,
                                  if_not_exists => true);
    END IF;
END
$$;
