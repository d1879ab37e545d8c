"""A refused write names the rule it broke: PostgreSQL's constraint name plus its message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import errors


class RuleViolation(ValueError):
    """A write the product database refuses. `rule` is the constraint (or trigger rule) name,
    as in schema/migrations, so a caller can branch on it and a person can look it up."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"refused by rule {rule}: {detail}")
        self.rule = rule
        self.detail = detail


RULE_ERRORS = (
    errors.IntegrityError,  # unique, foreign key, check, exclusion, not null
    errors.RaiseException,
)


@contextmanager
def named_rules() -> Iterator[None]:
    """Re-raise a constraint error as RuleViolation. The transaction it happened in is rolled
    back by the connection's `with` block, so nothing of the write is left behind."""
    try:
        yield
    except RULE_ERRORS as exc:
        diag = exc.diag
        # A unique index (accounts_email_unique_ci) reports its name here too.
        rule = diag.constraint_name or type(exc).__name__
        detail = diag.message_primary or str(exc)
        if diag.message_detail:
            detail += f" ({diag.message_detail})"
        if diag.message_hint:
            detail += f"; {diag.message_hint}"
        raise RuleViolation(rule, detail) from exc
