-- 0007: A/B experiments, defined in the database (netflix_assets/experiments/registry.py writes
-- them; `netflix-assets experiments define`, the experiment_definitions asset). The recommendation
-- service and the experiment assets read them from here.
-- The constraints refuse what SQL can see: a bad id, an empty salt, a salt used twice, a traffic
-- slice outside [0, 1), dates out of order, a primary metric that is also a guardrail, a share
-- outside (0, 1], fewer than two variants, shares that do not sum to 1 (checked at commit, so
-- an experiment and its variants are written in one transaction), and two experiments of one
-- layer whose dates and traffic slices intersect (overlapping allocation). Metric names and
-- variant parameters are checked in the core before writing (docs/OPERATIONS.md).
CREATE SCHEMA experiments;

CREATE TABLE experiments.experiments (
    experiment_id      text PRIMARY KEY
        CONSTRAINT experiments_id_format CHECK (experiment_id ~ '^[a-z][a-z0-9_-]{0,62}$'),
    salt               text NOT NULL
        CONSTRAINT experiments_salt_unique UNIQUE
        CONSTRAINT experiments_salt_not_blank CHECK (btrim(salt) <> ''),
    layer              text NOT NULL CONSTRAINT experiments_layer_not_blank CHECK (layer <> ''),
    traffic_start      numeric NOT NULL,
    traffic_end        numeric NOT NULL,
    start_date         date NOT NULL,
    end_date           date NOT NULL,
    primary_metric     text NOT NULL
        CONSTRAINT experiments_primary_metric_not_blank CHECK (primary_metric <> ''),
    guardrail_metrics  text[] NOT NULL DEFAULT '{}',
    description        text NOT NULL DEFAULT '',
    defined_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT experiments_traffic_slice CHECK (
        0 <= traffic_start AND traffic_start < traffic_end AND traffic_end <= 1
    ),
    CONSTRAINT experiments_dates_ordered CHECK (end_date >= start_date),
    CONSTRAINT experiments_primary_not_guardrail CHECK (
        NOT (primary_metric = ANY (guardrail_metrics))
    ),
    CONSTRAINT experiments_no_overlapping_allocation EXCLUDE USING gist (
        layer WITH =,
        daterange(start_date, end_date, '[]') WITH &&,
        numrange(traffic_start, traffic_end, '[)') WITH &&
    )
);

CREATE TABLE experiments.variants (
    experiment_id  text NOT NULL
        REFERENCES experiments.experiments (experiment_id) ON DELETE CASCADE,
    position       smallint NOT NULL CONSTRAINT variants_position_non_negative CHECK (position >= 0),
    name           text NOT NULL
        CONSTRAINT variants_name_format CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'),
    share          numeric NOT NULL CONSTRAINT variants_share_in_unit CHECK (share > 0 AND share <= 1),
    params         jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT variants_params_object CHECK (jsonb_typeof(params) = 'object'),
    PRIMARY KEY (experiment_id, name),
    CONSTRAINT variants_position_unique UNIQUE (experiment_id, position)
);

-- At commit: every experiment touched has at least two variants whose shares sum to 1 (the
-- same tolerance as the core, 1e-9, so shares of 1/3 written as floats pass).
CREATE FUNCTION experiments.check_variants() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    id text := CASE WHEN TG_TABLE_NAME = 'experiments' THEN NEW.experiment_id
                    ELSE COALESCE(NEW.experiment_id, OLD.experiment_id) END;
    n integer;
    total numeric;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM experiments.experiments e WHERE e.experiment_id = id) THEN
        RETURN NULL;  -- the experiment itself was deleted
    END IF;
    SELECT count(*), COALESCE(sum(share), 0) INTO n, total
        FROM experiments.variants v WHERE v.experiment_id = id;
    IF n < 2 THEN
        RAISE EXCEPTION 'experiment % has % variant(s); it needs at least two (a control first)',
            id, n
            USING ERRCODE = 'check_violation', CONSTRAINT = 'experiments_at_least_two_variants';
    END IF;
    IF abs(total - 1) > 1e-9 THEN
        RAISE EXCEPTION 'experiment %: variant shares sum to %, not 1', id, total
            USING ERRCODE = 'check_violation', CONSTRAINT = 'experiments_shares_sum_to_one';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER experiments_variants_complete
    AFTER INSERT OR UPDATE ON experiments.experiments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION experiments.check_variants();
CREATE CONSTRAINT TRIGGER variants_complete
    AFTER INSERT OR UPDATE OR DELETE ON experiments.variants
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION experiments.check_variants();
