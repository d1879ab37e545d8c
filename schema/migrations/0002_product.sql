-- 0002: the product database: accounts, profiles, plans, subscriptions, billing, the product
-- catalog around the video catalog, my-list, ratings and the viewing history.
-- Constraints do the validation; every rule has a name that the error message carries, so a
-- refused write says which rule it broke (docs/PRODUCT.md lists them).
-- btree_gist is a trusted extension (PostgreSQL 13+): the database owner may create it without
-- superuser; `stack up` also creates it as admin.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE SCHEMA product;

-- Plans and their prices per currency.
CREATE TABLE product.plans (
    plan_id         text PRIMARY KEY,
    name            text NOT NULL,
    max_streams     smallint NOT NULL CONSTRAINT plans_max_streams_positive CHECK (max_streams > 0),
    max_resolution  text NOT NULL
        CONSTRAINT plans_max_resolution_known CHECK (max_resolution IN ('SD', 'HD', 'UHD')),
    rank            smallint NOT NULL UNIQUE
);

CREATE TABLE product.plan_prices (
    plan_id       text NOT NULL REFERENCES product.plans (plan_id),
    currency      char(3) NOT NULL CONSTRAINT plan_prices_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    amount_cents  bigint NOT NULL CONSTRAINT plan_prices_amount_non_negative CHECK (amount_cents >= 0),
    PRIMARY KEY (plan_id, currency)
);

-- Reference data: the plans and their prices (minor units of the currency: cents, yen).
INSERT INTO product.plans (plan_id, name, max_streams, max_resolution, rank) VALUES
    ('basic', 'Basic', 1, 'HD', 1),
    ('standard', 'Standard', 2, 'HD', 2),
    ('premium', 'Premium', 4, 'UHD', 3);
INSERT INTO product.plan_prices (plan_id, currency, amount_cents) VALUES
    ('basic', 'USD', 799), ('standard', 'USD', 1799), ('premium', 'USD', 2499),
    ('basic', 'EUR', 699), ('standard', 'EUR', 1399), ('premium', 'EUR', 1999),
    ('basic', 'GBP', 599), ('standard', 'GBP', 1299), ('premium', 'GBP', 1899),
    ('basic', 'BRL', 2590), ('standard', 'BRL', 4490), ('premium', 'BRL', 5990),
    ('basic', 'INR', 19900), ('standard', 'INR', 49900), ('premium', 'INR', 64900),
    ('basic', 'JPY', 890), ('standard', 'JPY', 1490), ('premium', 'JPY', 1980),
    ('basic', 'MXN', 9900), ('standard', 'MXN', 21900), ('premium', 'MXN', 29900),
    ('basic', 'CAD', 599), ('standard', 'CAD', 1899), ('premium', 'CAD', 2399);

