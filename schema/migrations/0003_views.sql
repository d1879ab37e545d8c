-- 0003: materialized views the analysts and the assets read; each has a unique index so the
-- refresh assets can run REFRESH MATERIALIZED VIEW CONCURRENTLY (readers are never blocked).

-- Revenue and MRR per day, plan, country and currency, for the days billing has run.
-- MRR counts a subscription on day d when it is live at the end of d and out of its trial;
-- revenue is what paid invoices collected that day (by paid_at, UTC).
CREATE MATERIALIZED VIEW product.revenue_daily AS
WITH days AS (
    SELECT generate_series(min(billing_date), max(billing_date), interval '1 day')::date AS day
    FROM product.invoices
),
live AS (
    SELECT d.day, s.plan_id, a.country, s.currency, count(*) AS subscriptions,
           sum(p.amount_cents) AS mrr_cents
    FROM days d
    JOIN product.subscriptions s
      ON s.started_at < (d.day + 1)::timestamp AT TIME ZONE 'UTC'
     AND (s.ended_at IS NULL OR s.ended_at >= (d.day + 1)::timestamp AT TIME ZONE 'UTC')
     AND (s.trial_end IS NULL OR s.trial_end < (d.day + 1)::timestamp AT TIME ZONE 'UTC')
     AND s.status <> 'unpaid'
    JOIN product.accounts a ON a.account_id = s.account_id
    JOIN product.plan_prices p ON p.plan_id = s.plan_id AND p.currency = s.currency
    GROUP BY 1, 2, 3, 4
),
paid AS (
    SELECT (i.paid_at AT TIME ZONE 'UTC')::date AS day, s.plan_id, a.country, i.currency,
           sum(i.amount_due_cents) AS revenue_cents, count(*) AS paid_invoices
    FROM product.invoices i
    JOIN product.subscriptions s ON s.subscription_id = i.subscription_id
    JOIN product.accounts a ON a.account_id = i.account_id
    WHERE i.status = 'paid'
    GROUP BY 1, 2, 3, 4
)
SELECT day, plan_id, country, currency,
       coalesce(live.subscriptions, 0) AS subscriptions,
       coalesce(live.mrr_cents, 0) AS mrr_cents,
       coalesce(paid.revenue_cents, 0) AS revenue_cents,
       coalesce(paid.paid_invoices, 0) AS paid_invoices
FROM live FULL JOIN paid USING (day, plan_id, country, currency);
CREATE UNIQUE INDEX revenue_daily_key ON product.revenue_daily (day, plan_id, country, currency);

-- The ten most watched titles per country over the viewing history.
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

-- Engagement per profile over the viewing history.
CREATE MATERIALIZED VIEW product.profile_engagement AS
SELECT profile_id, account_id, count(*) AS sessions, count(DISTINCT title_id) AS titles,
       round(sum(watched_ms) / 3600000.0, 2) AS watch_hours,
       avg(completed::int)::numeric(5, 4) AS completion_rate,
       max(started_at) AS last_viewed_at
FROM product.viewing_history
GROUP BY profile_id, account_id;
CREATE UNIQUE INDEX profile_engagement_key ON product.profile_engagement (profile_id, account_id);
