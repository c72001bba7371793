-- Issue 10: the outbox history (events, their deliveries, the attempts) is partitioned by the
-- month of its event (UTC calendar months of `events.created`), so that retention drops a whole
-- month at once instead of deleting rows, and a time-bounded event list reads only its months.
-- A delivery and its attempts carry their event's `created` (`event_created`): an event and
-- everything about it live in the same month, and are dropped together.
--
-- A partitioned table's unique keys must include the partition key: the primary keys become
-- (seq, month key) — seq still comes from one sequence per table, so it stays unique — and
-- event ids (random, 24 base62 characters) are indexed per month without a database-wide unique
-- key. A `DEFAULT` partition takes any row whose month has no partition yet (a worker that did
-- not run for months, a clock far off), so an insert never fails for want of a partition.

-- The old tables give way; their rows are copied below, then they are dropped.
ALTER TABLE events RENAME TO events_unpartitioned;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_pkey TO events_unpartitioned_pkey;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_id_key TO events_unpartitioned_id_key;
DROP INDEX events_scope_seq;
ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER TABLE deliveries_unpartitioned RENAME CONSTRAINT deliveries_pkey TO deliveries_unpartitioned_pkey;
DROP INDEX deliveries_due, deliveries_event, deliveries_pending_created;
ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
ALTER TABLE delivery_attempts_unpartitioned
    RENAME CONSTRAINT delivery_attempts_pkey TO delivery_attempts_unpartitioned_pkey;
DROP INDEX delivery_attempts_delivery;

CREATE TABLE events (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    id TEXT NOT NULL,
    app_id TEXT NOT NULL,
    livemode BOOLEAN NOT NULL,
    created BIGINT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (seq, created)
) PARTITION BY RANGE (created);
CREATE INDEX events_id ON events (id);
CREATE INDEX events_scope_seq ON events (app_id, livemode, seq);

CREATE TABLE deliveries (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    event_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    created BIGINT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    -- A worker owns a claimed delivery until then; after a crash the lease simply runs out.
    lease_until BIGINT,
    event_created BIGINT NOT NULL,
    PRIMARY KEY (seq, event_created)
) PARTITION BY RANGE (event_created);
CREATE INDEX deliveries_event ON deliveries (event_id);
-- The claim walks the endpoints that have pending deliveries and, per endpoint, its due ones in
-- order; what it reads grows with the batch and those endpoints, never with the backlog.
CREATE INDEX deliveries_ready ON deliveries (endpoint_id, next_attempt_at, seq) WHERE status = 'pending';
-- The leases an endpoint has out, counted against its limit.
CREATE INDEX deliveries_leased ON deliveries (endpoint_id, lease_until)
    WHERE status = 'pending' AND lease_until IS NOT NULL;
-- The outbox figures for /metrics (pending count, oldest pending) read only pending rows.
CREATE INDEX deliveries_pending_created ON deliveries (created) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    delivery_seq BIGINT NOT NULL,
    attempted_at BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms BIGINT NOT NULL,
    error TEXT,
    response_snippet TEXT,
    event_created BIGINT NOT NULL,
    PRIMARY KEY (seq, event_created)
) PARTITION BY RANGE (event_created);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_seq);

CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT;
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;
-- Retention deletes rows of the default partitions in batches, oldest first (months are dropped).
CREATE INDEX events_default_created ON events_default (created);

-- The monthly partitions that exist: [month_start, month_end) in unix seconds.
CREATE TABLE outbox_months (
    month_start BIGINT PRIMARY KEY,
    month_end BIGINT NOT NULL
);