-- Accounts: one e-mail per account whatever its case.
CREATE TABLE product.accounts (
    account_id  text PRIMARY KEY,
    email       text NOT NULL CONSTRAINT accounts_email_shape CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    country     char(2) NOT NULL CONSTRAINT accounts_country_iso CHECK (country ~ '^[A-Z]{2}$'),
    currency    char(3) NOT NULL CONSTRAINT accounts_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX accounts_email_unique_ci ON product.accounts (lower(email));

-- Profiles: at most five per account (a trigger, so the message names the rule).
CREATE TABLE product.profiles (
    profile_id      text PRIMARY KEY,
    account_id      text NOT NULL REFERENCES product.accounts (account_id) ON DELETE CASCADE,
    name            text NOT NULL,
    maturity_level  text NOT NULL DEFAULT 'adult'
        CONSTRAINT profiles_maturity_level_known CHECK (maturity_level IN ('kids', 'teen', 'adult')),
    language        text NOT NULL DEFAULT 'en'
        CONSTRAINT profiles_language_bcp47 CHECK (language ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);
CREATE INDEX profiles_account ON product.profiles (account_id);

CREATE FUNCTION product.profiles_at_most_5() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Lock the account so two concurrent inserts cannot both see four profiles.
    PERFORM 1 FROM product.accounts WHERE account_id = NEW.account_id FOR UPDATE;
    IF (SELECT count(*) FROM product.profiles WHERE account_id = NEW.account_id) >= 5 THEN
        RAISE EXCEPTION 'account % already has 5 profiles', NEW.account_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'profiles_at_most_5_per_account',
                  HINT = 'an account has at most 5 profiles; delete one first';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER profiles_at_most_5_per_account BEFORE INSERT OR UPDATE OF account_id
    ON product.profiles FOR EACH ROW EXECUTE FUNCTION product.profiles_at_most_5();

-- Subscriptions: one row per (account, plan) stretch; an upgrade ends one row and starts the
-- next. Stripe's statuses; current_period_* is the period being billed.
CREATE TABLE product.subscriptions (
    subscription_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id            text NOT NULL REFERENCES product.accounts (account_id),
    plan_id               text NOT NULL,
    currency              char(3) NOT NULL,
    status                text NOT NULL CONSTRAINT subscriptions_status_known
        CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'unpaid')),
    started_at            timestamptz NOT NULL,
    ended_at              timestamptz,
    trial_end             timestamptz,
    current_period_start  timestamptz NOT NULL,
    current_period_end    timestamptz NOT NULL,
    end_reason            text CONSTRAINT subscriptions_end_reason_known
        CHECK (end_reason IN ('churn', 'plan_change')),
    replaces_subscription_id  bigint REFERENCES product.subscriptions (subscription_id),
    UNIQUE (subscription_id, currency),
    CONSTRAINT subscriptions_plan_priced_in_currency FOREIGN KEY (plan_id, currency)
        REFERENCES product.plan_prices (plan_id, currency),
    CONSTRAINT subscriptions_period_ordered CHECK (current_period_end > current_period_start),
    CONSTRAINT subscriptions_end_after_start CHECK (ended_at IS NULL OR ended_at >= started_at),
    CONSTRAINT subscriptions_canceled_has_end CHECK (
        (status = 'canceled') = (ended_at IS NOT NULL) AND (ended_at IS NULL) = (end_reason IS NULL)
    ),
    CONSTRAINT subscriptions_no_overlap_per_account EXCLUDE USING gist (
        account_id WITH =, tstzrange(started_at, ended_at) WITH &&
    ) WHERE (status <> 'canceled')
);
CREATE INDEX subscriptions_renewal ON product.subscriptions (current_period_end)
    WHERE status IN ('trialing', 'active');
CREATE INDEX subscriptions_account ON product.subscriptions (account_id);

-- The Stripe lifecycle: which status may follow which.
CREATE FUNCTION product.subscriptions_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'trialing' AND NEW.status IN ('active', 'past_due', 'canceled'))
        OR (OLD.status = 'active' AND NEW.status IN ('past_due', 'canceled'))
        OR (OLD.status = 'past_due' AND NEW.status IN ('active', 'unpaid', 'canceled'))
        OR (OLD.status = 'unpaid' AND NEW.status IN ('active', 'canceled'))
    ) THEN
        RAISE EXCEPTION 'subscription % cannot go from % to %', OLD.subscription_id, OLD.status,
            NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'subscriptions_status_lifecycle';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER subscriptions_status_lifecycle BEFORE UPDATE OF status ON product.subscriptions
    FOR EACH ROW EXECUTE FUNCTION product.subscriptions_transition();

-- Invoices: one per subscription and period start, so re-billing a day creates nothing twice.
CREATE TABLE product.invoices (
    invoice_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id    bigint NOT NULL,
    account_id         text NOT NULL REFERENCES product.accounts (account_id),
    currency           char(3) NOT NULL,
    kind               text NOT NULL CONSTRAINT invoices_kind_known
        CHECK (kind IN ('signup', 'renewal', 'proration')),
    status             text NOT NULL CONSTRAINT invoices_status_known
        CHECK (status IN ('open', 'paid', 'void', 'uncollectible')),
    period_start       timestamptz NOT NULL,
    period_end         timestamptz NOT NULL,
    billing_date       date NOT NULL,
    amount_due_cents   bigint NOT NULL
        CONSTRAINT invoices_amount_due_non_negative CHECK (amount_due_cents >= 0),
    paid_at            timestamptz,
    UNIQUE (invoice_id, currency),
    CONSTRAINT invoices_one_per_subscription_period UNIQUE (subscription_id, period_start),
    CONSTRAINT invoices_currency_matches_subscription FOREIGN KEY (subscription_id, currency)
        REFERENCES product.subscriptions (subscription_id, currency),
    CONSTRAINT invoices_paid_has_time CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);
