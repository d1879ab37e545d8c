"""Both instance configs are valid against the installed Dagster's schemas, the K8s run
launcher's own config schema included."""

from __future__ import annotations

import importlib

import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config_schema

from netflix_assets.settings import REPO_ROOT

ENV = {
    "DAGSTER_HOME": "/tmp/dagster-home",
    "DAGSTER_PG_HOST": "db",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
    "NETFLIX_ASSETS_IMAGE": "registry/netflix-assets:1",
    "NETFLIX_ASSETS_LOG_BUCKET": "logs",
}


def _check(path: str) -> dict:
    config = yaml.safe_load((REPO_ROOT / path).read_text())
    result = process_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    return config


@pytest.fixture(autouse=True)
def _env(monkeypatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def test_local_instance_config_is_valid() -> None:
    config = _check("dagster.yaml")
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_production_instance_config_is_valid() -> None:
    config = _check("deploy/dagster.prod.yaml")
    launcher = config["run_launcher"]
    cls = getattr(importlib.import_module(launcher["module"]), launcher["class"])
    result = process_config(cls.config_type(), launcher["config"])
    assert result.success, [e.message for e in result.errors]
    assert "postgres" in config["storage"]