-- Creates the partitions of the months from the one holding `at` to `ahead` months after it
-- (those missing); returns how many months it created. Rows of such a month already in a default
-- partition move into the new partition. A partition is made as a plain table and attached,
-- which takes only a SHARE UPDATE EXCLUSIVE lock on the parent: inserts and reads go on (the
-- default partition is locked while its rows move, and it is meant to stay nearly empty).
-- Callers at once are serialised by an advisory lock.
CREATE FUNCTION paygate_outbox_months(at BIGINT, ahead BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    first_month TIMESTAMP := date_trunc('month', to_timestamp(at) AT TIME ZONE 'UTC');
    month TIMESTAMP;
    lo BIGINT;
    hi BIGINT;
    part TEXT;
    made BIGINT := 0;
    t RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(31632371444970598);
    FOR i IN 0..ahead LOOP
        month := first_month + make_interval(months => i);
        lo := extract(epoch FROM month AT TIME ZONE 'UTC')::BIGINT;
        hi := extract(epoch FROM (month + INTERVAL '1 month') AT TIME ZONE 'UTC')::BIGINT;
        CONTINUE WHEN EXISTS (SELECT 1 FROM outbox_months WHERE month_start = lo);
        FOR t IN SELECT * FROM (VALUES ('events', 'created'), ('deliveries', 'event_created'),
                ('delivery_attempts', 'event_created')) AS v(tab, col) LOOP
            part := t.tab || '_' || to_char(month, 'YYYYMM');
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, t.tab);
            -- The partition bound as a constraint: ATTACH then need not scan the new table.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= %s AND %I < %s)',
                part, part || '_month', t.col, lo, t.col, hi);
            EXECUTE format('WITH moved AS (DELETE FROM %I WHERE %I >= %s AND %I < %s RETURNING *) '
                'INSERT INTO %I SELECT * FROM moved', t.tab || '_default', t.col, lo, t.col, hi, part);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%s) TO (%s)', t.tab, part, lo, hi);
            EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', part, part || '_month');
        END LOOP;
        INSERT INTO outbox_months (month_start, month_end) VALUES (lo, hi);
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Drops the month starting at `start` (its events, deliveries and attempts) unless one of its
-- deliveries is still pending; true when dropped. A month with pending deliveries is let be
-- without taking any lock; otherwise the three tables are locked and the check made again, so
-- nothing is added to the month between the check and the drop. The caller bounds the wait with
-- lock_timeout: a drop takes an ACCESS EXCLUSIVE lock on the parents, briefly.
CREATE FUNCTION paygate_outbox_drop_month(start BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    suffix TEXT := to_char(to_timestamp(start) AT TIME ZONE 'UTC', 'YYYYMM');
    pending BOOLEAN;
BEGIN
    PERFORM 1 FROM outbox_months WHERE month_start = start FOR UPDATE;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status = ''pending'')', 'deliveries_' || suffix)
        INTO pending;
    IF pending THEN
        RETURN FALSE;
    END IF;
    LOCK TABLE events, deliveries, delivery_attempts IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status = ''pending'')', 'deliveries_' || suffix)
        INTO pending;
    IF pending THEN
        RETURN FALSE;
    END IF;
    EXECUTE format('DROP TABLE %I, %I, %I', 'delivery_attempts_' || suffix, 'deliveries_' || suffix,
        'events_' || suffix);
    DELETE FROM outbox_months WHERE month_start = start;
    RETURN TRUE;
END $$;

-- The months of the rows already stored, and the current month with the two after it (the
-- worker keeps creating months ahead; see paygate-worker's upkeep).
SELECT paygate_outbox_months(m.at, 0) FROM (
    SELECT MIN(created) AS at FROM events_unpartitioned
    GROUP BY date_trunc('month', to_timestamp(created) AT TIME ZONE 'UTC')
) AS m;
SELECT paygate_outbox_months(extract(epoch FROM now())::BIGINT, 2);

-- Existing rows keep their seq (cursors compare it); a delivery's month is its event's (a delivery
-- whose event is missing keeps its own `created`), an attempt's its delivery's.
INSERT INTO events (seq, id, app_id, livemode, created, type, data) OVERRIDING SYSTEM VALUE
    SELECT seq, id, app_id, livemode, created, type, data FROM events_unpartitioned;
INSERT INTO deliveries (seq, event_id, endpoint_id, created, status, attempts, next_attempt_at, lease_until,
        event_created) OVERRIDING SYSTEM VALUE
    SELECT d.seq, d.event_id, d.endpoint_id, d.created, d.status, d.attempts, d.next_attempt_at, d.lease_until,
        COALESCE(e.created, d.created)
    FROM deliveries_unpartitioned d LEFT JOIN events_unpartitioned e ON e.id = d.event_id;
INSERT INTO delivery_attempts (seq, delivery_seq, attempted_at, status_code, latency_ms, error, response_snippet,
        event_created) OVERRIDING SYSTEM VALUE
    SELECT a.seq, a.delivery_seq, a.attempted_at, a.status_code, a.latency_ms, a.error, a.response_snippet,
        COALESCE(d.event_created, a.attempted_at)
    FROM delivery_attempts_unpartitioned a LEFT JOIN deliveries d ON d.seq = a.delivery_seq;
DO $$
BEGIN
    EXECUTE format('ALTER TABLE events ALTER COLUMN seq RESTART WITH %s',
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM events_unpartitioned));
    EXECUTE format('ALTER TABLE deliveries ALTER COLUMN seq RESTART WITH %s',
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM deliveries_unpartitioned));
    EXECUTE format('ALTER TABLE delivery_attempts ALTER COLUMN seq RESTART WITH %s',
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM delivery_attempts_unpartitioned));
END $$;
DROP TABLE events_unpartitioned, deliveries_unpartitioned, delivery_attempts_unpartitioned;