CREATE INDEX invoices_open ON product.invoices (billing_date) WHERE status = 'open';
CREATE INDEX invoices_paid_day ON product.invoices (paid_at) WHERE status = 'paid';

CREATE TABLE product.invoice_lines (
    invoice_id    bigint NOT NULL REFERENCES product.invoices (invoice_id) ON DELETE CASCADE,
    line_no       smallint NOT NULL,
    kind          text NOT NULL CONSTRAINT invoice_lines_kind_known
        CHECK (kind IN ('subscription', 'proration_charge', 'proration_credit')),
    plan_id       text NOT NULL REFERENCES product.plans (plan_id),
    description   text NOT NULL,
    amount_cents  bigint NOT NULL,
    PRIMARY KEY (invoice_id, line_no),
    CONSTRAINT invoice_lines_credit_sign CHECK ((kind = 'proration_credit') = (amount_cents < 0))
);

-- Payments: one row per attempt; the idempotency key makes a re-delivered notification a no-op.
CREATE TABLE product.payments (
    payment_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id       bigint NOT NULL,
    currency         char(3) NOT NULL,
    amount_cents     bigint NOT NULL
        CONSTRAINT payments_amount_non_negative CHECK (amount_cents >= 0),
    status           text NOT NULL
        CONSTRAINT payments_status_known CHECK (status IN ('succeeded', 'failed')),
    attempt          smallint NOT NULL CONSTRAINT payments_attempt_positive CHECK (attempt > 0),
    failure_code     text,
    idempotency_key  text NOT NULL CONSTRAINT payments_idempotency_key_unique UNIQUE,
    created_at       timestamptz NOT NULL,
    UNIQUE (payment_id, currency),
    CONSTRAINT payments_currency_matches_invoice FOREIGN KEY (invoice_id, currency)
        REFERENCES product.invoices (invoice_id, currency),
    CONSTRAINT payments_failure_has_code CHECK ((status = 'failed') = (failure_code IS NOT NULL))
);
CREATE INDEX payments_invoice ON product.payments (invoice_id);

CREATE TABLE product.refunds (
    refund_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id       bigint NOT NULL,
    currency         char(3) NOT NULL,
    amount_cents     bigint NOT NULL CONSTRAINT refunds_amount_positive CHECK (amount_cents > 0),
    reason           text NOT NULL,
    idempotency_key  text NOT NULL CONSTRAINT refunds_idempotency_key_unique UNIQUE,
    created_at       timestamptz NOT NULL,
    CONSTRAINT refunds_currency_matches_payment FOREIGN KEY (payment_id, currency)
        REFERENCES product.payments (payment_id, currency)
);

CREATE FUNCTION product.refunds_within_payment() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    paid bigint;
    refunded bigint;
BEGIN
    SELECT amount_cents INTO paid FROM product.payments
        WHERE payment_id = NEW.payment_id AND status = 'succeeded' FOR UPDATE;
    SELECT coalesce(sum(amount_cents), 0) INTO refunded FROM product.refunds
        WHERE payment_id = NEW.payment_id;
    IF paid IS NULL OR refunded + NEW.amount_cents > paid THEN
        RAISE EXCEPTION 'refund of % exceeds what payment % collected (% already refunded of %)',
            NEW.amount_cents, NEW.payment_id, refunded, coalesce(paid, 0)
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refunds_within_payment';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refunds_within_payment BEFORE INSERT ON product.refunds
    FOR EACH ROW EXECUTE FUNCTION product.refunds_within_payment();

-- The product catalog around the video catalog: a title is a movie or a series; a movie plays
-- its own published renditions (catalog.title_versions), an episode plays the video title it
-- names.
ALTER TABLE catalog.titles
    ADD COLUMN kind text NOT NULL DEFAULT 'movie'
        CONSTRAINT titles_kind_known CHECK (kind IN ('movie', 'series')),
    ADD COLUMN maturity_rating text NOT NULL DEFAULT 'TV-14'
        CONSTRAINT titles_maturity_rating_known
        CHECK (maturity_rating IN ('TV-Y', 'TV-Y7', 'TV-G', 'TV-PG', 'TV-14', 'TV-MA')),
    ADD COLUMN release_year smallint,
    ADD COLUMN runtime_minutes integer
        CONSTRAINT titles_runtime_positive CHECK (runtime_minutes > 0),
    ADD COLUMN synthetic boolean NOT NULL DEFAULT false;

