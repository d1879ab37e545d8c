"""The simulator's viewers are the product database's profiles, watching its titles."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest

from netflix_assets.product.simulation import (
    AccountSimConfig,
    ensure_catalog,
    load_population,
    simulate_accounts,
)
from resources.postgres import PostgresResource
from streaming.simulator import SimConfig, Simulator

pytestmark = pytest.mark.stack


def test_events_reference_real_profiles_and_published_titles_first(
    product_db: PostgresResource,
) -> None:
    seed = 202
    with product_db.connect() as conn:
        conn.execute(
            "INSERT INTO catalog.titles (title_id, title, status) VALUES "
            "('pub-title', 'A Published Title', 'published') ON CONFLICT DO NOTHING"
        )
        simulate_accounts(
            conn, AccountSimConfig(accounts=60, days=1, start=date(2027, 2, 1), seed=seed)
        )
        added = ensure_catalog(conn, titles=20, seed=seed)
        assert ensure_catalog(conn, titles=20, seed=seed) == 0  # already there
        population = load_population(conn, titles=20, seed=seed)
        profiles = {
            r[0]: r[1] for r in conn.execute("SELECT profile_id, account_id FROM product.profiles")
        }
        titles = {r[0] for r in conn.execute("SELECT title_id FROM catalog.titles")}
        published = conn.execute(
            "SELECT count(*) FROM catalog.titles WHERE status = 'published'"
        ).fetchone()[0]
    # the catalog now holds at least 20 published titles (other tests of the session may
    # have seeded synthetic ones before: `added` counts only what was missing)
    assert published >= 20 and added <= 19 and len(population.titles) == 20
    assert population.titles[0].title_id == "pub-title"  # published before synthetic
    config = dataclasses.replace(
        SimConfig(start=date(2027, 2, 1), seed=seed), population=population
    )
    events = [json.loads(m.value) for m in Simulator(config).messages() if m.kind == "valid"]
    assert len(events) > 100
    for event in events:
        assert profiles[event["profile_id"]] == event["user_id"]
        assert event["title_id"] in titles
    assert any(e["title_id"] == "pub-title" for e in events)
    again = [m.value for m in Simulator(config).messages()]
    assert again == [m.value for m in Simulator(config).messages()]


def test_an_empty_population_is_refused_with_the_fix() -> None:
    from netflix_assets.product.simulation import Population

    with pytest.raises(ValueError, match="simulate the account side first"):
        Simulator(dataclasses.replace(SimConfig(), population=Population((), ())))
