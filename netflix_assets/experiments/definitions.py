"""Experiment definitions, validated when they are defined so a bad one never assigns a profile.

An experiment owns a slice ``[traffic_start, traffic_end)`` of its layer's hash space; experiments
in the same layer whose dates overlap must own disjoint slices, so a profile is in at most one of
them. Inside its slice, the variants' shares (summing to 1) split the profile's own bucket.

A variant may carry serving parameters (`SERVING_PARAMS`: what the recommendation service
changes for the profiles in it, e.g. MMR's lambda); two experiments that can hold the same
profile at the same time may not set the same parameter, or neither result would be clean.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_ID = re.compile(r"^[a-z][a-z0-9_\-]{0,62}$")
_SHARE_TOLERANCE = 1e-9
_VARIANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")

LAKE_METRICS = ("watch_hours", "sessions", "titles_watched", "stalls", "completions")
"""The per-profile daily metrics an experiment can name (columns of gold_user_daily)."""

SERVING_PARAMS = {"mmr_lambda": (0.0, 1.0)}
"""Parameters a variant may set in the recommendation service, with their closed range."""


class ExperimentDefinitionError(ValueError):
    """An experiment definition that cannot be run as written; the message names the fix."""


@dataclass(frozen=True)
class Variant:
    name: str
    share: float
    params: dict[str, float] = field(default_factory=dict, hash=False)
    """Serving parameters of this variant (keys of SERVING_PARAMS); empty: the release's own."""


@dataclass(frozen=True)
class Experiment:
    """One experiment: the first variant is the control every other variant is compared with."""

    experiment_id: str
    salt: str
    variants: tuple[Variant, ...]
    start: dt.date
    end: dt.date
    primary_metric: str
    guardrail_metrics: tuple[str, ...] = ()
    layer: str = "default"
    traffic_start: float = 0.0
    traffic_end: float = 1.0
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def control(self) -> str:
        return self.variants[0].name

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def shares(self) -> dict[str, float]:
        return {v.name: v.share for v in self.variants}

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.primary_metric, *self.guardrail_metrics)

    def is_active(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def to_dict(self) -> dict[str, object]:
        return {
            "experiment_id": self.experiment_id,
            "salt": self.salt,
            "variants": [
                {"name": v.name, "share": v.share, **({"params": v.params} if v.params else {})}
                for v in self.variants
            ],
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "primary_metric": self.primary_metric,
            "guardrail_metrics": list(self.guardrail_metrics),
            "layer": self.layer,
            "traffic_start": self.traffic_start,
            "traffic_end": self.traffic_end,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, raw: dict) -> Experiment:
        """Builds an experiment from plain data (a config file, a PostgreSQL row as a dict)."""
        try:
            variants = tuple(
                Variant(str(v["name"]), float(v["share"]), _params(v.get("params")))
                for v in raw["variants"]
            )
            return cls(
                experiment_id=str(raw["experiment_id"]),
                salt=str(raw["salt"]),
                variants=variants,
                start=_date(raw["start"]),
                end=_date(raw["end"]),
                primary_metric=str(raw["primary_metric"]),
                guardrail_metrics=tuple(raw.get("guardrail_metrics", ())),
                layer=str(raw.get("layer", "default")),
                traffic_start=float(raw.get("traffic_start", 0.0)),
                traffic_end=float(raw.get("traffic_end", 1.0)),
                description=str(raw.get("description", "")),
            )
        except KeyError as exc:
            raise ExperimentDefinitionError(
                f"experiment definition lacks the field {exc.args[0]!r}; required: experiment_id, "
                "salt, variants (name, share), start, end, primary_metric"
            ) from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ExperimentDefinitionError):
                raise
            raise ExperimentDefinitionError(
                f"experiment definition has a bad value: {exc}"
            ) from exc


def _params(raw: object) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ExperimentDefinitionError(f"variant params must be a mapping, not {raw!r}")
    return {str(k): float(v) for k, v in raw.items()}


def _date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _validate(e: Experiment) -> None:
    where = f"experiment {e.experiment_id!r}"
    if not _ID.match(e.experiment_id):
        raise ExperimentDefinitionError(
            f"experiment id {e.experiment_id!r} must be lower-case letters, digits, '_' or '-' "
            "(start with a letter, at most 63 characters)"
        )
    if not e.salt.strip():
        raise ExperimentDefinitionError(
            f"{where} has an empty salt; give it its own salt (e.g. the id and a date) so its "
            "assignment is independent of other experiments"
        )
    if len(e.variants) < 2:
        raise ExperimentDefinitionError(f"{where} needs at least two variants (a control first)")
    names = [v.name for v in e.variants]
    if len(set(names)) != len(names):
        raise ExperimentDefinitionError(f"{where} repeats a variant name: {names}")
    for v in e.variants:
        if not _VARIANT_NAME.match(v.name):
            raise ExperimentDefinitionError(
                f"{where}: variant name {v.name!r} must be 1-63 letters, digits, '_', '.' or '-'"
            )
        _validate_params(where, v)
        if not (math.isfinite(v.share) and 0.0 < v.share <= 1.0):
            raise ExperimentDefinitionError(
                f"{where}: variant {v.name!r} has share {v.share}; each share must be in (0, 1]"
            )
    total = math.fsum(v.share for v in e.variants)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ExperimentDefinitionError(
            f"{where}: variant shares sum to {total:.6g}, not 1; adjust them so that they do "
            "(the experiment's traffic slice, not the shares, sets how many profiles take part)"
        )
    if not (0.0 <= e.traffic_start < e.traffic_end <= 1.0):
        raise ExperimentDefinitionError(
            f"{where}: traffic slice [{e.traffic_start}, {e.traffic_end}) must satisfy "
            "0 <= start < end <= 1"
        )
    if e.end < e.start:
        raise ExperimentDefinitionError(f"{where} ends ({e.end}) before it starts ({e.start})")
    if not e.primary_metric:
        raise ExperimentDefinitionError(f"{where} has no primary metric")
    if e.primary_metric in e.guardrail_metrics:
        raise ExperimentDefinitionError(
            f"{where}: {e.primary_metric!r} is both the primary and a guardrail metric"
        )


