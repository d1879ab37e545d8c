-- 0004: renewals update subscriptions in place. billing_run moves each renewing subscription
-- into its next period; with an index on current_period_end every such update wrote a new
-- entry into every index, including the gist index of subscriptions_no_overlap_per_account,
-- whose exclusion check dominated the run (7.1 s of 10.4 s for 20k renewals, measured by
-- benchmarks/product_bench.py). Without that index the update changes no indexed column and
-- PostgreSQL can make it a heap-only (HOT) update when the page has room, which fillfactor 70
-- leaves; the day's renewals are then found by a sequential scan (a day is ~1/30 of the table).
DROP INDEX product.subscriptions_renewal;
ALTER TABLE product.subscriptions SET (fillfactor = 70);
