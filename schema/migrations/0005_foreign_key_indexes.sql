-- 0005: indexes under the foreign keys that had none. Without them every deleted (or
-- re-keyed) subscription, account or payment made PostgreSQL scan the referencing table:
-- deleting 60k benchmark subscriptions did 60k sequential scans of subscriptions for
-- replaces_subscription_id and ran for minutes.
CREATE INDEX subscriptions_replaces ON product.subscriptions (replaces_subscription_id)
    WHERE replaces_subscription_id IS NOT NULL;
CREATE INDEX invoices_account ON product.invoices (account_id);
CREATE INDEX refunds_payment ON product.refunds (payment_id);