def _validate_params(where: str, v: Variant) -> None:
    for name, value in v.params.items():
        if name not in SERVING_PARAMS:
            raise ExperimentDefinitionError(
                f"{where}: variant {v.name!r} sets {name!r}, which the recommendation service "
                f"does not apply; choose from {sorted(SERVING_PARAMS)}"
            )
        low, high = SERVING_PARAMS[name]
        if not (math.isfinite(value) and low <= value <= high):
            raise ExperimentDefinitionError(
                f"{where}: variant {v.name!r} sets {name} = {value}; it must be in [{low}, {high}]"
            )


def serving_params(e: Experiment) -> set[str]:
    """The serving parameters any of the experiment's variants sets."""
    return {name for v in e.variants for name in v.params}


def validate_registry(experiments: Iterable[Experiment]) -> dict[str, Experiment]:
    """Checks a set of experiments together: unique ids and salts, no overlapping allocation.

    Two experiments overlap when they share a layer, their date ranges intersect and their
    traffic slices intersect: a profile could then be in both, and neither result would be clean.
    """
    by_id: dict[str, Experiment] = {}
    salts: dict[str, str] = {}
    for e in experiments:
        if e.experiment_id in by_id:
            raise ExperimentDefinitionError(f"experiment id {e.experiment_id!r} is defined twice")
        if e.salt in salts:
            raise ExperimentDefinitionError(
                f"experiments {salts[e.salt]!r} and {e.experiment_id!r} share the salt {e.salt!r}; "
                "give each its own so their assignments are independent"
            )
        for other in by_id.values():
            shared = serving_params(e) & serving_params(other)
            if shared and _may_share_profiles(e, other):
                raise ExperimentDefinitionError(
                    f"experiments {other.experiment_id!r} and {e.experiment_id!r} both set "
                    f"{sorted(shared)} and can hold the same profile between "
                    f"{max(e.start, other.start)} and {min(e.end, other.end)}; put them in one "
                    "layer with disjoint traffic slices, or give them non-overlapping dates"
                )
            if _overlap(e, other):
                raise ExperimentDefinitionError(
                    f"experiments {other.experiment_id!r} and {e.experiment_id!r} overlap in layer "
                    f"{e.layer!r}: traffic [{other.traffic_start}, {other.traffic_end}) and "
                    f"[{e.traffic_start}, {e.traffic_end}) intersect while both run between "
                    f"{max(e.start, other.start)} and {min(e.end, other.end)}; give them disjoint "
                    "traffic slices, different layers or non-overlapping dates"
                )
        by_id[e.experiment_id] = e
        salts[e.salt] = e.experiment_id
    return by_id


def _overlap(a: Experiment, b: Experiment) -> bool:
    return (
        a.layer == b.layer
        and a.start <= b.end
        and b.start <= a.end
        and a.traffic_start < b.traffic_end
        and b.traffic_start < a.traffic_end
    )


def _may_share_profiles(a: Experiment, b: Experiment) -> bool:
    """Whether one profile can be in both at once: dates intersect and, in one layer, the
    traffic slices too (different layers are assigned independently)."""
    if not (a.start <= b.end and b.start <= a.end):
        return False
    return a.layer != b.layer or _overlap(a, b)


def load_registry(text: str, known_metrics: Iterable[str] | None = None) -> dict[str, Experiment]:
    """Experiments from YAML (or JSON) text `experiments: [...]`, validated one by one and together.

    With `known_metrics`, a metric the lake does not compute is refused too.
    """
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ExperimentDefinitionError(f"experiments file is not valid YAML: {exc}") from None
    items = raw.get("experiments") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ExperimentDefinitionError("an experiments file holds `experiments:` with a list")
    registry = validate_registry(Experiment.from_dict(item) for item in items)
    if known_metrics is not None:
        check_metrics(registry.values(), known_metrics)
    return registry


def check_metrics(experiments: Iterable[Experiment], known_metrics: Iterable[str]) -> None:
    """Refuses an experiment naming a metric outside `known_metrics` (what the lake computes)."""
    known = set(known_metrics)
    for e in experiments:
        unknown = [m for m in e.metrics if m not in known]
        if unknown:
            raise ExperimentDefinitionError(
                f"experiment {e.experiment_id!r} names metrics {unknown} that the lake does "
                f"not compute; choose from {sorted(known)}"
            )