CREATE TABLE catalog.genres (
    genre_id  text PRIMARY KEY,
    name      text NOT NULL
);

INSERT INTO catalog.genres (genre_id, name) VALUES
    ('drama', 'Drama'), ('comedy', 'Comedy'), ('action', 'Action'),
    ('documentary', 'Documentary'), ('kids', 'Kids'), ('thriller', 'Thriller'),
    ('romance', 'Romance'), ('anime', 'Anime');

CREATE TABLE catalog.title_genres (
    title_id  text NOT NULL REFERENCES catalog.titles (title_id) ON DELETE CASCADE,
    genre_id  text NOT NULL REFERENCES catalog.genres (genre_id),
    PRIMARY KEY (title_id, genre_id)
);

CREATE TABLE catalog.seasons (
    title_id       text NOT NULL REFERENCES catalog.titles (title_id) ON DELETE CASCADE,
    season_number  smallint NOT NULL CONSTRAINT seasons_number_positive CHECK (season_number > 0),
    name           text,
    PRIMARY KEY (title_id, season_number)
);

CREATE TABLE catalog.episodes (
    title_id        text NOT NULL,
    season_number   smallint NOT NULL,
    episode_number  smallint NOT NULL
        CONSTRAINT episodes_number_positive CHECK (episode_number > 0),
    name            text NOT NULL,
    video_title_id  text REFERENCES catalog.titles (title_id),
    PRIMARY KEY (title_id, season_number, episode_number),
    FOREIGN KEY (title_id, season_number) REFERENCES catalog.seasons (title_id, season_number)
        ON DELETE CASCADE
);

CREATE TABLE catalog.availability (
    title_id         text NOT NULL REFERENCES catalog.titles (title_id) ON DELETE CASCADE,
    country          char(2) NOT NULL
        CONSTRAINT availability_country_iso CHECK (country ~ '^[A-Z]{2}$'),
    available_from   date NOT NULL,
    available_until  date,
    PRIMARY KEY (title_id, country),
    CONSTRAINT availability_window_ordered
        CHECK (available_until IS NULL OR available_until > available_from)
);

-- My list and ratings, per profile.
CREATE TABLE product.my_list (
    profile_id  text NOT NULL REFERENCES product.profiles (profile_id) ON DELETE CASCADE,
    title_id    text NOT NULL REFERENCES catalog.titles (title_id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, title_id)
);

CREATE TABLE product.ratings (
    profile_id  text NOT NULL REFERENCES product.profiles (profile_id) ON DELETE CASCADE,
    title_id    text NOT NULL REFERENCES catalog.titles (title_id),
    thumbs      smallint NOT NULL CONSTRAINT ratings_thumbs_known CHECK (thumbs IN (-1, 1, 2)),
    rated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (profile_id, title_id)
);

-- Which (seed, day) the account simulator has applied, so re-running `simulate` adds nothing twice.
CREATE TABLE product.simulated_days (
    seed        integer NOT NULL,
    day         date NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (seed, day)
);

-- Viewing history: one row per playback session (silver_playback_sessions), range-partitioned
-- by month on started_at; partitions are created ahead (product.partitions). It has no foreign
-- keys: it is a fact table loaded in bulk from the lake, which may name a profile before the
-- account side has it; viewing_history's asset reports such rows instead.
CREATE TABLE product.viewing_history (
    session_id    text NOT NULL,
    session_date  date NOT NULL,
    started_at    timestamptz NOT NULL,
    account_id    text NOT NULL,
    profile_id    text NOT NULL,
    title_id      text NOT NULL,
    device        text,
    country       text,
    watched_ms    bigint NOT NULL
        CONSTRAINT viewing_history_watched_non_negative CHECK (watched_ms >= 0),
    completed     boolean NOT NULL,
    PRIMARY KEY (session_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX viewing_history_profile_recent ON product.viewing_history (profile_id, started_at DESC);
