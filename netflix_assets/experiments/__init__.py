"""A/B experiments without Dagster: definitions, deterministic assignment and the statistics.

`definitions` validates an experiment when it is defined (shares, overlap, dates, metrics);
`assignment` maps a profile to a variant from a stable hash of the salt and the profile id;
`stats` holds the estimators (Welch intervals, CUPED, always-valid mSPRT p-values, SRM check);
`analysis` applies them to one frame of per-profile metrics.
"""
