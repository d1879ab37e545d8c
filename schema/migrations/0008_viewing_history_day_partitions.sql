-- 0008: viewing_history's month partitions are split into day partitions, and its session and
-- profile ids compare in the "C" collation.
--
-- Why: loading a day into a month partition that already holds other days maintained two text
-- b-trees row by row (33k rows/s at 2 cores, benchmarks/product_bench.py). The loader
-- (netflix_assets/product/viewing.py) now builds the day's partition aside: COPY FREEZE into a
-- table created in its transaction, each index built by one sort, then the old day dropped and
-- the new one attached. The "C" collation (byte order) halves those index builds: the
-- database's C.UTF-8 compares through strcoll and sorts without abbreviated keys. Ids need no
-- linguistic order, and equality is the same in both collations.
--
-- The rows move into the new table; the two views over it are dropped and made again as in 0003.
DROP MATERIALIZED VIEW product.top_titles_by_country;
DROP MATERIALIZED VIEW product.profile_engagement;

DO $$
DECLARE
    months date[];
    m date;
    d date;
BEGIN
    SELECT coalesce(array_agg(to_date(right(c.relname, 7), 'YYYY_MM') ORDER BY c.relname), '{}')
      INTO months
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'product.viewing_history'::regclass;

    CREATE TABLE product.viewing_history_moving AS TABLE product.viewing_history;
    DROP TABLE product.viewing_history;

    CREATE TABLE product.viewing_history (
        session_id    text COLLATE "C" NOT NULL,
        session_date  date NOT NULL,
        started_at    timestamptz NOT NULL,
        account_id    text NOT NULL,
        profile_id    text COLLATE "C" NOT NULL,
        title_id      text NOT NULL,
        device        text,
        country       text,
        watched_ms    bigint NOT NULL
            CONSTRAINT viewing_history_watched_non_negative CHECK (watched_ms >= 0),
        completed     boolean NOT NULL,
        PRIMARY KEY (session_id, started_at)
    ) PARTITION BY RANGE (started_at);
    CREATE INDEX viewing_history_profile_recent
        ON product.viewing_history (profile_id, started_at DESC);

    FOREACH m IN ARRAY months LOOP
        EXECUTE format(
            'CREATE TABLE product.%I PARTITION OF product.viewing_history '
            'FOR VALUES FROM (%L) TO (%L) PARTITION BY RANGE (started_at)',
            'viewing_history_' || to_char(m, 'YYYY_MM'),
            m || ' 00:00:00+00', (m + interval '1 month')::date || ' 00:00:00+00');
    END LOOP;
    FOR d IN
        SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date FROM product.viewing_history_moving
    LOOP
        EXECUTE format(
            'CREATE TABLE product.%I PARTITION OF product.%I FOR VALUES FROM (%L) TO (%L)',
            'viewing_history_' || to_char(d, 'YYYY_MM_DD'), 'viewing_history_' || to_char(d, 'YYYY_MM'),
            d || ' 00:00:00+00', (d + 1) || ' 00:00:00+00');
    END LOOP;

    INSERT INTO product.viewing_history (session_id, session_date, started_at, account_id,
                                         profile_id, title_id, device, country, watched_ms,
                                         completed)
    SELECT session_id, session_date, started_at, account_id, profile_id, title_id, device,
           country, watched_ms, completed
      FROM product.viewing_history_moving;
    DROP TABLE product.viewing_history_moving;
END
$$;

-- As in 0003.
CREATE MATERIALIZED VIEW product.top_titles_by_country AS
SELECT country, title_id, views, watch_hours, rank
FROM (
    SELECT country, title_id, count(*) AS views,
           round(sum(watched_ms) / 3600000.0, 2) AS watch_hours,
           row_number() OVER (PARTITION BY country ORDER BY count(*) DESC, title_id) AS rank
    FROM product.viewing_history
    WHERE country IS NOT NULL
    GROUP BY country, title_id
) ranked
WHERE rank <= 10;
CREATE UNIQUE INDEX top_titles_by_country_key ON product.top_titles_by_country (country, rank);

CREATE MATERIALIZED VIEW product.profile_engagement AS
SELECT profile_id, account_id, count(*) AS sessions, count(DISTINCT title_id) AS titles,
       round(sum(watched_ms) / 3600000.0, 2) AS watch_hours,
       avg(completed::int)::numeric(5, 4) AS completion_rate,
       max(started_at) AS last_viewed_at
FROM product.viewing_history
GROUP BY profile_id, account_id;
CREATE UNIQUE INDEX profile_engagement_key ON product.profile_engagement (profile_id, account_id);
